"""Put a learned reward into an environment: :class:`RewardVecEnvWrapper`.

The wrapper sits around any Stable-Baselines3 ``VecEnv`` and replaces the
reward of every step by ``reward_fn(obs, acts, next_obs, dones)``, a function
of numpy batches such as a reward net's ``predict_processed``. The env's own
reward is kept in ``info["original_env_rew"]``.

This module imports Stable-Baselines3; ``import rewardnets`` does not import it
until :class:`RewardVecEnvWrapper` is first used.
"""

from __future__ import annotations

import functools
import math
import types
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from rewardnets.errors import RewardNetsError

__all__ = [
    "InvalidRewardError",
    "RewardFn",
    "RewardFnError",
    "RewardVecEnvWrapper",
    "WrappedRewardCallback",
    "WrappedRewardLogCallback",
    "call_reward_fn",
    "describe_reward_fn",
]

#: A reward function: ``(obs, acts, next_obs, dones) -> rewards``, numpy batches
#: in, a float array of shape ``(batch,)`` out. Observations of a Dict space
#: are dicts of arrays.
RewardFn = Callable[[Any, Any, Any, Any], np.ndarray]

#: The logger key under which :meth:`RewardVecEnvWrapper.make_log_callback`
#: records the mean wrapped return of recent episodes.
DEFAULT_LOG_KEY = "rollout/ep_rew_wrapped_mean"


class RewardFnError(RewardNetsError, RuntimeError):
    """A reward function raised, or returned something that is not a reward batch.

    When the reward function itself raised, the original exception is chained
    as ``__cause__``.
    """


class InvalidRewardError(RewardFnError, ValueError):
    """A reward function returned the wrong shape, a non-numeric or a non-finite value."""


def describe_reward_fn(fn: Callable[..., Any]) -> str:
    """Name a reward function for error messages.

    Bound methods are named after the class of their instance (so
    ``net.predict_processed`` of a ``NormalizedRewardNet`` reads
    ``NormalizedRewardNet.predict_processed``); ``functools.partial`` objects
    show their bound arguments; plain functions show their qualified name.

    Args:
        fn: The callable.

    Returns:
        A short, human-readable name.
    """
    if isinstance(fn, functools.partial):
        parts = [describe_reward_fn(fn.func)]
        parts += [repr(arg) for arg in fn.args]
        parts += [f"{key}={value!r}" for key, value in fn.keywords.items()]
        return f"functools.partial({', '.join(parts)})"
    owner = getattr(fn, "__self__", None)
    func = getattr(fn, "__func__", None)
    if owner is not None and func is not None and not isinstance(owner, types.ModuleType):
        owner_type = owner if isinstance(owner, type) else type(owner)
        return f"{owner_type.__qualname__}.{getattr(func, '__name__', '?')}"
    qualname = getattr(fn, "__qualname__", None)
    if isinstance(qualname, str):
        module = getattr(fn, "__module__", None)
        if isinstance(module, str) and module not in ("builtins", "__main__"):
            return f"{module}.{qualname}"
        return qualname
    return f"{type(fn).__qualname__} instance"


def _shape_of(value: Any) -> str:
    if isinstance(value, Mapping):
        inner = ", ".join(f"{key!r}: {_shape_of(sub)}" for key, sub in value.items())
        return "{" + inner + "}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_shape_of(sub) for sub in value) + ")"
    return str(tuple(np.shape(value)))


