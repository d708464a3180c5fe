"""``make_vec_env`` (``imitation.util.util``).

A stable import path; the code lives in :mod:`rewardnets.envs.vec_env`.
"""

from rewardnets.envs.vec_env import *  # noqa: F403
from rewardnets.envs.vec_env import __all__ as __all__
