"""Bad files: each gets a clear error, and a failed load never changes the file.

Tests of what both formats share run on a v2 file (``rewardnets.save``) and a
v1 file (``tests/fixtures/v1``); those of the v1 zip's own members on v1 only.
The v2 container's own hostile files are in ``test_serialize_safetensors.py``.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces

import rewardnets
from rewardnets import UnknownNameError
from rewardnets.serialize import MissingPluginError, SerializationError

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = spaces.Discrete(2)

# A 1x1 PNG image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def _net() -> Any:
    torch.manual_seed(0)
    return rewardnets.NormalizedRewardNet(
        rewardnets.BasicRewardNet(OBS, ACT, hid_sizes=(4,)), rewardnets.RunningNorm
    )


#: A v1 file of the net of ``_net()``, written by rewardnets 0.1.0.
V1_FILE = Path(__file__).resolve().parent / "fixtures" / "v1" / "normalized_basic.rn"


@pytest.fixture(params=["v2", "v1"])
def saved(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "v1":
        return Path(shutil.copy(V1_FILE, tmp_path / "good.rn"))
    return rewardnets.save(_net(), tmp_path / "good.rn")


@pytest.fixture
def saved_v1(tmp_path: Path) -> Path:
    return Path(shutil.copy(V1_FILE, tmp_path / "good.rn"))


def rewrite(src: Path, dst: Path, **members: bytes | None) -> Path:
    """Copy a rewardnets archive, replacing (bytes), dropping (None) or adding members."""
    with zipfile.ZipFile(src) as archive:
        content = {name: archive.read(name) for name in archive.namelist()}
    for name, data in members.items():
        key = name.replace("__", ".")
        if data is None:
            content.pop(key, None)
        else:
            content[key] = data
    with zipfile.ZipFile(dst, "w") as archive:
        for name, data in content.items():
            archive.writestr(name, data)
    return dst


def edit_json(src: Path, dst: Path, member: str, change: Callable[[Any], Any]) -> Path:
    with zipfile.ZipFile(src) as archive:
        data = json.loads(archive.read(member))
    return rewrite(src, dst, **{member.replace(".", "__"): json.dumps(change(data)).encode()})


def _expect(path: Path, error: type[BaseException], match: str) -> None:
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(error, match=match):
        rewardnets.load(path)
    if before is not None:
        assert path.read_bytes() == before  # nothing is lost or changed


def test_missing_file(tmp_path: Path) -> None:
    _expect(tmp_path / "nope.rn", FileNotFoundError, "No reward net file at")


def test_a_directory(tmp_path: Path) -> None:
    _expect(tmp_path, SerializationError, "is a directory")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.rn").write_bytes(b"")
    _expect(
        tmp_path / "empty.rn", SerializationError, r"is empty \(0 bytes\); expected a reward net"
    )


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.95])
def test_truncated_rewardnets_file(saved: Path, fraction: float) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: int(len(data) * fraction)])
    _expect(saved, SerializationError, "truncated|damaged|cannot be read")


def test_corrupted_bytes_inside_the_archive(saved_v1: Path) -> None:
    data = bytearray(saved_v1.read_bytes())
    with zipfile.ZipFile(saved_v1) as archive:
        info = archive.getinfo("spec.json")
    data[info.header_offset + 30 + len(info.filename) + 2] ^= 0xFF  # inside the compressed data
    saved_v1.write_bytes(bytes(data))
    _expect(
        saved_v1, SerializationError, "damaged zip archive|cannot be read as a zip|not valid JSON"
    )


def test_truncated_torch_file(tmp_path: Path) -> None:
    torch.save(_net(), tmp_path / "net.pt")
    data = (tmp_path / "net.pt").read_bytes()
    (tmp_path / "net.pt").write_bytes(data[: len(data) // 2])
    _expect(tmp_path / "net.pt", SerializationError, "truncated or corrupted")


def test_random_bytes(tmp_path: Path) -> None:
    (tmp_path / "noise.rn").write_bytes(np.random.default_rng(0).bytes(2048))
    _expect(tmp_path / "noise.rn", SerializationError, "not a known format")


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b'{"net": "BasicRewardNet"}', "JSON document"),
        (PNG, "PNG image"),
        (b"just some notes\n", "text file"),
        (b"\x1f\x8b\x08\x00rest", "gzip"),
    ],
)
def test_file_of_another_format(tmp_path: Path, content: bytes, what: str) -> None:
    (tmp_path / "other.rn").write_bytes(content)
    _expect(tmp_path / "other.rn", SerializationError, what)


def test_zip_of_another_kind(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    _expect(tmp_path / "other.zip", SerializationError, "zip archive of another kind")


def test_torch_file_of_something_else(tmp_path: Path) -> None:
    torch.save(_net().state_dict(), tmp_path / "weights.pt")
    _expect(tmp_path / "weights.pt", SerializationError, "not a RewardNet. A state dict alone")


def test_torchscript_archive_is_not_loaded(tmp_path: Path) -> None:
    # The members that make torch.load hand a file to torch.jit.load.
    with zipfile.ZipFile(tmp_path / "scripted.pt", "w") as archive:
        for member in ("archive/data.pkl", "archive/constants.pkl", "archive/code/__torch__.py"):
            archive.writestr(member, b"")
    _expect(tmp_path / "scripted.pt", SerializationError, "TorchScript")


def test_missing_member(saved_v1: Path, tmp_path: Path) -> None:
    bad = rewrite(saved_v1, tmp_path / "bad.rn", tensors__bin=None)
    _expect(bad, SerializationError, "missing tensors.bin")


def test_member_that_is_not_json(saved_v1: Path, tmp_path: Path) -> None:
    bad = rewrite(saved_v1, tmp_path / "bad.rn", spec__json=b"{not json")
    _expect(bad, SerializationError, "spec.json is not valid JSON")


def test_short_tensor_bytes(saved_v1: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(saved_v1) as archive:
        blob = archive.read("tensors.bin")
    bad = rewrite(saved_v1, tmp_path / "bad.rn", tensors__bin=blob[:-8])
    _expect(bad, SerializationError, r"tensors.bin has only \d+ bytes")


def test_tensor_index_that_lies_about_sizes(saved_v1: Path, tmp_path: Path) -> None:
    def change(index: list[dict[str, Any]]) -> list[dict[str, Any]]:
        index[0]["shape"] = [999]
        return index

    bad = edit_json(saved_v1, tmp_path / "bad.rn", "tensors.json", change)
    _expect(bad, SerializationError, "needs 3996 bytes")


def test_tensors_that_do_not_fit_the_spec(
    saved: Path, tmp_path: Path, edit_document: Callable[..., Path]
) -> None:
    def change(spec: dict[str, Any]) -> dict[str, Any]:
        spec["kwargs"]["hid_sizes"] = [7]
        return spec

    bad = edit_document(saved, tmp_path / "bad.rn", "spec", change)
    _expect(bad, SerializationError, "do not fit the net its spec builds")


def test_newer_format_version(saved_v1: Path, tmp_path: Path) -> None:
    bad = edit_json(
        saved_v1, tmp_path / "bad.rn", "metadata.json", lambda m: {**m, "format_version": 9}
    )
    _expect(bad, SerializationError, "format version 9; this rewardnets reads versions up to 2")


def test_bad_spaces(saved: Path, tmp_path: Path, edit_document: Callable[..., Path]) -> None:
    bad = edit_document(
        saved,
        tmp_path / "bad.rn",
        "spaces",
        lambda s: {**s, "action_space": {"type": "Discrete", "n": "two", "start": 0}},
    )
    _expect(bad, SerializationError, "expected 'n' to be an integer, got 'two'")


def test_file_needing_a_plugin_that_is_not_installed(
    saved: Path, tmp_path: Path, edit_document: Callable[..., Path]
) -> None:
    def spec(data: dict[str, Any]) -> dict[str, Any]:
        data["wrappers"].insert(0, {"name": "FancyClipWrapper", "kwargs": {"limit": 1.0}})
        return data

    def meta(data: dict[str, Any]) -> dict[str, Any]:
        data["requires"].append(
            {
                "kind": "wrapper",
                "name": "FancyClipWrapper",
                "distribution": "fancy-rewardnets",
                "version": "2.1.0",
                "plugin": "fancy",
            }
        )
        return data

    step = edit_document(saved, tmp_path / "step.rn", "spec", spec)
    bad = edit_document(step, tmp_path / "bad.rn", "metadata", meta)
    _expect(
        bad,
        MissingPluginError,
        "'FancyClipWrapper' .from distribution 'fancy-rewardnets' 2.1.0, not installed; pip install fancy-rewardnets",
    )


def test_spec_naming_an_unknown_net_without_metadata_lists_close_matches(
    saved: Path, tmp_path: Path, edit_document: Callable[..., Path]
) -> None:
    bad = edit_document(
        saved, tmp_path / "bad.rn", "spec", lambda s: {**s, "net": "BasicRewardNett"}
    )
    _expect(bad, UnknownNameError, "Did you mean 'BasicRewardNet'")


def test_user_net_whose_module_is_not_imported(
    saved: Path, tmp_path: Path, edit_document: Callable[..., Path]
) -> None:
    bad = edit_document(
        saved, tmp_path / "bad.rn", "spec", lambda s: {**s, "net": "my_lab.nets:MyRewardNet"}
    )
    _expect(bad, SerializationError, "module 'my_lab.nets' is not imported.*import my_lab.nets")


def test_loading_is_read_only(saved: Path) -> None:
    data = saved.read_bytes()
    mtime = saved.stat().st_mtime_ns
    rewardnets.load(saved)
    assert saved.read_bytes() == data
    assert saved.stat().st_mtime_ns == mtime
    assert [p.name for p in saved.parent.iterdir()] == ["good.rn"]
