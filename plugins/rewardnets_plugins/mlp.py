"""MLP reward nets: ``BasicRewardNet`` and the potential ``BasicPotentialMLP``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rewardnets import Configurable, RewardNet, hookimpl
from rewardnets.hookspecs import Register
from rewardnets.networks import build_mlp, rename_state_dict_keys
from rewardnets.preprocessing import TensorTree, check_space, flat_dim
from rewardnets.reward_nets import ArrayKernel, Batch, KernelBuilder, RewardKernel
from rewardnets_plugins._inputs import flatten, require

__all__ = ["BasicPotentialMLP", "BasicRewardNet"]

_MLP_REFS = {"activation": "object", "normalize_input_layer": "norm_layer"}


class BasicRewardNet(RewardNet):
    """An MLP over the flattened, concatenated inputs it is told to use.

    Args:
        observation_space: The observation space (Dict spaces are flattened).
        action_space: The action space.
        use_state: Feed the current state.
        use_action: Feed the action.
        use_next_state: Feed the next state.
        use_done: Feed the episode-end flag.
        normalize_images: Scale uint8 image observations to [0, 1].
        **kwargs: Passed to :func:`rewardnets.build_mlp`; ``hid_sizes``
            defaults to ``(32, 32)``.
    """

    config_refs: ClassVar[dict[str, str]] = _MLP_REFS

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        use_state: bool = True,
        use_action: bool = True,
        use_next_state: bool = False,
        use_done: bool = False,
        normalize_images: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(observation_space, action_space, normalize_images)
        if not (use_state or use_action or use_next_state or use_done):
            raise ValueError("BasicRewardNet needs at least one input; all use_* are False.")
        self.use_state = use_state
        self.use_action = use_action
        self.use_next_state = use_next_state
        self.use_done = use_done
        obs_dim = flat_dim(observation_space)
        in_size = (
            obs_dim * (int(use_state) + int(use_next_state))
            + flat_dim(action_space) * int(use_action)
            + int(use_done)
        )
        self.mlp = build_mlp(
            **{
                "hid_sizes": (32, 32),
                **kwargs,
                "in_size": in_size,
                "out_size": 1,
                "squeeze_output": True,
            }
        )

    def forward(
        self,
        state: TensorTree,
        action: TensorTree | None,
        next_state: TensorTree | None,
        done: torch.Tensor | None,
    ) -> torch.Tensor:
        """Return the MLP's reward, shape ``(batch,)``."""
        owner = type(self).__name__
        inputs = []
        if self.use_state:
            inputs.append(flatten(state))
        if self.use_action:
            inputs.append(flatten(require(action, "action", owner)))
        if self.use_next_state:
            inputs.append(flatten(require(next_state, "next_state", owner)))
        if self.use_done:
            done_th = require(done, "done", owner)
            assert isinstance(done_th, torch.Tensor)
            inputs.append(done_th.reshape(-1, 1))
        x = inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=1)
        # self._modules["mlp"] is self.mlp without nn.Module.__getattr__'s slow
        # path (a failed attribute lookup first); this runs on every env step.
        mlp: nn.Module = self._modules["mlp"]  # type: ignore[assignment]
        return mlp(x)

    def reward_kernel(self, builder: KernelBuilder) -> RewardKernel | None:
        """The numpy twin of :meth:`forward`: the MLP on the concatenated inputs."""
        uses = builder.watch(self, "use_state", "use_action", "use_next_state", "use_done")
        obs_dim, act_dim = flat_dim(self.observation_space), flat_dim(self.action_space)
        widths = (obs_dim, act_dim, obs_dim, 1)
        used = [i for i, use in enumerate(uses) if use]
        builder.needs(*(("state", "action", "next_state", "done")[i] for i in used))
        mlp, out = builder.array(self._modules["mlp"], sum(widths[i] for i in used))
        if out != 0:  # not one reward per row
            return None
        if used == [0]:
            return lambda batch: mlp(batch[0])

        def reward(batch: Batch) -> np.ndarray:
            parts = [batch[i] if i != 3 else batch[3][:, None] for i in used]
            return mlp(parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1))

        return reward


class BasicPotentialMLP(Configurable, nn.Module):
    """A state potential ``phi(s)``: an MLP over the flattened observation.

    Args:
        observation_space: The observation space (Dict spaces are flattened).
        hid_sizes: Sizes of the hidden layers.
        **kwargs: Passed to :func:`rewardnets.build_mlp`.
    """

    config_refs: ClassVar[dict[str, str]] = _MLP_REFS

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        hid_sizes: tuple[int, ...] | list[int] = (32, 32),
        **kwargs: Any,
    ) -> None:
        super().__init__()
        check_space(observation_space, "observation_space")
        self._potential = build_mlp(
            hid_sizes=hid_sizes,
            in_size=flat_dim(observation_space),
            squeeze_output=True,
            **kwargs,
        )

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # imitation names the potential's network ``_potential_net``.
        rename_state_dict_keys(state_dict, prefix, {"_potential_net": "_potential"})
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, state: TensorTree) -> torch.Tensor:
        """Return the potential of each state, shape ``(batch,)``."""
        return self._potential(flatten(state))

    def array_kernel(self, builder: KernelBuilder, width: int) -> tuple[ArrayKernel, int]:
        """The numpy twin of :meth:`forward`, on flattened states."""
        return builder.array(self._modules["_potential"], width)


@hookimpl
def register_reward_nets(register: Register) -> None:
    """Register the MLP reward net."""
    register("BasicRewardNet", BasicRewardNet)


@hookimpl
def register_potentials(register: Register) -> None:
    """Register the MLP potential."""
    register("BasicPotentialMLP", BasicPotentialMLP)
