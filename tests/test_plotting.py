"""PNG figures: learning curves and reward heatmaps."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from rewardnets.apps.plotting import HeatmapResult, plot_learning_curves, plot_reward_heatmap
from rewardnets.apps.true_rewards import pendulum_reward

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    """Check the file is a PNG of plausible size; return its (width, height) in pixels."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 5_000 < len(data) < 2_000_000
    assert 200 <= width <= 3000 and 200 <= height <= 3000
    return width, height


LEARN: dict[str, Any] = {
    "kind": "learn",
    "history": [
        {"step": s, "loss": 1.0 / (1 + s), "accuracy": 0.5 + s / 40} for s in range(0, 20, 2)
    ],
}
TRAIN: dict[str, Any] = {
    "kind": "train-policy",
    "history": [
        {"step": 1000 * s, "ep_rew_mean": -100.0 + 5 * s, "eval_return": -90.0 + 4 * s}
        for s in range(12)
    ]
    + [{"step": 12000, "ep_rew_mean": -40.0, "eval_return": None}],
}


def test_learning_curves_from_files(tmp_path: Path) -> None:
    learn_path, train_path = tmp_path / "reward.json", tmp_path / "policy.json"
    learn_path.write_text(json.dumps(LEARN))
    train_path.write_text(json.dumps(TRAIN))
    second = dict(LEARN, history=[dict(r, loss=2 * r["loss"]) for r in LEARN["history"]])

    out = tmp_path / "figs" / "curves.png"
    result = plot_learning_curves([learn_path, str(train_path), second], out)

    assert result.path == out
    width, height = _png_size(out)
    assert width > height  # four subplots, laid out 3 + 1
    assert list(result.curves) == ["loss", "accuracy", "ep_rew_mean", "eval_return"]
    assert set(result.curves["loss"]) == {"reward", "run 2"}
    assert set(result.curves["ep_rew_mean"]) == {"policy"}
    steps, values = result.curves["eval_return"]["policy"]
    assert steps[-1] == 12000 and np.isnan(values[-1])
    np.testing.assert_allclose(
        result.curves["loss"]["run 2"][1], 2 * result.curves["loss"]["reward"][1]
    )


def test_learning_curves_with_labels_and_one_dict(tmp_path: Path) -> None:
    result = plot_learning_curves({"mine": LEARN}, tmp_path / "one.png", title="run")
    assert set(result.curves["accuracy"]) == {"mine"}
    _png_size(tmp_path / "one.png")
    single = plot_learning_curves(TRAIN, tmp_path / "single.png")
    assert set(single.curves) == {"ep_rew_mean", "eval_return"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"kind": "eval", "history": []}, r"kind 'eval'; expected one of 'learn', 'train-policy'"),
        ({"kind": "learn"}, r"'history' list"),
        ({"kind": "learn", "history": [{"loss": 1.0}]}, r"history\[0\] needs an int 'step'"),
        (
            {"kind": "learn", "history": [{"step": 1, "loss": "high"}]},
            r"history\[0\]\['loss'\] must be a number",
        ),
        ({"kind": "learn", "history": [{"step": 1}]}, "no values to plot"),
    ],
)
def test_learning_curves_bad_documents(tmp_path: Path, doc: dict[str, Any], message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=message) as info:
        plot_learning_curves([path], tmp_path / "out.png")
    if "no values" not in message:
        assert "bad.json" in str(info.value)
    assert not (tmp_path / "out.png").exists()


def test_learning_curves_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        plot_learning_curves([tmp_path / "missing.json"], tmp_path / "out.png")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        plot_learning_curves([tmp_path / "broken.json"], tmp_path / "out.png")
    with pytest.raises(ValueError, match=r"must name a \.png file"):
        plot_learning_curves([LEARN], tmp_path / "out.pdf")
    with pytest.raises(ValueError, match=r"metrics dict #0 must have a 'history' list"):
        plot_learning_curves({"kind": "learn"}, tmp_path / "out.png")
    with pytest.raises(ValueError, match="No metrics given"):
        plot_learning_curves([], tmp_path / "out.png")
    with pytest.raises(TypeError, match="source #0 is a int"):
        plot_learning_curves([3], tmp_path / "out.png")  # type: ignore[list-item]


