"""Saving says what happened to the destination, and cleans up after a killed save."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gymnasium import spaces

import rewardnets
from rewardnets.serialize import SerializationError


def _net() -> rewardnets.RewardNet:
    return rewardnets.BasicRewardNet(spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(2))


def test_saving_to_an_empty_path_or_a_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match="expected a file path"):
        rewardnets.save(_net(), "")
    with pytest.raises(SerializationError, match=r"it is a directory.*nothing was written"):
        rewardnets.save(_net(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_saving_where_no_file_can_be_created_names_the_destination(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises((SerializationError, FileNotFoundError), match="a-file"):
        rewardnets.save(_net(), blocker / "net.rn")


def test_a_failed_write_leaves_the_old_file_and_says_it_is_untouched(tmp_path: Path) -> None:
    path = rewardnets.save(_net(), tmp_path / "net.rn")
    before = path.read_bytes()
    code = (
        "import resource, sys\n"
        "from gymnasium import spaces\n"
        "import rewardnets\n"
        "net = rewardnets.BasicRewardNet(spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(2),"
        " hid_sizes=(512, 512))\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))\n"  # a 'full disk' at 1 KiB
        "try:\n"
        "    rewardnets.save(net, sys.argv[1])\n"
        "except rewardnets.serialize.SerializationError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "writing failed" in result.stdout and "is untouched" in result.stdout
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.rn"]


def test_a_killed_save_leaves_a_temporary_that_the_next_save_removes(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    stale = tmp_path / f".net.rn.{pid}.abc123.rewardnets-tmp"
    stale.write_bytes(b"half a file")
    alive = tmp_path / f".other.rn.{1}.xyz.rewardnets-tmp"  # pid 1 is running: in use
    alive.write_bytes(b"a concurrent writer")
    rewardnets.save(_net(), tmp_path / "net.rn")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [alive.name, "net.rn"]


def test_inspect_escapes_control_characters_from_the_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rewardnets.cli import cli

    # A file name (like any string from a file) may hold an escape sequence.
    path = rewardnets.save(_net(), tmp_path / "odd\x1b[2J\x1b[31m.rn")
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "odd\\x1b[2J\\x1b[31m.rn" in result.output


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_special_files_are_refused_without_reading(kind: str, tmp_path: Path) -> None:
    import os

    if kind == "fifo":
        path = tmp_path / "pipe.rn"
        os.mkfifo(path)  # reading it would block for ever
    else:
        path = Path("/dev/zero")  # reading it would never end
    with pytest.raises(SerializationError, match="not a regular file"):
        rewardnets.load(path)


@pytest.mark.parametrize("fmt", ["rewardnets", "torch.save"])
@pytest.mark.parametrize(
    ("buffer", "value", "expected"),
    [("count", -3, "count -3; expected a count >= 0"), ("running_var", -1.0, "finite values >= 0")],
)
def test_impossible_statistics_are_refused(
    fmt: str, buffer: str, value: float, expected: str, tmp_path: Path
) -> None:
    import torch

    net = rewardnets.NormalizedRewardNet(_net())
    getattr(net.normalize_output_layer, buffer).fill_(value)
    path = tmp_path / "net"
    if fmt == "rewardnets":
        rewardnets.save(net, path)
    else:
        torch.save(net, path)
    with pytest.raises(SerializationError, match=expected):
        rewardnets.load(path)


def test_a_discrete_space_past_int64_is_refused(tmp_path: Path, edit_document: Any) -> None:
    saved = rewardnets.save(
        rewardnets.BasicRewardNet(spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(2)),
        tmp_path / "net.rn",
    )

    def huge(spaces_json: Any) -> Any:
        spaces_json["action_space"]["n"] = 2**70
        return spaces_json

    bad = edit_document(saved, tmp_path / "bad.rn", "spaces", huge)
    with pytest.raises(SerializationError, match=r"magnitude at most 2\*\*62"):
        rewardnets.load(bad)
