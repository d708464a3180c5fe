"""What the rewardnets file formats share: the errors, atomic writes, sniffing, versions.

``rewardnets.save`` writes format v2, a plain safetensors file
(:mod:`rewardnets.files.safetensors_format`); format v1, a zip of JSON and raw
tensor bytes (:mod:`rewardnets.files.zip_format`), is still read. Both carry
the same three JSON documents next to the tensors of the state dict:

``metadata``
    The versions that wrote the file and the plugin names it needs, each with
    its distribution; ``format`` and ``format_version``.
``spec``
    The net's spec (see :func:`rewardnets.build_reward_net`).
``spaces``
    The observation and action spaces (see :mod:`rewardnets.files.spaces_json`).
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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from rewardnets.errors import RewardNetsError, UnknownNameError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MissingPluginError",
    "SAFETENSORS_KIND",
    "SaveError",
    "SerializationError",
    "SpaceMismatchError",
    "UnknownSavedNameError",
    "UnsafePickleError",
    "ZIP_KIND",
    "atomic_write",
    "MAX_JSON_DEPTH",
    "check_format_version",
    "check_metadata",
    "json_depth",
    "looks_like_safetensors",
    "parse_json",
    "sniff",
]

FORMAT_NAME = "rewardnets"
#: The version ``rewardnets.save`` writes, and the newest this release reads.
FORMAT_VERSION = 2
#: How deep a file's JSON documents may nest lists and objects. A spec nests a
#: few levels per ensemble or wrapper, a Dict space a few per level.
MAX_JSON_DEPTH = 100
#: The kinds :func:`sniff` tells apart.
ZIP_KIND, SAFETENSORS_KIND = "rewardnets-zip", "safetensors"


class SerializationError(RewardNetsError, ValueError):
    """A reward-net file that cannot be written or read."""


class SaveError(SerializationError, OSError):
    """A file could not be written; the destination is untouched (an ``OSError`` too)."""


class UnsafePickleError(SerializationError):
    """A pickle refers to something outside the allow-list; it was not loaded."""


class MissingPluginError(SerializationError):
    """A file needs a plugin that is not installed (or is disabled)."""


class UnknownSavedNameError(MissingPluginError, UnknownNameError):
    """A file names a net or wrapper that no plugin provides.

    A :class:`MissingPluginError` (so a :class:`SerializationError`, as every
    error about a file's content is) and an :class:`UnknownNameError` (so
    ``except KeyError`` keeps working); the message lists close matches.
    """

    def __init__(self, message: str, error: UnknownNameError) -> None:
        self.kind, self.name, self.known = error.kind, error.name, error.known
        Exception.__init__(self, message)


class SpaceMismatchError(SerializationError):
    """A net's spaces differ from those of the environment it is used with."""


# --------------------------------------------------------------------- atomic write
_umask_lock = threading.Lock()


def _default_mode() -> int:
    with _umask_lock:
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


#: The suffix of the temporary files :func:`atomic_write` makes (and cleans up).
TEMP_SUFFIX = ".rewardnets-tmp"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _clean_stale_temporaries(directory: Path) -> None:
    """Remove temporaries of ours left by processes that died mid-save (e.g. SIGKILL).

    A temporary is named ``.<name>.<pid>.<random>.rewardnets-tmp``; one whose
    process no longer runs cannot be in use. Others (a concurrent writer) are
    left alone.
    """
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if not entry.name.endswith(TEMP_SUFFIX) or not entry.is_file(follow_symlinks=False):
            continue
        parts = entry.name[: -len(TEMP_SUFFIX)].rsplit(".", 2)
        if len(parts) == 3 and parts[1].isdigit() and not _pid_alive(int(parts[1])):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Write a file so that readers see the old or the new content, never half.

    ``write`` fills a temporary file in the same directory; it is flushed and
    fsynced, then moved over ``path`` with :func:`os.replace`. If ``write``
    raises, ``path`` is untouched and the temporary file is removed; if the
    process dies, the next save into that directory removes it.

    Args:
        path: The destination.
        write: Called with the open temporary file.

    Returns:
        The destination as a :class:`~pathlib.Path`.

    Raises:
        SerializationError: The destination is empty or a directory.
        SaveError: It cannot be written (a read-only folder, a full disk); the
            message says that the destination is untouched.
        FileNotFoundError: Its directory does not exist.
    """
    if not str(path):
        raise SerializationError("Cannot save to '': expected a file path.")
    target = Path(path)
    if target.is_dir():
        raise SerializationError(
            f"Cannot save to {str(target)!r}: it is a directory; expected a file path "
            "(nothing was written)."
        )
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(
            f"Cannot save to {str(target)!r}: the directory {str(directory)!r} does not exist."
        )
    _clean_stale_temporaries(directory)
    mode = target.stat().st_mode & 0o777 if target.exists() else _default_mode()
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=directory
        )
    except OSError as exc:
        raise SaveError(
            f"Cannot save to {str(target)!r}: cannot create a file in {str(directory)!r} "
            f"({exc.strerror or exc}); {_untouched(target)}"
        ) from exc
    try:
        with os.fdopen(fd, "wb") as tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError) and not isinstance(exc, SaveError):
            raise SaveError(
                f"Cannot save to {str(target)!r}: writing failed ({exc.strerror or exc}); "
                f"{_untouched(target)}"
            ) from exc
        raise
    if sys.platform != "win32":  # make the rename itself durable
        with contextlib.suppress(OSError):
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    return target


def _untouched(target: Path) -> str:
    if target.exists():
        return f"{str(target)!r} is untouched."
    return f"nothing was written to {str(target)!r}."


# ---------------------------------------------------------------------------- sniff
@contextlib.contextmanager
def _zip(data: bytes) -> Iterator[zipfile.ZipFile | None]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError, RuntimeError):
        yield None
        return
    with archive:
        yield archive


def sniff(data: bytes, where: str) -> str:
    """Say what kind of file ``data`` is.

    Returns:
        ``"safetensors"`` (a safetensors file: format v2 of ``rewardnets.save``,
        or a safetensors file of another program, which the reader refuses),
        ``"rewardnets-zip"`` (format v1), ``"torch-zip"`` (``torch.save``) or
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
            return ZIP_KIND
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
    if looks_like_safetensors(data):  # before pickles: a length may start with 0x80 0x02
        return SAFETENSORS_KIND
    if data[:1] == b"\x80" and len(data) > 2 and data[1] in range(2, 6):
        return "torch-legacy"
    raise SerializationError(f"{where} {_describe_foreign(data)}; {expected}.")


