"""``rewardnets compare``: how close two rewards are, invariant to potential shaping."""

from __future__ import annotations

import json

import click

from rewardnets.apps.cli._common import env_option, friendly_errors


@click.command()
@click.argument("reward_a")
@click.argument("reward_b")
@env_option
@click.option(
    "--reward-type",
    default=None,
    help="How saved nets become reward functions (see load_reward). Default: the type that "
    "fits each file (RewardNet_normalized for a NormalizedRewardNet, RewardNet_std_added for "
    "an ensemble under AddSTDRewardWrapper, else RewardNet_unnormalized).",
)
@click.option("--samples", default=1000, show_default=True, type=int, help="Transitions compared.")
@click.option(
    "--canonical-samples",
    default=32,
    show_default=True,
    type=int,
    help="State and action samples of EPIC's canonicalisation (cost grows with its cube).",
)
@click.option("--discount", default=0.99, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@friendly_errors
def compare(
    reward_a: str,
    reward_b: str,
    env_id: str,
    reward_type: str | None,
    samples: int,
    canonical_samples: int,
    discount: float,
    seed: int,
    as_json: bool,
) -> None:
    """Compare two rewards: REWARD_A and REWARD_B are saved nets or "true".

    Prints the EPIC distance (0: equivalent up to potential shaping and positive
    scaling; 1: opposite) and the Pearson correlation, over transitions of a
    random policy in the env. "true" is the env's own reward.
    """
    from rewardnets.apps.comparison import compare_rewards

    result = compare_rewards(
        reward_a,
        reward_b,
        env_id,
        reward_type=reward_type,
        n_samples=samples,
        n_canonical_samples=canonical_samples,
        discount=discount,
        seed=seed,
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{reward_a} vs {reward_b} on {env_id} ({samples} transitions)")
    click.echo(f"  EPIC distance        {result['epic']:.4f}")
    click.echo(f"  Pearson correlation  {result['pearson']:.4f}")
