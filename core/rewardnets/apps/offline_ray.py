"""The Ray engine of :func:`rewardnets.relabel.relabel_dataset`.

The driver cuts the job into ordered work items (runs of whole row groups of
one input file, :func:`work_items`); Ray Data feeds them, one per block, to a
pool of actors (:class:`RewardActor`), each of which loads the reward once,
from the bytes of the file the driver has already checked; each call reads its
row groups with pyarrow, relabels them in ``batch_size`` slices and returns
one table; ``write_parquet`` writes the result in order (Ray Data's
``preserve_order``; the files are named by write-task index, so their names
sort in row order). Actors are restarted, and their calls retried, when a
worker dies (Ray Data's defaults for actor pools: ``max_restarts=-1``,
``max_task_retries=-1``).

Why not ``read_parquet`` feeding ``map_batches``: Ray fuses the read into
the actor's task, and a task that yields several blocks and dies half-way is
retried with its outputs out of order (measured with Ray 2.60: the
worker-kill test found a batch of 8 rows moved). One work item in, one table
out, makes a retry all-or-nothing. The input files must be readable by every
worker (a shared file system, or one machine).

Ray is imported when :func:`relabel_with_ray` runs (the ``ray`` extra).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rewardnets.apps.offline_data import Columns, DatasetError, LoadedReward, RelabelResult

__all__ = ["RewardActor", "relabel_with_ray", "work_items"]

#: Rows per work item the engine aims for (whole row groups, so at least one).
_ROWS_PER_BLOCK = 65_536


class RewardActor:
    """A Ray Data actor: loads the reward once, then relabels Arrow batches.

    Args:
        reward_type: The reward type, as ``load_reward`` names it.
        data: The bytes of the reward file (checked by the driver first, and
            again here by ``load_reward``).
        reward_kwargs: Options of the reward type.
        columns: Which columns hold the transitions.
        reward_column: The name of the new column.
        batch_size: Transitions per reward call.

    Each call takes one work item of :func:`work_items` (``path``, ``first``
    and ``stop`` row group) and returns its rows, relabelled, as one table.
    """

    def __init__(
        self,
        reward_type: str,
        data: bytes,
        reward_kwargs: Mapping[str, Any],
        columns: Columns,
        reward_column: str,
        batch_size: int,
    ) -> None:
        self.reward = LoadedReward.from_bytes(reward_type, data, reward_kwargs)
        self.columns = columns
        self.reward_column = reward_column
        self.batch_size = batch_size

    def __call__(self, items: dict[str, Any]) -> Any:
        """Read the item's row groups, relabel them in batches, return them as one table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if len(items["path"]) != 1:
            raise RuntimeError(f"Expected one work item per call, got {len(items['path'])}.")
        path, first, stop = str(items["path"][0]), int(items["first"][0]), int(items["stop"][0])
        with pq.ParquetFile(path) as file:
            block = file.read_row_groups(list(range(first, stop)))
        parts = [
            self.reward.relabel(
                block.slice(start, self.batch_size), self.columns, self.reward_column
            )
            for start in range(0, max(block.num_rows, 1), self.batch_size)
        ]
        return pa.concat_tables(parts)


def _settle_fsspec_http() -> None:
    """Make a failing ``fsspec.implementations.http`` import fail the same way every time.

    Ray Data resolves the input paths in threads, and each asks for fsspec's
    HTTP filesystem, catching only ``ModuleNotFoundError``. Without aiohttp
    that module cannot be imported, and two threads importing it at once can
    get a plain ``ImportError`` instead, which ends the job. Marking the
    module absent (only when it cannot be imported anyway) makes every later
    import raise ``ModuleNotFoundError``.
    """
    try:
        import fsspec.implementations.http  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        sys.modules.setdefault("fsspec.implementations.http", None)  # type: ignore[arg-type]


