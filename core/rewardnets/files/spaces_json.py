"""Gymnasium spaces as plain JSON data, and back.

Supported: ``Box``, ``Discrete``, ``MultiDiscrete``, ``MultiBinary`` and
``Dict`` (of those). The JSON is standard: infinities and NaN are written as
the strings ``"inf"``, ``"-inf"`` and ``"nan"``, and an array whose elements
are all equal is written once, as ``{"fill": value}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

__all__ = ["SpaceCodecError", "space_from_json", "space_to_json"]

_SPECIAL_FLOATS = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}

#: The dtypes a space may have in a file; anything else is refused on load.
_DTYPES = frozenset(
    {
        "bool",
        "float16",
        "float32",
        "float64",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
    }
)


class SpaceCodecError(ValueError):
    """A space that cannot be written as JSON, or JSON that is not a space."""


def _encode_number(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    number = float(value)
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return number


def _encode_array(array: np.ndarray) -> Any:
    flat = array.reshape(-1)
    if flat.size and bool(np.all(flat == flat[0])) and not np.isnan(flat[0].astype(float)):
        return {"fill": _encode_number(flat[0])}
    return _nested(array)


def _nested(array: np.ndarray) -> Any:
    if array.ndim == 0:
        return _encode_number(array.item())
    return [_nested(row) for row in array]


def _decode_number(value: Any, where: str) -> Any:
    if isinstance(value, str):
        if value not in _SPECIAL_FLOATS:
            raise SpaceCodecError(
                f"{where}: expected a number or one of {sorted(_SPECIAL_FLOATS)}, got {value!r}."
            )
        return _SPECIAL_FLOATS[value]
    if isinstance(value, list):
        return [_decode_number(v, where) for v in value]
    if not isinstance(value, (int, float, bool)):
        raise SpaceCodecError(f"{where}: expected a number, got {value!r}.")
    return value


def _decode_array(value: Any, shape: tuple[int, ...], dtype: str, where: str) -> np.ndarray:
    if isinstance(value, Mapping):
        if set(value) != {"fill"}:
            raise SpaceCodecError(f"{where}: expected {{'fill': number}}, got {value!r}.")
        return np.full(shape, _decode_number(value["fill"], where), dtype=dtype)
    array = np.asarray(_decode_number(value, where), dtype=dtype)
    if array.shape != shape:
        raise SpaceCodecError(f"{where}: expected an array of shape {shape}, got {array.shape}.")
    return array


def _dtype_name(dtype: Any) -> str:
    return str(np.dtype(dtype))


def space_to_json(space: spaces.Space[Any]) -> dict[str, Any]:
    """Return ``space`` as JSON-able data.

    Raises:
        SpaceCodecError: ``space`` is of a kind that has no JSON form.
    """
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": _dtype_name(space.dtype),
            "low": _encode_array(space.low),
            "high": _encode_array(space.high),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": np.asarray(space.nvec).tolist(),
            "start": np.asarray(space.start).tolist(),
            "dtype": _dtype_name(space.dtype),
        }
    if isinstance(space, spaces.MultiBinary):
        n: Any = space.n
        return {"type": "MultiBinary", "n": int(n) if np.ndim(n) == 0 else np.asarray(n).tolist()}
    if isinstance(space, spaces.Dict):
        items = []
        for key, sub in space.spaces.items():
            if not isinstance(key, str):
                raise SpaceCodecError(
                    f"Dict space keys must be strings to be written as JSON, got {key!r}."
                )
            items.append([key, space_to_json(sub)])
        return {"type": "Dict", "spaces": items}
    raise SpaceCodecError(
        f"Cannot write the space {space} ({type(space).__name__}) as JSON; supported "
        "spaces are Box, Discrete, MultiDiscrete, MultiBinary and Dict."
    )


def _int(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpaceCodecError(f"{where}: expected {key!r} to be an integer, got {value!r}.")
    if not -(2**62) <= value <= 2**62:  # past int64, numpy would overflow or crash
        raise SpaceCodecError(
            f"{where}: {key!r} is {value}; expected an integer of magnitude at most 2**62."
        )
    return value


def _int_list(value: Any, where: str) -> list[Any]:
    if isinstance(value, list) and all(
        isinstance(v, list) or (isinstance(v, int) and not isinstance(v, bool)) for v in value
    ):
        return value
    raise SpaceCodecError(f"{where}: expected a list of integers, got {value!r}.")


def _dtype(data: Mapping[str, Any], where: str) -> str:
    dtype = data.get("dtype")
    if dtype not in _DTYPES:
        raise SpaceCodecError(
            f"{where}: expected 'dtype' to be one of {sorted(_DTYPES)}, got {dtype!r}."
        )
    assert isinstance(dtype, str)
    return dtype


#: The deepest nesting of Dict spaces a file may hold.
MAX_SPACE_DEPTH = 16
#: The most elements a Box of a file may have (its bounds are held in memory).
MAX_SPACE_ELEMENTS = 1 << 24


def space_from_json(data: Any, where: str = "space", *, _depth: int = 0) -> spaces.Space[Any]:
    """Build the space that :func:`space_to_json` wrote.

    Sizes are checked before anything is allocated: a Box has at most
    :data:`MAX_SPACE_ELEMENTS` elements, Dict spaces nest at most
    :data:`MAX_SPACE_DEPTH` deep.

    Args:
        data: The JSON data.
        where: How error messages name the data.

    Raises:
        SpaceCodecError: ``data`` does not describe a supported space, or is too large.
    """
    if _depth > MAX_SPACE_DEPTH:
        raise SpaceCodecError(
            f"{where}: Dict spaces nested more than {MAX_SPACE_DEPTH} deep; a file this deep "
            "is refused."
        )
    if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
        raise SpaceCodecError(f"{where}: expected a dict with a 'type' key, got {data!r}.")
    kind = data["type"]
    try:
        if kind == "Box":
            shape_list = _int_list(data.get("shape"), f"{where}.shape")
            shape = tuple(int(s) for s in shape_list)
            if any(n < 0 for n in shape) or math.prod(shape) > MAX_SPACE_ELEMENTS:
                raise SpaceCodecError(
                    f"{where}: a Box of shape {shape}; expected non-negative sizes and at most "
                    f"{MAX_SPACE_ELEMENTS} elements."
                )
            dtype = _dtype(data, where)
            low = _decode_array(data.get("low"), shape, dtype, f"{where}.low")
            high = _decode_array(data.get("high"), shape, dtype, f"{where}.high")
            box: spaces.Box[Any] = spaces.Box(
                low=low, high=high, shape=shape, dtype=np.dtype(dtype)
            )
            return box
        if kind == "Discrete":
            return spaces.Discrete(_int(data, "n", where), start=_int(data, "start", where))
        if kind == "MultiDiscrete":
            nvec = np.asarray(_int_list(data.get("nvec"), f"{where}.nvec"))
            start = np.asarray(_int_list(data.get("start"), f"{where}.start"))
            return spaces.MultiDiscrete(nvec, dtype=_dtype(data, where), start=start)
        if kind == "MultiBinary":
            n = data.get("n")
            if isinstance(n, list):
                return spaces.MultiBinary(_int_list(n, f"{where}.n"))
            return spaces.MultiBinary(_int(data, "n", where))
        if kind == "Dict":
            items = data.get("spaces")
            if not isinstance(items, list) or not all(
                isinstance(i, list) and len(i) == 2 and isinstance(i[0], str) for i in items
            ):
                raise SpaceCodecError(
                    f"{where}: expected 'spaces' to be a list of [key, space] pairs, got {items!r}."
                )
            return spaces.Dict(
                {
                    key: space_from_json(sub, f"{where}[{key!r}]", _depth=_depth + 1)
                    for key, sub in items
                }
            )
    except SpaceCodecError:
        raise
    except (TypeError, ValueError, AssertionError) as exc:
        raise SpaceCodecError(f"{where}: cannot build a {kind} space from {data!r}: {exc}") from exc
    raise SpaceCodecError(
        f"{where}: unknown space type {kind!r}; expected one of Box, Discrete, "
        "MultiDiscrete, MultiBinary, Dict."
    )
