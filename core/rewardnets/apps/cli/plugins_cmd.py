"""``rewardnets plugins``: what every plugin contributes and where it comes from."""

from __future__ import annotations

import json

import click

from rewardnets import registry
from rewardnets.errors import kind_label


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def plugins(as_json: bool) -> None:
    """List every plugin, what it contributes, its distribution and version.

    Broken plugins are listed with their error, disabled ones as disabled.
    """
    infos = registry.plugins()
    conflicts = registry.conflicts()
    if as_json:
        data = {
            "plugins": [info.to_dict() for info in infos],
            "conflicts": [
                {"kind": kind, "name": name, "plugins": [e.plugin for e in entries]}
                for (kind, name), entries in sorted(conflicts.items())
            ],
        }
        click.echo(json.dumps(data, indent=2))
        return
    if not infos:
        click.echo("No rewardnets plugins found.")
    for info in infos:
        origin = f"{info.distribution or '<registered in code>'} {info.version or ''}".strip()
        click.echo(f"{info.name}  [{info.status}]  from {origin}  ({info.value})")
        if info.error:
            click.echo(f"    error: {info.error}")
        for kind in registry.kinds:
            names = sorted(n for k, n in info.contributions if k == kind)
            if names:
                click.echo(f"    {kind_label(kind)}s: {', '.join(names)}")
    for (kind, name), entries in sorted(conflicts.items()):
        owners = ", ".join(e.plugin for e in entries)
        click.echo(f"CONFLICT: {kind_label(kind)} {name!r} is claimed by {owners}")
