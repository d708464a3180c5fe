"""Files that try to run code: refused by load, load_reward and inspect, with no side effect."""

from __future__ import annotations

import builtins
import collections
import datetime
import json
import os
import pickle
import shlex
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import save_file
from stable_baselines3.common.vec_env import DummyVecEnv

import rewardnets
from rewardnets.cli import cli
from rewardnets.files.unpickler import resolve_global
from rewardnets.serialize import SerializationError, UnsafePickleError, UnsafeSpecError


class SystemPayload:
    """Unpickling this runs a shell command that creates ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {shlex.quote(self.path)}",))


class OpenPayload:
    """Unpickling this creates (truncates) ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> Any:
        return (builtins.open, (self.path, "w"))


class EvalPayload:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> Any:
        return (builtins.eval, (f"open({self.path!r}, 'w')",))


class PopenPayload:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> Any:
        return (subprocess.Popen, (["touch", self.path],))


PAYLOADS = {
    "os.system": (SystemPayload, os.system.__module__ + ".system"),
    "builtins.open": (OpenPayload, "io.open"),
    "builtins.eval": (EvalPayload, "builtins.eval"),
    "subprocess.Popen": (PopenPayload, "subprocess.Popen"),
}


def _venv() -> DummyVecEnv:
    return DummyVecEnv([lambda: gym.make("CartPole-v1")])


