"""Compare reward functions: the EPIC pseudometric and Pearson correlation.

Two reward functions can look very different and still ask for the same
behaviour: adding a potential-based shaping term ``gamma * Phi(s') - Phi(s)`` or
multiplying by a positive constant leaves every optimal policy unchanged.
EPIC (Equivalent-Policy Invariant Comparison, Gleave et al., "Quantifying
Differences in Reward Functions", ICLR 2021) is a distance between rewards
that ignores exactly these differences:

1. *canonicalise* each reward, which removes any potential shaping;
2. take the *Pearson distance* ``sqrt((1 - rho) / 2)`` between the two
   canonical rewards on a batch of transitions, which ignores positive scale
   and constant offsets.

The result lies in ``[0, 1]``: 0 for rewards that are equivalent up to shaping
and positive rescaling, about 0.71 (1/sqrt(2)) for uncorrelated rewards, 1 for ``R`` against
``-R``.

Everything here works on *reward functions*: callables
``reward_fn(obs, acts, next_obs, dones) -> np.ndarray`` of shape ``(batch,)``
over numpy batches — what :func:`rewardnets.load_reward` returns, a net's
``predict_processed``, or a reward from :mod:`rewardnets.apps.true_rewards`.
Observations of a Dict space are dicts of arrays.

This module does not import Stable-Baselines3 until
:func:`sample_transitions_from_env` is called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rewardnets.apps.epic_batches import (
    Transitions,
    _batch_len,
    _check_same_layout,
    _concat,
    _layout,
    _show_layout,
    _take,
)
from rewardnets.apps.epic_sampling import sample_from_space, sample_transitions_from_env
from rewardnets.errors import RewardNetsError

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ConstantRewardError",
    "RewardFn",
    "Transitions",
    "canonicalize",
    "epic_distance",
    "pearson_correlation",
    "pearson_distance",
    "sample_from_space",
    "sample_transitions_from_env",
]

#: A reward function: ``(obs, acts, next_obs, dones) -> rewards`` of shape ``(batch,)``.
RewardFn = Callable[[Any, Any, Any, Any], np.ndarray]

#: How many ``(s, a, s')`` triples :func:`canonicalize` passes to a reward
#: function in one call, by default.
DEFAULT_CHUNK_SIZE = 1 << 16

# A sample whose standard deviation is below this fraction of its magnitude
# counts as constant in :func:`pearson_distance`.
_PEARSON_RTOL = 1e-12
# A canonical reward whose standard deviation is below this fraction of the
# raw reward's magnitude counts as constant in :func:`epic_distance`. Float64
# rounding in the canonicalisation leaves errors near 1e-15 of that magnitude.
_CANONICAL_RTOL = 1e-10


class ConstantRewardError(RewardNetsError, ValueError):
    """A reward is constant on the samples, so a correlation-based distance is undefined.

    Also a ``ValueError``.
    """


# ---------------------------------------------------------------------------
# Calling reward functions.
# ---------------------------------------------------------------------------


def _describe(fn: Callable[..., Any]) -> str:
    # Imported here: the reward-wrapper module imports Stable-Baselines3.
    from rewardnets.reward_wrapper import describe_reward_fn

    return describe_reward_fn(fn)


def _evaluate(
    reward_fn: RewardFn, obs: Any, acts: Any, next_obs: Any, dones: np.ndarray, what: str
) -> np.ndarray:
    """Call ``reward_fn`` on a batch; check and return its rewards as float64 ``(n,)``."""
    n = dones.shape[0]
    try:
        result = reward_fn(obs, acts, next_obs, dones)
    except Exception as err:
        raise RewardNetsError(
            f"Reward function {_describe(reward_fn)} raised {type(err).__name__}: {err} "
            f"(called on {n} {what}; obs {_show_layout(_layout(obs))} per sample, acts "
            f"{_show_layout(_layout(acts))} per sample)."
        ) from err
    rewards = np.asarray(result)
    if rewards.dtype.kind not in "biuf":
        raise RewardNetsError(
            f"Reward function {_describe(reward_fn)} returned dtype {rewards.dtype}; expected "
            f"real numbers of shape ({n},)."
        )
    if rewards.shape != (n,):
        raise RewardNetsError(
            f"Reward function {_describe(reward_fn)} returned shape {rewards.shape} for {n} "
            f"{what}; expected shape ({n},), one reward per transition."
        )
    rewards = rewards.astype(np.float64)
    if not np.all(np.isfinite(rewards)):
        bad = np.flatnonzero(~np.isfinite(rewards))[:5]
        raise RewardNetsError(
            f"Reward function {_describe(reward_fn)} returned non-finite rewards "
            f"{rewards[bad].tolist()} at indices {bad.tolist()} of {n} {what}; expected "
            "finite rewards."
        )
    return rewards


def _check_callable(reward_fn: Any, name: str) -> None:
    if not callable(reward_fn):
        raise TypeError(
            f"{name} must be a reward function (obs, acts, next_obs, dones) -> rewards; got "
            f"{type(reward_fn).__name__}."
        )


def _check_chunk_size(chunk_size: int) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}.")


def _check_transitions(obs: Any, acts: Any, next_obs: Any, dones: Any) -> tuple[int, np.ndarray]:
    n = _batch_len(obs, "obs")
    lengths = {
        "obs": n,
        "acts": _batch_len(acts, "acts"),
        "next_obs": _batch_len(next_obs, "next_obs"),
    }
    done_array = np.asarray(dones)
    if done_array.ndim != 1:
        raise ValueError(f"dones must have shape (n,), got shape {done_array.shape}.")
    lengths["dones"] = done_array.shape[0]
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"obs, acts, next_obs and dones must hold the same number of transitions; got "
            f"{lengths}."
        )
    _check_same_layout(obs, next_obs, "obs", "next_obs")
    return n, done_array.astype(bool)


def _mean_reward_from(
    reward_fn: RewardFn,
    states: Any,
    state_samples: Any,
    action_samples: Any,
    chunk_size: int,
) -> tuple[np.ndarray, float]:
    """``E[R(s, A, S')]`` for every ``s`` in ``states``, by Monte Carlo.

    The expectation is the mean over the full product ``action_samples x
    state_samples``. Returns the means and the largest absolute reward seen.
    """
    n_states = _batch_len(states, "states")
    n_acts = _batch_len(action_samples, "action_samples")
    n_next = _batch_len(state_samples, "state_samples")
    per_state = n_acts * n_next
    total = n_states * per_state
    sums = np.zeros(n_states, dtype=np.float64)
    max_abs = 0.0
    for start in range(0, total, chunk_size):
        flat = np.arange(start, min(start + chunk_size, total))
        i, rest = np.divmod(flat, per_state)
        j, k = np.divmod(rest, n_next)
        rewards = _evaluate(
            reward_fn,
            _take(states, i),
            _take(action_samples, j),
            _take(state_samples, k),
            np.zeros(flat.shape[0], dtype=bool),
            "sampled (s, A, S') triples",
        )
        sums += np.bincount(i, weights=rewards, minlength=n_states)
        max_abs = max(max_abs, float(np.max(np.abs(rewards))))
    return sums / per_state, max_abs


def _canonicalize(
    reward_fn: RewardFn,
    obs: Any,
    acts: Any,
    next_obs: Any,
    dones: Any,
    *,
    discount: float,
    state_samples: Any,
    action_samples: Any,
    chunk_size: int,
    ignore_dones: bool,
) -> tuple[np.ndarray, float]:
    """The canonical rewards and the largest absolute raw reward used to compute them."""
    _check_callable(reward_fn, "reward_fn")
    if isinstance(discount, bool) or not isinstance(discount, (int, float, np.floating)):
        raise TypeError(f"discount must be a float in [0, 1], got {discount!r}.")
    if not 0.0 <= float(discount) <= 1.0:
        raise ValueError(f"discount must be in [0, 1], got {discount!r}.")
    _check_chunk_size(chunk_size)
    n, done_array = _check_transitions(obs, acts, next_obs, dones)
    _batch_len(state_samples, "state_samples")
    _batch_len(action_samples, "action_samples")
    _check_same_layout(obs, state_samples, "obs", "state_samples")
    _check_same_layout(acts, action_samples, "acts", "action_samples")
    gamma = float(discount)

    if ignore_dones:
        done_array = np.zeros(n, dtype=bool)
    rewards = _evaluate(reward_fn, obs, acts, next_obs, done_array, "transitions")
    # E[R(s', A, S')] and E[R(s, A, S')] for the batch, in one pass.
    means, max_abs = _mean_reward_from(
        reward_fn, _concat([next_obs, obs]), state_samples, action_samples, chunk_size
    )
    mean_from_next, mean_from_current = means[:n], means[n:]
    # E[R(S, A, S')]: S and S' both range over state_samples, independently.
    mean_from_samples, max_abs_samples = _mean_reward_from(
        reward_fn, state_samples, state_samples, action_samples, chunk_size
    )
    mean_all = float(np.mean(mean_from_samples))
    canonical = rewards + gamma * mean_from_next - mean_from_current - gamma * mean_all
    scale = max(float(np.max(np.abs(rewards))), max_abs, max_abs_samples)
    return canonical, scale


def canonicalize(
    reward_fn: RewardFn,
    obs: Any,
    acts: Any,
    next_obs: Any,
    dones: Any,
    *,
    discount: float,
    state_samples: Any,
    action_samples: Any,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    ignore_dones: bool = False,
) -> np.ndarray:
    """The canonically shaped reward of ``reward_fn`` on a batch of transitions.

    ``C(R)(s, a, s') = R(s, a, s') + gamma E[R(s', A, S')] - E[R(s, A, S')]
    - gamma E[R(S, A, S')]``

    where ``S`` and ``S'`` are independent draws from the state distribution
    and ``A`` from the action distribution. The expectations are Monte Carlo
    means over *every* combination of ``state_samples`` (for ``S`` and for
    ``S'``) and ``action_samples`` (for ``A``), so ``reward_fn`` is called on
    ``(2*n + n_S) * n_A * n_S`` triples in all, in chunks of ``chunk_size``.

    Because the same samples serve every expectation, potential shaping
    cancels exactly (up to float rounding) for *any* sample set: the
    canonical reward of ``R + gamma * Phi(s') - Phi(s)`` is that of ``R``, and the
    canonical reward of ``c*R`` is ``c`` times that of ``R``.

    Episode ends: the canonicalisation views the environment as
    non-terminating. ``R(s, a, s')`` is evaluated with the given ``dones``
    (set ``ignore_dones=True`` to pass ``False`` there too), while the
    sampled triples ``(s, A, S')``, ``(s', A, S')`` and ``(S, A, S')`` are
    made-up transitions and always get ``dones=False``. A reward that uses
    ``dones`` — e.g. a shaped net whose potential is zero at terminal states —
    is therefore shaping-invariant exactly only on non-terminal transitions,
    or everywhere with ``ignore_dones=True``.

    Args:
        reward_fn: ``(obs, acts, next_obs, dones) -> rewards``, shape ``(batch,)``.
        obs: Observations of the batch, shape ``(n, *obs_shape)`` (a dict of
            arrays for Dict spaces).
        acts: Actions of the batch, shape ``(n, *act_shape)``.
        next_obs: Next observations of the batch.
        dones: Episode-end flags of the batch, shape ``(n,)``.
        discount: The discount factor gamma, in ``[0, 1]``.
        state_samples: Samples of the state distribution ``D_S``, a batch of
            observations of the same kind as ``obs``.
        action_samples: Samples of the action distribution ``D_A``, a batch of
            actions of the same kind as ``acts``.
        chunk_size: Largest number of triples per call of ``reward_fn``; bounds
            memory.
        ignore_dones: Evaluate ``R(s, a, s')`` with ``dones=False`` too.

    Returns:
        The canonical rewards, float64, shape ``(n,)``.

    Raises:
        ValueError: Batches of different lengths, samples that do not match
            the batch's observations or actions, a discount outside ``[0, 1]``.
        RewardNetsError: ``reward_fn`` raised, or returned the wrong shape or
            non-finite values.
    """
    canonical, _ = _canonicalize(
        reward_fn,
        obs,
        acts,
        next_obs,
        dones,
        discount=discount,
        state_samples=state_samples,
        action_samples=action_samples,
        chunk_size=chunk_size,
        ignore_dones=ignore_dones,
    )
    return canonical


# ---------------------------------------------------------------------------
# Pearson distance and correlation.
# ---------------------------------------------------------------------------


def _as_sample(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}.")
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, shape (n,); got shape {array.shape}.")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds non-finite values; expected finite numbers.")
    return array


def _constant_message(name: str, std: float, detail: str) -> str:
    return (
        f"{name} is constant on these samples (standard deviation {std:.3g}{detail}), so its "
        "Pearson correlation — and the Pearson and EPIC distances — to any other reward is "
        "undefined. A reward that is the same for every transition (e.g. CartPole-v1's +1 per "
        "step), or a potential-shaped constant, ranks all transitions alike; compare rewards "
        "that vary on the samples, or compare episode returns instead."
    )


def _standardised(
    x: np.ndarray, y: np.ndarray, names: tuple[str, str], scales: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Both samples centred and scaled to unit norm, refusing (near-)constant samples.

    Without ``scales``, a sample is constant when its standard deviation is
    below ``_PEARSON_RTOL`` of its own magnitude; with them, below
    ``_CANONICAL_RTOL`` of the given magnitude (that of the raw reward).
    """
    if x.shape != y.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape; got {x.shape} and {y.shape}."
        )
    if x.shape[0] < 2:
        raise ValueError(
            f"A correlation needs at least 2 samples; got {x.shape[0]}. Pass a larger batch."
        )
    centred = []
    for values, name, index in ((x, names[0], 0), (y, names[1], 1)):
        c = values - values.mean()
        std = float(np.sqrt(np.mean(c * c)))
        if scales is None:
            magnitude = float(np.max(np.abs(values)))
            if std <= _PEARSON_RTOL * magnitude:
                raise ConstantRewardError(
                    _constant_message(name, std, f", largest magnitude {magnitude:.3g}")
                )
        else:
            magnitude = scales[index]
            if std <= _CANONICAL_RTOL * magnitude:
                raise ConstantRewardError(
                    _constant_message(
                        name,
                        std,
                        f" after canonicalisation, against raw rewards up to {magnitude:.3g}",
                    )
                )
        centred.append(c / np.linalg.norm(c))
    return centred[0], centred[1]


def _correlation(
    x: np.ndarray, y: np.ndarray, names: tuple[str, str], scales: tuple[float, float] | None
) -> float:
    """Pearson's rho of two samples."""
    ux, uy = _standardised(x, y, names, scales)
    return min(1.0, max(-1.0, float(np.dot(ux, uy))))


def _distance(
    x: np.ndarray, y: np.ndarray, names: tuple[str, str], scales: tuple[float, float] | None
) -> float:
    """The Pearson distance of two samples.

    With ``ux``, ``uy`` the centred samples scaled to unit norm,
    ``1 - rho = |ux - uy|^2 / 2``, so ``sqrt((1 - rho) / 2) = |ux - uy| / 2``.
    This form keeps its precision for nearly equal samples, where computing
    ``1 - rho`` first would leave only rounding noise (whose square root is
    near 1e-8).
    """
    ux, uy = _standardised(x, y, names, scales)
    return min(1.0, float(np.linalg.norm(ux - uy)) / 2.0)


def pearson_distance(x: Any, y: Any) -> float:
    """The Pearson distance ``sqrt((1 - rho(x, y)) / 2)`` between two samples.

    It is 0 for perfectly positively correlated samples, ``1/sqrt(2)`` for
    uncorrelated ones and 1 for perfectly negatively correlated ones, and it
    ignores positive scale and constant offsets of either sample.

    Args:
        x: A one-dimensional sample of ``n >= 2`` finite numbers.
        y: Another, of the same length.

    Returns:
        The distance, in ``[0, 1]``.

    Raises:
        ConstantRewardError: ``x`` or ``y`` has (near-)zero variance: the
            reward is constant on the samples, so the distance is undefined.
            Also a ``ValueError``.
        ValueError: Shapes differ, fewer than 2 samples, non-finite values.
    """
    a, b = _as_sample(x, "x"), _as_sample(y, "y")
    return _distance(a, b, ("x", "y"), None)


def pearson_correlation(
    reward_a: RewardFn, reward_b: RewardFn, transitions: Sequence[Any]
) -> float:
    """Pearson's correlation of two reward functions on a batch of transitions.

    Unlike :func:`epic_distance`, nothing is canonicalised: shaped versions of
    one reward can correlate poorly. Cheap, and a useful sanity check next to
    EPIC.

    Args:
        reward_a: A reward function ``(obs, acts, next_obs, dones) -> rewards``.
        reward_b: Another.
        transitions: ``(obs, acts, next_obs, dones)``, e.g. a
            :class:`Transitions` from :func:`sample_transitions_from_env`.

    Returns:
        rho, in ``[-1, 1]``.

    Raises:
        ConstantRewardError: One reward is constant on the transitions (also a
            ``ValueError``).
        ValueError: ``transitions`` is not a 4-tuple of batches of one length.
        RewardNetsError: A reward function raised or returned a bad batch.
    """
    _check_callable(reward_a, "reward_a")
    _check_callable(reward_b, "reward_b")
    if isinstance(transitions, (str, bytes, Mapping)) or len(transitions) != 4:
        raise ValueError(
            "transitions must be (obs, acts, next_obs, dones); got "
            f"{type(transitions).__name__} of length {len(transitions)}."
        )
    obs, acts, next_obs, dones = transitions
    _, done_array = _check_transitions(obs, acts, next_obs, dones)
    ra = _evaluate(reward_a, obs, acts, next_obs, done_array, "transitions")
    rb = _evaluate(reward_b, obs, acts, next_obs, done_array, "transitions")
    names = (f"reward_a ({_describe(reward_a)})", f"reward_b ({_describe(reward_b)})")
    return _correlation(ra, rb, names, None)


def epic_distance(
    reward_a: RewardFn,
    reward_b: RewardFn,
    obs: Any,
    acts: Any,
    next_obs: Any,
    dones: Any,
    *,
    discount: float = 0.99,
    state_samples: Any,
    action_samples: Any,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    ignore_dones: bool = False,
) -> float:
    """The EPIC distance between two reward functions.

    Both rewards are canonicalised with the same samples
    (:func:`canonicalize`), then compared with the Pearson distance on the
    batch of transitions ``(obs, acts, next_obs, dones)``, which plays the
    role of the coverage distribution. The distance is symmetric, in
    ``[0, 1]``, and (up to float rounding) exactly 0 between a reward and any
    potential-shaped, positively rescaled version of it.

    Args:
        reward_a: A reward function ``(obs, acts, next_obs, dones) -> rewards``.
        reward_b: Another.
        obs: Observations of the batch, shape ``(n, *obs_shape)``, ``n >= 2``.
        acts: Actions of the batch.
        next_obs: Next observations of the batch.
        dones: Episode-end flags of the batch, shape ``(n,)``.
        discount: The discount factor gamma of the shaping to ignore, in ``[0, 1]``.
        state_samples: Samples of the state distribution for the
            canonicalisation's expectations (same kind as ``obs``).
        action_samples: Samples of the action distribution (same kind as ``acts``).
        chunk_size: Largest number of triples per reward-function call.
        ignore_dones: See :func:`canonicalize`.

    Returns:
        The distance, in ``[0, 1]``.

    Raises:
        ConstantRewardError: A reward is constant on the samples after
            canonicalisation (a constant reward, or a potential-shaped
            constant): EPIC is undefined for it. Also a ``ValueError``.
        ValueError: Inconsistent batches or samples, a bad discount.
        RewardNetsError: A reward function raised or returned a bad batch.
    """
    _check_callable(reward_a, "reward_a")
    _check_callable(reward_b, "reward_b")
    kwargs: dict[str, Any] = {
        "discount": discount,
        "state_samples": state_samples,
        "action_samples": action_samples,
        "chunk_size": chunk_size,
        "ignore_dones": ignore_dones,
    }
    ca, scale_a = _canonicalize(reward_a, obs, acts, next_obs, dones, **kwargs)
    cb, scale_b = _canonicalize(reward_b, obs, acts, next_obs, dones, **kwargs)
    names = (f"reward_a ({_describe(reward_a)})", f"reward_b ({_describe(reward_b)})")
    return _distance(ca, cb, names, (scale_a, scale_b))
