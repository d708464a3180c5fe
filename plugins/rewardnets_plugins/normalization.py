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

        With the statistics in CPU memory, the base's numpy reward is
        standardised (and folded into the statistics) on the host, without a
        round trip through torch. Elsewhere the reward stays on the device
        until the standardised result is copied back, once.

        Args:
            state: States.
            action: Actions.
            next_state: Next states.
            done: Episode-end flags.
            update_stats: Fold this batch into the statistics afterwards.
            **kwargs: Passed on to the base's ``predict_processed``.
        """
        layer = self.normalize_output_layer
        if isinstance(layer, BaseNorm):
            stats = layer._buffers["running_mean"]
            if stats is not None and stats.is_cpu:
                reward = _processed_reward(self.base, state, action, next_state, done, kwargs)
                out = layer.normalize_numpy(reward, update_stats)
                if out.shape != reward.shape:  # (a torch.Size is a tuple)
                    raise _shape_changed(layer, tuple(reward.shape), out.shape)
                return out
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

        The base's reward is computed as a tensor where the base allows it (a
        net whose ``predict_processed`` is its ``predict``, or another
        ``NormalizedRewardNet``), so on a GPU nothing is copied to the host.
        """
        layer = self.normalize_output_layer
        reward = _processed_tensor(self.base, state, action, next_state, done, kwargs)
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


def _shape_changed(layer: nn.Module, before: tuple[int, ...], after: tuple[int, ...]) -> ValueError:
    return ValueError(
        f"normalize_output_layer {type(layer).__name__} changed the reward shape from "
        f"{before} to {after}; it must preserve it."
    )


def _is_plain_prediction(base: RewardNet) -> bool:
    """Whether ``base.predict_processed`` is ``RewardNet``'s own, over its own ``predict``.

    Looked up on the instance, so an override on the instance (or its class)
    counts as an override; then the base's processed reward is its ``predict_th``.
    """
    processed = getattr(base.predict_processed, "__func__", None)
    predict = getattr(base.predict, "__func__", None)
    return processed is RewardNet.predict_processed and predict is RewardNet.predict


def _processed_reward(
    base: RewardNet, state: Any, action: Any, next_state: Any, done: Any, kwargs: dict[str, Any]
) -> np.ndarray | torch.Tensor:
    """The base's processed reward: a CPU tensor when it is the plain prediction."""
    if _is_plain_prediction(base):
        return base.predict_th(state, action, next_state, done)
    return base.predict_processed(state, action, next_state, done, **kwargs)


def _processed_tensor(
    base: RewardNet,
    state: Any,
    action: Any,
    next_state: Any,
    done: Any,
    kwargs: dict[str, Any],
) -> torch.Tensor:
    """The base's processed reward as a tensor on its device, without a host round trip."""
    if isinstance(base, NormalizedRewardNet) and _is_own_method(base, "predict_processed"):
        return base.predict_processed_th(state, action, next_state, done, **kwargs)
    if _is_plain_prediction(base):
        return base.predict_th(state, action, next_state, done)
    reward = base.predict_processed(state, action, next_state, done, **kwargs)
    return torch.as_tensor(reward, device=base.device)


def _is_own_method(net: NormalizedRewardNet, name: str) -> bool:
    """Whether ``net.<name>`` is ``NormalizedRewardNet``'s, not an override."""
    return getattr(getattr(net, name), "__func__", None) is getattr(NormalizedRewardNet, name)


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
