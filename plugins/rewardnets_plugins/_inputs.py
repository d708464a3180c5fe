"""Helpers the built-in nets share to assemble their inputs."""

from __future__ import annotations

import torch

from rewardnets.preprocessing import TensorTree


def flatten(value: TensorTree) -> torch.Tensor:
    """Flatten a preprocessed batch to ``(batch, features)``; Dict keys are concatenated."""
    if isinstance(value, dict):
        return torch.cat([flatten(v) for v in value.values()], dim=1)
    # Already flat (the common case): skip the call, which costs as much as a small op.
    return value if value.dim() == 2 else torch.flatten(value, 1)


def require(value: TensorTree | None, what: str, owner: str) -> TensorTree:
    """Return ``value``, or raise a clear error when a needed input is ``None``."""
    if value is None:
        raise ValueError(
            f"{owner} uses {what}, but {what}=None was given. Pass {what}, or build "
            f"the net with use_{what}=False."
        )
    return value
