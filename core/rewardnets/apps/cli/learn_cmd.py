"""``rewardnets learn``: learn a reward net from synthetic preference comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from rewardnets.apps.cli._common import (
    EpochBar,
    env_option,
    friendly_errors,
    learning_options,
    parse_config,
    parse_key_values,
    parse_schedule,
)


@click.command()
@env_option
@click.option(
    "--net",
    "net_config",
    default=None,
    help="Config of one ensemble member: a registered name or JSON, e.g. "
    '\'["BasicRewardNet", "NormalizedRewardNet"]\' (or a whole RewardEnsemble config). '
    "Default: BasicRewardNet (64, 64) with NormalizedRewardNet.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@learning_options
@click.option(
    "--algo",
    type=click.Choice(["auto", "ppo", "sac"]),
    default="auto",
    show_default=True,
    help="The policy trained between rounds; auto: SAC for continuous actions, PPO otherwise.",
)
@click.option("--lr", default=1e-3, show_default=True, type=float)
@click.option("--noise", default=None, type=float, help="Teacher option: label flip rate.")
@click.option("--temperature", default=None, type=float, help="Teacher option: soft labels if > 0.")
@click.option("--myopia", default=None, type=float, help="Teacher option: discount (< 1: myopic).")
@click.option(
    "--out",
    "out_dir",
    default="runs/learn",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Writes reward.rn (safe format), metrics.json and round_<k>/ here.",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@friendly_errors
def learn(
    env_id: str,
    net_config: str | None,
    seed: int,
    labels: int,
    rounds: int,
    schedule: str | None,
    selector: str,
    teacher: str,
    teacher_options: tuple[str, ...],
    ensemble: int,
    fragments: int,
    fragment_length: int,
    train_steps: int,
    agent_steps: int,
    explore_alpha: float,
    algo: str,
    lr: float,
    noise: float | None,
    temperature: float | None,
    myopia: float | None,
    out_dir: Path,
    progress: bool,
) -> None:
    """Learn a reward ensemble from synthetic preferences between trajectory fragments.

    In rounds: train a policy on the current reward (from the second round
    on), collect fragments with it (the first round: a random policy), ask the
    teacher about the pairs the selector picks, refit the ensemble with the
    Bradley-Terry model. The reward is saved in the safe format after each round.
    """
    from rewardnets.apps.active_learning import learn_reward_active

    options: dict[str, Any] = parse_key_values(teacher_options, "--teacher-option")
    for key, value in (("noise", noise), ("temperature", temperature), ("myopia", myopia)):
        if value is not None:
            options[key] = value
    _, result = learn_reward_active(
        env_id,
        parse_config(net_config),
        seed=seed,
        labels=labels,
        rounds=rounds,
        schedule=parse_schedule(schedule),
        selector=selector,
        teacher=teacher,
        teacher_options=options,
        ensemble_size=ensemble,
        fragments_per_round=fragments,
        fragment_length=fragment_length,
        train_steps=train_steps,
        agent_steps=agent_steps,
        explore_alpha=explore_alpha,
        algo=algo,
        lr=lr,
        out_dir=out_dir,
        progress=EpochBar(rounds, "learn", progress, unit="round"),
    )
    final = result.history[-1] if result.history else {}
    click.echo(
        f"learned reward for {env_id} from {result.labels} labels in {rounds} rounds "
        f"({selector}, {teacher} teacher): loss {final.get('loss', float('nan')):.4f}, "
        f"preference accuracy {final.get('accuracy', float('nan')):.3f}, "
        f"{result.seconds:.1f}s"
    )
    click.echo(f"saved {result.reward_path}")
    click.echo(f"metrics {result.metrics_path}")
