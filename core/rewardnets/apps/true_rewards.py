"""The ground-truth rewards of gymnasium environments, as reward functions.

Each function here computes an environment's own reward from the
observations and actions alone, as a batch reward function
``(obs, acts, next_obs, dones) -> rewards`` of shape ``(batch,)``. That lets
:func:`rewardnets.apps.epic.epic_distance` compare a learned reward net with the
reward it was meant to recover::

    from rewardnets.apps.true_rewards import true_reward_fn

    reward = true_reward_fn("Pendulum-v1")

Each one reproduces the reward that gymnasium's implementation returns for
the same step (checked against the environments in the test suite), for the
environment's default constructor arguments.

Some of these rewards are constant (CartPole's +1 per step, MountainCar's -1
per step): a correlation-based distance such as EPIC is undefined for them,
and :func:`rewardnets.apps.epic.epic_distance` raises
:class:`rewardnets.apps.epic.ConstantRewardError` saying so.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import numpy as np

from rewardnets.errors import RewardNetsError

__all__ = [
    "TRUE_REWARDS",
    "UnknownTrueRewardError",
    "acrobot_reward",
    "cartpole_reward",
    "known_env_ids",
    "mountain_car_continuous_reward",
    "mountain_car_reward",
    "pendulum_reward",
    "true_reward_fn",
]

RewardFn = Callable[[Any, Any, Any, Any], np.ndarray]


class UnknownTrueRewardError(RewardNetsError, KeyError):
    """No ground-truth reward function is known for an environment id.

    Also a ``KeyError``; prints its message as plain text.
    """

    def __init__(self, env_id: str, known: list[str]) -> None:
        self.env_id = env_id
        self.known = known
        by_lower = {k.lower(): k for k in known}
        close = difflib.get_close_matches(env_id.lower(), list(by_lower), n=3, cutoff=0.5)
        msg = f"No ground-truth reward function is known for the env id {env_id!r}."
        if close:
            msg += " Did you mean " + " or ".join(repr(by_lower[c]) for c in close) + "?"
        msg += f" Known env ids: {', '.join(known)}."
        super().__init__(msg)

    def __str__(self) -> str:
        return str(self.args[0])


def _rows(array: Any, name: str, width: int) -> np.ndarray:
    """``array`` as float64 of shape ``(batch, width)``, with a clear error otherwise."""
    values = np.asarray(array, dtype=np.float64)
    if values.ndim == 1 and width == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[1] != width:
        raise ValueError(f"{name} must have shape (batch, {width}); got shape {values.shape}.")
    return values


def _batch_size(obs: Any, width: int) -> int:
    return _rows(obs, "obs", width).shape[0]


def pendulum_reward(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    """The reward of ``Pendulum-v1``: ``-(theta² + 0.1·theta_dot² + 0.001·u²)``.

    ``theta`` (normalised to ``[-pi, pi]``) and ``theta_dot`` are those of the
    state *before* the step, read from ``obs = [cos theta, sin theta,
    theta_dot]``; ``u`` is the torque clipped to ``[-2, 2]``, as the env
    applies it.

    Args:
        obs: Observations, shape ``(batch, 3)``.
        acts: Torques, shape ``(batch, 1)`` or ``(batch,)``.
        next_obs: Unused.
        dones: Unused.

    Returns:
        Rewards, float64, shape ``(batch,)``.
    """
    o = _rows(obs, "obs", 3)
    u = np.clip(_rows(acts, "acts", 1)[:, 0], -2.0, 2.0)
    theta = np.arctan2(o[:, 1], o[:, 0])
    theta_dot = o[:, 2]
    return -(theta**2 + 0.1 * theta_dot**2 + 0.001 * u**2)


def mountain_car_continuous_reward(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    """The reward of ``MountainCarContinuous-v0``: ``100·[goal reached] - 0.1·a²``.

    The goal is reached when the *next* state has position ``>= 0.45`` and
    velocity ``>= 0``. The action penalty uses the action as given, not
    clipped (as the env computes it).

    Args:
        obs: Unused (shape ``(batch, 2)``).
        acts: Forces, shape ``(batch, 1)`` or ``(batch,)``.
        next_obs: Next observations ``[position, velocity]``, shape ``(batch, 2)``.
        dones: Unused: the goal test reads ``next_obs``, so a time-limit
            truncation does not count as reaching the goal.

    Returns:
        Rewards, float64, shape ``(batch,)``.
    """
    nxt = _rows(next_obs, "next_obs", 2)
    force = _rows(acts, "acts", 1)[:, 0]
    reached = (nxt[:, 0] >= 0.45) & (nxt[:, 1] >= 0.0)
    return np.where(reached, 100.0, 0.0) - 0.1 * force**2


def acrobot_reward(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    """The reward of ``Acrobot-v1``: 0 when the next state is terminal, else -1.

    The next state is terminal when the free end is above the bar:
    ``-cos(theta1) - cos(theta1 + theta2) > 1``, read from ``next_obs =
    [cos theta1, sin theta1, cos theta2, sin theta2, ...]``.

    Args:
        obs: Unused.
        acts: Unused.
        next_obs: Next observations, shape ``(batch, 6)``.
        dones: Unused (truncation is not termination).

    Returns:
        Rewards, float64, shape ``(batch,)``.
    """
    nxt = _rows(next_obs, "next_obs", 6)
    cos1, sin1, cos2, sin2 = nxt[:, 0], nxt[:, 1], nxt[:, 2], nxt[:, 3]
    cos12 = cos1 * cos2 - sin1 * sin2
    return np.where(-cos1 - cos12 > 1.0, 0.0, -1.0)


def cartpole_reward(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    """The reward of ``CartPole-v1`` (and ``-v0``): +1 for every step.

    A constant: EPIC and Pearson comparisons with it are undefined.

    Args:
        obs: Observations, shape ``(batch, 4)``; only the batch size is used.
        acts: Unused.
        next_obs: Unused.
        dones: Unused.

    Returns:
        Ones, float64, shape ``(batch,)``.
    """
    return np.ones(_batch_size(obs, 4))


def mountain_car_reward(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    """The reward of ``MountainCar-v0``: -1 for every step.

    A constant: EPIC and Pearson comparisons with it are undefined.

    Args:
        obs: Observations, shape ``(batch, 2)``; only the batch size is used.
        acts: Unused.
        next_obs: Unused.
        dones: Unused.

    Returns:
        Minus ones, float64, shape ``(batch,)``.
    """
    return -np.ones(_batch_size(obs, 2))


#: Env id → its ground-truth reward function.
TRUE_REWARDS: dict[str, RewardFn] = {
    "Acrobot-v1": acrobot_reward,
    "CartPole-v0": cartpole_reward,
    "CartPole-v1": cartpole_reward,
    "MountainCar-v0": mountain_car_reward,
    "MountainCarContinuous-v0": mountain_car_continuous_reward,
    "Pendulum-v1": pendulum_reward,
}


def known_env_ids() -> list[str]:
    """The env ids that :func:`true_reward_fn` knows, sorted."""
    return sorted(TRUE_REWARDS)


def true_reward_fn(env_id: str) -> RewardFn:
    """The ground-truth reward function of a gymnasium environment.

    Args:
        env_id: A gymnasium id such as ``"Pendulum-v1"``; a ``"module:"``
            prefix is ignored.

    Returns:
        A reward function ``(obs, acts, next_obs, dones) -> rewards`` that
        reproduces the env's own reward.

    Raises:
        UnknownTrueRewardError: No reward is known for ``env_id``; the message
            lists close matches and every known id. Also a ``KeyError``.
        TypeError: ``env_id`` is not a string.
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a str such as 'Pendulum-v1', got {env_id!r}.")
    name = env_id.rpartition(":")[2]
    try:
        return TRUE_REWARDS[name]
    except KeyError:
        raise UnknownTrueRewardError(env_id, known_env_ids()) from None
