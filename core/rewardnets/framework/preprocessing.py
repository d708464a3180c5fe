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
    "check_space",
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
        except (TypeError, ValueError):  # negative strides, byte order, odd dtype
            return torch.as_tensor(np.ascontiguousarray(batch))
    return torch.as_tensor(np.asarray(batch))


#: numpy dtype kinds of a numeric batch: bool, signed and unsigned integers, floats.
_NUMERIC_KINDS = frozenset("biuf")


def _numeric_error(what: str, space: Any, batch: Any) -> TypeError:
    if batch is None:
        got = "None"
    else:
        array = np.asarray(batch) if not isinstance(batch, np.ndarray) else batch
        got = f"an array of dtype {array.dtype}"
    return TypeError(f"Expected {what} for {space} to be a numeric array, got {got}.")


def _checked_numeric(batch: Any, what: str, space: Any) -> Any:
    """``batch`` unchanged if it holds real numbers; a clear error for strings, objects, None."""
    if isinstance(batch, torch.Tensor):
        if batch.is_complex():
            raise TypeError(
                f"Expected {what} for {space} to hold real numbers, got a {batch.dtype} tensor."
            )
        return batch
    array = batch if isinstance(batch, np.ndarray) else None
    if array is None:
        try:
            array = np.asarray(batch)
        except (TypeError, ValueError):
            raise _numeric_error(what, space, None) from None
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise _numeric_error(what, space, None if batch is None else array)
    return array


def _whole(t: torch.Tensor, what: str, space: Any) -> torch.Tensor:
    """Integer values of a discrete batch: floats must be whole numbers, not truncated."""
    if not t.is_floating_point():
        return t
    if t.numel() and not bool(torch.all(t == torch.round(t))):
        bad = t[t != torch.round(t)].reshape(-1)[:5].tolist()
        raise ValueError(
            f"Expected whole-number {what} values for {space}, got {bad}; they would be truncated."
        )
    return t


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


_CPU = torch.device("cpu")
#: numpy twins of the float dtypes a net may have, for one-hot tables built on the host.
_NUMPY_FLOATS: dict[torch.dtype, np.dtype[Any]] = {
    torch.float16: np.dtype(np.float16),
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
}


