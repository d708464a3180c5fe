"""Training and evaluating a Stable-Baselines3 policy on a (learned) reward."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import VecEnv

from rewardnets.errors import RewardNetsError
from rewardnets.reward_wrapper import RewardVecEnvWrapper
from rewardnets.util import make_vec_env

__all__ = [
    "ALGORITHMS",
    "PolicyResult",
    "default_algo_kwargs",
    "evaluate",
    "evaluate_random",
    "resolve_algo",
    "train_policy",
]

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC}

# Settings that make the default budgets work on small control tasks; anything
# passed explicitly overrides them.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": {},
    "sac": {
        "learning_rate": 1e-3,
        "learning_starts": 1000,
        "gamma": 0.98,
        "policy_kwargs": {"net_arch": [64, 64]},
    },
}


def default_algo_kwargs(algo: str) -> dict[str, Any]:
    """Return the default keyword arguments of ``algo`` (``"ppo"`` or ``"sac"``)."""
    return json.loads(json.dumps(_DEFAULTS[_check_algo(algo)]))


def resolve_algo(env_id: str, algo: str = "auto") -> str:
    """Return the algorithm for ``env_id``: ``auto`` is SAC for Box actions, PPO otherwise."""
    if algo != "auto":
        return _check_algo(algo)
    env = gym.make(env_id)
    space = env.action_space
    env.close()
    return "sac" if isinstance(space, gym.spaces.Box) else "ppo"


def _check_algo(algo: str) -> str:
    key = algo.lower()
    if key not in ALGORITHMS:
        raise RewardNetsError(f"Unknown algorithm {algo!r}; expected one of {sorted(ALGORITHMS)}.")
    return key


@dataclasses.dataclass
class PolicyResult:
    """What :func:`train_policy` produced."""

    env_id: str
    algo: str
    timesteps: int
    seed: int
    reward: str
    eval_return_mean: float
    eval_return_std: float
    train_seconds: float
    history: list[dict[str, Any]]
    policy_path: str | None = None
    metrics_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (the metrics file's contents)."""
        return {"kind": "train-policy", **dataclasses.asdict(self)}


class _HistoryCallback(BaseCallback):
    """Record the true-reward episode return that Monitor reports, per rollout."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[dict[str, Any]] = []
        self._seen = 0

    def _on_step(self) -> bool:
        buffer = self.model.ep_info_buffer
        if buffer is not None and len(buffer) and self.num_timesteps - self._seen >= 500:
            self._seen = self.num_timesteps
            entry: dict[str, Any] = {
                "step": self.num_timesteps,
                "ep_rew_mean": float(np.mean([e["r"] for e in buffer])),
            }
            wrapped = self.logger.name_to_value.get("rollout/ep_rew_wrapped_mean")
            if wrapped is not None:
                entry["ep_rew_wrapped_mean"] = float(wrapped)
            self.history.append(entry)
        return True


def evaluate(model: BaseAlgorithm, env_id: str, n_episodes: int, seed: int) -> tuple[float, float]:
    """Return the mean and std of the true episode return of ``model``'s greedy policy."""
    env = gym.make(env_id)
    returns = []
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns)), float(np.std(returns))


def evaluate_random(env_id: str, n_episodes: int, seed: int) -> tuple[float, float]:
    """Return the mean and std of the true episode return of uniform random actions."""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    returns = []
    for episode in range(n_episodes):
        env.reset(seed=seed + episode)
        done, total = False, 0.0
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns)), float(np.std(returns))


def train_policy(
    env_id: str,
    *,
    reward_type: str | None = None,
    reward_path: str | Path | None = None,
    reward_kwargs: dict[str, Any] | None = None,
    algo: str = "ppo",
    timesteps: int = 50_000,
    seed: int = 0,
    n_envs: int = 1,
    algo_kwargs: dict[str, Any] | None = None,
    eval_episodes: int = 10,
    out_dir: str | Path | None = None,
    tensorboard_log: str | Path | None = None,
    progress_bar: bool = False,
) -> PolicyResult:
    """Train a policy on a saved reward (or the env's own) and evaluate it on the true reward.

    Args:
        env_id: A gymnasium environment id.
        reward_type: A reward type for :func:`rewardnets.load_reward`; with
            ``reward_path``. Both None: train on the env's own reward.
        reward_path: The saved reward net.
        reward_kwargs: Options of the reward type, passed to ``load_reward``.
        algo: ``"ppo"`` or ``"sac"`` (SAC needs continuous actions).
        timesteps: Environment steps of training.
        seed: Seeds the envs, the algorithm and the evaluation.
        n_envs: Parallel environments.
        algo_kwargs: Overrides of the algorithm's keyword arguments.
        eval_episodes: Episodes of the evaluation on the true reward.
        out_dir: Where the policy (``policy.zip``) and ``metrics.json`` go.
        tensorboard_log: A folder for TensorBoard logs (needs ``tensorboard``).
        progress_bar: Show SB3's progress bar.

    Returns:
        The evaluation and training history.

    Raises:
        RewardNetsError: Bad algorithm, reward arguments or action space.
    """
    algo = _check_algo(algo)
    if (reward_type is None) != (reward_path is None):
        raise RewardNetsError(
            "Pass both reward_type and reward_path to train on a saved reward, or "
            "neither to train on the env's own reward."
        )
    torch.manual_seed(seed)
    venv: VecEnv = make_vec_env(env_id, rng=np.random.default_rng(seed), n_envs=n_envs)
    if algo == "sac" and not isinstance(venv.action_space, gym.spaces.Box):
        raise RewardNetsError(
            f"SAC needs a continuous (Box) action space; {env_id} has {venv.action_space}. "
            "Use --algo ppo."
        )
    callbacks: list[BaseCallback] = [_HistoryCallback()]
    reward_label = "true"
    if reward_type is not None:
        from rewardnets.serialize import load_reward

        reward_fn = load_reward(reward_type, str(reward_path), venv, **(reward_kwargs or {}))
        # SB3 resets the env when learning starts; no reset here as well.
        wrapped = RewardVecEnvWrapper(venv, reward_fn, reset_on_init=False)
        callbacks.append(wrapped.make_log_callback())
        venv = wrapped
        reward_label = f"{reward_type}:{reward_path}"
    if tensorboard_log is not None:
        try:
            import tensorboard  # noqa: F401
        except ImportError as exc:
            raise RewardNetsError(
                "TensorBoard logs need the tensorboard package: pip install tensorboard"
            ) from exc
    kwargs = {**default_algo_kwargs(algo), **(algo_kwargs or {})}
    model = ALGORITHMS[algo](
        "MlpPolicy",
        venv,
        seed=seed,
        verbose=0,
        tensorboard_log=None if tensorboard_log is None else str(tensorboard_log),
        **kwargs,
    )
    start = time.perf_counter()
    model.learn(timesteps, callback=CallbackList(callbacks), progress_bar=progress_bar)
    seconds = time.perf_counter() - start
    mean, std = evaluate(model, env_id, eval_episodes, seed=10_000 + seed)
    history = callbacks[0].history  # type: ignore[attr-defined]
    result = PolicyResult(env_id, algo, timesteps, seed, reward_label, mean, std, seconds, history)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        model.save(out / "policy.zip")
        result.policy_path = str(out / "policy.zip")
        result.metrics_path = str(out / "metrics.json")
        (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2))
    venv.close()
    return result