def looks_like_safetensors(data: bytes) -> bool:
    """Whether ``data`` starts as a safetensors file does.

    A safetensors file is an 8-byte little-endian header length, then the
    header, a JSON object. A text file (JSON included) has printable bytes
    where the length is; a real length has zero bytes at its high end.
    """
    return data[8:9] == b"{" and not _printable(data[:8])


def _printable(data: bytes) -> bool:
    return all(32 <= b < 127 or b in (9, 10, 13) for b in data)


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
    if _printable(data[:256]):
        return "looks like a text file"
    return f"is not a known format (it starts with bytes {data[:8].hex(' ')})"


# ------------------------------------------------------------------ JSON, versions
def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def parse_json(raw: bytes | str, what: str, where: str, kind: type | None = None) -> Any:
    """Parse one of a file's JSON documents, strictly (no ``NaN``/``Infinity``).

    Args:
        raw: The document.
        what: How messages name it (``"spec.json"``, ``"the metadata"``).
        where: How messages name the file.
        kind: The JSON type it must have (``dict`` or ``list``), if any.

    Raises:
        SerializationError: It is not valid JSON, or not of ``kind``.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SerializationError(f"{where}: {what} is not valid JSON: {exc}") from exc
    except RecursionError:
        value = None  # nested past Python's recursion limit: refused just below
        depth = MAX_JSON_DEPTH + 1
    else:
        depth = json_depth(value, MAX_JSON_DEPTH + 1)
    if depth > MAX_JSON_DEPTH:
        raise SerializationError(
            f"{where}: {what} nests arrays and objects more than {MAX_JSON_DEPTH} deep; "
            "a reward net's documents are far flatter. The file is damaged or hostile."
        )
    if kind is not None and not isinstance(value, kind):
        name = (
            "a JSON object" if kind is dict else "a JSON array" if kind is list else kind.__name__
        )
        raise SerializationError(f"{where}: {what} must be {name}, got {_json_type(value)}.")
    return value


def json_depth(value: Any, limit: int) -> int:
    """How deep ``value`` nests lists and dicts (a scalar is 0), counted up to ``limit``.

    Iterative, so that no depth of nesting can exhaust the Python stack.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest >= limit:
                return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def _json_type(value: Any) -> str:
    for kind, name in ((dict, "an object"), (list, "an array"), (str, "a string")):
        if isinstance(value, kind):
            return f"{name} ({json.dumps(value)[:60]})"
    return f"{json.dumps(value)[:60]}"


def check_format_version(version: Any, where: str, meta: Mapping[str, Any]) -> int:
    """Return the file's format version, or say why this release cannot read it.

    Raises:
        SerializationError: The version is not a positive integer, or newer than
            :data:`FORMAT_VERSION`.
    """
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SerializationError(
            f"{where} has format version {version!r}; expected a positive integer "
            f"(this rewardnets reads versions 1 to {FORMAT_VERSION})."
        )
    if version > FORMAT_VERSION:
        raise SerializationError(
            f"{where} has format version {version}; this rewardnets reads versions up to "
            f"{FORMAT_VERSION}. Upgrade rewardnets (the file was written by rewardnets "
            f"{meta.get('rewardnets_version')})."
        )
    return version


#: The fields of the metadata document that rewardnets reads, and their JSON types.
_METADATA_FIELDS: dict[str, tuple[type, str]] = {
    "rewardnets_version": (str, "a string"),
    "torch_version": (str, "a string"),
    "numpy_version": (str, "a string"),
    "python_version": (str, "a string"),
    "created": (str, "a string"),
    "net_class": (str, "a string"),
    "parameter_count": (int, "an integer >= 0"),
    "training": (bool, "true or false"),
    "requires": (list, "an array of objects"),
    "imports": (list, "an array of strings"),
    "user": (dict, "an object"),
}


def check_metadata(meta: Mapping[str, Any], where: str) -> None:
    """Check the JSON types of the metadata fields rewardnets reads (absent ones are fine).

    Raises:
        SerializationError: A field has another JSON type; the message names
            the field, what it holds and what was expected.
    """
    for key, (kind, expected) in _METADATA_FIELDS.items():
        if key not in meta:
            continue
        value = meta[key]
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if ok and key == "parameter_count":
            ok = value >= 0
        elif ok and key == "requires":
            ok = all(isinstance(item, Mapping) for item in value)
        elif ok and key == "imports":
            ok = all(isinstance(item, str) for item in value)
        if not ok:
            raise SerializationError(
                f"{where}: the metadata field {key!r} is {_json_type(value)}; expected {expected}."
            )
