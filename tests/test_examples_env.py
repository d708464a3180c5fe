"""The environment examples run as scripts and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = ("replace_env_reward.py", "normalized_reward_eval.py")


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    """Run every example script once, side by side (most of their time is imports)."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(EXAMPLES / name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=EXAMPLES.parent,
        )
        for name in SCRIPTS
    }
    results = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{stderr}"
        results[name] = stdout
    return results


def test_replace_env_reward(outputs: dict[str, str]) -> None:
    out = outputs["replace_env_reward.py"]
    assert "net reward" in out and "env reward" in out
    assert "episodes ended in envs [0, 1, 2]" in out
    assert "finished episodes: 3" in out


def test_normalized_reward_eval(outputs: dict[str, str]) -> None:
    out = outputs["normalized_reward_eval.py"]
    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    after_train = lines["after training steps"].strip()
    assert after_train.startswith("count=300 ")
    assert lines["after evaluation steps"].strip() == after_train
    assert "frozen eval reward is repeatable" in out
