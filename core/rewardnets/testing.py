"""Conformance checks for plugin authors: ``check_reward_net``.

A stable import path; the code lives in :mod:`rewardnets.apps.checks`.
"""

from rewardnets.apps.checks import *  # noqa: F403
from rewardnets.apps.checks import __all__ as __all__
