"""``RewardVecEnvWrapper`` (``imitation.rewards.reward_wrapper``).

A stable import path; the code lives in :mod:`rewardnets.envs.reward_wrapper`.
"""

from rewardnets.envs.reward_wrapper import *  # noqa: F403
from rewardnets.envs.reward_wrapper import __all__ as __all__
