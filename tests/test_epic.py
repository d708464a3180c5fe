"""EPIC and Pearson: the defining properties, on real gymnasium transitions."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardnets.apps.epic import (
    ConstantRewardError,
    Transitions,
    canonicalize,
    epic_distance,
    pearson_correlation,
    pearson_distance,
    sample_from_space,
    sample_transitions_from_env,
)
from rewardnets.apps.true_rewards import cartpole_reward, pendulum_reward
from rewardnets.errors import RewardNetsError

RewardFn = Callable[[Any, Any, Any, Any], np.ndarray]
GAMMA = 0.9
# Potential shaping cancels exactly when the same samples serve every
# expectation, so only float64 rounding is left (the distance is a sqrt of it).
TOL = 1e-6


class Setup:
    """Transitions of an env and the samples for the canonicalisation."""

    def __init__(self, env_id: str, n: int, n_states: int, n_actions: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        env = gym.make(env_id)
        self.transitions = sample_transitions_from_env(env_id, n, rng)
        extra = sample_transitions_from_env(env_id, 5 * n_states, rng)
        self.state_samples = extra.obs[rng.choice(5 * n_states, n_states, replace=False)]
        self.action_samples = sample_from_space(env.action_space, n_actions, rng)
        env.close()

    def epic(self, a: RewardFn, b: RewardFn, **kwargs: Any) -> float:
        kwargs.setdefault("discount", GAMMA)
        return epic_distance(
            a,
            b,
            *self.transitions,
            state_samples=self.state_samples,
            action_samples=self.action_samples,
            **kwargs,
        )


@functools.cache
def setup(env_id: str) -> Setup:
    if env_id == "Pendulum-v1":
        return Setup(env_id, n=300, n_states=40, n_actions=12, seed=0)
    return Setup(env_id, n=300, n_states=40, n_actions=2, seed=1)


# --- hand-written rewards and potentials -----------------------------------


def _act(acts: Any) -> np.ndarray:
    a = np.asarray(acts, dtype=np.float64)
    return a.reshape(a.shape[0], -1)


def pendulum_goal(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    """Pendulum's own reward plus a term in the next state."""
    return pendulum_reward(obs, acts, next_obs, dones) + 0.5 * np.asarray(next_obs)[:, 0]


