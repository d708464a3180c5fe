"""Timing for the benchmarks: interleaved rounds, ratio figures, and the malloc opt-in."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

Timed = Callable[[], object]


@dataclass(frozen=True)
class Settings:
    """How long to measure.

    Attributes:
        rounds: Interleaved rounds per group; each figure is a median over them.
        block_s: The length in seconds of one timed block of calls.
        import_rounds: Fresh interpreters started for the import figure.
        quick: Whether this is the smoke run.
    """

    rounds: int
    block_s: float
    import_rounds: int
    quick: bool


FULL = Settings(rounds=31, block_s=0.006, import_rounds=9, quick=False)
QUICK = Settings(rounds=3, block_s=0.003, import_rounds=2, quick=True)


@dataclass
class Figure:
    """One measured ratio.

    Attributes:
        key: A stable identifier, e.g. ``predict/BasicRewardNet/CartPole-v1/b8/numpy_floor``.
        subject: What rewardnets does.
        baseline: The raw-torch floor it is compared with.
        ratio: Median over rounds of subject time over baseline time.
        subject_s: Median seconds per call of the subject.
        baseline_s: Median seconds per call of the baseline.
        target: The target, in words, or ``None``.
        met: Whether the target is met; ``None`` when there is none.
        extra: Figure-specific details (the floor variant chosen, steps per second...).
    """

    key: str
    subject: str
    baseline: str
    ratio: float
    subject_s: float
    baseline_s: float
    target: str | None = None
    met: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- timing
@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _time_block(fn: Timed, n: int) -> float:
    """Return the seconds per call of ``n`` calls of ``fn``."""
    with _no_gc():
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n


def _calibrate(fn: Timed, block_s: float) -> int:
    """Return how many calls of ``fn`` make a block of about ``block_s`` seconds."""
    fn()  # warm up: first-call allocations, lazy imports
    n = 1
    while True:
        elapsed = _time_block(fn, n) * n
        if elapsed >= block_s / 5 or n >= 1 << 20:
            return max(1, round(n * block_s / max(elapsed, 1e-9)))
        n *= 4


def time_interleaved(fns: Mapping[str, Timed], settings: Settings) -> dict[str, list[float]]:
    """Time every callable once per round, in alternating order.

    Args:
        fns: The callables of one group, by name.
        settings: Rounds and block length.

    Returns:
        Seconds per call of each callable, one value per round.
    """
    counts = {name: _calibrate(fn, settings.block_s) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for index in range(settings.rounds):
        for name in names if index % 2 == 0 else reversed(names):
            samples[name].append(_time_block(fns[name], counts[name]))
    return samples


def cheapest(samples: Mapping[str, list[float]], names: Iterable[str]) -> str:
    """Of several timed ways to compute the same floor, the one with the lowest median."""
    return min(names, key=lambda name: statistics.median(samples[f"floor: {name}"]))


def ratio_figure(
    key: str,
    samples: Mapping[str, list[float]],
    subject: str,
    baseline: str,
    max_ratio: float | None = None,
    **extra: Any,
) -> Figure:
    """Make a figure from interleaved samples: the median of per-round ratios."""
    ratios = [s / b for s, b in zip(samples[subject], samples[baseline], strict=True)]
    ratio = statistics.median(ratios)
    return Figure(
        key=key,
        subject=subject,
        baseline=baseline,
        ratio=ratio,
        subject_s=statistics.median(samples[subject]),
        baseline_s=statistics.median(samples[baseline]),
        target=None if max_ratio is None else f"<= {max_ratio:g}x",
        met=None if max_ratio is None else ratio <= max_ratio,
        extra=dict(extra),
    )


#: glibc ``mallopt`` parameters: M_TRIM_THRESHOLD and M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_malloc() -> bool:
    """Make glibc keep freed memory instead of handing it back to the OS.

    By default glibc serves large blocks (a batch of 16384 activations is 2 MB)
    with fresh ``mmap`` pages and trims the heap after frees, so a call may pay
    hundreds of page faults or none, depending on the history of the process.
    That lottery, not the code, then decides a ratio. Fixed thresholds keep the
    memory in the process for the subject and the baseline alike. Returns
    whether the tuning applied (glibc only).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(
            libc.mallopt(_M_MMAP_THRESHOLD, 256 << 20) and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
        )
    except (OSError, AttributeError):
        return False


def _syncer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return torch.cuda.synchronize
    return lambda: None
