"""ONNX export: onnxruntime gives what ``predict_processed`` gives, for every family and space.

Each graph is run by onnxruntime alone on raw numpy arrays and compared with
the net's own reward (statistics frozen): max abs difference <= 1e-5 in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv

import rewardnets
from rewardnets import RewardNet
from rewardnets.apps.cli import cli
from rewardnets.export import ExportError, describe_inputs, export_onnx
from rewardnets.serialize import RewardTypeError

TOLERANCE = 1e-5
CARTPOLE = gym.make("CartPole-v1")
BOX = spaces.Box(-1.0, 1.0, (3,), np.float32)
IMAGE = spaces.Box(0, 255, (8, 8, 3), np.uint8)
DICT = spaces.Dict(
    {"pos": spaces.Box(-2.0, 2.0, (2,), np.float32), "mode": spaces.Discrete(3, start=1)}
)


def sample(space: spaces.Space[Any], n: int, rng: np.random.Generator) -> Any:
    if isinstance(space, spaces.Dict):
        return {key: sample(sub, n, rng) for key, sub in space.spaces.items()}
    if isinstance(space, spaces.Discrete):
        return rng.integers(int(space.start), int(space.start) + int(space.n), n)
    if isinstance(space, spaces.MultiDiscrete):
        return rng.integers(0, space.nvec, (n, *space.shape))
    if isinstance(space, spaces.MultiBinary):
        return rng.integers(0, 2, (n, *space.shape)).astype(np.int8)
    assert isinstance(space, spaces.Box)
    if space.dtype == np.uint8:
        return rng.integers(0, 256, (n, *space.shape), dtype=np.uint8)
    low, high = np.maximum(space.low, -3.0), np.minimum(space.high, 3.0)
    return rng.uniform(low, high, (n, *space.shape)).astype(space.dtype)


def transitions(net: RewardNet, n: int, seed: int = 0) -> tuple[Any, Any, Any, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        sample(net.observation_space, n, rng),
        sample(net.action_space, n, rng),
        sample(net.observation_space, n, rng),
        rng.integers(0, 2, n).astype(bool),
    )


def feed(net: RewardNet, batch: tuple[Any, Any, Any, np.ndarray]) -> dict[str, np.ndarray]:
    """The raw arrays by input name, as a program without rewardnets would build them."""
    flat: list[np.ndarray] = []
    for value in batch:
        flat.extend(value.values() if isinstance(value, dict) else [value])
    names = list(describe_inputs(net))
    dtypes = [dtype for _, dtype in describe_inputs(net).values()]
    return {name: np.asarray(a, dtype=dt) for name, a, dt in zip(names, flat, dtypes, strict=True)}


def run_onnx(path: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (reward,) = session.run(["reward"], inputs)
    return np.asarray(reward)


def fitted(net: RewardNet) -> RewardNet:
    """``net`` with its normalisation statistics fitted on a few batches."""
    for seed in range(3):
        net.predict_processed(*transitions(net, 16, seed=100 + seed))
    return net


def _mlp(obs: Any, act: Any, **kwargs: Any) -> RewardNet:
    return rewardnets.BasicRewardNet(obs, act, hid_sizes=(8,), **kwargs)


NETS: dict[str, Callable[[], RewardNet]] = {
    "basic-box-discrete": lambda: _mlp(CARTPOLE.observation_space, CARTPOLE.action_space),
    "basic-multidiscrete-all-inputs": lambda: _mlp(
        BOX, spaces.MultiDiscrete([2, 3, 4]), use_next_state=True, use_done=True
    ),
    "basic-multibinary-box-action": lambda: _mlp(
        spaces.MultiBinary(5), spaces.Box(-2.0, 2.0, (2,), np.float32)
    ),
    "basic-dict": lambda: _mlp(DICT, spaces.Discrete(2), use_next_state=True),
    "basic-image-as-mlp": lambda: _mlp(IMAGE, spaces.Discrete(2)),
    "basic-input-norm": lambda: fitted(
        _mlp(BOX, spaces.Discrete(2), normalize_input_layer=rewardnets.RunningNorm)
    ),
    "basic-shaped": lambda: rewardnets.BasicShapedRewardNet(
        DICT, spaces.Discrete(2), reward_hid_sizes=(8,), potential_hid_sizes=(8,)
    ),
    "shaped-mlp-potential": lambda: rewardnets.ShapedRewardNet(
        _mlp(BOX, spaces.MultiDiscrete([3, 2])),
        rewardnets.BasicPotentialMLP(BOX, hid_sizes=(4,)),
        discount_factor=0.9,
    ),
    "cnn": lambda: rewardnets.CNNRewardNet(
        IMAGE, spaces.Discrete(3), use_next_state=True, use_done=True, hid_channels=(4,)
    ),
    "cnn-shaped-cnn-potential": lambda: rewardnets.ShapedRewardNet(
        rewardnets.CNNRewardNet(IMAGE, spaces.Discrete(3), hid_channels=(4,)),
        rewardnets.BasicPotentialCNN(IMAGE, hid_sizes=(4,)),
    ),
    "cnn-chw": lambda: rewardnets.CNNRewardNet(
        spaces.Box(0, 255, (3, 8, 8), np.uint8),
        spaces.Discrete(2),
        hwc_format=False,
        hid_channels=(4,),
    ),
    "normalized-runningnorm": lambda: fitted(
        rewardnets.NormalizedRewardNet(
            rewardnets.BasicShapedRewardNet(
                CARTPOLE.observation_space,
                CARTPOLE.action_space,
                reward_hid_sizes=(8,),
                potential_hid_sizes=(8,),
            ),
            rewardnets.RunningNorm,
        )
    ),
    "normalized-emanorm": lambda: fitted(
        rewardnets.NormalizedRewardNet(_mlp(DICT, spaces.Discrete(2)), rewardnets.EMANorm)
    ),
    "ensemble": lambda: rewardnets.RewardEnsemble(
        BOX, spaces.Discrete(2), [_mlp(BOX, spaces.Discrete(2)) for _ in range(3)]
    ),
    "add-std-over-normalized-members": lambda: fitted(
        rewardnets.AddSTDRewardWrapper(
            rewardnets.RewardEnsemble(
                BOX,
                spaces.Discrete(2),
                [rewardnets.NormalizedRewardNet(_mlp(BOX, spaces.Discrete(2))) for _ in range(3)],
            ),
            default_alpha=0.7,
        )
    ),
}


@pytest.mark.parametrize("name", sorted(NETS))
def test_onnx_reward_equals_predict_processed(name: str, tmp_path: Path) -> None:
    """Exported once, run with batches of 1, 7 and 9: the batch dimension is dynamic."""
    torch.manual_seed(0)
    net = NETS[name]()
    path = export_onnx(net, tmp_path / "reward.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.shape[0] for i in session.get_inputs()] == ["batch"] * len(describe_inputs(net))
    for n in (1, 7, 9):
        batch = transitions(net, n, seed=n)
        expected = net.predict_processed(*batch, update_stats=False)
        got = run_onnx(path, feed(net, batch))
        assert got.shape == expected.shape == (n,)
        assert got.dtype == np.float32
        assert np.max(np.abs(got - expected)) <= TOLERANCE


# ------------------------------------------------------------------- reward types
@pytest.fixture(scope="module")
def cartpole_venv() -> DummyVecEnv:
    return DummyVecEnv([lambda: gym.make("CartPole-v1")] * 2)


class BoxEnv(gym.Env[np.ndarray, np.int64]):
    """An env with the spaces of the ensemble nets above."""

    observation_space = BOX
    action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        return np.zeros(3, np.float32), 0.0, True, False, {}


@pytest.fixture(scope="module")
def box_venv() -> DummyVecEnv:
    return DummyVecEnv([BoxEnv])


@pytest.mark.parametrize(
    ("reward_type", "options"),
    [
        # (RewardNet_normalized is the net's predict_processed: see the CLI test.)
        ("RewardNet_unnormalized", {}),
        ("RewardNet_shaped", {}),
        ("RewardNet_unshaped", {}),
        ("RewardNet_std_added", {"alpha": -1.5}),
    ],
)
def test_reward_types_match_load_reward(
    reward_type: str,
    options: dict[str, Any],
    tmp_path: Path,
    cartpole_venv: DummyVecEnv,
    box_venv: DummyVecEnv,
) -> None:
    torch.manual_seed(1)
    net = NETS[
        "add-std-over-normalized-members" if "std" in reward_type else "normalized-runningnorm"
    ]()
    saved = rewardnets.save(net, tmp_path / "net.rn")
    path = export_onnx(net, tmp_path / "reward.onnx", reward_type=reward_type, **options)
    venv = cartpole_venv if "std" not in reward_type else box_venv
    reward_fn = rewardnets.load_reward(reward_type, saved, venv, **options)
    batch = transitions(net, 8)
    got = run_onnx(path, feed(net, batch))
    assert np.max(np.abs(got - reward_fn(*batch))) <= TOLERANCE


def test_reward_type_the_net_lacks_is_refused(tmp_path: Path) -> None:
    net = _mlp(BOX, spaces.Discrete(2))
    with pytest.raises(
        RewardTypeError, match=r"needs a ShapedRewardNet.*the net is BasicRewardNet"
    ):
        export_onnx(net, tmp_path / "r.onnx", reward_type="RewardNet_shaped")
    with pytest.raises(ExportError, match="'zero' cannot be exported; expected None"):
        export_onnx(net, tmp_path / "r.onnx", reward_type="zero")
    assert not (tmp_path / "r.onnx").exists()


# ------------------------------------------------------------ what cannot be exported
class BranchyRewardNet(RewardNet):
    """A user's net whose forward branches on a tensor's value."""

    def __init__(self, observation_space: Any, action_space: Any) -> None:
        super().__init__(observation_space, action_space)
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, state: Any, action: Any, next_state: Any, done: Any) -> torch.Tensor:
        reward = self.linear(state).squeeze(1)
        if reward.sum() > 0:
            return reward * 2
        return reward


class ClippedRewardNet(rewardnets.PredictProcessedWrapper):
    """A user's wrapper that post-processes in numpy."""

    def predict_processed(
        self, state: Any, action: Any, next_state: Any = None, done: Any = None, **kwargs: Any
    ) -> np.ndarray:
        return np.clip(self.base.predict_processed(state, action, next_state, done), -1, 1)


