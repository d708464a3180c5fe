"""Comparing two rewards (saved nets or an env's true reward) with EPIC and Pearson."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rewardnets.apps.epic import (
    epic_distance,
    pearson_correlation,
    sample_from_space,
    sample_transitions_from_env,
)
from rewardnets.apps.reward_choice import reward_type_of_file
from rewardnets.errors import RewardNetsError
from rewardnets.util import make_vec_env

__all__ = ["TRUE_REWARD", "compare_rewards", "resolve_reward"]

#: The name that selects the environment's true reward instead of a file.
TRUE_REWARD = "true"


def resolve_reward(
    source: str | Path, env_id: str, venv: Any, reward_type: str | None = None
) -> Any:
    """Return the reward function named by ``source``: ``"true"`` or a saved net's path.

    ``reward_type=None`` picks the type that fits the file
    (:func:`~rewardnets.apps.reward_choice.default_reward_type`).

    Raises:
        FileNotFoundError: ``source`` is a path that does not exist.
        RewardNetsError: The env has no known true reward, or the file is bad.
    """
    if str(source) == TRUE_REWARD:
        from rewardnets.apps.true_rewards import true_reward_fn

        return true_reward_fn(env_id)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    from rewardnets.serialize import load_reward

    if reward_type is None:
        reward_type = reward_type_of_file(path)
    return load_reward(reward_type, path, venv)


def compare_rewards(
    reward_a: str | Path,
    reward_b: str | Path,
    env_id: str,
    *,
    reward_type: str | None = None,
    n_samples: int = 1000,
    n_canonical_samples: int = 32,
    discount: float = 0.99,
    seed: int = 0,
) -> dict[str, Any]:
    """Compute the EPIC distance and the Pearson correlation of two rewards.

    Transitions come from a uniformly random policy in ``env_id``; the
    canonicalisation's state samples are next observations of those
    transitions, its action samples are uniform over the action space.

    Args:
        reward_a: ``"true"`` (the env's reward) or the path of a saved net.
        reward_b: The same, for the other reward.
        env_id: The gymnasium env the rewards belong to.
        reward_type: How saved nets are turned into reward functions; None
            picks, for each file, the type that fits it.
        n_samples: Transitions to compare on.
        n_canonical_samples: State and action samples for the canonicalisation;
            each reward is evaluated ``(2 * n_samples + k) * k * k`` times for
            ``k`` samples, so keep it small.
        discount: The discount of the potential shaping EPIC ignores.
        seed: Seeds the transitions and samples.

    Returns:
        ``{"epic": float, "pearson": float, ...}`` with the settings used.
    """
    if n_samples < 2:
        raise RewardNetsError(f"Need at least 2 samples to compare, got {n_samples}.")
    rng = np.random.default_rng(seed)
    venv = make_vec_env(env_id, rng=rng, n_envs=1)
    try:
        fn_a = resolve_reward(reward_a, env_id, venv, reward_type)
        fn_b = resolve_reward(reward_b, env_id, venv, reward_type)
        transitions = sample_transitions_from_env(venv, n_samples, rng)
    finally:
        venv.close()
    pick = rng.choice(n_samples, size=min(n_canonical_samples, n_samples), replace=False)
    next_obs = transitions.next_obs
    if isinstance(next_obs, dict):
        states = {k: v[pick] for k, v in next_obs.items()}
    else:
        states = next_obs[pick]
    actions = sample_from_space(venv.action_space, len(pick), rng)
    epic = epic_distance(
        fn_a,
        fn_b,
        *transitions,
        discount=discount,
        state_samples=states,
        action_samples=actions,
    )
    return {
        "env": env_id,
        "a": str(reward_a),
        "b": str(reward_b),
        "reward_type": reward_type or "follows each file",
        "epic": float(epic),
        "pearson": float(pearson_correlation(fn_a, fn_b, transitions)),
        "n_samples": n_samples,
        "n_canonical_samples": len(pick),
        "discount": discount,
        "seed": seed,
    }
