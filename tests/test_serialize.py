"""Round trips of every built-in stack through both file formats, and atomic saving."""

from __future__ import annotations

import functools
import io
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from safetensors import safe_open

import rewardnets
from rewardnets import RewardNet
from rewardnets.files.spaces_json import SpaceCodecError, space_from_json, space_to_json
from rewardnets.networks import EMANorm
from rewardnets.serialize import SerializationError, wrapper_stack

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = spaces.Discrete(2)
IMAGE = spaces.Box(0, 255, (6, 6, 3), np.uint8)
DICT_OBS = spaces.Dict({"pos": spaces.Box(-2.0, 2.0, (2,)), "mode": spaces.Discrete(3)})
BATCH = 5


class LinearRewardNet(RewardNet):
    """A user's own reward net, not registered with any plugin."""

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        scale: float = 1.0,
    ) -> None:
        super().__init__(observation_space, action_space)
        self.scale = scale
        assert isinstance(action_space, spaces.Discrete)
        in_size = int(np.prod(observation_space.shape or ())) + int(action_space.n)
        self.linear = torch.nn.Linear(in_size, 1)

    def forward(self, state: Any, action: Any, next_state: Any, done: Any) -> torch.Tensor:
        return self.scale * self.linear(torch.cat([state, action], dim=1)).squeeze(1)


def sample(space: spaces.Space[Any], rng: np.random.Generator) -> Any:
    if isinstance(space, spaces.Dict):
        return {key: sample(sub, rng) for key, sub in space.spaces.items()}
    if isinstance(space, spaces.Discrete):
        return rng.integers(0, int(space.n), BATCH)
    if isinstance(space, spaces.MultiDiscrete):
        return rng.integers(0, space.nvec, (BATCH, *space.shape))
    assert isinstance(space, spaces.Box)
    if space.dtype == np.uint8:
        return rng.integers(0, 256, (BATCH, *space.shape), dtype=np.uint8)
    return rng.uniform(-1.0, 1.0, (BATCH, *space.shape)).astype(np.float32)


