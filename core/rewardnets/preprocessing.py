"""Turning numpy transitions into tensors for a reward net.

A stable import path; the code lives in :mod:`rewardnets.framework.preprocessing`.
"""

from rewardnets.framework.preprocessing import *  # noqa: F403
from rewardnets.framework.preprocessing import __all__ as __all__
