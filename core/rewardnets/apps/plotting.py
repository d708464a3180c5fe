"""PNG figures: learning curves from metric files, and reward heatmaps.

matplotlib is imported inside the functions that draw, never by
``import rewardnets``. Figures are drawn on matplotlib's non-interactive Agg
canvas through the object-oriented API, so plotting neither opens windows nor
changes the pyplot backend of the calling program (a notebook keeps its own).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from gymnasium import spaces
    from matplotlib.figure import Figure

__all__ = [
    "METRIC_KINDS",
    "HeatmapResult",
    "LearningCurves",
    "plot_learning_curves",
    "plot_reward_heatmap",
]

PathLike = str | os.PathLike[str]
RewardFn = Callable[[Any, Any, Any, Any], np.ndarray]

#: The ``kind`` values a metrics file may have.
METRIC_KINDS = ("learn", "train-policy")

# Bounds at or beyond this magnitude count as unbounded (gymnasium spaces
# often use float32's largest value instead of infinity).
_UNBOUNDED = 1e10
_EVAL_CHUNK = 1 << 16


def _new_figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas, made without pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png_path(out_path: PathLike) -> Path:
    if not isinstance(out_path, (str, os.PathLike)):
        raise TypeError(f"out_path must be a path to a .png file, got {type(out_path).__name__}.")
    path = Path(out_path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"out_path must name a .png file, got {str(path)!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------------------
# Learning curves.
# ---------------------------------------------------------------------------


class LearningCurves(NamedTuple):
    """What :func:`plot_learning_curves` drew."""

    path: Path
    """The PNG file written."""
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
    """Metric → run label → ``(steps, values)``: one subplot per metric, one
    line per run."""


def _read_metrics(source: Any, index: int) -> tuple[str, str, Mapping[str, Any]]:
    """``(label, where, data)`` for one metrics source (a path or a dict)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"Metrics file {str(path)!r} does not exist.") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"Metrics file {str(path)!r} is not valid JSON: {err}.") from err
        return path.stem, f"metrics file {str(path)!r}", data
    if isinstance(source, Mapping):
        label = source.get("name") if isinstance(source.get("name"), str) else None
        return label or f"run {index}", f"metrics dict #{index}", source
    raise TypeError(
        "Each metrics source must be a path to a JSON file or a dict "
        f'{{"kind": ..., "history": [...]}}; source #{index} is a {type(source).__name__}.'
    )


