"""Environments: putting a reward into Stable-Baselines3 vector envs.

``RewardVecEnvWrapper``, ``make_vec_env`` and replay-buffer relabelling. Imports the
layers below it; the modules import Stable-Baselines3, so nothing here is loaded by
``import rewardnets``.
"""
