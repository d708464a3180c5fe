"""load_reward: every reward type, on both file formats, on real SB3 VecEnvs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

import rewardnets
from rewardnets import RewardNet, UnknownNameError, hookimpl, registry
from rewardnets.hookspecs import Register
from rewardnets.serialize import RewardTypeError, SpaceMismatchError

N_ENVS = 4
FORMATS = ["rewardnets", "torch.save"]


@pytest.fixture(scope="module")
def venv() -> Iterator[VecEnv]:
    env = DummyVecEnv([lambda: gym.make("CartPole-v1")] * N_ENVS)
    env.seed(0)
    yield env
    env.close()


@pytest.fixture(scope="module")
def batch(venv: VecEnv) -> Any:
    obs = venv.reset()
    acts = np.array([0, 1, 1, 0])
    next_obs, _, dones, _ = venv.step(acts)
    dones = np.array([False, True, False, True])  # some episode ends, to exercise shaping
    return obs, acts, next_obs, dones


def save_as(fmt: str, net: RewardNet, path: Path) -> Path:
    if fmt == "rewardnets":
        return rewardnets.save(net, path)
    torch.save(net, path)
    return path


def _basic(venv: VecEnv) -> Any:
    return rewardnets.BasicRewardNet(venv.observation_space, venv.action_space, hid_sizes=(8,))


def _fit(net: Any, batch: Any) -> Any:
    for scale in (1.0, 3.0):
        obs, acts, next_obs, dones = batch
        net.predict_processed(obs * scale, acts, next_obs * scale, dones)
    return net


def normalized_shaped(venv: VecEnv, batch: Any) -> Any:
    torch.manual_seed(0)
    shaped = rewardnets.ShapedRewardNet(
        _basic(venv), rewardnets.BasicPotentialMLP(venv.observation_space, hid_sizes=(8,)), 0.9
    )
    return _fit(rewardnets.NormalizedRewardNet(shaped, rewardnets.RunningNorm), batch)


def ensemble(venv: VecEnv, alpha: float | None) -> Any:
    torch.manual_seed(0)
    members = [_basic(venv) for _ in range(3)]
    net = rewardnets.RewardEnsemble(venv.observation_space, venv.action_space, members)
    if alpha is None:
        return net
    return rewardnets.AddSTDRewardWrapper(net, default_alpha=alpha)


@pytest.mark.parametrize("fmt", FORMATS)
def test_normalized_keeps_the_normalisation_with_frozen_statistics(
    fmt: str, venv: VecEnv, batch: Any, tmp_path: Path
) -> None:
    net = normalized_shaped(venv, batch)
    path = save_as(fmt, net, tmp_path / "net")
    fn = rewardnets.load_reward("RewardNet_normalized", path, venv)
    expected = net.predict_processed(*batch, update_stats=False)
    rewards = fn(*batch)
    assert rewards.shape == (N_ENVS,)
    np.testing.assert_array_equal(rewards, expected)
    np.testing.assert_array_equal(fn(*batch), expected)  # statistics frozen between calls
    layer = fn.reward_net.normalize_output_layer  # type: ignore[attr-defined]
    assert int(layer.count) == int(net.normalize_output_layer.count) == 2 * N_ENVS


@pytest.mark.parametrize("fmt", FORMATS)
def test_normalized_updates_statistics_when_asked(
    fmt: str, venv: VecEnv, batch: Any, tmp_path: Path
) -> None:
    net = normalized_shaped(venv, batch)
    path = save_as(fmt, net, tmp_path / "net")
    fn = rewardnets.load_reward("RewardNet_normalized", path, venv, update_stats=True)
    first = fn(*batch)
    np.testing.assert_array_equal(first, net.predict_processed(*batch, update_stats=True))
    np.testing.assert_array_equal(fn(*batch), net.predict_processed(*batch, update_stats=True))
    assert int(fn.reward_net.normalize_output_layer.count) == 4 * N_ENVS  # type: ignore[attr-defined]


@pytest.mark.parametrize("fmt", FORMATS)
def test_unnormalized_strips_the_normalisation(
    fmt: str, venv: VecEnv, batch: Any, tmp_path: Path
) -> None:
    net = normalized_shaped(venv, batch)
    path = save_as(fmt, net, tmp_path / "net")
    fn = rewardnets.load_reward("RewardNet_unnormalized", path, venv)
    np.testing.assert_array_equal(fn(*batch), net.base.predict(*batch))
    assert not np.allclose(fn(*batch), net.predict_processed(*batch, update_stats=False))


@pytest.mark.parametrize("fmt", FORMATS)
def test_shaped_and_unshaped(fmt: str, venv: VecEnv, batch: Any, tmp_path: Path) -> None:
    net = normalized_shaped(venv, batch)
    path = save_as(fmt, net, tmp_path / "net")
    shaped = rewardnets.load_reward("RewardNet_shaped", path, venv)
    unshaped = rewardnets.load_reward("RewardNet_unshaped", path, venv)
    np.testing.assert_array_equal(shaped(*batch), net.base.predict(*batch))
    np.testing.assert_array_equal(unshaped(*batch), net.base.base.predict(*batch))
    obs, _, next_obs, dones = batch
    potential = net.base.potential
    with torch.no_grad():
        phi = potential(torch.as_tensor(obs)).numpy()
        phi_next = potential(torch.as_tensor(next_obs)).numpy()
    np.testing.assert_allclose(
        shaped(*batch) - unshaped(*batch), 0.9 * (1 - dones) * phi_next - phi, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_basic_shaped_reward_net(fmt: str, venv: VecEnv, batch: Any, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = rewardnets.BasicShapedRewardNet(venv.observation_space, venv.action_space)
    path = save_as(fmt, net, tmp_path / "net")
    np.testing.assert_array_equal(
        rewardnets.load_reward("RewardNet_shaped", path, venv)(*batch), net.predict(*batch)
    )
    np.testing.assert_array_equal(
        rewardnets.load_reward("RewardNet_unshaped", path, venv)(*batch), net.base.predict(*batch)
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_std_added(fmt: str, venv: VecEnv, batch: Any, tmp_path: Path) -> None:
    net = ensemble(venv, alpha=0.5)
    path = save_as(fmt, net, tmp_path / "net")
    mean, var = net.base.predict_reward_moments(*batch)
    default = rewardnets.load_reward("RewardNet_std_added", path, venv)
    np.testing.assert_allclose(default(*batch), mean + 0.5 * np.sqrt(var), rtol=1e-6)
    two = rewardnets.load_reward("RewardNet_std_added", path, venv, alpha=2.0)
    np.testing.assert_allclose(two(*batch), mean + 2.0 * np.sqrt(var), rtol=1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_std_added_on_a_bare_ensemble_is_a_type_error(
    fmt: str, venv: VecEnv, tmp_path: Path
) -> None:
    path = save_as(fmt, ensemble(venv, alpha=None), tmp_path / "net")
    with pytest.raises(TypeError, match="needs an AddSTDRewardWrapper") as info:
        rewardnets.load_reward("RewardNet_std_added", path, venv)
    assert "is RewardEnsemble" in str(info.value)
    assert isinstance(info.value, RewardTypeError)


@pytest.mark.parametrize("fmt", FORMATS)
def test_std_added_passes_update_stats_to_normalized_members(
    fmt: str, venv: VecEnv, batch: Any, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    members = [
        _fit(rewardnets.NormalizedRewardNet(_basic(venv), rewardnets.RunningNorm), batch)
        for _ in range(2)
    ]
    ens = rewardnets.RewardEnsemble(venv.observation_space, venv.action_space, members)
    path = save_as(fmt, rewardnets.AddSTDRewardWrapper(ens), tmp_path / "net")
    fn = rewardnets.load_reward("RewardNet_std_added", path, venv)
    np.testing.assert_allclose(fn(*batch), ens.predict_processed(*batch, update_stats=False))
    loaded_members = fn.reward_net.base.members  # type: ignore[attr-defined]
    assert [int(m.normalize_output_layer.count) for m in loaded_members] == [2 * N_ENVS] * 2


def test_zero_does_not_read_the_file(venv: VecEnv, batch: Any, tmp_path: Path) -> None:
    fn = rewardnets.load_reward("zero", tmp_path / "does-not-exist", venv)
    rewards = fn(*batch)
    assert rewards.shape == (N_ENVS,)
    assert not rewards.any()


@pytest.mark.parametrize("fmt", FORMATS)
def test_reward_fn_replaces_the_env_reward(
    fmt: str, venv: VecEnv, batch: Any, tmp_path: Path
) -> None:
    net = normalized_shaped(venv, batch)
    path = save_as(fmt, net, tmp_path / "net")
    fn = rewardnets.load_reward("RewardNet_unshaped", path, venv)
    wrapped = rewardnets.RewardVecEnvWrapper(venv, fn)
    obs = wrapped.reset()
    acts = np.array([1, 0, 1, 0])
    next_obs, rewards, dones, infos = wrapped.step(acts)
    for i, info in enumerate(infos):
        if dones[i]:
            next_obs[i] = info["terminal_observation"]  # type: ignore[index]
    np.testing.assert_allclose(rewards, fn(obs, acts, next_obs, dones), rtol=1e-6)


# ------------------------------------------------------------------------- errors
def test_unknown_reward_type_lists_close_matches(venv: VecEnv, tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError) as info:
        rewardnets.load_reward("RewardNet_normalised", tmp_path / "x.rn", venv)
    message = str(info.value)
    assert "Unknown reward type 'RewardNet_normalised'" in message
    assert "Did you mean 'RewardNet_normalized'" in message
    for name in ("RewardNet_shaped", "RewardNet_std_added", "zero"):
        assert name in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_shaped_on_an_unshaped_net_says_what_the_stack_is(
    fmt: str, venv: VecEnv, batch: Any, tmp_path: Path
) -> None:
    net = _fit(rewardnets.NormalizedRewardNet(_basic(venv), rewardnets.RunningNorm), batch)
    path = save_as(fmt, net, tmp_path / "net")
    with pytest.raises(TypeError, match="needs a ShapedRewardNet") as info:
        rewardnets.load_reward("RewardNet_shaped", path, venv)
    assert "NormalizedRewardNet > BasicRewardNet" in str(info.value)
    with pytest.raises(TypeError, match="RewardNetWithVariance"):
        rewardnets.load_reward("RewardNet_std_added", path, venv)


@pytest.mark.parametrize("fmt", FORMATS)
def test_unshaped_on_an_unshaped_net_is_its_plain_reward(
    fmt: str, venv: VecEnv, batch: Any, tmp_path: Path
) -> None:
    net = _fit(rewardnets.NormalizedRewardNet(_basic(venv), rewardnets.RunningNorm), batch)
    path = save_as(fmt, net, tmp_path / "net")
    fn = rewardnets.load_reward("RewardNet_unshaped", path, venv)
    np.testing.assert_array_equal(fn(*batch), net.base.predict(*batch))
    assert not np.allclose(fn(*batch), net.predict_processed(*batch, update_stats=False))


@pytest.mark.parametrize("fmt", FORMATS)
def test_normalized_needs_the_normalizer_outermost(
    fmt: str, venv: VecEnv, batch: Any, tmp_path: Path
) -> None:
    for net in (_basic(venv), normalized_shaped(venv, batch).base):
        path = save_as(fmt, net, tmp_path / "net")
        with pytest.raises(TypeError, match="needs a NormalizedRewardNet as the outermost"):
            rewardnets.load_reward("RewardNet_normalized", path, venv)


def test_spaces_that_do_not_match_the_venv(venv: VecEnv, batch: Any, tmp_path: Path) -> None:
    path = rewardnets.save(normalized_shaped(venv, batch), tmp_path / "cartpole.rn")
    pendulum = DummyVecEnv([lambda: gym.make("Pendulum-v1")])
    with pytest.raises(SpaceMismatchError) as info:
        rewardnets.load_reward("RewardNet_normalized", path, pendulum)
    message = str(info.value)
    assert "cartpole.rn" in message
    assert str(venv.observation_space) in message and str(pendulum.observation_space) in message
    mountain_car = DummyVecEnv([lambda: gym.make("MountainCar-v0")])
    with pytest.raises(SpaceMismatchError, match="observation space"):
        rewardnets.load_reward("RewardNet_unnormalized", path, mountain_car)


def test_unknown_option_lists_the_options(venv: VecEnv, batch: Any, tmp_path: Path) -> None:
    path = rewardnets.save(normalized_shaped(venv, batch), tmp_path / "n.rn")
    with pytest.raises(
        TypeError,
        match=r"unexpected options \['update_stat'\]; it takes device, trust_pickle, update_stats",
    ):
        rewardnets.load_reward("RewardNet_normalized", path, venv, update_stat=True)


def test_options_of_predict_types_are_ignored_with_a_warning(
    venv: VecEnv, batch: Any, tmp_path: Path
) -> None:
    net = normalized_shaped(venv, batch)
    path = rewardnets.save(net, tmp_path / "n.rn")
    for reward_type in ("RewardNet_unnormalized", "RewardNet_shaped", "RewardNet_unshaped"):
        with pytest.warns(UserWarning, match=r"ignores the options \['update_stats'\]"):
            fn = rewardnets.load_reward(reward_type, path, venv, update_stats=False)
        assert fn(*batch).shape == (N_ENVS,)


def test_missing_file(venv: VecEnv, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No reward net file"):
        rewardnets.load_reward("RewardNet_normalized", tmp_path / "nope.rn", venv)


class WrongShapeRewardType:
    """A third-party reward type whose function returns one reward too many."""

    @staticmethod
    @hookimpl
    def register_reward_types(register: Register) -> None:
        def loader(path: Any, venv: Any, **kwargs: Any) -> Callable[..., np.ndarray]:
            return lambda obs, acts, next_obs, dones: np.zeros(len(obs) + 1)

        register("test_wrong_shape", loader)


def test_reward_function_output_shape_is_checked(venv: VecEnv, batch: Any) -> None:
    name = registry.register_plugin(WrongShapeRewardType, name="test-wrong-shape")
    try:
        fn = rewardnets.load_reward("test_wrong_shape", "unused", venv)
        with pytest.raises(ValueError, match=r"shape \(5,\) for a batch of 4; expected \(4,\)"):
            fn(*batch)
    finally:
        registry.unregister_plugin(name)
