"""Exceptions raised by rewardnets.

Every error says what was expected and what came, and where it can, what to
change.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "PluginConflictError",
    "PluginError",
    "RewardNetsError",
    "UnknownNameError",
]


class RewardNetsError(Exception):
    """Base class of the errors rewardnets raises on purpose."""


class PluginError(RewardNetsError):
    """A plugin could not be loaded or registered."""


class PluginConflictError(PluginError):
    """Two plugins claim the same name for the same kind of contribution."""


class UnknownNameError(RewardNetsError, KeyError):
    """A name that no registered plugin provides.

    Subclasses :class:`KeyError` so that ``except KeyError`` keeps working, but
    prints its message as plain text.
    """

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        super().__init__(self._message())

    def _message(self) -> str:
        label = kind_label(self.kind)
        msg = f"Unknown {label} {self.name!r}."
        close = difflib.get_close_matches(self.name, self.known, n=3, cutoff=0.6)
        if close:
            msg += " Did you mean " + " or ".join(repr(c) for c in close) + "?"
        if "/" in self.name:
            namespace = self.name.split("/", 1)[0]
            msg += f" Have you installed the package that provides the namespace {namespace!r}?"
        if self.known:
            msg += f" Known {label}s: {', '.join(self.known)}."
        else:
            msg += f" No {label}s are registered (are plugins disabled?)."
        msg += " Run `rewardnets plugins` to see what every plugin provides."
        return msg

    def __str__(self) -> str:
        return str(self.args[0])


_KIND_LABELS = {
    "reward_net": "reward net",
    "wrapper": "reward-net wrapper",
    "potential": "shaping potential",
    "norm_layer": "normalisation layer",
    "reward_type": "reward type",
    "command": "CLI command",
    "query_selector": "query selector",
    "teacher": "teacher",
}


def kind_label(kind: str) -> str:
    """Return the human-readable label of a registry kind."""
    return _KIND_LABELS.get(kind, kind)
