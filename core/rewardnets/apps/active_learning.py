"""Preference learning in rounds, with an ensemble that picks its own questions.

Each round (as in Christiano et al., 2017, and PEBBLE/B-Pref): train a policy
on the current reward (from the second round on), collect fragments with it
(the first round uses a uniformly random policy), pick the pairs to ask about
with a query selector, have the synthetic teacher label them, and refit the
reward ensemble on every label so far. The label budget is spent over the
rounds by a schedule; the reward and its statistics are saved after each round.

The reward is ``AddSTDRewardWrapper(RewardEnsemble(members))``, the members
built from one member config (by default a ``BasicRewardNet`` under a
``NormalizedRewardNet``, so each member is standardised). The reward type
``RewardNet_std_added`` gives the mean of the standardised members (``alpha``
0, the default) or an optimistic ``mean + alpha * std`` (``alpha > 0``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rewardnets import RewardNet, registry
from rewardnets.apps.preferences import (
    DEFAULT_CONFIG,
    Fragments,
    bradley_terry_loss,
    collect_fragments,
    fragment_returns,
)
from rewardnets.errors import RewardNetsError

__all__ = [
    "ActiveLearnResult",
    "EnsembleTrainer",
    "RoundAgent",
    "concat_fragments",
    "ensemble_config",
    "label_schedule",
    "learn_reward_active",
    "make_teacher",
]

Teacher = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]


def ensemble_config(member: Any = None, size: int = 3, alpha: float = 0.0) -> dict[str, Any]:
    """Return the config of the reward that :func:`learn_reward_active` trains.

    Args:
        member: The config of one member (:data:`DEFAULT_CONFIG` if None).
        size: The number of members (at least 2).
        alpha: ``default_alpha`` of the ``AddSTDRewardWrapper``.

    Raises:
        RewardNetsError: ``size`` is below 2.
    """
    if not isinstance(size, int) or size < 2:
        raise RewardNetsError(f"An ensemble needs at least 2 members, got {size!r}.")
    member = DEFAULT_CONFIG if member is None else member
    return {
        "net": "RewardEnsemble",
        "kwargs": {"members": [member] * size},
        "wrappers": [{"name": "AddSTDRewardWrapper", "kwargs": {"default_alpha": float(alpha)}}],
    }


def label_schedule(labels: int, rounds: int, schedule: Sequence[int] | None = None) -> list[int]:
    """Return the labels asked for in each round.

    Args:
        labels: The label budget.
        rounds: The number of rounds.
        schedule: Labels per round, summing to ``labels``; None spreads the
            budget evenly, the first rounds taking the remainder.

    Raises:
        RewardNetsError: The budget, the rounds or the schedule do not fit.
    """
    if rounds < 1 or labels < rounds:
        raise RewardNetsError(
            f"Expected rounds >= 1 and at least one label per round, got {labels} labels "
            f"over {rounds} rounds."
        )
    if schedule is None:
        return [labels // rounds + (1 if r < labels % rounds else 0) for r in range(rounds)]
    plan = [int(n) for n in schedule]
    if len(plan) != rounds or sum(plan) != labels or min(plan) < 1:
        raise RewardNetsError(
            f"The schedule must give {rounds} positive label counts summing to {labels}, "
            f"got {list(schedule)}."
        )
    return plan


def make_teacher(teacher: str | Teacher | None = None, **options: Any) -> Teacher:
    """Return a teacher: a registered name built with ``options``, or a callable as is."""
    if teacher is None:
        teacher = "perfect"
    if isinstance(teacher, str):
        factory = registry.resolve("teacher", teacher)
        try:
            return factory(**options)
        except TypeError as exc:
            raise RewardNetsError(
                f"Teacher {teacher!r} does not take the options {options}: {exc}"
            ) from exc
    if options:
        raise RewardNetsError(
            f"Teacher options {sorted(options)} apply to a teacher given by name, "
            f"not to {type(teacher).__name__}."
        )
    return teacher


def concat_fragments(a: Fragments, b: Fragments) -> Fragments:
    """Return the fragments of ``a`` followed by those of ``b`` (same length)."""
    if a.length != b.length:
        raise RewardNetsError(f"Fragments of length {a.length} and {b.length} cannot be pooled.")

    def cat(x: Any, y: Any) -> Any:
        if isinstance(x, dict):
            return {k: cat(x[k], y[k]) for k in x}
        return np.concatenate([x, y])

    return Fragments(*(cat(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)))


def _ensemble_of(net: RewardNet) -> Any:
    node: Any = net
    while not hasattr(node, "members"):
        if not hasattr(node, "base"):
            raise RewardNetsError(
                f"Active preference learning needs a RewardEnsemble in the net, got "
                f"{type(net).__name__} without one."
            )
        node = node.base
    return node


class EnsembleTrainer:
    """Fits every member of an ensemble to the same preferences, each on its own batches.

    Args:
        net: A net with a ``RewardEnsemble`` in its wrapper stack.
        rng: Draws the batches.
        lr: Adam learning rate.
        batch_size: Pairs per gradient step (fewer when fewer are labelled).
        weight_decay: Adam weight decay.
    """

    def __init__(
        self,
        net: RewardNet,
        rng: np.random.Generator,
        *,
        lr: float = 1e-3,
        batch_size: int = 64,
        weight_decay: float = 0.0,
    ) -> None:
        self.net = net
        self.members: list[RewardNet] = list(_ensemble_of(net).members)
        self.optimizers = [
            torch.optim.Adam(m.parameters(), lr=lr, weight_decay=weight_decay) for m in self.members
        ]
        self.rng = rng
        self.batch_size = batch_size
        self.step = 0
        self._inputs: Any = None
        self._length = 0

    def set_fragments(self, fragments: Fragments) -> None:
        """Preprocess the pool of fragments once; later calls index into it."""
        self._inputs = self.net.preprocess(*fragments.flat())
        self._length = fragments.length

    def _returns(self, member: RewardNet, ids: np.ndarray) -> torch.Tensor:
        return fragment_returns(member, self._inputs, self._length, ids)

    def member_returns(self, n_fragments: int) -> np.ndarray:
        """Return each member's predicted return of each pooled fragment, ``(members, n)``."""
        ids = np.arange(n_fragments)
        with torch.no_grad():
            out = [self._returns(m, ids).cpu().numpy() for m in self.members]
        return np.stack(out)

    def fit(self, pairs: np.ndarray, prefs: np.ndarray, steps: int) -> dict[str, float]:
        """Take ``steps`` gradient steps per member on the labelled ``pairs``.

        Returns:
            The mean loss of the last steps and the ensemble's accuracy on the
            decided labels.
        """
        keep = ~np.isnan(prefs)
        pairs, prefs = pairs[keep], prefs[keep]
        if len(pairs) == 0:
            return {"loss": float("nan"), "accuracy": float("nan")}
        target = torch.as_tensor(prefs, dtype=torch.float32, device=self.net.device)
        batch = min(self.batch_size, len(pairs))
        losses: list[float] = []
        for member in self.members:
            member.train()
        for _ in range(steps):
            for member, optimizer in zip(self.members, self.optimizers, strict=True):
                idx = self.rng.integers(len(pairs), size=batch)
                r1 = self._returns(member, pairs[idx, 0])
                r2 = self._returns(member, pairs[idx, 1])
                loss = bradley_terry_loss(r1, r2, target[torch.as_tensor(idx)])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
            self.step += 1
        for member in self.members:
            member.eval()
        with torch.no_grad():
            mean_1 = torch.stack([self._returns(m, pairs[:, 0]) for m in self.members]).mean(0)
            mean_2 = torch.stack([self._returns(m, pairs[:, 1]) for m in self.members]).mean(0)
        decided = prefs != 0.5
        agree = ((mean_1 > mean_2).cpu().numpy() == (prefs > 0.5)) & decided
        tail = losses[-max(1, len(self.members) * 10) :]
        return {
            "loss": float(np.mean(tail)),
            "accuracy": float(agree.sum() / decided.sum()) if decided.any() else float("nan"),
        }

    def calibrate(self, fragments: Fragments) -> None:
        """Fit the members' normalisation layers afresh on the pooled transitions.

        A ``NormalizedRewardNet`` outside the ensemble (from a whole config
        given by the user) is fitted too, after the members.
        """
        batch = fragments.flat()
        # Each round refits on the whole pool: start the statistics afresh.
        for module in self.net.modules():
            reset = getattr(
                getattr(module, "normalize_output_layer", None), "reset_running_stats", None
            )
            if callable(reset):
                reset()
        for member in self.members:
            member.predict_processed(*batch, update_stats=True)
        if hasattr(self.net, "normalize_output_layer"):
            self.net.predict_processed(*batch, update_stats=True)


