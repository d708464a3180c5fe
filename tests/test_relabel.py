"""Relabelling replay buffers when the learned reward changes (SB3 SAC, DQN)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.buffers import ReplayBuffer

from rewardnets.relabel import RelabelRewardCallback, relabel_replay_buffer
from rewardnets.reward_wrapper import InvalidRewardError, RewardVecEnvWrapper
from rewardnets.util import make_vec_env

Transition = tuple[Any, np.ndarray, Any, np.ndarray]


def copy_obs(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {key: np.array(value) for key, value in obs.items()}
    return np.array(obs)


class Recorder:
    """A reward function that appends copies of its inputs to ``log``, then calls ``fn``.

    With ``only_batch`` set, only calls of that batch size are logged: the env
    wrapper's (one row per env), not the relabelling's (the whole buffer).
    """

    def __init__(self, fn: Any, log: list[Transition], only_batch: int | None = None) -> None:
        self.fn = fn
        self.log = log
        self.only_batch = only_batch

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        if self.only_batch is None or len(dones) == self.only_batch:
            self.log.append((copy_obs(obs), np.array(acts), copy_obs(next_obs), np.array(dones)))
        return np.asarray(self.fn(obs, acts, next_obs, dones))


def reward_a(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    return -(obs[:, 0] ** 2)


def reward_b(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    # Depends on the (unscaled) action, the next observation and the done flag.
    return np.sin(3.0 * acts[:, 0]) + next_obs[:, 1] - 0.5 * dones


def latest_step_per_row(num_steps: int, rows: int) -> dict[int, int]:
    """For a buffer of ``rows`` rows after ``num_steps`` adds: row -> step it holds."""
    return {t % rows: t for t in range(num_steps)}


def buffer_of(model: SAC | DQN) -> ReplayBuffer:
    assert model.replay_buffer is not None
    return model.replay_buffer


def small_sac(env: Any, **kwargs: Any) -> SAC:
    return SAC(
        "MlpPolicy",
        env,
        batch_size=32,
        policy_kwargs={"net_arch": [16, 16]},
        seed=0,
        device="cpu",
        **kwargs,
    )


def test_sac_buffer_is_relabelled_after_the_reward_fn_is_swapped() -> None:
    venv = make_vec_env("Pendulum-v1", rng=np.random.default_rng(0), n_envs=2, max_episode_steps=30)
    log: list[Transition] = []
    wrapper = RewardVecEnvWrapper(venv, Recorder(reward_a, log))
    model = small_sac(wrapper, buffer_size=160, learning_starts=60)
    buffer = buffer_of(model)
    model.learn(total_timesteps=200)  # 100 vec steps into 80 rows: wrapped around
    assert buffer.full and buffer.pos == 20
    assert len(log) == 100
    holds = latest_step_per_row(len(log), 80)
    # Before the swap the buffer carries reward_a's values.
    for r, t in holds.items():
        obs, acts, next_obs, dones = log[t]
        np.testing.assert_allclose(
            buffer.rewards[r], reward_a(obs, acts, next_obs, dones), rtol=1e-6
        )

    wrapper.set_reward_fn(Recorder(reward_b, log, only_batch=2))
    callback = RelabelRewardCallback(wrapper)
    model.learn(total_timesteps=40, callback=callback, reset_num_timesteps=False)
    assert callback.num_relabels == 1  # one swap, one relabelling
    assert buffer.pos == 40
    assert len(log) == 120

    holds = latest_step_per_row(len(log), 80)
    assert len(holds) == 80
    for r, t in holds.items():
        obs, acts, next_obs, dones = log[t]
        expected = reward_b(obs, acts, next_obs, dones)
        np.testing.assert_allclose(buffer.rewards[r], expected, rtol=1e-6, atol=1e-6)
    assert any(log[t][3].any() for t in holds.values()), "some stored transitions end episodes"

    # The relabelling fed reward_fn exactly the transitions the env wrapper saw:
    # actions mapped back from SAC's [-1, 1] storage, true last observations.
    probe_log: list[Transition] = []
    count = relabel_replay_buffer(model, Recorder(reward_b, probe_log))
    assert count == 160
    obs, acts, next_obs, dones = (np.concatenate(parts) for parts in zip(*probe_log, strict=True))
    assert acts.shape == (160, 1)
    for r, t in holds.items():
        rows = slice(2 * r, 2 * r + 2)
        np.testing.assert_array_equal(obs[rows], log[t][0])
        np.testing.assert_array_equal(acts[rows], log[t][1])
        np.testing.assert_array_equal(next_obs[rows], log[t][2])
        np.testing.assert_array_equal(dones[rows], log[t][3])
    assert dones.dtype == bool
    assert np.abs(acts).max() > 1.0, "Pendulum's actions span [-2, 2], not SAC's [-1, 1]"

    # A bare buffer needs to be told that its actions are rescaled.
    with pytest.raises(ValueError, match="scaled_actions=True"):
        relabel_replay_buffer(buffer, reward_b)
    before = buffer.rewards.copy()
    relabel_replay_buffer(buffer, reward_b, scaled_actions=True, chunk_size=7)
    np.testing.assert_allclose(buffer.rewards, before, rtol=1e-6, atol=1e-6)


def test_optimize_memory_usage_buffer() -> None:
    venv = make_vec_env("Pendulum-v1", rng=np.random.default_rng(1), n_envs=2, max_episode_steps=15)
    log: list[Transition] = []
    wrapper = RewardVecEnvWrapper(venv, Recorder(reward_a, log))
    model = small_sac(
        wrapper,
        buffer_size=100,
        learning_starts=1000,  # no gradient steps needed here
        optimize_memory_usage=True,
        replay_buffer_kwargs={"handle_timeout_termination": False},
    )
    model.learn(total_timesteps=120)  # 60 vec steps into 50 rows
    buffer = buffer_of(model)
    assert buffer.optimize_memory_usage and buffer.full and buffer.pos == 10
    buffer.rewards[buffer.pos] = 123.0

    probe_log: list[Transition] = []
    count = relabel_replay_buffer(model, Recorder(reward_b, probe_log))
    # Row `pos` lost its observation to the newest transition's next one: skipped.
    assert count == 49 * 2
    np.testing.assert_array_equal(buffer.rewards[buffer.pos], [123.0, 123.0])

    obs, acts, next_obs, dones = (np.concatenate(parts) for parts in zip(*probe_log, strict=True))
    holds = latest_step_per_row(len(log), 50)
    order = [r for r in range(50) if r != buffer.pos]
    for k, r in enumerate(order):
        t = holds[r]
        rows = slice(2 * k, 2 * k + 2)
        np.testing.assert_array_equal(obs[rows], log[t][0])
        np.testing.assert_array_equal(acts[rows], log[t][1])
        # SB3 keeps one observation per row: the next one of a transition is the
        # following step's observation (a reset one after an episode end),
        # except for the newest transition, which still has its true next one.
        following = log[t + 1][0] if t + 1 < len(log) else log[t][2]
        np.testing.assert_array_equal(next_obs[rows], following)
        np.testing.assert_allclose(
            buffer.rewards[r], reward_b(obs[rows], acts[rows], following, dones[rows]), rtol=1e-6
        )


class _ToDict(gym.ObservationWrapper[dict[str, np.ndarray], Any, np.ndarray]):
    """Split CartPole's observation into a Dict of cart and pole parts."""

    def __init__(self, env: gym.Env[np.ndarray, Any]) -> None:
        super().__init__(env)
        box = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.observation_space = spaces.Dict({"cart": box, "pole": box})  # type: ignore[assignment]

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"cart": observation[:2], "pole": observation[2:]}


