"""The built-in rewardnets plugins.

Each module is one plugin family, registered through its own entry point in the
``rewardnets`` group, exactly as a third-party package registers its plugins.
"""
