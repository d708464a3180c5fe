"""The data path of a reward call, in one place.

``net.predict_processed(obs, acts, next_obs, dones)`` (and ``net.predict``)
on numpy arrays first asks :func:`run_kernel` for the *plan* of the call: the
net's whole stack (its wrappers, their bases, potentials, norm layers,
ensemble members) compiled once by :class:`~rewardnets.framework.kernels.KernelBuilder`
into one numpy kernel on zero-copy views of the live parameters, plus a
*guard*. The plan is kept on the net and reused while its guard holds; the
guard is a handful of C-level passes over snapshots, run on every call,
checking that the stack is the one compiled: the same modules, children, parameters
and buffers (by identity and memory address, so ``load_state_dict``,
``.to()`` / ``.double()`` and replaced tensors or submodules are seen; an
in-place optimizer step needs no check, as the views share the memory), the
same values of the attributes the kernels read (``use_done``,
``discount_factor``, ``eps``...), no new instance attributes (an instance
override of ``predict_processed`` is one) and no forward hooks. When it
fails, the plan is built again.

A stack with any part the kernels do not know (a user's net or module, a
CNN, a CUDA tensor, a dtype other than float32 / float64, an override below
a kernel, a hook) gets a plan without a kernel, guarded the same way, and
takes the torch path; so does a call whose inputs are not the plain case
(another input type, a wrong shape, a value out of range, a missing input),
which then raises the torch path's usual errors. The torch path is:

1. ``predict_processed`` of the outermost net: a wrapper's post-processing
   (normalisation, ``mean + alpha * std``) around its base's
   ``predict_processed``; for a plain net it is ``predict``;
2. ``predict`` = :func:`to_numpy` of ``predict_th``;
3. ``predict_th`` = :func:`predict_tensor`: eval mode and no gradients for the
   call, ``net.preprocess`` (numpy to tensors on the net's device: one-hot,
   image scaling, Dict keys, dtype), ``net.forward``, and the check that there
   is one reward per transition. Eval mode is switched with cached
   :class:`TrainingFlags` (checked against the tree on every call) instead of
   ``nn.Module.train``'s walk, and the grad flag is flipped without the
   ``no_grad`` context manager.

:func:`processed_tensor` gives a net's processed reward as a tensor on its
device (``predict_processed_th``) where the net allows it, so that a wrapper
on a GPU copies its result to the host once.
"""

from __future__ import annotations

import itertools
import operator
from typing import Any

import numpy as np
import torch
from torch import nn

from rewardnets.framework.kernels import (
    STANDS_FOR,
    KernelBuilder,
    NotCompilable,
    is_covered,
    prepare_inputs,
)
from rewardnets.framework.preprocessing import TensorTree