def reward_dict(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
    return next_obs["pole"][:, 0] * (2 * acts - 1) + obs["cart"][:, 1] + dones


def test_dict_replay_buffer_with_dqn() -> None:
    venv = make_vec_env(
        "CartPole-v1",
        rng=np.random.default_rng(2),
        n_envs=2,
        post_wrappers=[lambda env, _: _ToDict(env)],
    )
    log: list[Transition] = []
    wrapper = RewardVecEnvWrapper(venv, Recorder(lambda o, a, n, d: np.zeros(len(d)), log))
    model = DQN(
        "MultiInputPolicy",
        wrapper,
        buffer_size=1000,
        learning_starts=10_000,
        policy_kwargs={"net_arch": [16]},
        seed=0,
        device="cpu",
    )
    model.learn(total_timesteps=120)
    buffer = buffer_of(model)
    assert len(log) == 60 and buffer.pos == 60

    wrapper.set_reward_fn(reward_dict)
    assert relabel_replay_buffer(model, wrapper) == 120  # uses the wrapper's current fn
    ends = 0
    for t, (obs, acts, next_obs, dones) in enumerate(log):
        assert acts.shape == (2,)
        ends += int(dones.sum())
        np.testing.assert_allclose(
            buffer.rewards[t], reward_dict(obs, acts, next_obs, dones), rtol=1e-6
        )
    assert ends > 0
    np.testing.assert_array_equal(buffer.rewards[60:], 0.0)


class Scaled:
    """A reward function that changes in place, like a reward net that keeps training."""

    def __init__(self) -> None:
        self.scale = 1.0

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        return np.full(len(dones), self.scale)


def test_every_n_steps_relabels_an_in_place_changing_reward() -> None:
    venv = make_vec_env("Pendulum-v1", rng=np.random.default_rng(3), n_envs=2)
    fn = Scaled()
    wrapper = RewardVecEnvWrapper(venv, fn)
    model = small_sac(wrapper, buffer_size=1000, learning_starts=1000)
    callback = RelabelRewardCallback(fn, every_n_steps=20)
    model.learn(total_timesteps=100, callback=callback)
    assert callback.num_relabels == 5
    fn.scale = 2.0
    model.learn(total_timesteps=100, callback=callback, reset_num_timesteps=False)
    assert callback.num_relabels == 10
    assert callback.last_relabel_timestep == 200
    buffer = buffer_of(model)
    stored = buffer.rewards[: buffer.pos]
    np.testing.assert_array_equal(stored, 2.0)


def test_manual_buffer_relabels_only_the_filled_rows() -> None:
    obs_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    act_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    buffer = ReplayBuffer(
        10, obs_space, act_space, device="cpu", n_envs=2, handle_timeout_termination=False
    )
    rng = np.random.default_rng(0)
    stored = []
    for _ in range(3):
        obs, nxt = rng.uniform(-1, 1, (2, 2, 3)).astype(np.float32)
        acts = rng.uniform(-1, 1, (2, 2)).astype(np.float32)
        buffer.add(obs, nxt, acts, np.zeros(2), np.array([0.0, 1.0]), [{}, {}])
        stored.append((obs, acts, nxt))
    assert buffer.pos == 3 and not buffer.full

    def fn(o: Any, a: Any, n: Any, d: Any) -> np.ndarray:
        return o.sum(axis=1) + 10 * a[:, 1] + 100 * n[:, 2] + 1000 * d

    assert relabel_replay_buffer(buffer, fn, scaled_actions=False) == 6
    for r, (obs, acts, nxt) in enumerate(stored):
        expected = fn(obs, acts, nxt, np.array([False, True]))
        np.testing.assert_allclose(buffer.rewards[r], expected, rtol=1e-6)
    np.testing.assert_array_equal(buffer.rewards[3:], 0.0)

    def bad(o: Any, a: Any, n: Any, d: Any) -> np.ndarray:
        return np.zeros((len(d), 1))

    with pytest.raises(InvalidRewardError, match=r"expected shape \(6,\), one reward per stored"):
        relabel_replay_buffer(buffer, bad, scaled_actions=False)


def test_relabel_argument_errors() -> None:
    venv = make_vec_env("CartPole-v1", rng=np.random.default_rng(0), n_envs=2)
    ppo = PPO("MlpPolicy", venv, n_steps=16, batch_size=16, device="cpu")
    with pytest.raises(TypeError, match="On-policy rollout buffers are refilled"):
        relabel_replay_buffer(ppo, reward_a)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs an off-policy model"):
        ppo.learn(total_timesteps=16, callback=RelabelRewardCallback(reward_a, every_n_steps=4))
    with pytest.raises(ValueError, match="pass every_n_steps"):
        RelabelRewardCallback(reward_a)
    with pytest.raises(ValueError, match="every_n_steps must be a positive int"):
        RelabelRewardCallback(reward_a, every_n_steps=0)
    with pytest.raises(TypeError, match="reward_fn must be a reward function"):
        RelabelRewardCallback(42, every_n_steps=5)  # type: ignore[arg-type]
    buffer = ReplayBuffer(8, venv.observation_space, venv.action_space, device="cpu")
    with pytest.raises(ValueError, match="scaled_actions=True needs a Box action space"):
        relabel_replay_buffer(buffer, reward_a, scaled_actions=True)
    assert relabel_replay_buffer(buffer, reward_a) == 0  # empty: nothing to do
