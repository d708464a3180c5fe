"""Turning observations and actions of gymnasium spaces into network inputs.

Box spaces become float tensors (uint8 image boxes are scaled to [0, 1] when
images are normalised), Discrete and MultiDiscrete become one-hot vectors,
MultiBinary becomes float, and a Dict space preprocesses each of its keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

__all__ = [
    "TensorTree",
    "flat_dim",
    "is_image_space",
    "make_preprocessor",
    "to_tensor",
]

#: A preprocessed input: a tensor, or a dict of tensors for a Dict space.
TensorTree = torch.Tensor | dict[str, torch.Tensor]

SUPPORTED_SPACES = (
    spaces.Box,
    spaces.Discrete,
    spaces.MultiDiscrete,
    spaces.MultiBinary,
    spaces.Dict,
)


def is_image_space(space: spaces.Space[Any]) -> bool:
    """Return whether ``space`` is a uint8 image Box of 3 dimensions (HWC or CHW)."""
    return (
        isinstance(space, spaces.Box)
        and space.dtype == np.uint8
        and len(space.shape) == 3
        and bool(np.all(space.low == 0))
        and bool(np.all(space.high == 255))
    )


def check_space(space: Any, what: str) -> None:
    """Raise a clear error unless ``space`` is a supported gymnasium space.

    Raises:
        TypeError: ``space`` is not a gymnasium space, or of an unsupported kind.
    """
    if not isinstance(space, spaces.Space):
        raise TypeError(
            f"Expected {what} to be a gymnasium.spaces.Space, got "
            f"{type(space).__name__}: {space!r}."
        )
    if not isinstance(space, SUPPORTED_SPACES):
        raise TypeError(
            f"{what} {space} is not supported; expected one of "
            f"{', '.join(s.__name__ for s in SUPPORTED_SPACES)}."
        )
    if isinstance(space, spaces.Dict):
        for key, sub in space.spaces.items():
            check_space(sub, f"{what}[{key!r}]")


def flat_dim(space: spaces.Space[Any]) -> int:
    """Return the length of a preprocessed, flattened element of ``space``."""
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape))
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    if isinstance(space, spaces.MultiBinary):
        return int(np.prod(space.shape))
    if isinstance(space, spaces.Dict):
        return sum(flat_dim(s) for s in space.spaces.values())
    check_space(space, "space")
    raise AssertionError("unreachable")  # pragma: no cover


def to_tensor(array: Any, device: torch.device) -> torch.Tensor:
    """Return ``array`` as a tensor on ``device``, without copying when possible."""
    if isinstance(array, torch.Tensor):
        return array.to(device)
    return torch.as_tensor(np.asarray(array), device=device)


def _host_tensor(batch: Any) -> torch.Tensor:
    """Return ``batch`` as a tensor without moving it, sharing numpy memory when possible.

    ``torch.from_numpy`` is several times cheaper than ``torch.as_tensor``; arrays
    it refuses (negative strides, another byte order, a dtype torch lacks) and
    other sequences go through ``torch.as_tensor``. Tensors are returned as they are.
    """
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, np.ndarray):
        try:
            return torch.from_numpy(batch)
        except (TypeError, ValueError):
            pass
    return torch.as_tensor(np.asarray(batch))


def _shape_error(what: str, space: spaces.Space[Any], expected: str, got: Any) -> ValueError:
    return ValueError(
        f"Expected {what} for {space} to have shape {expected}, got shape {tuple(got)}."
    )


def make_preprocessor(
    space: spaces.Space[Any], normalize_images: bool, what: str
) -> Callable[[Any, torch.device, torch.dtype], TensorTree]:
    """Build a function that preprocesses a batch of elements of ``space``.

    Everything that depends only on the space (shapes, one-hot tables, scaling)
    is worked out here, once, so that a call does only the conversions its
    input needs: a float32 numpy batch for a float32 net on the CPU becomes a
    tensor that shares its memory, with no copy. Off the CPU, each input
    crosses to the device once, in its own dtype (uint8 images are scaled
    there).

    Args:
        space: The space the batch comes from.
        normalize_images: Whether uint8 image boxes are scaled to [0, 1].
        what: How error messages name the input (``"state"``, ``"action"``).

    Returns:
        ``fn(batch, device, dtype) -> tensor`` (a dict of tensors for a Dict
        space), floating point of ``dtype``.
    """
    check_space(space, what)
    if isinstance(space, spaces.Dict):
        subs = {
            key: make_preprocessor(sub, normalize_images, f"{what}[{key!r}]")
            for key, sub in space.spaces.items()
        }

        def dict_fn(batch: Any, device: torch.device, dtype: torch.dtype) -> TensorTree:
            if not isinstance(batch, Mapping):
                raise TypeError(
                    f"Expected {what} for Dict space to be a dict of arrays with "
                    f"keys {list(subs)}, got {type(batch).__name__}."
                )
            missing = [k for k in subs if k not in batch]
            if missing:
                raise KeyError(
                    f"{what} is missing keys {missing} of its Dict space; got keys {list(batch)}."
                )
            out: dict[str, torch.Tensor] = {}
            for key, fn in subs.items():
                value = fn(batch[key], device, dtype)
                assert isinstance(value, torch.Tensor)
                out[key] = value
            return out

        return dict_fn

    if isinstance(space, spaces.Discrete):
        return _discrete_preprocessor(space, what)

    if isinstance(space, spaces.MultiDiscrete):
        return _multi_discrete_preprocessor(space, what)

    assert isinstance(space, (spaces.Box, spaces.MultiBinary))
    return _box_preprocessor(space, normalize_images and is_image_space(space), what)


def _box_preprocessor(
    space: spaces.Box | spaces.MultiBinary, scale: bool, what: str
) -> Callable[[Any, torch.device, torch.dtype], TensorTree]:
    shape = tuple(space.shape)

    def box_fn(batch: Any, device: torch.device, dtype: torch.dtype) -> TensorTree:
        t = _host_tensor(batch)
        if t.shape[1:] != shape:
            expected = "(batch, " + ", ".join(map(str, shape)) + ")"
            raise _shape_error(what, space, expected, t.shape)
        if device.type != "cpu" or t.device != device:
            t = t.to(device)  # one copy, in the input's own (often smaller) dtype
        if scale:
            # uint8 / 255.0 gives the default float dtype in one pass.
            t = t / 255.0
        return t if t.dtype == dtype else t.to(dtype)

    return box_fn


def _discrete_preprocessor(
    space: spaces.Discrete, what: str
) -> Callable[[Any, torch.device, torch.dtype], TensorTree]:
    n, start = int(space.n), int(space.start)
    # One-hot rows are picked from an identity matrix: one indexing op, whose
    # bounds check (negative indices included) doubles as validation on the CPU.
    eyes: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def out_of_range(t: torch.Tensor) -> ValueError:
        values = (t.reshape(-1) + start).tolist()
        bad = sorted({v for v in values if not 0 <= v - start < n})
        return ValueError(
            f"Expected {what} values of {space} in [{start}, {start + n}), got "
            f"{bad[:10]}{' ...' if len(bad) > 10 else ''}."
        )

    def discrete_fn(batch: Any, device: torch.device, dtype: torch.dtype) -> TensorTree:
        t = _host_tensor(batch)
        if t.dim() == 2 and t.shape[1] == 1:
            t = t[:, 0]
        if t.dim() != 1:
            raise _shape_error(what, space, "(batch,)", t.shape)
        if t.dtype != torch.int64 and t.dtype != torch.int32:
            t = t.long()
        if start:
            t = t - start
        eye = eyes.get((device, dtype))
        if eye is None:
            eye = eyes[(device, dtype)] = torch.eye(n, dtype=dtype, device=device)
        if device.type != "cpu" or t.device != device:
            # Off the CPU an out-of-range index is a device-side assert, which
            # breaks the CUDA context: check on the host, before the copy.
            if t.is_cpu and t.numel() and not (0 <= int(t.min()) and int(t.max()) < n):
                raise out_of_range(t)
            t = t.to(device)
        try:
            return eye.index_select(0, t)
        except IndexError:
            raise out_of_range(t) from None

    return discrete_fn


def _multi_discrete_preprocessor(
    space: spaces.MultiDiscrete, what: str
) -> Callable[[Any, torch.device, torch.dtype], TensorTree]:
    nvec = [int(n) for n in np.asarray(space.nvec).flatten()]
    host_starts = torch.as_tensor(np.asarray(space.start).flatten(), dtype=torch.long)
    starts: dict[torch.device, torch.Tensor] = {}
    shape = tuple(space.shape)

    def multi_discrete_fn(batch: Any, device: torch.device, dtype: torch.dtype) -> TensorTree:
        t = _host_tensor(batch)
        if tuple(t.shape[1:]) != shape:
            raise _shape_error(what, space, f"(batch, {', '.join(map(str, shape))})", t.shape)
        if device.type != "cpu" or t.device != device:
            t = t.to(device)
        offsets = starts.get(device)
        if offsets is None:
            offsets = starts[device] = host_starts.to(device)
        flat = t.reshape(t.shape[0], -1).long() - offsets
        hots = [torch.nn.functional.one_hot(flat[:, i], n).to(dtype) for i, n in enumerate(nvec)]
        return torch.cat(hots, dim=1)

    return multi_discrete_fn
