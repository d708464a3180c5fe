"""Hostile files of rewardnets.save (v1 and v2): no memory bombs, no deep structures, no crashes.

Each case is one clear ``SerializationError`` from ``load`` and an exit status
of 1 without a traceback from ``rewardnets inspect``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gymnasium import spaces
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

import rewardnets
from rewardnets.cli import cli
from rewardnets.serialize import MissingPluginError, SerializationError, UnknownSavedNameError

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = spaces.Discrete(2)
V1_FILE = Path(__file__).resolve().parent / "fixtures" / "v1" / "normalized_basic.rn"


@pytest.fixture(params=["v2", "v1"])
def saved(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "v1":
        return Path(shutil.copy(V1_FILE, tmp_path / "good.rn"))
    net = rewardnets.NormalizedRewardNet(rewardnets.BasicRewardNet(OBS, ACT, hid_sizes=(4,)))
    return rewardnets.save(net, tmp_path / "good.rn")


def _refused(path: Path, match: str, error: type[BaseException] = SerializationError) -> None:
    """``load`` raises ``error`` matching ``match``; ``inspect`` and ``compare`` exit 1 cleanly."""
    with pytest.raises(error, match=match):
        rewardnets.load(path)
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert result.output.startswith("Error: ") or "Loads here:   no: " in result.output
    args = ["compare", str(path), "true", "--samples", "8", "--canonical-samples", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and "Traceback" not in result.output


def _with_members(src: Path, dst: Path, **members: bytes) -> Path:
    """Copy a v1 archive with some members replaced (``tensors__bin`` for ``tensors.bin``)."""
    with zipfile.ZipFile(src) as archive:
        content = {name: archive.read(name) for name in archive.namelist()}
    content.update({name.replace("__", "."): data for name, data in members.items()})
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in content.items():
            archive.writestr(name, data)
    return dst


# ----------------------------------------------------------------- memory and time
@pytest.mark.parametrize(
    ("hid_sizes", "match"),
    [
        ([10**9], "shape [1000000000, "),  # 20 GB of weights
        ([883899372, 2608716651], "cannot rebuild the net from its spec"),  # past int64 bytes
    ],
)
def test_a_spec_asking_for_a_huge_net_is_refused_before_allocating(
    saved: Path,
    tmp_path: Path,
    edit_document: Callable[..., Path],
    hid_sizes: list[int],
    match: str,
) -> None:
    def huge(spec: dict[str, Any]) -> dict[str, Any]:
        spec["kwargs"]["hid_sizes"] = hid_sizes
        return spec

    bad = edit_document(saved, tmp_path / "huge.rn", "spec", huge)
    # In a process that may use 1.5 GB, far less than the 20 GB such a net takes.
    code = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))
        import rewardnets
        from rewardnets.serialize import SerializationError
        try:
            rewardnets.load({str(bad)!r})
        except SerializationError as error:
            print("refused:", error)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert match in out.stdout, out.stdout


def test_a_spec_building_thousands_of_members_is_refused_before_building(
    saved: Path, tmp_path: Path, edit_document: Callable[..., Path]
) -> None:
    many = rewardnets.files.serialize.MAX_SPEC_PARTS + 1
    bad = edit_document(
        saved,
        tmp_path / "many.rn",
        "spec",
        lambda spec: {"net": "RewardEnsemble", "kwargs": {"members": ["BasicRewardNet"] * many}},
    )
    start = time.perf_counter()
    _refused(bad, f"more than {many - 1} nets, wrappers and potentials")
    assert time.perf_counter() - start < 10


def test_a_zip_member_that_would_inflate_far_past_its_size_is_not_inflated(
    tmp_path: Path,
) -> None:
    bomb = _with_members(V1_FILE, tmp_path / "bomb.rn", tensors__bin=bytes(64 << 20))
    assert bomb.stat().st_size < 1 << 20  # 64 MB of zeros deflate to well under 1 MB
    _refused(bomb, r"member tensors.bin says it inflates to 67108864 bytes from \d+")


def test_an_encrypted_member_is_refused(tmp_path: Path) -> None:
    data = bytearray(V1_FILE.read_bytes())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        while at != -1:
            data[at + flag_offset] |= 1  # the "encrypted" bit of the general-purpose flags
            at = data.find(signature, at + 1)
    bad = tmp_path / "encrypted.rn"
    bad.write_bytes(bytes(data))
    _refused(bad, "member metadata.json is encrypted")


def test_a_tensor_shape_whose_size_overflows_int64_is_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(V1_FILE) as archive:
        index = json.loads(archive.read("tensors.json"))
    index[0]["shape"] = [1 << 40, 1 << 40]  # 2^80 elements: wraps to 0 in int64
    bad = _with_members(V1_FILE, tmp_path / "overflow.rn", tensors__json=json.dumps(index).encode())
    _refused(bad, f"tensor {index[0]['name']!r} of shape \\[{1 << 40}, {1 << 40}\\]")


# ------------------------------------------------------------- deep structures
def _with_raw_document(src: Path, dst: Path, document: str, text: str) -> Path:
    """Copy a saved file (v1 or v2) with one JSON document replaced by ``text`` as it is."""
    if zipfile.is_zipfile(src):
        return _with_members(src, dst, **{f"{document}__json": text.encode()})
    with safe_open(str(src), "pt") as reader:
        metadata = {**reader.metadata(), document: text}
        tensors = {key: reader.get_tensor(key) for key in reader.keys()}  # noqa: SIM118
    save_file(tensors, str(dst), metadata=metadata)
    return dst


@pytest.mark.parametrize("depth", [101, 100_000])
def test_deeply_nested_json_is_refused(saved: Path, tmp_path: Path, depth: int) -> None:
    spec = '{"net": "BasicRewardNet", "kwargs": {"x": ' + "[" * depth + "]" * depth + "}}"
    bad = _with_raw_document(saved, tmp_path / "deep.rn", "spec", spec)
    _refused(bad, "nests arrays and objects more than 100 deep")


# ---------------------------------------------------------------- wrong types
METADATA_CASES = {
    "training": ("yes", "'training' is a string"),
    "requires": ("abc", "'requires' is a string"),
    "imports": ([1], "'imports' is an array"),
    "user": ([1], "'user' is an array"),
    "parameter_count": (-5, "'parameter_count' is -5"),
    "net_class": ({"a": 1}, "'net_class' is an object"),
}


@pytest.mark.parametrize("field", sorted(METADATA_CASES))
def test_a_metadata_field_of_the_wrong_json_type_is_refused(
    saved: Path, tmp_path: Path, edit_document: Callable[..., Path], field: str
) -> None:
    value, match = METADATA_CASES[field]
    bad = edit_document(saved, tmp_path / "meta.rn", "metadata", lambda m: {**m, field: value})
    _refused(bad, match)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda s: {**s, "kwargs": [1, 2]}, "Expected 'kwargs' to be a dict of keyword arguments"),
        (
            lambda s: {**s, "wrappers": [{"name": "NormalizedRewardNet", "kwargs": "x"}]},
            "Expected the kwargs of a wrapper to be a dict",
        ),
        (lambda s: {**s, "wrappers": "NormalizedRewardNet"}, "Expected 'wrappers' to be a list"),
    ],
)
def test_kwargs_that_are_not_objects_are_refused(
    saved: Path, tmp_path: Path, edit_document: Callable[..., Path], change: Any, match: str
) -> None:
    _refused(edit_document(saved, tmp_path / "kwargs.rn", "spec", change), match)


def test_a_name_no_plugin_provides_is_a_serialization_error_and_a_key_error(
    saved: Path, tmp_path: Path, edit_document: Callable[..., Path]
) -> None:
    def rename(spec: dict[str, Any]) -> dict[str, Any]:
        spec["net"] = "BasicRewardNett"
        return spec

    bad = edit_document(saved, tmp_path / "unknown.rn", "spec", rename)
    with pytest.raises(UnknownSavedNameError, match="Did you mean 'BasicRewardNet'") as info:
        rewardnets.load(bad)
    assert isinstance(info.value, SerializationError)
    assert isinstance(info.value, MissingPluginError)
    assert isinstance(info.value, KeyError)


class NamedNet(rewardnets.RewardNet):
    """A user's net with a constructor parameter called ``name``."""

    def __init__(
        self, observation_space: Any, action_space: Any, name: str = "net", width: int = 2
    ) -> None:
        super().__init__(observation_space, action_space)
        self.name = name
        self.linear = nn.Linear(int(np.prod(observation_space.shape)), width)

    def forward(self, state: Any, action: Any, next_state: Any, done: Any) -> torch.Tensor:
        return self.linear(state.flatten(1)).sum(dim=1)


def test_a_net_with_a_parameter_called_name_loads_back(tmp_path: Path) -> None:
    net = NamedNet(OBS, ACT, name="mine", width=3)
    loaded = rewardnets.load(rewardnets.save(net, tmp_path / "named.rn"))
    assert isinstance(loaded, NamedNet)
    assert loaded.name == "mine"
    assert torch.equal(loaded.linear.weight, net.linear.weight)


def test_saving_metadata_nested_deeper_than_loading_allows_is_refused(tmp_path: Path) -> None:
    deep: Any = 0
    for _ in range(120):
        deep = [deep]
    net = rewardnets.BasicRewardNet(OBS, ACT)
    with pytest.raises(SerializationError, match="the metadata nests more than 100 deep"):
        rewardnets.save(net, tmp_path / "deep.rn", metadata={"deep": deep})
    assert not (tmp_path / "deep.rn").exists()
