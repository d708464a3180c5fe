"""The plugin module named by the ``rewardnets`` entry point of this package."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from rewardnets import ForwardWrapper, PredictProcessedWrapper, RewardNet, hookimpl
from rewardnets.hookspecs import Register
from rewardnets.preprocessing import TensorTree, flat_dim
from rewardnets.serialize import load_reward_net


def _flat(x: TensorTree) -> torch.Tensor:
    if isinstance(x, dict):
        return torch.cat([v.flatten(1) for v in x.values()], dim=1)
    return x.flatten(1)


class LinearRewardNet(RewardNet):
    """A linear reward of the flattened state and action."""

    def __init__(
        self, observation_space: spaces.Space[Any], action_space: spaces.Space[Any]
    ) -> None:
        super().__init__(observation_space, action_space)
        self.linear = torch.nn.Linear(flat_dim(observation_space) + flat_dim(action_space), 1)

    def forward(
        self,
        state: TensorTree,
        action: TensorTree | None,
        next_state: TensorTree | None,
        done: torch.Tensor | None,
    ) -> torch.Tensor:
        """Return the linear reward, shape ``(batch,)``."""
        assert action is not None, "LinearRewardNet needs the action"
        return self.linear(torch.cat([_flat(state), _flat(action)], dim=1)).squeeze(1)


class ScaledRewardNet(ForwardWrapper):
    """Multiply the reward by ``scale``; differentiable, so training sees it."""

    def __init__(self, base: RewardNet, scale: float = 1.0) -> None:
        super().__init__(base)
        self.scale = float(scale)

    def forward(
        self,
        state: TensorTree,
        action: TensorTree | None,
        next_state: TensorTree | None,
        done: torch.Tensor | None,
    ) -> torch.Tensor:
        """Return the scaled reward of the base."""
        return self.scale * self.base(state, action, next_state, done)


class ClippedRewardNet(PredictProcessedWrapper):
    """Clip the processed reward to ``[low, high]``; training does not see it."""

    def __init__(self, base: RewardNet, low: float = -1.0, high: float = 1.0) -> None:
        if low > high:
            raise ValueError(f"Expected low <= high, got low={low}, high={high}.")
        super().__init__(base)
        self.low, self.high = float(low), float(high)

    def predict_processed(
        self, state: Any, action: Any, next_state: Any = None, done: Any = None, **kwargs: Any
    ) -> np.ndarray:
        """Return the base's processed reward, clipped."""
        reward = self.base.predict_processed(state, action, next_state, done, **kwargs)
        return np.clip(reward, self.low, self.high)


def load_clipped(
    reward_path: Any, venv: Any, low: float = -1.0, high: float = 1.0, **kwargs: Any
) -> Any:
    """Reward type ``acme/clipped``: the saved net's processed reward, clipped.

    Statistics stay frozen; ``device`` and ``trust_pickle`` go to ``rewardnets.load``.
    """
    net = load_reward_net(reward_path, venv, **kwargs)

    def clipped(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        reward = net.predict_processed(obs, acts, next_obs, dones, update_stats=False)
        return np.clip(reward, low, high)

    return clipped


@hookimpl
def register_reward_nets(register: Register) -> None:
    """Contribute the linear net."""
    register("acme/LinearRewardNet", LinearRewardNet)


@hookimpl
def register_wrappers(register: Register) -> None:
    """Contribute the two wrappers."""
    register("acme/Scaled", ScaledRewardNet)
    register("acme/Clipped", ClippedRewardNet)


@hookimpl
def register_reward_types(register: Register) -> None:
    """Contribute the clipped reward type."""
    register("acme/clipped", load_clipped)
