"""Reading format v1: a zip of JSON documents and raw tensor bytes (rewardnets 0.1).

A v1 file holds five members, and reading looks at nothing else:
``metadata.json``, ``spec.json``, ``spaces.json``, ``tensors.json`` (name,
dtype, shape and byte range of each tensor) and ``tensors.bin`` (the tensors'
bytes, little-endian, one after the other). rewardnets no longer writes it.
"""

from __future__ import annotations

import io
import math
import sys
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import torch

from rewardnets.files.format import SerializationError, parse_json

__all__ = ["MAX_INFLATION", "MAX_JSON_MEMBER_BYTES", "MEMBERS", "read_zip_file"]

MEMBERS = ("metadata.json", "spec.json", "spaces.json", "tensors.json", "tensors.bin")

#: The tensor dtypes of v1, by the name written in ``tensors.json``.
DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "complex64": torch.complex64,
    "complex128": torch.complex128,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
_INDEX_KEYS = {"name", "dtype", "shape", "offset", "nbytes"}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor(entry: Any, blob: bytes, label: str) -> tuple[str, torch.Tensor, int]:
    """One tensor of the index: its name, the tensor and the byte where it ends."""
    if not isinstance(entry, Mapping) or set(entry) != _INDEX_KEYS:
        raise SerializationError(
            f"{label}: expected keys name, dtype, shape, offset, nbytes; got {entry!r}."
        )
    name, dtype_name, shape = entry["name"], entry["dtype"], entry["shape"]
    offset, nbytes = entry["offset"], entry["nbytes"]
    if not isinstance(name, str):
        raise SerializationError(f"{label}: bad tensor name {name!r}.")
    if not isinstance(dtype_name, str) or dtype_name not in DTYPES:
        raise SerializationError(
            f"{label}: dtype {dtype_name!r} is not one of {', '.join(DTYPES)}."
        )
    if not (isinstance(shape, list) and all(_is_count(s) for s in shape)):
        raise SerializationError(f"{label}: shape must be a list of sizes, got {shape!r}.")
    dtype = DTYPES[dtype_name]
    numel = math.prod(shape)  # Python integers: no overflow
    itemsize = torch.empty((), dtype=dtype).element_size()
    if not (_is_count(offset) and _is_count(nbytes)) or nbytes != numel * itemsize:
        raise SerializationError(
            f"{label}: tensor {name!r} of shape {shape} and dtype {dtype_name} needs "
            f"{numel * itemsize} bytes; the index says {nbytes!r} at offset {offset!r}."
        )
    if offset + nbytes > len(blob):
        raise SerializationError(
            f"{label}: tensor {name!r} ends at byte {offset + nbytes}, but tensors.bin "
            f"has only {len(blob)} bytes (truncated file?)."
        )
    data = bytearray(blob[offset : offset + nbytes])
    if numel == 0:
        return name, torch.empty(shape, dtype=dtype), offset + nbytes
    tensor = torch.frombuffer(data, dtype=torch.uint8).view(dtype).reshape(shape)
    if sys.byteorder != "little" and itemsize > 1:
        tensor = torch.from_numpy(tensor.numpy().byteswap())
    return name, tensor, offset + nbytes


def _unpack(index: list[Any], blob: bytes, where: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    end = 0
    for i, entry in enumerate(index):
        name, tensor, stop = _tensor(entry, blob, f"{where}: tensors.json entry {i}")
        if name in out:
            raise SerializationError(f"{where}: tensors.json names tensor {name!r} twice.")
        out[name] = tensor
        end = max(end, stop)
    if end != len(blob):
        raise SerializationError(
            f"{where}: tensors.bin has {len(blob)} bytes, but tensors.json describes "
            f"{end}; the file is damaged or was not written by rewardnets.save."
        )
    return out


#: The most a member may inflate: this many times its compressed size (plus
#: :data:`INFLATE_ALLOWANCE` bytes). rewardnets 0.1 stored ``tensors.bin``
#: uncompressed and deflated the JSON members, which shrink far less than this.
MAX_INFLATION = 100
INFLATE_ALLOWANCE = 1 << 20
#: The largest JSON member; a reward net's documents are a few kilobytes.
MAX_JSON_MEMBER_BYTES = 16 * 1024 * 1024


def _read_member(archive: zipfile.ZipFile, member: str, where: str) -> bytes:
    """Read one member, refusing encryption and sizes a rewardnets file never has.

    The member's declared size is checked against its compressed size before
    anything is inflated, and the read stops one byte past the declared size,
    so that a member which lies about its size cannot inflate without bound.
    """
    info = archive.getinfo(member)
    if info.flag_bits & 0x1:
        raise SerializationError(
            f"{where}: member {member} is encrypted; rewardnets files are never encrypted. "
            "The file was not written by rewardnets.save."
        )
    limit = MAX_INFLATION * info.compress_size + INFLATE_ALLOWANCE
    if member.endswith(".json"):
        limit = min(limit, MAX_JSON_MEMBER_BYTES)
    if info.file_size > limit:
        raise SerializationError(
            f"{where}: member {member} says it inflates to {info.file_size} bytes from "
            f"{info.compress_size}; at most {limit} are read. The file is damaged or hostile "
            "(a zip bomb?)."
        )
    with archive.open(info) as stream:
        content = stream.read(info.file_size + 1)
    if len(content) != info.file_size:
        raise SerializationError(
            f"{where}: member {member} holds {'more' if len(content) > info.file_size else 'less'}"
            f" than the {info.file_size} bytes it declares; the file is damaged."
        )
    return content


def read_zip_file(data: bytes, where: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a v1 file from its bytes.

    Returns:
        ``({"metadata": ..., "spec": ..., "spaces": ...}, tensors)``.

    Raises:
        SerializationError: A member is missing, unexpected, corrupt or not
            JSON, or the tensor index does not match the bytes.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            unexpected = sorted(set(names) - set(MEMBERS))
            if unexpected:
                raise SerializationError(
                    f"{where} holds unexpected members {unexpected}; a rewardnets file holds "
                    f"only {', '.join(MEMBERS)}. It was not written by rewardnets.save and "
                    "was not loaded."
                )
            missing = [m for m in MEMBERS if m not in names]
            if missing:
                raise SerializationError(f"{where} is missing {', '.join(missing)}.")
            raw = {member: _read_member(archive, member, where) for member in MEMBERS}
    except SerializationError:
        raise
    except zipfile.BadZipFile as exc:
        raise SerializationError(
            f"{where} is a damaged zip archive ({exc}); expected a file written by rewardnets.save."
        ) from exc
    except (
        EOFError,
        OSError,
        ValueError,
        zlib.error,
        zipfile.LargeZipFile,
        NotImplementedError,
        RuntimeError,
    ) as exc:
        raise SerializationError(
            f"{where} cannot be read as a zip archive ({exc}); expected a file written "
            "by rewardnets.save."
        ) from exc
    parts = {
        key: parse_json(raw[f"{key}.json"], f"{key}.json", where)
        for key in ("metadata", "spec", "spaces")
    }
    index = parse_json(raw["tensors.json"], "tensors.json", where, list)
    return parts, _unpack(index, raw["tensors.bin"], where)
