#!/usr/bin/env python
"""Check rewardnets' device paths on a CUDA GPU, then print the benchmark table there.

Run it from the repository root on a machine with an NVIDIA GPU::

    .venv/bin/python benchmarks/gpu_check.py            # checks, then the full table
    .venv/bin/python benchmarks/gpu_check.py --quick    # checks, then a short table

The checks assert that a net on the GPU takes numpy in and gives numpy out
with each input array copied to the device once and the rewards copied back
once (no round trip through the host, for ``NormalizedRewardNet`` included);
that predictions, wrappers and normalisation statistics on the GPU (the torch
path) match a CPU twin (the compiled numpy kernels); that a stack moved to the
GPU and back switches between the two with its weights; that
``RewardVecEnvWrapper`` steps with a GPU net; and that a net saved on the GPU
loads on the CPU and back. Without CUDA it says so and exits with status 2.
``--device cpu --dry-run`` runs the same checks on the CPU (without the copy
counts), to test the script itself.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
if str(ROOT.parent) not in sys.path:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(ROOT.parent))

import rewardnets  # noqa: E402
from benchmarks import run as bench  # noqa: E402

BATCH = 16
IMAGE_SPACE = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)


def _spaces(env_id: str) -> tuple[gym.spaces.Space[Any], gym.spaces.Space[Any]]:
    env = gym.make(env_id)
    spaces = (env.observation_space, env.action_space)
    env.close()
    return spaces


def _batch(
    obs_space: gym.spaces.Space[Any], act_space: gym.spaces.Space[Any], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = bench._sample_batch(obs_space, BATCH, rng)
    acts = bench._sample_batch(act_space, BATCH, rng)
    next_obs = bench._sample_batch(obs_space, BATCH, rng)
    dones = rng.random(BATCH) < 0.2
    return obs, acts, next_obs, dones


def _twins(make: Callable[[], Any], device: torch.device) -> tuple[Any, Any]:
    """The same net twice: on the CPU, and a copy on ``device``."""
    torch.manual_seed(0)
    cpu_net = make()
    return cpu_net, copy.deepcopy(cpu_net).to(device)


def _close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert isinstance(got, np.ndarray), f"{what}: expected a numpy array, got {type(got)}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=what)


# ------------------------------------------------------------------------------ checks
def check_predict(device: torch.device) -> None:
    """MLP and CNN nets on the device predict what their CPU twins predict, numpy in and out."""
    cases: list[tuple[str, Callable[[], Any], tuple[Any, Any]]] = []
    for env_id in ("Pendulum-v1", "CartPole-v1"):
        obs_space, act_space = _spaces(env_id)
        cases.append(
            (
                f"BasicRewardNet {env_id}",
                partial(rewardnets.BasicRewardNet, obs_space, act_space, use_done=True),
                (obs_space, act_space),
            )
        )
    cases.append(
        (
            "CNNRewardNet 84x84x4",
            lambda: rewardnets.CNNRewardNet(
                IMAGE_SPACE, gym.spaces.Discrete(6), **bench.CNN_KWARGS
            ),
            (IMAGE_SPACE, gym.spaces.Discrete(6)),
        )
    )
    for name, make, (obs_space, act_space) in cases:
        cpu_net, dev_net = _twins(make, device)
        assert dev_net.device == device, f"{name}: net.device is {dev_net.device}"
        obs, acts, next_obs, dones = _batch(obs_space, act_space, 1)
        for method in ("predict", "predict_processed"):
            got = getattr(dev_net, method)(obs, acts, next_obs, dones)
            want = getattr(cpu_net, method)(obs, acts, next_obs, dones)
            _close(got, want, f"{name}.{method}")
        reward_th = dev_net.predict_th(obs, acts, next_obs, dones)
        assert reward_th.device.type == device.type, f"{name}: predict_th on {reward_th.device}"
        assert dev_net.training, f"{name}: predict did not restore training mode"
        # Gradients flow in forward on the device.
        reward = dev_net(*dev_net.preprocess(obs, acts, next_obs, dones))
        reward.sum().backward()
        grads = [p.grad for p in dev_net.parameters()]
        assert all(g is not None and g.device.type == device.type for g in grads), name


def check_wrappers(device: torch.device) -> None:
    """Shaping, normalisation and ensembles on the device match their CPU twins."""
    obs_space, act_space = _spaces("CartPole-v1")

    def shaped() -> Any:
        return rewardnets.BasicShapedRewardNet(obs_space, act_space)

    def ensemble() -> Any:
        members = [rewardnets.BasicRewardNet(obs_space, act_space) for _ in range(3)]
        return rewardnets.AddSTDRewardWrapper(
            rewardnets.RewardEnsemble(obs_space, act_space, members), default_alpha=0.5
        )

    def normalized_shaped() -> Any:
        return rewardnets.NormalizedRewardNet(shaped(), rewardnets.EMANorm)

    for name, make in (
        ("BasicShapedRewardNet", shaped),
        ("AddSTDRewardWrapper(RewardEnsemble)", ensemble),
        ("NormalizedRewardNet(BasicShapedRewardNet, EMANorm)", normalized_shaped),
    ):
        cpu_net, dev_net = _twins(make, device)
        for seed in range(3):
            batch = _batch(obs_space, act_space, seed)
            _close(
                dev_net.predict_processed(*batch),
                cpu_net.predict_processed(*batch),
                f"{name}.predict_processed (call {seed})",
            )


def _normalized(obs_space: Any, act_space: Any, layer: Any) -> Any:
    return rewardnets.NormalizedRewardNet(rewardnets.BasicRewardNet(obs_space, act_space), layer)


def check_normalization(device: torch.device) -> None:
    """Statistics on the device follow their CPU twins; update_stats=False freezes them."""
    obs_space, act_space = _spaces("Pendulum-v1")
    for layer in (rewardnets.RunningNorm, rewardnets.EMANorm):
        cpu_net, dev_net = _twins(
            partial(_normalized, obs_space, act_space, layer),
            device,
        )
        for seed in range(5):
            obs, acts, _, _ = _batch(obs_space, act_space, seed)
            _close(
                dev_net.predict_processed(obs, acts),
                cpu_net.predict_processed(obs, acts),
                f"{layer.__name__}: rewards of batch {seed}",
            )
        frozen = {k: v.clone() for k, v in dev_net.normalize_output_layer.state_dict().items()}
        dev_net.predict_processed(obs, acts, update_stats=False)
        for key, value in dev_net.normalize_output_layer.state_dict().items():
            assert torch.equal(value, frozen[key]), f"{layer.__name__}: {key} moved"
            assert value.device.type == device.type, f"{layer.__name__}: {key} left the device"
            cpu_value = cpu_net.normalize_output_layer.state_dict()[key]
            np.testing.assert_allclose(
                value.cpu().numpy(), cpu_value.numpy(), rtol=1e-5, err_msg=key
            )
        assert int(dev_net.normalize_output_layer.count) == 5 * BATCH


def count_copies(fn: Callable[[], object]) -> tuple[int, int]:
    """Host-to-device and device-to-host copies that ``fn`` makes, from the profiler."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    names = [event.name for event in prof.events()]
    h2d = sum(1 for n in names if n.startswith("Memcpy HtoD"))
    d2h = sum(1 for n in names if n.startswith("Memcpy DtoH"))
    return h2d, d2h


