"""Code written for imitation 1.0.1 runs with only its imports changed.

Each test is written the way an imitation user writes code: the imports are
the seed's paths with ``imitation.rewards``/``imitation.util`` replaced by
``rewardnets``, and the rest is imitation code.
"""

from __future__ import annotations

import functools
import json
import pickle
import types
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import nn

from rewardnets import networks, reward_nets, serialize, util
from rewardnets.reward_wrapper import RewardVecEnvWrapper

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "imitation"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())["nets"]


def _batch(venv: Any, n: int, seed: int = 0) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    obs = np.stack([venv.observation_space.sample() for _ in range(n)])
    acts = np.stack([venv.action_space.sample() for _ in range(n)])
    next_obs = obs + rng.normal(size=obs.shape).astype(obs.dtype)
    dones = np.array([False, True] * (n // 2))
    return obs, acts, next_obs, dones


@pytest.fixture
def pendulum() -> DummyVecEnv:
    return DummyVecEnv([lambda: gym.make("Pendulum-v1")] * 2)


@pytest.fixture
def cartpole() -> DummyVecEnv:
    return DummyVecEnv([lambda: gym.make("CartPole-v1")] * 2)


# ------------------------------------------------------------------ 1, 2: reward types
def test_unshaped_of_an_unshaped_net_is_its_plain_reward(
    pendulum: DummyVecEnv, tmp_path: Path
) -> None:
    net = reward_nets.BasicRewardNet(pendulum.observation_space, pendulum.action_space)
    path = tmp_path / "reward.pt"
    th.save(net, path)
    reward_fn = serialize.load_reward("RewardNet_unshaped", path, pendulum)
    batch = _batch(pendulum, 4)
    np.testing.assert_array_equal(reward_fn(*batch), net.predict(*batch))


def test_normalized_without_a_normalizer_raises_a_type_error(
    pendulum: DummyVecEnv, tmp_path: Path
) -> None:
    net = reward_nets.BasicShapedRewardNet(pendulum.observation_space, pendulum.action_space)
    path = tmp_path / "reward.pt"
    th.save(net, path)
    try:
        serialize.load_reward("RewardNet_normalized", path, pendulum)
    except TypeError as err:
        assert "NormalizedRewardNet" in str(err)
    else:
        pytest.fail("RewardNet_normalized loaded a net without a NormalizedRewardNet")


def test_every_structure_error_is_a_type_error(cartpole: DummyVecEnv, tmp_path: Path) -> None:
    obs_space, act_space = cartpole.observation_space, cartpole.action_space
    plain = tmp_path / "plain.pt"
    th.save(reward_nets.BasicRewardNet(obs_space, act_space), plain)
    ensemble = tmp_path / "ensemble.pt"
    members = [reward_nets.BasicRewardNet(obs_space, act_space) for _ in range(2)]
    th.save(reward_nets.RewardEnsemble(obs_space, act_space, members), ensemble)
    for reward_type, path in [
        ("RewardNet_normalized", plain),
        ("RewardNet_shaped", plain),
        ("RewardNet_std_added", plain),
        ("RewardNet_std_added", ensemble),
    ]:
        with pytest.raises(TypeError):
            serialize.load_reward(reward_type, path, cartpole)


# ------------------------------------------------------------------ 3: eps = 0
@pytest.mark.parametrize("norm", [networks.RunningNorm, networks.EMANorm])
def test_norm_layers_accept_eps_zero(norm: type[networks.BaseNorm]) -> None:
    layer = norm(3, eps=0.0)
    x = th.randn(64, 3, dtype=th.float64) * 4 + 2
    layer.double().train()
    layer(x)
    layer.eval()
    out = layer(x)
    if norm is networks.RunningNorm:  # exact statistics: exactly standardised
        np.testing.assert_allclose(out.mean(0).numpy(), 0.0, atol=1e-12)
        np.testing.assert_allclose(out.var(0, unbiased=False).numpy(), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="eps to be a number >= 0, got -1e-05"):
        norm(3, eps=-1e-5)


def test_normalized_reward_net_with_eps_zero(pendulum: DummyVecEnv) -> None:
    net = reward_nets.NormalizedRewardNet(
        reward_nets.BasicRewardNet(pendulum.observation_space, pendulum.action_space),
        functools.partial(networks.RunningNorm, eps=0.0),
    )
    batch = _batch(pendulum, 8)
    net.predict_processed(*batch)
    raw = net.predict(*batch)
    out = net.predict_processed(*batch, update_stats=False)
    np.testing.assert_allclose(out, (raw - raw.mean()) / raw.std(), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ 4: cnn_transpose
def test_cnn_transpose() -> None:
    from rewardnets.reward_nets import cnn_transpose

    images = th.arange(2 * 5 * 7 * 3).reshape(2, 5, 7, 3)
    out = cnn_transpose(images)
    assert out.shape == (2, 3, 5, 7)
    assert th.equal(out[1, 2], images[1, :, :, 2])
    with pytest.raises(ValueError, match=r"4 dimensions, got shape \(5, 7, 3\)"):
        cnn_transpose(images[0])


# ------------------------------------------------------------------ 5: build_mlp
def test_build_mlp_with_a_layer_that_does_not_take_in_size() -> None:
    with pytest.raises(ValueError, match=r"normalize_input_layer=Bilinear cannot be called"):
        networks.build_mlp(in_size=4, hid_sizes=[8], normalize_input_layer=nn.Bilinear)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"returned a int; expected a class or factory"):
        networks.build_mlp(in_size=4, hid_sizes=[8], normalize_input_layer=int)  # type: ignore[arg-type]
    mlp = networks.build_mlp(in_size=4, hid_sizes=[8], normalize_input_layer=nn.BatchNorm1d)
    assert isinstance(mlp.normalize_input, nn.BatchNorm1d)


# ------------------------------------------------------------------ 6: ValidateRewardFn
def test_validate_reward_fn() -> None:
    from rewardnets.serialize import ValidateRewardFn

    obs = np.zeros((3, 2))
    good = ValidateRewardFn(lambda s, a, ns, d: np.ones(len(s)))
    np.testing.assert_array_equal(good(obs, obs, obs, np.zeros(3)), np.ones(3))
    assert isinstance(good.reward_fn, types.FunctionType)
    bad = ValidateRewardFn(lambda s, a, ns, d: np.ones((len(s), 1)))
    with pytest.raises(ValueError, match=r"shape \(3, 1\) for a batch of 3; expected \(3,\)"):
        bad(obs, obs, obs, np.zeros(3))


# ------------------------------------------------------------------ 7: NormalizedRewardNet
def test_normalized_calls_the_bases_own_predict_processed(pendulum: DummyVecEnv) -> None:
    base = reward_nets.BasicRewardNet(pendulum.observation_space, pendulum.action_space)
    seen: list[dict[str, Any]] = []

    def doubled(state: Any, action: Any, next_state: Any, done: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return 2.0 * base.predict(state, action, next_state, done)

    base.predict_processed = doubled
    net = reward_nets.NormalizedRewardNet(base, nn.Identity)
    batch = _batch(pendulum, 4)
    out = net.predict_processed(*batch, scale=3)
    np.testing.assert_allclose(out, 2.0 * base.predict(*batch), rtol=1e-6)
    assert seen == [{"scale": 3}]
    running = reward_nets.NormalizedRewardNet(base, networks.RunningNorm)
    running.predict_processed(*batch, scale=1)
    assert float(running.normalize_output_layer.running_mean) == pytest.approx(
        float(np.mean(2.0 * base.predict(*batch))), rel=1e-5
    )


# ------------------------------------------------------------------ 8: RewardEnsemble
def test_ensemble_passes_kwargs_to_members_and_averages_their_processed_reward(
    cartpole: DummyVecEnv,
) -> None:
    obs_space, act_space = cartpole.observation_space, cartpole.action_space
    members = [
        reward_nets.NormalizedRewardNet(
            reward_nets.BasicRewardNet(obs_space, act_space), networks.RunningNorm
        )
        for _ in range(3)
    ]
    ensemble = reward_nets.RewardEnsemble(obs_space, act_space, members)
    batch = _batch(cartpole, 6)
    for scale in (1.0, 5.0):
        ensemble.predict_processed(batch[0] * scale, *batch[1:])
    counts = [int(m.normalize_output_layer.count) for m in members]
    frozen = ensemble.predict(*batch, update_stats=False)
    processed = ensemble.predict_processed(*batch, update_stats=False)
    assert [int(m.normalize_output_layer.count) for m in members] == counts == [12] * 3
    expected = np.mean([m.predict_processed(*batch, update_stats=False) for m in members], axis=0)
    np.testing.assert_allclose(frozen, expected, rtol=1e-6)
    np.testing.assert_allclose(processed, expected, rtol=1e-6)
    mean, var = ensemble.predict_reward_moments(*batch, update_stats=False)
    np.testing.assert_allclose(mean, expected, rtol=1e-6)
    assert var.shape == (6,) and (var > 0).all()


# ------------------------------------------------------------------ 9: env wrapper
def test_reward_vec_env_wrapper_resets_on_construction() -> None:
    rng = np.random.default_rng(0)
    venv = util.make_vec_env("Pendulum-v1", n_envs=3, rng=rng)
    reward_net = reward_nets.BasicRewardNet(venv.observation_space, venv.action_space)
    venv = RewardVecEnvWrapper(venv, reward_net.predict_processed)
    obs, rews, _, infos = venv.step(np.zeros((3, 1), dtype=np.float32))
    assert np.asarray(obs).shape == (3, 3) and rews.shape == (3,)
    assert all("original_env_rew" in info for info in infos)


def test_wrapped_reward_callback_from_the_deque() -> None:
    from stable_baselines3 import PPO

    from rewardnets.reward_wrapper import WrappedRewardCallback

    venv = util.make_vec_env("CartPole-v1", n_envs=2, rng=np.random.default_rng(0))
    venv = RewardVecEnvWrapper(venv, lambda obs, acts, next_obs, dones: np.ones(len(obs)))
    callback = WrappedRewardCallback(venv.episode_rewards)
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, device="cpu")
    model.learn(total_timesteps=256, callback=callback)
    assert venv.episode_rewards and callback.episode_rewards is venv.episode_rewards
    callback.on_rollout_start()  # what SB3 calls before each rollout
    logged = model.logger.name_to_value["rollout/ep_rew_wrapped_mean"]
    assert logged == pytest.approx(float(np.mean(venv.episode_rewards)))


def test_training_mode_context_managers() -> None:
    mlp = networks.build_mlp(in_size=2, hid_sizes=[4], dropout_prob=0.5)
    mlp.train()
    with networks.evaluating(mlp) as inside:
        assert inside is mlp and not mlp.training and not mlp[2].training
    assert mlp.training
    mlp.eval()
    with networks.training(mlp):
        assert mlp.training
    with networks.training_mode(mlp, mode=True):
        assert mlp.training
    assert not mlp.training


# ------------------------------------------------------------------ 10: dtype
class MyRewardNet(reward_nets.RewardNet):
    """The seed's custom net: it has no parameters."""

    def __init__(self, observation_space: Any, action_space: Any) -> None:
        super().__init__(observation_space, action_space)

    def forward(self, state: Any, action: Any, next_state: Any, done: Any) -> th.Tensor:
        return th.zeros_like(done)


def test_parameterless_net_dtype_follows_the_default_dtype(pendulum: DummyVecEnv) -> None:
    net = MyRewardNet(pendulum.observation_space, pendulum.action_space)
    assert net.dtype == th.float32
    old = th.get_default_dtype()
    th.set_default_dtype(th.float64)
    try:
        assert net.dtype == th.float64
        rewards = net.predict_th(*_batch(pendulum, 4))
        assert rewards.dtype == th.float64
    finally:
        th.set_default_dtype(old)
    assert net.dtype == th.float32


def test_seed_custom_net_predicts_zeros(pendulum: DummyVecEnv) -> None:
    net = MyRewardNet(pendulum.observation_space, pendulum.action_space)
    np.testing.assert_array_equal(net.predict_processed(*_batch(pendulum, 4)), np.zeros(4))


# ------------------------------------------------------------------ 11: state dicts
class _ImitationModule(nn.Module):
    """Stands in for an imitation class while one of its files is read (test only)."""

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError


class _ImitationUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("imitation."):
            return type(name, (_ImitationModule,), {"__module__": module})
        return super().find_class(module, name)


def imitation_state_dict(name: str) -> dict[str, th.Tensor]:
    """What ``net.state_dict()`` gave in imitation for the fixture ``name``."""
    pickle_module = types.ModuleType("imitation_stand_in_pickle")
    pickle_module.Unpickler = _ImitationUnpickler  # type: ignore[attr-defined]
    pickle_module.load = pickle.load  # type: ignore[attr-defined]
    net = th.load(FIXTURES / f"{name}.pt", weights_only=False, pickle_module=pickle_module)
    return net.state_dict()


def _fixture_inputs(name: str) -> tuple[Any, ...]:
    data = EXPECTED[name]["inputs"]
    arrays = {key: np.array(value["data"], dtype=value["dtype"]) for key, value in data.items()}
    return arrays["obs"], arrays["acts"], arrays["next_obs"], arrays["dones"]


def _same_stack(name: str) -> reward_nets.RewardNet:
    """The rewardnets stack an imitation user writes for each fixture (see make_fixtures.py)."""
    c_obs, c_act = gym.make("CartPole-v1").observation_space, gym.make("CartPole-v1").action_space
    p_obs, p_act = gym.make("Pendulum-v1").observation_space, gym.make("Pendulum-v1").action_space
    if name == "shaped":
        return reward_nets.BasicShapedRewardNet(
            c_obs, c_act, reward_hid_sizes=(8,), potential_hid_sizes=(8, 8), discount_factor=0.9
        )
    if name == "normalized":
        return reward_nets.NormalizedRewardNet(
            reward_nets.BasicRewardNet(p_obs, p_act, hid_sizes=(8, 8)), networks.RunningNorm
        )
    if name == "normalized_ema_shaped":
        return reward_nets.NormalizedRewardNet(
            reward_nets.BasicShapedRewardNet(c_obs, c_act, reward_hid_sizes=(8,)),
            networks.EMANorm,
        )
    assert name == "ensemble_std"
    members = [reward_nets.BasicRewardNet(c_obs, c_act, hid_sizes=(8,)) for _ in range(3)]
    ensemble = reward_nets.RewardEnsemble(c_obs, c_act, members)
    return reward_nets.AddSTDRewardWrapper(ensemble, default_alpha=0.5)


@pytest.mark.parametrize("name", ["shaped", "normalized", "normalized_ema_shaped", "ensemble_std"])
def test_imitation_state_dict_of_a_wrapped_net_loads_strictly(name: str) -> None:
    state_dict = imitation_state_dict(name)
    assert any(key.startswith("_base.") for key in state_dict)  # imitation's layout
    net = _same_stack(name)
    net.load_state_dict(state_dict, strict=True)
    batch = _fixture_inputs(name)
    np.testing.assert_allclose(net.predict(*batch), EXPECTED[name]["predict"], rtol=1e-6, atol=1e-7)
    # Standardising divides by the std of the fixture's statistics (about 0.09):
    # one float32 ulp of a reward, summed in another order, becomes about 4e-7.
    np.testing.assert_allclose(
        net.predict_processed(*batch, update_stats=False),
        EXPECTED[name]["predict_processed"],
        rtol=1e-6,
        atol=1e-6,
    )
    # rewardnets' own keys keep loading as well.
    again = _same_stack(name)
    again.load_state_dict(net.state_dict(), strict=True)
    np.testing.assert_array_equal(again.predict(*batch), net.predict(*batch))


# ------------------------------------------------------------------ 12: space check
def test_bounds_may_differ_structure_may_not(pendulum: DummyVecEnv, tmp_path: Path) -> None:
    unbounded = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    net = reward_nets.BasicRewardNet(unbounded, pendulum.action_space)
    path = tmp_path / "reward.pt"
    th.save(net, path)
    with pytest.warns(serialize.SpaceDifferenceWarning, match="Box bounds"):
        reward_fn = serialize.load_reward("RewardNet_unnormalized", path, pendulum)
    batch = _batch(pendulum, 4)
    np.testing.assert_array_equal(reward_fn(*batch), net.predict(*batch))
    float64 = reward_nets.BasicRewardNet(
        spaces.Box(-8.0, 8.0, (3,), np.float64), pendulum.action_space
    )
    th.save(float64, path)
    with pytest.warns(serialize.SpaceDifferenceWarning, match="Box dtype float64 vs float32"):
        serialize.load_reward("RewardNet_unnormalized", path, pendulum)

    for obs_space, act_space, what in [
        (spaces.Box(-1.0, 1.0, (4,)), pendulum.action_space, r"Box shape \(4,\) vs \(3,\)"),
        (spaces.Discrete(3), pendulum.action_space, "Discrete vs Box"),
        (pendulum.observation_space, spaces.Discrete(2), "Discrete vs Box"),
        (
            spaces.Box(0, 255, (3,), np.uint8),
            pendulum.action_space,
            "Box dtype uint8 vs float32",
        ),
    ]:
        th.save(reward_nets.BasicRewardNet(obs_space, act_space), path)
        with pytest.raises(serialize.SpaceMismatchError, match=what):
            serialize.load_reward("RewardNet_unnormalized", path, pendulum)


def test_same_spaces_load_without_a_warning(pendulum: DummyVecEnv, tmp_path: Path) -> None:
    net = reward_nets.BasicRewardNet(pendulum.observation_space, pendulum.action_space)
    path = tmp_path / "reward.pt"
    th.save(net, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        serialize.load_reward("RewardNet_unnormalized", path, pendulum)


def test_discrete_and_dict_structure(tmp_path: Path) -> None:
    env_space = spaces.Dict({"a": spaces.Box(-1.0, 1.0, (2,)), "b": spaces.Discrete(3)})
    venv = types.SimpleNamespace(observation_space=env_space, action_space=spaces.Discrete(2))
    path = tmp_path / "reward.pt"
    for obs_space, what in [
        (spaces.Dict({"a": spaces.Box(-1.0, 1.0, (2,))}), "Dict keys"),
        (
            spaces.Dict({"a": spaces.Box(-1.0, 1.0, (2,)), "b": spaces.Discrete(4)}),
            r"Discrete\(4\) vs Discrete\(3\) at \['b'\]",
        ),
    ]:
        th.save(reward_nets.BasicRewardNet(obs_space, spaces.Discrete(2)), path)
        with pytest.raises(serialize.SpaceMismatchError, match=what):
            serialize.load_reward("RewardNet_unnormalized", path, venv)
    wide = spaces.Dict({"a": spaces.Box(-5.0, 5.0, (2,)), "b": spaces.Discrete(3)})
    th.save(reward_nets.BasicRewardNet(wide, spaces.Discrete(2)), path)
    with pytest.warns(serialize.SpaceDifferenceWarning, match=r"at \['a'\]"):
        serialize.load_reward("RewardNet_unnormalized", path, venv)


# ------------------------------------------------------------------ the seed's examples
def test_seed_examples(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    venv = util.make_vec_env("Pendulum-v1", n_envs=3, rng=rng)
    reward_net = reward_nets.BasicRewardNet(venv.observation_space, venv.action_space)
    train_reward_net = reward_nets.NormalizedRewardNet(reward_net, networks.RunningNorm)
    venv = RewardVecEnvWrapper(venv, train_reward_net.predict_processed)
    for _ in range(5):
        venv.step(np.stack([venv.action_space.sample() for _ in range(3)]))
    eval_rew_fn = functools.partial(train_reward_net.predict_processed, update_stats=False)
    batch = _batch(venv, 4)
    count = int(train_reward_net.normalize_output_layer.count)
    assert count == 15
    eval_rew_fn(*batch)
    assert int(train_reward_net.normalize_output_layer.count) == count

    path = tmp_path / "reward_net.pt"
    th.save(train_reward_net, path)
    loaded = th.load(path, weights_only=False)
    np.testing.assert_array_equal(
        loaded.predict_processed(*batch, update_stats=False), eval_rew_fn(*batch)
    )
    normalized = serialize.load_reward(
        reward_type="RewardNet_normalized", reward_path=path, venv=venv
    )
    unnormalized = serialize.load_reward(
        reward_type="RewardNet_unnormalized", reward_path=path, venv=venv
    )
    learning = serialize.load_reward(
        reward_type="RewardNet_normalized", reward_path=path, venv=venv, update_stats=True
    )
    np.testing.assert_array_equal(normalized(*batch), eval_rew_fn(*batch))
    np.testing.assert_array_equal(unnormalized(*batch), reward_net.predict(*batch))
    learning(*batch)
    assert int(learning.reward_net.normalize_output_layer.count) == count + 4  # type: ignore[attr-defined]
