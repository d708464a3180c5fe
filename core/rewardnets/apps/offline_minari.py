"""Minari datasets as Parquet transitions in the documented schema.

``relabel_dataset("minari:<dataset id>", ...)`` converts the dataset with
:func:`minari_to_parquet` into a temporary folder and relabels that, with
either engine. minari is imported when a function here runs (the ``minari``
extra); the dataset is found by minari itself (``MINARI_DATASETS_PATH``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rewardnets.apps.offline_data import DatasetError, import_pyarrow

__all__ = ["MINARI_PREFIX", "minari_to_parquet"]

#: How ``relabel_dataset``'s ``data`` names a Minari dataset: ``minari:<dataset id>``.
MINARI_PREFIX = "minari:"


def _column(values: Any, pa: Any) -> Any:
    array = np.ascontiguousarray(values)
    if array.ndim == 1:
        return pa.array(array)
    column = pa.array(array.reshape(-1))
    for size in reversed(array.shape[1:]):
        column = pa.FixedSizeListArray.from_arrays(column, size)
    return column


def _part(name: str, values: Any, pa: Any) -> dict[str, Any]:
    if isinstance(values, dict):
        out: dict[str, Any] = {}
        for key, sub in values.items():
            if isinstance(sub, dict):
                raise DatasetError(
                    f"The Minari dataset's {name} nest Dict spaces ({key!r}); only one level "
                    "of Dict is converted."
                )
            out[f"{name}.{key}"] = _column(sub, pa)
        return out
    if isinstance(values, tuple):
        raise DatasetError(f"The Minari dataset's {name} are Tuples; they are not converted.")
    return {name: _column(values, pa)}


def minari_to_parquet(
    dataset_id: str, out: str | os.PathLike[str], *, episodes_per_file: int = 100
) -> list[Path]:
    """Write a Minari dataset's transitions as Parquet files in the documented schema.

    Each episode of ``n`` steps (``n + 1`` observations) gives ``n`` rows:
    ``episode_id``, ``step``, ``observations`` (``observations[:-1]``),
    ``actions``, ``next_observations`` (``observations[1:]``), ``rewards``,
    ``terminations``, ``truncations`` and ``dones`` (either of them). Dict
    observations become one column per key (``observations.<key>``).

    Args:
        dataset_id: The Minari dataset, as ``minari.load_dataset`` takes it.
        out: The folder to write ``part-00000.parquet``… into (created).
        episodes_per_file: Episodes per file; one episode is in memory at a time.

    Returns:
        The files written, in order.

    Raises:
        ImportError: minari is not installed.
        DatasetError: The dataset has no episodes or a layout not converted.
    """
    try:
        import minari
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise ImportError(
            "Reading Minari datasets needs minari: pip install 'rewardnets[minari]'."
        ) from exc
    pa = import_pyarrow()
    dataset = minari.load_dataset(dataset_id)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    writer = None
    try:
        for index, episode in enumerate(dataset.iterate_episodes()):
            if index % episodes_per_file == 0:
                if writer is not None:
                    writer.close()
                files.append(folder / f"part-{len(files):05d}.parquet")
                writer = None
            steps = len(episode.actions) if not isinstance(episode.actions, dict) else None
            if steps is None:
                raise DatasetError("The Minari dataset's actions are a Dict; not converted.")
            obs = episode.observations
            first = {k: v[:-1] for k, v in obs.items()} if isinstance(obs, dict) else obs[:-1]
            then = {k: v[1:] for k, v in obs.items()} if isinstance(obs, dict) else obs[1:]
            terminations = np.asarray(episode.terminations, bool)
            truncations = np.asarray(episode.truncations, bool)
            columns = {
                "episode_id": pa.array(np.full(steps, episode.id, np.int64)),
                "step": pa.array(np.arange(steps, dtype=np.int64)),
                **_part("observations", first, pa),
                **_part("actions", episode.actions, pa),
                **_part("next_observations", then, pa),
                "rewards": _column(np.asarray(episode.rewards), pa),
                "terminations": pa.array(terminations),
                "truncations": pa.array(truncations),
                "dones": pa.array(terminations | truncations),
            }
            table = pa.table(columns)
            if writer is None:
                writer = pa.parquet.ParquetWriter(files[-1], table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if not files:
        raise DatasetError(f"The Minari dataset {dataset_id!r} has no episodes.")
    return files
