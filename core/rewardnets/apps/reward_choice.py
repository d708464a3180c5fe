"""Which reward type turns a saved net into its whole reward: the commands' default.

A file of ``imitation`` (or of an earlier ``rewardnets learn``) holds a
``NormalizedRewardNet`` outermost, read with ``RewardNet_normalized``; the
ensembles ``rewardnets learn`` saves now sit under an ``AddSTDRewardWrapper``,
read with ``RewardNet_std_added``. A command given a file and no
``--reward-type`` picks the type that fits the file, so both kinds work
without the flag, and normalisation statistics stay frozen either way.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["default_reward_type", "reward_type_of_file"]


def default_reward_type(net: Any) -> str:
    """Return the reward type that gives ``net``'s whole reward with frozen statistics.

    ``RewardNet_normalized`` when the outermost wrapper is a
    ``NormalizedRewardNet``; ``RewardNet_std_added`` when the wrapper stack
    holds an ``AddSTDRewardWrapper``; ``RewardNet_unnormalized`` (the net's
    plain reward) otherwise.
    """
    from rewardnets.reward_nets import AddSTDRewardWrapper, NormalizedRewardNet, RewardNetWrapper

    if isinstance(net, NormalizedRewardNet):
        return "RewardNet_normalized"
    node = net
    while isinstance(node, RewardNetWrapper):
        if isinstance(node, AddSTDRewardWrapper):
            return "RewardNet_std_added"
        node = node.base
    return "RewardNet_unnormalized"


def reward_type_of_file(path: str | os.PathLike[str], *, trust_pickle: bool = False) -> str:
    """Return :func:`default_reward_type` of the net saved at ``path`` (loaded safely)."""
    from rewardnets.serialize import load

    return default_reward_type(load(path, trust_pickle=trust_pickle))
