"""``rewardnets plugins``: what every plugin contributes and where it comes from."""

from __future__ import annotations

import json

import click

from rewardnets import registry
from rewardnets.errors import RewardNetsError, kind_label


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--verbose", "-v", is_flag=True, help="Show the full traceback of each broken plugin."
)
def plugins(as_json: bool, verbose: bool) -> None:
    """List every plugin, what it contributes, its distribution and version.

    Broken plugins are listed with their error and the hook that failed,
    disabled ones as disabled; names claimed by several plugins are listed
    with the one that is used.
    """
    infos = registry.plugins()
    conflicts = registry.conflicts()
    if as_json:
        data = {
            "plugins": [
                {**info.to_dict(), **({"traceback": info.traceback} if verbose else {})}
                for info in infos
            ],
            "conflicts": [
                {
                    "kind": kind,
                    "name": name,
                    "plugins": [e.plugin for e in entries],
                    "used": _used(kind, name),
                }
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
            click.echo(f"    error in {info.failed_in}: {info.error}")
            if verbose and info.traceback:
                click.echo("    " + info.traceback.rstrip().replace("\n", "\n    "))
        for kind in registry.kinds:
            names = sorted(n for k, n in info.contributions if k == kind)
            if names:
                click.echo(f"    {kind_label(kind)}s: {', '.join(names)}")
    for (kind, name), entries in sorted(conflicts.items()):
        owners = ", ".join(f"{e.plugin} ({e.distribution})" for e in entries)
        used = _used(kind, name)
        outcome = f"using {used}" if used else "unresolved: set REWARDNETS_PREFER"
        click.echo(f"CLASH: {kind_label(kind)} {name!r} is claimed by {owners}; {outcome}")


def _used(kind: str, name: str) -> str | None:
    """The plugin that provides a clashing name, or None while it is unresolved."""
    try:
        return registry.entry(kind, name).plugin
    except RewardNetsError:
        return None
