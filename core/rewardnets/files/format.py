"""The rewardnets file format: a zip of JSON and raw tensor bytes, no pickle.

A file holds five members, and loading reads nothing else:

``metadata.json``
    ``{"format": "rewardnets", "format_version": 1, ...}``: the versions that
    wrote it and the plugin names it needs, each with its distribution.
``spec.json``
    The net's spec (see :func:`rewardnets.build_reward_net`).
``spaces.json``
    The observation and action spaces (see :mod:`rewardnets.files.spaces_json`).
``tensors.json``
    An index of the state dict: name, dtype, shape and byte range of each tensor.
``tensors.bin``
    The tensors' bytes, little-endian, one after the other.

Also here: the errors of serialisation and :func:`atomic_write`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import torch

from rewardnets.errors import RewardNetsError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MEMBERS",
    "MissingPluginError",
    "SerializationError",
    "SpaceMismatchError",
    "UnsafePickleError",
    "atomic_write",
    "pack_tensors",
    "read_archive",
    "sniff",
    "unpack_tensors",
    "write_archive",
]

FORMAT_NAME = "rewardnets"
FORMAT_VERSION = 1
MEMBERS = ("metadata.json", "spec.json", "spaces.json", "tensors.json", "tensors.bin")

#: Tensor dtypes a file may hold, by the name written in ``tensors.json``.
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
_DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}


class SerializationError(RewardNetsError, ValueError):
    """A reward-net file that cannot be written or read."""


class UnsafePickleError(SerializationError):
    """A pickle refers to something outside the allow-list; it was not loaded."""


class MissingPluginError(SerializationError):
    """A file needs a plugin that is not installed (or is disabled)."""


class SpaceMismatchError(SerializationError):
    """A net's spaces differ from those of the environment it is used with."""


# --------------------------------------------------------------------- atomic write
_umask_lock = threading.Lock()


def _default_mode() -> int:
    with _umask_lock:
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Write a file so that readers see the old or the new content, never half.

    ``write`` fills a temporary file in the same directory; it is flushed and
    fsynced, then moved over ``path`` with :func:`os.replace`. If ``write``
    raises (or the process dies), ``path`` is untouched and the temporary file
    is removed (on an exception).

    Args:
        path: The destination.
        write: Called with the open temporary file.

    Returns:
        The destination as a :class:`~pathlib.Path`.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(
            f"Cannot save to {str(target)!r}: the directory {str(directory)!r} does not exist."
        )
    mode = target.stat().st_mode & 0o777 if target.exists() else _default_mode()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    if sys.platform != "win32":  # make the rename itself durable
        with contextlib.suppress(OSError):
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    return target


# -------------------------------------------------------------------------- tensors
def pack_tensors(tensors: Mapping[str, torch.Tensor]) -> tuple[list[dict[str, Any]], bytes]:
    """Turn a state dict into an index and the tensors' raw bytes.

    Raises:
        SerializationError: A tensor has a dtype the format does not hold.
    """
    index: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    offset = 0
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise SerializationError(
                f"State dict entry {name!r} is a {type(tensor).__name__}, not a tensor."
            )
        if tensor.dtype not in _DTYPE_NAMES:
            raise SerializationError(
                f"Tensor {name!r} has dtype {tensor.dtype}; the rewardnets format holds "
                f"{', '.join(DTYPES)}."
            )
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        data = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
        if sys.byteorder != "little" and flat.element_size() > 1:
            data = _swap_bytes(data, flat.element_size())
        index.append(
            {
                "name": name,
                "dtype": _DTYPE_NAMES[tensor.dtype],
                "shape": list(tensor.shape),
                "offset": offset,
                "nbytes": len(data),
            }
        )
        chunks.append(data)
        offset += len(data)
    return index, b"".join(chunks)


def _swap_bytes(data: bytes, itemsize: int) -> bytes:
    import numpy as np

    return np.frombuffer(data, dtype=f"V{itemsize}").view(f"<u{itemsize}").byteswap().tobytes()