def transitions(net: RewardNet, seed: int = 0) -> tuple[Any, Any, Any, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs_space, act_space = net.observation_space, net.action_space
    dones = np.array([False, True, False, False, True])
    return sample(obs_space, rng), sample(act_space, rng), sample(obs_space, rng), dones


def _basic(obs: spaces.Space[Any] = OBS, act: spaces.Space[Any] = ACT) -> RewardNet:
    return rewardnets.BasicRewardNet(obs, act, hid_sizes=(8,))


def _normalized(layer: Any) -> RewardNet:
    return rewardnets.NormalizedRewardNet(_basic(), layer)


def _ensemble() -> RewardNet:
    return rewardnets.RewardEnsemble(OBS, ACT, [_basic() for _ in range(3)])


STACKS: dict[str, Callable[[], RewardNet]] = {
    "BasicRewardNet": _basic,
    "BasicRewardNet-next-state-done": lambda: rewardnets.BasicRewardNet(
        OBS, ACT, use_next_state=True, use_done=True, hid_sizes=(4, 4), activation=torch.nn.Tanh
    ),
    "BasicRewardNet-dict-multidiscrete": lambda: _basic(DICT_OBS, spaces.MultiDiscrete([2, 3])),
    "CNNRewardNet": lambda: rewardnets.CNNRewardNet(IMAGE, ACT, hid_channels=(4,)),
    "BasicShapedRewardNet": lambda: rewardnets.BasicShapedRewardNet(
        OBS, ACT, reward_hid_sizes=(4,), potential_hid_sizes=(4,), discount_factor=0.9
    ),
    "ShapedRewardNet": lambda: rewardnets.ShapedRewardNet(
        _basic(), rewardnets.BasicPotentialMLP(OBS, hid_sizes=(4,)), discount_factor=0.95
    ),
    "NormalizedRewardNet-RunningNorm": lambda: _normalized(rewardnets.RunningNorm),
    "NormalizedRewardNet-EMANorm": lambda: _normalized(functools.partial(EMANorm, decay=0.8)),
    "NormalizedRewardNet-shaped": lambda: rewardnets.NormalizedRewardNet(
        rewardnets.BasicShapedRewardNet(OBS, ACT, reward_hid_sizes=(4,), potential_hid_sizes=(4,)),
        rewardnets.RunningNorm,
    ),
    "RewardEnsemble": _ensemble,
    "AddSTDRewardWrapper": lambda: rewardnets.AddSTDRewardWrapper(_ensemble(), default_alpha=0.7),
    "user-subclass": lambda: LinearRewardNet(OBS, ACT, scale=2.5),
}


def build(name: str) -> RewardNet:
    """Build a stack and give any normalisation layer some statistics."""
    torch.manual_seed(1)
    net = STACKS[name]()
    for seed in (10, 11):
        net.predict_processed(*transitions(net, seed))
    return net


def assert_same_net(loaded: Any, net: RewardNet) -> None:
    assert type(loaded) is type(net)
    assert wrapper_stack(loaded) == wrapper_stack(net)
    expected, got = net.state_dict(), loaded.state_dict()
    assert list(got) == list(expected)
    for key in expected:
        assert got[key].dtype == expected[key].dtype, key
        assert torch.equal(got[key], expected[key]), key
    batch = transitions(net)
    np.testing.assert_array_equal(loaded.predict(*batch), net.predict(*batch))
    np.testing.assert_array_equal(
        loaded.predict_processed(*batch, update_stats=False),
        net.predict_processed(*batch, update_stats=False),
    )


@pytest.mark.parametrize("name", STACKS)
def test_safe_format_round_trip(name: str, tmp_path: Path) -> None:
    net = build(name)
    path = rewardnets.save(net, tmp_path / "net.rn")
    loaded = rewardnets.load(path)
    assert_same_net(loaded, net)
    assert loaded.spec == net.spec
    assert loaded.training == net.training


@pytest.mark.parametrize("name", STACKS)
def test_torch_save_round_trip_with_plain_torch_load(name: str, tmp_path: Path) -> None:
    net = build(name)
    torch.save(net, tmp_path / "net.pt")
    loaded = torch.load(tmp_path / "net.pt", weights_only=False)
    assert_same_net(loaded, net)
    # The preprocessing closures are dropped on save and rebuilt on load.
    assert callable(loaded.__dict__["_prep_obs"]) and callable(loaded.__dict__["_prep_act"])
    assert loaded.spec == net.spec


@pytest.mark.parametrize("name", STACKS)
def test_torch_save_file_loads_through_the_restricted_unpickler(name: str, tmp_path: Path) -> None:
    net = build(name)
    torch.save(net, tmp_path / "net.pt")
    assert_same_net(rewardnets.load(tmp_path / "net.pt"), net)


def test_legacy_torch_format_loads(tmp_path: Path) -> None:
    net = build("NormalizedRewardNet-RunningNorm")
    torch.save(net, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert_same_net(rewardnets.load(tmp_path / "legacy.pt"), net)


def test_loaded_net_is_a_working_net_that_saves_again(tmp_path: Path) -> None:
    net = build("AddSTDRewardWrapper")
    rewardnets.save(net, tmp_path / "a.rn")
    again = rewardnets.load(tmp_path / "a.rn")
    rewardnets.save(again, tmp_path / "b.rn")
    assert_same_net(rewardnets.load(tmp_path / "b.rn"), net)
    loss = again(*again.preprocess(*transitions(again))).sum()
    loss.backward()  # forward stays differentiable after loading
    assert all(p.grad is not None for p in again.parameters())


def test_load_puts_the_net_on_the_requested_device(tmp_path: Path) -> None:
    net = build("NormalizedRewardNet-RunningNorm")
    rewardnets.save(net, tmp_path / "n.rn")
    for device in (None, "cpu", torch.device("cpu")):
        loaded = rewardnets.load(tmp_path / "n.rn", device=device)
        assert loaded.device == torch.device("cpu")
        assert all(t.device.type == "cpu" for t in loaded.state_dict().values())


def test_file_is_safetensors_with_json_documents(tmp_path: Path) -> None:
    net = build("NormalizedRewardNet-EMANorm")
    rewardnets.save(net, tmp_path / "n.rn", metadata={"run": "seed-3", "steps": 1000})
    with safe_open(str(tmp_path / "n.rn"), "pt") as reader:
        header = reader.metadata()
        names = set(reader.keys())
    assert sorted(header) == ["format", "format_version", "metadata", "spaces", "spec"]
    assert header["format"] == "rewardnets" and header["format_version"] == "2"
    meta = json.loads(header["metadata"])
    spec = json.loads(header["spec"])
    spaces_json = json.loads(header["spaces"])
    assert meta["rewardnets_version"] == rewardnets.__version__
    assert meta["torch_version"] == torch.__version__
    assert meta["user"] == {"run": "seed-3", "steps": 1000}
    assert meta["parameter_count"] == sum(p.numel() for p in net.parameters())
    required = {(r["kind"], r["name"]): r["distribution"] for r in meta["requires"]}
    assert required == {
        ("reward_net", "BasicRewardNet"): "rewardnets",
        ("wrapper", "NormalizedRewardNet"): "rewardnets",
        ("norm_layer", "EMANorm"): "rewardnets",
    }
    assert spec == net.spec
    assert space_from_json(spaces_json["observation_space"]) == OBS
    assert "base.normalize_output_layer.running_mean" not in names  # keys are the net's own
    assert set(net.state_dict()) == names


def test_load_does_not_touch_the_callers_random_state(tmp_path: Path) -> None:
    rewardnets.save(build("BasicShapedRewardNet"), tmp_path / "s.rn")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    rewardnets.load(tmp_path / "s.rn")
    assert torch.equal(torch.rand(3), expected)


def test_user_net_needs_its_module_imported_not_a_registration(tmp_path: Path) -> None:
    net = build("user-subclass")
    assert net.spec["net"] == f"{__name__}:LinearRewardNet"
    rewardnets.save(net, tmp_path / "u.rn")
    with safe_open(str(tmp_path / "u.rn"), "pt") as reader:
        meta = json.loads(reader.metadata()["metadata"])
    assert f"{__name__}:LinearRewardNet" in meta["imports"]


def test_saving_a_class_defined_in_a_function_is_refused(tmp_path: Path) -> None:
    class LocalNet(LinearRewardNet):
        pass

    with pytest.raises(SerializationError, match="defined inside a function"):
        rewardnets.save(LocalNet(OBS, ACT), tmp_path / "x.rn")
    assert not (tmp_path / "x.rn").exists()
    assert list(tmp_path.iterdir()) == []


def test_saving_something_else_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match="Expected a RewardNet to save, got Linear"):
        rewardnets.save(torch.nn.Linear(2, 1), tmp_path / "x.rn")  # type: ignore[arg-type]


def test_saving_non_json_metadata_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match="JSON"):
        rewardnets.save(build("BasicRewardNet"), tmp_path / "x.rn", metadata={"f": object()})
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- atomic saves
def test_interrupted_save_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "net.rn"
    old = build("NormalizedRewardNet-RunningNorm")
    rewardnets.save(old, path)
    before = path.read_bytes()

    class DyingFile(io.BufferedWriter):
        """A file that takes the first bytes of a write, then reports a full disk."""

        def write(self, data: Any) -> int:
            super().write(bytes(data)[:100])
            raise OSError("disk full (simulated)")

    original = os.fdopen

    def dying_fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode != "wb":
            return original(fd, mode, *args, **kwargs)
        return DyingFile(io.FileIO(fd, "wb"))

    monkeypatch.setattr(os, "fdopen", dying_fdopen)
    with pytest.raises(OSError, match="disk full"):
        rewardnets.save(build("AddSTDRewardWrapper"), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.rn"]  # no temp file left
    assert_same_net(rewardnets.load(path), old)


class BrokenStateNet(LinearRewardNet):
    """A net whose tensors cannot be collected."""

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("state_dict exploded")


def test_save_that_fails_collecting_tensors_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "net.rn"
    rewardnets.save(build("BasicRewardNet"), path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="state_dict exploded"):
        rewardnets.save(BrokenStateNet(OBS, ACT), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.rn"]


def test_save_replaces_an_existing_file_and_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "net.rn"
    rewardnets.save(build("BasicRewardNet"), path)
    assert stat.S_IMODE(path.stat().st_mode) & 0o044  # readable by others, not a 0600 temp file
    os.chmod(path, 0o640)
    new = build("RewardEnsemble")
    rewardnets.save(new, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert_same_net(rewardnets.load(path), new)


def test_save_into_a_missing_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        rewardnets.save(build("BasicRewardNet"), tmp_path / "missing" / "net.rn")


# ------------------------------------------------------------------------- spaces
SPACES = [
    spaces.Box(-1.0, 1.0, (3,), np.float32),
    spaces.Box(np.array([-1.0, -np.inf]), np.array([2.5, np.inf]), dtype=np.float64),
    spaces.Box(0, 255, (4, 4, 3), np.uint8),
    spaces.Box(-np.inf, np.inf, (2, 2), np.float32),
    spaces.Discrete(5),
    spaces.Discrete(3, start=-1),
    spaces.MultiDiscrete([2, 3, 4]),
    spaces.MultiDiscrete(np.array([[2, 3], [4, 5]]), start=np.array([[0, 1], [-1, 0]])),
    spaces.MultiBinary(4),
    spaces.MultiBinary([2, 3]),
    spaces.Dict({"a": spaces.Box(-1.0, 1.0, (2,)), "b": spaces.Dict({"c": spaces.Discrete(2)})}),
    gym.make("CartPole-v1").observation_space,
]


@pytest.mark.parametrize("space", SPACES, ids=str)
def test_space_json_round_trip(space: spaces.Space[Any]) -> None:
    data = space_to_json(space)
    text = json.dumps(data, allow_nan=False)  # standard JSON: no NaN/Infinity literals
    back = space_from_json(json.loads(text))
    assert back == space
    assert type(back) is type(space)
    if isinstance(space, spaces.Box):
        assert isinstance(back, spaces.Box)
        assert back.dtype == space.dtype
        np.testing.assert_array_equal(back.low, space.low)
        np.testing.assert_array_equal(back.high, space.high)


def test_space_json_errors_say_what_was_expected() -> None:
    with pytest.raises(SpaceCodecError, match="Text"):
        space_to_json(spaces.Text(5))
    with pytest.raises(SpaceCodecError, match="unknown space type 'Graph'"):
        space_from_json({"type": "Graph"})
    with pytest.raises(SpaceCodecError, match="dtype"):
        space_from_json({"type": "Box", "shape": [1], "dtype": "object", "low": 0, "high": 1})
    with pytest.raises(SpaceCodecError, match=r"shape \(2,\)"):
        space_from_json(
            {"type": "Box", "shape": [2], "dtype": "float32", "low": [0, 0, 0], "high": {"fill": 1}}
        )