def test_net_that_does_not_trace_is_named(tmp_path: Path) -> None:
    net = rewardnets.NormalizedRewardNet(BranchyRewardNet(BOX, spaces.Discrete(2)))
    with pytest.raises(
        ExportError, match=r"Cannot export net.base \(BranchyRewardNet\): torch.export cannot"
    ):
        export_onnx(net, tmp_path / "r.onnx")
    assert not (tmp_path / "r.onnx").exists()
    assert net.training  # the net's modes are as they were


def test_unknown_wrapper_is_named(tmp_path: Path) -> None:
    net = ClippedRewardNet(_mlp(BOX, spaces.Discrete(2)))
    with pytest.raises(ExportError, match=r"net \(ClippedRewardNet\): it computes its processed"):
        export_onnx(net, tmp_path / "r.onnx")
    assert not (tmp_path / "r.onnx").exists()


# ------------------------------------------------------------------------- the CLI
def test_cli_exports_a_saved_file(tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = NETS["normalized-runningnorm"]()
    rewardnets.save(net, tmp_path / "net.rn")
    out = tmp_path / "reward.onnx"
    result = CliRunner().invoke(
        cli,
        [
            "export",
            str(tmp_path / "net.rn"),
            "--onnx",
            str(out),
            "--reward-type",
            "RewardNet_normalized",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "input  obs: float32[batch, 4]" in result.output
    batch = transitions(net, 5)
    expected = net.predict_processed(*batch, update_stats=False)
    assert np.max(np.abs(run_onnx(out, feed(net, batch)) - expected)) <= TOLERANCE


def test_cli_error_is_one_line(tmp_path: Path) -> None:
    rewardnets.save(_mlp(BOX, spaces.Discrete(2)), tmp_path / "net.rn")
    result = CliRunner().invoke(
        cli,
        [
            "export",
            str(tmp_path / "net.rn"),
            "--onnx",
            str(tmp_path / "r.onnx"),
            "--reward-type",
            "RewardNet_normalized",
        ],
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "NormalizedRewardNet" in lines[0]
    assert "Traceback" not in result.output
