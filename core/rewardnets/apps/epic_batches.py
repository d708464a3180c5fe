"""Batches of transitions for EPIC: the ``Transitions`` tuple and helpers over (Dict) batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Transitions"]


class Transitions(NamedTuple):
    """A batch of transitions; unpacks as ``obs, acts, next_obs, dones``."""

    obs: Any
    """Observations, shape ``(n, *obs_shape)`` (a dict of such arrays for Dict spaces)."""
    acts: Any
    """Actions, shape ``(n, *act_shape)``."""
    next_obs: Any
    """Next observations; at an episode end, the episode's last observation."""
    dones: np.ndarray
    """Episode-end flags (terminated or truncated), bool, shape ``(n,)``."""


# ---------------------------------------------------------------------------
# Batches: arrays, or dicts / tuples of arrays, indexed along the first axis.
# ---------------------------------------------------------------------------


def _leaves(batch: Any, prefix: str = "") -> list[tuple[str, np.ndarray]]:
    """The arrays of a batch with their paths (``""`` for a plain array)."""
    if isinstance(batch, Mapping):
        return [
            leaf for key, value in batch.items() for leaf in _leaves(value, f"{prefix}[{key!r}]")
        ]
    if isinstance(batch, tuple):
        return [leaf for i, value in enumerate(batch) for leaf in _leaves(value, f"{prefix}[{i}]")]
    return [(prefix, np.asarray(batch))]


def _batch_len(batch: Any, what: str) -> int:
    """The common first-axis length of a batch's arrays."""
    leaves = _leaves(batch)
    if not leaves:
        raise ValueError(f"{what} is empty ({type(batch).__name__} with no arrays).")
    lengths = {}
    for path, array in leaves:
        if array.ndim == 0:
            raise ValueError(
                f"{what}{path} is a scalar; expected a batch with the samples along the first "
                "axis, shape (n, ...)."
            )
        lengths[path] = array.shape[0]
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"The arrays of {what} have different lengths {lengths}; expected one length n "
            "along the first axis."
        )
    return next(iter(lengths.values()))


def _layout(batch: Any) -> dict[str, tuple[int, ...]]:
    """Path → per-sample shape, to check that two batches hold the same kind of data."""
    return {path: array.shape[1:] for path, array in _leaves(batch)}


def _check_same_layout(batch: Any, samples: Any, batch_name: str, samples_name: str) -> None:
    got, want = _layout(samples), _layout(batch)
    if got != want:
        raise ValueError(
            f"{samples_name} must hold the same kind of data as {batch_name}: per-sample "
            f"shapes {_show_layout(want)}, got {_show_layout(got)}."
        )


def _show_layout(layout: dict[str, tuple[int, ...]]) -> str:
    if list(layout) == [""]:
        return str(layout[""])
    return "{" + ", ".join(f"{path}: {shape}" for path, shape in layout.items()) + "}"


def _take(batch: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of a batch."""
    if isinstance(batch, Mapping):
        return {key: _take(value, index) for key, value in batch.items()}
    if isinstance(batch, tuple):
        return tuple(_take(value, index) for value in batch)
    return np.asarray(batch)[index]


def _concat(batches: Sequence[Any]) -> Any:
    """Concatenate batches of the same structure along the first axis."""
    first = batches[0]
    if isinstance(first, Mapping):
        return {key: _concat([b[key] for b in batches]) for key in first}
    if isinstance(first, tuple):
        return tuple(_concat([b[i] for b in batches]) for i in range(len(first)))
    return np.concatenate([np.asarray(b) for b in batches], axis=0)


def _copy(batch: Any) -> Any:
    if isinstance(batch, Mapping):
        return {key: _copy(value) for key, value in batch.items()}
    if isinstance(batch, tuple):
        return tuple(_copy(value) for value in batch)
    return np.array(batch, copy=True)


def _set_row(batch: Any, index: int, value: Any) -> None:
    if isinstance(batch, Mapping):
        for key, array in batch.items():
            _set_row(array, index, value[key])
    elif isinstance(batch, tuple):
        for array, sub in zip(batch, value, strict=True):
            _set_row(array, index, sub)
    else:
        batch[index] = value
