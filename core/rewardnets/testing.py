"""Conformance checks for plugin authors: ``check_reward_net``.

A stable import path; the code lives in :mod:`rewardnets.framework.checks`.
"""

from rewardnets.framework.checks import *  # noqa: F403
from rewardnets.framework.checks import __all__ as __all__
