"""What a saved reward-net file holds, read without trusting it: :func:`describe_file`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rewardnets.errors import RewardNetsError, UnknownNameError
from rewardnets.files.format import SAFETENSORS_KIND, ZIP_KIND, sniff
from rewardnets.files.serialize import (
    _load_rewardnets,
    _load_torch,
    read_bytes,
    read_parts,
    wrapper_stack,
)
from rewardnets.files.spaces_json import space_from_json, space_to_json
from rewardnets.files.unpickler import allowed_globals
from rewardnets.framework.build import _name_and_kwargs, normalize_config
from rewardnets.plugin_registry.registry import registry

__all__ = ["describe_file"]

_STAT_NAMES = ("running_mean", "running_var", "count")


def _listed(tensor: torch.Tensor) -> Any:
    return tensor.detach().cpu().tolist()


def _stats_from_tensors(tensors: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    modules: dict[str, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf in _STAT_NAMES:
            modules.setdefault(prefix, {})[leaf] = _listed(tensor)
    return [
        {"module": prefix or "<net>", **values}
        for prefix, values in sorted(modules.items())
        if "running_mean" in values and "running_var" in values
    ]


def _stats_from_net(net: torch.nn.Module) -> list[dict[str, Any]]:
    out = []
    for name, module in net.named_modules():
        buffers = dict(module.named_buffers(recurse=False))
        if "running_mean" in buffers and "running_var" in buffers:
            entry: dict[str, Any] = {"module": name or "<net>", "layer": type(module).__name__}
            entry.update({k: _listed(buffers[k]) for k in _STAT_NAMES if k in buffers})
            out.append(entry)
    return out


def _installed(kind: str, name: str) -> bool:
    try:
        registry.entry(kind, name)
    except (UnknownNameError, RewardNetsError, ValueError):
        return False
    return True


def _space(space: Any) -> dict[str, Any]:
    try:
        data = space_to_json(space)
    except ValueError:
        data = None
    return {"repr": str(space), "json": data}


def _describe_rewardnets(data: bytes, where: str, kind: str) -> dict[str, Any]:
    parts, tensors = read_parts(data, where, kind)
    meta = parts["metadata"] if isinstance(parts["metadata"], Mapping) else {}
    spaces_data = parts["spaces"] if isinstance(parts["spaces"], Mapping) else {}
    requires = meta.get("requires")
    info: dict[str, Any] = {
        "format": "rewardnets",
        "format_version": meta.get("format_version"),
        "container": "safetensors" if kind == SAFETENSORS_KIND else "zip",
        "written_by": {
            k: meta.get(k)
            for k in ("rewardnets_version", "torch_version", "numpy_version", "python_version")
        },
        "created": meta.get("created"),
        "spec": parts["spec"],
        "observation_space": _space(space_from_json(spaces_data.get("observation_space"))),
        "action_space": _space(space_from_json(spaces_data.get("action_space"))),
        "parameter_count": meta.get("parameter_count"),
        "tensor_count": len(tensors),
        "normalization": _stats_from_tensors(tensors),
        "requires": [
            {**req, "installed": _installed(str(req.get("kind")), str(req.get("name")))}
            for req in (requires if isinstance(requires, list) else [])
            if isinstance(req, Mapping)
        ],
        "imports": list(meta.get("imports") or []),
        "user": meta.get("user") or {},
    }
    try:
        net = _load_rewardnets(data, where, kind)
    except Exception as exc:  # inspect still reports what the file holds
        try:
            spec = normalize_config(parts["spec"])
            wrappers = [_name_and_kwargs(w, "a wrapper")[0] for w in spec["wrappers"]]
            info["stack"] = [*reversed(wrappers), str(spec["net"])]
        except RewardNetsError:
            info["stack"] = ["<unreadable spec>"]
        info["loads"] = False
        info["load_error"] = str(exc)
    else:
        info["stack"] = wrapper_stack(net)
        info["loads"] = True
        info["normalization"] = _stats_from_net(net)
    return info


def _describe_torch(data: bytes, where: str, trust_pickle: bool) -> dict[str, Any]:
    seen: set[str] = set()
    net = _load_torch(data, where, torch.device("cpu"), trust_pickle, seen)
    module_types = {type(m) for m in net.modules()}
    requires = []
    plugin_names = set()
    for entry in registry:
        obj = entry.obj
        if entry.alias_of is not None or not isinstance(obj, type):
            continue
        qualified = f"{obj.__module__}.{obj.__qualname__}"
        plugin_names.add(qualified)
        if qualified in seen or obj in module_types:
            requires.append(
                {
                    "kind": entry.kind,
                    "name": entry.name,
                    "distribution": entry.distribution,
                    "version": entry.version,
                    "plugin": entry.plugin,
                    "installed": True,
                }
            )
    allowed = set(allowed_globals())
    user_classes = sorted(
        name
        for name in seen - allowed - plugin_names
        if not name.startswith(("torch.", "numpy.", "gymnasium.", "imitation.", "rewardnets."))
    )
    imitation = sorted(name for name in seen if name.startswith("imitation."))
    spec: Any = None
    spec_error: str | None = None
    try:
        spec = net.spec
    except RewardNetsError as exc:
        spec_error = str(exc)
    info: dict[str, Any] = {
        "format": "torch.save" + (" (imitation, migrated)" if imitation else ""),
        "format_version": None,
        "stack": wrapper_stack(net),
        "spec": spec,
        "observation_space": _space(net.observation_space),
        "action_space": _space(net.action_space),
        "parameter_count": sum(p.numel() for p in net.parameters()),
        "tensor_count": len(net.state_dict()),
        "normalization": _stats_from_net(net),
        "requires": sorted(requires, key=lambda r: (r["kind"], r["name"])),
        "imports": user_classes,
        "loads": True,
    }
    if imitation:
        info["imitation_classes"] = imitation
    if spec_error:
        info["spec_error"] = spec_error
    return info


def describe_file(path: str | Path, *, trust_pickle: bool = False) -> dict[str, Any]:
    """Return what the reward-net file at ``path`` holds, as JSON-able data.

    Files written by ``rewardnets.save`` are read without unpickling;
    ``torch.save`` files with the restricted unpickler (unless ``trust_pickle``).

    Raises:
        FileNotFoundError: No file at ``path``.
        SerializationError: The file cannot be read (the message says why).
    """
    where = str(path)
    data = read_bytes(path)
    kind = sniff(data, where)
    if kind in (ZIP_KIND, SAFETENSORS_KIND):
        info = _describe_rewardnets(data, where, kind)
    else:
        info = _describe_torch(data, where, trust_pickle)
    return {"path": where, "size_bytes": len(data), **info}
