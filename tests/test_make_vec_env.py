"""make_vec_env: seeding from an rng, Monitor files, post-wrappers, clear errors."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import rewardnets
from rewardnets.util import UnknownEnvError, make_seeds, make_vec_env


def rollout(venv: Any, steps: int, seed: int = 0) -> list[np.ndarray]:
    """Reset, then step with seeded random actions; return every observation batch."""
    rng = np.random.default_rng(seed)
    out = [np.array(venv.reset())]
    for _ in range(steps):
        out.append(np.array(venv.step(rng.integers(0, 2, size=venv.num_envs))[0]))
    return out


def test_same_rng_state_gives_identical_envs() -> None:
    a = make_vec_env("CartPole-v1", rng=np.random.default_rng(0), n_envs=3)
    b = make_vec_env("CartPole-v1", rng=np.random.default_rng(0), n_envs=3)
    assert isinstance(a, DummyVecEnv)
    assert a.num_envs == 3
    obs_a, obs_b = rollout(a, 30), rollout(b, 30)
    for x, y in zip(obs_a, obs_b, strict=True):
        np.testing.assert_array_equal(x, y)
    # Each env has its own seed: the first observations differ between envs.
    first = obs_a[0]
    assert len({tuple(row) for row in first}) == 3


def test_seeds_are_drawn_from_the_rng() -> None:
    rng = np.random.default_rng(0)
    first = np.asarray(make_vec_env("CartPole-v1", rng=rng, n_envs=2).reset())
    second = np.asarray(make_vec_env("CartPole-v1", rng=rng, n_envs=2).reset())
    other = np.asarray(make_vec_env("CartPole-v1", rng=np.random.default_rng(1), n_envs=2).reset())
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, other)
    assert make_seeds(np.random.default_rng(0), 4) == make_seeds(np.random.default_rng(0), 4)
    assert len(set(make_seeds(np.random.default_rng(0), 4))) == 4


def test_action_spaces_are_seeded_too() -> None:
    a = make_vec_env("Pendulum-v1", rng=np.random.default_rng(3), n_envs=2)
    b = make_vec_env("Pendulum-v1", rng=np.random.default_rng(3), n_envs=2)
    np.testing.assert_array_equal(a.action_space.sample(), b.action_space.sample())


def test_parallel_uses_subprocesses() -> None:
    # That the processes step exactly like the sequential envs is checked, with
    # the reward wrapper on top, in test_reward_wrapper.py (one subprocess test
    # is enough on a 2-core machine).
    parallel = make_vec_env("CartPole-v1", rng=np.random.default_rng(7), n_envs=2, parallel=True)
    try:
        assert isinstance(parallel, SubprocVecEnv)
        assert parallel.env_is_wrapped(Monitor) == [True, True]
    finally:
        parallel.close()


def test_max_episode_steps_overrides_the_time_limit() -> None:
    venv = make_vec_env("Pendulum-v1", rng=np.random.default_rng(0), n_envs=2, max_episode_steps=4)
    venv.reset()
    acts = np.zeros((2, 1), dtype=np.float32)
    for _ in range(3):
        assert not venv.step(acts)[2].any()
    _, _, dones, infos = venv.step(acts)
    assert dones.all()
    assert all(info["TimeLimit.truncated"] for info in infos)


def test_monitor_files_go_to_log_dir_monitor(tmp_path: Path) -> None:
    venv = make_vec_env(
        "Pendulum-v1",
        rng=np.random.default_rng(0),
        n_envs=2,
        max_episode_steps=5,
        log_dir=tmp_path / "run",
    )
    assert venv.env_is_wrapped(Monitor) == [True, True]
    venv.reset()
    for _ in range(10):
        venv.step(np.zeros((2, 1), dtype=np.float32))
    venv.close()
    files = sorted(p.name for p in (tmp_path / "run" / "monitor").iterdir())
    assert files == ["mon000.monitor.csv", "mon001.monitor.csv"]
    with open(tmp_path / "run" / "monitor" / "mon000.monitor.csv") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    assert [row["l"] for row in rows] == ["5", "5"]


def test_post_wrappers_get_env_and_index_after_monitor() -> None:
    seen: list[tuple[bool, int]] = []

    class Tagged(gym.Wrapper[Any, Any, Any, Any]):
        def __init__(self, env: gym.Env[Any, Any], index: int, tag: str) -> None:
            super().__init__(env)
            self.index = index
            self.tag = tag

    def first(env: gym.Env[Any, Any], index: int) -> gym.Env[Any, Any]:
        seen.append((isinstance(env, Monitor), index))
        return Tagged(env, index, "first")

    def second(env: gym.Env[Any, Any], index: int) -> gym.Env[Any, Any]:
        return Tagged(env, index * 10, "second")

    venv = make_vec_env(
        "CartPole-v1", rng=np.random.default_rng(0), n_envs=3, post_wrappers=[first, second]
    )
    assert seen == [(True, 0), (True, 1), (True, 2)]
    # The outermost wrapper is the last post-wrapper.
    assert venv.get_attr("tag") == ["second"] * 3
    assert venv.get_attr("index") == [0, 10, 20]


def test_env_make_kwargs_reach_the_constructor() -> None:
    venv = make_vec_env(
        "Pendulum-v1", rng=np.random.default_rng(0), n_envs=2, env_make_kwargs={"g": 3.5}
    )
    assert venv.get_attr("g") == [3.5, 3.5]


@pytest.mark.parametrize(
    ("env_id", "suggestion"),
    [
        ("CartPol-v1", "'CartPole-v1'"),
        ("cartpole-v1", "'CartPole-v1'"),
        ("CartPole-v9", "'CartPole-v1'"),
        ("Pendulm-v1", "'Pendulum-v1'"),
    ],
)
def test_unknown_env_id_lists_close_matches(env_id: str, suggestion: str) -> None:
    with pytest.raises(UnknownEnvError, match="Did you mean") as info:
        make_vec_env(env_id, rng=np.random.default_rng(0))
    message = str(info.value)
    assert f"Unknown environment id {env_id!r}" in message
    assert suggestion in message
    assert info.value.env_name == env_id
    # Code that catches gymnasium's or Python's error types keeps working.
    assert isinstance(info.value, gym.error.Error)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, rewardnets.RewardNetsError)


def test_malformed_and_unimportable_ids() -> None:
    with pytest.raises(UnknownEnvError, match="Malformed"):
        make_vec_env("not an id!", rng=np.random.default_rng(0))
    with pytest.raises(UnknownEnvError, match="no_such_module_xyz"):
        make_vec_env("no_such_module_xyz:Thing-v0", rng=np.random.default_rng(0))
    with pytest.raises(UnknownEnvError) as info:
        make_vec_env("TotallyUnrelatedName-v3", rng=np.random.default_rng(0))
    assert "Did you mean" not in str(info.value)
    assert "pprint_registry" in str(info.value)


def test_unversioned_and_module_ids_resolve_like_gymnasium_make() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        venv = make_vec_env("CartPole", rng=np.random.default_rng(0), n_envs=1)
    assert venv.observation_space.shape == (4,)
    venv = make_vec_env("gymnasium.envs.classic_control:CartPole-v1", rng=np.random.default_rng(0))
    assert venv.num_envs == 8


def test_argument_errors() -> None:
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator"):
        make_vec_env("CartPole-v1", rng=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_envs must be a positive int, got 0"):
        make_vec_env("CartPole-v1", rng=np.random.default_rng(0), n_envs=0)
    with pytest.raises(TypeError, match="post_wrappers must be callables"):
        make_vec_env(
            "CartPole-v1",
            rng=np.random.default_rng(0),
            post_wrappers=["Monitor"],  # type: ignore[list-item]
        )