def unpack_tensors(index: Any, blob: bytes, where: str) -> dict[str, torch.Tensor]:
    """Rebuild the state dict from :func:`pack_tensors`'s index and bytes.

    Raises:
        SerializationError: The index is malformed or does not match the bytes.
    """
    if not isinstance(index, list):
        raise SerializationError(
            f"{where}: tensors.json must hold a list, got {type(index).__name__}."
        )
    out: dict[str, torch.Tensor] = {}
    end = 0
    for i, entry in enumerate(index):
        label = f"{where}: tensors.json entry {i}"
        if not isinstance(entry, Mapping) or set(entry) != {
            "name",
            "dtype",
            "shape",
            "offset",
            "nbytes",
        }:
            raise SerializationError(
                f"{label}: expected keys name, dtype, shape, offset, nbytes; got {entry!r}."
            )
        name, dtype_name, shape = entry["name"], entry["dtype"], entry["shape"]
        offset, nbytes = entry["offset"], entry["nbytes"]
        if not isinstance(name, str) or name in out:
            raise SerializationError(f"{label}: bad or repeated tensor name {name!r}.")
        if dtype_name not in DTYPES:
            raise SerializationError(
                f"{label}: dtype {dtype_name!r} is not one of {', '.join(DTYPES)}."
            )
        if not (isinstance(shape, list) and all(_is_count(s) for s in shape)):
            raise SerializationError(f"{label}: shape must be a list of sizes, got {shape!r}.")
        dtype = DTYPES[dtype_name]
        numel = 1
        for size in shape:
            numel *= size
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
        end = max(end, offset + nbytes)
        data = bytearray(blob[offset : offset + nbytes])
        if sys.byteorder != "little" and itemsize > 1:
            data = bytearray(_swap_bytes(bytes(data), itemsize))
        if numel == 0:
            tensor = torch.empty(shape, dtype=dtype)
        else:
            tensor = torch.frombuffer(data, dtype=torch.uint8).view(dtype).reshape(shape)
        out[name] = tensor
    if end != len(blob):
        raise SerializationError(
            f"{where}: tensors.bin has {len(blob)} bytes, but tensors.json describes "
            f"{end}; the file is damaged or was not written by rewardnets.save."
        )
    return out


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# -------------------------------------------------------------------------- archive
def write_archive(out: IO[bytes], parts: Mapping[str, Any], blob: bytes) -> None:
    """Write the file's members to the binary stream ``out``.

    Args:
        out: The open (temporary) file.
        parts: ``metadata``, ``spec``, ``spaces`` and ``tensors`` (the index), as JSON data.
        blob: The tensors' bytes.
    """
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in ("metadata", "spec", "spaces", "tensors"):
            text = json.dumps(parts[key], indent=1, sort_keys=False, allow_nan=False)
            archive.writestr(f"{key}.json", text + "\n")
        archive.writestr("tensors.bin", blob, compress_type=zipfile.ZIP_STORED)


def read_archive(data: bytes, where: str) -> tuple[dict[str, Any], bytes]:
    """Read a rewardnets archive from its bytes.

    Returns:
        ``({"metadata": ..., "spec": ..., "spaces": ..., "tensors": ...}, blob)``.

    Raises:
        SerializationError: A member is missing, unexpected, corrupt or not JSON.
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
            parts: dict[str, Any] = {}
            for key in ("metadata", "spec", "spaces", "tensors"):
                raw = archive.read(f"{key}.json")
                try:
                    parts[key] = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
                except (UnicodeDecodeError, ValueError) as exc:
                    raise SerializationError(
                        f"{where}: {key}.json is not valid JSON: {exc}"
                    ) from exc
            blob = archive.read("tensors.bin")
    except zipfile.BadZipFile as exc:
        raise SerializationError(
            f"{where} is a damaged zip archive ({exc}); expected a file written by rewardnets.save."
        ) from exc
    except (EOFError, zlib.error, zipfile.LargeZipFile, NotImplementedError) as exc:
        raise SerializationError(
            f"{where} cannot be read as a zip archive ({exc}); expected a file written "
            "by rewardnets.save."
        ) from exc
    return parts, blob


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


# ---------------------------------------------------------------------------- sniff
@contextlib.contextmanager
def _zip(data: bytes) -> Iterator[zipfile.ZipFile | None]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError):
        yield None
        return
    with archive:
        yield archive


def sniff(data: bytes, where: str) -> str:
    """Say what kind of file ``data`` is.

    Returns:
        ``"rewardnets"`` (our format), ``"torch-zip"`` (``torch.save``) or
        ``"torch-legacy"`` (``torch.save`` with the pre-1.6 format).

    Raises:
        SerializationError: The file is empty, damaged, or of another kind; the
            message says which kind it looks like.
    """
    expected = "expected a reward net saved by rewardnets.save or torch.save"
    if not data:
        raise SerializationError(f"{where} is empty (0 bytes); {expected}.")
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        with _zip(data) as archive:
            if archive is None:
                raise SerializationError(
                    f"{where} starts like a zip archive but cannot be read as one "
                    f"(truncated or corrupted?); {expected}."
                )
            names = archive.namelist()
        if "metadata.json" in names:
            return FORMAT_NAME
        if any(n.endswith("/constants.pkl") for n in names):
            raise SerializationError(
                f"{where} is a TorchScript archive; rewardnets does not load TorchScript. "
                f"{expected[0].upper()}{expected[1:]}."
            )
        if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            return "torch-zip"
        raise SerializationError(
            f"{where} is a zip archive of another kind (members {names[:5]}); {expected}."
        )
    if data[:1] == b"\x80" and len(data) > 2 and data[1] in range(2, 6):
        return "torch-legacy"
    raise SerializationError(f"{where} {_describe_foreign(data)}; {expected}.")


def _describe_foreign(data: bytes) -> str:
    magic = {
        b"\x89PNG": "is a PNG image",
        b"\xff\xd8\xff": "is a JPEG image",
        b"GIF8": "is a GIF image",
        b"%PDF": "is a PDF document",
        b"\x1f\x8b": "is gzip-compressed",
        b"\x93NUMPY": "is a NumPy .npy array",
        b"\x89HDF": "is an HDF5 file",
    }
    for prefix, what in magic.items():
        if data.startswith(prefix):
            return what
    head = data[:64].lstrip()
    if head[:1] in (b"{", b"["):
        return "looks like a JSON document"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in data[:256]):
        return "looks like a text file"
    return f"is not a known format (it starts with bytes {data[:8].hex(' ')})"
