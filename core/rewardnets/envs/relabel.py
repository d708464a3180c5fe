"""Relabel the rewards stored in an off-policy replay buffer.

Off-policy algorithms (SAC, TD3, DQN…) keep old transitions in a replay
buffer together with the reward they got when they were collected. When the
learned reward changes — a reward net trains on, or
:meth:`RewardVecEnvWrapper.set_reward_fn` swaps it — those rewards go stale.
:func:`relabel_replay_buffer` recomputes them with the current reward function;
:class:`RelabelRewardCallback` does so during ``model.learn``, right before
the gradient steps that read the buffer.

This module imports Stable-Baselines3; ``import rewardnets`` does not import it
until it is first used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from rewardnets.envs.reward_wrapper import RewardFn, RewardVecEnvWrapper, call_reward_fn

__all__ = ["RelabelRewardCallback", "relabel_replay_buffer"]


def _resolve_reward_fn(reward_fn: RewardFn | RewardVecEnvWrapper) -> RewardFn:
    if isinstance(reward_fn, RewardVecEnvWrapper):
        return reward_fn.reward_fn
    if not callable(reward_fn):
        raise TypeError(
            "reward_fn must be a reward function (obs, acts, next_obs, dones) -> rewards "
            f"or a RewardVecEnvWrapper; got {type(reward_fn).__name__}."
        )
    return reward_fn


def _valid_rows(buffer: ReplayBuffer) -> np.ndarray:
    """Indices along the buffer's first axis that hold complete transitions."""
    if not buffer.full:
        return np.arange(buffer.pos)
    rows = np.arange(buffer.buffer_size)
    if buffer.optimize_memory_usage:
        # Row `pos` is the oldest transition, but its observation has been
        # overwritten by the next observation of the newest one; SB3 never
        # samples it either.
        rows = rows[rows != buffer.pos]
    return rows


