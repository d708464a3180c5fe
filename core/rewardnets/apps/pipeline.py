"""The main job: learn a reward, train policies on it and on the truth, compare."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewardnets.errors import RewardNetsError

__all__ = ["REWARD_TYPE", "PipelineSettings", "format_summary", "run_pipeline"]

#: How the policy sees the learned ensemble: the mean of its standardised members.
REWARD_TYPE = "RewardNet_std_added"


@dataclasses.dataclass
class PipelineSettings:
    """Budgets of the main job; the defaults finish in minutes on 2 CPU cores."""

    env_id: str = "Pendulum-v1"
    net_config: Any = None
    seed: int = 0
    labels: int = 100
    rounds: int = 3
    schedule: list[int] | None = None
    selector: str = "disagreement"
    teacher: str = "perfect"
    teacher_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    ensemble_size: int = 3
    fragments: int = 200
    fragment_length: int = 20
    train_steps: int = 300
    agent_steps: int = 2000
    explore_alpha: float = 0.0
    algo: str = "auto"
    timesteps: int = 8000
    eval_episodes: int = 10
    compare_samples: int = 1000
    parallel: bool = True

    def resolved_algo(self) -> str:
        """Return the algorithm: ``auto`` is SAC for Box actions, PPO otherwise."""
        from rewardnets.apps.policy_training import resolve_algo

        return resolve_algo(self.env_id, self.algo)


def _train(kwargs: dict[str, Any]) -> dict[str, Any]:
    import torch

    from rewardnets.apps.policy_training import train_policy

    torch.set_num_threads(1)
    return train_policy(**kwargs).to_dict()


def run_pipeline(
    settings: PipelineSettings,
    out_dir: str | Path,
    *,
    log: Callable[[str], None] = print,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run learn, train-policy (on the learned and the true reward) and compare.

    Args:
        settings: Env, budgets and seed.
        out_dir: Where every artefact goes.
        log: Receives one line per finished stage.
        progress: Receives reward-learning progress per epoch.

    Returns:
        The summary (also written to ``summary.json`` in ``out_dir``).
    """
    from rewardnets.apps.active_learning import learn_reward_active
    from rewardnets.apps.comparison import TRUE_REWARD, compare_rewards
    from rewardnets.apps.plotting import plot_learning_curves
    from rewardnets.apps.policy_training import evaluate_random

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    algo = settings.resolved_algo()
    _, learned = learn_reward_active(
        settings.env_id,
        settings.net_config,
        seed=settings.seed,
        labels=settings.labels,
        rounds=settings.rounds,
        schedule=settings.schedule,
        selector=settings.selector,
        teacher=settings.teacher,
        teacher_options=settings.teacher_options,
        ensemble_size=settings.ensemble_size,
        fragments_per_round=settings.fragments,
        fragment_length=settings.fragment_length,
        train_steps=settings.train_steps,
        agent_steps=settings.agent_steps,
        explore_alpha=settings.explore_alpha,
        algo=algo,
        out_dir=out / "learn",
        progress=progress,
    )
    final = learned.history[-1]
    log(
        f"learned reward from {learned.labels} labels in {settings.rounds} rounds "
        f"({settings.selector}): preference accuracy {final['accuracy']:.3f} "
        f"({learned.seconds:.0f}s)"
    )

    common = {
        "env_id": settings.env_id,
        "algo": algo,
        "timesteps": settings.timesteps,
        "seed": settings.seed,
        "eval_episodes": settings.eval_episodes,
    }
    jobs = {
        "learned": {
            **common,
            "reward_type": REWARD_TYPE,
            "reward_path": learned.reward_path,
            "out_dir": str(out / "policy_learned"),
        },
        "true": {**common, "out_dir": str(out / "policy_true")},
    }
    log(
        f"training {algo.upper()} for {settings.timesteps} steps on the learned and the true reward"
    )
    policies: dict[str, dict[str, Any]] = {}
    if settings.parallel:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
            futures = {name: pool.submit(_train, job) for name, job in jobs.items()}
            policies = {name: f.result() for name, f in futures.items()}
    else:
        policies = {name: _train(job) for name, job in jobs.items()}
    random_mean, random_std = evaluate_random(
        settings.env_id, settings.eval_episodes, seed=10_000 + settings.seed
    )

    comparison: dict[str, Any]
    try:
        comparison = compare_rewards(
            str(learned.reward_path),
            TRUE_REWARD,
            settings.env_id,
            reward_type=REWARD_TYPE,
            n_samples=settings.compare_samples,
            seed=settings.seed,
        )
    except RewardNetsError as exc:
        comparison = {"epic": None, "pearson": None, "error": str(exc)}
    curves = plot_learning_curves(
        {
            "learn": learned.to_dict(),
            "policy on learned reward": policies["learned"],
            "policy on true reward": policies["true"],
        },
        out / "curves.png",
    )

    true_ret = policies["true"]["eval_return_mean"]
    learned_ret = policies["learned"]["eval_return_mean"]
    span = true_ret - random_mean
    summary = {
        "env": settings.env_id,
        "seed": settings.seed,
        "algo": algo,
        "timesteps": settings.timesteps,
        "returns": {
            "learned": [learned_ret, policies["learned"]["eval_return_std"]],
            "true": [true_ret, policies["true"]["eval_return_std"]],
            "random": [random_mean, random_std],
        },
        # Share of the true-reward policy's improvement over random that the
        # learned-reward policy achieves: meaningful for negative returns too.
        "learned_vs_true": (learned_ret - random_mean) / span if span else None,
        "epic": comparison.get("epic"),
        "pearson": comparison.get("pearson"),
        "comparison": comparison,
        "files": {
            "reward": learned.reward_path,
            "learn_metrics": learned.metrics_path,
            "policy_learned": policies["learned"]["policy_path"],
            "policy_true": policies["true"]["policy_path"],
            "curves": str(curves.path),
            "summary": str(out / "summary.json"),
        },
        "seconds": time.perf_counter() - start,
        "settings": dataclasses.asdict(settings),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """Render the summary as the table the main command prints."""
    returns = summary["returns"]
    n = summary["settings"]["eval_episodes"]

    def ret(key: str) -> str:
        mean, std = returns[key]
        return f"{mean:.1f} ± {std:.1f}"

    def num(value: Any) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    rows = [
        ("policy trained on the learned reward", ret("learned")),
        ("policy trained on the true reward", ret("true")),
        ("random policy", ret("random")),
        ("learned / true (0 = random, 1 = true)", num(summary["learned_vs_true"])),
    ]
    lines = [
        f"{summary['env']}, seed {summary['seed']}: {summary['algo'].upper()}, "
        f"{summary['timesteps']} steps per policy, {summary['seconds']:.0f}s in all",
        "",
        f"  {'true-reward return over ' + str(n) + ' episodes':40s} mean ± std",
        *(f"  {label:40s}{value}" for label, value in rows),
        "",
        f"  {'EPIC distance, learned vs true reward':40s}{num(summary['epic'])}",
        f"  {'Pearson correlation':40s}{num(summary['pearson'])}",
        "",
        "  files:",
    ]
    lines += [f"    {key:15s} {path}" for key, path in summary["files"].items()]
    if summary["comparison"].get("error"):
        lines.insert(-1, f"  (no EPIC: {summary['comparison']['error']})")
    return "\n".join(lines)
