"""Reward normalisation: ``NormalizedRewardNet`` and the norm layers by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from rewardnets import PredictProcessedWrapper, RewardNet, hookimpl
from rewardnets._reward_net import evaluating
from rewardnets.hookspecs import Register
from rewardnets.networks import BaseNorm, EMANorm, RunningNorm

__all__ = ["NormalizedRewardNet"]


class NormalizedRewardNet(PredictProcessedWrapper):
    """Standardise ``predict_processed`` rewards with running statistics.

    Each call standardises the batch with the statistics as they were before
    it, then, when ``update_stats`` is true, folds the batch into them.
    ``forward`` and ``predict`` are the base net's, unnormalised.

    Args:
        base: The reward net whose reward is normalised.
        normalize_output_layer: A factory ``(num_features) -> nn.Module`` called
            with 1, such as :class:`~rewardnets.RunningNorm`. Any
            shape-preserving layer works; one without ``update_stats`` (e.g.
            ``nn.Identity``) simply has no statistics to update.
    """

    config_refs: ClassVar[dict[str, str]] = {"normalize_output_layer": "norm_layer"}

    def __init__(
        self,
        base: RewardNet,
        normalize_output_layer: Callable[[int], nn.Module] = RunningNorm,
    ) -> None:
        super().__init__(base)
        layer = normalize_output_layer(1)
        if not isinstance(layer, nn.Module):
            raise TypeError(
                "Expected normalize_output_layer(1) to return an nn.Module, got "
                f"{type(layer).__name__}."
            )
        self.normalize_output_layer = layer

    def predict_processed(
        self,
        state: Any,
        action: Any,
        next_state: Any = None,
        done: Any = None,
        update_stats: bool = True,
        **kwargs: Any,
    ) -> np.ndarray:
        """Return the base's processed reward, standardised.

        Args:
            state: States.
            action: Actions.
            next_state: Next states.
            done: Episode-end flags.
            update_stats: Fold this batch into the statistics afterwards.
            **kwargs: Passed on to the base's ``predict_processed``.
        """
        reward = self.base.predict_processed(state, action, next_state, done, **kwargs)
        layer = self.normalize_output_layer
        with torch.no_grad():
            reward_th = torch.as_tensor(reward, device=self.device)
            if isinstance(layer, BaseNorm):
                normalized = layer.normalize(reward_th)
            else:
                with evaluating(layer):
                    normalized = layer(reward_th.reshape(-1, 1)).reshape(-1)
            if update_stats and callable(getattr(layer, "update_stats", None)):
                layer.update_stats(reward_th)  # type: ignore[operator]
        out: np.ndarray = normalized.cpu().numpy()
        if out.shape != np.shape(reward):
            raise ValueError(
                f"normalize_output_layer {type(layer).__name__} changed the reward "
                f"shape from {np.shape(reward)} to {out.shape}; it must preserve it."
            )
        return out


@hookimpl
def register_wrappers(register: Register) -> None:
    """Register the normalisation wrapper."""
    register("NormalizedRewardNet", NormalizedRewardNet)


@hookimpl
def register_norm_layers(register: Register) -> None:
    """Register the normalisation layers by name."""
    register("RunningNorm", RunningNorm)
    register("EMANorm", EMANorm)
    register("Identity", nn.Identity)
