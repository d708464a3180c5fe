"""Relabelling replay buffers with a new reward.

A stable import path; the code lives in :mod:`rewardnets.envs.relabel`.
"""

from rewardnets.envs.relabel import *  # noqa: F403
from rewardnets.envs.relabel import __all__ as __all__
