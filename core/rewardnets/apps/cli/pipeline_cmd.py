"""``rewardnets pipeline``: the main job, from preferences to an evaluated policy."""

from __future__ import annotations

from pathlib import Path

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
@click.option("--net", "net_config", default=None, help="Reward net config (name or JSON).")
@click.option("--seed", default=0, show_default=True, type=int)
@learning_options
@click.option(
    "--algo",
    type=click.Choice(["auto", "ppo", "sac"]),
    default="auto",
    show_default=True,
    help="auto: SAC for continuous actions, PPO otherwise.",
)
@click.option("--timesteps", default=8000, show_default=True, type=int, help="Steps per policy.")
@click.option("--eval-episodes", default=10, show_default=True, type=int)
@click.option(
    "--out",
    "out_dir",
    default="runs/pipeline",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "--parallel/--sequential", default=True, help="Train the two policies in two processes."
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@friendly_errors
def pipeline(
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
    timesteps: int,
    eval_episodes: int,
    out_dir: Path,
    parallel: bool,
    progress: bool,
) -> None:
    """Learn a reward, train a policy on it, and see how good it is.

    Runs learn (in rounds: train a policy on the current reward, collect
    fragments with it, ask the teacher about the pairs the selector picks,
    refit the reward ensemble), then train-policy on the learned reward and (with the same
    budget) on the env's true reward, evaluates a random policy, and compares
    the learned reward to the true one with EPIC. Prints a table; every file
    goes under --out.
    """
    from rewardnets.apps.pipeline import PipelineSettings, format_summary, run_pipeline

    settings = PipelineSettings(
        env_id=env_id,
        net_config=parse_config(net_config),
        seed=seed,
        labels=labels,
        rounds=rounds,
        schedule=parse_schedule(schedule),
        selector=selector,
        teacher=teacher,
        teacher_options=parse_key_values(teacher_options, "--teacher-option"),
        ensemble_size=ensemble,
        fragments=fragments,
        fragment_length=fragment_length,
        train_steps=train_steps,
        agent_steps=agent_steps,
        explore_alpha=explore_alpha,
        algo=algo,
        timesteps=timesteps,
        eval_episodes=eval_episodes,
        parallel=parallel,
    )
    report = EpochBar(settings.rounds, "learn reward", progress, unit="round")
    summary = run_pipeline(settings, out_dir, log=click.echo, progress=report)
    click.echo("")
    click.echo(format_summary(summary))
