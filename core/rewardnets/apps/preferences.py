"""Learning a reward net from synthetic preference comparisons.

Trajectory fragments are collected from an environment; a synthetic teacher
prefers, of two fragments, the one with the higher true return (optionally
noisy or myopic); the reward net is fitted with the Bradley-Terry model, in
which the probability that fragment 1 is preferred is
``sigmoid(R_net(fragment 1) - R_net(fragment 2))``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv

from rewardnets import RewardNet
from rewardnets.errors import RewardNetsError

__all__ = [
    "DEFAULT_CONFIG",
    "Fragments",
    "LearnResult",
    "PreferenceTrainer",
    "SyntheticTeacher",
    "bradley_terry_loss",
    "collect_fragments",
    "fragment_returns",
    "learn_reward",
]

Policy = Callable[[Any], np.ndarray]


@dataclasses.dataclass
class Fragments:
    """A batch of equally long trajectory fragments.

    Arrays have a leading ``(n_fragments, length)`` shape; ``obs`` and
    ``next_obs`` are dicts of such arrays for Dict observation spaces.
    """

    obs: Any
    acts: np.ndarray
    next_obs: Any
    dones: np.ndarray
    true_rewards: np.ndarray

    @property
    def n(self) -> int:
        """The number of fragments."""
        return int(self.true_rewards.shape[0])

    @property
    def length(self) -> int:
        """The number of transitions in each fragment."""
        return int(self.true_rewards.shape[1])

    def flat(self) -> tuple[Any, np.ndarray, Any, np.ndarray]:
        """Return the transitions as flat batches ``(obs, acts, next_obs, dones)``."""

        def merge(x: Any) -> Any:
            if isinstance(x, dict):
                return {k: merge(v) for k, v in x.items()}
            return x.reshape(-1, *x.shape[2:])

        return merge(self.obs), merge(self.acts), merge(self.next_obs), merge(self.dones)


def _stack_obs(items: list[Any]) -> Any:
    if isinstance(items[0], dict):
        return {k: np.stack([it[k] for it in items]) for k in items[0]}
    return np.stack(items)


def _row(obs: Any, i: int) -> Any:
    if isinstance(obs, dict):
        return {k: np.array(v[i]) for k, v in obs.items()}
    return np.array(obs[i])


def collect_fragments(
    venv: VecEnv,
    n_fragments: int,
    length: int,
    rng: np.random.Generator,
    policy: Policy | None = None,
) -> Fragments:
    """Roll out a policy and cut the episodes into fragments of ``length`` steps.

    Fragments never cross an episode boundary; at an episode end the next
    observation is the terminal one (``info["terminal_observation"]``). The
    reward recorded is the environment's own.

    Args:
        venv: The environment to sample from.
        n_fragments: How many fragments to return.
        length: Transitions per fragment.
        rng: Draws random actions (when ``policy`` is None) and picks fragments.
        policy: Maps a batch of observations to a batch of actions; uniform
            random actions when None.

    Returns:
        ``n_fragments`` fragments, in random order.

    Raises:
        ValueError: ``length`` or ``n_fragments`` is not positive.
    """
    if length < 1 or n_fragments < 1:
        raise ValueError(
            f"Expected positive n_fragments and length, got {n_fragments} and {length}."
        )
    space = venv.action_space
    space.seed(int(rng.integers(2**31)))
    current: list[list[tuple[Any, Any, Any, bool, float]]] = [[] for _ in range(venv.num_envs)]
    windows: list[list[tuple[Any, Any, Any, bool, float]]] = []
    obs = venv.reset()
    # Collect more windows than needed, then sample, so fragments mix episodes.
    while len(windows) < 2 * n_fragments:
        if policy is None:
            acts = np.stack([space.sample() for _ in range(venv.num_envs)])
        else:
            acts = np.asarray(policy(obs))
        next_obs, rewards, dones, infos = venv.step(acts)
        for i in range(venv.num_envs):
            after = _row(next_obs, i)
            if dones[i]:
                after = infos[i].get("terminal_observation", after)
            current[i].append(
                (_row(obs, i), np.array(acts[i]), after, bool(dones[i]), float(rewards[i]))
            )
            if len(current[i]) == length:
                windows.append(current[i])
                current[i] = []
            elif dones[i]:
                current[i] = []  # too short to make a fragment
        obs = next_obs
    chosen = rng.choice(len(windows), size=n_fragments, replace=False)
    picked = [windows[j] for j in chosen]
    return Fragments(
        obs=_stack_obs([_stack_obs([t[0] for t in w]) for w in picked]),
        acts=np.stack([np.stack([t[1] for t in w]) for w in picked]),
        next_obs=_stack_obs([_stack_obs([t[2] for t in w]) for w in picked]),
        dones=np.array([[t[3] for t in w] for w in picked]),
        true_rewards=np.array([[t[4] for t in w] for w in picked], dtype=np.float64),
    )


@dataclasses.dataclass
class SyntheticTeacher:
    """Prefers the fragment with the higher true return.

    Args:
        temperature: 0 gives hard labels (1, 0, or 0.5 on ties); a positive
            value gives soft labels ``sigmoid((R1 - R2) / temperature)``.
        noise: Probability that the teacher flips its hard label (a noisy
            teacher).
        myopia: Discount applied backwards from the end of the fragment: the
            last step counts fully, the one before ``myopia`` times as much,
            and so on (1.0: not myopic).
    """

    temperature: float = 0.0
    noise: float = 0.0
    myopia: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"Expected temperature >= 0, got {self.temperature}.")
        if not 0.0 <= self.noise <= 0.5:
            raise ValueError(f"Expected noise in [0, 0.5], got {self.noise}.")
        if not 0.0 < self.myopia <= 1.0:
            raise ValueError(f"Expected myopia in (0, 1], got {self.myopia}.")

    def returns(self, true_rewards: np.ndarray) -> np.ndarray:
        """Return the (myopically discounted) return of each fragment."""
        length = true_rewards.shape[-1]
        weights = self.myopia ** np.arange(length - 1, -1, -1)
        return true_rewards @ weights

    def __call__(
        self, rewards_1: np.ndarray, rewards_2: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Return the probability that each first fragment is preferred."""
        diff = self.returns(rewards_1) - self.returns(rewards_2)
        if self.temperature > 0:
            prefs = 1.0 / (1.0 + np.exp(-np.clip(diff / self.temperature, -50, 50)))
        else:
            prefs = np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
        if self.noise > 0:
            flip = rng.random(len(prefs)) < self.noise
            prefs = np.where(flip, 1.0 - prefs, prefs)
        return prefs.astype(np.float32)


