"""Commands given a saved net and no --reward-type use the reward type that fits the file."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from click.testing import CliRunner
from stable_baselines3.common.vec_env import DummyVecEnv

import rewardnets
from rewardnets.apps.reward_choice import default_reward_type
from rewardnets.cli import cli


def _pendulum_nets() -> dict[str, rewardnets.RewardNet]:
    venv = DummyVecEnv([lambda: gym.make("Pendulum-v1")])
    obs, act = venv.observation_space, venv.action_space
    members = [
        rewardnets.NormalizedRewardNet(rewardnets.BasicRewardNet(obs, act)) for _ in range(2)
    ]
    return {
        "RewardNet_normalized": rewardnets.NormalizedRewardNet(
            rewardnets.BasicShapedRewardNet(obs, act)
        ),
        "RewardNet_std_added": rewardnets.AddSTDRewardWrapper(
            rewardnets.RewardEnsemble(obs, act, members)
        ),
        "RewardNet_unnormalized": rewardnets.BasicRewardNet(obs, act),
    }


@pytest.mark.parametrize("expected", sorted(_pendulum_nets()))
def test_compare_without_a_reward_type_uses_the_one_that_fits_the_file(
    tmp_path: Path, expected: str
) -> None:
    net = _pendulum_nets()[expected]
    assert default_reward_type(net) == expected
    path = rewardnets.save(net, tmp_path / "reward.rn")
    stats_before = {k: v.clone() for k, v in net.state_dict().items()}
    args = ["compare", str(path), "true", "--samples", "16", "--canonical-samples", "3", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert 0.0 <= report["epic"] <= 1.0 and np.isfinite(report["pearson"])
    loaded = rewardnets.load(path)  # the file, statistics included, is untouched
    for key, value in stats_before.items():
        assert np.array_equal(loaded.state_dict()[key].numpy(), value.numpy()), key
