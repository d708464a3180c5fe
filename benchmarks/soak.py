"""Soak: a million env steps through RewardVecEnvWrapper with a normalised net, memory flat.

Steps ``--envs`` Pendulum-v1 envs (SB3 ``DummyVecEnv``, random actions)
under a ``RewardVecEnvWrapper`` whose reward is a ``NormalizedRewardNet``
updating its statistics on every step (``RewardNet_normalized`` with
``update_stats=True``, as during training). It reads the process's resident
set size (RSS, from ``/proc/self/statm``) at every tenth of the run and
reports its growth from the first tenth (after warm-up) to the end. A leak of
even a few bytes per step shows as megabytes here.

    .venv/bin/python benchmarks/soak.py                  # 10^6 env steps
    .venv/bin/python benchmarks/soak.py --steps 100000   # shorter
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

import rewardnets

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """This process's resident set size in MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / (1 << 20)


def soak(steps: int, envs: int, seed: int) -> list[tuple[int, float]]:
    """Run ``steps`` env steps; return ``(steps done, RSS MiB)`` at each tenth."""
    venv = DummyVecEnv([lambda: gym.make("Pendulum-v1")] * envs)
    venv.seed(seed)
    net = rewardnets.NormalizedRewardNet(
        rewardnets.BasicRewardNet(venv.observation_space, venv.action_space)
    )
    with tempfile.TemporaryDirectory() as folder:
        path = rewardnets.save(net, Path(folder) / "reward.rn")
        reward = rewardnets.load_reward("RewardNet_normalized", path, venv, update_stats=True)
    wrapped = rewardnets.RewardVecEnvWrapper(venv, reward)
    rng = np.random.default_rng(seed)
    action_space = venv.action_space
    assert isinstance(action_space, gym.spaces.Box)
    low, high = action_space.low, action_space.high
    calls = steps // envs
    marks = {calls * k // 10 for k in range(1, 11)}
    samples = []
    for call in range(1, calls + 1):
        wrapped.step(rng.uniform(low, high, size=(envs, *low.shape)).astype(np.float32))
        if call in marks:
            samples.append((call * envs, rss_mb()))
    return samples


def main() -> int:
    """Run the soak and print the RSS table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000, help="env steps in all")
    parser.add_argument("--envs", type=int, default=8, help="envs in the DummyVecEnv")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    samples = soak(args.steps, args.envs, args.seed)
    seconds = time.perf_counter() - start
    print(f"soak: {args.steps} env steps, {args.envs} Pendulum-v1 envs, {seconds:.0f} s")
    print("| env steps | RSS (MiB) |")
    print("|---:|---:|")
    for done, rss in samples:
        print(f"| {done} | {rss:.1f} |")
    growth = samples[-1][1] - samples[0][1]
    per_step = growth * (1 << 20) / max(samples[-1][0] - samples[0][0], 1)
    print(f"growth after the first tenth: {growth:+.1f} MiB ({per_step:+.2f} bytes per step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
