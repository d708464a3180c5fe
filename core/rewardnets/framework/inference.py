"""The data path of a reward call, in one place.

``net.predict_processed(obs, acts, next_obs, dones)`` on numpy arrays goes:

1. ``predict_processed`` of the outermost net: a wrapper's post-processing
   (normalisation, ``mean + alpha * std``) around its base's
   ``predict_processed``; for a plain net it is ``predict``;
2. ``predict`` = :func:`to_numpy` of ``predict_th``;
3. ``predict_th`` = :func:`predict_tensor`: eval mode and no gradients for the
   call, ``net.preprocess`` (numpy to tensors on the net's device: one-hot,
   image scaling, Dict keys, dtype), ``net.forward``, and the check that there
   is one reward per transition;
4. back out through :func:`to_numpy` and the wrappers' post-processing.

The speed-ups of that path live here: switching a module tree to eval mode
without ``nn.Module.train``'s walk (:class:`TrainingFlags`, cached on the net
and checked against its tree on every call), flipping the grad flag without
the ``no_grad`` context manager. (``NormalizedRewardNet`` adds one more: it
takes its base's reward as a tensor when the base does no post-processing of
its own, and standardises it on the host, see ``BaseNorm.normalize_numpy``.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rewardnets.framework.preprocessing import TensorTree

__all__ = ["TrainingFlags", "predict_tensor", "set_training", "to_numpy"]

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


def predict_tensor(
    net: Any, state: Any, action: Any, next_state: Any = None, done: Any = None
) -> torch.Tensor:
    """``net``'s reward for a batch, in eval mode and without gradients, as a tensor.

    This is ``RewardNet.predict_th``. The net's training flags are restored
    afterwards.

    Args:
        net: A ``RewardNet``.
        state: States (numpy or tensors).
        action: Actions, or None for a net that does not use them.
        next_state: Next states, or None.
        done: Episode-end flags, or None.

    Returns:
        A tensor of shape ``(batch,)`` on the net's device.

    Raises:
        ValueError: ``forward`` did not return one reward per transition.
    """
    # evaluating(net) and torch.no_grad(), spelled out: this runs on every
    # environment step, and the context managers (and nn.Module.train's
    # walk of the tree) cost more than the MLP's own Python overhead. The
    # flags to flip are cached on the net and checked against its tree.
    flags: TrainingFlags | _WalkingSwitch | None = None
    if net.training:
        cached = net.__dict__.get("_training_flags")
        flags = cached if cached is not None and cached.to_eval(net) else None
        if flags is None:
            flags = _switch_to_eval(net)
    grad_was_enabled = torch.is_grad_enabled()
    try:
        if grad_was_enabled:
            _set_grad_enabled(False)
        inputs = net.preprocess(state, action, next_state, done)
        reward = net(*inputs)
    finally:
        if grad_was_enabled:
            _set_grad_enabled(True)
        if flags is not None:
            flags.to_train()
    state_th = inputs[0]
    batch = state_th.shape[0] if isinstance(state_th, torch.Tensor) else _batch_size(state_th)
    if reward.dim() != 1 or reward.shape[0] != batch:
        raise ValueError(
            f"{type(net).__name__}.forward returned a reward of shape "
            f"{tuple(reward.shape)}; expected ({batch},), one reward per "
            "transition."
        )
    return reward


def _switch_to_eval(net: nn.Module) -> TrainingFlags | _WalkingSwitch:
    """Build (and cache) what switches ``net``'s tree, and switch it to eval mode."""
    switch: TrainingFlags | _WalkingSwitch
    try:
        switch = TrainingFlags(net)
    except TypeError:  # a custom train() somewhere: call it, as nn.Module.train does
        switch = _WalkingSwitch(net)
    net.__dict__["_training_flags"] = switch
    switched = switch.to_eval(net)
    assert switched
    return switch


def to_numpy(reward: torch.Tensor) -> np.ndarray:
    """A reward tensor as numpy, copied to the host only when it is elsewhere."""
    return reward.numpy() if reward.is_cpu else reward.cpu().numpy()
