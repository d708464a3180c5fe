"""Reward normalisation: ``NormalizedRewardNet`` and the norm layers by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from rewardnets import PredictProcessedWrapper, RewardNet, hookimpl
from rewardnets.hookspecs import Register
from rewardnets.networks import BaseNorm, EMANorm, RunningNorm, evaluating
from rewardnets.reward_nets import (
    Batch,
    KernelBuilder,
    ProcessedKernel,
    processed_tensor,
    run_kernel,
)

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

        On the CPU the whole stack usually runs as one compiled numpy kernel
        (:meth:`processed_kernel`); otherwise the reward stays on the net's
        device until the standardised result is copied back, once.

        Args:
            state: States.
            action: Actions.
            next_state: Next states.
            done: Episode-end flags.
            update_stats: Fold this batch into the statistics afterwards.
            **kwargs: Passed on to the base's ``predict_processed``.
        """
        _check_flag(update_stats)
        reward = run_kernel(
            self,
            "predict_processed",
            state,
            action,
            next_state,
            done,
            {"update_stats": update_stats, **kwargs},
        )
        if reward is not None:
            return reward
        normalized = self.predict_processed_th(
            state, action, next_state, done, update_stats=update_stats, **kwargs
        )
        return normalized.cpu().numpy()

    def predict_processed_th(
        self,
        state: Any,
        action: Any,
        next_state: Any = None,
        done: Any = None,
        update_stats: bool = True,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Like :meth:`predict_processed`, but return a tensor on the net's device.

        The base's processed reward is taken as a tensor where the base allows
        it (``rewardnets.reward_nets.processed_tensor``), so on a GPU nothing
        is copied to the host.
        """
        _check_flag(update_stats)
        layer = self.normalize_output_layer
        reward = processed_tensor(self.base, state, action, next_state, done, kwargs)
        with torch.no_grad():
            if isinstance(layer, BaseNorm):
                normalized = layer.normalize(reward)
            else:
                with evaluating(layer):
                    normalized = layer(reward.reshape(-1, 1)).reshape(-1)
            if normalized.shape != reward.shape:
                raise _shape_changed(layer, tuple(reward.shape), tuple(normalized.shape))
            update = getattr(layer, "update_stats", None)
            if update_stats and callable(update):
                update(reward)
        return normalized

    def processed_kernel(self, builder: KernelBuilder) -> ProcessedKernel | None:
        """The numpy twin of :meth:`predict_processed`, on views of the statistics."""
        base = builder.processed(self.base)
        norm = builder.norm(self.normalize_output_layer)

        def normalized(batch: Batch, kwargs: dict[str, Any]) -> np.ndarray:
            update = _check_flag(kwargs.get("update_stats", True))
            if "update_stats" in kwargs:  # consumed here, as the method's parameter
                kwargs = (
                    {k: v for k, v in kwargs.items() if k != "update_stats"}
                    if len(kwargs) > 1
                    else {}
                )
            return norm.standardize(base(batch, kwargs), bool(update))

        return normalized


def _check_flag(update_stats: Any) -> bool:
    """``update_stats`` as given, if it is a bool: a string such as "False" is truthy."""
    if not isinstance(update_stats, (bool, np.bool_)):
        raise TypeError(
            f"Expected update_stats to be True or False, got {type(update_stats).__name__}: "
            f"{update_stats!r}."
        )
    return bool(update_stats)


def _shape_changed(layer: nn.Module, before: tuple[int, ...], after: tuple[int, ...]) -> ValueError:
    return ValueError(
        f"normalize_output_layer {type(layer).__name__} changed the reward shape from "
        f"{before} to {after}; it must preserve it."
    )


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
