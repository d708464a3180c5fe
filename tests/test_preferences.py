"""Synthetic preferences, the Bradley-Terry loss and reward learning on a real env."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rewardnets.apps.preferences import (
    SyntheticTeacher,
    bradley_terry_loss,
    collect_fragments,
    learn_reward,
)
from rewardnets.apps.true_rewards import true_reward_fn
from rewardnets.util import make_vec_env


def test_fragments_never_cross_an_episode_end() -> None:
    rng = np.random.default_rng(0)
    venv = make_vec_env("CartPole-v1", rng=rng, n_envs=3)
    fragments = collect_fragments(venv, 40, 6, rng)
    venv.close()
    assert fragments.obs.shape == (40, 6, 4) and fragments.acts.shape == (40, 6)
    assert not fragments.dones[:, :-1].any()  # a done can only close a fragment
    # Consecutive steps chain: next_obs of step t is obs of step t + 1.
    np.testing.assert_array_equal(fragments.next_obs[:, :-1], fragments.obs[:, 1:])
    np.testing.assert_array_equal(fragments.true_rewards, np.ones((40, 6)))


def test_teacher_prefers_the_higher_return_and_ties_are_half() -> None:
    teacher = SyntheticTeacher()
    a = np.array([[1.0, 2.0], [0.0, 0.0], [5.0, 5.0]])
    b = np.array([[0.0, 2.0], [0.0, 1.0], [5.0, 5.0]])
    np.testing.assert_array_equal(teacher(a, b, np.random.default_rng(0)), [1.0, 0.0, 0.5])


def test_soft_teacher_follows_the_logistic_of_the_return_gap() -> None:
    teacher = SyntheticTeacher(temperature=2.0)
    prefs = teacher(np.array([[3.0]]), np.array([[1.0]]), np.random.default_rng(0))
    assert prefs[0] == pytest.approx(1 / (1 + np.exp(-1.0)))


def test_noisy_teacher_flips_about_the_given_share() -> None:
    rng = np.random.default_rng(0)
    a, b = np.ones((20_000, 1)), np.zeros((20_000, 1))
    prefs = SyntheticTeacher(noise=0.2)(a, b, rng)
    assert abs((prefs == 0.0).mean() - 0.2) < 0.02


def test_myopic_teacher_weights_late_steps_more() -> None:
    early, late = np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 1.0]])
    assert SyntheticTeacher()(early, late, np.random.default_rng(0))[0] == 0.5
    assert SyntheticTeacher(myopia=0.5)(early, late, np.random.default_rng(0))[0] == 0.0
    np.testing.assert_allclose(SyntheticTeacher(myopia=0.5).returns(early), [0.25])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"noise": 0.7}, "noise"),
        ({"myopia": 0.0}, "myopia"),
        ({"temperature": -1.0}, "temperature"),
    ],
)
def test_teacher_settings_are_validated(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SyntheticTeacher(**kwargs)


def test_bradley_terry_loss_is_the_logistic_cross_entropy() -> None:
    r1, r2 = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    prefs = torch.tensor([1.0, 0.25])
    p = torch.sigmoid(r1 - r2)
    expected = -(prefs * p.log() + (1 - prefs) * (1 - p).log()).mean()
    assert bradley_terry_loss(r1, r2, prefs).item() == pytest.approx(expected.item(), rel=1e-6)


def test_learning_recovers_pendulum_reward(tmp_path: Path) -> None:
    net, result = learn_reward(
        "Pendulum-v1",
        seed=1,
        n_fragments=200,
        fragment_length=10,
        n_comparisons=1500,
        epochs=6,
        n_envs=4,
        out_dir=tmp_path,
    )
    assert result.history[-1]["accuracy"] > 0.85
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    rng = np.random.default_rng(5)
    venv = make_vec_env("Pendulum-v1", rng=rng, n_envs=2)
    fragments = collect_fragments(venv, 100, 5, rng)
    venv.close()
    batch = fragments.flat()
    learned = net.predict_processed(*batch, update_stats=False)
    truth = true_reward_fn("Pendulum-v1")(*batch)
    assert np.corrcoef(learned, truth)[0, 1] > 0.8
    # The normalisation was calibrated on the training data: about standardised.
    assert int(net.normalize_output_layer.count) == 200 * 10  # type: ignore[union-attr, arg-type]
    assert (tmp_path / "reward.rn").exists() and (tmp_path / "metrics.json").exists()
