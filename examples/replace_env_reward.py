"""Replace Pendulum's reward with a (here untrained) reward network.

The seed snippet, runnable: build a ``BasicRewardNet``, make a seeded vector
env, wrap it with ``RewardVecEnvWrapper`` and step it. The agent sees the
net's reward; the env's own reward stays available in ``info``.

Run: ``python examples/replace_env_reward.py``
"""

from __future__ import annotations

import numpy as np

from rewardnets import RewardVecEnvWrapper, make_vec_env
from rewardnets.reward_nets import BasicRewardNet


def main(steps: int = 250) -> None:
    rng = np.random.default_rng(0)
    venv = make_vec_env("Pendulum-v1", n_envs=3, rng=rng)
    reward_net = BasicRewardNet(venv.observation_space, venv.action_space)
    venv = RewardVecEnvWrapper(venv, reward_net.predict_processed)

    venv.reset()
    action_rng = np.random.default_rng(1)
    for step in range(steps):
        actions = action_rng.uniform(-2.0, 2.0, size=(venv.num_envs, 1)).astype(np.float32)
        _, rewards, dones, infos = venv.step(actions)
        if step % 50 == 0:
            env_rewards = [info["original_env_rew"] for info in infos]
            print(
                f"step {step:3d}  net reward {np.round(rewards, 3)}  "
                f"env reward {np.round(env_rewards, 3)}"
            )
        if dones.any():
            print(f"step {step:3d}  episodes ended in envs {np.flatnonzero(dones).tolist()}")

    returns = list(venv.episode_rewards)
    print(f"finished episodes: {len(returns)}; their returns under the net: {np.round(returns, 2)}")
    venv.close()


if __name__ == "__main__":
    main()
