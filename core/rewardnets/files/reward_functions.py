"""Saved nets as reward functions: ``load_reward``, its reward-function classes and space checks.

A reward type (``RewardNet_normalized``, ``RewardNet_shaped``…) is a loader
in the plugin registry; :func:`load_reward` looks it up, calls it and checks
what it returns. :func:`load_reward_net` is how a loader reads its file (load,
then compare the net's spaces with the environment's), :class:`NetRewardFn`
what it returns.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from rewardnets.errors import RewardNetsError
from rewardnets.files.format import SpaceMismatchError
from rewardnets.files.serialize import PathLike, load, wrapper_stack
from rewardnets.framework.preprocessing import is_image_space
from rewardnets.framework.reward_net import RewardNet
from rewardnets.plugin_registry.registry import registry

__all__ = [
    "NetRewardFn",
    "RewardFn",
    "RewardOptionError",
    "RewardTypeError",
    "SpaceDifferenceWarning",
    "ValidateRewardFn",
    "check_spaces",
    "load_reward",
    "load_reward_net",
]

#: A reward function: ``(obs, acts, next_obs, dones) -> rewards`` of shape ``(batch,)``.
RewardFn = Callable[[Any, Any, Any, Any], np.ndarray]


class RewardTypeError(RewardNetsError, TypeError, ValueError):
    """A saved net lacks the structure a reward type needs (e.g. no shaping).

    A ``TypeError``, as ``imitation``'s structure errors are (and a
    ``ValueError``, as in earlier rewardnets releases).
    """


class RewardOptionError(RewardNetsError, TypeError):
    """A reward type was given an option it does not take; the message lists those it does."""


class SpaceDifferenceWarning(UserWarning):
    """A saved net's spaces differ from the env's in bounds or float dtype only."""


def _space_differences(saved: Any, env: Any, path: str) -> tuple[str | None, list[str]]:
    """Compare two spaces: the structural difference (if any) and the harmless ones.

    Structural: the space type, a Box's shape, non-float dtype or image-ness,
    ``n``/``nvec``/``start`` of the discrete spaces, a Dict's keys. Harmless:
    a Box's bounds, or one float dtype for another.
    """
    where = f" at {path}" if path else ""
    if type(saved) is not type(env):
        return f"{type(saved).__name__} vs {type(env).__name__}{where}", []
    if isinstance(saved, spaces.Dict):
        if list(saved.spaces) != list(env.spaces):
            return f"Dict keys {sorted(saved.spaces)} vs {sorted(env.spaces)}{where}", []
        soft: list[str] = []
        for key in saved.spaces:
            hard, more = _space_differences(saved[key], env[key], f"{path}[{key!r}]")
            if hard is not None:
                return hard, []
            soft += more
        return None, soft
    if isinstance(saved, spaces.Box):
        if saved.shape != env.shape:
            return f"Box shape {saved.shape} vs {env.shape}{where}", []
        if is_image_space(saved) != is_image_space(env):
            return f"an image Box vs a non-image Box{where}", []
        soft = []
        if saved.dtype != env.dtype:
            if saved.dtype.kind != "f" or env.dtype.kind != "f":
                return f"Box dtype {saved.dtype} vs {env.dtype}{where}", []
            soft.append(f"Box dtype {saved.dtype} vs {env.dtype}{where}")
        if not (np.array_equal(saved.low, env.low) and np.array_equal(saved.high, env.high)):
            soft.append(f"Box bounds {saved} vs {env}{where}")
        return None, soft
    if saved != env:
        return f"{saved} vs {env}{where}", []
    return None, []


def check_spaces(net: RewardNet, venv: Any, where: str = "The reward net") -> None:
    """Check that ``net`` was built for ``venv``'s observation and action spaces.

    Spaces must agree in structure: the space type, a Box's shape and whether
    it is an image, a discrete space's ``n``/``nvec``, a Dict's keys, a
    non-float dtype. Different Box bounds, or another float dtype, do not change
    what the net computes: they are allowed, with a warning.

    Args:
        net: The reward net.
        venv: A ``VecEnv`` (or any env with ``observation_space`` and ``action_space``).
        where: How the message names the net (e.g. its file).

    Raises:
        SpaceMismatchError: A space differs in structure; the message gives both.
        TypeError: ``venv`` has no spaces.
    """
    for what in ("observation", "action"):
        expected = getattr(venv, f"{what}_space", None)
        got = getattr(net, f"{what}_space")
        if expected is None:
            raise TypeError(
                f"Expected venv to be a VecEnv with an {what}_space, got {type(venv).__name__}."
            )
        hard, soft = _space_differences(got, expected, "")
        if hard is not None:
            raise SpaceMismatchError(
                f"{where} was saved for {what} space {got}, but the environment "
                f"has {what} space {expected} ({hard}). Expected the same {what} space."
            )
        if soft:
            warnings.warn(
                f"{where} was saved for {what} space {got}; the environment has {expected}. "
                f"Loading anyway: only {'; '.join(soft)} differ, which the net does not "
                "depend on.",
                SpaceDifferenceWarning,
                stacklevel=3,
            )


def _batch_size(obs: Any) -> int:
    if isinstance(obs, Mapping):
        first = next(iter(obs.values()))
        return len(first)
    return len(obs)


class ValidateRewardFn:
    """A reward function whose output is checked to be one reward per transition.

    The class of ``imitation.rewards.serialize`` of the same name, with the same
    constructor; :func:`load_reward` returns one. Attributes of the wrapped
    function (such as ``reward_net``) are reachable on this object.

    Args:
        reward_fn: The reward function to check.
        reward_type: The reward type it came from, for error messages.

    Raises:
        TypeError: ``reward_fn`` is not callable.
    """

    def __init__(self, reward_fn: RewardFn, reward_type: str | None = None) -> None:
        if not callable(reward_fn):
            raise TypeError(f"Expected reward_fn to be callable, got {type(reward_fn).__name__}.")
        self.reward_fn = reward_fn
        self.reward_type = reward_type

    def __call__(self, state: Any, action: Any, next_state: Any, done: Any) -> np.ndarray:
        """Return the rewards of a batch of transitions, numpy ``(batch,)``.

        Raises:
            ValueError: The wrapped function did not return one reward per transition.
        """
        rewards = np.asarray(self.reward_fn(state, action, next_state, done))
        batch = _batch_size(state)
        if rewards.shape != (batch,):
            what = (
                f"Reward type {self.reward_type!r}"
                if self.reward_type
                else f"Reward function {self.reward_fn!r}"
            )
            raise ValueError(
                f"{what} returned rewards of shape {rewards.shape} for a batch of "
                f"{batch}; expected ({batch},)."
            )
        return rewards

    def __getattr__(self, name: str) -> Any:
        if name == "reward_fn" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.reward_fn, name)

    def __repr__(self) -> str:
        label = f"{self.reward_type!r}: " if self.reward_type else ""
        return f"<reward function {label}{self.reward_fn!r}>"


class NetRewardFn:
    """A reward function backed by a reward net: what a reward-type loader returns.

    Calls ``reward_net.<method>(obs, acts, next_obs, dones, **kwargs)``. For
    ``method="predict_processed"``, ``update_stats`` defaults to False, so
    evaluating the reward never changes the net's statistics.

    Args:
        reward_net: The net whose output is the reward.
        method: ``"predict_processed"`` (post-processing included) or
            ``"predict"`` (the net's plain reward).
        **kwargs: Passed to every call.

    Attributes:
        reward_net: The net (for example, to save statistics updated with
            ``update_stats=True``).
        method: The method called.
        kwargs: The keyword arguments of every call.
    """

    def __init__(
        self, reward_net: RewardNet, method: str = "predict_processed", **kwargs: Any
    ) -> None:
        if not isinstance(reward_net, RewardNet):
            raise TypeError(f"Expected a RewardNet, got {type(reward_net).__name__}.")
        if method not in ("predict_processed", "predict"):
            raise ValueError(f"Expected method 'predict_processed' or 'predict', got {method!r}.")
        if method == "predict_processed":
            kwargs = {"update_stats": False, **kwargs}
        flag = kwargs.get("update_stats", False)
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(
                f"Expected update_stats to be True or False, got {type(flag).__name__}: {flag!r}."
            )
        self.reward_net = reward_net
        self.method = method
        self.kwargs = kwargs

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        """Return the rewards of a batch of transitions."""
        predict = getattr(self.reward_net, self.method)
        return predict(obs, acts, next_obs, dones, **self.kwargs)

    def __repr__(self) -> str:
        stack = " > ".join(wrapper_stack(self.reward_net))
        return f"NetRewardFn({stack}.{self.method}, {self.kwargs})"


def load_reward_net(
    reward_path: PathLike,
    venv: Any,
    *,
    device: str | torch.device | None = None,
    trust_pickle: bool = False,
) -> RewardNet:
    """Load the net of a reward-type loader: :func:`load`, then :func:`check_spaces`.

    Every built-in reward type reads its file this way; a plugin's loader
    should too, so that its type honours ``device`` and ``trust_pickle`` and
    refuses a net saved for other spaces, like the others.

    Args:
        reward_path: The file.
        venv: The environment the reward is for.
        device: Where to put the net; ``None`` means the CPU.
        trust_pickle: See :func:`load`.

    Returns:
        The net, its spaces checked against ``venv``'s.

    Raises:
        SpaceMismatchError: The net's spaces differ from ``venv``'s in structure.
        TypeError: ``trust_pickle`` is not a bool.
    """
    if not isinstance(trust_pickle, bool):
        raise TypeError(f"Expected trust_pickle to be True or False, got {trust_pickle!r}.")
    net = load(reward_path, device=device, trust_pickle=trust_pickle)
    check_spaces(net, venv, where=f"The reward net in {str(reward_path)!r}")
    return net


def load_reward(reward_type: str, reward_path: PathLike, venv: Any, **kwargs: Any) -> RewardFn:
    """Load a saved reward net as a reward function for ``venv``.

    ``reward_type`` names a loader in the plugin registry. The built-in types:

    ``RewardNet_normalized``
        The full stack's ``predict_processed``, normalisation included; its
        statistics stay frozen unless ``update_stats=True`` is passed.
    ``RewardNet_unnormalized``
        The net beneath any outer ``NormalizedRewardNet`` wrappers.
    ``RewardNet_shaped``
        The reward of the (outermost) ``ShapedRewardNet``; an error if the
        stack has none.
    ``RewardNet_unshaped``
        The reward of that ``ShapedRewardNet``'s base: the shaping stripped.
    ``RewardNet_std_added``
        ``mean + alpha * std`` of an ensemble (``alpha`` defaults to the
        saved ``AddSTDRewardWrapper``'s ``default_alpha``, else 0).
    ``zero``
        Zeros; the file is not read.

    Args:
        reward_type: The registered reward type.
        reward_path: The file, written by :func:`save` or ``torch.save``.
        venv: The environment the reward is for; the net's spaces must match it.
        **kwargs: Options of the reward type; all built-in net types take
            ``device`` and ``trust_pickle`` (see :func:`load`).

    Returns:
        ``reward_fn(obs, acts, next_obs, dones) -> rewards`` of shape ``(batch,)``.

    Raises:
        UnknownNameError: No plugin provides ``reward_type``; close matches listed.
        RewardTypeError: The saved net lacks what the type needs.
        SpaceMismatchError: The net's spaces are not ``venv``'s.
    """
    if not isinstance(reward_type, str):
        raise TypeError(f"Expected reward_type to be a string, got {type(reward_type).__name__}.")
    loader = registry.get("reward_type", reward_type)
    fn = loader(reward_path, venv, **kwargs)
    if not callable(fn):
        raise TypeError(
            f"The loader of reward type {reward_type!r} returned a {type(fn).__name__}; "
            "expected a callable reward function."
        )
    net = getattr(fn, "reward_net", None)
    if isinstance(net, RewardNet) and not isinstance(fn, NetRewardFn):
        # A plugin's reward function that exposes its net: check it like ours.
        check_spaces(net, venv, where=f"The reward net of reward type {reward_type!r}")
    return ValidateRewardFn(fn, reward_type)
