"""Train-time vs. eval-time reward of a ``NormalizedRewardNet``.

While a policy trains on the reward, ``predict_processed`` keeps folding each
batch into the running mean and variance. For evaluation we freeze them with
``functools.partial(reward_net.predict_processed, update_stats=False)``: the
same transitions then always get the same reward.

Run: ``python examples/normalized_reward_eval.py``
"""

from __future__ import annotations

import functools

import numpy as np

from rewardnets import RewardVecEnvWrapper, make_vec_env
from rewardnets.networks import RunningNorm
from rewardnets.reward_nets import BasicRewardNet, NormalizedRewardNet


def stats(net: NormalizedRewardNet) -> str:
    layer = net.normalize_output_layer
    assert isinstance(layer, RunningNorm)
    return (
        f"count={int(layer.count.item())} mean={layer.running_mean.item():+.4f} "
        f"var={layer.running_var.item():.4f}"
    )


def run(venv: RewardVecEnvWrapper, steps: int, seed: int) -> None:
    venv.reset()
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        venv.step(rng.uniform(-2.0, 2.0, size=(venv.num_envs, 1)).astype(np.float32))


def main() -> None:
    rng = np.random.default_rng(0)
    venv = make_vec_env("Pendulum-v1", n_envs=3, rng=rng, max_episode_steps=50)
    reward_net = NormalizedRewardNet(
        BasicRewardNet(venv.observation_space, venv.action_space),
        normalize_output_layer=RunningNorm,
    )

    # Training: every step updates the normalisation statistics.
    train_venv = RewardVecEnvWrapper(venv, reward_net.predict_processed)
    run(train_venv, steps=100, seed=1)
    print(f"after training steps:  {stats(reward_net)}")
    frozen = stats(reward_net)

    # Evaluation, on fresh envs: the statistics stay as they are.
    eval_rew_fn = functools.partial(reward_net.predict_processed, update_stats=False)
    eval_venv = RewardVecEnvWrapper(
        make_vec_env("Pendulum-v1", n_envs=3, rng=rng, max_episode_steps=50), eval_rew_fn
    )
    run(eval_venv, steps=100, seed=2)
    print(f"after evaluation steps: {stats(reward_net)}")
    assert stats(reward_net) == frozen, "evaluation must not move the statistics"

    obs = np.zeros((4, 3), dtype=np.float32)
    acts = np.ones((4, 1), dtype=np.float32)
    first, second = eval_rew_fn(obs, acts), eval_rew_fn(obs, acts)
    assert np.array_equal(first, second)
    print(f"frozen eval reward is repeatable: {np.round(first, 4)}")
    print(
        f"mean normalised return of {len(eval_venv.episode_rewards)} eval episodes: "
        f"{np.mean(eval_venv.episode_rewards):+.3f}"
    )
    train_venv.close()
    eval_venv.close()


if __name__ == "__main__":
    main()
