"""``rewardnets relabel DATA --reward-path P --out OUT``: a learned reward for a Parquet dataset."""

from __future__ import annotations

from pathlib import Path

import click

from rewardnets.apps.cli._common import friendly_errors, parse_key_values

__all__ = ["relabel"]


def _parse_columns(items: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            role, sep, name = part.partition("=")
            if not sep or not role.strip() or not name.strip():
                raise click.BadParameter(
                    f"--columns takes ROLE=NAME (e.g. observations=obs,dones=terminals), "
                    f"got {part!r}"
                )
            mapping[role.strip()] = name.strip()
    return mapping


@click.command()
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--reward-path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The saved reward net.",
)
@click.option(
    "--reward-type",
    default=None,
    help="Reward type for load_reward. Default: the whole stack with frozen statistics "
    "(RewardNet_normalized if the net is a NormalizedRewardNet, RewardNet_std_added if it has "
    "an AddSTDRewardWrapper, else RewardNet_unnormalized).",
)
@click.option(
    "--reward-kwargs",
    multiple=True,
    metavar="KEY=VALUE",
    help="An option of the reward type (repeatable), e.g. alpha=1.0 or device=cuda.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder of Parquet files (must be empty unless --overwrite).",
)
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--batch-size", type=int, default=8192, show_default=True)
@click.option(
    "--columns",
    multiple=True,
    metavar="ROLE=NAME",
    help="Column names for observations, actions, next_observations, dones, e.g. "
    "--columns observations=obs,dones=terminals (repeatable).",
)
@click.option(
    "--reward-column", default="learned_reward", show_default=True, help="The new column."
)
@click.option("--overwrite", is_flag=True, help="Replace the Parquet files in a non-empty --out.")
@click.option("--workers", type=int, default=1, show_default=True, help="Ray: actors.")
@click.option("--num-cpus", type=float, default=1.0, show_default=True, help="Ray: CPUs per actor.")
@click.option("--num-gpus", type=float, default=0.0, show_default=True, help="Ray: GPUs per actor.")
@click.option(
    "--address",
    default=None,
    help="Ray: the cluster to join (auto, ray://host:10001); default: a local one.",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="For torch.save files: unpickle without restrictions (only for files you trust).",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar (local).")
@friendly_errors
def relabel(
    data: Path,
    reward_path: Path,
    reward_type: str | None,
    reward_kwargs: tuple[str, ...],
    out: Path,
    engine: str,
    batch_size: int,
    columns: tuple[str, ...],
    reward_column: str,
    overwrite: bool,
    workers: int,
    num_cpus: float,
    num_gpus: float,
    address: str | None,
    trust_pickle: bool,
    progress: bool,
) -> None:
    """Add a learned reward column to the Parquet transitions in DATA (a file or folder).

    Every input column is kept and rows keep their order. Needs the offline
    extra (pyarrow); --engine ray needs the ray extra. See docs/relabel.md.
    """
    from rewardnets.relabel import relabel_dataset

    kwargs = parse_key_values(reward_kwargs, "--reward-kwargs")
    if trust_pickle:
        kwargs["trust_pickle"] = True
    result = relabel_dataset(
        data,
        reward_path,
        out,
        reward_type=reward_type,
        reward_kwargs=kwargs,
        columns=_parse_columns(columns),
        reward_column=reward_column,
        batch_size=batch_size,
        engine=engine,
        overwrite=overwrite,
        progress=progress,
        workers=workers,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        address=address,
    )
    rate = result.rows / result.seconds if result.seconds > 0 else float("nan")
    click.echo(
        f"relabelled {result.rows} transitions into {len(result.files)} file(s) under {out} "
        f"({result.engine} engine, {result.seconds:.1f} s, {rate:,.0f} transitions/s)"
    )