def fragment_returns(
    net: RewardNet, inputs: Sequence[Any], length: int, fragment_ids: np.ndarray
) -> torch.Tensor:
    """The differentiable return of each fragment in ``fragment_ids`` under ``net``.

    Args:
        net: The reward net.
        inputs: The preprocessed (state, action, next_state, done) of a pool of
            fragments of ``length`` steps each, fragment after fragment.
        length: The steps of one fragment.
        fragment_ids: Which fragments of the pool.

    Returns:
        A tensor of shape ``(len(fragment_ids),)``.
    """
    rows = (fragment_ids[:, None] * length + np.arange(length)[None, :]).reshape(-1)
    index = torch.as_tensor(rows, device=net.device)

    def take(x: Any) -> Any:
        if x is None:
            return None
        if isinstance(x, dict):
            return {k: v[index] for k, v in x.items()}
        return x[index]

    rewards = net(*(take(x) for x in inputs))
    return rewards.reshape(len(fragment_ids), length).sum(dim=1)


def bradley_terry_loss(
    fragment_returns_1: torch.Tensor, fragment_returns_2: torch.Tensor, prefs: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of the Bradley-Terry model against the teacher's preferences."""
    logits = fragment_returns_1 - fragment_returns_2
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, prefs)


class PreferenceTrainer:
    """Fits a reward net to preferences over pairs of fragments.

    Args:
        net: The reward net to train; its ``forward`` is what is fitted.
        fragments: The fragments to compare.
        teacher: Labels the pairs.
        rng: Draws the pairs and the label noise.
        n_comparisons: How many pairs to label.
        lr: Adam learning rate.
        batch_size: Pairs per gradient step.
        weight_decay: Adam weight decay.
    """

    def __init__(
        self,
        net: RewardNet,
        fragments: Fragments,
        teacher: SyntheticTeacher,
        rng: np.random.Generator,
        *,
        n_comparisons: int = 2000,
        lr: float = 1e-3,
        batch_size: int = 64,
        weight_decay: float = 0.0,
    ) -> None:
        if fragments.n < 2:
            raise RewardNetsError(f"Need at least 2 fragments to compare, got {fragments.n}.")
        self.net = net
        self.fragments = fragments
        self.batch_size = batch_size
        self.optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        first = rng.integers(fragments.n, size=n_comparisons)
        second = (first + rng.integers(1, fragments.n, size=n_comparisons)) % fragments.n
        self.pairs = np.stack([first, second], axis=1)
        self.prefs = torch.as_tensor(
            teacher(fragments.true_rewards[first], fragments.true_rewards[second], rng),
            device=net.device,
        )
        self.rng = rng
        # Preprocess every transition once; training indexes into the tensors.
        self._inputs = net.preprocess(*fragments.flat())
        self.step = 0

    def _returns(self, fragment_ids: np.ndarray) -> torch.Tensor:
        return fragment_returns(self.net, self._inputs, self.fragments.length, fragment_ids)

    def train_epoch(self) -> dict[str, float]:
        """Run one pass over the labelled pairs; return the mean loss and accuracy."""
        self.net.train()
        order = self.rng.permutation(len(self.pairs))
        losses, correct, counted = [], 0.0, 0
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            pairs = self.pairs[batch]
            prefs = self.prefs[torch.as_tensor(batch, device=self.prefs.device)]
            r1, r2 = self._returns(pairs[:, 0]), self._returns(pairs[:, 1])
            loss = bradley_terry_loss(r1, r2, prefs)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.step += 1
            losses.append(float(loss.detach()))
            decided = prefs != 0.5
            agree = ((r1 > r2) == (prefs > 0.5)) & decided
            correct += float(agree.sum())
            counted += int(decided.sum())
        self.net.eval()
        return {
            "loss": float(np.mean(losses)),
            "accuracy": correct / counted if counted else float("nan"),
        }

    def calibrate(self) -> None:
        """Fit the net's normalisation statistics on all collected transitions.

        ``predict_processed`` with ``update_stats=True`` over the whole data set
        folds it into every normalisation layer of the wrapper stack, so a
        normalised net starts policy training already standardised.
        """
        self.net.predict_processed(*self.fragments.flat(), update_stats=True)


