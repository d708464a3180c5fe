"""Reward-net classes, at the import path users of ``imitation`` know.

The abstract classes live in the core; the concrete nets and wrappers come from
plugins and are looked up in the registry when first accessed, so importing this
module imports no plugin.
"""

from __future__ import annotations

from typing import Any

from rewardnets.framework.inference import processed_tensor, run_kernel
from rewardnets.framework.kernels import (
    ArrayKernel,
    Batch,
    KernelBuilder,
    MomentsKernel,
    NormKernel,
    ProcessedKernel,
    RewardKernel,
)
from rewardnets.framework.networks import cnn_transpose
from rewardnets.framework.reward_net import (
    ForwardWrapper,
    PredictProcessedWrapper,
    RewardNet,
    RewardNetWithVariance,
    RewardNetWrapper,
)
from rewardnets.plugin_registry.registry import registry

__all__ = [
    "ArrayKernel",
    "Batch",
    "ForwardWrapper",
    "KernelBuilder",
    "MomentsKernel",
    "NormKernel",
    "ProcessedKernel",
    "PredictProcessedWrapper",
    "RewardNet",
    "RewardNetWithVariance",
    "RewardKernel",
    "RewardNetWrapper",
    "cnn_transpose",
    "processed_tensor",
    "run_kernel",
]


def __getattr__(name: str) -> Any:
    from rewardnets import PLUGIN_NAMES

    if name not in PLUGIN_NAMES:
        entry = registry.find(name) if not name.startswith("_") else None
        if entry is None or entry.kind not in ("reward_net", "wrapper", "potential"):
            raise AttributeError(f"module 'rewardnets.reward_nets' has no attribute {name!r}")
    return registry.attribute("rewardnets.reward_nets", name, PLUGIN_NAMES)
