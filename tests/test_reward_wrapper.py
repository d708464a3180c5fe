"""RewardVecEnvWrapper, step by step against an unwrapped twin env with the same seeds."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

import rewardnets
from rewardnets.reward_wrapper import (
    InvalidRewardError,
    RewardFnError,
    RewardVecEnvWrapper,
    describe_reward_fn,
)
from rewardnets.util import UnknownEnvError, make_vec_env

N_ENVS = 3
DICT_ENV_ID = "rewardnets_test/DictWalk-v0"


class DictWalkEnv(gym.Env[dict[str, np.ndarray], np.int64]):
    """A noisy 2-D walk with a Dict observation; it ends when it leaves the unit square."""

    _MOVES = np.array([[0.3, 0.0], [-0.3, 0.0], [0.0, 0.3], [0.0, -0.3]])

    def __init__(self) -> None:
        self.observation_space = spaces.Dict(  # type: ignore[assignment]
            {
                "pos": spaces.Box(-3.0, 3.0, (2,), np.float32),
                "t": spaces.Box(0.0, 100.0, (1,), np.float32),
            }
        )
        self.action_space = spaces.Discrete(4)
        self._pos = np.zeros(2)
        self._t = 0

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "pos": self._pos.astype(np.float32),
            "t": np.array([self._t], dtype=np.float32),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(-0.5, 0.5, 2)
        self._t = 0
        return self._obs(), {}

    def step(
        self, action: np.int64
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        self._pos = self._pos + self._MOVES[int(action)] + self.np_random.normal(0.0, 0.05, 2)
        self._t += 1
        terminated = bool(np.any(np.abs(self._pos) > 1.0))
        return self._obs(), float(-np.linalg.norm(self._pos)), terminated, False, {}


def make_dict_walk(**kwargs: Any) -> gym.Env[Any, Any]:
    return DictWalkEnv(**kwargs)


if DICT_ENV_ID not in gym.registry:
    gym.register(DICT_ENV_ID, entry_point=make_dict_walk, max_episode_steps=25)


def sample_actions(space: spaces.Space[Any], n: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(space, spaces.Discrete):
        return rng.integers(0, int(space.n), size=n)
    assert isinstance(space, spaces.Box)
    return rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(space.dtype)


def copy_obs(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {key: np.array(value) for key, value in obs.items()}
    return np.array(obs)


def set_row(obs: Any, index: int, value: Any) -> None:
    if isinstance(obs, dict):
        for key in obs:
            obs[key][index] = value[key]
    else:
        obs[index] = value


def assert_obs_equal(actual: Any, expected: Any) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict)
        assert set(actual) == set(expected)
        for key in expected:
            np.testing.assert_array_equal(actual[key], expected[key])
    else:
        np.testing.assert_array_equal(actual, expected)


def row(obs: Any, index: int) -> Any:
    if isinstance(obs, dict):
        return {key: value[index] for key, value in obs.items()}
    return obs[index]


class Recorder:
    """A reward function that records copies of its inputs, then calls ``fn``."""

    def __init__(self, fn: Callable[..., np.ndarray]) -> None:
        self.fn = fn
        self.calls: list[tuple[Any, Any, Any, Any]] = []

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        self.calls.append((copy_obs(obs), np.array(acts), copy_obs(next_obs), np.array(dones)))
        return self.fn(obs, acts, next_obs, dones)


def make_twins(
    env_id: str, max_episode_steps: int | None = None, seed: int = 3
) -> tuple[VecEnv, VecEnv]:
    return tuple(  # type: ignore[return-value]
        make_vec_env(
            env_id,
            rng=np.random.default_rng(seed),
            n_envs=N_ENVS,
            max_episode_steps=max_episode_steps,
        )
        for _ in range(2)
    )


@pytest.mark.parametrize(
    ("env_id", "max_episode_steps"),
    [("CartPole-v1", None), ("Pendulum-v1", 12), (DICT_ENV_ID, None)],
)
def test_wrapper_matches_unwrapped_twin_step_by_step(
    env_id: str, max_episode_steps: int | None
) -> None:
    venv, twin = make_twins(env_id, max_episode_steps)
    net = rewardnets.BasicRewardNet(
        venv.observation_space, venv.action_space, use_next_state=True, use_done=True
    )
    recorder = Recorder(net.predict)
    wrapped = RewardVecEnvWrapper(venv, recorder, reset_on_init=False)
    action_rng = np.random.default_rng(11)

    obs_w = wrapped.reset()
    obs_t = twin.reset()
    assert_obs_equal(obs_w, obs_t)

    returns = np.zeros(N_ENVS)
    finished: list[float] = []
    for _ in range(60):
        prev_obs = copy_obs(obs_t)
        acts = sample_actions(venv.action_space, N_ENVS, action_rng)
        obs_w, rew_w, done_w, info_w = wrapped.step(acts)
        obs_t, rew_t, done_t, info_t = twin.step(acts)

        # The agent sees exactly what the unwrapped env returns (reset obs included).
        assert_obs_equal(obs_w, obs_t)
        np.testing.assert_array_equal(done_w, done_t)

        # The reward function got (s, a, s', done), with s' the true last
        # observation, never the reset one, for episodes that just ended.
        expected_next = copy_obs(obs_t)
        for i in np.flatnonzero(done_t):
            terminal = info_t[i]["terminal_observation"]
            assert_obs_equal(info_w[i]["terminal_observation"], terminal)
            set_row(expected_next, int(i), terminal)
        rec_obs, rec_acts, rec_next, rec_dones = recorder.calls[-1]
        assert_obs_equal(rec_obs, prev_obs)
        np.testing.assert_array_equal(rec_acts, acts)
        assert_obs_equal(rec_next, expected_next)
        np.testing.assert_array_equal(rec_dones, done_t)
        for i in np.flatnonzero(done_t):
            with pytest.raises(AssertionError):
                assert_obs_equal(row(rec_next, int(i)), row(obs_w, int(i)))

        # The reward is the function's; the env's own goes to the info.
        assert rew_w.dtype == np.float32
        assert rew_w.shape == (N_ENVS,)
        np.testing.assert_array_equal(rew_w, net.predict(prev_obs, acts, expected_next, done_t))
        assert [info["original_env_rew"] for info in info_w] == list(rew_t)
        assert not np.array_equal(rew_w, rew_t)

        returns += rew_w
        for i in np.flatnonzero(done_t):
            finished.append(float(returns[i]))
            returns[i] = 0.0

    assert len(recorder.calls) == 60
    assert len(finished) >= 3, "the test should see several episode ends"
    assert wrapped.num_episodes == len(finished)
    assert list(wrapped.episode_rewards) == pytest.approx(finished, rel=1e-9)
    wrapped.close()
    twin.close()


def test_episode_rewards_keep_the_latest_ep_history_returns() -> None:
    venv = make_vec_env("CartPole-v1", rng=np.random.default_rng(5), n_envs=N_ENVS)
    wrapped = RewardVecEnvWrapper(venv, lambda o, a, n, d: np.ones(len(d)), ep_history=4)
    wrapped.reset()
    rng = np.random.default_rng(0)
    lengths: list[int] = []
    for _ in range(150):
        _, _, dones, infos = wrapped.step(rng.integers(0, 2, size=N_ENVS))
        lengths += [infos[i]["episode"]["l"] for i in np.flatnonzero(dones)]
    assert len(lengths) > 4
    # A reward of 1 per step makes each return the episode length Monitor saw.
    assert wrapped.episode_rewards.maxlen == 4
    assert list(wrapped.episode_rewards) == [float(n) for n in lengths[-4:]]


def test_reset_drops_partial_returns() -> None:
    venv = make_vec_env("Pendulum-v1", rng=np.random.default_rng(0), n_envs=2, max_episode_steps=5)
    wrapped = RewardVecEnvWrapper(venv, lambda o, a, n, d: np.full(len(d), 2.0))
    wrapped.reset()
    for _ in range(3):
        wrapped.step(np.zeros((2, 1), dtype=np.float32))
    wrapped.reset()
    for _ in range(5):
        wrapped.step(np.zeros((2, 1), dtype=np.float32))
    assert list(wrapped.episode_rewards) == [10.0, 10.0]


def test_reward_fn_can_be_swapped_during_training() -> None:
    venv = make_vec_env("CartPole-v1", rng=np.random.default_rng(1), n_envs=N_ENVS)
    wrapped = RewardVecEnvWrapper(venv, lambda o, a, n, d: np.zeros(len(d)))
    wrapped.reset()
    acts = np.zeros(N_ENVS, dtype=np.int64)
    assert wrapped.reward_fn_version == 0
    np.testing.assert_array_equal(wrapped.step(acts)[1], np.zeros(N_ENVS))

    def plus_one(o: Any, a: Any, n: Any, d: Any) -> np.ndarray:
        return np.ones(len(d))

    wrapped.set_reward_fn(plus_one)
    assert wrapped.reward_fn is plus_one
    assert wrapped.reward_fn_version == 1
    np.testing.assert_array_equal(wrapped.step(acts)[1], np.ones(N_ENVS))

    wrapped.reward_fn = lambda o, a, n, d: np.arange(len(d), dtype=np.float64)
    assert wrapped.reward_fn_version == 2
    np.testing.assert_array_equal(wrapped.step(acts)[1], [0.0, 1.0, 2.0])

    with pytest.raises(TypeError, match="reward_fn must be callable"):
        wrapped.reward_fn = 3.0  # type: ignore[assignment]
    assert wrapped.reward_fn_version == 2


def test_normalized_reward_net_with_frozen_stats_as_eval_reward() -> None:
    venv = make_vec_env("Pendulum-v1", rng=np.random.default_rng(2), n_envs=N_ENVS)
    net = rewardnets.NormalizedRewardNet(
        rewardnets.BasicRewardNet(venv.observation_space, venv.action_space)
    )
    eval_fn = functools.partial(net.predict_processed, update_stats=False)
    wrapped = RewardVecEnvWrapper(venv, eval_fn)
    wrapped.reset()
    for _ in range(5):
        wrapped.step(np.zeros((N_ENVS, 1), dtype=np.float32))
    assert float(net.normalize_output_layer.count) == 0.0

    wrapped.set_reward_fn(net.predict_processed)
    for _ in range(5):
        wrapped.step(np.zeros((N_ENVS, 1), dtype=np.float32))
    assert float(net.normalize_output_layer.count) == 5 * N_ENVS


def test_wrapper_on_subproc_vec_env_matches_dummy_twin() -> None:
    parallel = make_vec_env("CartPole-v1", rng=np.random.default_rng(9), n_envs=2, parallel=True)
    try:
        assert isinstance(parallel, SubprocVecEnv)
        twin = make_vec_env("CartPole-v1", rng=np.random.default_rng(9), n_envs=2)
        recorder = Recorder(lambda o, a, n, d: n[:, 0] - o[:, 0])
        wrapped = RewardVecEnvWrapper(parallel, recorder, reset_on_init=False)
        obs_t = np.asarray(twin.reset())
        np.testing.assert_array_equal(wrapped.reset(), obs_t)
        rng = np.random.default_rng(4)
        ends = 0
        for _ in range(40):
            prev = obs_t.copy()
            acts = rng.integers(0, 2, size=2)
            obs_w, rew_w, done_w, info_w = wrapped.step(acts)
            next_t, rew_t, done_t, info_t = twin.step(acts)
            obs_t = np.asarray(next_t)
            np.testing.assert_array_equal(obs_w, obs_t)
            np.testing.assert_array_equal(done_w, done_t)
            expected_next = obs_t.copy()
            for i in np.flatnonzero(done_t):
                expected_next[i] = info_t[i]["terminal_observation"]
                ends += 1
            np.testing.assert_array_equal(recorder.calls[-1][2], expected_next)
            np.testing.assert_array_equal(
                rew_w, (expected_next[:, 0] - prev[:, 0]).astype(np.float32)
            )
            assert [info["original_env_rew"] for info in info_w] == list(rew_t)
        assert ends > 0
    finally:
        parallel.close()


# --- bad reward functions ----------------------------------------------------------


def reward_wrong_length(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    return np.zeros(len(dones) - 1)


def reward_column(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    return np.zeros((len(dones), 1))


def reward_scalar(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    return np.float64(1.0)


def reward_nan(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    return np.array([0.0, np.nan, 1.0])


def reward_inf(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    return np.array([np.inf, 0.0, 1.0])


def reward_none(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    return None  # type: ignore[return-value]


def reward_strings(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    return np.array(["a", "b", "c"])


def reward_raises(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    raise KeyError("missing feature")


@pytest.fixture
def cartpole_venv() -> VecEnv:
    return make_vec_env("CartPole-v1", rng=np.random.default_rng(0), n_envs=N_ENVS)


@pytest.mark.parametrize(
    ("reward_fn", "pattern"),
    [
        (reward_wrong_length, r"shape \(2,\); expected shape \(3,\)"),
        (reward_column, r"shape \(3, 1\); expected shape \(3,\).*never broadcast.*Squeeze"),
        (reward_scalar, r"shape \(\); expected shape \(3,\).*single number"),
        (reward_nan, r"non-finite rewards at batch indices \[1\]: \[nan\]"),
        (reward_inf, r"non-finite rewards at batch indices \[0\]: \[inf\]"),
        (reward_none, r"returned None; expected a numpy array of shape \(3,\)"),
        (reward_strings, r"dtype <U1; expected real numbers"),
    ],
    ids=lambda v: getattr(v, "__name__", "pattern"),
)
def test_bad_reward_output_is_a_clear_error(
    cartpole_venv: VecEnv, reward_fn: Callable[..., np.ndarray], pattern: str
) -> None:
    wrapped = RewardVecEnvWrapper(cartpole_venv, reward_fn)
    wrapped.reset()
    with pytest.raises(InvalidRewardError, match=pattern) as info:
        wrapped.step(np.zeros(N_ENVS, dtype=np.int64))
    message = str(info.value)
    assert f"test_reward_wrapper.{reward_fn.__name__}" in message
    assert "n_envs=3" in message
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, rewardnets.RewardNetsError)


def test_reward_fn_that_raises_is_wrapped_and_chained(cartpole_venv: VecEnv) -> None:
    wrapped = RewardVecEnvWrapper(cartpole_venv, reward_raises)
    wrapped.reset()
    with pytest.raises(RewardFnError) as info:
        wrapped.step(np.zeros(N_ENVS, dtype=np.int64))
    message = str(info.value)
    assert "test_reward_wrapper.reward_raises raised KeyError" in message
    assert "missing feature" in message
    assert "obs (3, 4), acts (3,), next_obs (3, 4), dones (3,)" in message
    assert "shape (3,)" in message
    assert isinstance(info.value.__cause__, KeyError)
    assert not isinstance(info.value, InvalidRewardError)
    assert isinstance(info.value, RuntimeError)


def test_errors_name_bound_methods_and_partials(cartpole_venv: VecEnv) -> None:
    # A net built for the wrong observation space fails inside the net.
    net = rewardnets.NormalizedRewardNet(
        rewardnets.BasicRewardNet(spaces.Box(-1.0, 1.0, (7,)), spaces.Discrete(2))
    )
    wrapped = RewardVecEnvWrapper(cartpole_venv, net.predict_processed)
    wrapped.reset()
    with pytest.raises(RewardFnError, match=r"^Reward function NormalizedRewardNet\."):
        wrapped.step(np.zeros(N_ENVS, dtype=np.int64))
    frozen = functools.partial(net.predict_processed, update_stats=False)
    assert (
        describe_reward_fn(frozen)
        == "functools.partial(NormalizedRewardNet.predict_processed, update_stats=False)"
    )


def test_wrapper_argument_errors(cartpole_venv: VecEnv) -> None:
    with pytest.raises(TypeError, match="wraps a Stable-Baselines3 VecEnv; got"):
        RewardVecEnvWrapper(gym.make("CartPole-v1"), reward_nan)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reward_fn must be callable"):
        RewardVecEnvWrapper(cartpole_venv, "reward")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ep_history must be a positive int, got 0"):
        RewardVecEnvWrapper(cartpole_venv, reward_nan, ep_history=0)
    wrapped = RewardVecEnvWrapper(cartpole_venv, reward_nan, reset_on_init=False)
    with pytest.raises(RuntimeError, match=r"before reset\(\)"):
        wrapped.step(np.zeros(N_ENVS, dtype=np.int64))
    with pytest.raises(UnknownEnvError):
        make_vec_env("NoSuchEnv-v0", rng=np.random.default_rng(0))


def test_wrapper_passes_attributes_through(cartpole_venv: VecEnv) -> None:
    wrapped = RewardVecEnvWrapper(cartpole_venv, reward_nan)
    assert wrapped.num_envs == N_ENVS
    assert wrapped.observation_space == cartpole_venv.observation_space
    assert wrapped.env_is_wrapped(Monitor) == [True] * N_ENVS
    assert isinstance(wrapped.venv, DummyVecEnv)


# --- training through the wrapper ----------------------------------------------


class CaptureOutput(KVWriter):
    """An SB3 logger output that keeps every dump in memory."""

    def __init__(self) -> None:
        self.dumps: list[dict[str, Any]] = []

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0
    ) -> None:
        self.dumps.append(dict(key_values))

    def close(self) -> None:
        pass


def test_ppo_trains_on_a_normalized_learned_reward_and_logs_it() -> None:
    venv = make_vec_env("CartPole-v1", rng=np.random.default_rng(0), n_envs=4)
    net = rewardnets.NormalizedRewardNet(
        rewardnets.BasicRewardNet(venv.observation_space, venv.action_space)
    )
    wrapped = RewardVecEnvWrapper(venv, net.predict_processed)
    model = PPO(
        "MlpPolicy",
        wrapped,
        n_steps=128,
        batch_size=128,
        n_epochs=2,
        policy_kwargs={"net_arch": [16]},
        seed=0,
        device="cpu",
    )
    capture = CaptureOutput()
    model.set_logger(Logger(folder=None, output_formats=[capture]))
    model.learn(total_timesteps=2048, callback=wrapped.make_log_callback())

    assert model.num_timesteps == 2048
    # Every step went through the reward net, which folded it into its statistics.
    assert float(net.normalize_output_layer.count) == 2048
    logged = [
        d["rollout/ep_rew_wrapped_mean"]
        for d in capture.dumps
        if "rollout/ep_rew_wrapped_mean" in d
    ]
    assert len(logged) == len(capture.dumps) == 4
    assert logged[-1] == pytest.approx(np.mean(wrapped.episode_rewards))
    assert len(wrapped.episode_rewards) > 0
    # SB3's own statistic (from Monitor) is the env's reward: CartPole's episode length.
    env_mean = capture.dumps[-1]["rollout/ep_rew_mean"]
    assert env_mean >= 8
    assert logged[-1] != pytest.approx(env_mean)


def test_log_callback_key_and_type() -> None:
    venv = make_vec_env("CartPole-v1", rng=np.random.default_rng(0), n_envs=2)
    wrapped = RewardVecEnvWrapper(venv, reward_nan)
    callback = wrapped.make_log_callback(key="custom/wrapped")
    assert callback.key == "custom/wrapped"
    assert callback.wrapper is wrapped
    with pytest.raises(TypeError, match="Expected a RewardVecEnvWrapper"):
        type(callback)(venv)  # type: ignore[arg-type]


def test_top_level_names_are_the_submodule_objects() -> None:
    from rewardnets import relabel as relabel_module
    from rewardnets import reward_wrapper, util

    assert rewardnets.RewardVecEnvWrapper is reward_wrapper.RewardVecEnvWrapper
    assert rewardnets.RewardFnError is reward_wrapper.RewardFnError
    assert rewardnets.InvalidRewardError is reward_wrapper.InvalidRewardError
    assert rewardnets.make_vec_env is util.make_vec_env
    assert rewardnets.UnknownEnvError is util.UnknownEnvError
    assert rewardnets.relabel_replay_buffer is relabel_module.relabel_replay_buffer
    assert rewardnets.RelabelRewardCallback is relabel_module.RelabelRewardCallback
    for name in ("RewardVecEnvWrapper", "make_vec_env", "RelabelRewardCallback"):
        assert name in rewardnets.__all__
