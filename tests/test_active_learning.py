"""Preference learning in rounds: schedules, selectors, teachers, the loop and its policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3 import SAC

import rewardnets
from rewardnets import registry
from rewardnets.apps.active_learning import (
    RoundAgent,
    ensemble_config,
    label_schedule,
    learn_reward_active,
    make_teacher,
)
from rewardnets.errors import RewardNetsError
from rewardnets.serialize import load_reward
from rewardnets.util import make_vec_env


def test_label_schedule_spreads_the_budget_or_checks_the_given_one() -> None:
    assert label_schedule(100, 3) == [34, 33, 33]
    assert label_schedule(50, 2, [40, 10]) == [40, 10]
    with pytest.raises(RewardNetsError, match="summing to 50"):
        label_schedule(50, 2, [40, 20])
    with pytest.raises(RewardNetsError, match="at least one label per round"):
        label_schedule(2, 3)


def test_disagreement_and_entropy_pick_the_pairs_they_should() -> None:
    # Fragments 0..3; three members. On (0, 1) the members disagree (one says 0 is
    # far better, one far worse); on (2, 3) they agree that the two are equal; on
    # (1, 2) they agree that 2 is better.
    returns = np.array([[5.0, 0.0, 1.0, 1.0], [-5.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    pairs = np.array([[0, 1], [2, 3], [1, 2]])
    select = registry.get("query_selector", "disagreement")
    assert list(select(pairs, returns, 1, np.random.default_rng(0))) == [0]
    # Entropy looks at the mean probability: the members' mean on (2, 3) is exactly
    # 1/2, on (0, 1) it is also 1/2 by symmetry, on (1, 2) it is sigmoid(-1).
    entropy = registry.get("query_selector", "entropy")
    assert set(entropy(pairs, returns, 2, np.random.default_rng(0))) == {0, 1}
    uniform = registry.get("query_selector", "uniform")
    picks = {int(uniform(pairs, returns, 1, np.random.default_rng(s))[0]) for s in range(30)}
    assert picks == {0, 1, 2}


def test_teachers_label_as_b_pref_describes() -> None:
    rng = np.random.default_rng(0)
    better = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 3.0], [-9.0, -9.0, -9.0], [2.0, 2.0, 2.0]])
    worse = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [-9.5, -9.0, -9.0], [2.0, 2.0, 2.05]])
    perfect = make_teacher("perfect")(better, worse, rng)
    assert perfect.tolist() == [1.0, 0.5, 1.0, 0.0]  # pair 1: 3 against 3, a tie
    myopic = make_teacher("myopic", myopia=0.5)(better, worse, rng)
    assert myopic[1] == 1.0  # the late reward counts more than the early one
    equal = make_teacher("equal", equal=0.05)(better, worse, rng)
    assert equal[3] == 0.5 and equal[0] == 1.0
    skip = make_teacher("skip", skip=0.3)(better, worse, rng)
    assert np.isnan(skip[2]) and not np.isnan(skip[0])
    flips = make_teacher("mistake", noise=0.5)(
        np.ones((2000, 2)), np.zeros((2000, 2)), np.random.default_rng(1)
    )
    assert 0.45 < float(np.mean(flips == 0.0)) < 0.55
    with pytest.raises(RewardNetsError, match="does not take the options"):
        make_teacher("perfect", loudness=1)
    with pytest.raises(rewardnets.UnknownNameError, match="Did you mean 'noisy'"):
        make_teacher("noisyy")


def test_ensemble_config_needs_two_members() -> None:
    assert ensemble_config(size=2)["kwargs"]["members"][0]["net"] == "BasicRewardNet"
    with pytest.raises(RewardNetsError, match="at least 2 members"):
        ensemble_config(size=1)


def test_the_loop_spends_the_budget_and_saves_each_round(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    net, result = learn_reward_active(
        "Pendulum-v1",
        {
            "net": "BasicRewardNet",
            "kwargs": {"hid_sizes": [16]},
            "wrappers": ["NormalizedRewardNet"],
        },
        labels=9,
        rounds=3,
        schedule=[5, 2, 2],
        teacher="skip",
        teacher_options={"skip": 0.8},
        ensemble_size=2,
        fragments_per_round=12,
        fragment_length=5,
        train_steps=10,
        agent_steps=120,
        explore_alpha=1.0,
        n_envs=2,
        out_dir=tmp_path,
    )
    assert torch.get_num_threads() == threads  # one thread while learning, then restored
    assert result.labels == 9 and [h["labels"] for h in result.history] == [5, 7, 9]
    rounds = [json.loads((tmp_path / f"round_{k}" / "metrics.json").read_text()) for k in (1, 2, 3)]
    assert [r["fragments_from"] for r in rounds] == ["random policy", *["current policy"] * 2]
    assert 0 < rounds[-1]["skipped"] < 9  # skipped pairs still count as labels
    # The saved reward is the ensemble under AddSTDRewardWrapper: RewardNet_std_added
    # gives mean + alpha * std of the normalised members.
    venv = make_vec_env("Pendulum-v1", rng=np.random.default_rng(0), n_envs=4)
    obs = venv.reset()
    acts = np.stack([venv.action_space.sample() for _ in range(4)])
    dones = np.zeros(4, bool)
    ensemble: Any = net.base
    members = np.stack(
        [m.predict_processed(obs, acts, obs, dones, update_stats=False) for m in ensemble.members]
    )
    optimistic = load_reward("RewardNet_std_added", str(result.reward_path), venv, alpha=2.0)
    expected = members.mean(0) + 2.0 * members.std(0, ddof=1)
    np.testing.assert_allclose(optimistic(obs, acts, obs, dones), expected, rtol=1e-4, atol=1e-5)
    assert np.all(members.std(0, ddof=1) > 0)
    mean = load_reward("RewardNet_std_added", str(result.reward_path), venv)
    np.testing.assert_allclose(mean(obs, acts, obs, dones), members.mean(0), rtol=1e-4, atol=1e-5)
    venv.close()


def test_a_selector_returning_bad_indices_is_refused(tmp_path: Path) -> None:
    class Repeats:
        @staticmethod
        @rewardnets.hookimpl
        def register_query_selectors(register):
            register("test/repeats", lambda pairs, returns, n, rng: np.zeros(n, dtype=int))

    registry.register_plugin(Repeats, name="test-repeats")
    try:
        with pytest.raises(RewardNetsError, match="'test/repeats' must return 2 distinct"):
            learn_reward_active(
                "Pendulum-v1",
                labels=2,
                rounds=1,
                selector="test/repeats",
                ensemble_size=2,
                fragments_per_round=6,
                fragment_length=3,
                n_envs=1,
            )
    finally:
        registry.unregister_plugin("test-repeats")


def test_the_round_policy_relabels_its_replay_buffer_with_the_current_reward() -> None:
    venv = make_vec_env("Pendulum-v1", rng=np.random.default_rng(0), n_envs=1)
    net = rewardnets.build_reward_net(
        ensemble_config(size=2), venv.observation_space, venv.action_space
    )
    venv.close()
    agent = RoundAgent("Pendulum-v1", net, "sac", seed=0, alpha=0.0)
    agent.learn(60)  # below learning_starts: collects only
    assert isinstance(agent.model, SAC)
    buffer: Any = agent.model.replay_buffer
    n = buffer.pos
    # SB3 stores Box actions scaled to [-1, 1]; Pendulum's actions are in [-2, 2].
    taken = 2.0 * buffer.actions[:n, 0]
    obs, next_obs, dones = (
        buffer.observations[:n, 0],
        buffer.next_observations[:n, 0],
        buffer.dones[:n, 0],
    )

    def current() -> np.ndarray:
        return net.predict_processed(obs, taken, next_obs, dones, update_stats=False)

    # What the policy was paid while collecting: the reward of the actions it took.
    np.testing.assert_allclose(buffer.rewards[:n, 0], current(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1)
    assert not np.allclose(buffer.rewards[:n, 0], current(), atol=1e-3)
    agent.relabel()
    np.testing.assert_allclose(buffer.rewards[:n, 0], current(), rtol=1e-5, atol=1e-6)
    actions = agent.policy(obs[:3])
    assert actions.shape == (3, 1) and np.all(np.abs(actions) <= 2.0)
    agent.venv.close()


def test_a_teacher_returning_bad_labels_is_refused() -> None:
    def loud(r1: np.ndarray, r2: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return (r1.sum(1) - r2.sum(1)).astype(np.float32)  # returns, not probabilities

    with pytest.raises(
        RewardNetsError, match=r"must return 2 preference probabilities in \[0, 1\]"
    ):
        learn_reward_active(
            "Pendulum-v1",
            labels=2,
            rounds=1,
            teacher=loud,
            ensemble_size=2,
            fragments_per_round=6,
            fragment_length=3,
            n_envs=1,
        )
