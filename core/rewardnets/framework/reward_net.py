"""The abstract reward network and its wrapper hierarchy."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rewardnets.framework.inference import (
    PlanSlot,
    batch_size,
    predict_tensor,
    run_kernel,
    to_numpy,
)
from rewardnets.framework.kernels import (
    KernelBuilder,
    MomentsKernel,
    ProcessedKernel,
    RewardKernel,
)
from rewardnets.framework.networks import rename_state_dict_keys
from rewardnets.framework.preprocessing import TensorTree, _flags_tensor, make_preprocessor
from rewardnets.framework.spec import reward_net_spec
from rewardnets.plugin_registry.configurable import Configurable
from rewardnets.plugin_registry.registry import registry

__all__ = [
    "ForwardWrapper",
    "PredictProcessedWrapper",
    "RewardNet",
    "RewardNetWithVariance",
    "RewardNetWrapper",
]


def _batch_mismatch(batch: int, what: str, value: TensorTree) -> ValueError:
    return ValueError(
        f"Batch sizes differ: state has {batch} rows but {what} has {batch_size(value)}."
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
        # Caches of the data path, present from the start (a plan's guard
        # counts the instance's attributes).
        self._training_flags: Any = None
        self._kernel_plans = PlanSlot()

    def _build_preprocessors(self) -> None:
        self._prep_obs = make_preprocessor(self.observation_space, self.normalize_images, "state")
        self._prep_act = make_preprocessor(self.action_space, self.normalize_images, "action")

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._device_cache = None
        self._dtype_cache = None
        self._training_flags = None
        self._kernel_plans = PlanSlot()
        if "_prep_obs" not in self.__dict__:
            self._build_preprocessors()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # Closures are rebuilt from the spaces on load; they would not pickle.
        state.pop("_prep_obs", None)
        state.pop("_prep_act", None)
        state.pop("_training_flags", None)
        state.pop("_kernel_plans", None)
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
            batch = batch_size(state_th)
        action_th = None
        if action is not None:
            action_th = self._prep_act(action, device, dtype)
            if (
                action_th.shape[0] if isinstance(action_th, torch.Tensor) else batch_size(action_th)
            ) != batch:
                raise _batch_mismatch(batch, "action", action_th)
        next_th = None
        if next_state is not None:
            next_th = self._prep_obs(next_state, device, dtype)
            if batch_size(next_th) != batch:
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
        return predict_tensor(self, state, action, next_state, done)

    def predict(
        self,
        state: Any,
        action: Any,
        next_state: Any = None,
        done: Any = None,
    ) -> np.ndarray:
        """Compute rewards without gradients, in eval mode, as numpy ``(batch,)``.

        Runs the net's compiled kernel when it has one (see
        :meth:`reward_kernel`), else ``predict_th``.
        """
        reward = run_kernel(self, "predict", state, action, next_state, done)
        if reward is not None:
            return reward
        return to_numpy(self.predict_th(state, action, next_state, done))

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
        reward = run_kernel(self, "predict_processed", state, action, next_state, done, kwargs)
        if reward is not None:
            return reward
        return self.predict(state, action, next_state, done)

    def predict_processed_th(
        self,
        state: Any,
        action: Any,
        next_state: Any = None,
        done: Any = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """:meth:`predict_processed` as a tensor on the net's device.

        The base implementation is :meth:`predict_th`. A wrapper that
        post-processes on the device (``NormalizedRewardNet``) overrides both.
        """
        del kwargs
        return self.predict_th(state, action, next_state, done)

    def reward_kernel(self, builder: KernelBuilder) -> RewardKernel | None:
        """The numpy twin of :meth:`forward` in eval mode, or None (use torch).

        ``predict`` and ``predict_processed`` run it instead of torch while the
        net is unchanged (see :mod:`rewardnets.framework.inference`). A
        subclass that overrides ``forward`` without overriding this method
        keeps the torch path.

        Args:
            builder: Gives the kernels of the parts and records what they read.

        Returns:
            ``fn(batch) -> rewards``, or None: this net runs through torch.
        """
        del builder
        return None

    def processed_kernel(self, builder: KernelBuilder) -> ProcessedKernel | None:
        """The numpy twin of :meth:`predict_processed`: here, :meth:`reward_kernel`'s."""
        reward = builder.reward(self)

        def processed(batch: Any, kwargs: dict[str, Any]) -> np.ndarray:
            return reward(batch)

        return processed


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

    def reward_kernel(self, builder: KernelBuilder) -> RewardKernel | None:
        """The wrapped net's reward kernel."""
        return builder.reward(self.base)

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

    def moments_kernel(self, builder: KernelBuilder) -> MomentsKernel | None:
        """The numpy twin of :meth:`predict_reward_moments`, or None (the default)."""
        del builder
        return None


def _describe(obj: Any) -> str:
    return f"the class {obj.__qualname__}" if isinstance(obj, type) else f"a {type(obj).__name__}"


def _subclass_check(base: type, what: str) -> Callable[[Any], str | None]:
    def check(obj: Any) -> str | None:
        if isinstance(obj, type) and issubclass(obj, base):
            return None
        return f"expected {what}, got {_describe(obj)}"

    return check


def _callable_check(what: str) -> Callable[[Any], str | None]:
    def check(obj: Any) -> str | None:
        return None if callable(obj) else f"expected {what}, got {_describe(obj)}"

    return check


# What each kind of contribution must be; the registry checks every registration.
registry.set_kind_check(
    "reward_net", _subclass_check(RewardNet, "a subclass of rewardnets.RewardNet")
)
registry.set_kind_check(
    "wrapper", _subclass_check(RewardNetWrapper, "a subclass of rewardnets.RewardNetWrapper")
)
registry.set_kind_check(
    "potential", _subclass_check(nn.Module, "a subclass of torch.nn.Module built as cls(space)")
)
registry.set_kind_check(
    "norm_layer",
    _callable_check("a class or factory called as layer(num_features) -> nn.Module"),
)
registry.set_kind_check(
    "reward_type", _callable_check("a loader called as loader(reward_path, venv, **kwargs)")
)
registry.set_kind_check(
    "query_selector",
    _callable_check("a selector called as selector(pairs, member_returns, n_queries, rng)"),
)
registry.set_kind_check(
    "teacher",
    _callable_check("a factory called as factory(**options) -> teacher"),
)
