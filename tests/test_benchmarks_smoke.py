"""The benchmark scripts run and report every figure; no timing is asserted here."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def _run(script: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a benchmark script in a process of its own, from the repository root."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


def _expected_keys() -> set[str]:
    keys = set()
    for net in ("BasicRewardNet", "NormalizedRewardNet"):
        for env in ("Pendulum-v1", "CartPole-v1"):
            for batch in (1, 8, 64, 1024, 16384):
                for floor in ("numpy_floor", "tensor_floor"):
                    keys.add(f"predict/{net}/{env}/b{batch}/{floor}")
                keys.add(f"predict/numpy_mlp/{env}/b{batch}/numpy_floor")
    for batch in (32, 256):
        keys.add(f"predict/CNNRewardNet/84x84x4/b{batch}/tensor_floor")
    keys.add("train/BasicRewardNet/Pendulum-v1/b1024/raw_mlp")
    keys.add("env/RewardVecEnvWrapper+NormalizedRewardNet/CartPole-v1x8/unwrapped")
    keys.add("env/RewardVecEnvWrapper+raw_mlp/CartPole-v1x8/unwrapped")
    keys.add("env/RewardVecEnvWrapper+zero_reward/CartPole-v1x8/unwrapped")
    keys.add("serialize/save/NormalizedRewardNet")
    keys.add("serialize/load/NormalizedRewardNet")
    keys.add("import/rewardnets/over_torch")
    return keys


def test_quick_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    result = _run(str(BENCHMARKS / "run.py"), "--quick", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    payload = json.loads(out.read_text())
    assert payload["meta"]["quick"] is True
    assert payload["meta"]["malloc_tuned"] is False  # the default process, by default
    assert "malloc: glibc defaults" in result.stdout
    figures = payload["figures"]
    missing = _expected_keys() - set(figures)
    assert not missing, f"figures missing from the JSON: {sorted(missing)}"
    for key, figure in figures.items():
        ratio = figure["ratio"]
        assert isinstance(ratio, float) and math.isfinite(ratio) and ratio > 0, (key, ratio)
        assert figure["subject_s"] > 0 and figure["baseline_s"] > 0, key
    # The table names every figure too.
    for key in _expected_keys():
        assert key in result.stdout, key
    imported = figures["import/rewardnets/over_torch"]["extra"]
    assert imported["plugins_loaded"] == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_gpu_check_says_clearly_that_there_is_no_cuda() -> None:
    result = _run(str(BENCHMARKS / "gpu_check.py"))
    assert result.returncode == 2
    assert "CUDA is not available" in result.stderr


def test_gpu_check_assertions_pass_in_a_cpu_dry_run() -> None:
    result = _run(str(BENCHMARKS / "gpu_check.py"), "--device", "cpu", "--dry-run", "--no-table")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("  ok    ") >= 5, result.stdout


def test_relabel_benchmark_reports_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "relabel.json"
    result = _run(str(BENCHMARKS / "relabel.py"), "--quick", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    payload = json.loads(out.read_text())
    assert payload["meta"] == {"rows": 100_000, "batch_size": 8192, "quick": True}
    assert set(payload["figures"]) == {"raw/32x32", "local/32x32"}
    for key, figure in payload["figures"].items():
        assert figure["transitions_per_s"] > 0 and math.isfinite(figure["ratio"]), key
        assert f"| {key}" in result.stdout


def test_learning_benchmark_plots_and_tabulates_saved_cells(tmp_path: Path) -> None:
    # Two seeds of one cell: scores (R_learned - R_random) / (R_true - R_random).
    cells = {
        f"Pendulum-v1/{seed}/100/disagreement": {
            "env": "Pendulum-v1",
            "seed": seed,
            "labels": 100,
            "selector": "disagreement",
            "R_learned": learned,
            "epic": 0.25,
        }
        for seed, learned in ((0, -300.0), (1, -700.0))
    }
    baselines = {f"Pendulum-v1/{s}": {"R_true": -100.0, "R_random": -1100.0} for s in (0, 1)}
    data = tmp_path / "learning.json"
    data.write_text(json.dumps({"meta": {}, "baselines": baselines, "cells": cells}))
    png = tmp_path / "learning.png"
    script = str(BENCHMARKS / "learning.py")
    result = _run(script, "--plot-only", "--json", str(data), "--png", str(png))
    assert result.returncode == 0, result.stdout + result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("Pendulum")]
    assert [(row[1], row[4]) for row in rows] == [("0", "0.800"), ("1", "0.400")]