def _flags_tensor(done: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Episode-end flags as a flat float tensor of ``dtype`` on ``device``.

    Numpy flags for a CPU net are converted with numpy (one cheap ``astype``)
    and shared with torch, instead of a bool tensor and a torch cast.
    """
    if isinstance(done, np.ndarray) and device == _CPU:
        np_dtype = _NUMPY_FLOATS.get(dtype)
        if np_dtype is not None:
            flat = done.reshape(-1)
            if flat.dtype != np_dtype:
                flat = flat.astype(np_dtype)
            try:
                return torch.from_numpy(flat)
            except (TypeError, ValueError):
                pass
    t = _host_tensor(done).reshape(-1)
    if device != _CPU or not t.is_cpu:
        t = t.to(device)
    return t if t.dtype == dtype else t.to(dtype)


def _box_preprocessor(
    space: spaces.Box | spaces.MultiBinary, scale: bool, what: str
) -> Callable[[Any, torch.device, torch.dtype], TensorTree]:
    shape = tuple(space.shape)

    def shape_error(got: tuple[int, ...]) -> ValueError:
        return _shape_error(what, space, "(batch, " + ", ".join(map(str, shape)) + ")", got)

    def box_fn(batch: Any, device: torch.device, dtype: torch.dtype) -> TensorTree:
        if not isinstance(batch, np.ndarray) or batch.dtype.kind not in _NUMERIC_KINDS:
            batch = _checked_numeric(batch, what, space)
        if isinstance(batch, np.ndarray):
            if batch.shape[1:] != shape:  # checked on the array: cheaper than on a tensor
                raise shape_error(batch.shape)
            try:
                t = torch.from_numpy(batch)
            except (TypeError, ValueError):  # negative strides, byte order, odd dtype
                t = torch.as_tensor(np.ascontiguousarray(batch))
        else:
            t = _host_tensor(batch)
            if t.shape[1:] != shape:
                raise shape_error(t.shape)
        if device != _CPU or not t.is_cpu:
            t = t.to(device)  # one copy, in the input's own (often smaller) dtype
        if scale:
            # uint8 / 255.0 gives the default float dtype in one pass.
            t = t / 255.0
        return t if t.dtype == dtype else t.to(dtype)

    return box_fn


#: Discrete spaces up to this size get their one-hot rows from an identity
#: table (n x n); larger ones use ``one_hot``, which needs no table.
_MAX_ONE_HOT_TABLE = 512


def _discrete_preprocessor(
    space: spaces.Discrete, what: str
) -> Callable[[Any, torch.device, torch.dtype], TensorTree]:
    n, start = int(space.n), int(space.start)
    use_table = n <= _MAX_ONE_HOT_TABLE
    # One-hot rows are picked from an identity table, once per call: with
    # numpy for numpy input and a CPU net (the cheapest way there), otherwise
    # with torch on the net's device.
    host_tables: dict[torch.dtype, np.ndarray] = {}
    tables: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def out_of_range(values: Any) -> ValueError:
        flat = np.asarray(values).reshape(-1)
        bad = sorted({int(v) for v in flat if not start <= v < start + n})
        return ValueError(
            f"Expected {what} values of {space} in [{start}, {start + n}), got "
            f"{bad[:10]}{' ...' if len(bad) > 10 else ''}."
        )

    def shape_error(got: tuple[int, ...]) -> ValueError:
        return _shape_error(what, space, "(batch,)", got)

    def host_table(dtype: torch.dtype) -> np.ndarray | None:
        np_dtype = _NUMPY_FLOATS.get(dtype)
        if np_dtype is None or not use_table:
            return None
        table = host_tables[dtype] = np.eye(n, dtype=np_dtype)
        return table

    def discrete_fn(batch: Any, device: torch.device, dtype: torch.dtype) -> TensorTree:
        if isinstance(batch, np.ndarray) and device == _CPU:
            if batch.ndim != 1:
                if batch.ndim != 2 or batch.shape[1] != 1:
                    raise shape_error(batch.shape)
                batch = batch[:, 0]
            kind = batch.dtype.kind
            # (uint64 would wrap to negative intp inside take: torch checks those.)
            if kind == "i" or (kind == "u" and batch.dtype.itemsize < 8):
                table = host_tables.get(dtype)
                if table is None:
                    table = host_table(dtype)
                if table is not None:
                    index = batch - start if start else batch
                    # ndarray.take refuses indices >= n but wraps negative ones.
                    if kind == "i" and len(index) and index[index.argmin()] < 0:
                        raise out_of_range(batch)
                    try:
                        return torch.from_numpy(table.take(index, 0))
                    except IndexError:
                        raise out_of_range(batch) from None
        t = _whole(_host_tensor(_checked_numeric(batch, what, space)), what, space)
        if t.dim() != 1:
            if t.dim() != 2 or t.shape[1] != 1:
                raise shape_error(t.shape)
            t = t[:, 0]
        if t.dtype != torch.int64 and t.dtype != torch.int32:
            t = t.long()
        if start:
            t = t - start
        if device != _CPU or not t.is_cpu:
            # Off the CPU an out-of-range index is a device-side assert, which
            # breaks the CUDA context: check on the host, before the copy.
            if t.is_cpu and t.numel() and not (int(t.min()) >= 0 and int(t.max()) < n):
                raise out_of_range(t + start)
            t = t.to(device)
        if not use_table:
            if t.is_cpu and t.numel() and not (int(t.min()) >= 0 and int(t.max()) < n):
                raise out_of_range(t + start)
            return torch.nn.functional.one_hot(t.long(), n).to(dtype)
        table_th = tables.get((device, dtype))
        if table_th is None:
            table_th = tables[(device, dtype)] = torch.eye(n, dtype=dtype, device=device)
        try:
            return table_th.index_select(0, t)
        except IndexError:
            raise out_of_range(t.cpu() + start) from None

    return discrete_fn


def _multi_discrete_preprocessor(
    space: spaces.MultiDiscrete, what: str
) -> Callable[[Any, torch.device, torch.dtype], TensorTree]:
    nvec = [int(n) for n in np.asarray(space.nvec).flatten()]
    host_starts = torch.as_tensor(np.asarray(space.start).flatten(), dtype=torch.long)
    starts: dict[torch.device, torch.Tensor] = {}
    shape = tuple(space.shape)

    def multi_discrete_fn(batch: Any, device: torch.device, dtype: torch.dtype) -> TensorTree:
        t = _whole(_host_tensor(_checked_numeric(batch, what, space)), what, space)
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
