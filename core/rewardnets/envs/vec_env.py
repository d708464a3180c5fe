"""Environment helpers: :func:`make_vec_env`.

This module imports Stable-Baselines3; ``import rewardnets`` does not import it
until :func:`make_vec_env` is first used.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import find_highest_version, parse_env_id
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from rewardnets.errors import RewardNetsError

__all__ = ["PostWrapper", "UnknownEnvError", "make_seeds", "make_vec_env"]

#: A wrapper applied to each env after ``Monitor``: ``(env, env_index) -> env``.
PostWrapper = Callable[[gym.Env, int], gym.Env]


class UnknownEnvError(RewardNetsError, gym.error.Error, ValueError):
    """An environment id that gymnasium's registry does not know.

    Also a ``gymnasium.error.Error`` and a ``ValueError``, so that code catching
    either keeps working.
    """

    def __init__(self, env_name: str, reason: str = "") -> None:
        self.env_name = env_name
        self.close_matches = _close_env_ids(env_name)
        msg = f"Unknown environment id {env_name!r}"
        msg += f" ({reason})." if reason else "."
        if self.close_matches:
            msg += " Did you mean " + ", ".join(repr(m) for m in self.close_matches) + "?"
        msg += (
            " Ids look like 'Name-v1' or 'namespace/Name-v1'; an env from another package "
            "is registered when that package is imported (or write 'module:Name-v1'). "
            "`gymnasium.pprint_registry()` lists every registered id."
        )
        super().__init__(msg)


def _close_env_ids(env_name: str, n: int = 5) -> list[str]:
    """Registered env ids that look like ``env_name`` (case-insensitively)."""
    name = env_name.rsplit(":", 1)[-1]
    by_lower: dict[str, str] = {}
    for env_id in gym.registry:
        by_lower.setdefault(env_id.lower(), env_id)
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)
    return [by_lower[m] for m in matches]


def _check_env_id(env_name: str) -> None:
    """Raise :class:`UnknownEnvError` unless ``gymnasium.make(env_name)`` can find it."""
    if not isinstance(env_name, str):
        raise TypeError(f"env_name must be a str such as 'CartPole-v1', got {env_name!r}.")
    module, _, name = env_name.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            raise UnknownEnvError(
                env_name, f"importing the module {module!r} that should register it failed: {err}"
            ) from err
    if name in gym.registry:
        return
    try:
        namespace, base, version = parse_env_id(name)
    except gym.error.Error as err:
        raise UnknownEnvError(env_name, str(err)) from err
    if version is None and find_highest_version(namespace, base) is not None:
        return  # gymnasium.make picks the latest version of an unversioned id
    raise UnknownEnvError(env_name)


def make_seeds(rng: np.random.Generator, n: int) -> list[int]:
    """Draw ``n`` independent env seeds from ``rng``.

    Args:
        rng: The random generator.
        n: How many seeds.

    Returns:
        Python ints in ``[0, 2**31 - 1)``.
    """
    return [int(seed) for seed in rng.integers(0, 2**31 - 1, size=n)]


def _make_env(
    env_name: str,
    index: int,
    seed: int,
    max_episode_steps: int | None,
    monitor_path: str | None,
    post_wrappers: Sequence[PostWrapper],
    env_make_kwargs: Mapping[str, Any],
) -> gym.Env:
    """Build, seed and wrap env number ``index`` (runs in the worker for SubprocVecEnv)."""
    env = gym.make(env_name, max_episode_steps=max_episode_steps, **env_make_kwargs)
    # Seeding the first reset seeds the env's generator for the whole run: the
    # vector env's own first reset (with seed=None) continues from it.
    env.reset(seed=seed)
    env.action_space.seed(seed)
    env.observation_space.seed(seed)
    env = Monitor(env, monitor_path)
    for wrapper in post_wrappers:
        env = wrapper(env, index)
    return env


def make_vec_env(
    env_name: str,
    *,
    rng: np.random.Generator,
    n_envs: int = 8,
    parallel: bool = False,
    max_episode_steps: int | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    post_wrappers: Sequence[PostWrapper] | None = None,
    env_make_kwargs: Mapping[str, Any] | None = None,
) -> VecEnv:
    """Make a seeded, monitored vector env from a gymnasium id.

    Each env gets its own seed drawn from ``rng`` (its first reset, its action
    and observation spaces are seeded with it), so two calls with generators
    in the same state give identical envs. Every env is wrapped in SB3's
    ``Monitor``, then in ``post_wrappers`` in order.

    Args:
        env_name: A gymnasium id such as ``"CartPole-v1"`` (``"module:Id"``
            imports ``module`` first).
        rng: Random generator the env seeds are drawn from.
        n_envs: Number of envs.
        parallel: Run each env in its own process (``SubprocVecEnv``) instead of
            stepping them in turn in this process (``DummyVecEnv``).
        max_episode_steps: Override the id's episode time limit.
        log_dir: When given, the ``Monitor`` files go to
            ``log_dir/monitor/mon000.monitor.csv``, one per env.
        post_wrappers: Callables ``(env, env_index) -> env`` applied to each
            env after ``Monitor``. With ``parallel=True`` they must pickle.
        env_make_kwargs: Keyword arguments for the env constructor
            (``gymnasium.make``).

    Returns:
        The vector env, not yet reset.

    Raises:
        UnknownEnvError: ``env_name`` is not registered; the message lists
            close matches.
        TypeError: ``rng`` is not a ``numpy.random.Generator``.
        ValueError: ``n_envs`` is not a positive int.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}."
        )
    if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
        raise ValueError(f"n_envs must be a positive int, got {n_envs!r}.")
    _check_env_id(env_name)
    wrappers = list(post_wrappers or [])
    for wrapper in wrappers:
        if not callable(wrapper):
            raise TypeError(
                "post_wrappers must be callables (env, env_index) -> env; got "
                f"{type(wrapper).__name__}."
            )
    make_kwargs = dict(env_make_kwargs or {})
    monitor_dir: Path | None = None
    if log_dir is not None:
        monitor_dir = Path(log_dir) / "monitor"
        monitor_dir.mkdir(parents=True, exist_ok=True)
    env_fns: list[Callable[[], gym.Env]] = [
        functools.partial(
            _make_env,
            env_name,
            index,
            seed,
            max_episode_steps,
            None if monitor_dir is None else str(monitor_dir / f"mon{index:03d}"),
            wrappers,
            make_kwargs,
        )
        for index, seed in enumerate(make_seeds(rng, n_envs))
    ]
    if parallel:
        return SubprocVecEnv(env_fns)
    return DummyVecEnv(env_fns)
