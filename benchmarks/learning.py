#!/usr/bin/env python
"""Score against labels: how good a policy trained on a reward learned from N labels is.

Run it from the repository root (one heavy process: run it niced, alone)::

    nice -n 10 .venv/bin/python benchmarks/learning.py                   # the whole grid
    nice -n 10 .venv/bin/python benchmarks/learning.py --envs Pendulum-v1 --seeds 0 1
    nice -n 10 .venv/bin/python benchmarks/learning.py --budgets 100 --selectors disagreement
    .venv/bin/python benchmarks/learning.py --plot-only                  # redraw the PNG

For each env, seed, label budget and query selector, a reward is learned with
:func:`rewardnets.apps.active_learning.learn_reward_active` (3 rounds, the
perfect teacher), a policy is trained on it, and the figures are:

- the normalised score ``(R_learned - R_random) / (R_true - R_random)``, where
  ``R`` is the mean true-reward return over the evaluation episodes of the
  policy trained on the learned reward, of one trained with the same budget
  on the true reward (once per env and seed) and of a uniformly random policy;
- the EPIC distance between the learned and the true reward.

Every finished cell is written to the JSON file at once (default
``benchmarks/learning_results.json``), and cells already there are skipped,
so an interrupted grid resumes. The PNG (default ``docs/img/learning.png``)
plots the score and the EPIC distance against the labels, mean and range over
the seeds run, one column per env, one line per selector.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent

#: Per env: the budgets of the policies and of preference learning.
ENVS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": {
        "algo": "sac",
        "timesteps": 8000,
        "learn": {"agent_steps": 2000, "fragments_per_round": 200, "fragment_length": 20},
    },
    # Random actions never reach the flag (+100); the action cost is all they show.
    # SAC needs the RL Zoo's settings (gSDE, a large batch) to find the flag at all.
    "MountainCarContinuous-v0": {
        "algo": "sac",
        "timesteps": 20000,
        "algo_kwargs": {
            "learning_rate": 3e-4,
            "buffer_size": 50000,
            "batch_size": 512,
            "ent_coef": 0.1,
            "train_freq": 32,
            "gradient_steps": 32,
            "gamma": 0.9999,
            "tau": 0.01,
            "learning_starts": 0,
            "use_sde": True,
            "policy_kwargs": {"log_std_init": -3.67, "net_arch": [64, 64]},
        },
        "learn": {"agent_steps": 5000, "fragments_per_round": 200, "fragment_length": 50},
    },
}
BUDGETS = [50, 100, 300, 1000]
SELECTORS = ["uniform", "disagreement"]
SEEDS = [0, 1, 2]
EVAL_EPISODES = 10


def _load(path: Path) -> dict[str, Any]:
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {"meta": {}, "baselines": {}, "cells": {}}


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def _baseline(env_id: str, seed: int, work: Path) -> dict[str, float]:
    from rewardnets.apps.policy_training import evaluate_random, train_policy

    spec = ENVS[env_id]
    start = time.perf_counter()
    true = train_policy(
        env_id,
        algo=spec["algo"],
        algo_kwargs=spec.get("algo_kwargs"),
        timesteps=spec["timesteps"],
        seed=seed,
        eval_episodes=EVAL_EPISODES,
        out_dir=work / "true",
    )
    random_mean, _ = evaluate_random(env_id, EVAL_EPISODES, seed=10_000 + seed)
    return {
        "R_true": true.eval_return_mean,
        "R_random": random_mean,
        "seconds": time.perf_counter() - start,
    }


def _cell(
    env_id: str, seed: int, labels: int, selector: str, alpha: float, work: Path
) -> dict[str, Any]:
    from rewardnets.apps.active_learning import learn_reward_active
    from rewardnets.apps.comparison import TRUE_REWARD, compare_rewards
    from rewardnets.apps.pipeline import REWARD_TYPE
    from rewardnets.apps.policy_training import train_policy

    spec = ENVS[env_id]
    start = time.perf_counter()
    _, learned = learn_reward_active(
        env_id,
        seed=seed,
        labels=labels,
        rounds=3,
        selector=selector,
        explore_alpha=alpha,
        algo=spec["algo"],
        algo_kwargs=spec.get("algo_kwargs"),
        out_dir=work / "learn",
        **spec["learn"],
    )
    policy = train_policy(
        env_id,
        reward_type=REWARD_TYPE,
        reward_path=learned.reward_path,
        algo=spec["algo"],
        algo_kwargs=spec.get("algo_kwargs"),
        timesteps=spec["timesteps"],
        seed=seed,
        eval_episodes=EVAL_EPISODES,
        out_dir=work / "policy",
    )
    comparison = compare_rewards(
        str(learned.reward_path),
        TRUE_REWARD,
        env_id,
        reward_type=REWARD_TYPE,
        n_samples=1000,
        seed=seed,
    )
    return {
        "env": env_id,
        "seed": seed,
        "labels": labels,
        "selector": selector if not alpha else f"{selector}, alpha {alpha:g}",
        "explore_alpha": alpha,
        "R_learned": policy.eval_return_mean,
        "epic": comparison["epic"],
        "pearson": comparison["pearson"],
        "learn_seconds": learned.seconds,
        "seconds": time.perf_counter() - start,
    }


def _score(cell: dict[str, Any], base: dict[str, float]) -> float | None:
    span = base["R_true"] - base["R_random"]
    return (cell["R_learned"] - base["R_random"]) / span if span else None


def plot(data: dict[str, Any], png: Path) -> Path:
    """Draw score and EPIC against labels (mean and range over seeds), one column per env."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    cells = list(data["cells"].values())
    envs = sorted({c["env"] for c in cells})
    selectors = sorted({c["selector"] for c in cells})
    columns = max(1, len(envs))
    figure = Figure(figsize=(5.0 * columns, 6.4), constrained_layout=True)
    axes = figure.subplots(2, columns, squeeze=False)
    for column, env_id in enumerate(envs):
        for row, metric in enumerate(("normalised score", "EPIC distance")):
            ax = axes[row, column]
            for selector in selectors:
                by_budget: dict[int, list[float]] = {}
                for cell in cells:
                    if cell["env"] != env_id or cell["selector"] != selector:
                        continue
                    base = data["baselines"].get(f"{env_id}/{cell['seed']}")
                    value = cell["epic"] if row else (None if base is None else _score(cell, base))
                    if value is not None:
                        by_budget.setdefault(cell["labels"], []).append(value)
                if not by_budget:
                    continue
                budgets = sorted(by_budget)
                seeds = "/".join(str(n) for n in sorted({len(by_budget[b]) for b in budgets}))
                ax.plot(
                    budgets,
                    [float(np.mean(by_budget[b])) for b in budgets],
                    marker="o",
                    label=f"{selector} ({seeds} seeds)",
                )
                ax.fill_between(
                    budgets,
                    [min(by_budget[b]) for b in budgets],
                    [max(by_budget[b]) for b in budgets],
                    alpha=0.2,
                )
            if row == 0:
                ax.axhline(1.0, color="grey", lw=0.8, ls="--")
                ax.axhline(0.0, color="grey", lw=0.8, ls=":")
                ax.set_title(env_id)
            ax.set_xscale("log")
            ax.set_xlabel("labels")
            ax.set_ylabel(metric)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize="small")
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, format="png", dpi=100)
    return png


