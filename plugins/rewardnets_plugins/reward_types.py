"""The reward types of ``load_reward``: which part of a saved net becomes the reward.

Each loader is ``loader(reward_path, venv, **kwargs) -> RewardFn``, with
``imitation``'s semantics. Every type that reads a file takes ``device``
(default CPU) and ``trust_pickle`` (default False; see
:func:`rewardnets.serialize.load`) and checks the net's spaces against
``venv``'s. ``RewardNet_normalized`` and ``RewardNet_std_added`` call
``predict_processed`` with the remaining options (``update_stats=False``
unless told otherwise, so that evaluating a reward never changes it); the
other types call ``predict``, which takes no options: any they are given are
ignored with a warning, as ``imitation`` ignores them.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from rewardnets import RewardNet, RewardNetWrapper, hookimpl
from rewardnets.hookspecs import Register
from rewardnets.serialize import (
    NetRewardFn,
    RewardFn,
    RewardOptionError,
    RewardTypeError,
    load_reward_net,
    wrapper_stack,
)
from rewardnets_plugins.ensemble import AddSTDRewardWrapper
from rewardnets_plugins.normalization import NormalizedRewardNet
from rewardnets_plugins.shaping import ShapedRewardNet

__all__ = [
    "load_normalized",
    "load_shaped",
    "load_std_added",
    "load_unnormalized",
    "load_unshaped",
    "load_zero",
]

_LOAD_OPTIONS = ("device", "trust_pickle")


def _split_options(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a loader's options into those of :func:`load` and the rest."""
    load_options = {"device": None, "trust_pickle": False}
    rest = {}
    for key, value in kwargs.items():
        if key in load_options:
            load_options[key] = value
        else:
            rest[key] = value
    return load_options, rest


def _load(reward_path: Any, venv: Any, options: Mapping[str, Any]) -> RewardNet:
    return load_reward_net(reward_path, venv, **options)


def _predict_processed_options(net: RewardNet) -> set[str]:
    """The keyword options that some ``predict_processed`` of ``net``'s modules names."""
    names: set[str] = set()
    for module in net.modules():
        if isinstance(module, RewardNet):
            parameters = inspect.signature(module.predict_processed).parameters.values()
            names.update(
                p.name
                for p in parameters
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                and p.name not in ("state", "action", "next_state", "done")
            )
    return names


