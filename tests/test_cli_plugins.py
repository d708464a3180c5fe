"""`rewardnets plugins` and `--help` on the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import rewardnets
from rewardnets.cli import cli

FAMILIES = {"mlp", "cnn", "shaping", "normalization", "ensemble"}


def test_plugins_lists_the_five_builtin_families_with_distribution_and_version() -> None:
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    for family in FAMILIES:
        line = next(ln for ln in result.output.splitlines() if ln.startswith(f"{family} "))
        assert f"rewardnets {rewardnets.__version__}" in line and "[loaded]" in line
    assert "BasicRewardNet" in result.output and "NormalizedRewardNet" in result.output


def test_plugins_json() -> None:
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert set(by_name) >= FAMILIES
    assert by_name["cnn"]["contributions"]["reward_net"] == ["CNNRewardNet", "CnnRewardNet"]
    assert by_name["normalization"]["distribution"] == "rewardnets"
    assert data["conflicts"] == []


def test_help_everywhere() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0 and "plugins" in top.output
    for name in cli.commands:
        sub = runner.invoke(cli, [name, "--help"])
        assert sub.exit_code == 0, (name, sub.output)
        assert "Usage:" in sub.output


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("rewardnets")
    result = subprocess.run(
        [str(exe), "plugins", "--json"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert {p["name"] for p in json.loads(result.stdout)["plugins"]} >= FAMILIES
