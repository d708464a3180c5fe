"""Files of format v1 (rewardnets 0.1.0) still load and predict exactly what they did.

The files and the rewards they gave were written by ``tests/fixtures/v1/make_fixtures.py``
with the release that wrote v1; they are never rewritten.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import rewardnets
from rewardnets.apps.cli import cli
from rewardnets.serialize import describe_file

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "v1"
CASES: dict[str, Any] = json.loads((FIXTURES / "cases.json").read_text())


def _array(value: Any, space: Any) -> Any:
    if isinstance(value, dict):
        return {key: _array(sub, space[key]) for key, sub in value.items()}
    return np.asarray(value, dtype=space.dtype)


@pytest.mark.parametrize("name", sorted(CASES))
def test_v1_file_loads_and_predicts_as_when_it_was_written(name: str) -> None:
    path = FIXTURES / f"{name}.rn"
    with zipfile.ZipFile(path) as archive:  # really a v1 file
        assert json.loads(archive.read("metadata.json"))["format_version"] == 1
    case = CASES[name]
    net = rewardnets.load(path)
    obs_space, act_space = net.observation_space, net.action_space
    rewards = net.predict_processed(
        _array(case["obs"], obs_space),
        _array(case["acts"], act_space),
        _array(case["next_obs"], obs_space),
        np.asarray(case["dones"], dtype=bool),
        update_stats=False,
    )
    expected = np.asarray(case["rewards"], dtype=case["rewards_dtype"])
    assert rewards.dtype == expected.dtype
    # Equal to float rounding: the numpy kernels of the inference path may round
    # differently from the torch ops the file's predictions were made with.
    np.testing.assert_allclose(rewards, expected, rtol=1e-6, atol=1e-6)


def test_v1_file_saved_again_is_v2_and_predicts_the_same(tmp_path: Path) -> None:
    case = CASES["normalized_shaped"]
    old = rewardnets.load(FIXTURES / "normalized_shaped.rn")
    new = rewardnets.load(rewardnets.save(old, tmp_path / "again.rn"))
    assert describe_file(tmp_path / "again.rn")["format_version"] == 2
    inputs = (
        _array(case["obs"], old.observation_space),
        _array(case["acts"], old.action_space),
        _array(case["next_obs"], old.observation_space),
        np.asarray(case["dones"], dtype=bool),
    )
    np.testing.assert_allclose(
        new.predict_processed(*inputs, update_stats=False),
        np.asarray(case["rewards"], dtype=np.float32),
        rtol=1e-6,
        atol=1e-6,
    )
    np.testing.assert_array_equal(
        new.predict_processed(*inputs, update_stats=False),
        old.predict_processed(*inputs, update_stats=False),
    )


def test_inspect_shows_format_v1() -> None:
    result = CliRunner().invoke(cli, ["inspect", str(FIXTURES / "std_ensemble.rn")])
    assert result.exit_code == 0, result.output
    assert "rewardnets format v1" in result.output
    assert "AddSTDRewardWrapper > RewardEnsemble" in result.output
