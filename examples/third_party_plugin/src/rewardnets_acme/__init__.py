"""rewardnets-acme: an example third-party plugin for rewardnets."""