def call_reward_fn(
    reward_fn: Callable[..., Any],
    obs: Any,
    acts: Any,
    next_obs: Any,
    dones: np.ndarray,
    *,
    batch_size: int,
    context: str = "",
) -> np.ndarray:
    """Call a reward function on a batch and check what it returns.

    Args:
        reward_fn: The reward function, ``(obs, acts, next_obs, dones) -> rewards``.
        obs: Observations of the batch.
        acts: Actions of the batch.
        next_obs: Next observations of the batch.
        dones: Episode-end flags of the batch, shape ``(batch_size,)``.
        batch_size: The number of transitions, hence of rewards expected.
        context: What the batch is, for error messages (e.g. "one reward per
            environment (n_envs=3)").

    Returns:
        The rewards, a float32 array of shape ``(batch_size,)``.

    Raises:
        RewardFnError: ``reward_fn`` raised; the original exception is chained.
        InvalidRewardError: ``reward_fn`` returned a value of the wrong shape,
            a non-numeric dtype, or a non-finite reward.
    """
    # The success path does the checks and nothing else: this runs on every
    # environment step. Names and messages are only built for an error.
    try:
        result = reward_fn(obs, acts, next_obs, dones)
    except Exception as err:
        raise RewardFnError(
            f"Reward function {describe_reward_fn(reward_fn)} raised {type(err).__name__}: "
            f"{err}. It was called with a batch of {batch_size} transitions: obs "
            f"{_shape_of(obs)}, acts {_shape_of(acts)}, next_obs {_shape_of(next_obs)}, "
            f"dones {_shape_of(dones)}; it should return rewards of "
            f"{_expected(batch_size, context)}."
        ) from err
    if isinstance(result, np.ndarray):
        rewards = result
    else:
        rewards = _as_array(result, reward_fn, batch_size, context)
    if rewards.dtype.kind not in "biuf":
        raise InvalidRewardError(
            f"Reward function {describe_reward_fn(reward_fn)} returned an array of dtype "
            f"{rewards.dtype}; expected real numbers (a float array of "
            f"{_expected(batch_size, context)})."
        )
    if rewards.shape != (batch_size,):
        raise _wrong_shape(rewards, reward_fn, batch_size, context)
    rewards = rewards.astype(np.float32, copy=True)
    # One reduction: a non-finite value makes the sum non-finite (a float64 sum
    # of float32 values cannot overflow).
    if not math.isfinite(rewards.sum(dtype=np.float64)):
        bad = np.flatnonzero(~np.isfinite(rewards))
        if bad.size:
            shown = bad[:10]
            raise InvalidRewardError(
                f"Reward function {describe_reward_fn(reward_fn)} returned non-finite "
                f"rewards at batch indices {shown.tolist()}"
                f"{' ...' if bad.size > len(shown) else ''}: "
                f"{np.asarray(result)[shown].tolist()}; expected finite float32 rewards "
                f"of {_expected(batch_size, context)}."
            )
    return rewards


def _expected(batch_size: int, context: str) -> str:
    return f"shape ({batch_size},)" + (f", {context}" if context else "")


def _as_array(
    result: Any, reward_fn: Callable[..., Any], batch_size: int, context: str
) -> np.ndarray:
    name = describe_reward_fn(reward_fn)
    if result is None:
        raise InvalidRewardError(
            f"Reward function {name} returned None; expected a numpy array of "
            f"{_expected(batch_size, context)}."
        )
    try:
        return np.asarray(result)
    except Exception as err:
        raise InvalidRewardError(
            f"Reward function {name} returned a {type(result).__name__} that numpy cannot "
            f"convert to an array ({err}); expected a numpy array of "
            f"{_expected(batch_size, context)}."
        ) from err


def _wrong_shape(
    rewards: np.ndarray, reward_fn: Callable[..., Any], batch_size: int, context: str
) -> InvalidRewardError:
    hint = ""
    if rewards.shape == (batch_size, 1):
        hint = " Squeeze the last axis (e.g. `rewards.reshape(-1)`)."
    elif rewards.ndim == 0:
        hint = " It returned a single number; return one reward per transition."
    return InvalidRewardError(
        f"Reward function {describe_reward_fn(reward_fn)} returned an array of shape "
        f"{rewards.shape}; expected {_expected(batch_size, context)}. Rewards are never "
        f"broadcast.{hint}"
    )


def _copy_obs(obs: Any) -> Any:
    """Copy a batch of observations, array by array for Dict and Tuple spaces."""
    if isinstance(obs, Mapping):
        return {key: np.array(value, copy=True) for key, value in obs.items()}
    if isinstance(obs, tuple):
        return tuple(np.array(value, copy=True) for value in obs)
    return np.array(obs, copy=True)


def _set_row(batch: Any, index: int, value: Any) -> None:
    """Write one env's observation ``value`` into row ``index`` of ``batch``."""
    if isinstance(batch, Mapping):
        if not isinstance(value, Mapping):
            raise RewardNetsError(
                "The VecEnv returned Dict observations but a terminal_observation of type "
                f"{type(value).__name__}; expected a dict with keys {sorted(batch)}."
            )
        for key, array in batch.items():
            array[index] = value[key]
    elif isinstance(batch, tuple):
        for array, sub in zip(batch, value, strict=True):
            array[index] = sub
    else:
        batch[index] = value