def _parse_history(data: Any, where: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Metric → ``(steps, values)`` of one metrics document, sorted by step."""
    if not isinstance(data, Mapping):
        raise ValueError(
            f"{where} must hold a JSON object with keys 'kind' and 'history'; got "
            f"{type(data).__name__}."
        )
    kind = data.get("kind")
    if kind not in METRIC_KINDS:
        raise ValueError(
            f"{where} has kind {kind!r}; expected one of {', '.join(map(repr, METRIC_KINDS))}."
        )
    history = data.get("history")
    if not isinstance(history, list):
        raise ValueError(
            f"{where} must have a 'history' list of records like "
            f'{{"step": 100, "loss": 0.5}}; got {type(history).__name__}.'
        )
    points: dict[str, list[tuple[int, float]]] = {}
    for i, record in enumerate(history):
        if not isinstance(record, Mapping):
            raise ValueError(
                f"{where}: history[{i}] must be an object, got {type(record).__name__}."
            )
        step = record.get("step")
        if isinstance(step, bool) or not isinstance(step, int):
            raise ValueError(f"{where}: history[{i}] needs an int 'step', got {step!r}.")
        for key, value in record.items():
            if key == "step":
                continue
            if value is None:
                value = math.nan
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(
                    f"{where}: history[{i}][{key!r}] must be a number (or null), got {value!r}."
                )
            points.setdefault(str(key), []).append((step, float(value)))
    curves = {}
    for key, pairs in points.items():
        pairs.sort(key=lambda pair: pair[0])
        steps = np.array([p[0] for p in pairs], dtype=np.int64)
        values = np.array([p[1] for p in pairs], dtype=np.float64)
        curves[key] = (steps, values)
    return curves


def _sources(metrics: Any) -> list[tuple[str | None, Any]]:
    """Normalise the accepted inputs to ``[(label or None, source), ...]``."""
    if isinstance(metrics, (str, os.PathLike)):
        return [(None, metrics)]
    if isinstance(metrics, Mapping):
        if "history" in metrics or "kind" in metrics:
            return [(None, metrics)]
        return [(str(label), source) for label, source in metrics.items()]
    if isinstance(metrics, Iterable):
        return [(None, source) for source in metrics]
    raise TypeError(
        "metrics must be a path, a metrics dict, a list of them, or a dict label -> path/dict; "
        f"got {type(metrics).__name__}."
    )


def plot_learning_curves(
    metrics_paths_or_dicts: (PathLike | Mapping[str, Any] | Sequence[PathLike | Mapping[str, Any]]),
    out_path: PathLike,
    *,
    title: str | None = None,
) -> LearningCurves:
    """Plot learning curves from metrics files into a PNG.

    A metrics document is a JSON object
    ``{"kind": "learn" | "train-policy", "history": [{"step": int, <metric>:
    float, ...}, ...]}`` (a reward-learning run logs e.g. ``loss`` and
    ``accuracy``; a policy-training run ``ep_rew_mean`` and
    ``eval_return``). The figure has one subplot per metric and, in it, one
    line per run that logged the metric, against ``step``. ``null`` values
    leave gaps.

    Args:
        metrics_paths_or_dicts: A JSON file path or an already-loaded dict,
            a list of them, or a dict ``label -> path or dict`` to choose the
            legend labels. By default a file is labelled by its name without
            extension, a dict by its ``"name"`` key or ``"run <i>"``.
        out_path: Where to write the PNG (parent folders are created).
        title: Figure title.

    Returns:
        :class:`LearningCurves` with the path and the plotted data.

    Raises:
        FileNotFoundError: A metrics file does not exist.
        ValueError: A document is malformed (the message names the file and
            the record), no metrics at all, or ``out_path`` is not a .png.
        TypeError: An input is neither a path nor a dict.
    """
    path = _png_path(out_path)
    runs: list[tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]] = []
    for index, (label, source) in enumerate(_sources(metrics_paths_or_dicts)):
        default_label, where, data = _read_metrics(source, index)
        runs.append((label or default_label, _parse_history(data, where)))
    if not runs:
        raise ValueError("No metrics given: pass at least one metrics file or dict.")
    labels = [label for label, _ in runs]
    if len(set(labels)) != len(labels):
        # Two files with the same name in different folders: number them.
        runs = [(f"{label} ({i})", curves) for i, (label, curves) in enumerate(runs)]

    by_metric: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for label, curves in runs:
        for metric, curve in curves.items():
            by_metric.setdefault(metric, {})[label] = curve
    if not by_metric:
        raise ValueError(
            "The metrics hold no values to plot: every history is empty or has only 'step'."
        )

    n = len(by_metric)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    figure = _new_figure(4.5 * ncols, 3.2 * nrows)
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (metric, lines) in zip(axes, by_metric.items(), strict=False):
        for label, (steps, values) in lines.items():
            ax.plot(steps, values, label=label, marker="." if len(steps) < 30 else None)
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[n:]:
        ax.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.savefig(path, format="png")
    return LearningCurves(path=path, curves=by_metric)


# ---------------------------------------------------------------------------
# Reward heatmaps.
# ---------------------------------------------------------------------------


class HeatmapResult(NamedTuple):
    """The grid that :func:`plot_reward_heatmap` evaluated and drew."""

    xs: np.ndarray
    """Values of observation dimension ``dims[0]``, shape ``(resolution,)``."""
    ys: np.ndarray
    """Values of observation dimension ``dims[1]``, shape ``(resolution,)``."""
    values: np.ndarray
    """Rewards, float64, shape ``(resolution, resolution)``: ``values[i, j]`` is
    the reward with ``obs[dims[0]] = xs[j]`` and ``obs[dims[1]] = ys[i]``."""
    path: Path | None
    """The PNG file written, or ``None`` when no ``out_path`` was given."""


def _finite_range(low: float, high: float, half_width: float) -> tuple[float, float]:
    """A finite plotting range for bounds that may be infinite."""
    low_free = not math.isfinite(low) or abs(low) >= _UNBOUNDED
    high_free = not math.isfinite(high) or abs(high) >= _UNBOUNDED
    if low_free and high_free:
        return -half_width, half_width
    if low_free:
        return high - 2 * half_width, high
    if high_free:
        return low, low + 2 * half_width
    return low, high


def _check_dims(dims: Any, size: int, shape: tuple[int, ...]) -> tuple[int, int]:
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence) or len(dims) != 2:
        raise ValueError(f"dims must be a pair of observation indices like (0, 1); got {dims!r}.")
    checked = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise ValueError(f"dims must hold ints, got {dims!r}.")
        if not 0 <= d < size:
            raise ValueError(
                f"dims {tuple(dims)!r} is out of range: the observation space has shape {shape}, "
                f"so a dimension (an index into the flattened observation) must be in "
                f"[0, {size - 1}]."
            )
        checked.append(int(d))
    if checked[0] == checked[1]:
        raise ValueError(
            f"dims must name two different observation dimensions; got {checked[0]} twice."
        )
    return checked[0], checked[1]


def _default_action(space: spaces.Space[Any], half_width: float) -> np.ndarray:
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        low, high = space.low.ravel(), space.high.ravel()
        middle = [
            sum(_finite_range(float(lo), float(hi), half_width)) / 2
            for lo, hi in zip(low, high, strict=True)
        ]
        return np.asarray(middle).reshape(space.shape).astype(space.dtype)
    if isinstance(space, spaces.Discrete):
        return np.asarray(space.start, dtype=space.dtype)
    if isinstance(space, spaces.MultiDiscrete):
        return np.asarray(space.start, dtype=space.dtype)
    if isinstance(space, spaces.MultiBinary):
        return np.zeros(space.shape, dtype=space.dtype)
    raise TypeError(
        f"No default action for a {type(space).__name__} action space; pass action=... ."
    )


def plot_reward_heatmap(
    reward_fn: RewardFn,
    observation_space: spaces.Space[Any],
    action_space: spaces.Space[Any],
    dims: tuple[int, int] = (0, 1),
    out_path: PathLike | None = None,
    *,
    resolution: int = 50,
    fixed_obs: Any = None,
    action: Any = None,
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None,
    default_half_width: float = 3.0,
    title: str | None = None,
) -> HeatmapResult:
    """Evaluate a reward on a grid over two observation dimensions and draw it.

    Every grid point is a transition ``(obs, action, next_obs=obs,
    done=False)`` in which ``obs`` equals ``fixed_obs`` except in the two
    plotted dimensions.

    Args:
        reward_fn: ``(obs, acts, next_obs, dones) -> rewards``.
        observation_space: A ``gymnasium.spaces.Box``; ``dims`` index its
            flattened observation.
        action_space: The action space, for the default action.
        dims: The two observation dimensions on the x and y axes.
        out_path: Where to write the PNG; ``None`` only computes the grid
            (and does not import matplotlib).
        resolution: Grid points per axis (>= 2).
        fixed_obs: The observation the other dimensions are taken from;
            default: the middle of the space's bounds.
        action: The action of every grid point; default: the middle of a Box
            action space's bounds, the first action of a Discrete one, zeros
            for MultiBinary.
        bounds: ``((x_low, x_high), (y_low, y_high))``, the plotted ranges;
            default: the space's bounds.
        default_half_width: Where a bound is infinite (or beyond 1e10), the
            range is ``[-w, w]`` (both infinite) or ``2w`` wide from the finite
            bound; the default middle of such a dimension follows the same rule.
        title: Figure title.

    Returns:
        :class:`HeatmapResult` ``(xs, ys, values, path)``; ``xs`` and ``ys``
        are exactly the values put in the observations (cast to the space's
        dtype).

    Raises:
        TypeError: ``observation_space`` is not a Box, no default action for
            ``action_space``.
        ValueError: ``dims`` out of range or repeated, bad ``resolution``,
            ``bounds``, ``fixed_obs`` or ``action`` shape; ``out_path`` not a .png.
        RewardNetsError: ``reward_fn`` raised or returned a bad batch.
    """
    from gymnasium import spaces

    from rewardnets.apps.epic import _evaluate

    if not isinstance(observation_space, spaces.Box):
        raise TypeError(
            "plot_reward_heatmap plots over two dimensions of a Box observation space; got "
            f"{type(observation_space).__name__}: {observation_space}."
        )
    if not callable(reward_fn):
        raise TypeError(
            "reward_fn must be a reward function (obs, acts, next_obs, dones) -> rewards; got "
            f"{type(reward_fn).__name__}."
        )
    shape = observation_space.shape
    size = int(np.prod(shape))
    dim_x, dim_y = _check_dims(dims, size, shape)
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}.")
    if not default_half_width > 0:
        raise ValueError(f"default_half_width must be positive, got {default_half_width!r}.")
    path = None if out_path is None else _png_path(out_path)

    low = observation_space.low.ravel().astype(np.float64)
    high = observation_space.high.ravel().astype(np.float64)
    ranges = [
        _finite_range(float(lo), float(hi), default_half_width)
        for lo, hi in zip(low, high, strict=True)
    ]
    if fixed_obs is None:
        base = np.array([(lo + hi) / 2 for lo, hi in ranges])
    else:
        base = np.asarray(fixed_obs, dtype=np.float64)
        if base.shape != shape:
            raise ValueError(
                f"fixed_obs must have the observation shape {shape}, got shape {base.shape}."
            )
        base = base.ravel()
    if bounds is not None:
        pairs = np.asarray(bounds, dtype=np.float64)
        if pairs.shape != (2, 2) or not np.all(np.isfinite(pairs)):
            raise ValueError(
                f"bounds must be ((x_low, x_high), (y_low, y_high)) of finite numbers; got "
                f"{bounds!r}."
            )
        if np.any(pairs[:, 0] >= pairs[:, 1]):
            raise ValueError(f"bounds must have low < high on each axis; got {bounds!r}.")
        ranges[dim_x] = (float(pairs[0, 0]), float(pairs[0, 1]))
        ranges[dim_y] = (float(pairs[1, 0]), float(pairs[1, 1]))

    dtype = observation_space.dtype
    xs = np.linspace(*ranges[dim_x], resolution).astype(dtype)
    ys = np.linspace(*ranges[dim_y], resolution).astype(dtype)
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    flat = np.broadcast_to(base.astype(dtype), (resolution * resolution, size)).copy()
    flat[:, dim_x] = grid_x.ravel()
    flat[:, dim_y] = grid_y.ravel()
    obs = flat.reshape((resolution * resolution, *shape))

    act = _default_action(action_space, default_half_width) if action is None else action
    act = np.asarray(act)
    expected_act_shape = action_space.shape
    if expected_act_shape is not None and act.shape != expected_act_shape:
        raise ValueError(
            f"action must have the action space's shape {expected_act_shape}, got shape "
            f"{act.shape}."
        )
    m = obs.shape[0]
    acts = np.broadcast_to(act, (m, *act.shape)).copy()
    dones = np.zeros(m, dtype=bool)
    rewards = np.empty(m, dtype=np.float64)
    for start in range(0, m, _EVAL_CHUNK):
        part = slice(start, min(start + _EVAL_CHUNK, m))
        rewards[part] = _evaluate(
            reward_fn, obs[part], acts[part], obs[part], dones[part], "grid points"
        )
    values = rewards.reshape(resolution, resolution)

    if path is not None:
        figure = _new_figure(6.0, 4.8)
        ax = figure.subplots()
        mesh = ax.pcolormesh(xs, ys, values, shading="nearest", cmap="viridis")
        figure.colorbar(mesh, ax=ax, label="reward")
        ax.set_xlabel(f"obs[{dim_x}]")
        ax.set_ylabel(f"obs[{dim_y}]")
        ax.set_title(title if title is not None else f"reward over obs[{dim_x}], obs[{dim_y}]")
        figure.savefig(path, format="png")
    return HeatmapResult(xs=xs, ys=ys, values=values, path=path)
