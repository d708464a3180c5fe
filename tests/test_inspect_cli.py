"""``rewardnets inspect``: both formats, --json, and one-line errors for bad files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from gymnasium import spaces

import rewardnets
from rewardnets.cli import cli

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


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["inspect", *args])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("inspect")
    net = _net()
    torch.save(net, tmp / "net.pt")
    return {
        "rewardnets": rewardnets.save(net, tmp / "net.rn", metadata={"run": 7}),
        "torch.save": tmp / "net.pt",
    }


@pytest.mark.parametrize("fmt", ["rewardnets", "torch.save"])
def test_human_output(files: dict[str, Path], fmt: str) -> None:
    result = run(str(files[fmt]))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Net:          NormalizedRewardNet > BasicShapedRewardNet > BasicRewardNet" in out
    assert f"Observations: {OBS}" in out
    assert f"Actions:      {ACT}" in out
    count = sum(p.numel() for p in _net().parameters())
    assert f"Parameters:   {count:,}" in out
    assert "normalize_output_layer (RunningNorm): mean [" in out and "count 6" in out
    assert "reward-net wrapper NormalizedRewardNet  from rewardnets" in out
    assert "[installed]" in out


@pytest.mark.parametrize("fmt", ["rewardnets", "torch.save"])
def test_json_output(files: dict[str, Path], fmt: str) -> None:
    result = run("--json", str(files[fmt]))
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    net = _net()
    assert info["format"] == fmt
    assert info["stack"] == ["NormalizedRewardNet", "BasicShapedRewardNet", "BasicRewardNet"]
    assert info["spec"] == net.spec
    assert info["observation_space"]["json"]["type"] == "Box"
    assert info["action_space"]["repr"] == str(ACT)
    assert info["parameter_count"] == sum(p.numel() for p in net.parameters())
    (stats,) = info["normalization"]
    layer = net.normalize_output_layer
    assert stats["module"] == "normalize_output_layer"
    assert stats["running_mean"] == layer.running_mean.tolist()
    assert stats["running_var"] == layer.running_var.tolist()
    assert stats["count"] == int(layer.count)
    required = {
        (r["kind"], r["name"]): (r["distribution"], r["installed"]) for r in info["requires"]
    }
    assert required[("wrapper", "NormalizedRewardNet")] == ("rewardnets", True)
    assert required[("reward_net", "BasicShapedRewardNet")] == ("rewardnets", True)
    assert info["loads"] is True
    if fmt == "rewardnets":
        assert info["user"] == {"run": 7}
        assert info["written_by"]["rewardnets_version"] == rewardnets.__version__


def test_file_needing_a_missing_plugin_is_still_described(
    files: dict[str, Path], tmp_path: Path, edit_document: Callable[..., Path]
) -> None:
    def spec(data: dict[str, Any]) -> dict[str, Any]:
        data["wrappers"].append({"name": "ClipRewardWrapper", "kwargs": {}})
        return data

    def meta(data: dict[str, Any]) -> dict[str, Any]:
        data["requires"].append(
            {
                "kind": "wrapper",
                "name": "ClipRewardWrapper",
                "distribution": "clip-nets",
                "version": "1.0",
            }
        )
        return data

    step = edit_document(files["rewardnets"], tmp_path / "step.rn", "spec", spec)
    edit_document(step, tmp_path / "needs.rn", "metadata", meta)
    result = run(str(tmp_path / "needs.rn"))
    assert result.exit_code == 1, result.output  # described, but it does not load here
    assert (
        "reward-net wrapper ClipRewardWrapper  from clip-nets 1.0  [NOT INSTALLED]" in result.output
    )
    assert "Loads here:   no:" in result.output and "pip install clip-nets" in result.output
    assert (
        "Net:          ClipRewardWrapper > NormalizedRewardNet > BasicShapedRewardNet"
        in result.output
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No reward net file at"),
        (b"", "is empty (0 bytes)"),
        (b"\x00\x01garbage\xff" * 20, "not a known format"),
        (b'{"net": "BasicRewardNet"}', "looks like a JSON document"),
        (b"PK\x03\x04truncated", "truncated or corrupted"),
    ],
    ids=["missing", "empty", "random", "json", "truncated-zip"],
)
def test_bad_file_gives_a_one_line_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "bad.rn"
    if content is not None:
        path.write_bytes(content)
    result = run(str(path))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and message in lines[0]
    assert "Traceback" not in result.output


def test_trust_pickle_flag(files: dict[str, Path]) -> None:
    result = run("--trust-pickle", str(files["torch.save"]))
    assert result.exit_code == 0, result.output
    assert "NormalizedRewardNet" in result.output


def test_help_lists_the_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "inspect" in result.output
    assert "--json" in run("--help").output
