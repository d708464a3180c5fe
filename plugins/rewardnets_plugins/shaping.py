"""Potential-based shaping: ``ShapedRewardNet`` and ``BasicShapedRewardNet``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces

from rewardnets import ForwardWrapper, RewardNet, hookimpl
from rewardnets.hookspecs import Register
from rewardnets.preprocessing import TensorTree, flat_dim
from rewardnets.reward_nets import Batch, KernelBuilder, RewardKernel
from rewardnets_plugins._inputs import require
from rewardnets_plugins.mlp import BasicPotentialMLP, BasicRewardNet

__all__ = ["BasicShapedRewardNet", "ShapedRewardNet"]

Potential = Callable[[TensorTree], torch.Tensor]


class ShapedRewardNet(ForwardWrapper):
    """Add potential shaping: ``r + discount_factor * (1 - done) * phi(s') - phi(s)``.

    The potential of a terminal state is zero. Shaping of this form leaves the
    optimal policies of every MDP unchanged (Ng et al., 1999).

    Args:
        base: The reward net to shape.
        potential: A module mapping preprocessed states to ``(batch,)`` potentials.
        discount_factor: The discount factor ``gamma`` of the shaping.
    """

    config_refs: ClassVar[dict[str, str]] = {"potential": "potential"}

    def __init__(
        self, base: RewardNet, potential: Potential, discount_factor: float = 0.99
    ) -> None:
        super().__init__(base)
        if not callable(potential):
            raise TypeError(f"Expected potential to be callable, got {type(potential).__name__}.")
        self.potential = potential
        self.discount_factor = float(discount_factor)

    def forward(
        self,
        state: TensorTree,
        action: TensorTree | None,
        next_state: TensorTree | None,
        done: torch.Tensor | None,
    ) -> torch.Tensor:
        """Return the shaped reward, differentiable in the base and the potential."""
        owner = type(self).__name__
        next_th = require(next_state, "next_state", owner)
        done_th = require(done, "done", owner)
        assert isinstance(done_th, torch.Tensor)
        base_reward = self.base(state, action, next_th, done_th)
        old = self.potential(state)
        new = self.discount_factor * (1 - done_th) * self.potential(next_th)
        return base_reward + new - old

    def reward_kernel(self, builder: KernelBuilder) -> RewardKernel | None:
        """The numpy twin of :meth:`forward`."""
        potential = self.potential
        if not hasattr(potential, "array_kernel") and not _flat_already(self.observation_space):
            return None  # a raw module would see the unflattened states
        builder.needs("next_state", "done")
        base = builder.reward(self.base)
        (discount,) = builder.watch(self, "discount_factor")
        phi, out = builder.array(potential, flat_dim(self.observation_space))
        if out != 0:
            return None

        def shaped(batch: Batch) -> np.ndarray:
            state, _, next_state, done = batch
            return base(batch) + discount * (1 - done) * phi(next_state) - phi(state)

        return shaped


def _flat_already(space: spaces.Space[Any]) -> bool:
    """Whether preprocessed states of ``space`` are already ``(batch, features)``."""
    if isinstance(space, spaces.Dict):
        return False
    if isinstance(space, (spaces.Box, spaces.MultiBinary)):
        return len(space.shape) == 1
    return True


class BasicShapedRewardNet(ShapedRewardNet):
    """A :class:`ShapedRewardNet` of a ``BasicRewardNet`` and a ``BasicPotentialMLP``.

    Args:
        observation_space: The observation space.
        action_space: The action space.
        reward_hid_sizes: Hidden sizes of the reward MLP.
        potential_hid_sizes: Hidden sizes of the potential MLP.
        use_state: Feed the current state to the reward MLP.
        use_action: Feed the action to the reward MLP.
        use_next_state: Feed the next state to the reward MLP.
        use_done: Feed the episode-end flag to the reward MLP.
        discount_factor: The discount factor of the shaping.
        **kwargs: Passed to both MLPs' :func:`rewardnets.build_mlp`.
    """

    config_refs: ClassVar[dict[str, str]] = {
        "activation": "object",
        "normalize_input_layer": "norm_layer",
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        *,
        reward_hid_sizes: tuple[int, ...] | list[int] = (32,),
        potential_hid_sizes: tuple[int, ...] | list[int] = (32, 32),
        use_state: bool = True,
        use_action: bool = True,
        use_next_state: bool = False,
        use_done: bool = False,
        discount_factor: float = 0.99,
        **kwargs: Any,
    ) -> None:
        base = BasicRewardNet(
            observation_space,
            action_space,
            use_state=use_state,
            use_action=use_action,
            use_next_state=use_next_state,
            use_done=use_done,
            hid_sizes=reward_hid_sizes,
            **kwargs,
        )
        potential = BasicPotentialMLP(observation_space, hid_sizes=potential_hid_sizes, **kwargs)
        super().__init__(base, potential, discount_factor=discount_factor)


@hookimpl
def register_reward_nets(register: Register) -> None:
    """Register the ready-made shaped MLP net."""
    register("BasicShapedRewardNet", BasicShapedRewardNet)


@hookimpl
def register_wrappers(register: Register) -> None:
    """Register the shaping wrapper."""
    register("ShapedRewardNet", ShapedRewardNet)
