"""Applications built on the public API, as any user's code would be.

Preference learning, policy training, EPIC, ground-truth rewards, plots, the
pipeline and the command line. They import only public rewardnets modules.
"""
