"""``rewardnets inspect PATH``: what a saved reward net holds, without trusting it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from rewardnets.errors import RewardNetsError, kind_label
from rewardnets.serialize import describe_file

__all__ = ["inspect"]


def _fmt_values(values: Any) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in values) + "]"
    return str(values)


def _printable(text: str) -> str:
    """``text`` with control characters escaped: strings from a file never drive the terminal."""
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def _echo(line: str) -> None:
    click.echo(_printable(line))


def _print_human(info: Mapping[str, Any]) -> None:
    fmt = info["format"]
    if info.get("format_version") is not None:
        fmt += f" format v{info['format_version']}"
    if info.get("container"):
        fmt += f" ({info['container']})"
    written = info.get("written_by") or {}
    if written.get("rewardnets_version"):
        fmt += (
            f", written by rewardnets {written['rewardnets_version']} "
            f"(torch {written.get('torch_version')})"
        )
    _echo(f"File:         {info['path']} ({info['size_bytes']} bytes)")
    _echo(f"Format:       {fmt}")
    _echo(f"Net:          {' > '.join(info['stack'])}")
    _echo(f"Observations: {info['observation_space']['repr']}")
    _echo(f"Actions:      {info['action_space']['repr']}")
    count = info.get("parameter_count")
    _echo(f"Parameters:   {count:,}" if isinstance(count, int) else "Parameters:   unknown")
    if not info.get("loads", True):
        _echo(f"Loads here:   no: {info.get('load_error')}")
    if info.get("imitation_classes"):
        _echo(f"Migrated:     from {', '.join(info['imitation_classes'])}")
    stats = info.get("normalization") or []
    _echo("Normalisation statistics:" + ("" if stats else " none"))
    for entry in stats:
        layer = f" ({entry['layer']})" if entry.get("layer") else ""
        _echo(
            f"  {entry['module']}{layer}: mean {_fmt_values(entry.get('running_mean'))}, "
            f"var {_fmt_values(entry.get('running_var'))}, count {entry.get('count')}"
        )
    requires = info.get("requires") or []
    _echo("Plugins needed:" + ("" if requires else " none"))
    for req in requires:
        status = "installed" if req.get("installed") else "NOT INSTALLED"
        origin = f"{req.get('distribution') or '<registered in code>'} {req.get('version') or ''}"
        _echo(
            f"  {kind_label(str(req.get('kind')))} {req.get('name')}  from {origin.strip()}  "
            f"[{status}]"
        )
    imports = info.get("imports") or []
    if imports:
        _echo(f"Imports:      {', '.join(imports)}")


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
    statistics and the plugins the file needs. Exits with status 1 when the
    file cannot be read, or is described but does not load here (a missing
    plugin, tensors that do not fit its spec).
    Reads files of rewardnets.save without unpickling, and torch.save files
    (including imitation's) with the restricted unpickler.
    """
    try:
        info = describe_file(path, trust_pickle=trust_pickle)
    except (RewardNetsError, OSError, ValueError, TypeError) as exc:
        message = " ".join(str(exc).split())
        raise click.ClickException(message) from None
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        _print_human(info)
    if not info.get("loads", True):
        raise SystemExit(1)  # described, but it does not load here: say so to scripts
