"""The Ray engine of ``relabel_dataset`` on a local two-CPU Ray cluster.

Its output is compared row by row with the local engine's, and a worker is
killed in the middle of a batch: Ray restarts it, retries the batch, and the
output is still complete and in order.
"""

from __future__ import annotations

import os
import shlex
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from rewardnets.networks import RunningNorm
from rewardnets.relabel import DatasetError, RelabelResult, relabel_dataset
from rewardnets.reward_nets import BasicRewardNet, NormalizedRewardNet
from rewardnets.serialize import UnsafePickleError, save

ray = pytest.importorskip("ray")  # the test extra installs it; this names what is missing


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def dataset(pendulum_transitions: dict[str, Any], tmp_path_factory: Any) -> tuple[Path, Path]:
    """8 Parquet files of 500 Pendulum transitions each, and a saved normalised net."""
    t = pendulum_transitions
    root = tmp_path_factory.mktemp("ray-data")
    torch.manual_seed(1)
    net = NormalizedRewardNet(
        BasicRewardNet(
            t["observation_space"], t["action_space"], use_next_state=True, use_done=True
        ),
        RunningNorm,
    )
    net.predict_processed(t["obs"], t["acts"], t["next_obs"], t["dones"])
    save(net, root / "reward.rn")
    for index, start in enumerate(range(0, 4000, 500)):
        stop = start + 500
        pq.write_table(
            pa.table(
                {
                    "step": np.arange(start, stop),
                    "observations": list(t["obs"][start:stop]),
                    "actions": list(t["acts"][start:stop]),
                    "next_observations": list(t["next_obs"][start:stop]),
                    "dones": t["dones"][start:stop],
                }
            ),
            root / "data" / f"part-{index}.parquet" if (root / "data").is_dir() else _mk(root),
        )
    return root / "data", root / "reward.rn"


def _mk(root: Path) -> Path:
    (root / "data").mkdir()
    return root / "data" / "part-0.parquet"


def _same_as_local(out: Path, local: Path) -> None:
    ray_table = pq.read_table(out)
    local_table = pq.read_table(local)
    assert ray_table.num_rows == local_table.num_rows == 4000
    np.testing.assert_array_equal(ray_table.column("step").to_numpy(), np.arange(4000))
    assert ray_table.drop_columns(["learned_reward"]).equals(
        local_table.drop_columns(["learned_reward"])
    )
    # Row by row; batches of another size round float32 sums differently.
    np.testing.assert_allclose(
        ray_table.column("learned_reward").to_numpy(),
        local_table.column("learned_reward").to_numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.fixture(scope="module")
def local_output(dataset: tuple[Path, Path], tmp_path_factory: Any) -> Path:
    data, net = dataset
    out = tmp_path_factory.mktemp("local-out")
    relabel_dataset(data, net, out, batch_size=64, overwrite=True)
    return out


def test_ray_engine_matches_the_local_engine_row_by_row(
    ray_cluster: None, dataset: tuple[Path, Path], local_output: Path, tmp_path: Path
) -> None:
    data, net = dataset
    result = relabel_dataset(data, net, tmp_path / "out", engine="ray", batch_size=64)
    assert result.engine == "ray" and result.rows == 4000
    assert result.files == sorted(result.files) and result.files
    _same_as_local(tmp_path / "out", local_output)


def _map_workers(busy: bool) -> list[int]:
    """Pids of the Ray Data actors running RewardActor (only those inside a batch if busy)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        # Ray titles an actor "ray::Class" when idle and "ray::Class.method" in a call.
        if title.startswith("ray::MapWorker(MapBatches(RewardActor))") and (
            not busy or title.endswith(".submit")
        ):
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker through /proc (Linux)")
def test_a_worker_killed_mid_job_is_retried_and_the_output_is_complete(
    ray_cluster: None, dataset: tuple[Path, Path], local_output: Path, tmp_path: Path
) -> None:
    data, net = dataset
    outcome: dict[str, Any] = {}

    def job() -> None:
        try:
            # Batches of 8 rows: 500 calls, so the job is still running when the kill comes.
            outcome["result"] = relabel_dataset(
                data, net, tmp_path / "out", engine="ray", batch_size=8
            )
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    thread = threading.Thread(target=job)
    thread.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        busy = _map_workers(busy=True)
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            killed = busy[0]
        else:
            time.sleep(0.01)
    assert killed is not None, "no worker was seen inside a batch"
    assert thread.is_alive(), "the job ended before the worker was killed"
    thread.join(timeout=180)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    result: RelabelResult = outcome["result"]
    assert result.rows == 4000
    assert killed not in _map_workers(busy=False)
    _same_as_local(tmp_path / "out", local_output)


def test_the_file_is_checked_before_any_worker_starts(
    ray_cluster: None, dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    data, _ = dataset
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> Any:
            return (os.system, (f"touch {shlex.quote(str(marker))}",))

    torch.save(Payload(), tmp_path / "evil.pt")
    workers_before = set(_map_workers(busy=False))  # earlier jobs' actors may still be ending
    with pytest.raises(UnsafePickleError, match="trust_pickle=True"):
        relabel_dataset(data, tmp_path / "evil.pt", tmp_path / "out", engine="ray")
    assert not marker.exists() and not (tmp_path / "out").exists()
    assert set(_map_workers(busy=False)) <= workers_before  # no worker was started


def test_a_cluster_too_small_for_the_workers_is_refused(
    ray_cluster: None, dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    data, net = dataset
    with pytest.raises(DatasetError, match=r"has 2 CPUs; 2 worker\(s\) of 1 CPU need 3"):
        relabel_dataset(data, net, tmp_path / "out", engine="ray", workers=2)
    with pytest.raises(DatasetError, match="workers must be a positive int, got 0"):
        relabel_dataset(data, net, tmp_path / "out2", engine="ray", workers=0)
