"""Checks of a net read from a file, before it is returned: what a file could make impossible.

A ``torch.save`` file is unpickled into objects whose state the file chose;
a file of ``rewardnets.save`` fills statistics with its own numbers. These
checks refuse what no net of ours can be: a module graph that contains
itself or lacks a module's tables, complex parameters, statistics that would
divide by zero, spaces whose bounds disagree with their shape or exceed the
size limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from rewardnets.files.format import SerializationError
from rewardnets.files.spaces_json import SpaceCodecError, space_from_json, space_to_json
from rewardnets.framework.networks import BaseNorm
from rewardnets.framework.reward_net import RewardNet

__all__ = [
    "MAX_MODULE_DEPTH",
    "check_module_tree",
    "check_real_tensors",
    "check_spaces_state",
    "check_statistics",
]

#: How deep a pickled net's modules may nest.
MAX_MODULE_DEPTH = 256


def check_statistics(net: torch.nn.Module, where: str) -> None:
    """Refuse normalisation statistics no layer can have written (they divide by zero later)."""
    for name, module in net.named_modules():
        if not isinstance(module, BaseNorm):
            continue
        label = f"{where}: the normalisation layer {name or '<net>'}"
        missing = [
            key for key in ("running_mean", "running_var", "count") if key not in module._buffers
        ]
        if missing:
            raise SerializationError(
                f"{label} lacks its statistics {missing}; the file is damaged."
            )
        if int(module.count) < 0:
            raise SerializationError(
                f"{label} has count {int(module.count)}; expected a count >= 0."
            )
        var = module.running_var
        if not bool(torch.isfinite(var).all()) or bool((var < 0).any()):
            raise SerializationError(
                f"{label} has running_var {var.tolist()}; expected finite values >= 0."
            )
        if not bool(torch.isfinite(module.running_mean).all()):
            raise SerializationError(
                f"{label} has running_mean {module.running_mean.tolist()}; expected finite values."
            )


def check_module_tree(net: torch.nn.Module, where: str) -> None:
    """Refuse a module graph with a cycle (torch would recurse without end on it)."""
    on_path: set[int] = set()
    stack: list[tuple[torch.nn.Module, bool]] = [(net, True)]
    while stack:
        module, entering = stack.pop()
        if not entering:
            on_path.discard(id(module))
            continue
        if id(module) in on_path:
            raise SerializationError(
                f"{where}: the module {type(module).__name__} contains itself; a reward net's "
                "modules must form a tree."
            )
        if len(on_path) > MAX_MODULE_DEPTH:
            raise SerializationError(f"{where}: the modules nest too deep; it is refused.")
        on_path.add(id(module))
        stack.append((module, False))
        _check_module_state(module, where)
        children = vars(module)["_modules"]
        stack.extend((child, True) for child in children.values() if child is not None)


#: The tables every nn.Module keeps, and what their values must be.
_MODULE_TABLES = {
    "_parameters": (torch.Tensor, "tensors"),
    "_buffers": (torch.Tensor, "tensors"),
    "_modules": (torch.nn.Module, "modules"),
}


def _check_module_state(module: torch.nn.Module, where: str) -> None:
    """Refuse an unpickled module whose state is not that of an nn.Module."""
    state = vars(module)
    for table, (kind, what) in _MODULE_TABLES.items():
        values = state.get(table)
        if not isinstance(values, Mapping) or not all(
            isinstance(key, str) and (value is None or isinstance(value, kind))
            for key, value in values.items()
        ):
            raise SerializationError(
                f"{where}: a {type(module).__name__} whose {table} is not a table of {what} "
                f"(got {type(values).__name__}); expected a complete nn.Module. The file is "
                "damaged."
            )
    if not isinstance(state.get("training"), bool):
        raise SerializationError(
            f"{where}: a {type(module).__name__} without a training flag; expected a complete "
            "nn.Module. The file is damaged."
        )


def check_real_tensors(net: torch.nn.Module, where: str) -> None:
    """Refuse complex parameters and buffers: a net computes in real numbers.

    (Cast to a real dtype, a complex weight would silently lose its imaginary part.)
    """
    for name, tensor in [*net.named_parameters(), *net.named_buffers()]:
        if tensor.is_complex():
            raise SerializationError(
                f"{where}: tensor {name!r} is {str(tensor.dtype).removeprefix('torch.')}; "
                "expected real numbers (a float or integer dtype)."
            )


def check_spaces_state(net: torch.nn.Module, where: str) -> None:
    """Refuse spaces that do not hold together or exceed the size limits.

    Each reward net's spaces are written as data and read back with the
    limits of :func:`~rewardnets.files.spaces_json.space_from_json` (a Box's
    bounds must fit its shape, which has at most ``MAX_SPACE_ELEMENTS``
    elements; Dict spaces nest at most ``MAX_SPACE_DEPTH`` deep). Space kinds
    without a JSON form (a ``Tuple``) are not checked.
    """
    for name, module in net.named_modules():
        if not isinstance(module, RewardNet):
            continue
        for what in ("observation_space", "action_space"):
            space: Any = vars(module).get(what)
            label = f"{where}: the {what} of {name or 'the net'}"
            try:
                space_from_json(space_to_json(space), what)
            except SpaceCodecError as exc:
                if "Cannot write the space" in str(exc):
                    continue
                raise SerializationError(f"{label}: {exc}") from exc
            except (AttributeError, TypeError, ValueError, RecursionError) as exc:
                raise SerializationError(
                    f"{label} is not a complete gymnasium space ({type(exc).__name__}: {exc})."
                ) from exc
