"""Saving, loading and ``load_reward`` (``imitation.rewards.serialize``).

A stable import path; the code lives in :mod:`rewardnets.files.serialize`.
"""

from rewardnets.files.inspection import describe_file
from rewardnets.files.serialize import *  # noqa: F403
from rewardnets.files.serialize import __all__ as _serialize_all

__all__ = [*_serialize_all, "describe_file"]
