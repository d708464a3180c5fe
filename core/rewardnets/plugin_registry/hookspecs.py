"""The hooks a plugin implements to contribute to rewardnets.

Each hook receives a ``register`` callback. Call it once per contribution:
``register(name, obj, aliases=())``. The core decides clashes between plugins
and remembers which distribution gave each name.
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

__all__ = [
    "Register",
    "hookimpl",
    "hookspec",
    "register_commands",
    "register_norm_layers",
    "register_potentials",
    "register_query_selectors",
    "register_reward_nets",
    "register_reward_types",
    "register_teachers",
    "register_wrappers",
]

hookspec = pluggy.HookspecMarker("rewardnets")
hookimpl = pluggy.HookimplMarker("rewardnets")


class Register(Protocol):
    """The callback a hook receives: ``register(name, obj, aliases=())``."""

    def __call__(self, name: str, obj: Any, *, aliases: tuple[str, ...] = ()) -> None:
        """Register ``obj`` under ``name`` and each of ``aliases``."""


@hookspec
def register_reward_nets(register: Register) -> None:
    """Register reward-net classes (subclasses of ``RewardNet``)."""


@hookspec
def register_wrappers(register: Register) -> None:
    """Register reward-net wrapper classes (subclasses of ``RewardNetWrapper``)."""


@hookspec
def register_potentials(register: Register) -> None:
    """Register shaping potentials: modules built as ``cls(observation_space, **kwargs)``."""


@hookspec
def register_norm_layers(register: Register) -> None:
    """Register normalisation layers: callables ``(num_features) -> nn.Module``."""


@hookspec
def register_reward_types(register: Register) -> None:
    """Register reward types: ``loader(reward_path, venv, **kwargs) -> RewardFn``."""


@hookspec
def register_commands(register: Register) -> None:
    """Register command-line commands: ``click`` commands added to ``rewardnets``."""


@hookspec
def register_query_selectors(register: Register) -> None:
    """Register query selectors: ``selector(pairs, member_returns, n_queries, rng) -> indices``."""


@hookspec
def register_teachers(register: Register) -> None:
    """Register synthetic teachers: ``factory(**options)(rewards_1, rewards_2, rng) -> prefs``."""
