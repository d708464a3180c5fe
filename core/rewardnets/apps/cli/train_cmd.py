"""``rewardnets train-policy``: train an SB3 policy on a saved reward."""

from __future__ import annotations

from pathlib import Path

import click

from rewardnets.apps.cli._common import (
    env_option,
    friendly_errors,
    parse_json_object,
    parse_key_values,
)


@click.command("train-policy")
@env_option
@click.option(
    "--reward-type",
    default=None,
    help="Reward type for load_reward, e.g. RewardNet_normalized. Default with --reward-path: "
    "the type that fits the file; without --reward-path the policy trains on the env's own "
    "reward.",
)
@click.option(
    "--reward-path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The saved reward net.",
)
@click.option(
    "--reward-kwargs",
    multiple=True,
    metavar="KEY=VALUE",
    help="An option of the reward type, passed to load_reward (repeatable), e.g. "
    "update_stats=true or clip=0.3; values are read as JSON when they are.",
)
@click.option("--algo", type=click.Choice(["ppo", "sac"]), default="ppo", show_default=True)
@click.option("--timesteps", default=50_000, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--n-envs", default=1, show_default=True, type=int)
@click.option(
    "--algo-kwargs", default=None, help="JSON overrides, e.g. '{\"learning_rate\": 3e-4}'."
)
@click.option("--eval-episodes", default=10, show_default=True, type=int)
@click.option(
    "--out",
    "out_dir",
    default="runs/policy",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Writes policy.zip and metrics.json here.",
)
@click.option(
    "--tensorboard",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Write TensorBoard logs here (needs the tensorboard package).",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@friendly_errors
def train_policy(
    env_id: str,
    reward_type: str | None,
    reward_path: Path | None,
    reward_kwargs: tuple[str, ...],
    algo: str,
    timesteps: int,
    seed: int,
    n_envs: int,
    algo_kwargs: str | None,
    eval_episodes: int,
    out_dir: Path,
    tensorboard: Path | None,
    progress: bool,
) -> None:
    """Train a policy on a saved reward and evaluate it on the env's true reward.

    The reward comes from load_reward(--reward-type, --reward-path) through
    RewardVecEnvWrapper; without them the policy trains on the true reward.
    """
    from rewardnets.apps.policy_training import train_policy as run

    if reward_path is not None and not reward_path.exists():
        raise click.ClickException(f"No such file: {reward_path}. Check --reward-path.")
    if reward_path is not None and reward_type is None:
        from rewardnets.apps.reward_choice import reward_type_of_file

        reward_type = reward_type_of_file(reward_path)
    result = run(
        env_id,
        reward_type=reward_type,
        reward_path=reward_path,
        reward_kwargs=parse_key_values(reward_kwargs, "--reward-kwargs"),
        algo=algo,
        timesteps=timesteps,
        seed=seed,
        n_envs=n_envs,
        algo_kwargs=parse_json_object(algo_kwargs, "--algo-kwargs"),
        eval_episodes=eval_episodes,
        out_dir=out_dir,
        tensorboard_log=tensorboard,
        progress_bar=progress,
    )
    click.echo(
        f"{algo.upper()} on {env_id}, reward {result.reward}, {timesteps} steps in "
        f"{result.train_seconds:.1f}s: true return {result.eval_return_mean:.1f} "
        f"± {result.eval_return_std:.1f} over {eval_episodes} episodes"
    )
    click.echo(f"saved {result.policy_path}")
    click.echo(f"metrics {result.metrics_path}")