@dataclasses.dataclass
class LearnResult:
    """What :func:`learn_reward` produced."""

    env_id: str
    config: Any
    seed: int
    history: list[dict[str, Any]]
    seconds: float
    reward_path: str | None = None
    metrics_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (the metrics file's contents)."""
        return {"kind": "learn", **dataclasses.asdict(self)}


#: The reward net ``learn_reward`` builds when no config is given.
DEFAULT_CONFIG: Any = {
    "net": "BasicRewardNet",
    "kwargs": {"hid_sizes": [64, 64]},
    "wrappers": ["NormalizedRewardNet"],
}


def learn_reward(
    env_id: str,
    config: Any = None,
    *,
    seed: int = 0,
    n_fragments: int = 600,
    fragment_length: int = 20,
    n_comparisons: int = 3000,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    teacher: SyntheticTeacher | None = None,
    n_envs: int = 8,
    out_dir: str | Path | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[RewardNet, LearnResult]:
    """Learn a reward net for ``env_id`` from synthetic preferences.

    Fragments come from a uniformly random policy. After training, the net's
    normalisation statistics (if it has any) are fitted on all collected
    transitions, and the net is saved in the safe format.

    Args:
        env_id: A gymnasium environment id.
        config: The net and its wrappers, as for
            :func:`rewardnets.build_reward_net`; :data:`DEFAULT_CONFIG` if None.
        seed: Seeds the environment, the fragments, the labels and the weights.
        n_fragments: Fragments to collect.
        fragment_length: Transitions per fragment.
        n_comparisons: Labelled pairs of fragments.
        epochs: Passes over the labelled pairs.
        lr: Adam learning rate.
        batch_size: Pairs per gradient step.
        teacher: The synthetic teacher; a perfect one if None.
        n_envs: Parallel environments for collecting fragments.
        out_dir: Where ``reward.rn`` and ``metrics.json`` go; nothing is written
            when None.
        progress: Called after each epoch with ``(epoch, metrics)``.

    Returns:
        The trained net and the run's metrics.
    """
    from rewardnets import build_reward_net
    from rewardnets.util import make_vec_env

    start = time.perf_counter()
    config = DEFAULT_CONFIG if config is None else config
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    venv = make_vec_env(env_id, rng=rng, n_envs=n_envs)
    net = build_reward_net(config, venv.observation_space, venv.action_space)
    fragments = collect_fragments(venv, n_fragments, fragment_length, rng)
    venv.close()
    trainer = PreferenceTrainer(
        net,
        fragments,
        teacher or SyntheticTeacher(),
        rng,
        n_comparisons=n_comparisons,
        lr=lr,
        batch_size=batch_size,
    )
    history = []
    for epoch in range(epochs):
        metrics = trainer.train_epoch()
        history.append({"step": trainer.step, **metrics})
        if progress is not None:
            progress(epoch + 1, metrics)
    trainer.calibrate()
    result = LearnResult(env_id, config, seed, history, time.perf_counter() - start)
    if out_dir is not None:
        from rewardnets.serialize import save

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        save(net, out / "reward.rn")
        result.reward_path = str(out / "reward.rn")
        result.metrics_path = str(out / "metrics.json")
        (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2))
    return net, result