def _rows_to_batch(array: np.ndarray, rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Take ``rows`` of a ``(buffer_size, n_envs, ...)`` array as a ``(batch, *shape)`` batch."""
    taken = array[rows]
    return taken.reshape((taken.shape[0] * taken.shape[1], *shape))


def _obs_batch(
    store: np.ndarray | dict[str, np.ndarray],
    rows: np.ndarray,
    space: spaces.Space[Any],
) -> np.ndarray | dict[str, np.ndarray]:
    if isinstance(store, dict):
        assert isinstance(space, spaces.Dict)
        return {
            key: _rows_to_batch(array, rows, space.spaces[key].shape or ())
            for key, array in store.items()
        }
    return _rows_to_batch(store, rows, space.shape or ())


def _unscale(actions: np.ndarray, space: spaces.Box) -> np.ndarray:
    # The same arithmetic as SB3's ``BasePolicy.unscale_action``, so that the
    # actions are bit-for-bit those the env received.
    low, high = space.low, space.high
    return low + (0.5 * (actions + 1.0) * (high - low))


def _chunks(rows: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def relabel_replay_buffer(
    target: ReplayBuffer | OffPolicyAlgorithm,
    reward_fn: RewardFn | RewardVecEnvWrapper,
    *,
    scaled_actions: bool | None = None,
    chunk_size: int = 4096,
) -> int:
    """Recompute the stored rewards of a replay buffer with ``reward_fn``.

    Only the filled part of the buffer is touched (rows ``[0, pos)``, or all
    rows once it is ``full``). The transitions are fed to ``reward_fn`` as the
    env wrapper would: observations and actions in the env's shapes (dicts of
    arrays for a ``DictReplayBuffer``), ``next_obs`` being the true last
    observation at episode ends, ``dones`` as booleans. With
    ``optimize_memory_usage=True`` SB3 keeps no separate next observations: the
    next observation of an episode's last transition is then the next
    episode's first one, exactly what SB3 trains on; the one row whose
    observation has been overwritten is skipped.

    Args:
        target: An SB3 off-policy model (its ``replay_buffer`` is relabelled)
            or a ``ReplayBuffer`` / ``DictReplayBuffer`` itself.
        reward_fn: The reward function, or a :class:`RewardVecEnvWrapper`
            whose current ``reward_fn`` is used. A ``NormalizedRewardNet``
            should be passed as
            ``functools.partial(net.predict_processed, update_stats=False)`` so
            that relabelling does not count old transitions again.
        scaled_actions: Whether the buffer holds Box actions rescaled to
            ``[-1, 1]``, as SB3's off-policy algorithms store them; they are
            mapped back to the action space before calling ``reward_fn``.
            Inferred when ``target`` is a model; required for a bare buffer
            with a Box action space.
        chunk_size: About how many transitions ``reward_fn`` gets per call.

    Returns:
        The number of transitions relabelled.

    Raises:
        TypeError: ``target`` is neither an off-policy model nor a replay
            buffer (on-policy rollout buffers are refilled every rollout and
            need no relabelling).
        ValueError: ``scaled_actions`` is missing for a bare buffer with a Box
            action space, or given for a non-Box one.
        rewardnets.envs.reward_wrapper.RewardFnError: ``reward_fn`` raised or
            returned the wrong shape or non-finite rewards.
    """
    fn = _resolve_reward_fn(reward_fn)
    if isinstance(target, OffPolicyAlgorithm):
        buffer = target.replay_buffer
        if buffer is None:
            raise ValueError(f"The {type(target).__name__} model has no replay buffer yet.")
        if scaled_actions is None:
            scaled_actions = isinstance(target.action_space, spaces.Box)
    elif isinstance(target, ReplayBuffer):
        buffer = target
    else:
        raise TypeError(
            "relabel_replay_buffer expects an SB3 off-policy model (SAC, TD3, DQN...) or a "
            f"ReplayBuffer/DictReplayBuffer; got {type(target).__name__}. On-policy rollout "
            "buffers are refilled every rollout, so there is nothing stale to relabel."
        )
    action_space = buffer.action_space
    if scaled_actions is None:
        if isinstance(action_space, spaces.Box):
            raise ValueError(
                "Cannot tell whether this buffer's Box actions are rescaled to [-1, 1]. "
                "Pass scaled_actions=True for a buffer filled by an SB3 off-policy "
                "algorithm (SAC, TD3, DDPG store rescaled actions), False if it holds the "
                "actions the env received, or pass the model instead of its buffer."
            )
        scaled_actions = False
    if scaled_actions and not isinstance(action_space, spaces.Box):
        raise ValueError(
            f"scaled_actions=True needs a Box action space; the buffer's is {action_space}."
        )
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}.")

    rows = _valid_rows(buffer)
    n_envs = buffer.n_envs
    obs_space = buffer.observation_space
    is_dict = isinstance(buffer, DictReplayBuffer)
    for chunk in _chunks(rows, max(1, chunk_size // n_envs)):
        batch = len(chunk) * n_envs
        obs = _obs_batch(buffer.observations, chunk, obs_space)
        if is_dict or not buffer.optimize_memory_usage:
            next_obs = _obs_batch(buffer.next_observations, chunk, obs_space)
        else:
            next_obs = _obs_batch(buffer.observations, (chunk + 1) % buffer.buffer_size, obs_space)
        acts = _rows_to_batch(buffer.actions, chunk, action_space.shape or ())
        if scaled_actions:
            assert isinstance(action_space, spaces.Box)
            acts = _unscale(acts, action_space)
        dones = _rows_to_batch(buffer.dones, chunk, ()).astype(bool)
        rewards = call_reward_fn(
            fn,
            obs,
            acts,
            next_obs,
            dones,
            batch_size=batch,
            context=f"one reward per stored transition ({len(chunk)} rows x {n_envs} envs)",
        )
        buffer.rewards[chunk] = rewards.reshape(len(chunk), n_envs)
    return int(len(rows) * n_envs)


class RelabelRewardCallback(BaseCallback):
    """Keep an off-policy model's replay buffer labelled with the current reward.

    Relabelling happens at the end of a rollout, right before the gradient
    steps that sample the buffer, when

    * ``reward_fn`` is a :class:`RewardVecEnvWrapper` whose reward function
      has been swapped since the last relabelling (the first rollout end after
      the callback is made counts as such, since the buffer may hold rewards
      of an earlier function), or
    * ``every_n_steps`` env steps (``model.num_timesteps``) have passed since
      the last one — use this when the reward function changes in place, e.g.
      a reward net that keeps training.

    Args:
        reward_fn: A :class:`RewardVecEnvWrapper` (its current ``reward_fn`` is
            used, and swaps are noticed) or a reward function.
        every_n_steps: Also relabel after this many env steps. Required when
            ``reward_fn`` is a plain function.
        chunk_size: Passed to :func:`relabel_replay_buffer`.
        verbose: SB3 verbosity; at 1 each relabelling is printed.

    Attributes:
        num_relabels: How many times the buffer has been relabelled.
        last_relabel_timestep: ``model.num_timesteps`` at the last relabelling.

    Raises:
        ValueError: ``every_n_steps`` is missing for a plain reward function or
            is not a positive int.
    """

    def __init__(
        self,
        reward_fn: RewardFn | RewardVecEnvWrapper,
        every_n_steps: int | None = None,
        *,
        chunk_size: int = 4096,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        _resolve_reward_fn(reward_fn)  # type check
        if every_n_steps is not None and (
            isinstance(every_n_steps, bool)
            or not isinstance(every_n_steps, int)
            or every_n_steps < 1
        ):
            raise ValueError(
                f"every_n_steps must be a positive int or None, got {every_n_steps!r}."
            )
        if every_n_steps is None and not isinstance(reward_fn, RewardVecEnvWrapper):
            raise ValueError(
                "With a plain reward function nothing tells the callback when the reward "
                "changed: pass every_n_steps, or pass the RewardVecEnvWrapper so that "
                "swapping its reward_fn triggers relabelling."
            )
        self.source = reward_fn
        self.every_n_steps = every_n_steps
        self.chunk_size = chunk_size
        self.num_relabels = 0
        self.last_relabel_timestep = 0
        # Which reward function labelled what the buffer already holds is not
        # known, so a wrapper source triggers one relabelling at the first
        # rollout end; after that, only swaps do.
        self._seen_version: int | None = None

    def _init_callback(self) -> None:
        if not isinstance(self.model, OffPolicyAlgorithm):
            raise TypeError(
                "RelabelRewardCallback relabels a replay buffer, so it needs an off-policy "
                f"model (SAC, TD3, DDPG, DQN...); got {type(self.model).__name__}."
            )

    def _on_training_start(self) -> None:
        self.last_relabel_timestep = self.model.num_timesteps

    def _on_step(self) -> bool:
        return True

    def _due(self) -> bool:
        if (
            isinstance(self.source, RewardVecEnvWrapper)
            and self.source.reward_fn_version != self._seen_version
        ):
            return True
        if self.every_n_steps is not None:
            return self.model.num_timesteps - self.last_relabel_timestep >= self.every_n_steps
        return False

    def relabel(self) -> int:
        """Relabel the model's replay buffer now.

        Returns:
            The number of transitions relabelled.
        """
        assert isinstance(self.model, OffPolicyAlgorithm)
        count = relabel_replay_buffer(self.model, self.source, chunk_size=self.chunk_size)
        if isinstance(self.source, RewardVecEnvWrapper):
            self._seen_version = self.source.reward_fn_version
        self.num_relabels += 1
        self.last_relabel_timestep = self.model.num_timesteps
        self.logger.record("relabel/transitions", count)
        if self.verbose >= 1:
            print(f"Relabelled {count} transitions at step {self.model.num_timesteps}.")
        return count

    def _on_rollout_end(self) -> None:
        if self._due():
            self.relabel()