def check_copies(device: torch.device) -> None:
    """Each input array crosses to the device once; the rewards come back once."""
    cart_obs, cart_act = _spaces("CartPole-v1")
    pend_obs, pend_act = _spaces("Pendulum-v1")
    cases = [
        (
            "BasicRewardNet (Discrete)",
            rewardnets.BasicRewardNet(cart_obs, cart_act),
            cart_obs,
            cart_act,
        ),
        ("BasicRewardNet (Box)", rewardnets.BasicRewardNet(pend_obs, pend_act), pend_obs, pend_act),
        (
            "NormalizedRewardNet(RunningNorm)",
            rewardnets.NormalizedRewardNet(rewardnets.BasicRewardNet(cart_obs, cart_act)),
            cart_obs,
            cart_act,
        ),
        (
            "NormalizedRewardNet(EMANorm)",
            rewardnets.NormalizedRewardNet(
                rewardnets.BasicRewardNet(pend_obs, pend_act), rewardnets.EMANorm
            ),
            pend_obs,
            pend_act,
        ),
        (
            "CNNRewardNet",
            rewardnets.CNNRewardNet(IMAGE_SPACE, gym.spaces.Discrete(6), **bench.CNN_KWARGS),
            IMAGE_SPACE,
            gym.spaces.Discrete(6),
        ),
    ]
    for name, net, obs_space, act_space in cases:
        net = net.to(device)
        obs, acts, next_obs, dones = _batch(obs_space, act_space, 0)
        for args in ((obs, acts), (obs, acts, next_obs, dones)):
            net.predict_processed(*args)  # warm up: one-hot tables, flags, cuBLAS handles
            h2d, d2h = count_copies(partial(net.predict_processed, *args))
            if h2d == 0 and d2h == 0:
                raise AssertionError(
                    "The profiler recorded no memory copies at all; it may lack CUDA "
                    "activity support (CUPTI) here, so the copy counts cannot be checked."
                )
            assert h2d == len(args), f"{name}: {h2d} host-to-device copies for {len(args)} inputs"
            assert d2h == 1, f"{name}: {d2h} device-to-host copies; expected 1"


