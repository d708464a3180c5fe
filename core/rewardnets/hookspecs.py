"""The hooks a plugin implements, and ``hookimpl`` to mark them.

A stable import path; the code lives in :mod:`rewardnets.plugin_registry.hookspecs`.
"""

from rewardnets.plugin_registry.hookspecs import *  # noqa: F403
from rewardnets.plugin_registry.hookspecs import __all__ as __all__
