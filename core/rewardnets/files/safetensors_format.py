"""Format v2: a plain safetensors file, with the spec, spaces and metadata as JSON in its header.

The file is what ``safetensors.torch.save(net.state_dict(), metadata=...)``
writes: an 8-byte little-endian header length, the header (a JSON object:
dtype, shape and byte range of each tensor, and a ``__metadata__`` map of
strings), then the tensors' bytes. Any safetensors reader loads the tensors;
``__metadata__`` holds:

``format``
    ``"rewardnets"``.
``format_version``
    ``"2"``.
``metadata``, ``spec``, ``spaces``
    JSON documents (see :mod:`rewardnets.files.format`).

Reading checks the header (its length is bounded, it is a JSON object, the
metadata are strings of JSON of the right type, the tensors fill the file)
before safetensors parses the tensors, so that every damaged or hostile file
gets an error that says what was expected.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import IO, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from rewardnets.files.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    SerializationError,
    check_format_version,
    parse_json,
)

__all__ = ["DOCUMENTS", "MAX_HEADER_BYTES", "read_safetensors_file", "write_safetensors_file"]

#: The JSON documents ``__metadata__`` carries besides ``format`` and ``format_version``.
DOCUMENTS = ("metadata", "spec", "spaces")
#: The largest header a file may have. safetensors itself allows 100 MB; a
#: reward net's header (a few hundred bytes per tensor, plus the spec) is far smaller.
MAX_HEADER_BYTES = 16 * 1024 * 1024

_EXPECTED = "expected a file written by rewardnets.save"


def write_safetensors_file(
    out: IO[bytes], parts: Mapping[str, Any], tensors: Mapping[str, Any]
) -> None:
    """Write a v2 file to the binary stream ``out``.

    Args:
        out: The open (temporary) file.
        parts: The ``metadata``, ``spec`` and ``spaces`` documents, as JSON data.
        tensors: The state dict.

    Raises:
        SerializationError: An entry of the state dict is not a tensor, or has
            a dtype safetensors does not hold.
    """
    header: dict[str, str] = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)}
    for key in DOCUMENTS:
        header[key] = json.dumps(parts[key], allow_nan=False, separators=(",", ":"))
    flat: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise SerializationError(
                f"State dict entry {name!r} is a {type(tensor).__name__}, not a tensor."
            )
        # A copy of its own: safetensors refuses views and tensors that share memory.
        flat[name] = tensor.detach().to("cpu", copy=True).contiguous()
    try:
        data = save_safetensors(flat, metadata=header)
    except (SafetensorError, ValueError, TypeError, KeyError) as exc:
        raise SerializationError(f"Cannot write the tensors as safetensors: {exc}") from exc
    out.write(data)


def _header(data: bytes, where: str) -> tuple[dict[str, Any], int]:
    """The parsed header of a safetensors file and its length, checked."""
    if len(data) < 8:
        raise SerializationError(
            f"{where} is truncated: {len(data)} bytes, fewer than the 8 of a safetensors "
            f"header length; {_EXPECTED}."
        )
    (length,) = struct.unpack_from("<Q", data)
    if length >= 1 << 63:
        raise SerializationError(
            f"{where}: the safetensors header length is negative ({length - (1 << 64)} as a "
            f"signed 64-bit integer); expected 2 to {MAX_HEADER_BYTES} bytes. The file is "
            "damaged or hostile."
        )
    if not 2 <= length <= MAX_HEADER_BYTES:
        raise SerializationError(
            f"{where}: the safetensors header length is {length} bytes; expected 2 to "
            f"{MAX_HEADER_BYTES}. The file is damaged or hostile."
        )
    if 8 + length > len(data):
        raise SerializationError(
            f"{where} is truncated: its safetensors header is {length} bytes, but only "
            f"{len(data) - 8} bytes follow the length; {_EXPECTED}."
        )
    return parse_json(data[8 : 8 + length], "the safetensors header", where, dict), length


def _data_end(header: Mapping[str, Any]) -> int | None:
    """The byte where the header's tensors end (after the header), if it says clearly."""
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, Mapping) else None
        if not (isinstance(offsets, list) and len(offsets) == 2):
            return None
        if not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets):
            return None
        end = max(end, offsets[1])
    return end


def _metadata(header: Mapping[str, Any], where: str) -> dict[str, str]:
    meta = header.get("__metadata__")
    if meta is None or (isinstance(meta, Mapping) and meta.get("format") is None):
        raise SerializationError(
            f"{where} is a safetensors file without rewardnets metadata (no "
            f'"format": "rewardnets" in its __metadata__): tensors alone do not say '
            f"which net to build; {_EXPECTED}. safetensors.torch.load_file reads its tensors."
        )
    if not isinstance(meta, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
    ):
        raise SerializationError(
            f"{where}: the safetensors __metadata__ must map strings to strings, got "
            f"{json.dumps(meta)[:80]}; {_EXPECTED}."
        )
    if meta["format"] != FORMAT_NAME:
        raise SerializationError(
            f"{where}: the safetensors metadata say format {meta['format']!r}; expected "
            f"{FORMAT_NAME!r}, {_EXPECTED}."
        )
    return dict(meta)


def read_safetensors_file(
    data: bytes, where: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a v2 file from its bytes.

    Returns:
        ``({"metadata": ..., "spec": ..., "spaces": ...}, tensors)``; the
        metadata include ``format`` and ``format_version``.

    Raises:
        SerializationError: The file is truncated, its header is too long,
            negative, not JSON or not a rewardnets header, a document is
            missing, not JSON or of the wrong JSON type, the version is
            unknown, or safetensors refuses the tensors.
    """
    header, length = _header(data, where)
    meta = _metadata(header, where)
    missing = [key for key in (*DOCUMENTS, "format_version") if key not in meta]
    if missing:
        raise SerializationError(
            f"{where}: the safetensors metadata lack {', '.join(missing)}; {_EXPECTED}."
        )
    parts: dict[str, Any] = {
        key: parse_json(meta[key], f"the {key} document", where, dict) for key in DOCUMENTS
    }
    version = check_format_version(meta["format_version"], where, parts["metadata"])
    if version != FORMAT_VERSION:
        raise SerializationError(
            f"{where} is a safetensors file that says format version {version}; rewardnets "
            f"writes safetensors files as version {FORMAT_VERSION} only; {_EXPECTED}."
        )
    parts["metadata"] = {**parts["metadata"], "format": FORMAT_NAME, "format_version": version}
    available = len(data) - 8 - length
    end = _data_end(header)
    if end is not None and end > available:
        raise SerializationError(
            f"{where} is truncated: its tensors need {end} bytes after the header, but the "
            f"file has {available}; {_EXPECTED}."
        )
    try:
        tensors = load_safetensors(data)
    except (SafetensorError, ValueError, TypeError, OverflowError) as exc:
        raise SerializationError(
            f"{where}: safetensors cannot read the tensors ({exc}); {_EXPECTED}."
        ) from exc
    return parts, tensors
