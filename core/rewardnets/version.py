"""The version of rewardnets (one place, read by the package and by the file writer)."""

__version__ = "0.1.0"