def pendulum_spin(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    """An unrelated reward: go fast, push right."""
    return np.asarray(next_obs)[:, 2] ** 2 / 10 + _act(acts)[:, 0]


def cartpole_centre(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    """Keep the cart centred and the pole upright; a small bonus for pushing right."""
    nxt = np.asarray(next_obs, dtype=np.float64)
    return -(nxt[:, 0] ** 2) - 10 * nxt[:, 2] ** 2 + 0.1 * _act(acts)[:, 0]


def cartpole_left(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    """An unrelated reward: move left, push left."""
    return -np.asarray(next_obs, dtype=np.float64)[:, 1] - _act(acts)[:, 0]


def potential(obs: Any) -> np.ndarray:
    o = np.asarray(obs, dtype=np.float64)
    return 3.0 * np.sin(2 * o[:, 0]) + o[:, 1] ** 3 - 0.7 * o[:, 2] * o[:, 0] + 5.0


def shaped(reward: RewardFn, phi: Callable[[Any], np.ndarray], gamma: float) -> RewardFn:
    def fn(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        return reward(obs, acts, next_obs, dones) + gamma * phi(next_obs) - phi(obs)

    return fn


def scaled(reward: RewardFn, c: float) -> RewardFn:
    def fn(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        return c * reward(obs, acts, next_obs, dones)

    return fn


def negated(reward: RewardFn) -> RewardFn:
    return scaled(reward, -1.0)


REWARDS = {
    "Pendulum-v1": (pendulum_goal, pendulum_spin),
    "CartPole-v1": (cartpole_centre, cartpole_left),
}
ENVS = list(REWARDS)


# --- invariances -------------------------------------------------------------


@pytest.mark.parametrize("env_id", ENVS)
@pytest.mark.parametrize("variant", ["shaped", "rescaled", "shaped_and_rescaled", "itself"])
def test_epic_is_zero_for_equivalent_rewards(env_id: str, variant: str) -> None:
    reward = REWARDS[env_id][0]
    other = {
        "shaped": shaped(reward, potential, GAMMA),
        "rescaled": scaled(reward, 7.5),
        "shaped_and_rescaled": scaled(shaped(reward, potential, GAMMA), 0.02),
        "itself": reward,
    }[variant]
    assert setup(env_id).epic(reward, other) < TOL


def test_shaping_fools_pearson_but_not_epic() -> None:
    s = setup("Pendulum-v1")
    other = shaped(pendulum_goal, lambda obs: 10 * potential(obs), GAMMA)
    assert pearson_correlation(pendulum_goal, other, s.transitions) < 0.5
    assert s.epic(pendulum_goal, other) < TOL


def test_shaping_with_a_different_discount_is_not_ignored() -> None:
    s = setup("Pendulum-v1")
    other = shaped(pendulum_goal, potential, 0.5)
    assert s.epic(pendulum_goal, other, discount=GAMMA) > 0.05


@pytest.mark.parametrize("env_id", ENVS)
def test_epic_is_symmetric_and_in_unit_interval(env_id: str) -> None:
    s = setup(env_id)
    a, b = REWARDS[env_id]
    candidates = [a, b, negated(a), shaped(b, potential, GAMMA)]
    for x, y in itertools.combinations(candidates, 2):
        d_xy, d_yx = s.epic(x, y), s.epic(y, x)
        assert d_xy == pytest.approx(d_yx, abs=1e-12)
        assert 0.0 <= d_xy <= 1.0


@pytest.mark.parametrize("env_id", ENVS)
def test_opposite_rewards_are_at_distance_one(env_id: str) -> None:
    reward = REWARDS[env_id][0]
    assert setup(env_id).epic(reward, negated(reward)) == pytest.approx(1.0, abs=1e-9)
    # Shaping the opposite reward does not bring it closer.
    far = shaped(negated(reward), potential, GAMMA)
    assert setup(env_id).epic(reward, far) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("env_id", ENVS)
def test_unrelated_rewards_are_clearly_apart(env_id: str) -> None:
    a, b = REWARDS[env_id]
    assert setup(env_id).epic(a, b) > 0.1


def test_constant_reward_is_an_error_that_says_why() -> None:
    s = setup("CartPole-v1")
    with pytest.raises(ConstantRewardError, match="constant on these samples") as info:
        s.epic(cartpole_centre, cartpole_reward)
    assert "undefined" in str(info.value)
    assert "cartpole_reward" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_potential_shaped_constant_counts_as_constant() -> None:
    s = setup("Pendulum-v1")

    def zero(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        return np.full(len(obs), 3.0)

    with pytest.raises(ConstantRewardError, match="potential-shaped constant"):
        s.epic(shaped(zero, potential, GAMMA), pendulum_goal)


# --- property-based ------------------------------------------------------------


@functools.cache
def pendulum_small() -> Setup:
    return Setup("Pendulum-v1", n=120, n_states=20, n_actions=8, seed=2)


def _random_reward(rng: np.random.Generator) -> RewardFn:
    """A random linear + quadratic reward of (s, a, s') that surely depends on a."""
    w_s, w_n = rng.normal(size=3), rng.normal(size=3)
    q_s, q_n = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    w_a = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0)
    q_a = rng.normal()

    def fn(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        s, n, a = np.asarray(obs), np.asarray(next_obs), _act(acts)[:, 0]
        quad_s = np.einsum("bi,ij,bj->b", s, q_s, s)
        quad_n = np.einsum("bi,ij,bj->b", n, q_n, n)
        return s @ w_s + n @ w_n + quad_s + quad_n + w_a * a + q_a * a**2

    return fn


def _random_potential(rng: np.random.Generator) -> Callable[[Any], np.ndarray]:
    v, p, offset = rng.normal(size=3), rng.normal(size=(3, 3)), rng.normal() * 10
    freq = rng.normal(size=3)

    def phi(obs: Any) -> np.ndarray:
        s = np.asarray(obs, dtype=np.float64)
        return s @ v + np.einsum("bi,ij,bj->b", s, p, s) + np.sin(s @ freq) + offset

    return phi


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    discount=st.floats(0.0, 1.0),
    scale=st.floats(1e-3, 1e3),
)
def test_epic_ignores_random_shaping_and_scale(seed: int, discount: float, scale: float) -> None:
    rng = np.random.default_rng(seed)
    s = pendulum_small()
    reward = _random_reward(rng)
    other = scaled(shaped(reward, _random_potential(rng), discount), scale)
    assert s.epic(reward, other, discount=discount) < TOL
    assert s.epic(reward, negated(other), discount=discount) == pytest.approx(1.0, abs=1e-9)
    unrelated = _random_reward(rng)
    d = s.epic(reward, unrelated, discount=discount)
    assert 0.0 <= d <= 1.0
    assert d == pytest.approx(s.epic(unrelated, reward, discount=discount), abs=1e-12)


# --- canonicalisation ----------------------------------------------------------


def test_canonicalize_matches_the_definition_computed_by_hand() -> None:
    rng = np.random.default_rng(3)
    obs, next_obs = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    acts, dones = rng.normal(size=(5, 1)), np.zeros(5, dtype=bool)
    states, actions = rng.normal(size=(3, 2)), rng.normal(size=(4, 1))

    def reward(o: Any, a: Any, n: Any, d: Any) -> np.ndarray:
        return np.sin(o[:, 0]) * a[:, 0] + n[:, 1] ** 2 - o[:, 1] * n[:, 0]

    def r(o: np.ndarray, a: np.ndarray, n: np.ndarray) -> float:
        return float(reward(o[None], a[None], n[None], None)[0])

    def mean_from(o: np.ndarray) -> float:
        return float(np.mean([r(o, a, n) for a in actions for n in states]))

    mean_all = np.mean([mean_from(s) for s in states])
    expected = [
        r(obs[i], acts[i], next_obs[i])
        + GAMMA * mean_from(next_obs[i])
        - mean_from(obs[i])
        - GAMMA * mean_all
        for i in range(5)
    ]
    got = canonicalize(
        reward,
        obs,
        acts,
        next_obs,
        dones,
        discount=GAMMA,
        state_samples=states,
        action_samples=actions,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    chunked = canonicalize(
        reward,
        obs,
        acts,
        next_obs,
        dones,
        discount=GAMMA,
        state_samples=states,
        action_samples=actions,
        chunk_size=5,
    )
    np.testing.assert_allclose(chunked, got, rtol=1e-12, atol=1e-12)


def test_sampled_triples_get_dones_false_and_batch_keeps_its_dones() -> None:
    s = setup("CartPole-v1")
    assert s.transitions.dones.any()
    seen: list[np.ndarray] = []

    def reward(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        seen.append(np.asarray(dones))
        return cartpole_centre(obs, acts, next_obs, dones)

    canonicalize(
        reward,
        *s.transitions,
        discount=GAMMA,
        state_samples=s.state_samples,
        action_samples=s.action_samples,
    )
    np.testing.assert_array_equal(seen[0], s.transitions.dones)
    assert not any(d.any() for d in seen[1:])


def test_ignore_dones_makes_terminal_zero_potential_shaping_invisible() -> None:
    s = setup("CartPole-v1")

    def terminal_shaped(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        alive = 1.0 - np.asarray(dones, dtype=np.float64)
        base = cartpole_centre(obs, acts, next_obs, dones)
        return base + GAMMA * alive * potential(next_obs) - potential(obs)

    assert s.epic(cartpole_centre, terminal_shaped, ignore_dones=True) < TOL
    # With the batch's own dones the terminal transitions differ.
    assert s.epic(cartpole_centre, terminal_shaped) > TOL


def test_dict_observations() -> None:
    rng = np.random.default_rng(4)
    obs_space = spaces.Dict(
        {"pos": spaces.Box(-1, 1, (2,), np.float32), "mode": spaces.Discrete(3)}
    )
    act_space = spaces.Box(-1, 1, (1,), np.float32)
    obs, next_obs = sample_from_space(obs_space, 80, rng), sample_from_space(obs_space, 80, rng)
    acts, dones = sample_from_space(act_space, 80, rng), np.zeros(80, dtype=bool)

    def reward(o: Any, a: Any, n: Any, d: Any) -> np.ndarray:
        return n["pos"][:, 0] * (n["mode"] == 1) + a[:, 0] * o["pos"][:, 1]

    def phi(o: Any) -> np.ndarray:
        return np.cos(3 * o["pos"][:, 1]) + o["mode"]

    d = epic_distance(
        reward,
        shaped(reward, phi, GAMMA),
        obs,
        acts,
        next_obs,
        dones,
        discount=GAMMA,
        state_samples=sample_from_space(obs_space, 15, rng),
        action_samples=sample_from_space(act_space, 6, rng),
    )
    assert d < TOL


# --- Pearson -------------------------------------------------------------------


def test_pearson_distance_values() -> None:
    x = np.array([1.0, 2.0, 4.0, 3.0, -1.0])
    assert pearson_distance(x, 2 * x + 3) < 1e-12
    assert pearson_distance(x, -x) == pytest.approx(1.0)
    y = np.array([1.0, -1.0, 1.0, -1.0, 0.0])
    rho = np.corrcoef(x, y)[0, 1]
    assert pearson_distance(x, y) == pytest.approx(np.sqrt((1 - rho) / 2))
    assert pearson_distance(x, y) == pytest.approx(pearson_distance(y, x))


@pytest.mark.parametrize(
    ("x", "y"),
    [([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]), ([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])],
)
def test_pearson_distance_refuses_constant_samples(x: list[float], y: list[float]) -> None:
    with pytest.raises(ConstantRewardError, match=r"constant on these samples.*undefined"):
        pearson_distance(x, y)


def test_pearson_distance_bad_input() -> None:
    with pytest.raises(ValueError, match="same shape"):
        pearson_distance([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2 samples"):
        pearson_distance([1.0], [2.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        pearson_distance(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        pearson_distance([1.0, np.nan], [1.0, 2.0])


def test_pearson_correlation_on_transitions() -> None:
    s = setup("Pendulum-v1")
    assert pearson_correlation(pendulum_goal, scaled(pendulum_goal, 3.0), s.transitions) == (
        pytest.approx(1.0)
    )
    assert pearson_correlation(pendulum_goal, negated(pendulum_goal), s.transitions) == (
        pytest.approx(-1.0)
    )
    with pytest.raises(ValueError, match=r"\(obs, acts, next_obs, dones\)"):
        pearson_correlation(pendulum_goal, pendulum_spin, s.transitions[:3])
    with pytest.raises(ConstantRewardError):
        pearson_correlation(cartpole_centre, cartpole_reward, setup("CartPole-v1").transitions)


# --- input errors ----------------------------------------------------------------


def test_clear_errors_for_bad_batches() -> None:
    s = setup("Pendulum-v1")
    obs, acts, next_obs, dones = s.transitions
    common: dict[str, Any] = {
        "discount": GAMMA,
        "state_samples": s.state_samples,
        "action_samples": s.action_samples,
    }
    with pytest.raises(ValueError, match="same number of transitions"):
        epic_distance(pendulum_goal, pendulum_spin, obs, acts[:-1], next_obs, dones, **common)
    with pytest.raises(ValueError, match=r"state_samples must hold the same kind.*\(3,\).*\(2,\)"):
        epic_distance(
            pendulum_goal,
            pendulum_spin,
            *s.transitions,
            discount=GAMMA,
            state_samples=s.state_samples[:, :2],
            action_samples=s.action_samples,
        )
    with pytest.raises(ValueError, match=r"discount must be in \[0, 1\]"):
        epic_distance(pendulum_goal, pendulum_spin, *s.transitions, **{**common, "discount": 1.5})
    with pytest.raises(TypeError, match="reward_b must be a reward function"):
        epic_distance(pendulum_goal, 3, *s.transitions, **common)  # type: ignore[arg-type]

    def bad_shape(o: Any, a: Any, n: Any, d: Any) -> np.ndarray:
        return np.zeros((len(o), 1))

    with pytest.raises(
        RewardNetsError, match=r"returned shape \(300, 1\).*expected shape \(300,\)"
    ):
        epic_distance(pendulum_goal, bad_shape, *s.transitions, **common)

    def broken(o: Any, a: Any, n: Any, d: Any) -> np.ndarray:
        raise KeyError("boom")

    with pytest.raises(RewardNetsError, match="raised KeyError") as info:
        epic_distance(broken, pendulum_goal, *s.transitions, **common)
    assert isinstance(info.value.__cause__, KeyError)


# --- sampling transitions ----------------------------------------------------------


def test_sample_transitions_uses_terminal_observations() -> None:
    t = setup("CartPole-v1").transitions
    assert isinstance(t, Transitions)
    assert t.obs.shape == t.next_obs.shape == (300, 4)
    assert t.acts.shape == (300,) and t.dones.shape == (300,) and t.dones.dtype == bool
    ends = np.flatnonzero(t.dones)
    assert len(ends) >= 3  # random CartPole episodes are short
    # Inside an episode, next_obs is the following obs; at its end it is the
    # terminal observation (pole fallen or cart out), not the reset one.
    inside = np.setdiff1d(np.arange(299), ends)
    np.testing.assert_array_equal(t.next_obs[inside], t.obs[inside + 1])
    for i in ends[ends < 299]:
        assert not np.array_equal(t.next_obs[i], t.obs[i + 1])
    fallen = (np.abs(t.next_obs[ends, 0]) > 2.4) | (np.abs(t.next_obs[ends, 2]) > 0.2094)
    assert fallen.all()


def test_sample_transitions_is_reproducible_and_accepts_envs_and_policies() -> None:
    a = sample_transitions_from_env("Pendulum-v1", 50, np.random.default_rng(7))
    b = sample_transitions_from_env("Pendulum-v1", 50, np.random.default_rng(7))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)

    venv = DummyVecEnv([lambda: gym.make("Pendulum-v1")] * 2)
    c = sample_transitions_from_env(
        venv, 41, np.random.default_rng(0), policy=lambda obs: -np.clip(obs[:, 2:3], -2, 2)
    )
    assert c.obs.shape == (41, 3) and c.acts.shape == (41, 1)
    np.testing.assert_allclose(c.acts[:, 0], -np.clip(c.obs[:, 2], -2, 2))
    venv.close()

    env = gym.make("CartPole-v1")
    d = sample_transitions_from_env(env, 10, np.random.default_rng(0))
    assert d.obs.shape == (10, 4)
    env.close()

    # Anything with SB3's predict(obs, deterministic=...) -> (actions, state).
    class LeanRight:
        def predict(self, obs: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, None]:
            return (obs[:, 2] > 0).astype(np.int64), None

    e = sample_transitions_from_env("CartPole-v1", 60, np.random.default_rng(0), LeanRight())
    np.testing.assert_array_equal(e.acts, (e.obs[:, 2] > 0).astype(np.int64))


def test_sample_transitions_bad_input() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="VecEnv, a gymnasium Env or a gymnasium id"):
        sample_transitions_from_env(3, 10, rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be a positive int"):
        sample_transitions_from_env("CartPole-v1", 0, rng)
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator"):
        sample_transitions_from_env("CartPole-v1", 5, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="CartPole-v1"):
        sample_transitions_from_env("CartPol-v1", 5, rng)
