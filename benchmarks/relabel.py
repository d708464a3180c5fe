#!/usr/bin/env python
"""Relabelling Parquet datasets: transitions per second against the net's raw predict.

Run it from the repository root::

    .venv/bin/python benchmarks/relabel.py            # 10^6 transitions, about 2 minutes
    .venv/bin/python benchmarks/relabel.py --quick    # 10^5, no Ray, no cap: a smoke run

Figures, all on the same generated dataset (Pendulum-v1's spaces, a
``NormalizedRewardNet`` over a ``BasicRewardNet`` of all four inputs, 8 files):

Two nets: hidden layers (32, 32) (``BasicRewardNet``'s default: reading and
writing Parquet costs more than the net) and (256, 256) (the net costs more).

* ``raw``: the reward function of ``load_reward`` over arrays already in
  memory, in batches of ``--batch-size``: the floor no engine can beat.
* ``local``: ``relabel_dataset`` with the local engine, reading and writing Parquet.
* ``ray-1``, ``ray-2``: the Ray engine with 1 and 2 workers on a local cluster
  started beforehand (3 CPUs: the workers plus one for the driver's tasks);
  the time includes starting the actors (each imports torch and loads the net).

Each figure is transitions per second and its ratio to ``raw`` in the same
run. ``--cap`` also relabels a dataset of about 1 GiB (decoded) in a child
process whose address space is capped 512 MiB above what it holds after its
imports, and checks that reading the same data whole fails under that cap.
Results go to ``benchmarks/results/relabel.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from gymnasium import spaces

from rewardnets.networks import RunningNorm
from rewardnets.relabel import arrays_from_table, relabel_dataset
from rewardnets.reward_nets import BasicRewardNet, NormalizedRewardNet
from rewardnets.serialize import load_reward, save

OBS = spaces.Box(-8.0, 8.0, (3,), np.float32)
ACT = spaces.Box(-2.0, 2.0, (1,), np.float32)


def make_dataset(folder: Path, rows: int, files: int = 8) -> None:
    """``rows`` random Pendulum-shaped transitions in ``files`` Parquet files."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    per_file = rows // files
    for index in range(files):
        obs = rng.uniform(-1, 1, (per_file, 3)).astype(np.float32)
        nxt = rng.uniform(-1, 1, (per_file, 3)).astype(np.float32)
        acts = rng.uniform(-2, 2, (per_file, 1)).astype(np.float32)
        table = pa.table(
            {
                "observations": pa.FixedSizeListArray.from_arrays(obs.ravel(), 3),
                "actions": pa.FixedSizeListArray.from_arrays(acts.ravel(), 1),
                "next_observations": pa.FixedSizeListArray.from_arrays(nxt.ravel(), 3),
                "dones": rng.random(per_file) < 0.005,
            }
        )
        pq.write_table(table, folder / f"part-{index:02d}.parquet", row_group_size=32_768)


def make_net(path: Path, hidden: tuple[int, ...]) -> None:
    """A fitted NormalizedRewardNet over a BasicRewardNet of all four inputs, saved."""
    torch.manual_seed(0)
    net = NormalizedRewardNet(
        BasicRewardNet(OBS, ACT, use_next_state=True, use_done=True, hid_sizes=hidden),
        RunningNorm,
    )
    rng = np.random.default_rng(1)
    net.predict_processed(
        rng.uniform(-1, 1, (4096, 3)).astype(np.float32),
        rng.uniform(-2, 2, (4096, 1)).astype(np.float32),
        rng.uniform(-1, 1, (4096, 3)).astype(np.float32),
        np.zeros(4096, bool),
    )
    save(net, path)


def raw_rate(data: Path, net: Path, batch_size: int, repeats: int) -> float:
    """Transitions/s of load_reward's function over in-memory arrays, in batches."""
    fn = load_reward(
        "RewardNet_normalized", net, types.SimpleNamespace(observation_space=OBS, action_space=ACT)
    )
    obs, acts, nxt, dones = arrays_from_table(pq.read_table(data), OBS, ACT)
    rows = len(dones)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for a in range(0, rows, batch_size):
            fn(obs[a : a + batch_size], acts[a : a + batch_size], nxt[a : a + batch_size],
               dones[a : a + batch_size])  # fmt: skip
        times.append(time.perf_counter() - start)
    return rows / statistics.median(times)


def engine_rate(data: Path, net: Path, out: Path, repeats: int, **options: Any) -> float:
    """Transitions/s of relabel_dataset (median of ``repeats`` runs)."""
    times = []
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        result = relabel_dataset(data, net, out, **options)
        times.append(time.perf_counter() - start)
    return result.rows / statistics.median(times)


