"""The reward types of ``load_reward``: which part of a saved net becomes the reward.

Each loader is ``loader(reward_path, venv, **kwargs) -> RewardFn``. Every type
that reads a file takes ``device`` (default CPU) and ``trust_pickle`` (default
False; see :func:`rewardnets.serialize.load`), checks the net's spaces against
``venv``'s, and calls ``predict_processed`` with ``update_stats=False`` unless
told otherwise, so that evaluating a reward never changes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rewardnets import RewardNet, RewardNetWithVariance, RewardNetWrapper, hookimpl
from rewardnets.hookspecs import Register
from rewardnets.serialize import (
    RewardFn,
    RewardTypeError,
    check_spaces,
    load,
    wrapper_stack,
)
from rewardnets_plugins.ensemble import AddSTDRewardWrapper
from rewardnets_plugins.normalization import NormalizedRewardNet
from rewardnets_plugins.shaping import ShapedRewardNet

__all__ = ["NetRewardFn"]

_LOAD_OPTIONS = {"device": None, "trust_pickle": False}


class NetRewardFn:
    """A reward function backed by a reward net.

    Attributes:
        reward_net: The net whose ``predict_processed`` gives the reward (for
            example, to save statistics updated with ``update_stats=True``).
        kwargs: Keyword arguments passed to every ``predict_processed`` call.
    """

    def __init__(self, reward_net: RewardNet, **kwargs: Any) -> None:
        self.reward_net = reward_net
        self.kwargs = kwargs

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        """Return the rewards of a batch of transitions."""
        return self.reward_net.predict_processed(obs, acts, next_obs, dones, **self.kwargs)

    def __repr__(self) -> str:
        stack = " > ".join(wrapper_stack(self.reward_net))
        return f"NetRewardFn({stack}, {self.kwargs})"


def _options(
    reward_type: str, kwargs: Mapping[str, Any], extra: Mapping[str, Any]
) -> dict[str, Any]:
    allowed = {**_LOAD_OPTIONS, **extra}
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(
            f"Reward type {reward_type!r} got unexpected options {unknown}; it takes "
            f"{', '.join(sorted(allowed))}."
        )
    return {**allowed, **kwargs}


def _load(reward_path: Any, venv: Any, options: Mapping[str, Any]) -> RewardNet:
    net = load(reward_path, device=options["device"], trust_pickle=options["trust_pickle"])
    check_spaces(net, venv, where=f"The reward net in {str(reward_path)!r}")
    return net


def _find(net: RewardNet, cls: type | tuple[type, ...]) -> RewardNet | None:
    """Return the outermost net of the wrapper stack that is a ``cls``."""
    node: RewardNet = net
    while not isinstance(node, cls):
        if not isinstance(node, RewardNetWrapper):
            return None
        node = node.base
    return node


def _structure_error(reward_type: str, needs: str, net: RewardNet, path: Any) -> RewardTypeError:
    return RewardTypeError(
        f"Reward type {reward_type!r} needs {needs} in the wrapper stack; the net in "
        f"{str(path)!r} is {' > '.join(wrapper_stack(net))}."
    )


def load_normalized(reward_path: Any, venv: Any, **kwargs: Any) -> RewardFn:
    """The whole stack's processed reward; normalisation statistics frozen by default.

    Options:
        update_stats: Fold each batch into the normalisation statistics.
    """
    options = _options("RewardNet_normalized", kwargs, {"update_stats": False})
    net = _load(reward_path, venv, options)
    return NetRewardFn(net, update_stats=bool(options["update_stats"]))


def load_unnormalized(reward_path: Any, venv: Any, **kwargs: Any) -> RewardFn:
    """The processed reward of the net beneath the outer ``NormalizedRewardNet`` wrappers."""
    options = _options("RewardNet_unnormalized", kwargs, {})
    net = _load(reward_path, venv, options)
    while isinstance(net, NormalizedRewardNet):
        net = net.base
    return NetRewardFn(net, update_stats=False)


def load_shaped(reward_path: Any, venv: Any, **kwargs: Any) -> RewardFn:
    """The reward of the outermost ``ShapedRewardNet``, shaping included."""
    options = _options("RewardNet_shaped", kwargs, {})
    net = _load(reward_path, venv, options)
    shaped = _find(net, ShapedRewardNet)
    if shaped is None:
        raise _structure_error("RewardNet_shaped", "a ShapedRewardNet", net, reward_path)
    return NetRewardFn(shaped, update_stats=False)


def load_unshaped(reward_path: Any, venv: Any, **kwargs: Any) -> RewardFn:
    """The reward of the outermost ``ShapedRewardNet``'s base: the shaping stripped."""
    options = _options("RewardNet_unshaped", kwargs, {})
    net = _load(reward_path, venv, options)
    shaped = _find(net, ShapedRewardNet)
    if shaped is None:
        raise _structure_error("RewardNet_unshaped", "a ShapedRewardNet", net, reward_path)
    assert isinstance(shaped, ShapedRewardNet)
    return NetRewardFn(shaped.base, update_stats=False)


def load_std_added(reward_path: Any, venv: Any, **kwargs: Any) -> RewardFn:
    """``mean + alpha * std`` of the outermost ensemble (``RewardNetWithVariance``).

    Options:
        alpha: Weight of the standard deviation; default: the saved
            ``AddSTDRewardWrapper``'s ``default_alpha``, or 0 without one.
    """
    options = _options("RewardNet_std_added", kwargs, {"alpha": None})
    net = _load(reward_path, venv, options)
    found = _find(net, (AddSTDRewardWrapper, RewardNetWithVariance))
    if found is None:
        raise _structure_error(
            "RewardNet_std_added",
            "an AddSTDRewardWrapper or a RewardNetWithVariance (such as RewardEnsemble)",
            net,
            reward_path,
        )
    if not isinstance(found, AddSTDRewardWrapper):
        found = AddSTDRewardWrapper(found)
    return NetRewardFn(found, alpha=options["alpha"], update_stats=False)


def _zeros(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    if isinstance(obs, Mapping):
        obs = next(iter(obs.values()))
    return np.zeros(len(obs), dtype=np.float32)


def load_zero(reward_path: Any, venv: Any, **kwargs: Any) -> RewardFn:
    """A reward of zero for every transition; the file is not read."""
    _options("zero", kwargs, {})
    return _zeros


@hookimpl
def register_reward_types(register: Register) -> None:
    """Register the built-in reward types."""
    register("RewardNet_normalized", load_normalized)
    register("RewardNet_unnormalized", load_unnormalized)
    register("RewardNet_shaped", load_shaped)
    register("RewardNet_unshaped", load_unshaped)
    register("RewardNet_std_added", load_std_added)
    register("zero", load_zero)
