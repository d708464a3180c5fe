"""The ``rewardnets`` command line."""

from __future__ import annotations

import warnings

import click

from rewardnets.apps.cli.compare_cmd import compare
from rewardnets.apps.cli.export_cmd import export
from rewardnets.apps.cli.inspect_cmd import inspect
from rewardnets.apps.cli.learn_cmd import learn
from rewardnets.apps.cli.pipeline_cmd import pipeline
from rewardnets.apps.cli.plot_cmd import plot
from rewardnets.apps.cli.plugins_cmd import plugins
from rewardnets.apps.cli.relabel_cmd import relabel
from rewardnets.apps.cli.train_cmd import train_policy

__all__ = ["cli", "main"]


class _PluginCommands(click.Group):
    """The built-in commands, then those that plugins register (``register_commands``).

    A plugin's command that has a built-in command's name is left out, with a
    warning naming its plugin.
    """

    def _plugin_commands(self) -> dict[str, click.Command]:
        from rewardnets import registry

        found: dict[str, click.Command] = {}
        for name in registry.names("command"):
            entry = registry.entry("command", name)
            if name in self.commands:
                warnings.warn(
                    f"Plugin {entry.plugin!r} (distribution {entry.distribution}) registers "
                    f"the command {name!r}, which is a built-in command; it is not added.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            found[name] = entry.obj
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Built-in commands and plugin commands, sorted."""
        return sorted({*self.commands, *self._plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in command, else a plugin's command of that name."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        return self._plugin_commands().get(cmd_name)


@click.group(cls=_PluginCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rewardnets")
def cli() -> None:
    """Reward networks for reward learning: plugins, training and inspection.

    Installed plugins may add commands of their own; they are listed here too.
    """


cli.add_command(plugins)
cli.add_command(inspect)
cli.add_command(export)
cli.add_command(learn)
cli.add_command(train_policy)
cli.add_command(compare)
cli.add_command(plot)
cli.add_command(pipeline)
cli.add_command(relabel)


def main() -> None:
    """Run the command line."""
    cli()
