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
    if not name.startswith("_"):
        entry = registry.find(name)
        if entry is not None and entry.kind in ("reward_net", "wrapper", "potential"):
            return entry.obj
    raise AttributeError(f"module 'rewardnets.reward_nets' has no attribute {name!r}")
