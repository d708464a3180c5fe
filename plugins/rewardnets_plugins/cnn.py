"""CNN reward nets: ``CNNRewardNet`` (alias ``CnnRewardNet``) and ``BasicPotentialCNN``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import nn

from rewardnets import Configurable, RewardNet, hookimpl
from rewardnets.hookspecs import Register
from rewardnets.networks import build_cnn, rename_state_dict_keys
from rewardnets.preprocessing import TensorTree, is_image_space
from rewardnets_plugins._inputs import require

__all__ = ["BasicPotentialCNN", "CNNRewardNet", "CnnRewardNet"]

_CNN_REFS = {"activation": "object"}


def _image_channels(space: spaces.Space[Any], hwc_format: bool, owner: str) -> int:
    if not is_image_space(space):
        raise ValueError(
            f"{owner} needs uint8 image observations: a Box of 3 dimensions with "
            f"bounds [0, 255]; got {space}."
        )
    assert isinstance(space, spaces.Box)
    return int(space.shape[-1] if hwc_format else space.shape[0])


def _to_chw(x: TensorTree, hwc_format: bool) -> torch.Tensor:
    assert isinstance(x, torch.Tensor)
    return x.permute(0, 3, 1, 2) if hwc_format else x


class CNNRewardNet(RewardNet):
    """A CNN reward net over image observations.

    With a Discrete action space and ``use_action``, the CNN has one output
    head per action and the action selects its head; ``use_done`` doubles the
    heads (one set for transitions that end an episode).

    Args:
        observation_space: A uint8 image Box, HWC or CHW.
        action_space: Discrete when ``use_action``.
        use_state: Feed the current state.
        use_action: Select the output head by action.
        use_next_state: Feed the next state (stacked on the channels).
        use_done: Select the head by the episode-end flag too.
        hwc_format: Whether observations are height x width x channels.
        normalize_images: Scale uint8 images to [0, 1].
        **kwargs: Passed to :func:`rewardnets.build_cnn`; ``hid_channels``
            defaults to ``(32, 32)``.
    """

    config_refs: ClassVar[dict[str, str]] = _CNN_REFS

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        use_state: bool = True,
        use_action: bool = True,
        use_next_state: bool = False,
        use_done: bool = False,
        hwc_format: bool = True,
        normalize_images: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(observation_space, action_space, normalize_images)
        owner = type(self).__name__
        if not (use_state or use_next_state):
            raise ValueError(f"{owner} needs use_state or use_next_state to be True.")
        if use_action and not isinstance(action_space, spaces.Discrete):
            raise ValueError(
                f"{owner} with use_action=True needs a Discrete action space, got "
                f"{action_space}; pass use_action=False or use BasicRewardNet."
            )
        self.use_state = use_state
        self.use_action = use_action
        self.use_next_state = use_next_state
        self.use_done = use_done
        self.hwc_format = hwc_format
        channels = _image_channels(observation_space, hwc_format, owner)
        in_channels = channels * (int(use_state) + int(use_next_state))
        out_size = int(action_space.n) if use_action else 1  # type: ignore[attr-defined]
        if use_done:
            out_size *= 2
        self.cnn = build_cnn(
            **{
                "hid_channels": (32, 32),
                **kwargs,
                "in_channels": in_channels,
                "out_size": out_size,
                "squeeze_output": out_size == 1,
            }
        )

    def forward(
        self,
        state: TensorTree,
        action: TensorTree | None,
        next_state: TensorTree | None,
        done: torch.Tensor | None,
    ) -> torch.Tensor:
        """Return the reward of the selected head, shape ``(batch,)``."""
        owner = type(self).__name__
        images = []
        if self.use_state:
            images.append(_to_chw(state, self.hwc_format))
        if self.use_next_state:
            images.append(_to_chw(require(next_state, "next_state", owner), self.hwc_format))
        x = images[0] if len(images) == 1 else torch.cat(images, dim=1)
        out: torch.Tensor = self.cnn(x)
        if not (self.use_action or self.use_done):
            return out
        selector: torch.Tensor | None = None
        if self.use_action:
            act = require(action, "action", owner)
            assert isinstance(act, torch.Tensor)
            selector = act
        if self.use_done:
            done_th = require(done, "done", owner)
            assert isinstance(done_th, torch.Tensor)
            flags = torch.stack([1 - done_th, done_th], dim=1)
            if selector is None:
                selector = flags
            else:  # heads ordered [not done: actions..., done: actions...]
                selector = (flags[:, :, None] * selector[:, None, :]).reshape(flags.shape[0], -1)
        assert selector is not None
        return (out * selector).sum(dim=1)


#: The spelling ``imitation`` also accepts.
CnnRewardNet = CNNRewardNet


class BasicPotentialCNN(Configurable, nn.Module):
    """A state potential ``phi(s)``: a CNN over image observations.

    Args:
        observation_space: A uint8 image Box.
        hid_sizes: Channels of each convolution.
        hwc_format: Whether observations are height x width x channels.
        **kwargs: Passed to :func:`rewardnets.build_cnn`.
    """

    config_refs: ClassVar[dict[str, str]] = _CNN_REFS

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        hid_sizes: tuple[int, ...] | list[int] = (32, 32),
        hwc_format: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.hwc_format = hwc_format
        channels = _image_channels(observation_space, hwc_format, type(self).__name__)
        self._potential = build_cnn(
            in_channels=channels, hid_channels=hid_sizes, squeeze_output=True, **kwargs
        )

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # imitation names the potential's network ``_potential_net``.
        rename_state_dict_keys(state_dict, prefix, {"_potential_net": "_potential"})
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, state: TensorTree) -> torch.Tensor:
        """Return the potential of each state, shape ``(batch,)``."""
        return self._potential(_to_chw(state, self.hwc_format))


@hookimpl
def register_reward_nets(register: Register) -> None:
    """Register the CNN reward net."""
    register("CNNRewardNet", CNNRewardNet, aliases=("CnnRewardNet",))


@hookimpl
def register_potentials(register: Register) -> None:
    """Register the CNN potential."""
    register("BasicPotentialCNN", BasicPotentialCNN)
