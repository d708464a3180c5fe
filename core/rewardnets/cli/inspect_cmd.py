"""``rewardnets inspect PATH``: what a saved reward net holds, without trusting it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import torch

from rewardnets._registry import registry
from rewardnets.errors import RewardNetsError, UnknownNameError, kind_label

__all__ = ["describe", "inspect"]

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
    from rewardnets._spaces_json import space_to_json

    try:
        data = space_to_json(space)
    except ValueError:
        data = None
    return {"repr": str(space), "json": data}


def _describe_rewardnets(data: bytes, where: str) -> dict[str, Any]:
    from rewardnets._safe_format import read_archive, unpack_tensors
    from rewardnets._spaces_json import space_from_json
    from rewardnets._spec import _name_and_kwargs, normalize_config
    from rewardnets.serialize import _load_rewardnets, wrapper_stack

    parts, blob = read_archive(data, where)
    meta = parts["metadata"] if isinstance(parts["metadata"], Mapping) else {}
    tensors = unpack_tensors(parts["tensors"], blob, where)
    spaces_data = parts["spaces"] if isinstance(parts["spaces"], Mapping) else {}
    info: dict[str, Any] = {
        "format": "rewardnets",
        "format_version": meta.get("format_version"),
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
            for req in meta.get("requires") or []
            if isinstance(req, Mapping)
        ],
        "imports": list(meta.get("imports") or []),
        "user": meta.get("user") or {},
    }
    try:
        net = _load_rewardnets(data, where)
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
    from rewardnets._safe_unpickle import allowed_globals
    from rewardnets.serialize import _load_torch, wrapper_stack

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


def describe(path: str | Path, *, trust_pickle: bool = False) -> dict[str, Any]:
    """Return what the reward-net file at ``path`` holds, as JSON-able data.

    Files written by ``rewardnets.save`` are read without unpickling;
    ``torch.save`` files with the restricted unpickler (unless ``trust_pickle``).

    Raises:
        FileNotFoundError: No file at ``path``.
        SerializationError: The file cannot be read (the message says why).
    """
    from rewardnets._safe_format import sniff
    from rewardnets.serialize import read_bytes

    where = str(path)
    data = read_bytes(path)
    kind = sniff(data, where)
    if kind == "rewardnets":
        info = _describe_rewardnets(data, where)
    else:
        info = _describe_torch(data, where, trust_pickle)
    return {"path": where, "size_bytes": len(data), **info}


def _fmt_values(values: Any) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in values) + "]"
    return str(values)


def _print_human(info: Mapping[str, Any]) -> None:
    fmt = info["format"]
    if info.get("format_version") is not None:
        fmt += f" format v{info['format_version']}"
    written = info.get("written_by") or {}
    if written.get("rewardnets_version"):
        fmt += (
            f", written by rewardnets {written['rewardnets_version']} "
            f"(torch {written.get('torch_version')})"
        )
    click.echo(f"File:         {info['path']} ({info['size_bytes']} bytes)")
    click.echo(f"Format:       {fmt}")
    click.echo(f"Net:          {' > '.join(info['stack'])}")
    click.echo(f"Observations: {info['observation_space']['repr']}")
    click.echo(f"Actions:      {info['action_space']['repr']}")
    count = info.get("parameter_count")
    click.echo(f"Parameters:   {count:,}" if isinstance(count, int) else "Parameters:   unknown")
    if not info.get("loads", True):
        click.echo(f"Loads here:   no: {info.get('load_error')}")
    if info.get("imitation_classes"):
        click.echo(f"Migrated:     from {', '.join(info['imitation_classes'])}")
    stats = info.get("normalization") or []
    click.echo("Normalisation statistics:" + ("" if stats else " none"))
    for entry in stats:
        layer = f" ({entry['layer']})" if entry.get("layer") else ""
        click.echo(
            f"  {entry['module']}{layer}: mean {_fmt_values(entry.get('running_mean'))}, "
            f"var {_fmt_values(entry.get('running_var'))}, count {entry.get('count')}"
        )
    requires = info.get("requires") or []
    click.echo("Plugins needed:" + ("" if requires else " none"))
    for req in requires:
        status = "installed" if req.get("installed") else "NOT INSTALLED"
        origin = f"{req.get('distribution') or '<registered in code>'} {req.get('version') or ''}"
        click.echo(
            f"  {kind_label(str(req.get('kind')))} {req.get('name')}  from {origin.strip()}  "
            f"[{status}]"
        )
    imports = info.get("imports") or []
    if imports:
        click.echo(f"Imports:      {', '.join(imports)}")


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="For torch.save files: unpickle without restrictions. Runs any code the file "
    "names; only for files you trust.",
)
def inspect(path: Path, as_json: bool, trust_pickle: bool) -> None:
    """Show what a saved reward net holds, without trusting it.

    Prints the wrapper stack, spaces, parameter count, normalisation
    statistics and the plugins the file needs.
    Reads files of rewardnets.save without unpickling, and torch.save files
    (including imitation's) with the restricted unpickler.
    """
    try:
        info = describe(path, trust_pickle=trust_pickle)
    except (RewardNetsError, OSError, ValueError, TypeError) as exc:
        message = " ".join(str(exc).split())
        raise click.ClickException(message) from None
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        _print_human(info)
