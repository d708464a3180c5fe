"""The abstract reward network and its wrapper hierarchy."""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rewardnets._spec import Configurable, reward_net_spec
from rewardnets.networks import rename_state_dict_keys
from rewardnets.preprocessing import TensorTree, _flags_tensor, make_preprocessor

__all__ = [
    "ForwardWrapper",
    "PredictProcessedWrapper",
    "RewardNet",
    "RewardNetWithVariance",
    "RewardNetWrapper",
]


_CPU = torch.device("cpu")
_MODULE_TRAIN = nn.Module.train
_MODULE_SETATTR = nn.Module.__setattr__
# torch.no_grad() as a context manager costs several times more than flipping
# the flag; predict_th flips it directly (and restores it in a finally block).
_set_grad_enabled = torch._C._set_grad_enabled


def set_training(module: nn.Module, mode: bool) -> None:
    """Do what ``module.train(mode)`` does, an order of magnitude faster.

    ``nn.Module.train`` recurses through ``children()`` generators and sets the
    flag through ``nn.Module.__setattr__``, which checks for parameters,
    buffers and submodules on every write; for a small MLP that is tens of
    microseconds, paid twice per prediction in train mode. This walks
    ``_modules`` directly and writes the flag into each module's ``__dict__``,
    which is where ``__setattr__`` puts it. A module whose class overrides
    ``train`` or ``__setattr__`` is handed to its own ``train`` (with its
    subtree), so custom behaviour is kept.

    Args:
        module: The root of the tree.
        mode: ``True`` for training mode, ``False`` for evaluation mode.
    """
    stack: list[nn.Module | None] = [module]
    while stack:
        current = stack.pop()
        if current is None:  # a submodule slot registered as None
            continue
        cls = type(current)
        if cls.train is not _MODULE_TRAIN or cls.__setattr__ is not _MODULE_SETATTR:
            current.train(mode)
            continue
        attrs = current.__dict__
        attrs["training"] = mode
        children = attrs["_modules"]
        if children:
            stack.extend(children.values())


class TrainingFlags:
    """The ``training`` flags of a module tree, to flip without walking the tree.

    Built once per tree and reused while the tree is unchanged: switching to
    eval mode checks, module by module, that each module's children are the
    ones seen at build time (by identity) while it writes the flags, so adding,
    removing or replacing a submodule anywhere (through the ``nn.Module`` API
    or by editing ``_modules``) is noticed and the flags are rebuilt.

    Args:
        root: The root of the tree.

    Raises:
        TypeError: A module in the tree overrides ``train`` or ``__setattr__``;
            such a tree must be switched with :func:`set_training`.
    """

    __slots__ = ("_flags", "_root", "_structure")

    def __init__(self, root: nn.Module) -> None:
        structure: list[tuple[dict[str, Any], tuple[Any, ...]]] = []
        stack: list[nn.Module | None] = [root]
        while stack:
            current = stack.pop()
            if current is None:
                continue
            cls = type(current)
            if cls.train is not _MODULE_TRAIN or cls.__setattr__ is not _MODULE_SETATTR:
                raise TypeError(f"{cls.__name__} overrides train or __setattr__.")
            attrs = current.__dict__
            children = tuple(attrs["_modules"].values())
            structure.append((attrs, children))
            stack.extend(reversed(children))
        self._root = root.__dict__
        self._structure = structure
        self._flags = [attrs for attrs, _ in structure]

    def to_eval(self, root: nn.Module) -> bool:
        """Put ``root``'s tree in eval mode; return False if the tree has changed.

        When it returns False, the flags of some modules (all still in the
        tree) may already be False; build new flags and switch again.
        """
        if root.__dict__ is not self._root:
            return False
        for attrs, children in self._structure:
            modules = attrs["_modules"]
            if children:
                if tuple(modules.values()) != children:
                    return False
            elif modules:
                return False
            attrs["training"] = False
        return True

    def to_train(self) -> None:
        """Put the tree back in training mode."""
        for attrs in self._flags:
            attrs["training"] = True


