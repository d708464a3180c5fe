"""The ``rewardnets`` command line."""

from __future__ import annotations

import click

from rewardnets.apps.cli.compare_cmd import compare
from rewardnets.apps.cli.export_cmd import export
from rewardnets.apps.cli.inspect_cmd import inspect
from rewardnets.apps.cli.learn_cmd import learn
from rewardnets.apps.cli.pipeline_cmd import pipeline
from rewardnets.apps.cli.plot_cmd import plot
from rewardnets.apps.cli.plugins_cmd import plugins
from rewardnets.apps.cli.train_cmd import train_policy

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rewardnets")
def cli() -> None:
    """Reward networks for reward learning: plugins, training and inspection."""


cli.add_command(plugins)
cli.add_command(inspect)
cli.add_command(export)
cli.add_command(learn)
cli.add_command(train_policy)
cli.add_command(compare)
cli.add_command(plot)
cli.add_command(pipeline)


def main() -> None:
    """Run the command line."""
    cli()
