"""Reward nets saved by imitation load as rewardnets nets, without imitation.

The fixture files were written once by ``tests/fixtures/imitation/make_fixtures.py``
with imitation 1.0.1; ``expected.json`` holds the inputs and imitation's outputs.
Loading must neither need nor import imitation.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from click.testing import CliRunner
from stable_baselines3.common.vec_env import DummyVecEnv

import rewardnets
from rewardnets.cli import cli
from rewardnets.serialize import UnsafePickleError, wrapper_stack

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "imitation"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())["nets"]

STACKS = {
    "basic": ["BasicRewardNet"],
    "basic_next_state": ["BasicRewardNet"],
    "shaped": ["BasicShapedRewardNet", "BasicRewardNet"],
    "normalized": ["NormalizedRewardNet", "BasicRewardNet"],
    "normalized_ema_shaped": ["NormalizedRewardNet", "BasicShapedRewardNet", "BasicRewardNet"],
    "ensemble_std": ["AddSTDRewardWrapper", "RewardEnsemble"],
    "cnn": ["CNNRewardNet"],
}


def inputs(name: str) -> tuple[Any, ...]:
    data = EXPECTED[name]["inputs"]
    arrays = {key: np.array(value["data"], dtype=value["dtype"]) for key, value in data.items()}
    return arrays["obs"], arrays["acts"], arrays["next_obs"], arrays["dones"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_imitation_file_predicts_what_imitation_predicted(name: str) -> None:
    record = EXPECTED[name]
    net = rewardnets.load(FIXTURES / f"{name}.pt")
    assert wrapper_stack(net) == STACKS[name]
    batch = inputs(name)
    np.testing.assert_allclose(net.predict(*batch), record["predict"], rtol=1e-6, atol=1e-7)
    # Standardising divides by a small std (about 0.09 in one fixture): one
    # float32 ulp of a reward, summed in another order, becomes about 4e-7.
    np.testing.assert_allclose(
        net.predict_processed(*batch, update_stats=False),
        record["predict_processed"],
        rtol=1e-6,
        atol=1e-6,
    )
    if "predict_processed_alpha_2" in record:
        np.testing.assert_allclose(
            net.predict_processed(*batch, alpha=2.0), record["predict_processed_alpha_2"], rtol=1e-6
        )
    if "running_mean" in record:
        layer = net.normalize_output_layer
        np.testing.assert_array_equal(layer.running_mean.numpy(), record["running_mean"])  # type: ignore[operator, union-attr]
        np.testing.assert_array_equal(layer.running_var.numpy(), record["running_var"])  # type: ignore[operator, union-attr]
        assert int(layer.count) == record["count"]  # type: ignore[arg-type, union-attr]
    assert not any(m.startswith("imitation") for m in sys.modules)


def test_migrated_constructor_arguments() -> None:
    net = rewardnets.load(FIXTURES / "basic_next_state.pt")
    kwargs = net.spec["kwargs"]
    assert kwargs["use_next_state"] is True and kwargs["use_done"] is True
    assert kwargs["hid_sizes"] == [8]
    assert kwargs["activation"] == "torch.nn.modules.activation:Tanh"
    shaped = rewardnets.load(FIXTURES / "normalized_ema_shaped.pt")
    assert shaped.spec["wrappers"] == [
        {"name": "NormalizedRewardNet", "kwargs": {"normalize_output_layer": "EMANorm"}}
    ]
    assert shaped.base.discount_factor == 0.99  # type: ignore[union-attr]
    assert rewardnets.load(FIXTURES / "shaped.pt").discount_factor == 0.9
    assert rewardnets.load(FIXTURES / "ensemble_std.pt").default_alpha == 0.5


@pytest.mark.parametrize("name", ["normalized", "ensemble_std", "cnn"])
def test_migrated_net_saves_in_the_safe_format(name: str, tmp_path: Path) -> None:
    net = rewardnets.load(FIXTURES / f"{name}.pt")
    rewardnets.save(net, tmp_path / "migrated.rn")
    again = rewardnets.load(tmp_path / "migrated.rn")
    batch = inputs(name)
    np.testing.assert_array_equal(
        again.predict_processed(*batch, update_stats=False),
        net.predict_processed(*batch, update_stats=False),
    )


def test_load_reward_reads_imitation_files() -> None:
    pendulum = DummyVecEnv([lambda: gym.make("Pendulum-v1")])
    record = EXPECTED["normalized"]
    batch = inputs("normalized")
    path = FIXTURES / "normalized.pt"
    normalized = rewardnets.load_reward("RewardNet_normalized", path, pendulum)
    np.testing.assert_allclose(
        normalized(*batch), record["predict_processed"], rtol=1e-6, atol=1e-6
    )  # (the atol: see test_imitation_file_predicts_what_imitation_predicted)
    unnormalized = rewardnets.load_reward("RewardNet_unnormalized", path, pendulum)
    np.testing.assert_allclose(unnormalized(*batch), record["predict"], rtol=1e-6)

    cartpole = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    shaped = rewardnets.load_reward("RewardNet_shaped", FIXTURES / "shaped.pt", cartpole)
    np.testing.assert_allclose(
        shaped(*inputs("shaped")), EXPECTED["shaped"]["predict"], rtol=1e-6, atol=1e-7
    )
    std = rewardnets.load_reward(
        "RewardNet_std_added", FIXTURES / "ensemble_std.pt", cartpole, alpha=2.0
    )
    np.testing.assert_allclose(
        std(*inputs("ensemble_std")),
        EXPECTED["ensemble_std"]["predict_processed_alpha_2"],
        rtol=1e-6,
    )


def test_imitation_names_without_an_equivalent_are_refused(tmp_path: Path) -> None:
    # An instance of imitation.algorithms.adversarial.airl.AIRL, pickled by hand.
    payload = b"\x80\x02cimitation.algorithms.adversarial.airl\nAIRL\nq\x00)\x81q\x01}q\x02b."
    (tmp_path / "airl.pt").write_bytes(payload)
    with pytest.raises(UnsafePickleError, match=r"imitation\.algorithms\.adversarial\.airl\.AIRL"):
        rewardnets.load(tmp_path / "airl.pt")
    assert not any(m.startswith("imitation") for m in sys.modules)


def test_placeholder_state_must_be_a_module_dict(tmp_path: Path) -> None:
    # A BasicRewardNet whose state is a string instead of an nn.Module's __dict__.
    payload = (
        b"\x80\x02cimitation.rewards.reward_nets\nBasicRewardNet\nq\x00)\x81q\x01"
        + pickle.dumps("not a dict", protocol=2)[2:-1]
        + b"b."
    )
    (tmp_path / "odd.pt").write_bytes(payload)
    with pytest.raises(rewardnets.RewardNetsError, match=r"expected the dict of an nn\.Module"):
        rewardnets.load(tmp_path / "odd.pt")


def test_inspect_shows_a_migrated_file() -> None:
    result = CliRunner().invoke(cli, ["inspect", "--json", str(FIXTURES / "normalized.pt")])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["format"] == "torch.save (imitation, migrated)"
    assert "imitation.rewards.reward_nets.NormalizedRewardNet" in info["imitation_classes"]
    assert info["stack"] == ["NormalizedRewardNet", "BasicRewardNet"]
    (stats,) = info["normalization"]
    assert stats["running_mean"] == EXPECTED["normalized"]["running_mean"]
    assert stats["count"] == EXPECTED["normalized"]["count"]
