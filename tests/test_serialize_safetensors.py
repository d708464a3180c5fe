"""Format v2 is a plain safetensors file: read by safetensors alone; hostile files refused.

Every damaged or hostile file gets a ``SerializationError`` of one clear line
from ``rewardnets.load``, and ``rewardnets inspect`` exits 1 without a traceback.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gymnasium import spaces
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

import rewardnets
from rewardnets.apps.cli import cli
from rewardnets.serialize import SerializationError

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = spaces.Discrete(2)


def _net() -> Any:
    torch.manual_seed(0)
    net = rewardnets.NormalizedRewardNet(
        rewardnets.BasicShapedRewardNet(OBS, ACT, reward_hid_sizes=(4,), potential_hid_sizes=(4,)),
        rewardnets.RunningNorm,
    )
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (6, 3)).astype(np.float32)
    net.predict_processed(obs, rng.integers(0, 2, 6), obs, np.zeros(6, dtype=bool))
    return net


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = rewardnets.save(_net(), tmp_path_factory.mktemp("v2") / "net.rn")
    return path.read_bytes()


# ----------------------------------------------------------- read by safetensors alone
def test_saved_file_is_read_by_safetensors_alone(tmp_path: Path) -> None:
    net = _net()
    rewardnets.save(net, tmp_path / "net.rn", metadata={"run": 3})
    # A fresh interpreter in which rewardnets cannot even be imported.
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["rewardnets"] = None
        sys.modules["rewardnets_plugins"] = None
        import torch
        from safetensors import safe_open
        from safetensors.torch import load_file

        tensors = load_file({str(tmp_path / "net.rn")!r})
        with safe_open({str(tmp_path / "net.rn")!r}, "pt") as reader:
            header = reader.metadata()
        torch.save(tensors, {str(tmp_path / "tensors.pt")!r})
        print(json.dumps(header))
        assert not any(name.startswith("rewardnets") for name in sys.modules if sys.modules[name])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    header = json.loads(result.stdout)
    assert header["format"] == "rewardnets" and header["format_version"] == "2"
    assert json.loads(header["spec"]) == net.spec
    assert json.loads(header["metadata"])["user"] == {"run": 3}
    assert json.loads(header["spaces"])["action_space"] == {"type": "Discrete", "n": 2, "start": 0}
    tensors = torch.load(tmp_path / "tensors.pt", weights_only=True)
    expected = net.state_dict()
    assert list(tensors) == list(expected) or set(tensors) == set(expected)
    for name, tensor in expected.items():
        assert tensors[name].dtype == tensor.dtype
        assert torch.equal(tensors[name], tensor), name


def test_a_float64_net_loads_as_float64(tmp_path: Path) -> None:
    net = _net().double()
    loaded = rewardnets.load(rewardnets.save(net, tmp_path / "net.rn"))
    assert loaded.dtype == torch.float64
    for name, tensor in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_tensors_that_share_memory_are_saved(tmp_path: Path) -> None:
    net = rewardnets.BasicRewardNet(OBS, ACT, hid_sizes=(4,))
    net.register_buffer("alias", net.mlp.dense0.weight.data[:1])  # a view of a parameter
    saved = load_safetensors(rewardnets.save(net, tmp_path / "net.rn").read_bytes())
    assert torch.equal(saved["alias"], net.mlp.dense0.weight.data[:1])


def test_inspect_shows_format_v2(tmp_path: Path) -> None:
    path = rewardnets.save(_net(), tmp_path / "net.rn")
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert (
        "Format:       rewardnets format v2 (safetensors), written by rewardnets" in result.output
    )
    info = json.loads(CliRunner().invoke(cli, ["inspect", "--json", str(path)]).output)
    assert (info["format_version"], info["container"]) == (2, "safetensors")


# ------------------------------------------------------------------- hostile files
def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    (length,) = struct.unpack_from("<Q", data)
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def _join(header: Any, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def _edit_header(change: Callable[[dict[str, Any]], Any]) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        header, body = _split(data)
        return _join(change(header), body)

    return edit


def _edit_meta(key: str, value: Any) -> Callable[[bytes], bytes]:
    def change(header: dict[str, Any]) -> dict[str, Any]:
        meta = header["__metadata__"]
        if value is None:
            del meta[key]
        else:
            meta[key] = value
        return header

    return _edit_header(change)


def _edit_tensors(change: Callable[[dict[str, torch.Tensor]], None]) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        header, _ = _split(data)
        tensors = load_safetensors(data)
        change(tensors)
        return save_safetensors(tensors, metadata=header["__metadata__"])

    return edit


def _set(name: str, value: torch.Tensor | None) -> Callable[[dict[str, torch.Tensor]], None]:
    def change(tensors: dict[str, torch.Tensor]) -> None:
        if value is None:
            del tensors[name]
        else:
            tensors[name] = value

    return change


WEIGHT = "base.base.mlp.dense0.weight"  # (4, 5): the reward MLP's first layer

HOSTILE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated-in-length": (lambda d: d[:6], "not a known format|truncated"),
    "truncated-in-header": (lambda d: d[:40], "is truncated: its safetensors header is"),
    "truncated-at-half": (lambda d: d[: len(d) // 2], "is truncated"),
    "truncated-in-tensors": (lambda d: d[:-5], r"is truncated: its tensors need \d+ bytes"),
    "header-length-oversized": (
        lambda d: struct.pack("<Q", 1 << 40) + d[8:],
        "header length is 1099511627776 bytes; expected 2 to 16777216",
    ),
    "header-length-over-safetensors-limit": (
        lambda d: struct.pack("<Q", 200_000_000) + d[8:],
        "header length is 200000000 bytes",
    ),
    "header-length-negative": (
        lambda d: struct.pack("<q", -1) + d[8:],
        r"header length is negative \(-1 as a signed 64-bit integer\)",
    ),
    "header-length-past-the-end": (
        lambda d: struct.pack("<Q", len(d)) + d[8:],
        "is truncated: its safetensors header is",
    ),
    "header-not-json": (
        lambda d: d[:8] + b"{not json" + d[17:],
        "the safetensors header is not valid JSON",
    ),
    "no-rewardnets-metadata": (
        _edit_header(lambda h: {k: v for k, v in h.items() if k != "__metadata__"}),
        "a safetensors file without rewardnets metadata",
    ),
    "metadata-not-strings": (
        _edit_meta("spec", {"net": "BasicRewardNet"}),
        "__metadata__ must map strings to strings",
    ),
    "other-format": (_edit_meta("format", "diffusers"), "say format 'diffusers'; expected"),
    "document-missing": (_edit_meta("spec", None), "the safetensors metadata lack spec"),
    "document-not-json": (_edit_meta("spec", "{oops"), "the spec document is not valid JSON"),
    "document-of-wrong-json-type": (
        _edit_meta("metadata", "[1, 2]"),
        r"the metadata document must be a JSON object, got an array \(\[1, 2\]\)",
    ),
    "spaces-of-wrong-json-type": (
        _edit_meta("spaces", '"Box"'),
        "the spaces document must be a JSON object, got a string",
    ),
    "version-newer": (
        _edit_meta("format_version", "9"),
        "format version 9; this rewardnets reads versions up to 2. Upgrade rewardnets",
    ),
    "version-not-a-number": (
        _edit_meta("format_version", "two"),
        "format version 'two'; expected a positive integer",
    ),
    "version-of-the-zip-container": (
        _edit_meta("format_version", "1"),
        "says format version 1; rewardnets writes safetensors files as version 2",
    ),
    "offsets-that-overlap": (
        _edit_header(
            lambda h: {
                **h,
                WEIGHT: {**h[WEIGHT], "data_offsets": [0, h[WEIGHT]["data_offsets"][1] - 4]},
            }
        ),
        "safetensors cannot read the tensors",
    ),
    "dtype-wrong-for-the-spec": (
        _edit_tensors(lambda t: t.__setitem__(WEIGHT, t[WEIGHT].to(torch.float16))),
        rf"tensor '{WEIGHT}' is float16 of shape \[4, 5\]; expected float32 of shape \[4, 5\]",
    ),
    "integer-dtype-wrong": (
        _edit_tensors(_set("normalize_output_layer.count", torch.tensor(6.0, dtype=torch.float32))),
        "tensor 'normalize_output_layer.count' is float32 of shape \\[\\]; expected int64",
    ),
    "shape-wrong-for-the-spec": (
        _edit_tensors(_set(WEIGHT, torch.zeros(4, 7))),
        rf"tensor '{WEIGHT}' is float32 of shape \[4, 7\]; expected float32 of shape \[4, 5\]",
    ),
    "tensor-missing": (
        _edit_tensors(_set(WEIGHT, None)),
        rf"missing tensors \['{WEIGHT}'\], unknown tensors \[\]",
    ),
    "tensor-unknown": (
        _edit_tensors(_set("base.extra", torch.zeros(2))),
        r"missing tensors \[\], unknown tensors \['base.extra'\]",
    ),
}


#: Files that read, but whose tensors do not fit the net: ``inspect`` describes
#: them, as it does a file that needs a missing plugin, and says why they do not load.
READABLE = {
    "dtype-wrong-for-the-spec",
    "integer-dtype-wrong",
    "shape-wrong-for-the-spec",
    "tensor-missing",
    "tensor-unknown",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_file_gives_one_clear_error(good: bytes, tmp_path: Path, case: str) -> None:
    make, message = HOSTILE[case]
    path = tmp_path / "bad.rn"
    path.write_bytes(make(good))
    before = path.read_bytes()
    with pytest.raises(SerializationError, match=message) as info:
        rewardnets.load(path)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output
    if case in READABLE:
        assert f"Loads here:   no: {info.value}" in result.output
        return
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output


def test_state_dict_saved_with_safetensors_alone_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    path.write_bytes(save_safetensors(_net().state_dict()))
    with pytest.raises(SerializationError, match="tensors alone do not say which net to build"):
        rewardnets.load(path)


def test_sniff_tells_json_from_safetensors(tmp_path: Path) -> None:
    # A JSON document whose ninth byte is "{" is still a JSON document.
    path = tmp_path / "notes.rn"
    path.write_bytes(b'{"net": {"name": "BasicRewardNet"}}')
    with pytest.raises(SerializationError, match="looks like a JSON document"):
        rewardnets.load(path)