def _check_call_options(reward_type: str, net: RewardNet, options: Mapping[str, Any]) -> None:
    known = {"update_stats", *_predict_processed_options(net)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise RewardOptionError(
            f"Reward type {reward_type!r} got unexpected options {unknown}; it takes "
            f"{', '.join(sorted({*_LOAD_OPTIONS, *known}))}."
        )


def _ignore_options(reward_type: str, options: Mapping[str, Any]) -> None:
    if options:
        warnings.warn(
            f"Reward type {reward_type!r} ignores the options {sorted(options)}, as imitation "
            f"does: it takes only {', '.join(_LOAD_OPTIONS)}.",
            UserWarning,
            stacklevel=4,
        )


def _find(net: RewardNet, cls: type | tuple[type, ...]) -> RewardNet | None:
    """Return the outermost net of the wrapper stack that is a ``cls``."""
    node: RewardNet = net
    while not isinstance(node, cls):
        if not isinstance(node, RewardNetWrapper):
            return None
        node = node.base
    return node


def _structure_error(
    reward_type: str, needs: str, net: RewardNet, path: Any, hint: str = ""
) -> RewardTypeError:
    return RewardTypeError(
        f"Reward type {reward_type!r} needs {needs}; the net in {str(path)!r} is "
        f"{' > '.join(wrapper_stack(net))}.{hint}"
    )


def load_normalized(reward_path: Any, venv: Any, **kwargs: Any) -> RewardFn:
    """The whole stack's processed reward; normalisation statistics frozen by default.

    The outermost net must be a ``NormalizedRewardNet``, as in ``imitation``.

    Options:
        update_stats: Fold each batch into the normalisation statistics.
        Any other option of the stack's ``predict_processed``.
    """
    load_options, options = _split_options(kwargs)
    net = _load(reward_path, venv, load_options)
    if not isinstance(net, NormalizedRewardNet):
        hint = " Use RewardNet_unnormalized (or RewardNet_shaped) for a net without one."
        if _find(net, AddSTDRewardWrapper) is not None:
            hint = " Use RewardNet_std_added for an ensemble under an AddSTDRewardWrapper."
        raise _structure_error(
            "RewardNet_normalized",
            "a NormalizedRewardNet as the outermost wrapper",
            net,
            reward_path,
            hint,
        )
    _check_call_options("RewardNet_normalized", net, options)
    return NetRewardFn(net, **options)


def load_unnormalized(reward_path: Any, venv: Any, **kwargs: Any) -> RewardFn:
    """The reward (``predict``) of the net beneath the outer ``NormalizedRewardNet`` wrappers."""
    load_options, options = _split_options(kwargs)
    _ignore_options("RewardNet_unnormalized", options)
    net = _load(reward_path, venv, load_options)
    while isinstance(net, NormalizedRewardNet):
        net = net.base
    return NetRewardFn(net, method="predict")


def load_shaped(reward_path: Any, venv: Any, **kwargs: Any) -> RewardFn:
    """The reward of the outermost ``ShapedRewardNet``, shaping included."""
    load_options, options = _split_options(kwargs)
    _ignore_options("RewardNet_shaped", options)
    net = _load(reward_path, venv, load_options)
    shaped = _find(net, ShapedRewardNet)
    if shaped is None:
        raise _structure_error(
            "RewardNet_shaped", "a ShapedRewardNet in the wrapper stack", net, reward_path
        )
    return NetRewardFn(shaped, method="predict")


def load_unshaped(reward_path: Any, venv: Any, **kwargs: Any) -> RewardFn:
    """The reward with the shaping stripped: the base of the outermost ``ShapedRewardNet``.

    A net without shaping gives its plain reward (``predict``), as in ``imitation``.
    """
    load_options, options = _split_options(kwargs)
    _ignore_options("RewardNet_unshaped", options)
    net = _load(reward_path, venv, load_options)
    shaped = _find(net, ShapedRewardNet)
    if isinstance(shaped, ShapedRewardNet):
        net = shaped.base
    return NetRewardFn(net, method="predict")


def load_std_added(reward_path: Any, venv: Any, **kwargs: Any) -> RewardFn:
    """``mean + alpha * std`` of the stack's ``AddSTDRewardWrapper`` (over an ensemble).

    Options:
        alpha: Weight of the standard deviation; default: the saved
            ``AddSTDRewardWrapper``'s ``default_alpha``.
        Any other option of the members' ``predict_processed`` (``update_stats``
        is False unless given).
    """
    load_options, options = _split_options(kwargs)
    net = _load(reward_path, venv, load_options)
    found = _find(net, AddSTDRewardWrapper)
    if found is None:
        raise _structure_error(
            "RewardNet_std_added",
            "an AddSTDRewardWrapper (over a RewardNetWithVariance such as RewardEnsemble)",
            net,
            reward_path,
            " Wrap the ensemble before saving: AddSTDRewardWrapper(ensemble, default_alpha=...).",
        )
    _check_call_options("RewardNet_std_added", found, options)
    return NetRewardFn(found, **options)


def _zeros(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    if isinstance(obs, Mapping):
        obs = next(iter(obs.values()))
    return np.zeros(len(obs), dtype=np.float32)


def load_zero(reward_path: Any, venv: Any, **kwargs: Any) -> RewardFn:
    """A reward of zero for every transition; the file is not read."""
    _, options = _split_options(kwargs)
    _ignore_options("zero", options)
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