_CAPPED = textwrap.dedent(
    """
    import json, resource, sys
    import pyarrow.parquet as pq
    from rewardnets.relabel import relabel_dataset
    from rewardnets.reward_nets import BasicRewardNet  # noqa: F401  (the imports a job has)

    def kib(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1])

    mode, data, net, out = sys.argv[1:5]
    relabel_dataset(sys.argv[5], net, out + "-warm")  # imports, first plans, thread pools
    cap = (kib("VmSize:") + 512 * 1024) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        if mode == "whole":
            rows = pq.read_table(data).num_rows
        else:
            rows = relabel_dataset(data, net, out, batch_size=8192).rows
        print(json.dumps({"ok": True, "rows": rows, "cap_mib": cap >> 20,
                          "peak_rss_mib": kib("VmHWM:") >> 10}))
    except MemoryError as exc:
        print(json.dumps({"ok": False, "error": type(exc).__name__, "cap_mib": cap >> 20}))
    """
)


def capped_run(folder: Path) -> dict[str, Any]:
    """Relabel ~1 GiB (decoded) under an address-space cap 512 MiB above the imports."""
    schema = pa.schema(
        [
            ("observations", pa.list_(pa.float32(), 64)),
            ("actions", pa.list_(pa.float32(), 2)),
            ("next_observations", pa.list_(pa.float32(), 64)),
            ("dones", pa.bool_()),
        ]
    )
    obs_space = spaces.Box(-1.0, 1.0, (64,), np.float32)
    save(BasicRewardNet(obs_space, spaces.Box(-1.0, 1.0, (2,), np.float32)), folder / "big.rn")
    pool = np.random.default_rng(0).uniform(-1, 1, (64, 64)).astype(np.float32)
    groups, per_group = 80, 25_000  # 2,000,000 rows x 130 float32 = 1.04 GB decoded
    with (
        pq.ParquetWriter(folder / "big.parquet", schema) as writer,
        pq.ParquetWriter(folder / "warm.parquet", schema) as warm,
    ):
        for g in range(groups):
            obs = pool[(np.arange(per_group) + g) % 64]
            table = pa.table(
                {
                    "observations": pa.FixedSizeListArray.from_arrays(obs.ravel(), 64),
                    "actions": pa.FixedSizeListArray.from_arrays(
                        np.zeros(per_group * 2, np.float32), 2
                    ),
                    "next_observations": pa.FixedSizeListArray.from_arrays(obs.ravel(), 64),
                    "dones": np.zeros(per_group, bool),
                },
                schema=schema,
            )
            writer.write_table(table)
            if g == 0:
                warm.write_table(table.slice(0, 1000))
    report: dict[str, Any] = {
        "decoded_mib": groups * per_group * 130 * 4 >> 20,
        "file_mib": (folder / "big.parquet").stat().st_size >> 20,
    }
    for mode in ("whole", "relabel"):
        job = subprocess.run(
            [
                sys.executable,
                "-c",
                _CAPPED,
                mode,
                str(folder / "big.parquet"),
                str(folder / "big.rn"),
                str(folder / f"out-{mode}"),
                str(folder / "warm.parquet"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = job.stdout.strip().splitlines()
        report[mode] = json.loads(lines[-1]) if lines else {"ok": False, "error": job.stderr[-500:]}
    return report


def main() -> None:
    """Run the figures, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^5 rows, no Ray, no cap")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--cap", action="store_true", help="also the capped run (~1 GiB)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/relabel.json"))
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    use_ray = not (args.quick or args.no_ray)
    torch.set_num_threads(1)

    nets = [(32, 32)] if args.quick else [(32, 32), (256, 256)]
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_dataset(root / "data", rows)
        if use_ray:
            import ray

            ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
            ray.data.DataContext.get_current().enable_progress_bars = False
        try:
            for hidden in nets:
                size = "x".join(map(str, hidden))
                net = root / f"net-{size}.rn"
                make_net(net, hidden)
                raw = raw_rate(root / "data", net, args.batch_size, args.repeats)
                figures[f"raw/{size}"] = {"transitions_per_s": raw, "ratio": 1.0}
                local = engine_rate(
                    root / "data", net, root / "out", args.repeats, batch_size=args.batch_size
                )
                figures[f"local/{size}"] = {"transitions_per_s": local, "ratio": local / raw}
                for workers in (1, 2) if use_ray else ():
                    rate = engine_rate(
                        root / "data", net, root / "out", 1,
                        engine="ray", workers=workers, batch_size=args.batch_size,
                    )  # fmt: skip
                    figures[f"ray-{workers}/{size}"] = {
                        "transitions_per_s": rate,
                        "ratio": rate / raw,
                    }
        finally:
            if use_ray:
                ray.shutdown()
        capped = capped_run(root) if args.cap else None

    print(f"\n{rows:,} transitions, batch size {args.batch_size}, {platform.processor()}")
    print(f"| {'engine/net':<16} | {'transitions/s':>14} | {'vs raw predict':>14} |")
    print(f"|{'-' * 18}|{'-' * 16}|{'-' * 16}|")
    for name, figure in figures.items():
        print(f"| {name:<16} | {figure['transitions_per_s']:>14,.0f} | {figure['ratio']:>14.2f} |")
    if capped is not None:
        print(f"\ncapped run: {json.dumps(capped)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "meta": {"rows": rows, "batch_size": args.batch_size, "quick": args.quick},
        "figures": figures,
        "capped": capped,
    }
    args.out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