def test_reward_heatmap_matches_the_reward_on_the_grid(tmp_path: Path) -> None:
    env = gym.make("Pendulum-v1")
    out = tmp_path / "heat.png"
    result = plot_reward_heatmap(
        pendulum_reward,
        env.observation_space,
        env.action_space,
        dims=(1, 2),
        out_path=out,
        resolution=30,
        fixed_obs=np.array([0.5, 0.0, 0.0], dtype=np.float32),
    )
    env.close()
    assert isinstance(result, HeatmapResult) and result.path == out
    _png_size(out)
    xs, ys, values = result.xs, result.ys, result.values
    assert xs.shape == ys.shape == (30,) and values.shape == (30, 30)
    assert xs[0] == -1 and xs[-1] == 1 and ys[0] == -8 and ys[-1] == 8  # the space's bounds
    # Rebuild every grid point by hand: obs[1] = xs[j], obs[2] = ys[i], the
    # action in the middle of its bounds (0), next_obs = obs, done = False.
    for i in range(30):
        obs = np.tile(np.array([0.5, 0.0, 0.0], dtype=np.float32), (30, 1))
        obs[:, 1], obs[:, 2] = xs, ys[i]
        expected = pendulum_reward(obs, np.zeros((30, 1)), obs, np.zeros(30, dtype=bool))
        np.testing.assert_array_equal(values[i], expected)


def test_reward_heatmap_defaults_and_infinite_bounds(tmp_path: Path) -> None:
    env = gym.make("CartPole-v1")  # velocity bounds are float32's max
    seen: dict[str, Any] = {}

    def reward(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        seen.update(obs=obs, acts=acts, next_obs=next_obs, dones=dones)
        return np.asarray(obs)[:, 1] * np.asarray(obs)[:, 3]

    result = plot_reward_heatmap(
        reward, env.observation_space, env.action_space, (1, 3), tmp_path / "cp.png", resolution=11
    )
    env.close()
    _png_size(tmp_path / "cp.png")
    assert (result.xs[0], result.xs[-1], result.ys[0], result.ys[-1]) == (-3, 3, -3, 3)
    np.testing.assert_allclose(result.values, np.outer(result.ys, result.xs), rtol=1e-6)
    # Other dims at the middle of their bounds; the Discrete action is 0.
    assert np.all(seen["obs"][:, [0, 2]] == 0)
    assert np.all(seen["acts"] == 0) and seen["acts"].shape == (121,)
    assert np.array_equal(seen["obs"], seen["next_obs"]) and not seen["dones"].any()

    custom = plot_reward_heatmap(
        reward,
        spaces.Box(-np.inf, np.inf, (4,), np.float32),
        spaces.Discrete(2),
        dims=(1, 3),
        resolution=5,
        bounds=((-1.0, 1.0), (0.0, 10.0)),
        action=1,
    )
    assert custom.path is None  # no figure asked for
    assert (custom.xs[0], custom.xs[-1], custom.ys[0], custom.ys[-1]) == (-1, 1, 0, 10)
    assert np.all(seen["acts"] == 1)


@pytest.mark.parametrize(
    ("dims", "message"),
    [
        ((0, 3), r"out of range.*shape \(3,\).*\[0, 2\]"),
        ((-1, 0), "out of range"),
        ((1, 1), "two different observation dimensions; got 1 twice"),
        ((0,), "a pair of observation indices"),
        ((0.0, 1), "must hold ints"),
    ],
)
def test_reward_heatmap_bad_dims(dims: Any, message: str) -> None:
    box = spaces.Box(-1, 1, (3,), np.float32)
    with pytest.raises(ValueError, match=message):
        plot_reward_heatmap(pendulum_reward, box, spaces.Box(-2, 2, (1,), np.float32), dims)


def test_reward_heatmap_bad_spaces_and_arguments(tmp_path: Path) -> None:
    act = spaces.Box(-2, 2, (1,), np.float32)
    box = spaces.Box(-1, 1, (3,), np.float32)
    with pytest.raises(TypeError, match="Box observation space; got Discrete"):
        plot_reward_heatmap(pendulum_reward, spaces.Discrete(4), act)
    with pytest.raises(ValueError, match=r"fixed_obs must have the observation shape \(3,\)"):
        plot_reward_heatmap(pendulum_reward, box, act, fixed_obs=np.zeros(2))
    with pytest.raises(ValueError, match=r"action must have the action space's shape \(1,\)"):
        plot_reward_heatmap(pendulum_reward, box, act, action=np.zeros(2))
    with pytest.raises(ValueError, match="resolution must be an int >= 2"):
        plot_reward_heatmap(pendulum_reward, box, act, resolution=1)
    with pytest.raises(ValueError, match="low < high"):
        plot_reward_heatmap(pendulum_reward, box, act, bounds=((1.0, 0.0), (0.0, 1.0)))
    with pytest.raises(TypeError, match="pass action="):
        plot_reward_heatmap(pendulum_reward, box, spaces.Tuple((act, act)))


def test_importing_rewardnets_does_not_import_matplotlib() -> None:
    code = (
        "import sys, rewardnets, rewardnets.apps.plotting, rewardnets.apps.epic, rewardnets.apps.true_rewards\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'\n"
        "assert 'stable_baselines3' not in sys.modules, 'SB3 was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