__all__ = [
    "TrainingFlags",
    "batch_size",
    "predict_tensor",
    "processed_tensor",
    "run_kernel",
    "set_training",
    "to_numpy",
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


def batch_size(value: TensorTree) -> int:
    """The batch size of a preprocessed input (a tensor, or a dict of them)."""
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
    batch = state_th.shape[0] if isinstance(state_th, torch.Tensor) else batch_size(state_th)
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


# ------------------------------------------------------------------------ the plans
class PlanSlot:
    """A net's cached plans, one per kind of call; never copied or pickled."""

    __slots__ = ("moments", "processed", "reward")

    def __init__(self) -> None:
        self.reward: _Plan | None = None
        self.processed: _Plan | None = None
        self.moments: _Plan | None = None

    def __copy__(self) -> PlanSlot:
        return PlanSlot()

    def __deepcopy__(self, memo: dict[int, Any]) -> PlanSlot:
        return PlanSlot()

    def __reduce__(self) -> tuple[type[PlanSlot], tuple[()]]:
        return PlanSlot, ()


class _Plan:
    __slots__ = ("guard", "run")

    def __init__(self, guard: Any, run: Any) -> None:
        self.guard = guard
        self.run = run


#: The kinds of call :func:`run_kernel` plans, by the method they stand for.
_KINDS = {
    "predict": "reward",
    "predict_processed": "processed",
    "predict_reward_moments": "moments",
}


def run_kernel(
    net: nn.Module,
    method: str,
    state: Any,
    action: Any,
    next_state: Any,
    done: Any,
    kwargs: dict[str, Any] | None = None,
) -> Any:
    """Run ``net.<method>`` through its compiled plan; None when it takes the torch path.

    This is how ``predict``, ``predict_processed`` and
    ``predict_reward_moments`` of the built-in nets start. A plugin's own net
    does the same in its methods, after defining the matching kernel method.

    Args:
        net: The reward net called.
        method: ``"predict"``, ``"predict_processed"`` or ``"predict_reward_moments"``.
        state: States.
        action: Actions, or None.
        next_state: Next states, or None.
        done: Episode-end flags, or None.
        kwargs: The call's keyword arguments (``update_stats``, ``alpha``...).

    Returns:
        The method's result, or None: then run the torch path.
    """
    kind = _KINDS[method]
    slot = net.__dict__.get("_kernel_plans")
    if slot is None:
        slot = net.__dict__["_kernel_plans"] = PlanSlot()
    plan: _Plan | None = getattr(slot, kind)
    if plan is None or not plan.guard(net):
        plan = _compile(net, kind)
        setattr(slot, kind, plan)
    run = plan.run
    if run is None:
        return None
    return run(state, action, next_state, done, kwargs)


def _compile(net: nn.Module, kind: str) -> _Plan:
    builder = KernelBuilder(net.dtype)  # type: ignore[arg-type]
    run = None
    try:
        kernel = getattr(builder, kind)(net)
        assert builder.spaces is not None
        obs_space, act_space, normalize_images = builder.spaces
        prepare = prepare_inputs(
            obs_space, act_space, normalize_images, builder.dtype, builder.needed
        )
        run = _runner(prepare, kernel, kind == "reward")
    except NotCompilable:
        pass
    return _Plan(_make_guard(net, builder, complete=run is not None), run)


def _runner(prepare: Any, kernel: Any, reward: bool) -> Any:
    if reward:

        def run_reward(state: Any, action: Any, next_state: Any, done: Any, kwargs: Any) -> Any:
            batch = prepare(state, action, next_state, done)
            return None if batch is None else kernel(batch)

        return run_reward

    def run(state: Any, action: Any, next_state: Any, done: Any, kwargs: Any) -> Any:
        batch = prepare(state, action, next_state, done)
        return None if batch is None else kernel(batch, {} if kwargs is None else kwargs)

    return run


_MISSING_ATTR = object()
_hooks = torch.nn.modules.module
_GLOBAL_HOOKS = tuple(
    getattr(_hooks, name)
    for name in ("_global_forward_hooks", "_global_forward_pre_hooks")
    if isinstance(getattr(_hooks, name, None), dict)
)
_data_ptr = torch.Tensor.data_ptr
_chain = itertools.chain.from_iterable


def _make_guard(root: nn.Module, builder: KernelBuilder, complete: bool) -> Any:
    """Make ``guard(net) -> bool``: whether ``net`` is still the stack compiled.

    It compares snapshots taken now with the live objects, each comparison one
    C-level pass (``map``) over the modules visited:

    - the length of each module's ``__dict__`` (a new attribute, such as an
      instance override of ``forward`` or ``predict_processed``);
    - the number of its forward hooks and forward pre-hooks (registering
      one adds it to the module's hook dict, in place);
    - each container that held something (children, parameters, buffers):
      still the one in the module's ``__dict__``, of the same length, with the
      same objects under the same names (by identity);
    - the memory address of each parameter and buffer (``.to()``,
      ``.double()``, ``param.data = ...``; an in-place update keeps it, and the
      kernels' views see it);
    - the attributes the kernels read (by identity).

    Empty containers are not checked: a parameter added to a ReLU changes
    nothing its ``forward`` computes.
    """
    dicts = [m.__dict__ for m in builder.modules]
    dict_lengths = tuple(map(len, dicts))
    hooks = [d[k] for d in dicts for k in ("_forward_hooks", "_forward_pre_hooks")]
    hook_counts = tuple(map(len, hooks))
    hooked = any(hook_counts)
    held = [(d, k) for d in dicts for k in ("_modules", "_parameters", "_buffers") if d[k]]
    owners, names = [d for d, _ in held], [k for _, k in held]
    containers = [d[k] for d, k in held]
    sizes = tuple(map(len, containers))
    item_owners = [c for c in containers for _ in c]
    item_keys = [key for c in containers for key in c]
    items = [c[key] for c, key in zip(item_owners, item_keys, strict=True)]
    tensors = [t for t in items if isinstance(t, torch.Tensor)]
    addresses = tuple(map(_data_ptr, tensors))
    watched_dicts = [owner.__dict__ for owner, _, _ in builder.watched]
    watched_names = [name for _, name, _ in builder.watched]
    watched = [value for _, _, value in builder.watched]
    missing = [_MISSING_ATTR] * len(watched_names)
    root_dict = root.__dict__
    global_hooks = _GLOBAL_HOOKS if complete else ()
    is_not, getitem, get = operator.is_not, dict.__getitem__, dict.get

    def guard(net: nn.Module) -> bool:
        return (
            net.__dict__ is root_dict
            and not any(global_hooks)
            and tuple(map(len, dicts)) == dict_lengths
            and (tuple(map(len, hooks)) == hook_counts if hooked else not any(hooks))
            and not any(map(is_not, map(getitem, owners, names), containers))
            and tuple(map(len, containers)) == sizes
            and not any(map(is_not, map(dict.get, item_owners, item_keys), items))
            and tuple(map(_data_ptr, tensors)) == addresses
            and not any(map(is_not, map(get, watched_dicts, watched_names, missing), watched))
        )

    return guard


def processed_tensor(
    net: Any,
    state: Any,
    action: Any,
    next_state: Any = None,
    done: Any = None,
    kwargs: dict[str, Any] | None = None,
) -> torch.Tensor:
    """``net.predict_processed`` as a tensor on the net's device.

    ``net.predict_processed_th`` gives it, without a round trip through the
    host, when it stands in for the net's ``predict_processed`` (the same
    rule as the kernels': nothing it replaces is overridden below it);
    otherwise the numpy result is converted.
    """
    kwargs = {} if kwargs is None else kwargs
    if is_covered(net, "predict_processed_th", STANDS_FOR["processed_th"]):
        return net.predict_processed_th(state, action, next_state, done, **kwargs)
    reward = net.predict_processed(state, action, next_state, done, **kwargs)
    return torch.as_tensor(reward, device=net.device)