class RoundAgent:
    """An SB3 policy that keeps learning on the current reward across rounds.

    Args:
        env_id: The gymnasium env.
        net: The reward; its current ``predict_processed`` (statistics frozen)
            is the policy's reward.
        algo: ``"sac"`` or ``"ppo"``.
        seed: Seeds the env and the algorithm.
        alpha: Passed to ``predict_processed`` when non-zero: ``mean + alpha *
            std`` of an ensemble under an ``AddSTDRewardWrapper``.
        algo_kwargs: Overrides of the algorithm's default keyword arguments.
    """

    def __init__(
        self,
        env_id: str,
        net: RewardNet,
        algo: str,
        seed: int,
        alpha: float,
        algo_kwargs: dict[str, Any] | None = None,
    ) -> None:
        from rewardnets.apps.policy_training import ALGORITHMS, default_algo_kwargs
        from rewardnets.reward_wrapper import RewardVecEnvWrapper
        from rewardnets.util import make_vec_env

        self.net = net
        self.alpha = alpha
        venv = make_vec_env(env_id, rng=np.random.default_rng(seed + 1), n_envs=1)
        self.venv = RewardVecEnvWrapper(venv, self.reward, reset_on_init=False)
        kwargs = {**default_algo_kwargs(algo), **(algo_kwargs or {})}
        self.model = ALGORITHMS[algo]("MlpPolicy", self.venv, seed=seed, verbose=0, **kwargs)

    def reward(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        """The current reward, optimistic by ``alpha`` standard deviations."""
        options: dict[str, Any] = {"update_stats": False}
        if self.alpha:
            options["alpha"] = self.alpha
        return self.net.predict_processed(obs, acts, next_obs, dones, **options)

    def relabel(self) -> None:
        """Recompute the rewards in an off-policy replay buffer with the current reward."""
        buffer = getattr(self.model, "replay_buffer", None)
        if buffer is None or getattr(buffer, "next_observations", None) is None:
            return
        n = buffer.buffer_size if buffer.full else buffer.pos
        if n == 0:
            return
        obs = buffer.observations[:n]
        flat = obs.reshape(-1, *obs.shape[2:])
        nxt = buffer.next_observations[:n].reshape(flat.shape)
        acts = buffer.actions[:n].reshape(-1, *buffer.actions.shape[2:])
        if isinstance(self.model.action_space, gym.spaces.Box):
            # SB3 stores Box actions scaled to [-1, 1]; the reward saw the env's.
            acts = self.model.policy.unscale_action(acts)
        dones = buffer.dones[:n].reshape(-1)
        rewards = self.reward(flat, acts, nxt, dones)
        buffer.rewards[:n] = rewards.reshape(buffer.rewards[:n].shape)

    def learn(self, steps: int) -> None:
        """Train for ``steps`` more environment steps on the current reward."""
        self.relabel()
        self.model.learn(steps, reset_num_timesteps=False)

    def policy(self, obs: Any) -> np.ndarray:
        """Stochastic actions of the current policy."""
        actions, _ = self.model.predict(obs, deterministic=False)
        return np.asarray(actions)


@dataclasses.dataclass
class ActiveLearnResult:
    """What :func:`learn_reward_active` produced."""

    env_id: str
    config: Any
    seed: int
    history: list[dict[str, Any]]
    seconds: float
    labels: int
    selector: str
    teacher: str
    reward_path: str | None = None
    metrics_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (the metrics file's contents)."""
        return {"kind": "learn", **dataclasses.asdict(self)}


def learn_reward_active(
    env_id: str,
    config: Any = None,
    *,
    seed: int = 0,
    labels: int = 100,
    rounds: int = 3,
    schedule: Sequence[int] | None = None,
    selector: str = "disagreement",
    teacher: str | Teacher | None = "perfect",
    teacher_options: dict[str, Any] | None = None,
    ensemble_size: int = 3,
    fragments_per_round: int = 200,
    fragment_length: int = 20,
    candidates_per_query: int = 10,
    train_steps: int = 300,
    agent_steps: int = 2000,
    explore_alpha: float = 0.0,
    algo: str = "auto",
    algo_kwargs: dict[str, Any] | None = None,
    lr: float = 1e-3,
    batch_size: int = 64,
    n_envs: int = 8,
    torch_threads: int | None = 1,
    out_dir: str | Path | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[RewardNet, ActiveLearnResult]:
    """Learn a reward for ``env_id`` from at most ``labels`` synthetic preferences, in rounds.

    Args:
        env_id: A gymnasium environment id.
        config: The config of one member (:data:`DEFAULT_CONFIG` if None), or a
            whole net with a ``RewardEnsemble`` in it.
        seed: Seeds the envs, fragments, queries, labels, weights and the policy.
        labels: The label budget: pairs the teacher is asked about (skipped
            ones count).
        rounds: Rounds of collect, select, label, refit.
        schedule: Labels per round; even by default.
        selector: A registered query selector (``uniform``, ``disagreement``,
            ``entropy``...).
        teacher: A registered teacher name, or a callable teacher.
        teacher_options: Options of a teacher given by name.
        ensemble_size: Members built from a member config.
        fragments_per_round: Fragments collected each round.
        fragment_length: Transitions per fragment.
        candidates_per_query: Candidate pairs drawn per label asked for.
        train_steps: Gradient steps per member after each round.
        agent_steps: Policy-training steps before each round after the first.
        explore_alpha: The policy trains on ``mean + explore_alpha * std`` of
            the ensemble (optimistic exploration when positive).
        algo: ``"auto"`` (SAC for Box actions, else PPO), ``"sac"`` or ``"ppo"``.
        algo_kwargs: Overrides of that algorithm's keyword arguments.
        lr: Adam learning rate of the members.
        batch_size: Pairs per gradient step.
        n_envs: Parallel environments for collecting fragments.
        torch_threads: Torch threads while learning, restored afterwards: the
            nets are small, and one thread is fastest, the more so on a shared
            machine. None leaves torch's setting alone.
        out_dir: Where ``reward.rn``, ``metrics.json`` and ``round_<k>/`` go.
        progress: Called after each round with ``(round, metrics)``.

    Returns:
        The trained net and the run's metrics.

    Raises:
        RewardNetsError: A bad budget, schedule, selector result or config.
    """
    from rewardnets import build_reward_net
    from rewardnets.apps.policy_training import resolve_algo
    from rewardnets.serialize import save
    from rewardnets.util import make_vec_env

    with _torch_threads(torch_threads):
        start = time.perf_counter()
        plan = label_schedule(labels, rounds, schedule)
        if candidates_per_query < 1 or train_steps < 1 or agent_steps < 0:
            raise RewardNetsError(
                "Expected candidates_per_query >= 1, train_steps >= 1 and agent_steps >= 0, got "
                f"{candidates_per_query}, {train_steps} and {agent_steps}."
            )
        select = registry.resolve("query_selector", selector)
        label = make_teacher(teacher, **(teacher_options or {}))
        teacher_name = teacher if isinstance(teacher, str) else type(teacher).__name__
        is_ensemble = isinstance(config, dict) and config.get("net") == "RewardEnsemble"
        full_config = config if is_ensemble else ensemble_config(config, ensemble_size)
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        venv = make_vec_env(env_id, rng=rng, n_envs=n_envs)
        net = build_reward_net(full_config, venv.observation_space, venv.action_space)
        trainer = EnsembleTrainer(net, rng, lr=lr, batch_size=batch_size)
        out = None if out_dir is None else Path(out_dir)
        agent: RoundAgent | None = None
        pool: Fragments | None = None
        pairs = np.zeros((0, 2), dtype=np.int64)
        prefs = np.zeros(0, dtype=np.float32)
        history: list[dict[str, Any]] = []
        try:
            for round_index, n_queries in enumerate(plan):
                policy = None
                if round_index > 0 and agent_steps > 0:
                    if agent is None:
                        chosen_algo = resolve_algo(env_id, algo)
                        agent = RoundAgent(
                            env_id, net, chosen_algo, seed, explore_alpha, algo_kwargs
                        )
                    agent.learn(agent_steps)
                    policy = agent.policy
                new = collect_fragments(venv, fragments_per_round, fragment_length, rng, policy)
                offset = 0 if pool is None else pool.n
                pool = new if pool is None else concat_fragments(pool, new)
                trainer.set_fragments(pool)
                candidates = _candidate_pairs(new.n, n_queries * candidates_per_query, rng) + offset
                chosen = _check_selection(
                    select(candidates, trainer.member_returns(pool.n), n_queries, rng),
                    len(candidates),
                    n_queries,
                    selector,
                )
                asked = candidates[chosen]
                answers = _check_labels(
                    label(pool.true_rewards[asked[:, 0]], pool.true_rewards[asked[:, 1]], rng),
                    len(asked),
                    str(teacher_name),
                )
                pairs = np.concatenate([pairs, asked])
                prefs = np.concatenate([prefs, answers])
                metrics = trainer.fit(pairs, prefs, train_steps)
                trainer.calibrate(pool)
                # The history holds numbers only (it is plotted); the round's file says more.
                record = {
                    "step": trainer.step,
                    "labels": len(prefs),
                    "fragment_return_mean": float(new.true_rewards.sum(axis=1).mean()),
                    **metrics,
                }
                history.append(record)
                if out is not None:
                    folder = out / f"round_{round_index + 1}"
                    folder.mkdir(parents=True, exist_ok=True)
                    save(net, folder / "reward.rn")
                    details = {
                        "round": round_index + 1,
                        "fragments_from": "random policy" if policy is None else "current policy",
                        "asked": len(asked),
                        "skipped": int(np.isnan(prefs).sum()),
                        "reward_path": str(folder / "reward.rn"),
                        **record,
                    }
                    (folder / "metrics.json").write_text(json.dumps(details, indent=2))
                if progress is not None:
                    progress(round_index + 1, metrics)
        finally:
            venv.close()
            if agent is not None:
                agent.venv.close()
        result = ActiveLearnResult(
            env_id,
            full_config,
            seed,
            history,
            time.perf_counter() - start,
            len(prefs),
            selector,
            str(teacher_name),
        )
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            save(net, out / "reward.rn")
            result.reward_path = str(out / "reward.rn")
            result.metrics_path = str(out / "metrics.json")
            (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2))
        return net, result


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch threads (None: unchanged), restoring the setting after."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _candidate_pairs(n_fragments: int, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Draw up to ``n_pairs`` distinct pairs of distinct fragments among ``n_fragments``."""
    if n_fragments < 2:
        raise RewardNetsError(f"Need at least 2 fragments per round, got {n_fragments}.")
    first = rng.integers(n_fragments, size=n_pairs)
    second = (first + rng.integers(1, n_fragments, size=n_pairs)) % n_fragments
    unique = np.unique(np.stack([first, second], axis=1), axis=0)
    return unique[rng.permutation(len(unique))]


def _check_labels(labels: Any, n_pairs: int, name: str) -> np.ndarray:
    answers = np.asarray(labels, dtype=np.float32)
    known = answers[~np.isnan(answers)]
    if answers.shape != (n_pairs,) or np.any((known < 0) | (known > 1)):
        raise RewardNetsError(
            f"Teacher {name!r} must return {n_pairs} preference probabilities in [0, 1] "
            f"(or nan for a skipped pair), got {labels!r}."
        )
    return answers


def _check_selection(chosen: Any, n_candidates: int, n_queries: int, name: str) -> np.ndarray:
    picked = np.asarray(chosen)
    want = min(n_queries, n_candidates)
    if (
        picked.dtype.kind not in "iu"
        or picked.shape != (want,)
        or len(np.unique(picked)) != want
        or (want and (picked.min() < 0 or picked.max() >= n_candidates))
    ):
        raise RewardNetsError(
            f"Query selector {name!r} must return {want} distinct integer indices in "
            f"[0, {n_candidates}), got {picked!r}."
        )
    return picked