def check_env_wrapper(device: torch.device) -> None:
    """RewardVecEnvWrapper steps with a net on the device."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rewardnets.reward_wrapper import RewardVecEnvWrapper

    obs_space, act_space = _spaces("CartPole-v1")
    net = rewardnets.NormalizedRewardNet(rewardnets.BasicRewardNet(obs_space, act_space))
    net = net.to(device)
    venv = RewardVecEnvWrapper(
        DummyVecEnv([lambda: gym.make("CartPole-v1") for _ in range(4)]), net.predict_processed
    )
    venv.seed(0)
    venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(100):
        _, rews, _, infos = venv.step(rng.integers(0, 2, 4))
        assert rews.shape == (4,) and rews.dtype == np.float32 and np.isfinite(rews).all()
        assert all("original_env_rew" in info for info in infos)
    assert venv.num_episodes > 0, "no episode ended in 100 steps of CartPole"
    assert int(net.normalize_output_layer.count) == 400
    venv.close()


def check_save_load(device: torch.device) -> None:
    """A net saved on the device loads on the CPU, and back on the device, unchanged."""
    obs_space, act_space = _spaces("CartPole-v1")
    torch.manual_seed(0)
    net = rewardnets.NormalizedRewardNet(rewardnets.BasicRewardNet(obs_space, act_space))
    net = net.to(device)
    batch = _batch(obs_space, act_space, 0)
    net.predict_processed(*batch)  # statistics that are not the initial ones
    want = net.predict_processed(*batch, update_stats=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.rewardnet"
        rewardnets.save(net, path)
        on_cpu = rewardnets.load(path)
        assert on_cpu.device == torch.device("cpu"), f"loaded on {on_cpu.device}"
        _close(on_cpu.predict_processed(*batch, update_stats=False), want, "loaded on the CPU")
        for key, value in net.state_dict().items():
            assert torch.equal(on_cpu.state_dict()[key], value.cpu()), f"{key} changed"
        back = on_cpu.to(device)
        assert back.device == device
        _close(back.predict_processed(*batch, update_stats=False), want, "moved back")
        on_device = rewardnets.load(path, device=device)
        assert on_device.device == device
        _close(on_device.predict_processed(*batch, update_stats=False), want, "loaded on device")
        pickled = Path(tmp) / "net.pt"
        torch.save(net, pickled)
        unpickled = rewardnets.load(pickled)  # the restricted unpickler, onto the CPU
        _close(unpickled.predict_processed(*batch, update_stats=False), want, "torch.save file")


def _has_kernel(net: Any) -> bool:
    plan = net._kernel_plans.processed
    return plan is not None and plan.run is not None


def check_plans(device: torch.device) -> None:
    """A net's compiled CPU kernel and its torch path on the device agree, across moves.

    On the CPU the stack runs its numpy kernel; moved to the device it must take
    the torch path (the plan's guard sees the new parameter memory), and moved
    back, after a training step on the device, the kernel again, with the new
    weights.
    """
    obs_space, act_space = _spaces("CartPole-v1")
    torch.manual_seed(0)
    net = rewardnets.NormalizedRewardNet(rewardnets.BasicShapedRewardNet(obs_space, act_space))
    batch = _batch(obs_space, act_space, 0)
    on_cpu = net.predict_processed(*batch, update_stats=False)
    assert _has_kernel(net), "a CPU float32 stack of built-ins ran without its kernel"
    net.to(device)
    _close(net.predict_processed(*batch, update_stats=False), on_cpu, "moved to the device")
    assert _has_kernel(net) == (device.type == "cpu"), f"kernel plan on {device}"
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    loss = net(*net.preprocess(*batch)).square().mean()
    loss.backward()
    optimizer.step()
    on_device = net.predict_processed(*batch, update_stats=False)
    net.cpu()
    _close(net.predict_processed(*batch, update_stats=False), on_device, "moved back")
    assert _has_kernel(net), "the stack moved back to the CPU did not get its kernel again"
    torch_path = net.predict_processed_th(*batch, update_stats=False).numpy()
    _close(on_device, torch_path, "the CPU torch path")


CHECKS: list[tuple[str, Callable[[torch.device], None], bool]] = [
    ("plans: CPU kernel, device torch path, moves between them", check_plans, False),
    ("predict: numpy in, numpy out, CPU twin", check_predict, False),
    ("copies: one per input, one back", check_copies, True),
    ("wrappers: shaping, ensembles, normalisation", check_wrappers, False),
    ("normalisation statistics on the device", check_normalization, False),
    ("RewardVecEnvWrapper with a device net", check_env_wrapper, False),
    ("save on the device, load on the CPU and back", check_save_load, False),
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the checks, then the benchmark table on the device; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--device", default="cuda", help="the device to check (default cuda)")
    parser.add_argument("--quick", action="store_true", help="a short table after the checks")
    parser.add_argument("--no-table", action="store_true", help="run the checks only")
    parser.add_argument(
        "--dry-run", action="store_true", help="allow --device cpu (tests this script)"
    )
    parser.add_argument("--tune-malloc", action="store_true", help="as in run.py: off by default")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "gpu.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "CUDA is not available (torch.cuda.is_available() is False; torch "
            f"{torch.__version__}, built for CUDA {torch.version.cuda}): there is no GPU to "
            "check. Run this script on a machine with an NVIDIA GPU and a CUDA build of torch.",
            file=sys.stderr,
        )
        return 2
    if device.type != "cuda" and not args.dry_run:
        print(f"--device {device} is not a CUDA device; add --dry-run to check it anyway.")
        return 2
    torch.set_num_threads(1)
    name_of = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    print(f"checking rewardnets on {device} ({name_of})")
    # TF32 convolutions (cuDNN's default on Ampere and later) round to ~1e-3;
    # the comparisons with CPU twins need full float32. The table keeps the default.
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        for title, check, needs_cuda in CHECKS:
            if needs_cuda and device.type != "cuda":
                print(f"  skip  {title} (needs CUDA)")
                continue
            check(device)
            print(f"  ok    {title}")
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    if args.no_table:
        return 0
    malloc_tuned = bench.tune_malloc() if args.tune_malloc else False
    settings = bench.QUICK if args.quick else bench.FULL
    figures = bench.run(settings, device)
    print(bench.format_table(figures))
    for line in bench.notes(figures):
        print(line)
    bench.write_json(figures, settings, device, args.out, malloc_tuned=malloc_tuned)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
