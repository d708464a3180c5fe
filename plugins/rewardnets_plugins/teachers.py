"""Synthetic teachers: who labels the pairs of fragments in preference learning.

A teacher is built by name as ``factory(**options)`` and called as
``teacher(rewards_1, rewards_2, rng) -> prefs``: the true per-step rewards of
the first and second fragments of each pair, each ``(n_pairs, length)``, in;
the probability that the first fragment is preferred, ``(n_pairs,)`` float in
[0, 1], out; ``nan`` marks a pair the teacher skipped (it still costs a
label).

The built-ins follow B-Pref (Lee et al., 2021): the ``perfect`` teacher
prefers the higher true return; ``noisy`` (alias ``mistake``) flips its label
with probability ``noise``; ``myopic`` weighs recent steps more; ``skip``
skips pairs whose fragments are both poor; ``equal`` calls pairs with close
returns a tie. Every built-in takes every option, so they combine
(``equal`` with ``noise=0.1`` is a noisy equal teacher).
"""

from __future__ import annotations

import numpy as np

from rewardnets import hookimpl
from rewardnets.hookspecs import Register

__all__ = [
    "EqualTeacher",
    "MyopicTeacher",
    "NoisyTeacher",
    "SimulatedTeacher",
    "SkipTeacher",
]


class SimulatedTeacher:
    """The perfect teacher, and the knobs of B-Pref's irrational ones.

    Args:
        temperature: 0 gives hard labels (1, 0, or 0.5 on ties); a positive
            value gives soft labels ``sigmoid((R1 - R2) / temperature)``.
        noise: Probability that a hard label is flipped (B-Pref's "mistake").
        myopia: Discount applied backwards from the end of a fragment (the
            last step counts fully, the one before ``myopia`` times as much);
            1.0 is not myopic.
        skip: Fraction in [0, 1): a pair is skipped (label ``nan``) when both
            fragments' returns are below this quantile of the batch's returns.
        equal: Margin >= 0: a pair whose returns differ by less than ``equal``
            times the mean absolute return of the batch gets the label 0.5.
    """

    def __init__(
        self,
        *,
        temperature: float = 0.0,
        noise: float = 0.0,
        myopia: float = 1.0,
        skip: float = 0.0,
        equal: float = 0.0,
    ) -> None:
        checks = [
            ("temperature", temperature, temperature >= 0, ">= 0"),
            ("noise", noise, 0.0 <= noise <= 0.5, "in [0, 0.5]"),
            ("myopia", myopia, 0.0 < myopia <= 1.0, "in (0, 1]"),
            ("skip", skip, 0.0 <= skip < 1.0, "in [0, 1)"),
            ("equal", equal, equal >= 0, ">= 0"),
        ]
        for name, value, ok, expected in checks:
            if not isinstance(value, int | float) or isinstance(value, bool) or not ok:
                raise ValueError(
                    f"Teacher option {name} must be a number {expected}, got {value!r}."
                )
        self.temperature = float(temperature)
        self.noise = float(noise)
        self.myopia = float(myopia)
        self.skip = float(skip)
        self.equal = float(equal)

    def returns(self, rewards: np.ndarray) -> np.ndarray:
        """Return the (myopically discounted) return of each fragment."""
        length = rewards.shape[-1]
        return rewards @ (self.myopia ** np.arange(length - 1, -1, -1))

    def __call__(
        self, rewards_1: np.ndarray, rewards_2: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Return the probability that each first fragment is preferred (``nan``: skipped)."""
        r1 = np.asarray(rewards_1, dtype=np.float64)
        r2 = np.asarray(rewards_2, dtype=np.float64)
        if r1.ndim != 2 or r1.shape != r2.shape:
            raise ValueError(
                "Expected two (n_pairs, length) arrays of per-step rewards of the same shape, "
                f"got {r1.shape} and {r2.shape}."
            )
        ret_1, ret_2 = self.returns(r1), self.returns(r2)
        diff = ret_1 - ret_2
        if self.temperature > 0:
            prefs = 1.0 / (1.0 + np.exp(-np.clip(diff / self.temperature, -50, 50)))
        else:
            prefs = np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
        # One draw per pair, whatever the options, so that swapping the two
        # fragments of every pair mirrors the labels for the same generator.
        draws = rng.random(len(prefs))
        if self.noise > 0:
            prefs = np.where(draws < self.noise, 1.0 - prefs, prefs)
        if self.equal > 0 and len(prefs):
            scale = float(np.mean(np.abs(np.concatenate([ret_1, ret_2]))))
            prefs = np.where(np.abs(diff) < self.equal * scale, 0.5, prefs)
        if self.skip > 0 and len(prefs):
            threshold = np.quantile(np.concatenate([ret_1, ret_2]), self.skip)
            prefs = np.where(np.maximum(ret_1, ret_2) < threshold, np.nan, prefs)
        return prefs.astype(np.float32)


class NoisyTeacher(SimulatedTeacher):
    """B-Pref's "mistake" teacher: flips a label with probability ``noise`` (default 0.1)."""

    def __init__(self, *, noise: float = 0.1, **options: float) -> None:
        super().__init__(noise=noise, **options)


class MyopicTeacher(SimulatedTeacher):
    """B-Pref's myopic teacher: recent steps weigh more (``myopia`` default 0.9)."""

    def __init__(self, *, myopia: float = 0.9, **options: float) -> None:
        super().__init__(myopia=myopia, **options)


class SkipTeacher(SimulatedTeacher):
    """B-Pref's "skip" teacher: no label when both fragments are poor (``skip`` default 0.1)."""

    def __init__(self, *, skip: float = 0.1, **options: float) -> None:
        super().__init__(skip=skip, **options)


class EqualTeacher(SimulatedTeacher):
    """B-Pref's "equal" teacher: close returns are a tie (``equal`` default 0.1)."""

    def __init__(self, *, equal: float = 0.1, **options: float) -> None:
        super().__init__(equal=equal, **options)


@hookimpl
def register_teachers(register: Register) -> None:
    """Register the perfect teacher and B-Pref's irrational ones."""
    register("perfect", SimulatedTeacher)
    register("noisy", NoisyTeacher, aliases=("mistake",))
    register("myopic", MyopicTeacher)
    register("skip", SkipTeacher)
    register("equal", EqualTeacher)
