"""Ensembles: ``RewardEnsemble`` and ``AddSTDRewardWrapper``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, cast

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rewardnets import PredictProcessedWrapper, RewardNet, RewardNetWithVariance, hookimpl
from rewardnets.hookspecs import Register
from rewardnets.preprocessing import TensorTree
from rewardnets.reward_nets import (
    Batch,
    KernelBuilder,
    MomentsKernel,
    ProcessedKernel,
    run_kernel,
)

__all__ = ["AddSTDRewardWrapper", "RewardEnsemble"]


class RewardEnsemble(RewardNetWithVariance):
    """An ensemble of reward nets on the same spaces.

    As in ``imitation``, the output of a member is its ``predict_processed``:
    ``predict`` and ``predict_processed`` are the mean of the members'
    ``predict_processed`` (keyword arguments such as ``update_stats=False`` go
    to every member), and :meth:`predict_reward_moments` gives that mean and
    the (ddof=1) variance across members. ``forward`` (and so ``predict_th``)
    is the mean of the members' ``forward``, differentiable, for training.

    Args:
        observation_space: The observation space shared by all members.
        action_space: The action space shared by all members.
        members: At least two reward nets.
    """

    config_refs: ClassVar[dict[str, str]] = {"members": "reward_net"}

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        members: Iterable[RewardNet],
    ) -> None:
        super().__init__(observation_space, action_space)
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"A RewardEnsemble needs at least 2 members, got {len(members)}.")
        for i, member in enumerate(members):
            if not isinstance(member, RewardNet):
                raise TypeError(f"members[{i}] is a {type(member).__name__}, not a RewardNet.")
            if (member.observation_space, member.action_space) != (observation_space, action_space):
                raise ValueError(
                    f"members[{i}] has spaces ({member.observation_space}, "
                    f"{member.action_space}); the ensemble has ({observation_space}, "
                    f"{action_space})."
                )
        self.members = nn.ModuleList(members)

    @property
    def num_members(self) -> int:
        """The number of members."""
        return len(self.members)

    def preprocess(
        self, state: Any, action: Any, next_state: Any, done: Any
    ) -> tuple[TensorTree, TensorTree | None, TensorTree | None, torch.Tensor | None]:
        """Preprocess as the first member does."""
        first = self.members[0]
        assert isinstance(first, RewardNet)
        return first.preprocess(state, action, next_state, done)

    def forward(
        self,
        state: TensorTree,
        action: TensorTree | None,
        next_state: TensorTree | None,
        done: torch.Tensor | None,
    ) -> torch.Tensor:
        """Return the mean of the members' rewards, differentiable."""
        rewards = [m(state, action, next_state, done) for m in self.members]
        return torch.stack(rewards, dim=-1).mean(dim=-1)

    def predict_processed_all(
        self, state: Any, action: Any, next_state: Any = None, done: Any = None, **kwargs: Any
    ) -> np.ndarray:
        """Return every member's processed reward, shape ``(batch, num_members)``."""
        rewards = [
            cast(RewardNet, m).predict_processed(state, action, next_state, done, **kwargs)
            for m in self.members
        ]
        return np.stack(rewards, axis=-1)

    def predict_reward_moments(
        self, state: Any, action: Any, next_state: Any = None, done: Any = None, **kwargs: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the mean and (ddof=1) variance of the members' processed rewards."""
        moments = run_kernel(
            self, "predict_reward_moments", state, action, next_state, done, kwargs
        )
        if moments is not None:
            return moments
        all_rewards = self.predict_processed_all(state, action, next_state, done, **kwargs)
        return all_rewards.mean(axis=-1), all_rewards.var(axis=-1, ddof=1)

    def predict_processed(
        self, state: Any, action: Any, next_state: Any = None, done: Any = None, **kwargs: Any
    ) -> np.ndarray:
        """Return the mean of the members' processed rewards."""
        reward = run_kernel(self, "predict_processed", state, action, next_state, done, kwargs)
        if reward is not None:
            return reward
        return self.predict_processed_all(state, action, next_state, done, **kwargs).mean(axis=-1)

    def _members_kernel(self, builder: KernelBuilder) -> Any:
        members = [builder.processed(member) for member in self.members]

        def all_rewards(batch: Batch, kwargs: dict[str, Any]) -> np.ndarray:
            return np.stack([member(batch, kwargs) for member in members], axis=-1)

        return all_rewards

    def processed_kernel(self, builder: KernelBuilder) -> ProcessedKernel | None:
        """The numpy twin of :meth:`predict_processed`: the members' kernels, averaged."""
        all_rewards = self._members_kernel(builder)
        return lambda batch, kwargs: all_rewards(batch, kwargs).mean(axis=-1)

    def moments_kernel(self, builder: KernelBuilder) -> MomentsKernel | None:
        """The numpy twin of :meth:`predict_reward_moments`."""
        all_rewards = self._members_kernel(builder)

        def moments(batch: Batch, kwargs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
            rewards = all_rewards(batch, kwargs)
            return rewards.mean(axis=-1), rewards.var(axis=-1, ddof=1)

        return moments

    def predict(
        self, state: Any, action: Any, next_state: Any = None, done: Any = None, **kwargs: Any
    ) -> np.ndarray:
        """Return the mean of the members' processed rewards, as ``predict_processed``."""
        return self.predict_processed(state, action, next_state, done, **kwargs)


class AddSTDRewardWrapper(PredictProcessedWrapper):
    """Processed reward ``mean + alpha * std`` of a net that has a variance.

    Args:
        base: A :class:`~rewardnets.RewardNetWithVariance`, e.g. an ensemble.
        default_alpha: ``alpha`` when a call does not pass one; positive values
            reward uncertainty (exploration), negative values penalise it.
    """

    base: RewardNetWithVariance

    def __init__(self, base: RewardNet, default_alpha: float = 0.0) -> None:
        if not isinstance(base, RewardNetWithVariance):
            raise TypeError(
                "AddSTDRewardWrapper needs a base that is a RewardNetWithVariance "
                f"(such as RewardEnsemble), got {type(base).__name__}."
            )
        super().__init__(base)
        self.default_alpha = float(default_alpha)

    def predict_processed(
        self,
        state: Any,
        action: Any,
        next_state: Any = None,
        done: Any = None,
        alpha: float | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Return ``mean + alpha * std`` of the base's reward.

        Args:
            state: States.
            action: Actions.
            next_state: Next states.
            done: Episode-end flags.
            alpha: Weight of the standard deviation; ``default_alpha`` if None.
            **kwargs: Passed on to the base's ``predict_reward_moments``.
        """
        reward = run_kernel(
            self, "predict_processed", state, action, next_state, done, {"alpha": alpha, **kwargs}
        )
        if reward is not None:
            return reward
        alpha = self.default_alpha if alpha is None else alpha
        mean, var = self.base.predict_reward_moments(state, action, next_state, done, **kwargs)
        return mean + alpha * np.sqrt(var)

    def processed_kernel(self, builder: KernelBuilder) -> ProcessedKernel | None:
        """The numpy twin of :meth:`predict_processed`."""
        moments = builder.moments(self.base)
        (default_alpha,) = builder.watch(self, "default_alpha")

        def mean_plus_std(batch: Batch, kwargs: dict[str, Any]) -> np.ndarray:
            alpha = kwargs.get("alpha")
            if "alpha" in kwargs:  # consumed here, as the method's parameter
                kwargs = {k: v for k, v in kwargs.items() if k != "alpha"}
            mean, var = moments(batch, kwargs)
            return mean + (default_alpha if alpha is None else alpha) * np.sqrt(var)

        return mean_plus_std


@hookimpl
def register_reward_nets(register: Register) -> None:
    """Register the ensemble."""
    register("RewardEnsemble", RewardEnsemble)


@hookimpl
def register_wrappers(register: Register) -> None:
    """Register the std-adding wrapper."""
    register("AddSTDRewardWrapper", AddSTDRewardWrapper)
