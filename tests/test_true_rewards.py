"""The ground-truth reward functions reproduce the envs' own rewards exactly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from rewardnets.apps.epic import ConstantRewardError, epic_distance, sample_from_space
from rewardnets.apps.true_rewards import (
    TRUE_REWARDS,
    UnknownTrueRewardError,
    known_env_ids,
    true_reward_fn,
)


def _rollout(
    env_id: str,
    steps: int,
    seed: int,
    sample_action: Callable[[np.random.Generator, gym.Env[Any, Any]], Any] | None = None,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step a real env; return obs, acts, next_obs, dones and the env's rewards."""
    rng = np.random.default_rng(seed)
    env = gym.make(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    if start is not None:  # put the env in a given state, with its observation
        state, obs = start
        env.unwrapped.state = state.copy()  # type: ignore[attr-defined]
    rows: list[tuple[Any, Any, Any, bool, float]] = []
    for _ in range(steps):
        act = env.action_space.sample() if sample_action is None else sample_action(rng, env)
        next_obs, reward, terminated, truncated, _ = env.step(act)
        done = bool(terminated or truncated)
        rows.append((obs, act, next_obs, done, float(reward)))
        obs = env.reset()[0] if done else next_obs
    env.close()
    return tuple(np.array([row[i] for row in rows]) for i in range(5))  # type: ignore[return-value]


def _wide_box_action(width: float) -> Callable[[np.random.Generator, gym.Env[Any, Any]], Any]:
    """Actions up to ``width`` times the bounds, to exercise clipping."""

    def sample(rng: np.random.Generator, env: gym.Env[Any, Any]) -> np.ndarray:
        high = env.action_space.high  # type: ignore[attr-defined]
        return rng.uniform(-width * high, width * high).astype(np.float32)

    return sample


CASES = {
    "Pendulum-v1": {"steps": 450, "sample_action": _wide_box_action(1.5)},
    "MountainCarContinuous-v0": {"steps": 300, "sample_action": _wide_box_action(1.5)},
    "Acrobot-v1": {"steps": 300},
    "CartPole-v0": {"steps": 300},
    "CartPole-v1": {"steps": 300},
    "MountainCar-v0": {"steps": 250},
}


def test_every_known_env_is_tested_and_registered() -> None:
    assert set(CASES) == set(TRUE_REWARDS) == set(known_env_ids())
    assert {"Pendulum-v1", "MountainCarContinuous-v0", "CartPole-v1"} <= set(TRUE_REWARDS)
    for env_id in TRUE_REWARDS:
        assert env_id in gym.registry


OLD_ID = pytest.mark.filterwarnings("ignore:.*is out of date:DeprecationWarning")


@pytest.mark.parametrize(
    "env_id", [pytest.param(e, marks=OLD_ID) if e == "CartPole-v0" else e for e in CASES]
)
def test_reproduces_the_env_reward(env_id: str) -> None:
    obs, acts, next_obs, dones, env_rewards = _rollout(env_id, seed=0, **CASES[env_id])  # type: ignore[arg-type]
    rewards = true_reward_fn(env_id)(obs, acts, next_obs, dones)
    assert rewards.shape == env_rewards.shape
    np.testing.assert_allclose(rewards, env_rewards, rtol=1e-5, atol=1e-8)
    assert np.allclose(rewards, env_rewards)


def test_pendulum_reward_sees_large_angles_and_clipped_torques() -> None:
    obs, acts, next_obs, dones, env_rewards = _rollout(
        "Pendulum-v1", 200, seed=1, sample_action=_wide_box_action(3.0)
    )
    assert np.abs(acts).max() > 2.0  # some torques were clipped by the env
    theta = np.arctan2(obs[:, 1], obs[:, 0])
    assert np.abs(theta).max() > 2.5
    assert np.allclose(true_reward_fn("Pendulum-v1")(obs, acts, next_obs, dones), env_rewards)


def test_mountain_car_continuous_goal_bonus() -> None:
    # Start right below the goal, moving right: the first step reaches it.
    obs, acts, next_obs, dones, env_rewards = _rollout(
        "MountainCarContinuous-v0",
        1,
        seed=0,
        sample_action=lambda rng, env: np.array([0.8], dtype=np.float32),
        start=(np.array([0.44, 0.05]), np.array([0.44, 0.05], dtype=np.float32)),
    )
    assert dones[0] and env_rewards[0] > 99
    rewards = true_reward_fn("MountainCarContinuous-v0")(obs, acts, next_obs, dones)
    assert np.allclose(rewards, env_rewards)


def test_acrobot_terminal_reward() -> None:
    # Both links pointing up: the step ends the episode with reward 0.
    obs, acts, next_obs, dones, env_rewards = _rollout(
        "Acrobot-v1",
        1,
        seed=0,
        start=(np.array([np.pi, 0.0, 0.0, 0.0]), np.array([-1, 0, 1, 0, 0, 0], dtype=np.float32)),
    )
    assert dones[0] and env_rewards[0] == 0.0
    rewards = true_reward_fn("Acrobot-v1")(obs, acts, next_obs, dones)
    assert np.allclose(rewards, env_rewards)


def test_true_reward_in_epic() -> None:
    rng = np.random.default_rng(0)
    env = gym.make("Pendulum-v1")
    n = 100
    obs = sample_from_space(env.observation_space, n, rng)
    next_obs = sample_from_space(env.observation_space, n, rng)
    acts = sample_from_space(env.action_space, n, rng)
    dones = np.zeros(n, dtype=bool)
    true = true_reward_fn("Pendulum-v1")

    def shaped(o: Any, a: Any, n_: Any, d: Any) -> np.ndarray:
        return 2 * (true(o, a, n_, d) + 0.99 * n_[:, 2] ** 2 - o[:, 2] ** 2)

    common: dict[str, Any] = {
        "discount": 0.99,
        "state_samples": obs[:20],
        "action_samples": acts[:10],
    }
    assert epic_distance(true, shaped, obs, acts, next_obs, dones, **common) < 1e-6

    cartpole = true_reward_fn("CartPole-v1")
    cp_obs = np.random.default_rng(1).normal(size=(n, 4)).astype(np.float32)
    cp_acts = np.arange(n) % 2

    def varying(o: Any, a: Any, n_: Any, d: Any) -> np.ndarray:
        return np.asarray(n_)[:, 0]

    with pytest.raises(ConstantRewardError, match=r"constant.*undefined"):
        epic_distance(
            cartpole,
            varying,
            cp_obs,
            cp_acts,
            cp_obs[::-1],
            dones,
            discount=0.99,
            state_samples=cp_obs[:10],
            action_samples=np.array([0, 1]),
        )


def test_unknown_env_id_lists_known_ids_and_close_matches() -> None:
    with pytest.raises(UnknownTrueRewardError) as info:
        true_reward_fn("Pendulum-v0")
    message = str(info.value)
    assert "Did you mean 'Pendulum-v1'" in message
    for env_id in known_env_ids():
        assert env_id in message
    assert isinstance(info.value, KeyError)

    with pytest.raises(UnknownTrueRewardError, match="Did you mean 'CartPole-v"):
        true_reward_fn("cartpole")
    with pytest.raises(UnknownTrueRewardError, match="Known env ids: Acrobot-v1"):
        true_reward_fn("HalfCheetah-v5")
    with pytest.raises(TypeError, match="env_id must be a str"):
        true_reward_fn(3)  # type: ignore[arg-type]


def test_module_prefix_is_ignored_and_shapes_are_checked() -> None:
    assert true_reward_fn("gymnasium.envs:Pendulum-v1") is true_reward_fn("Pendulum-v1")
    fn = true_reward_fn("Pendulum-v1")
    with pytest.raises(ValueError, match=r"obs must have shape \(batch, 3\); got shape \(5, 4\)"):
        fn(np.zeros((5, 4)), np.zeros((5, 1)), np.zeros((5, 4)), np.zeros(5, dtype=bool))
