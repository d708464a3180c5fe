"""Saving and loading reward nets, and turning saved nets into reward functions.

Two file formats are read:

* **the rewardnets format**, written by :func:`save`: since version 2 a plain
  safetensors file whose header carries the net's spec, its spaces and
  metadata as JSON (version 1, a zip of JSON and raw tensor bytes, is still
  read). Loading rebuilds the net through the plugin registry and never
  unpickles anything.
* **``torch.save(net, path)`` files**, ours and ``imitation``'s. They are
  pickles, so they are read with a restricted unpickler that resolves only an
  allow-list of names (see :mod:`rewardnets.files.unpickler`); anything else is
  refused with an error naming it, unless the caller passes
  ``trust_pickle=True``. ``imitation``'s nets load as the equivalent
  rewardnets nets, without ``imitation`` installed.

No loader ever imports a module that a file names.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import re
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardnets.errors import PluginConflictError, UnknownNameError
from rewardnets.files.format import (
    FORMAT_NAME,
    MAX_JSON_DEPTH,
    SAFETENSORS_KIND,
    ZIP_KIND,
    MissingPluginError,
    SaveError,
    SerializationError,
    SpaceMismatchError,
    UnknownSavedNameError,
    UnsafePickleError,
    atomic_write,
    check_format_version,
    check_metadata,
    json_depth,
    sniff,
)
from rewardnets.files.imitation import ImitationObject, convert
from rewardnets.files.loaded_checks import (
    check_module_tree,
    check_real_tensors,
    check_spaces_state,
    check_statistics,
)
from rewardnets.files.safetensors_format import read_safetensors_file, write_safetensors_file
from rewardnets.files.spaces_json import SpaceCodecError, space_from_json, space_to_json
from rewardnets.files.unpickler import imported_module_class, load_torch_file
from rewardnets.files.zip_format import read_zip_file
from rewardnets.framework.build import _name_and_kwargs, build_reward_net, normalize_config
from rewardnets.framework.reward_net import RewardNet, RewardNetWrapper
from rewardnets.framework.spec import reward_net_spec
from rewardnets.plugin_registry.configurable import SpecError
from rewardnets.plugin_registry.registry import registry
from rewardnets.version import __version__

__all__ = [
    "MissingPluginError",
    "SaveError",
    "SerializationError",
    "SpaceMismatchError",
    "UnknownSavedNameError",
    "UnsafePickleError",
    "MAX_SPEC_PARTS",
    "MAX_STACK_DEPTH",
    "UnsafeSpecError",
    "load",
    "read_bytes",
    "save",
    "wrapper_stack",
]

PathLike = str | os.PathLike[str]


class UnsafeSpecError(SerializationError):
    """A spec names something that the rewardnets format will not build."""


# ----------------------------------------------------------------------------- save


def _class_in_imported_module(ref: str, where: str) -> Any:
    """Return the ``torch.nn.Module`` subclass named ``"module:Qual.Name"``, never importing."""
    module_name, _, qualname = ref.partition(":")
    module = sys.modules.get(module_name)
    if module is None:
        raise SerializationError(
            f"{where} uses {ref!r}, whose module {module_name!r} is not imported. rewardnets "
            f"never imports a module that a file names: `import {module_name}` yourself, "
            "then load again."
        )
    obj = imported_module_class(module_name, qualname)
    if obj is None:
        raise UnsafeSpecError(
            f"{where} names {ref!r}, which is not a torch.nn.Module subclass of module "
            f"{module_name!r}. The rewardnets format builds only registered names and "
            "nn.Module classes of imported modules."
        )
    return obj


def _spec_names(
    spec: Any, where: str, *, saving: bool = False
) -> tuple[list[dict[str, Any]], list[str]]:
    """Check every name a spec makes the builder resolve; return requirements and imports.

    Args:
        spec: The spec.
        where: How error messages name the file (or the net being saved).
        saving: The spec is that of a live net, so a ``"module:Name"`` whose
            module is not imported is recorded rather than refused.

    Returns:
        The registered names the spec uses, each with the plugin and
        distribution that provide it, and its ``"module:Name"`` strings.

    Raises:
        UnsafeSpecError: A ``"module:Name"`` is not an ``nn.Module`` subclass.
        SerializationError: A ``"module:Name"`` names a module that is not imported.
    """
    found: dict[tuple[str, str], dict[str, Any]] = {}
    imports: set[str] = set()

    def note(kind: str, name: Any) -> Any:
        if not isinstance(name, str):
            return None
        if kind == "object" and ":" not in name:
            obj = getattr(torch.nn, name, None) if not name.startswith("_") else None
            if obj is not None and not isinstance(obj, type):
                raise UnsafeSpecError(f"{where} names torch.nn.{name}, which is not a class.")
            return obj
        if kind != "object" and name in registry.names(kind):
            entry = registry.entry(kind, name)
            found[kind, name] = {
                "kind": kind,
                "name": name,
                "distribution": entry.distribution,
                "version": entry.version,
                "plugin": entry.plugin,
            }
            return entry.obj
        if ":" in name:
            imports.add(name)
            if saving and name.partition(":")[0] not in sys.modules:
                return None
            return _class_in_imported_module(name, where)
        return None  # unknown: building it raises UnknownNameError with close matches

    parts = 0

    def named(kind: str, name: Any, kwargs: Mapping[str, Any]) -> None:
        nonlocal parts
        parts += 1
        if parts > MAX_SPEC_PARTS:
            raise SerializationError(
                f"{where}: the spec builds more than {MAX_SPEC_PARTS} nets, wrappers and "
                "potentials; it is refused (raise rewardnets.files.serialize.MAX_SPEC_PARTS "
                "for a file you trust)."
            )
        refs = getattr(note(kind, name), "config_refs", {})
        for key, value in kwargs.items():
            if key in refs:
                value_of(refs[key], value)

    def value_of(ref: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, (list, tuple)):
            for item in value:
                value_of(ref, item)
        elif ref == "reward_net":
            walk(value)
        elif ref == "potential":
            named("potential", *_name_and_kwargs(value, "a potential"))
        elif isinstance(value, Mapping):  # a class with bound kwargs
            value_of(ref, _name_and_kwargs(value, "a class with kwargs")[0])
        else:
            note(ref, value)

    def walk(config: Any) -> None:
        spec = normalize_config(config)
        named("reward_net", spec["net"], spec["kwargs"])
        for wrapper in spec["wrappers"]:
            named("wrapper", *_name_and_kwargs(wrapper, "a wrapper"))

    try:
        walk(spec)
    except SpecError as exc:
        raise SerializationError(f"{where}: malformed spec: {exc}") from exc
    return sorted(found.values(), key=lambda r: (r["kind"], r["name"])), sorted(imports)


#: The most nets, wrappers and potentials a file's spec may build (an ensemble
#: of 100 shaped, normalised members is 300).
MAX_SPEC_PARTS = 1024


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def save(
    net: RewardNet,
    path: PathLike,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``net`` with its wrappers and normalisation statistics, safely.

    The file (format v2) is a safetensors file of the net's state dict whose
    header also holds the net's spec, its spaces and metadata as JSON; it
    contains no pickle, and ``safetensors.torch.load_file`` reads its tensors.
    It is written to a temporary file in the same directory and moved into
    place only when complete, so an interrupted save leaves any previous file
    intact.

    Args:
        net: The reward net (any wrapper stack).
        path: Where to write the file.
        metadata: Extra JSON-able data to store, returned by
            ``rewardnets inspect`` under ``"user"``.

    Returns:
        The path written.

    Raises:
        SerializationError: The net cannot be written as data (a constructor
            argument that is not JSON-able, a class defined inside a function,
            a space without a JSON form), or ``metadata`` is not JSON-able.
    """
    if not isinstance(net, RewardNet):
        raise SerializationError(f"Expected a RewardNet to save, got {type(net).__name__}.")
    try:
        spec = reward_net_spec(net)
    except SpecError as exc:
        raise SerializationError(f"Cannot save {type(net).__name__}: {exc}") from exc
    local = [s for s in _strings(spec) if "<locals>" in s]
    if local:
        raise SerializationError(
            f"Cannot save {type(net).__name__}: {local[0]!r} is defined inside a function, "
            "so a file cannot name it. Define the class at module level."
        )
    try:
        spaces_json = {
            "observation_space": space_to_json(net.observation_space),
            "action_space": space_to_json(net.action_space),
        }
    except SpaceCodecError as exc:
        raise SerializationError(f"Cannot save {type(net).__name__}: {exc}") from exc
    tensors = net.state_dict()
    requires, imports = _spec_names(spec, f"Cannot save {type(net).__name__}:", saving=True)
    meta: dict[str, Any] = {
        "rewardnets_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "net_class": type(net).__name__,
        "parameter_count": sum(p.numel() for p in net.parameters()),
        "training": net.training,
        "requires": requires,
        "imports": imports,
        "user": dict(metadata or {}),
    }
    parts = {"metadata": meta, "spec": spec, "spaces": spaces_json}
    try:
        json.dumps(parts, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise SerializationError(
            f"Cannot save: the spec or metadata is not JSON-able: {exc}"
        ) from exc
    for key, document in parts.items():
        if json_depth(document, MAX_JSON_DEPTH + 1) > MAX_JSON_DEPTH:
            raise SerializationError(
                f"Cannot save: the {key} nests more than {MAX_JSON_DEPTH} deep, and loading "
                "refuses deeper documents."
            )
    return atomic_write(path, lambda out: write_safetensors_file(out, parts, tensors))


# ----------------------------------------------------------------------------- load
def read_bytes(path: PathLike) -> bytes:
    """Return the content of the file at ``path``.

    Raises:
        FileNotFoundError: There is no file at ``path``.
        SerializationError: ``path`` is a directory or cannot be read.
    """
    target = Path(path)
    if not target.exists():
        raise FileNotFoundError(f"No reward net file at {str(target)!r}.")
    if target.is_dir():
        raise SerializationError(f"{str(target)!r} is a directory; expected a reward net file.")
    try:
        mode = target.stat().st_mode
    except OSError as exc:
        raise SerializationError(f"Cannot read {str(target)!r}: {exc}") from exc
    if not stat.S_ISREG(mode):
        # A FIFO would block, /dev/zero would never end: only regular files are read.
        raise SerializationError(
            f"{str(target)!r} is not a regular file (a pipe, a device or a socket); expected "
            "a reward net file."
        )
    try:
        return target.read_bytes()
    except OSError as exc:
        raise SerializationError(f"Cannot read {str(target)!r}: {exc}") from exc


def _check_requirements(meta: Mapping[str, Any], where: str) -> None:
    missing = []
    requires = meta.get("requires")
    for req in requires if isinstance(requires, list) else []:
        if not isinstance(req, Mapping):
            continue
        kind, name = req.get("kind"), req.get("name")
        if not isinstance(kind, str) or not isinstance(name, str):
            continue
        try:
            registry.entry(kind, name)
        except UnknownNameError:
            missing.append(_missing_requirement(kind, name, req))
        except (ValueError, PluginConflictError):
            continue
    if missing:
        raise MissingPluginError(
            f"{where} needs plugins that are not available: "
            f"{'; '.join(missing)}. Run `rewardnets plugins` to see every plugin."
        )


#: A valid distribution name (PEP 508), the only kind printed in a `pip install` hint.
_DISTRIBUTION_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")


def _missing_requirement(kind: str, name: str, req: Mapping[str, Any]) -> str:
    """Say why a required name is missing: not installed, disabled, or broken."""
    dist, version = req.get("distribution"), req.get("version")
    what = f"{kind.replace('_', ' ')} {name!r}"
    if not isinstance(dist, str) or not _DISTRIBUTION_NAME.match(dist):
        shown = "no distribution" if dist is None else f"a distribution written as {dist!r}"
        return f"{what} (the file names {shown}; register the plugin that provides it)"
    origin = f"distribution {dist!r}" + (f" {version}" if isinstance(version, str) else "")
    states = [p for p in registry.plugin_of(dist) if p.status != "loaded"]
    if any(p.status == "disabled" for p in states):
        return (
            f"{what} (from {origin}, installed but disabled by REWARDNETS_PLUGINS/_DISABLE_PLUGINS)"
        )
    broken = [p for p in states if p.status == "broken"]
    if broken:
        return f"{what} (from {origin}, installed but broken: {broken[0].error})"
    return f"{what} (from {origin}, not installed; pip install {dist})"


def read_parts(
    data: bytes, where: str, kind: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a file of :func:`save` (either version): its JSON documents and its tensors.

    Args:
        data: The file's bytes.
        where: How messages name the file.
        kind: What :func:`~rewardnets.files.format.sniff` said the file is.

    Returns:
        ``({"metadata": ..., "spec": ..., "spaces": ...}, tensors)``; the
        metadata say ``format`` and ``format_version``.

    Raises:
        SerializationError: The file is damaged, of another program, or of an
            unknown version.
    """
    if kind == SAFETENSORS_KIND:
        parts, tensors = read_safetensors_file(data, where)
        check_metadata(parts["metadata"], where)
        return parts, tensors
    if kind != ZIP_KIND:
        raise SerializationError(f"{where} is a {kind} file, not one of rewardnets.save.")
    parts, tensors = read_zip_file(data, where)
    meta = parts["metadata"]
    if not isinstance(meta, Mapping) or meta.get("format") != FORMAT_NAME:
        raise SerializationError(
            f"{where}: metadata.json does not say format {FORMAT_NAME!r}; got "
            f"{meta.get('format') if isinstance(meta, Mapping) else meta!r}."
        )
    if check_format_version(meta.get("format_version"), where, meta) != 1:
        raise SerializationError(
            f"{where} is a zip archive that says format version {meta['format_version']}; "
            "zip archives are version 1 (version 2 files are safetensors files)."
        )
    check_metadata(meta, where)
    return parts, tensors


def _fit_tensors(net: RewardNet, tensors: Mapping[str, torch.Tensor], where: str) -> None:
    """Check that ``tensors`` are those of ``net``: the same names, shapes and dtypes.

    A file of a net converted to another float dtype (``net.double()``) holds
    floats of that dtype only; ``net`` is converted to it, so that the loaded
    net computes in the dtype it was saved in.

    Raises:
        SerializationError: A tensor is missing, unknown, or of another shape or dtype.
    """
    expected = net.state_dict()
    floats = {t.dtype for t in tensors.values() if t.is_floating_point()}
    if len(floats) == 1 and floats != {t.dtype for t in expected.values() if t.is_floating_point()}:
        net.to(next(iter(floats)))
        expected = net.state_dict()
    fail = f"{where}: the saved tensors do not fit the net its spec builds:"
    missing = [name for name in expected if name not in tensors]
    unknown = [name for name in tensors if name not in expected]
    if missing or unknown:
        raise SerializationError(
            f"{fail} missing tensors {missing[:5]}, unknown tensors {unknown[:5]}."
        )
    for name, want in expected.items():
        got = tensors[name]
        if got.dtype != want.dtype or got.shape != want.shape:
            raise SerializationError(
                f"{fail} tensor {name!r} is {_describe(got)}; expected {_describe(want)}."
            )


def _describe(tensor: torch.Tensor) -> str:
    return f"{str(tensor.dtype).removeprefix('torch.')} of shape {list(tensor.shape)}"


def _load_rewardnets(data: bytes, where: str, kind: str) -> RewardNet:
    parts, tensors = read_parts(data, where, kind)
    meta = parts["metadata"]
    _check_requirements(meta, where)
    _spec_names(parts["spec"], where)  # refuses names that are not safe to build
    space_data = parts["spaces"]
    if not isinstance(space_data, Mapping):
        raise SerializationError(f"{where}: spaces.json must hold a dict, got {space_data!r}.")
    try:
        obs_space = space_from_json(space_data.get("observation_space"), "observation_space")
        act_space = space_from_json(space_data.get("action_space"), "action_space")
    except SpaceCodecError as exc:
        raise SerializationError(f"{where}: the spaces: {exc}") from exc
    shadow = _rebuild(parts["spec"], obs_space, act_space, where, on_meta=True)
    if shadow is not None:
        # The tensors the spec asks for are checked against those the file
        # holds before any memory is allocated for them.
        _fit_tensors(shadow, tensors, where)
    # Building draws initial weights; keep the caller's random state as it was.
    with torch.random.fork_rng(devices=[]):
        net = _rebuild(parts["spec"], obs_space, act_space, where, on_meta=False)
    assert net is not None
    _fit_tensors(net, tensors, where)
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise SerializationError(
            f"{where}: the saved tensors do not fit the net its spec builds: {exc}"
        ) from exc
    check_statistics(net, where)
    net.train(bool(meta.get("training", False)))
    return net


def _rebuild(
    spec: Any, obs_space: Any, act_space: Any, where: str, *, on_meta: bool
) -> RewardNet | None:
    """Build a file's net from its spec; with ``on_meta``, on torch's meta device.

    On the meta device modules get shapes and dtypes but no memory. That
    build returns None when the net's constructor computes with its tensors,
    which meta tensors cannot (then only the real build can tell whether the
    spec is sound); any other failure is the spec's and is refused.

    Raises:
        UnknownSavedNameError: The spec names a net or wrapper no plugin provides.
        SerializationError: The spec does not build a reward net.
    """
    try:
        with torch.device("meta") if on_meta else contextlib.nullcontext():
            net = build_reward_net(spec, obs_space, act_space, allow_import=False)
    except UnknownNameError as exc:
        raise UnknownSavedNameError(f"{where}: {exc}", exc) from exc
    except PluginConflictError:
        raise
    except Exception as exc:
        if on_meta and "meta" in str(exc).lower():
            return None
        if not on_meta and not isinstance(
            exc, (SpecError, ValueError, TypeError, AttributeError, RuntimeError)
        ):
            raise
        raise SerializationError(f"{where}: cannot rebuild the net from its spec: {exc}") from exc
    if not isinstance(net, RewardNet):
        raise SerializationError(
            f"{where}: the spec built a {type(net).__name__}, not a RewardNet."
        )
    return net


def _load_torch(
    data: bytes,
    where: str,
    device: torch.device,
    trust_pickle: bool,
    seen: set[str] | None = None,
) -> RewardNet:
    obj = load_torch_file(data, where, map_location=device, trust_pickle=trust_pickle, seen=seen)
    if isinstance(obj, ImitationObject):
        obj = convert(obj, where)
    if not isinstance(obj, RewardNet):
        hint = ""
        if isinstance(obj, Mapping):
            hint = (
                " A state dict alone does not say which net to build; save the whole net "
                "with rewardnets.save(net, path)."
            )
        raise SerializationError(
            f"{where} holds a {type(obj).__module__}.{type(obj).__qualname__}, not a "
            f"RewardNet.{hint}"
        )
    check_module_tree(obj, where)
    try:
        wrapper_stack(obj)
    except SerializationError as exc:
        raise SerializationError(f"{where}: {exc}") from exc
    check_statistics(obj, where)
    check_real_tensors(obj, where)
    check_spaces_state(obj, where)
    return obj


def load(
    path: PathLike,
    device: str | torch.device | None = None,
    *,
    trust_pickle: bool = False,
) -> RewardNet:
    """Load a reward net saved by :func:`save` or by ``torch.save(net, path)``.

    Files written by :func:`save` are rebuilt through the plugin registry from
    their spec; nothing is unpickled. ``torch.save`` files (including those of
    ``imitation``, which load as the equivalent rewardnets nets) are read with
    a restricted unpickler.

    Args:
        path: The file.
        device: Where to put the net; ``None`` means the CPU.
        trust_pickle: For ``torch.save`` files only: load with plain
            ``torch.load``, which runs any code the file names. Pass it only
            for files from someone you trust. Files written by :func:`save`
            ignore it: they hold no code.

    Returns:
        The net, wrappers and normalisation statistics included.

    Raises:
        FileNotFoundError: There is no file at ``path``.
        UnsafePickleError: A ``torch.save`` file names something outside the
            allow-list (the error names it).
        MissingPluginError: The net needs a plugin that is not installed; the
            error names the distribution to install.
        UnknownNameError: The spec names a net or wrapper no plugin provides.
        SerializationError: The file is empty, damaged, of another format, or
            holds something other than a reward net.
    """
    where = str(path)
    data = read_bytes(path)
    kind = sniff(data, where)
    target = torch.device(device if device is not None else "cpu")
    if kind in (ZIP_KIND, SAFETENSORS_KIND):
        net = _load_rewardnets(data, where, kind)
    else:
        net = _load_torch(data, where, target, trust_pickle)
    return net.to(target)


# ------------------------------------------------------------------ reward functions
#: The most wrappers a stack may have; deeper (or cyclic) stacks are refused.
MAX_STACK_DEPTH = 64


def wrapper_stack(net: Any) -> list[str]:
    """Return the class names of ``net``'s wrapper stack, outermost first.

    Raises:
        SerializationError: The stack is cyclic (a wrapper is its own base,
            as a hostile pickle can make it) or deeper than
            :data:`MAX_STACK_DEPTH`.
    """
    names: list[str] = []
    seen: set[int] = set()
    while True:
        if id(net) in seen:
            raise SerializationError(
                f"The wrapper stack {' > '.join(names)} is cyclic: a wrapper is its own base."
            )
        if len(names) >= MAX_STACK_DEPTH:
            raise SerializationError(
                f"The wrapper stack is deeper than {MAX_STACK_DEPTH} wrappers; it is refused."
            )
        seen.add(id(net))
        names.append(type(net).__name__)
        if not isinstance(net, RewardNetWrapper):
            return names
        net = net.base
