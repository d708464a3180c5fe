"""Recorded transitions stored as Parquet, as a reward function reads them.

The data path shared by both engines of
:func:`rewardnets.relabel.relabel_dataset`: the column schema
(:class:`Columns`), the conversion of an Arrow batch into the arrays a reward
function takes (:func:`arrays_from_table`), and loading a saved reward the way
:func:`rewardnets.load_reward` does (:class:`LoadedReward`). The engines live
in :mod:`rewardnets.apps.offline_relabel` (local) and
:mod:`rewardnets.apps.offline_ray` (Ray).

pyarrow is imported when a function here first needs it (the ``offline`` extra).
"""

from __future__ import annotations

import os
import tempfile
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

from rewardnets.errors import RewardNetsError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DatasetError",
    "Columns",
    "LoadedReward",
    "RelabelResult",
    "arrays_from_table",
    "import_pyarrow",
]

#: The roles of a transition and their default column names.
ROLES = ("observations", "actions", "next_observations", "dones")


class DatasetError(RewardNetsError, ValueError):
    """A dataset that cannot be relabelled: a missing column, a wrong shape or type, nulls."""


def import_pyarrow() -> Any:
    """Pyarrow (with ``pyarrow.parquet``), or an ImportError naming the extra to install."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise ImportError(
            "Relabelling Parquet datasets needs pyarrow: pip install 'rewardnets[offline]' "
            "(or 'rewardnets[ray]' for the Ray engine)."
        ) from exc
    return pyarrow


# ---------------------------------------------------------------- the schema
@dataclass(frozen=True)
class Columns:
    """Which column holds each part of a transition.

    The documented schema uses the role names as column names
    (``observations``, ``actions``, ``next_observations``, ``dones``); give
    other names here. A ``Dict`` observation is either one struct column
    whose fields are the space's keys, or one column per key named
    ``<column>.<key>`` (``observations.position``, ``observations.velocity``).

    Attributes:
        observations: The observation column (or prefix, for a Dict space).
        actions: The action column.
        next_observations: The next observation column (or prefix).
        dones: The episode-end column (bool or 0/1 integers).
    """

    observations: str = "observations"
    actions: str = "actions"
    next_observations: str = "next_observations"
    dones: str = "dones"

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str] | Columns | None) -> Columns:
        """Columns from ``{role: column name}`` (roles left out keep their default).

        Raises:
            DatasetError: A key is not a role, or a name is not a non-empty string.
        """
        if mapping is None:
            return cls()
        if isinstance(mapping, Columns):
            return mapping
        if not isinstance(mapping, Mapping):
            raise DatasetError(
                f"Expected columns to be a mapping {{role: column}}, got {type(mapping).__name__}."
            )
        unknown = sorted(set(mapping) - set(ROLES))
        if unknown:
            raise DatasetError(f"Unknown column role(s) {unknown}; the roles are {list(ROLES)}.")
        for role, name in mapping.items():
            if not isinstance(name, str) or not name:
                raise DatasetError(
                    f"The column for {role!r} must be a non-empty string, got {name!r}."
                )
        return cls(**dict(mapping))

    def names(self) -> dict[str, str]:
        """``{role: column name}``."""
        return {role: getattr(self, role) for role in ROLES}


def _flatten_lists(array: Any, column: str, shape: tuple[int, ...]) -> np.ndarray:
    """Numbers of a (possibly nested) list column as a ``(rows, *shape)`` array."""
    pa = import_pyarrow()
    import pyarrow.compute as pc

    rows = len(array)
    values = array
    depth = 0
    while (
        pa.types.is_list(values.type)
        or pa.types.is_large_list(values.type)
        or (pa.types.is_fixed_size_list(values.type))
    ):
        if values.null_count:
            raise DatasetError(f"Column {column!r} has null entries; expected {shape} per row.")
        lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
        if len(lengths) and lengths.min() != lengths.max():
            raise DatasetError(
                f"Column {column!r} has lists of different lengths (from {lengths.min()} to "
                f"{lengths.max()}) at nesting level {depth}; expected shape {shape} per row."
            )
        values = values.flatten()
        depth += 1
    if values.null_count:
        raise DatasetError(f"Column {column!r} has null entries; expected {shape} per row.")
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)) and not (
        pa.types.is_boolean(values.type)
    ):
        raise DatasetError(
            f"Column {column!r} holds {values.type}; expected numbers (or lists of numbers)."
        )
    flat = values.to_numpy(zero_copy_only=False)
    size = int(np.prod(shape)) if shape else 1
    if flat.size != rows * size:
        per_row = flat.size / rows if rows else 0
        raise DatasetError(
            f"Column {column!r} has {per_row:g} values per row; the reward net expects shape "
            f"{shape} ({size} values)."
        )
    return flat.reshape((rows, *shape))


def _space_array(table: Any, column: str, space: spaces.Space[Any]) -> Any:
    """The part of ``table`` for ``space``: an array, or a dict of arrays for a Dict space."""
    if isinstance(space, spaces.Dict):
        if column in table.column_names:
            struct = table.column(column).combine_chunks()
            fields = {struct.type.field(i).name for i in range(struct.type.num_fields)}
            missing = [key for key in space.spaces if key not in fields]
            if missing:
                raise DatasetError(
                    f"The struct column {column!r} lacks the field(s) {missing} of the Dict "
                    f"space; it has {sorted(fields)}."
                )
            return {
                key: _convert(struct.field(key), f"{column}.{key}", sub)
                for key, sub in space.spaces.items()
            }
        out = {}
        for key, sub in space.spaces.items():
            name = f"{column}.{key}"
            if name not in table.column_names:
                raise DatasetError(
                    f"No column {column!r} (a struct) nor {name!r} for the Dict key {key!r}; "
                    f"the data has {table.column_names}."
                )
            out[key] = _convert(table.column(name).combine_chunks(), name, sub)
        return out
    if column not in table.column_names:
        raise DatasetError(
            f"No column {column!r}; the data has {table.column_names}. Name the right column "
            "with columns={...} (--columns ROLE=NAME on the command line)."
        )
    return _convert(table.column(column).combine_chunks(), column, space)


def _convert(array: Any, column: str, space: spaces.Space[Any]) -> np.ndarray:
    shape = tuple(space.shape or ())
    out = _flatten_lists(array, column, shape)
    if isinstance(space, spaces.Discrete | spaces.MultiDiscrete | spaces.MultiBinary):
        if out.dtype.kind == "f" and not np.all(np.equal(np.mod(out, 1), 0)):
            raise DatasetError(f"Column {column!r} holds non-integer values for the {space} space.")
        return out.astype(space.dtype if space.dtype is not None else np.int64, copy=False)
    return out


def arrays_from_table(
    table: pa.Table | pa.RecordBatch,
    observation_space: spaces.Space[Any],
    action_space: spaces.Space[Any],
    columns: Columns | Mapping[str, str] | None = None,
) -> tuple[Any, np.ndarray, Any, np.ndarray]:
    """Turn a batch of Parquet rows into ``(obs, acts, next_obs, dones)`` arrays.

    Args:
        table: The rows (an Arrow table or record batch).
        observation_space: The space of the observations (and next observations).
        action_space: The space of the actions.
        columns: Which column holds what (:class:`Columns`, or ``{role: name}``).

    Returns:
        The arrays in the spaces' shapes, one row per transition; Dict
        observations as dicts of arrays; dones as booleans.

    Raises:
        DatasetError: A column is missing, has nulls, or does not fit its space.
    """
    pa = import_pyarrow()
    cols = Columns.from_mapping(columns)
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    obs = _space_array(table, cols.observations, observation_space)
    acts = _space_array(table, cols.actions, action_space)
    next_obs = _space_array(table, cols.next_observations, observation_space)
    if cols.dones not in table.column_names:
        raise DatasetError(
            f"No column {cols.dones!r} for the episode ends; the data has {table.column_names}. "
            "Name the right column with columns={'dones': ...} (--columns dones=NAME)."
        )
    dones_col = table.column(cols.dones).combine_chunks()
    if not (pa.types.is_boolean(dones_col.type) or pa.types.is_integer(dones_col.type)):
        raise DatasetError(
            f"Column {cols.dones!r} holds {dones_col.type}; expected bool or 0/1 integers."
        )
    if dones_col.null_count:
        raise DatasetError(f"Column {cols.dones!r} has null entries.")
    dones = dones_col.to_numpy(zero_copy_only=False)
    if dones.dtype != bool:
        if not np.isin(dones, (0, 1)).all():
            raise DatasetError(f"Column {cols.dones!r} holds integers other than 0 and 1.")
        dones = dones.astype(bool)
    return obs, acts, next_obs, dones


# ---------------------------------------------------------------- the reward
class LoadedReward:
    """A saved reward loaded through :func:`rewardnets.load_reward`, for data without an env.

    The spaces come from the saved net itself, so the file is read and checked
    exactly as ``load_reward`` checks it (safe format, allow-listed pickles,
    statistics, spaces) — once here and again by ``load_reward``.

    Args:
        reward_type: The registered reward type; ``None`` picks the whole
            stack's reward with frozen statistics: ``RewardNet_normalized`` when
            the outermost wrapper is a ``NormalizedRewardNet``,
            ``RewardNet_std_added`` when the stack has an
            ``AddSTDRewardWrapper``, else ``RewardNet_unnormalized``.
        reward_path: The saved net.
        reward_kwargs: Options of the reward type (``device``, ``trust_pickle``…).

    Attributes:
        reward_type: The reward type used.
        reward_fn: What ``load_reward`` returned.
        observation_space: The net's observation space.
        action_space: The net's action space.
    """

    def __init__(
        self,
        reward_type: str | None,
        reward_path: str | os.PathLike[str],
        reward_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        from rewardnets.apps.reward_choice import default_reward_type
        from rewardnets.serialize import load, load_reward

        kwargs = dict(reward_kwargs or {})
        trust = kwargs.get("trust_pickle", False)
        net = load(reward_path, trust_pickle=trust) if isinstance(trust, bool) else None
        if net is None:
            raise TypeError(f"Expected trust_pickle to be True or False, got {trust!r}.")
        if reward_type is None:
            reward_type = default_reward_type(net)
        self.reward_type: str = reward_type
        self.observation_space = net.observation_space
        self.action_space = net.action_space
        spaces_of = types.SimpleNamespace(
            observation_space=net.observation_space, action_space=net.action_space
        )
        self.reward_fn: Callable[..., np.ndarray] = load_reward(
            reward_type, reward_path, spaces_of, **kwargs
        )

    @classmethod
    def from_bytes(
        cls, reward_type: str | None, data: bytes, reward_kwargs: Mapping[str, Any] | None = None
    ) -> LoadedReward:
        """Load from a file's bytes (what a remote worker receives), checked as a file is."""
        handle, name = tempfile.mkstemp(suffix=".rewardnet")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            return cls(reward_type, name, reward_kwargs)
        finally:
            os.unlink(name)

    def relabel(
        self, table: pa.Table | pa.RecordBatch, columns: Columns, reward_column: str
    ) -> pa.Table:
        """``table`` with the reward of each row appended as ``reward_column``."""
        pa = import_pyarrow()
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if reward_column in table.column_names:
            raise DatasetError(
                f"The data already has a column {reward_column!r}; choose another reward "
                "column name (reward_column=..., --reward-column)."
            )
        if table.num_rows == 0:
            return table.append_column(reward_column, pa.array([], type=pa.float32()))
        obs, acts, next_obs, dones = arrays_from_table(
            table, self.observation_space, self.action_space, columns
        )
        rewards = np.asarray(self.reward_fn(obs, acts, next_obs, dones))
        return table.append_column(reward_column, pa.array(rewards))


@dataclass
class RelabelResult:
    """What :func:`relabel_dataset` did.

    Attributes:
        rows: Transitions relabelled.
        files: The Parquet files written, in row order.
        engine: ``"local"`` or ``"ray"``.
        seconds: Wall-clock time of the job (loading the reward included).
    """

    rows: int
    files: list[Path] = field(default_factory=list)
    engine: str = "local"
    seconds: float = 0.0