def work_items(files: Sequence[Path]) -> list[dict[str, Any]]:
    """The job cut into ordered items: runs of whole row groups of one file.

    An item holds about :data:`_ROWS_PER_BLOCK` rows (at least one row group).
    """
    import pyarrow.parquet as pq

    items: list[dict[str, Any]] = []
    for path in files:
        meta = pq.ParquetFile(path).metadata
        first, rows = 0, 0
        for group in range(meta.num_row_groups):
            rows += meta.row_group(group).num_rows
            if rows >= _ROWS_PER_BLOCK:
                items.append({"path": str(path), "first": first, "stop": group + 1})
                first, rows = group + 1, 0
        if first < meta.num_row_groups or meta.num_row_groups == 0:
            items.append({"path": str(path), "first": first, "stop": meta.num_row_groups})
    return items


def _check_resources(
    ray: Any, workers: int, num_cpus: float, num_gpus: float, started_here: bool
) -> None:
    have = ray.cluster_resources()
    cpus, gpus = float(have.get("CPU", 0.0)), float(have.get("GPU", 0.0))
    need_cpus = workers * num_cpus + 1.0
    if cpus < need_cpus:
        raise DatasetError(
            f"The Ray cluster has {cpus:g} CPUs; {workers} worker(s) of {num_cpus:g} CPU "
            f"need {need_cpus:g} (one more for the read and write tasks, or the job would "
            "hang). Use fewer workers or fewer CPUs per worker, or a bigger cluster."
        )
    if gpus < workers * num_gpus:
        raise DatasetError(
            f"The Ray cluster has {gpus:g} GPUs; {workers} worker(s) of {num_gpus:g} GPU "
            f"need {workers * num_gpus:g}."
        )


def relabel_with_ray(
    reward_type: str,
    data: bytes,
    reward_kwargs: dict[str, Any],
    files: Sequence[Path],
    out: Path,
    columns: Columns,
    reward_column: str,
    batch_size: int,
    *,
    workers: int = 1,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    address: str | None = None,
) -> RelabelResult:
    """Relabel ``files`` into ``out`` with Ray Data; see ``relabel_dataset``.

    Raises:
        ImportError: Ray (with Ray Data) is not installed.
        DatasetError: The options or the cluster's resources do not fit.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise DatasetError(f"workers must be a positive int, got {workers!r}.")
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise DatasetError(f"{name} must be a number >= 0, got {value!r}.")
    try:
        import pyarrow.parquet as pq
        import ray
        import ray.data
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise ImportError("The Ray engine needs Ray Data: pip install 'rewardnets[ray]'.") from exc

    _settle_fsspec_http()
    kwargs = dict(reward_kwargs)
    if num_gpus > 0 and "device" not in kwargs:
        kwargs["device"] = "cuda"
    started_here = False
    if address is not None:
        ray.init(address=address, ignore_reinit_error=True)
    elif not ray.is_initialized():
        ray.init(
            num_cpus=math.ceil(workers * num_cpus) + 1,
            include_dashboard=False,
            log_to_driver=False,
        )
        started_here = True
    try:
        _check_resources(ray, workers, num_cpus, num_gpus, started_here)
        context = ray.data.DataContext.get_current()
        saved_order = context.execution_options.preserve_order
        context.execution_options.preserve_order = True
        try:
            items = work_items(files)
            source = ray.data.from_items(items, override_num_blocks=len(items))
            dataset = source.map_batches(
                RewardActor,
                fn_constructor_args=(
                    reward_type,
                    data,
                    kwargs,
                    columns,
                    reward_column,
                    batch_size,
                ),
                batch_size=None,  # whole blocks: one output per task (see the module doc)
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=num_cpus,
                num_gpus=num_gpus,
            )
            dataset.write_parquet(str(out))
        finally:
            context.execution_options.preserve_order = saved_order
    finally:
        if started_here:
            ray.shutdown()
    written = sorted(out.glob("*.parquet"))
    count = sum(pq.ParquetFile(path).metadata.num_rows for path in written)
    return RelabelResult(rows=count, files=written, engine="ray")