def _write(kind: str, payload: Any, path: Path) -> Path:
    if kind == "torch-zip":
        torch.save(payload, path)
    elif kind == "torch-legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    elif kind == "inside-a-net":
        venv = _venv()
        net = rewardnets.BasicRewardNet(venv.observation_space, venv.action_space, hid_sizes=(4,))
        net.payload = payload  # hidden in an otherwise normal net
        torch.save(net, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    return path


KINDS = ["torch-zip", "torch-legacy", "inside-a-net", "raw-pickle"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_malicious_pickle_is_refused_by_load(tmp_path: Path, payload: str, kind: str) -> None:
    cls, name = PAYLOADS[payload]
    marker = tmp_path / "pwned"
    path = _write(kind, cls(marker), tmp_path / "reward.pt")
    before = path.read_bytes()
    with pytest.raises(UnsafePickleError) as info:
        rewardnets.load(path)
    message = str(info.value)
    assert name.split(".")[-1] in message
    assert "trust_pickle=True" in message
    assert str(path) in message
    assert not marker.exists()
    assert path.read_bytes() == before


@pytest.mark.parametrize("payload", PAYLOADS)
def test_malicious_pickle_is_refused_by_load_reward(tmp_path: Path, payload: str) -> None:
    cls, _ = PAYLOADS[payload]
    marker = tmp_path / "pwned"
    path = _write("inside-a-net", cls(marker), tmp_path / "reward.pt")
    for reward_type in ("RewardNet_normalized", "RewardNet_unnormalized", "RewardNet_shaped"):
        with pytest.raises(UnsafePickleError):
            rewardnets.load_reward(reward_type, path, _venv())
    assert not marker.exists()


def test_malicious_pickle_is_refused_by_inspect(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _write("torch-zip", SystemPayload(marker), tmp_path / "reward.pt")
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "system" in result.output
    assert not marker.exists()


def test_exact_name_of_what_was_refused_is_given(tmp_path: Path) -> None:
    path = _write("torch-zip", SystemPayload(tmp_path / "x"), tmp_path / "r.pt")
    with pytest.raises(UnsafePickleError, match=f"refers to {os.system.__module__}.system,"):
        rewardnets.load(path)


def test_module_named_by_a_file_is_never_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "evil_nets.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nimport torch\nclass Net(torch.nn.Module):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # A pickle of an instance of evil_nets.Net, written by hand.
    (tmp_path / "net.pt").write_bytes(b"\x80\x02cevil_nets\nNet\nq\x00)\x81q\x01}q\x02b.")
    with pytest.raises(UnsafePickleError, match="module 'evil_nets' is not imported"):
        rewardnets.load(tmp_path / "net.pt")
    venv = _venv()
    net = rewardnets.BasicRewardNet(venv.observation_space, venv.action_space, hid_sizes=(4,))
    rewardnets.save(net, tmp_path / "net.rn")
    _edit_spec(tmp_path / "net.rn", lambda s: {**s, "net": "evil_nets:Net"})
    with pytest.raises(SerializationError, match="module 'evil_nets' is not imported"):
        rewardnets.load(tmp_path / "net.rn")
    assert not marker.exists()
    assert "evil_nets" not in sys.modules


def test_trust_pickle_loads_what_the_allow_list_refuses(tmp_path: Path) -> None:
    venv = _venv()
    net = rewardnets.BasicRewardNet(venv.observation_space, venv.action_space, hid_sizes=(4,))
    net.notes = {"trained": datetime.date(2024, 1, 2), "tags": collections.Counter("aab")}
    torch.save(net, tmp_path / "net.pt")
    with pytest.raises(UnsafePickleError, match=r"datetime\.date"):
        rewardnets.load(tmp_path / "net.pt")
    loaded = rewardnets.load(tmp_path / "net.pt", trust_pickle=True)
    assert loaded.notes["trained"] == datetime.date(2024, 1, 2)  # type: ignore[index]
    fn = rewardnets.load_reward(
        "RewardNet_unnormalized", tmp_path / "net.pt", venv, trust_pickle=True
    )
    obs = venv.reset()
    assert fn(obs, np.array([1]), obs, np.array([False])).shape == (1,)


def test_allow_list_decisions() -> None:
    assert resolve_global("torch._utils", "_rebuild_tensor_v2") is torch._utils._rebuild_tensor_v2
    assert resolve_global("collections", "OrderedDict") is collections.OrderedDict
    assert resolve_global("torch.nn.modules.linear", "Linear") is torch.nn.Linear
    assert resolve_global("gymnasium.spaces.box", "Box") is gym.spaces.Box
    assert resolve_global("rewardnets_plugins.mlp", "BasicRewardNet") is rewardnets.BasicRewardNet
    for module, name in [
        ("builtins", "eval"),
        ("builtins", "getattr"),
        ("os", "system"),
        ("torch", "load"),  # a function of an imported module, not a class
        ("torch.serialization", "load"),
        ("rewardnets.serialize", "load"),
        ("rewardnets_plugins.reward_types", "load_normalized"),
        ("sys", "modules"),
    ]:
        with pytest.raises(UnsafePickleError, match=f"{module}.{name}"):
            resolve_global(module, name)
    encode = resolve_global("_codecs", "encode")
    assert encode("\xe9", "latin1") == b"\xe9"
    with pytest.raises(UnsafePickleError, match="latin1"):
        encode("x", "rot13")


def test_seeded_spaces_load(tmp_path: Path) -> None:
    """A space that carries a numpy random generator unpickles through the allow-list."""
    env = gym.make("CartPole-v1")
    env.action_space.seed(3)
    env.observation_space.sample()
    net = rewardnets.BasicRewardNet(env.observation_space, env.action_space, hid_sizes=(4,))
    torch.save(net, tmp_path / "net.pt")
    assert rewardnets.load(tmp_path / "net.pt").observation_space == env.observation_space


# ------------------------------------------------------------------ our own format
def _edit_spec(path: Path, change: Any) -> None:
    """Rewrite the spec of a v2 file with safetensors alone."""
    with safe_open(str(path), "pt") as reader:
        metadata = dict(reader.metadata())
        tensors = {key: reader.get_tensor(key) for key in reader.keys()}  # noqa: SIM118
    metadata["spec"] = json.dumps(change(json.loads(metadata["spec"])))
    save_file(tensors, str(path), metadata=metadata)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    venv = _venv()
    net = rewardnets.BasicRewardNet(venv.observation_space, venv.action_space, hid_sizes=(4,))
    return rewardnets.save(net, tmp_path / "net.rn")


V1_FILE = Path(__file__).resolve().parent / "fixtures" / "v1" / "basic_cartpole.rn"


@pytest.fixture
def saved_v1(tmp_path: Path) -> Path:
    """A v1 file (a zip) of a BasicRewardNet for CartPole, written by rewardnets 0.1.0."""
    return Path(shutil.copy(V1_FILE, tmp_path / "net.rn"))


def test_zip_with_a_pickle_payload_member_is_refused(saved_v1: Path, tmp_path: Path) -> None:
    saved = saved_v1
    marker = tmp_path / "pwned"
    with zipfile.ZipFile(saved, "a") as archive:
        archive.writestr("payload.pkl", pickle.dumps(SystemPayload(marker)))
    with pytest.raises(SerializationError, match=r"unexpected members \['payload.pkl'\]"):
        rewardnets.load(saved)
    with pytest.raises(SerializationError, match="unexpected members"):
        rewardnets.load_reward("RewardNet_normalized", saved, _venv())
    assert not marker.exists()


def test_pickle_in_place_of_the_tensors_is_not_unpickled(saved_v1: Path, tmp_path: Path) -> None:
    saved = saved_v1
    marker = tmp_path / "pwned"
    with zipfile.ZipFile(saved) as archive:
        content = {name: archive.read(name) for name in archive.namelist()}
    buffer = tmp_path / "payload.pt"
    torch.save(SystemPayload(marker), buffer)
    content["tensors.bin"] = buffer.read_bytes()
    with zipfile.ZipFile(saved, "w") as archive:
        for name, data in content.items():
            archive.writestr(name, data)
    with pytest.raises(SerializationError, match=r"tensors.bin has \d+ bytes, but tensors.json"):
        rewardnets.load(saved)
    assert not marker.exists()


@pytest.mark.parametrize(
    "change",
    [
        lambda s: {**s, "net": "os:system"},
        lambda s: {**s, "net": "subprocess:getoutput"},
        lambda s: {**s, "wrappers": [{"name": "builtins:eval", "kwargs": {}}]},
        lambda s: {
            **s,
            "kwargs": {
                **s["kwargs"],
                "activation": {"name": "subprocess:getoutput", "kwargs": {"cmd": "touch PWNED"}},
            },
        },
    ],
    ids=["net-function", "net-subprocess", "wrapper-eval", "activation-partial"],
)
def test_spec_naming_a_function_is_refused(
    saved: Path, tmp_path: Path, change: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _edit_spec(saved, change)
    with pytest.raises(UnsafeSpecError, match=r"not a torch\.nn\.Module subclass"):
        rewardnets.load(saved)
    assert not (tmp_path / "PWNED").exists()


def test_pickle_in_place_of_the_v2_tensor_bytes_is_not_unpickled(
    saved: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    data = saved.read_bytes()
    (length,) = struct.unpack_from("<Q", data)
    payload = tmp_path / "payload.pt"
    torch.save(SystemPayload(marker), payload)
    saved.write_bytes(data[: 8 + length] + payload.read_bytes())
    with pytest.raises(SerializationError, match="safetensors cannot read the tensors"):
        rewardnets.load(saved)
    assert not marker.exists()
