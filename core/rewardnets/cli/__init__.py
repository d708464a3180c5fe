"""The ``rewardnets`` command line."""

from __future__ import annotations

import click

from rewardnets.cli.plugins_cmd import plugins

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rewardnets")
def cli() -> None:
    """Reward networks for reward learning: plugins, training and inspection."""


cli.add_command(plugins)


def main() -> None:
    """Run the command line."""
    cli()
