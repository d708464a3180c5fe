"""``rewardnets plot``: learning curves and reward heatmaps as PNG files."""

from __future__ import annotations

from pathlib import Path

import click

from rewardnets.apps.cli._common import env_option, friendly_errors


@click.group()
def plot() -> None:
    """Draw PNG figures: learning curves, or a reward heatmap."""


@plot.command()
@click.argument("metrics", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out", "out_path", default="curves.png", show_default=True, type=click.Path(path_type=Path)
)
@click.option("--title", default=None)
@friendly_errors
def curves(metrics: tuple[Path, ...], out_path: Path, title: str | None) -> None:
    """Plot learning curves from metrics.json files of learn and train-policy."""
    from rewardnets.apps.plotting import plot_learning_curves

    for path in metrics:
        if not path.exists():
            raise click.ClickException(f"No such file: {path}. Pass metrics.json files.")
    result = plot_learning_curves(
        {str(p.parent.name or p): p for p in metrics}
        if len(set(metrics)) == len(metrics)
        else list(metrics),
        out_path,
        title=title,
    )
    click.echo(f"saved {result.path}")


@plot.command()
@click.argument("reward_path", type=click.Path(dir_okay=False, path_type=Path))
@env_option
@click.option(
    "--reward-type",
    default=None,
    help="How the saved net becomes a reward function (see load_reward). Default: the type "
    "that fits the file.",
)
@click.option(
    "--dims",
    nargs=2,
    type=int,
    default=(0, 1),
    show_default=True,
    help="Two observation dimensions.",
)
@click.option("--resolution", default=50, show_default=True, type=int)
@click.option(
    "--out", "out_path", default="heatmap.png", show_default=True, type=click.Path(path_type=Path)
)
@friendly_errors
def heatmap(
    reward_path: Path,
    env_id: str,
    reward_type: str | None,
    dims: tuple[int, int],
    resolution: int,
    out_path: Path,
) -> None:
    """Plot a saved reward (REWARD_PATH, or "true") over two observation dimensions."""
    import numpy as np

    from rewardnets.apps.comparison import resolve_reward
    from rewardnets.apps.plotting import plot_reward_heatmap
    from rewardnets.util import make_vec_env

    venv = make_vec_env(env_id, rng=np.random.default_rng(0), n_envs=1)
    try:
        reward_fn = resolve_reward(reward_path, env_id, venv, reward_type)
        result = plot_reward_heatmap(
            reward_fn,
            venv.observation_space,
            venv.action_space,
            dims=dims,
            out_path=out_path,
            resolution=resolution,
            title=f"{reward_path} on {env_id}",
        )
    finally:
        venv.close()
    click.echo(f"saved {result.path}")
