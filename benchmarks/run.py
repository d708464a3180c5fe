#!/usr/bin/env python
"""How close rewardnets' hot paths come to raw torch: ratios against floors.

Run it from the repository root::

    .venv/bin/python benchmarks/run.py            # the full run, about a minute
    .venv/bin/python benchmarks/run.py --quick    # a smoke run, about 20 s

Every figure is a ratio ``subject time / baseline time``. Subject and baseline
are timed in the same process, interleaved: each round times every callable of
a group once (a block of calls lasting ``block_s``), alternating their order
between rounds, and a figure is the median over the rounds of that round's
ratio. Machine-wide slowdowns hit both sides of a round alike and cancel out.
The table is printed and the figures are written as JSON (by default to
``benchmarks/results/latest.json``). ``docs/performance.md`` explains each
figure and its target.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import rewardnets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.timing import (
    FULL,
    QUICK,
    Figure,
    Settings,
    Timed,
    _syncer,
    cheapest,
    ratio_figure,
    time_interleaved,
    tune_malloc,
)

ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "results" / "latest.json"

#: Batch sizes of the MLP ``predict_processed`` figures.
PREDICT_BATCHES = (1, 8, 64, 1024, 16384)
#: Environments whose spaces the MLP figures use: Box actions and Discrete actions.
PREDICT_ENVS = ("Pendulum-v1", "CartPole-v1")
#: Batch sizes of the CNN figures (84x84x4 uint8 images, Discrete(6) actions).
CNN_BATCHES = (32, 256)
#: The CNN of the CNN figures: small enough for one CPU thread, Atari-like strides.
CNN_KWARGS: dict[str, Any] = {"hid_channels": (32, 64, 64), "kernel_size": 3, "stride": 2}
TRAIN_BATCH = 1024
N_ENVS = 8
#: Targets of the predict figures against the numpy floor (the plain MLP's, for both nets).
PREDICT_TARGETS: dict[tuple[str, int], float] = {
    ("BasicRewardNet", 8): 0.5,
    ("NormalizedRewardNet", 8): 0.6,
    ("BasicRewardNet", 16384): 1.0,
    ("NormalizedRewardNet", 16384): 1.0,
}
#: The least fraction of the unwrapped env's steps per second the wrapped env keeps.
ENV_KEPT_TARGET = 0.8


# ---------------------------------------------------------------------------- inputs
def _sample_batch(space: gym.spaces.Space[Any], batch: int, rng: np.random.Generator) -> np.ndarray:
    """A batch as a policy or an env would give it: float32 boxes, int64 discrete."""
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, int(space.n), batch)
    assert isinstance(space, gym.spaces.Box)
    if space.dtype == np.uint8:
        return rng.integers(0, 256, (batch, *space.shape), dtype=np.uint8)
    low = np.maximum(space.low, -10.0)
    high = np.minimum(space.high, 10.0)
    return rng.uniform(low, high, (batch, *space.shape)).astype(np.float32)


def _numpy_floors(
    mlp: nn.Module,
    obs: np.ndarray,
    acts: np.ndarray,
    act_space: gym.spaces.Space[Any],
    device: torch.device,
) -> dict[str, Timed]:
    """Raw ways to go from numpy in to numpy out through ``mlp``."""
    cpu = device.type == "cpu"
    out: dict[str, Timed] = {}
    if isinstance(act_space, gym.spaces.Discrete):
        n = int(act_space.n)
        eye_np = np.eye(n, dtype=np.float32)
        eye_th = torch.eye(n, device=device)

        def np_concat() -> np.ndarray:
            with torch.no_grad():
                x = torch.as_tensor(np.concatenate([obs, eye_np[acts]], 1))
                if cpu:
                    return mlp(x).numpy()
                return mlp(x.to(device)).cpu().numpy()

        def np_take() -> np.ndarray:
            with torch.no_grad():
                x = torch.as_tensor(np.concatenate([obs, eye_np.take(acts, 0)], 1))
                if cpu:
                    return mlp(x).numpy()
                return mlp(x.to(device)).cpu().numpy()

        def th_index() -> np.ndarray:
            with torch.no_grad():
                if cpu:
                    hot = eye_th.index_select(0, torch.as_tensor(acts))
                    return mlp(torch.cat([torch.as_tensor(obs), hot], 1)).numpy()
                hot = eye_th.index_select(0, torch.as_tensor(acts, device=device))
                x = torch.cat([torch.as_tensor(obs, device=device), hot], 1)
                return mlp(x).cpu().numpy()

        def th_one_hot() -> np.ndarray:
            with torch.no_grad():
                a = torch.as_tensor(acts, device=device)
                hot = nn.functional.one_hot(a, n).float()
                x = torch.cat([torch.as_tensor(obs, device=device), hot], 1)
                return mlp(x).cpu().numpy()

        out["np.concatenate + eye[acts]"] = np_concat
        out["np.concatenate + eye.take(acts)"] = np_take
        out["torch.cat + eye.index_select"] = th_index
        out["torch.cat + one_hot"] = th_one_hot
        return out

    def np_concat_box() -> np.ndarray:
        with torch.no_grad():
            x = torch.as_tensor(np.concatenate([obs, acts], 1))
            if cpu:
                return mlp(x).numpy()
            return mlp(x.to(device)).cpu().numpy()

    def th_cat_box() -> np.ndarray:
        with torch.no_grad():
            if cpu:
                return mlp(torch.cat([torch.as_tensor(obs), torch.as_tensor(acts)], 1)).numpy()
            x = torch.cat(
                [torch.as_tensor(obs, device=device), torch.as_tensor(acts, device=device)], 1
            )
            return mlp(x).cpu().numpy()

    out["np.concatenate"] = np_concat_box
    out["torch.cat"] = th_cat_box
    return out


def _numpy_limit(
    mlp: nn.Module, obs: np.ndarray, acts: np.ndarray, act_space: gym.spaces.Space[Any]
) -> Timed:
    """The same MLP written by hand in numpy, on views of its parameters: the kernel limit."""
    linears = [m for m in mlp.modules() if isinstance(m, nn.Linear)]
    layers = [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in linears]
    last = len(layers) - 1
    eye = None
    if isinstance(act_space, gym.spaces.Discrete):
        eye = np.eye(int(act_space.n), dtype=np.float32)

    def numpy_mlp() -> np.ndarray:
        x = np.concatenate([obs, acts if eye is None else eye.take(acts, 0)], 1)
        for i, (weight_t, bias) in enumerate(layers):
            x = x @ weight_t
            x += bias
            if i < last:
                np.maximum(x, 0, out=x)
        return x[:, 0]

    return numpy_mlp


# ------------------------------------------------------------------------ benchmarks
def bench_predict(
    settings: Settings,
    device: torch.device,
    envs: Sequence[str] = PREDICT_ENVS,
    batches: Sequence[int] = PREDICT_BATCHES,
) -> list[Figure]:
    """``predict_processed`` of BasicRewardNet and NormalizedRewardNet against floors."""
    figures: list[Figure] = []
    sync = _syncer(device)
    for env_id in envs:
        env = gym.make(env_id)
        obs_space, act_space = env.observation_space, env.action_space
        env.close()
        torch.manual_seed(0)
        # Nets stay in train mode, as while an algorithm trains them: every call
        # pays for switching to eval mode and back.
        basic = rewardnets.BasicRewardNet(obs_space, act_space).to(device)
        normalized = rewardnets.NormalizedRewardNet(basic).to(device)
        mlp = basic.mlp
        for batch in batches:
            rng = np.random.default_rng(batch)
            obs = _sample_batch(obs_space, batch, rng)
            acts = _sample_batch(act_space, batch, rng)
            with torch.no_grad():
                state, action, _, _ = basic.preprocess(obs, acts, None, None)
                assert isinstance(state, torch.Tensor) and isinstance(action, torch.Tensor)
                ready = torch.cat([state, action], 1).contiguous()

            def tensor_floor(x: torch.Tensor = ready, mlp: nn.Module = mlp) -> None:
                with torch.no_grad():
                    mlp(x)
                sync()

            variants = _numpy_floors(mlp, obs, acts, act_space, device)
            limit = _numpy_limit(mlp, obs, acts, act_space) if device.type == "cpu" else None
            for variant in [*variants.values(), *([limit] if limit else [])]:
                np.testing.assert_allclose(
                    cast(np.ndarray, variant()),
                    basic.predict_processed(obs, acts),
                    rtol=1e-5,
                    atol=1e-6,
                )
            # Every raw way is timed in the rounds; the floor is the one with the
            # lowest median. Discrete actions also get the cheapest way whose
            # one-hot is built with torch ops (the wording of the numpy
            # floor), reported in each figure's extra.
            callables: dict[str, Timed] = {
                "tensor floor": tensor_floor,
                **{f"floor: {name}": fn for name, fn in variants.items()},
                "BasicRewardNet": partial(basic.predict_processed, obs, acts),
                "NormalizedRewardNet": partial(normalized.predict_processed, obs, acts),
                **({"numpy MLP": limit} if limit else {}),
            }
            samples = time_interleaved(callables, settings)
            chosen = cheapest(samples, variants)
            samples["numpy floor"] = samples[f"floor: {chosen}"]
            chosen_torch = None
            if isinstance(act_space, gym.spaces.Discrete):
                chosen_torch = cheapest(samples, [v for v in variants if v.startswith("torch.")])
            for net_name in ("BasicRewardNet", "NormalizedRewardNet"):
                extra: dict[str, Any] = {"numpy_floor": chosen}
                if chosen_torch is not None:
                    extra["torch_built_floor"] = chosen_torch
                    extra["ratio_vs_torch_built_floor"] = ratio_figure(
                        "", samples, net_name, f"floor: {chosen_torch}"
                    ).ratio
                if limit is not None:
                    extra["ratio_vs_numpy_limit"] = ratio_figure(
                        "", samples, net_name, "numpy MLP"
                    ).ratio
                for floor in ("numpy floor", "tensor floor"):
                    target = (
                        PREDICT_TARGETS.get((net_name, batch)) if floor == "numpy floor" else None
                    )
                    figures.append(
                        ratio_figure(
                            f"predict/{net_name}/{env_id}/b{batch}/{floor.replace(' ', '_')}",
                            samples,
                            net_name,
                            floor,
                            target,
                            **extra,
                        )
                    )
            if limit is not None:
                figures.append(
                    ratio_figure(
                        f"predict/numpy_mlp/{env_id}/b{batch}/numpy_floor",
                        samples,
                        "numpy MLP",
                        "numpy floor",
                        numpy_floor=chosen,
                    )
                )
    return figures


def bench_cnn(
    settings: Settings, device: torch.device, batches: Sequence[int] = CNN_BATCHES
) -> list[Figure]:
    """``predict_processed`` of CNNRewardNet on Atari-sized frames against its conv net."""
    figures: list[Figure] = []
    sync = _syncer(device)
    obs_space = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)
    act_space = gym.spaces.Discrete(6)
    torch.manual_seed(0)
    net = rewardnets.CNNRewardNet(obs_space, act_space, **CNN_KWARGS).to(device)
    cnn = net.cnn
    for batch in batches:
        rng = np.random.default_rng(batch)
        obs = _sample_batch(obs_space, batch, rng)
        acts = _sample_batch(act_space, batch, rng)
        scaled = torch.as_tensor(obs, device=device).float().div(255.0)
        # The same numbers in the two layouts conv2d takes; the faster one is the floor.
        layouts = {
            "contiguous NCHW": scaled.permute(0, 3, 1, 2).contiguous(),
            "NHWC permuted to NCHW": scaled.permute(0, 3, 1, 2),
        }

        def floor_of(x: torch.Tensor) -> Timed:
            def floor() -> None:
                with torch.no_grad():
                    cnn(x)
                sync()

            return floor

        samples = time_interleaved(
            {
                **{f"floor: {name}": floor_of(x) for name, x in layouts.items()},
                "CNNRewardNet": partial(net.predict_processed, obs, acts),
            },
            settings,
        )
        chosen = cheapest(samples, layouts)
        samples["conv net on a ready tensor"] = samples[f"floor: {chosen}"]
        figures.append(
            ratio_figure(
                f"predict/CNNRewardNet/84x84x4/b{batch}/tensor_floor",
                samples,
                "CNNRewardNet",
                "conv net on a ready tensor",
                1.05 if batch == 32 else None,
                ready_layout=chosen,
                cnn=str(CNN_KWARGS),
            )
        )
    return figures


def bench_train(settings: Settings, device: torch.device) -> list[Figure]:
    """One training step (forward, backward, Adam) against the same step of a raw MLP."""
    sync = _syncer(device)
    env = gym.make("Pendulum-v1")
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    torch.manual_seed(0)
    net = rewardnets.BasicRewardNet(obs_space, act_space).to(device)
    raw = rewardnets.build_mlp(4, (32, 32), squeeze_output=True).to(device)
    net_opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    raw_opt = torch.optim.Adam(raw.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    obs = _sample_batch(obs_space, TRAIN_BATCH, rng)
    acts = _sample_batch(act_space, TRAIN_BATCH, rng)
    target = torch.as_tensor(rng.standard_normal(TRAIN_BATCH).astype(np.float32), device=device)

    def net_step() -> None:
        state, action, next_state, done = net.preprocess(obs, acts, None, None)
        loss = (net(state, action, next_state, done) - target).square().mean()
        net_opt.zero_grad(set_to_none=True)
        loss.backward()
        net_opt.step()
        sync()

    def raw_step() -> None:
        x = torch.as_tensor(np.concatenate([obs, acts], 1), device=device)
        loss = (raw(x) - target).square().mean()
        raw_opt.zero_grad(set_to_none=True)
        loss.backward()
        raw_opt.step()
        sync()

    samples = time_interleaved(
        {"raw MLP step": raw_step, "BasicRewardNet step": net_step}, settings
    )
    return [
        ratio_figure(
            f"train/BasicRewardNet/Pendulum-v1/b{TRAIN_BATCH}/raw_mlp",
            samples,
            "BasicRewardNet step",
            "raw MLP step",
            1.05,
        )
    ]


def bench_env(settings: Settings, device: torch.device) -> list[Figure]:
    """Env steps through RewardVecEnvWrapper with a normalised net, against the bare env.

    A third venv, wrapped with a raw-torch reward of the same MLP (the numpy
    floor of the predict figures), shows what a hand-written torch reward keeps;
    a fourth, with a reward that costs nothing, what the wrapper itself keeps.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rewardnets.reward_wrapper import RewardVecEnvWrapper

    def make_venv() -> DummyVecEnv:
        return DummyVecEnv([lambda: gym.make("CartPole-v1") for _ in range(N_ENVS)])

    probe = gym.make("CartPole-v1")
    torch.manual_seed(0)
    base = rewardnets.BasicRewardNet(probe.observation_space, probe.action_space)
    net = rewardnets.NormalizedRewardNet(base).to(device)
    probe.close()
    mlp = base.mlp
    eye = np.eye(2, dtype=np.float32)
    cpu = device.type == "cpu"

    def raw_reward(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        with torch.no_grad():
            x = torch.as_tensor(np.concatenate([obs, eye.take(acts, 0)], 1))
            if cpu:
                return mlp(x).numpy()
            return mlp(x.to(device)).cpu().numpy()

    def zero_reward(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        return np.zeros(len(obs), np.float32)

    venvs = {
        "unwrapped env": make_venv(),
        "RewardVecEnvWrapper": RewardVecEnvWrapper(make_venv(), net.predict_processed),
        "wrapper, raw-torch reward": RewardVecEnvWrapper(make_venv(), raw_reward),
        "wrapper, zero reward": RewardVecEnvWrapper(make_venv(), zero_reward),
    }
    actions = np.random.default_rng(0).integers(0, 2, (1024, N_ENVS))

    def stepper(venv: Any) -> Timed:
        counter = [0]

        def step() -> None:
            venv.step(actions[counter[0] % len(actions)])
            counter[0] += 1

        return step

    fns = {}
    for name, venv in venvs.items():
        venv.seed(0)
        venv.reset()
        fns[name] = stepper(venv)
    samples = time_interleaved(fns, settings)
    figures = []
    for subject, key in (
        ("RewardVecEnvWrapper", "RewardVecEnvWrapper+NormalizedRewardNet"),
        ("wrapper, raw-torch reward", "RewardVecEnvWrapper+raw_mlp"),
        ("wrapper, zero reward", "RewardVecEnvWrapper+zero_reward"),
    ):
        figure = ratio_figure(
            f"env/{key}/CartPole-v1x{N_ENVS}/unwrapped", samples, subject, "unwrapped env"
        )
        kept = 1.0 / figure.ratio
        if subject == "RewardVecEnvWrapper":
            figure.target = f">= {ENV_KEPT_TARGET:.0%} of the steps/s"
            figure.met = kept >= ENV_KEPT_TARGET
        figure.extra.update(
            kept_fraction=kept,
            wrapped_steps_per_s=N_ENVS / figure.subject_s,
            unwrapped_steps_per_s=N_ENVS / figure.baseline_s,
        )
        figures.append(figure)
    for venv in venvs.values():
        venv.close()
    return figures


def bench_serialize(settings: Settings, device: torch.device) -> list[Figure]:
    """Safe ``rewardnets.save``/``load`` against ``torch.save``/``torch.load`` of the state dict."""
    env = gym.make("Pendulum-v1")
    torch.manual_seed(0)
    net = rewardnets.NormalizedRewardNet(
        rewardnets.BasicRewardNet(env.observation_space, env.action_space)
    ).to(device)
    env.close()
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "net.rewardnet", Path(tmp) / "state_dict.pt"
        saves = time_interleaved(
            {
                "torch.save(state_dict)": lambda: torch.save(net.state_dict(), theirs),
                "rewardnets.save": lambda: rewardnets.save(net, ours),
            },
            settings,
        )
        loads = time_interleaved(
            {
                "torch.load": lambda: torch.load(theirs, map_location=device),
                "rewardnets.load": lambda: rewardnets.load(ours, device=device),
            },
            settings,
        )
        figures.append(
            ratio_figure(
                "serialize/save/NormalizedRewardNet",
                saves,
                "rewardnets.save",
                "torch.save(state_dict)",
                file_bytes=ours.stat().st_size,
                torch_file_bytes=theirs.stat().st_size,
            )
        )
        figures.append(
            ratio_figure(
                "serialize/load/NormalizedRewardNet", loads, "rewardnets.load", "torch.load"
            )
        )
    return figures


_IMPORT_PROBE = """
import sys, time
start = time.perf_counter()
import torch
middle = time.perf_counter()
import rewardnets
end = time.perf_counter()
plugins = sorted(m for m in sys.modules if m.startswith("rewardnets_plugins"))
print(middle - start, end - middle, ",".join(plugins))
"""


def bench_import(settings: Settings) -> list[Figure]:
    """Cold ``import rewardnets`` over ``import torch``, in fresh interpreters."""
    torch_s: list[float] = []
    added_s: list[float] = []
    plugins: set[str] = set()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for _ in range(settings.import_rounds):
        result = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            timeout=300,
        )
        fields = result.stdout.strip().split(" ")
        torch_s.append(float(fields[0]))
        added_s.append(float(fields[1]))
        if len(fields) > 2 and fields[2]:
            plugins.update(fields[2].split(","))
    samples = {
        "import torch": torch_s,
        "import torch; import rewardnets": [t + a for t, a in zip(torch_s, added_s, strict=True)],
    }
    figure = ratio_figure(
        "import/rewardnets/over_torch", samples, "import torch; import rewardnets", "import torch"
    )
    added_ms = statistics.median(added_s) * 1e3
    figure.target = "<= +150 ms, no plugin"
    figure.met = added_ms <= 150 and not plugins
    figure.extra.update(added_ms=added_ms, plugins_loaded=sorted(plugins))
    return [figure]


# ----------------------------------------------------------------------------- report
def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_table(figures: Sequence[Figure]) -> str:
    """Render the figures as a fixed-width text table."""
    header = ("figure", "subject", "baseline", "ratio", "target", "met")
    rows = [
        (
            f.key,
            _fmt_time(f.subject_s),
            _fmt_time(f.baseline_s),
            f"{f.ratio:.3f}",
            f.target or "",
            "" if f.met is None else ("yes" if f.met else "NO"),
        )
        for f in figures
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [
            cell.ljust(w) if i in (0, 4) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def notes(figures: Sequence[Figure]) -> list[str]:
    """Lines worth printing under the table: floors chosen, env and import details."""
    out = []
    for f in figures:
        if f.key.startswith("env/"):
            out.append(
                f"{f.key.split('/')[1]}: {f.extra['wrapped_steps_per_s']:.0f} steps/s, unwrapped "
                f"{f.extra['unwrapped_steps_per_s']:.0f} steps/s "
                f"({100 * f.extra['kept_fraction']:.0f}% kept)"
            )
        if f.key.startswith("import/"):
            out.append(
                f"import: rewardnets adds {f.extra['added_ms']:.0f} ms over torch "
                f"({_fmt_time(f.baseline_s)}); plugin modules loaded: "
                f"{f.extra['plugins_loaded'] or 'none'}"
            )
    floors: dict[str, set[str]] = {}
    for f in figures:
        if "numpy_floor" in f.extra:
            floors.setdefault(f.key.split("/")[2], set()).add(f.extra["numpy_floor"])
    for env_id, chosen in sorted(floors.items()):
        out.append(f"numpy floor ({env_id}), cheapest per batch: {', '.join(sorted(chosen))}")
    for f in figures:
        if f.target is not None and "ratio_vs_numpy_limit" in f.extra:
            out.append(
                f"{f.key}: {f.extra['ratio_vs_numpy_limit']:.3f} of the hand-written numpy MLP"
            )
    for f in figures:
        if (
            f.target is not None
            and f.key.endswith("/numpy_floor")
            and "ratio_vs_torch_built_floor" in f.extra
        ):
            out.append(
                f"{f.key}: {f.extra['ratio_vs_torch_built_floor']:.3f} against the cheapest "
                f"floor whose one-hot is built with torch ({f.extra['torch_built_floor']})"
            )
    return out


def run(settings: Settings, device: torch.device, only: str | None = None) -> list[Figure]:
    """Run every benchmark (or those whose name contains ``only``) and return the figures."""
    benches: list[tuple[str, Callable[[], list[Figure]]]] = [
        ("predict", lambda: bench_predict(settings, device)),
        ("cnn", lambda: bench_cnn(settings, device)),
        ("train", lambda: bench_train(settings, device)),
        ("env", lambda: bench_env(settings, device)),
        ("serialize", lambda: bench_serialize(settings, device)),
        ("import", lambda: bench_import(settings)),
    ]
    figures: list[Figure] = []
    for name, bench in benches:
        if only and only not in name:
            continue
        start = time.perf_counter()
        figures.extend(bench())
        print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return figures


def write_json(
    figures: Sequence[Figure],
    settings: Settings,
    device: torch.device,
    out: Path,
    *,
    malloc_tuned: bool,
) -> None:
    """Write the figures and the conditions they were measured in."""
    payload = {
        "meta": {
            "malloc_tuned": malloc_tuned,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "quick": settings.quick,
            "settings": asdict(settings),
            "device": str(device),
            "device_name": (
                torch.cuda.get_device_name(device)
                if device.type == "cuda"
                else platform.processor()
            ),
            "torch_threads": torch.get_num_threads(),
            "thread_env": {
                name: os.environ.get(name)
                for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
            },
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "rewardnets": rewardnets.__version__,
        },
        "figures": {f.key: asdict(f) for f in figures},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~20 s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    parser.add_argument("--device", default="cpu", help="torch device of the nets (default cpu)")
    parser.add_argument("--only", help="run only the benchmarks whose name contains this")
    parser.add_argument(
        "--tune-malloc",
        action="store_true",
        help="make glibc keep freed memory (fewer page faults at large batches); off by "
        "default, since a user's process runs with glibc's defaults",
    )
    args = parser.parse_args(argv)
    malloc_tuned = tune_malloc() if args.tune_malloc else False
    torch.set_num_threads(1)
    settings = QUICK if args.quick else FULL
    device = torch.device(args.device)
    start = time.perf_counter()
    figures = run(settings, device, args.only)
    print(format_table(figures))
    for line in notes(figures):
        print(line)
    print(
        "malloc: "
        + ("tuned (--tune-malloc)" if malloc_tuned else "glibc defaults, as a user's process has")
    )
    bad = [f.key for f in figures if not (math.isfinite(f.ratio) and f.ratio > 0)]
    if bad:
        print(f"figures without a finite positive ratio: {bad}", file=sys.stderr)
        return 1
    write_json(figures, settings, device, args.out, malloc_tuned=malloc_tuned)
    print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
