"""The Ray engine of :func:`rewardnets.relabel.relabel_dataset`.

Ray Data reads the Parquet files, ``map_batches`` sends batches to a pool of
actors (:class:`RewardActor`), each of which loads the reward once, from the
bytes of the file the driver has already checked, and ``write_parquet``
writes the result. Order is kept with Ray Data's ``preserve_order``; the
written files are named by write-task index, so their names sort in row order.
Actors are restarted, and their batches retried, when a worker dies (Ray
Data's defaults for actor pools: ``max_restarts=-1``, ``max_task_retries=-1``).

Ray is imported when :func:`relabel_with_ray` runs (the ``ray`` extra).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rewardnets.apps.offline_data import Columns, DatasetError, LoadedReward, RelabelResult

__all__ = ["RewardActor", "relabel_with_ray"]

#: Rows per Ray block the engine aims for: enough blocks to spread over the actors.
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
    """

    def __init__(
        self,
        reward_type: str,
        data: bytes,
        reward_kwargs: Mapping[str, Any],
        columns: Columns,
        reward_column: str,
    ) -> None:
        self.reward = LoadedReward.from_bytes(reward_type, data, reward_kwargs)
        self.columns = columns
        self.reward_column = reward_column

    def __call__(self, batch: Any) -> Any:
        """The batch (an Arrow table) with the reward column appended."""
        return self.reward.relabel(batch, self.columns, self.reward_column)


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
            rows = sum(pq.ParquetFile(path).metadata.num_rows for path in files)
            blocks = max(len(files), 2 * workers, math.ceil(rows / _ROWS_PER_BLOCK))
            dataset = ray.data.read_parquet(
                [str(path) for path in files], override_num_blocks=blocks
            )
            dataset = dataset.map_batches(
                RewardActor,
                fn_constructor_args=(reward_type, data, kwargs, columns, reward_column),
                batch_size=batch_size,
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
