"""Sampling transitions for EPIC: from spaces, and from an env with a policy."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np

from rewardnets.apps.epic_batches import Transitions, _concat, _copy, _set_row, _take

if TYPE_CHECKING:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import VecEnv

__all__ = ["sample_from_space", "sample_transitions_from_env"]


# ---------------------------------------------------------------------------
# Samples.
# ---------------------------------------------------------------------------


def _seed_from(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _check_rng(rng: Any) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "rng must be a numpy.random.Generator (np.random.default_rng(seed)), got "
            f"{type(rng).__name__}."
        )


def _check_count(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}.")
    return int(n)


def sample_from_space(space: gym.spaces.Space[Any], n: int, rng: np.random.Generator) -> Any:
    """Draw ``n`` independent samples of a gymnasium space as one batch.

    Handy as ``state_samples`` / ``action_samples`` for :func:`epic_distance`
    when the state or action distribution should be the space's own sampling
    distribution (uniform over a bounded Box, over a Discrete…).

    Args:
        space: The space; Dict spaces give a dict of batches.
        n: How many samples.
        rng: The generator the space's seed is drawn from.

    Returns:
        An array of shape ``(n, *space.shape)``, or a dict of them.
    """
    from gymnasium import spaces

    _check_rng(rng)
    n = _check_count(n)
    if isinstance(space, spaces.Dict):
        return {key: sample_from_space(sub, n, rng) for key, sub in space.spaces.items()}
    if not isinstance(space, spaces.Space):
        raise TypeError(f"space must be a gymnasium space, got {type(space).__name__}.")
    local = copy.deepcopy(space)
    local.seed(_seed_from(rng))
    return np.stack([np.asarray(local.sample()) for _ in range(n)])


def _policy_actions(policy: Any, obs: Any) -> np.ndarray:
    if hasattr(policy, "predict"):
        actions, _ = policy.predict(obs, deterministic=False)
    else:
        actions = policy(obs)
    return np.asarray(actions)


def sample_transitions_from_env(
    venv_or_env_id: VecEnv | gym.Env[Any, Any] | str,
    n: int,
    rng: np.random.Generator,
    policy: Any = None,
) -> Transitions:
    """Roll out a policy and return ``n`` transitions.

    At the end of an episode the vector env resets at once; the returned
    ``next_obs`` there is the episode's true last observation
    (``info["terminal_observation"]``), not the first one of the next
    episode. ``dones`` marks episode ends, terminated or truncated.

    Args:
        venv_or_env_id: A Stable-Baselines3 ``VecEnv`` (reseeded from ``rng``
            and reset; not closed), a gymnasium env (wrapped in a
            ``DummyVecEnv``; not closed) or a gymnasium id (made with
            :func:`rewardnets.make_vec_env` with one env, closed afterwards).
        n: How many transitions.
        rng: Seeds the env and the random policy: equal generators give equal
            transitions.
        policy: ``None`` for uniformly random actions from the action space;
            an object with SB3's ``predict(obs, deterministic=False) ->
            (actions, state)`` (an algorithm or a policy); or a callable
            ``obs_batch -> actions_batch``.

    Returns:
        :class:`Transitions` ``(obs, acts, next_obs, dones)`` with ``n`` rows.

    Raises:
        TypeError: ``venv_or_env_id`` is none of the accepted kinds, ``rng``
            is not a ``numpy.random.Generator``, or ``policy`` is neither
            ``None``, callable nor has ``predict``.
        ValueError: ``n`` is not a positive int.
    """
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

    _check_rng(rng)
    n = _check_count(n)
    if policy is not None and not (hasattr(policy, "predict") or callable(policy)):
        raise TypeError(
            "policy must be None (random actions), an object with SB3's predict(obs) or a "
            f"callable obs -> actions; got {type(policy).__name__}."
        )
    close = False
    if isinstance(venv_or_env_id, str):
        from rewardnets.util import make_vec_env

        venv = make_vec_env(venv_or_env_id, rng=rng, n_envs=1)
        close = True
    elif isinstance(venv_or_env_id, VecEnv):
        venv = venv_or_env_id
    elif isinstance(venv_or_env_id, gym.Env):
        env = venv_or_env_id
        venv = DummyVecEnv([lambda: env])
    else:
        raise TypeError(
            "venv_or_env_id must be a Stable-Baselines3 VecEnv, a gymnasium Env or a gymnasium "
            f"id such as 'CartPole-v1'; got {type(venv_or_env_id).__name__}."
        )
    try:
        action_space = copy.deepcopy(venv.action_space)
        action_space.seed(_seed_from(rng))
        venv.seed(_seed_from(rng))
        obs = venv.reset()
        steps = -(-n // venv.num_envs)
        parts: list[tuple[Any, np.ndarray, Any, np.ndarray]] = []
        for _ in range(steps):
            if policy is None:
                acts = np.stack([np.asarray(action_space.sample()) for _ in range(venv.num_envs)])
            else:
                acts = _policy_actions(policy, obs)
            new_obs, _, dones, infos = venv.step(acts)
            next_obs = _copy(new_obs)
            for index in np.flatnonzero(dones):
                _set_row(next_obs, int(index), infos[index]["terminal_observation"])
            parts.append((_copy(obs), np.array(acts, copy=True), next_obs, dones.astype(bool)))
            obs = new_obs
    finally:
        if close:
            venv.close()
    keep = np.arange(n)
    return Transitions(
        obs=_take(_concat([p[0] for p in parts]), keep),
        acts=_take(_concat([p[1] for p in parts]), keep),
        next_obs=_take(_concat([p[2] for p in parts]), keep),
        dones=_take(_concat([p[3] for p in parts]), keep),
    )
