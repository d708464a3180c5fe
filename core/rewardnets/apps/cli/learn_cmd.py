"""``rewardnets learn``: learn a reward net from synthetic preference comparisons."""

from __future__ import annotations

from pathlib import Path

import click

from rewardnets.apps.cli._common import EpochBar, env_option, friendly_errors, parse_config


@click.command()
@env_option
@click.option(
    "--net",
    "net_config",
    default=None,
    help="Reward net config: a registered name or JSON, e.g. "
    '\'["BasicRewardNet", "NormalizedRewardNet"]\'. '
    "Default: BasicRewardNet (64, 64) with NormalizedRewardNet.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--fragments", default=600, show_default=True, type=int, help="Fragments to collect.")
@click.option("--fragment-length", default=20, show_default=True, type=int)
@click.option("--comparisons", default=3000, show_default=True, type=int, help="Labelled pairs.")
@click.option("--epochs", default=10, show_default=True, type=int)
@click.option("--lr", default=1e-3, show_default=True, type=float)
@click.option("--noise", default=0.0, show_default=True, type=float, help="Teacher error rate.")
@click.option(
    "--temperature", default=0.0, show_default=True, type=float, help="Soft teacher labels if > 0."
)
@click.option(
    "--myopia", default=1.0, show_default=True, type=float, help="Teacher discount (< 1: myopic)."
)
@click.option(
    "--out",
    "out_dir",
    default="runs/learn",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Writes reward.rn (safe format) and metrics.json here.",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@friendly_errors
def learn(
    env_id: str,
    net_config: str | None,
    seed: int,
    fragments: int,
    fragment_length: int,
    comparisons: int,
    epochs: int,
    lr: float,
    noise: float,
    temperature: float,
    myopia: float,
    out_dir: Path,
    progress: bool,
) -> None:
    """Learn a reward net from synthetic preferences between trajectory fragments.

    A synthetic teacher prefers the fragment with the higher true return; the net
    is fitted with the Bradley-Terry model and saved in the safe format.
    """
    from rewardnets.apps.preferences import SyntheticTeacher, learn_reward

    teacher = SyntheticTeacher(temperature=temperature, noise=noise, myopia=myopia)

    _, result = learn_reward(
        env_id,
        parse_config(net_config),
        seed=seed,
        n_fragments=fragments,
        fragment_length=fragment_length,
        n_comparisons=comparisons,
        epochs=epochs,
        lr=lr,
        teacher=teacher,
        out_dir=out_dir,
        progress=EpochBar(epochs, "learn", progress),
    )
    final = result.history[-1] if result.history else {}
    click.echo(
        f"learned reward for {env_id}: loss {final.get('loss', float('nan')):.4f}, "
        f"preference accuracy {final.get('accuracy', float('nan')):.3f}, "
        f"{result.seconds:.1f}s"
    )
    click.echo(f"saved {result.reward_path}")
    click.echo(f"metrics {result.metrics_path}")