class _WalkingSwitch:
    """Switch a tree with :func:`set_training`: for trees with a custom ``train``."""

    __slots__ = ("_root",)

    def __init__(self, root: nn.Module) -> None:
        self._root = root

    def to_eval(self, root: nn.Module) -> bool:
        set_training(root, False)
        return True

    def to_train(self) -> None:
        set_training(self._root, True)


def _batch_size(value: TensorTree) -> int:
    if isinstance(value, dict):
        return int(next(iter(value.values())).shape[0])
    if value.dim() == 0:
        raise ValueError("Expected a batch with a leading batch dimension, got a scalar.")
    return value.shape[0]


def _batch_mismatch(batch: int, what: str, value: TensorTree) -> ValueError:
    return ValueError(
        f"Batch sizes differ: state has {batch} rows but {what} has {_batch_size(value)}."
    )


class RewardNet(Configurable, nn.Module, abc.ABC):
    """A reward network: maps transitions ``(s, a, s', done)`` to rewards.

    Subclasses implement :meth:`forward`, which takes preprocessed tensors and
    returns a differentiable reward of shape ``(batch,)``. :meth:`predict` and
    :meth:`predict_processed` take numpy arrays and return numpy rewards for
    policy training.

    Args:
        observation_space: The environment's observation space.
        action_space: The environment's action space.
        normalize_images: Whether uint8 image observations are scaled to [0, 1].
    """

    observation_space: spaces.Space[Any]
    action_space: spaces.Space[Any]
    normalize_images: bool

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        normalize_images: bool = True,
    ) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.normalize_images = bool(normalize_images)
        self._build_preprocessors()
        self._device_cache: torch.device | None = None
        self._dtype_cache: torch.dtype | None = None

    def _build_preprocessors(self) -> None:
        self._prep_obs = make_preprocessor(self.observation_space, self.normalize_images, "state")
        self._prep_act = make_preprocessor(self.action_space, self.normalize_images, "action")

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._device_cache = None
        self._dtype_cache = None
        if "_prep_obs" not in self.__dict__:
            self._build_preprocessors()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # Closures are rebuilt from the spaces on load; they would not pickle.
        state.pop("_prep_obs", None)
        state.pop("_prep_act", None)
        state.pop("_training_flags", None)
        return state

    def _apply(self, fn: Any, recurse: bool = True) -> RewardNet:
        self._device_cache = None
        self._dtype_cache = None
        for module in self.modules():
            if isinstance(module, RewardNet) and module is not self:
                module._device_cache = None
                module._dtype_cache = None
        return super()._apply(fn, recurse)

    @abc.abstractmethod
    def forward(
        self,
        state: TensorTree,
        action: TensorTree | None,
        next_state: TensorTree | None,
        done: torch.Tensor | None,
    ) -> torch.Tensor:
        """Compute the differentiable reward of a batch of preprocessed transitions.

        Args:
            state: Preprocessed states, ``(batch, *obs_shape)``.
            action: Preprocessed actions, ``(batch, *action_shape)``.
            next_state: Preprocessed next states, ``(batch, *obs_shape)``.
            done: Float flags of episode ends, ``(batch,)``.

        Returns:
            Rewards of shape ``(batch,)``.
        """

    @property
    def spec(self) -> dict[str, Any]:
        """The net as plain data: registry name, kwargs and wrapper stack.

        ``rewardnets.build_reward_net(net.spec, obs_space, act_space)`` builds
        an equivalent net (with fresh weights).
        """
        return reward_net_spec(self)

    @property
    def device(self) -> torch.device:
        """The device of the net's parameters (CPU when it has none)."""
        if self._device_cache is None:
            first: torch.Tensor | None = next(self.parameters(), None)
            if first is None:
                first = next(self.buffers(), None)
            self._device_cache = first.device if first is not None else torch.device("cpu")
        return self._device_cache

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the net's parameters.

        A net without parameters follows ``torch.get_default_dtype()`` at the
        time it is asked, as in ``imitation``.
        """
        if self._dtype_cache is None:
            first = next(self.parameters(), None)
            if first is None:
                return torch.get_default_dtype()
            self._dtype_cache = first.dtype
        return self._dtype_cache

    def preprocess(
        self,
        state: Any,
        action: Any,
        next_state: Any,
        done: Any,
    ) -> tuple[TensorTree, TensorTree | None, TensorTree | None, torch.Tensor | None]:
        """Turn numpy (or tensor) transitions into tensors on the net's device.

        ``action``, ``next_state`` and ``done`` may be ``None`` for nets that do
        not use them; they stay ``None``.

        Returns:
            ``(state, action, next_state, done)`` as tensors; floating-point
            inputs and ``done`` in the net's dtype.

        Raises:
            ValueError: A shape does not match its space, or batch sizes differ.
        """
        device, dtype = self.device, self.dtype
        state_th = self._prep_obs(state, device, dtype)
        # (Batch sizes read inline: this runs on every environment step.)
        if isinstance(state_th, torch.Tensor) and state_th.ndim:
            batch = state_th.shape[0]
        else:
            batch = _batch_size(state_th)
        action_th = None
        if action is not None:
            action_th = self._prep_act(action, device, dtype)
            if (
                action_th.shape[0]
                if isinstance(action_th, torch.Tensor)
                else _batch_size(action_th)
            ) != batch:
                raise _batch_mismatch(batch, "action", action_th)
        next_th = None
        if next_state is not None:
            next_th = self._prep_obs(next_state, device, dtype)
            if _batch_size(next_th) != batch:
                raise _batch_mismatch(batch, "next_state", next_th)
        done_th = None
        if done is not None:
            done_th = _flags_tensor(done, device, dtype)
            if done_th.shape[0] != batch:
                raise _batch_mismatch(batch, "done", done_th)
        return state_th, action_th, next_th, done_th

    def predict_th(
        self,
        state: Any,
        action: Any,
        next_state: Any = None,
        done: Any = None,
    ) -> torch.Tensor:
        """Compute rewards without gradients, in eval mode, as a tensor.

        Returns:
            A tensor of shape ``(batch,)`` on the net's device.
        """
        # evaluating(self) and torch.no_grad(), spelled out: this runs on every
        # environment step, and the context managers (and nn.Module.train's
        # walk of the tree) cost more than the MLP's own Python overhead. The
        # flags to flip are cached on the net and checked against its tree.
        flags: TrainingFlags | _WalkingSwitch | None = None
        if self.training:
            cached = self.__dict__.get("_training_flags")
            flags = cached if cached is not None and cached.to_eval(self) else None
            if flags is None:
                flags = self._switch_to_eval()
        grad_was_enabled = torch.is_grad_enabled()
        try:
            if grad_was_enabled:
                _set_grad_enabled(False)
            inputs = self.preprocess(state, action, next_state, done)
            reward = self(*inputs)
        finally:
            if grad_was_enabled:
                _set_grad_enabled(True)
            if flags is not None:
                flags.to_train()
        state_th = inputs[0]
        batch = state_th.shape[0] if isinstance(state_th, torch.Tensor) else _batch_size(state_th)
        if reward.dim() != 1 or reward.shape[0] != batch:
            raise ValueError(
                f"{type(self).__name__}.forward returned a reward of shape "
                f"{tuple(reward.shape)}; expected ({batch},), one reward per "
                "transition."
            )
        return reward

    def _switch_to_eval(self) -> TrainingFlags | _WalkingSwitch:
        """Build (and cache) what switches this net's tree, and switch it to eval mode."""
        switch: TrainingFlags | _WalkingSwitch
        try:
            switch = TrainingFlags(self)
        except TypeError:  # a custom train() somewhere: call it, as nn.Module.train does
            switch = _WalkingSwitch(self)
        self.__dict__["_training_flags"] = switch
        switched = switch.to_eval(self)
        assert switched
        return switch

    def predict(
        self,
        state: Any,
        action: Any,
        next_state: Any = None,
        done: Any = None,
    ) -> np.ndarray:
        """Compute rewards without gradients, in eval mode, as numpy ``(batch,)``."""
        reward = self.predict_th(state, action, next_state, done)
        return reward.numpy() if reward.is_cpu else reward.cpu().numpy()

    def predict_processed(
        self,
        state: Any,
        action: Any,
        next_state: Any = None,
        done: Any = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Compute the post-processed reward used to train policies.

        The base implementation is :meth:`predict`; wrappers such as
        normalisation change it. Keyword arguments meant for wrappers are
        accepted and ignored here.
        """
        del kwargs
        return self.predict(state, action, next_state, done)


class RewardNetWrapper(RewardNet):
    """A reward net that wraps another, ``base``.

    Preprocessing, ``device`` and ``dtype`` are those of ``base``.

    Args:
        base: The wrapped reward net.
    """

    base: RewardNet

    def __init__(self, base: RewardNet) -> None:
        if not isinstance(base, RewardNet):
            raise TypeError(f"Expected base to be a RewardNet, got {type(base).__name__}.")
        super().__init__(base.observation_space, base.action_space, base.normalize_images)
        self.base = base

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # imitation keeps the wrapped net as ``_base``: accept its keys too.
        rename_state_dict_keys(state_dict, prefix, {"_base": "base"})
        super()._load_from_state_dict(state_dict, prefix, *args)

    @property
    def device(self) -> torch.device:
        """The device of the wrapped net."""
        return self.base.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the wrapped net."""
        return self.base.dtype

    def preprocess(
        self,
        state: Any,
        action: Any,
        next_state: Any,
        done: Any,
    ) -> tuple[TensorTree, TensorTree | None, TensorTree | None, torch.Tensor | None]:
        """Preprocess as the wrapped net does."""
        return self.base.preprocess(state, action, next_state, done)


class ForwardWrapper(RewardNetWrapper):
    """A wrapper that changes ``forward``; it must stay differentiable.

    Raises:
        ValueError: ``base`` is a :class:`PredictProcessedWrapper`; forward
            wrappers must be applied first, below any predict-processed wrapper.
    """

    def __init__(self, base: RewardNet) -> None:
        if isinstance(base, PredictProcessedWrapper):
            raise ValueError(
                f"Cannot apply the ForwardWrapper {type(self).__name__} on top of "
                f"the PredictProcessedWrapper {type(base).__name__}: its change "
                "to forward would be ignored by predict_processed. Apply "
                f"{type(self).__name__} first (closer to the base net), then "
                f"{type(base).__name__} around it."
            )
        super().__init__(base)


class PredictProcessedWrapper(RewardNetWrapper):
    """A wrapper that changes only ``predict_processed``.

    ``forward``, ``predict`` and ``predict_th`` are those of ``base``; keyword
    arguments this wrapper does not use are passed on to
    ``base.predict_processed``.
    """

    def forward(
        self,
        state: TensorTree,
        action: TensorTree | None,
        next_state: TensorTree | None,
        done: torch.Tensor | None,
    ) -> torch.Tensor:
        """Return the wrapped net's reward."""
        return self.base(state, action, next_state, done)

    def predict_th(
        self,
        state: Any,
        action: Any,
        next_state: Any = None,
        done: Any = None,
    ) -> torch.Tensor:
        """Return the wrapped net's ``predict_th``."""
        return self.base.predict_th(state, action, next_state, done)

    def predict(
        self,
        state: Any,
        action: Any,
        next_state: Any = None,
        done: Any = None,
    ) -> np.ndarray:
        """Return the wrapped net's ``predict``."""
        return self.base.predict(state, action, next_state, done)

    @abc.abstractmethod
    def predict_processed(
        self,
        state: Any,
        action: Any,
        next_state: Any = None,
        done: Any = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Compute the post-processed reward."""


class RewardNetWithVariance(RewardNet):
    """A reward net that can also estimate the variance of its reward."""

    @abc.abstractmethod
    def predict_reward_moments(
        self,
        state: Any,
        action: Any,
        next_state: Any = None,
        done: Any = None,
        **kwargs: Any,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the mean and variance of the reward, each numpy ``(batch,)``."""