class RewardVecEnvWrapper(VecEnvWrapper):
    """Replace a ``VecEnv``'s reward by a reward function of the transitions.

    Each step, the reward given to the agent is
    ``reward_fn(obs, acts, next_obs, dones)`` on the batch of ``n_envs``
    transitions. When an episode ends, SB3 vector envs reset it at once and
    return the first observation of the next episode; the wrapper passes the
    true last observation, ``info["terminal_observation"]``, as that env's
    ``next_obs`` instead (the observation returned to the agent stays the
    reset one). The env's own reward is kept in ``info["original_env_rew"]``.

    As in ``imitation``, the wrapper resets ``venv`` when it is made, so it can
    be stepped at once; pass ``reset_on_init=False`` to skip that reset (then
    call :meth:`reset` before the first step, as SB3 algorithms do).

    Args:
        venv: The vector env to wrap (``DummyVecEnv``, ``SubprocVecEnv`` or any
            other ``VecEnv``).
        reward_fn: The reward function, e.g. ``reward_net.predict_processed``.
            It gets numpy batches (dicts of arrays for Dict observations) and
            must return ``n_envs`` finite rewards, shape ``(n_envs,)``.
        ep_history: How many of the latest finished episodes'
            wrapped-reward returns :attr:`episode_rewards` keeps.
        reset_on_init: Reset ``venv`` now (the default, as ``imitation`` does).

    Attributes:
        episode_rewards: Returns, under the wrapped reward, of the latest
            ``ep_history`` finished episodes, oldest first.

    Raises:
        TypeError: ``venv`` is not a ``VecEnv`` or ``reward_fn`` is not callable.
        ValueError: ``ep_history`` is not a positive integer.
    """

    episode_rewards: deque[float]

    def __init__(
        self,
        venv: VecEnv,
        reward_fn: RewardFn,
        ep_history: int = 100,
        *,
        reset_on_init: bool = True,
    ) -> None:
        if not isinstance(venv, VecEnv):
            raise TypeError(
                "RewardVecEnvWrapper wraps a Stable-Baselines3 VecEnv; got "
                f"{type(venv).__name__}. Build one with rewardnets.make_vec_env(...) or "
                "stable_baselines3.common.vec_env.DummyVecEnv([lambda: env])."
            )
        if isinstance(ep_history, bool) or not isinstance(ep_history, int) or ep_history < 1:
            raise ValueError(f"ep_history must be a positive int, got {ep_history!r}.")
        super().__init__(venv)
        self._reward_fn = self._check_callable(reward_fn)
        self._reward_fn_version = 0
        self.episode_rewards = deque(maxlen=ep_history)
        self._num_episodes = 0
        self._returns = np.zeros(self.num_envs, dtype=np.float64)
        self._old_obs: Any = None
        self._actions: np.ndarray | None = None
        self._context = f"one reward per environment (n_envs={self.num_envs})"
        if reset_on_init:
            self.reset()

    @staticmethod
    def _check_callable(reward_fn: Any) -> RewardFn:
        if not callable(reward_fn):
            raise TypeError(
                "reward_fn must be callable as reward_fn(obs, acts, next_obs, dones) -> "
                f"rewards, e.g. reward_net.predict_processed; got {type(reward_fn).__name__}."
            )
        return reward_fn

    @property
    def reward_fn(self) -> RewardFn:
        """The current reward function; assign to swap it (also :meth:`set_reward_fn`)."""
        return self._reward_fn

    @reward_fn.setter
    def reward_fn(self, reward_fn: RewardFn) -> None:
        self._reward_fn = self._check_callable(reward_fn)
        self._reward_fn_version += 1

    def set_reward_fn(self, reward_fn: RewardFn) -> None:
        """Swap the reward function from the next step on.

        The returns of episodes running at the time of the swap mix the old and
        the new reward. Transitions already in a replay buffer keep their old
        rewards; :class:`rewardnets.envs.relabel.RelabelRewardCallback` relabels them.

        Args:
            reward_fn: The new reward function.
        """
        self.reward_fn = reward_fn

    @property
    def reward_fn_version(self) -> int:
        """How many times the reward function has been swapped."""
        return self._reward_fn_version

    @property
    def num_episodes(self) -> int:
        """How many episodes have finished since the wrapper was made."""
        return self._num_episodes

    def reset(self) -> VecEnvObs:
        """Reset every env; partial returns of unfinished episodes are dropped."""
        obs = self.venv.reset()
        self._old_obs = _copy_obs(obs)
        self._returns[:] = 0.0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Send ``actions`` to the envs, remembering them for the reward function."""
        if self._old_obs is None:
            raise RuntimeError(
                "RewardVecEnvWrapper.step was called before reset(): the wrapper needs the "
                "current observations to compute rewards. Call reset() on the wrapper first."
            )
        self._actions = np.array(actions, copy=True)
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """Step the envs and replace their rewards by the reward function's.

        Raises:
            RewardFnError: The reward function raised (chained).
            InvalidRewardError: It returned the wrong shape or non-finite values.
            RewardNetsError: An env ended without ``info["terminal_observation"]``.
        """
        obs, env_rews, dones, infos = self.venv.step_wait()
        dones = np.asarray(dones, dtype=bool)
        ended = np.flatnonzero(dones).tolist()
        next_obs = _copy_obs(obs)
        for index in ended:
            terminal = infos[index].get("terminal_observation")
            if terminal is None:
                raise RewardNetsError(
                    f"Env {index} of the wrapped VecEnv ended an episode without "
                    "info['terminal_observation']; RewardVecEnvWrapper needs it as the "
                    "episode's last next_obs. SB3's DummyVecEnv and SubprocVecEnv set it."
                )
            _set_row(next_obs, index, terminal)
        try:
            rews = call_reward_fn(
                self._reward_fn,
                self._old_obs,
                self._actions,
                next_obs,
                dones,
                batch_size=self.num_envs,
                context=self._context,
            )
        finally:
            # The envs have stepped either way; the next transition starts here.
            # Without an episode end, next_obs is already a copy of obs: reuse it.
            self._old_obs = _copy_obs(obs) if ended else next_obs
        for env_index, info in enumerate(infos):
            info["original_env_rew"] = env_rews[env_index]
        self._returns += rews
        for index in ended:
            self.episode_rewards.append(float(self._returns[index]))
            self._returns[index] = 0.0
            self._num_episodes += 1
        return obs, rews, dones, infos

    def make_log_callback(self, key: str = DEFAULT_LOG_KEY) -> WrappedRewardLogCallback:
        """Make an SB3 callback that logs the mean wrapped return of recent episodes.

        Pass it to ``model.learn(..., callback=...)``; it records
        ``mean(episode_rewards)`` under ``key`` whenever episodes have ended
        and at the end of each rollout, so it appears next to SB3's
        ``rollout/ep_rew_mean`` (the env's own reward, via ``Monitor``).

        Args:
            key: The logger key.

        Returns:
            The callback.
        """
        return WrappedRewardLogCallback(self, key=key)


class WrappedRewardLogCallback(BaseCallback):
    """Record a :class:`RewardVecEnvWrapper`'s mean episode return to SB3's logger.

    Args:
        wrapper: The reward wrapper whose ``episode_rewards`` are logged.
        key: The logger key.
        verbose: SB3 verbosity.
    """

    def __init__(
        self,
        wrapper: RewardVecEnvWrapper,
        key: str = DEFAULT_LOG_KEY,
        verbose: int = 0,
    ) -> None:
        if not isinstance(wrapper, RewardVecEnvWrapper):
            raise TypeError(f"Expected a RewardVecEnvWrapper, got {type(wrapper).__name__}.")
        super().__init__(verbose)
        self.wrapper = wrapper
        self.key = key
        self._seen_episodes = -1

    def _record(self) -> None:
        if self.wrapper.episode_rewards:
            self.logger.record(self.key, float(np.mean(self.wrapper.episode_rewards)))
        self._seen_episodes = self.wrapper.num_episodes

    def _on_step(self) -> bool:
        # Off-policy algorithms dump logs mid-rollout, right after an episode ends.
        if self.wrapper.num_episodes != self._seen_episodes:
            self._record()
        return True

    def _on_rollout_end(self) -> None:
        # On-policy algorithms dump logs after the rollout.
        self._record()


class WrappedRewardCallback(BaseCallback):
    """``imitation``'s callback: log the mean of ``episode_rewards`` at each rollout start.

    :meth:`RewardVecEnvWrapper.make_log_callback` gives a
    :class:`WrappedRewardLogCallback`, which also logs mid-rollout for
    off-policy algorithms; this class is kept for code that builds the
    callback from the deque itself.

    Args:
        episode_rewards: The deque of episode returns (``wrapper.episode_rewards``).
        *args: Passed to ``BaseCallback``.
        **kwargs: Passed to ``BaseCallback``.
    """

    def __init__(self, episode_rewards: deque[float], *args: Any, **kwargs: Any) -> None:
        self.episode_rewards = episode_rewards
        super().__init__(*args, **kwargs)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if self.episode_rewards:
            mean = sum(self.episode_rewards) / len(self.episode_rewards)
            self.logger.record(DEFAULT_LOG_KEY, mean)
