"""The ``rewardnets`` command line: the click group ``cli`` and ``main``.

A stable import path (the console script and tests of plugin commands use it);
the code lives in :mod:`rewardnets.apps.cli`.
"""

from rewardnets.apps.cli import cli, main

__all__ = ["cli", "main"]
