"""Saving, loading and ``load_reward`` (``imitation.rewards.serialize``).

A stable import path; the code lives in :mod:`rewardnets.files.serialize`
(saving and loading) and :mod:`rewardnets.files.reward_functions` (reward
functions of saved nets).
"""

from rewardnets.files.inspection import describe_file
from rewardnets.files.reward_functions import *  # noqa: F403
from rewardnets.files.reward_functions import __all__ as _reward_functions_all
from rewardnets.files.serialize import *  # noqa: F403
from rewardnets.files.serialize import __all__ as _serialize_all

__all__ = [*_serialize_all, *_reward_functions_all, "describe_file"]