def _table(data: dict[str, Any]) -> str:
    lines = [f"{'env':26s} {'seed':>4s} {'labels':>6s} {'selector':13s} {'score':>7s} {'EPIC':>6s}"]
    for cell in sorted(
        data["cells"].values(), key=lambda c: (c["env"], c["labels"], c["selector"], c["seed"])
    ):
        base = data["baselines"].get(f"{cell['env']}/{cell['seed']}")
        score = None if base is None else _score(cell, base)
        lines.append(
            f"{cell['env']:26s} {cell['seed']:4d} {cell['labels']:6d} {cell['selector']:13s} "
            f"{'n/a' if score is None else f'{score:7.3f}':>7s} {cell['epic']:6.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the cells asked for (skipping those already in the JSON), then plot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    parser.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    parser.add_argument("--budgets", nargs="+", type=int, default=BUDGETS)
    parser.add_argument("--selectors", nargs="+", default=SELECTORS)
    parser.add_argument(
        "--explore-alpha",
        type=float,
        default=0.0,
        help="The round policy trains on mean + alpha * std of the ensemble.",
    )
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "learning_results.json")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "learning.png")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "results" / "learning")
    parser.add_argument("--plot-only", action="store_true", help="Only redraw the PNG.")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = _load(args.json)
    data["meta"].update(
        {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        }
    )
    if not args.plot_only:
        for env_id in args.envs:
            for seed in args.seeds:
                key = f"{env_id}/{seed}"
                if key not in data["baselines"]:
                    data["baselines"][key] = _baseline(env_id, seed, args.work / env_id / str(seed))
                    _save(args.json, data)
                    print(f"baseline {key}: {data['baselines'][key]}", flush=True)
                for labels in args.budgets:
                    for selector in args.selectors:
                        cell_key = f"{env_id}/{seed}/{labels}/{selector}"
                        if args.explore_alpha:
                            cell_key += f"/alpha{args.explore_alpha:g}"
                        if cell_key in data["cells"]:
                            continue
                        folder = args.work / env_id / str(seed) / f"{labels}-{selector}"
                        if args.explore_alpha:
                            folder = folder.with_name(f"{folder.name}-alpha{args.explore_alpha:g}")
                        data["cells"][cell_key] = _cell(
                            env_id, seed, labels, selector, args.explore_alpha, folder
                        )
                        _save(args.json, data)
                        cell = data["cells"][cell_key]
                        score = _score(cell, data["baselines"][key])
                        print(
                            f"{cell_key}: score {score}, EPIC {cell['epic']:.3f} "
                            f"({cell['seconds']:.0f}s)",
                            flush=True,
                        )
    if data["cells"]:
        print(_table(data))
        print(f"wrote {plot(data, args.png)}")
    _save(args.json, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
