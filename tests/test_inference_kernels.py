"""The compiled numpy kernels give what torch gives, and notice every change.

Property tests build random stacks (MLP nets, potentials, shaping,
normalisation, ensembles, ``AddSTDRewardWrapper``) on random spaces, then
interleave reward calls with training steps, state-dict loads, dtype changes
and replaced submodules. Each step is applied to two twins: one is called
through the public API (the kernels), the other gives the reference,
computed here by hand with torch: eval mode, ``torch.no_grad()``, ``forward``,
and the wrappers' post-processing written out.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from rewardnets import EMANorm, RunningNorm
from rewardnets.reward_nets import (
    AddSTDRewardWrapper,
    BasicPotentialMLP,
    BasicRewardNet,
    CNNRewardNet,
    NormalizedRewardNet,
    RewardEnsemble,
    RewardNet,
    ShapedRewardNet,
)

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------- strategies
def _box(draw: Any) -> spaces.Box:
    shape = draw(st.sampled_from([(1,), (3,), (2, 2)]))
    return spaces.Box(-2.0, 2.0, shape, np.float32)


@st.composite
def flat_spaces(draw: Any) -> spaces.Space[Any]:
    kind = draw(st.sampled_from(["box", "discrete", "multi_discrete", "multi_binary"]))
    if kind == "box":
        return _box(draw)
    if kind == "discrete":
        return spaces.Discrete(draw(st.integers(2, 5)), start=draw(st.integers(-2, 2)))
    if kind == "multi_discrete":
        return spaces.MultiDiscrete(draw(st.sampled_from([[2, 3], [4], [2, 2, 2]])))
    return spaces.MultiBinary(draw(st.integers(1, 4)))


@st.composite
def observation_spaces(draw: Any) -> spaces.Space[Any]:
    if draw(st.integers(0, 4)) == 0:
        return spaces.Dict({"pos": _box(draw), "mode": spaces.Discrete(3)})
    return draw(flat_spaces())


ACTIVATIONS = [nn.ReLU, nn.Tanh, nn.LeakyReLU, nn.Sigmoid]


@st.composite
def mlp_kwargs(draw: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "hid_sizes": draw(st.lists(st.integers(1, 12), max_size=2)),
        "activation": draw(st.sampled_from(ACTIVATIONS)),
    }
    if draw(st.booleans()):
        kwargs["dropout_prob"] = 0.3
    if draw(st.integers(0, 3)) == 0:
        kwargs["normalize_input_layer"] = RunningNorm
    return kwargs


@st.composite
def basic_nets(draw: Any, obs: Any, act: Any) -> BasicRewardNet:
    uses = draw(st.lists(st.booleans(), min_size=4, max_size=4).filter(any))
    return BasicRewardNet(
        obs,
        act,
        use_state=uses[0],
        use_action=uses[1],
        use_next_state=uses[2],
        use_done=uses[3],
        **draw(mlp_kwargs()),
    )


def _norm_layer(draw: Any) -> Any:
    layer = draw(st.sampled_from([RunningNorm, EMANorm]))
    eps = draw(st.sampled_from([1e-5, 0.1]))  # (eps=0: see test_imitation_dropin)
    if layer is EMANorm:
        return functools.partial(EMANorm, decay=draw(st.sampled_from([0.5, 0.9])), eps=eps)
    return functools.partial(RunningNorm, eps=eps)


@st.composite
def members(draw: Any, obs: Any, act: Any) -> RewardNet:
    net: RewardNet = draw(basic_nets(obs, act))
    if draw(st.booleans()):
        potential = BasicPotentialMLP(obs, hid_sizes=draw(st.sampled_from([(), (4,), (4, 4)])))
        net = ShapedRewardNet(net, potential, discount_factor=draw(st.sampled_from([0.0, 0.9])))
    if draw(st.booleans()):
        net = NormalizedRewardNet(net, _norm_layer(draw))
    return net


@st.composite
def stacks(draw: Any) -> RewardNet:
    obs, act = draw(observation_spaces()), draw(flat_spaces())
    torch.manual_seed(draw(st.integers(0, 2**16)))
    shape = draw(st.sampled_from(["member", "ensemble", "std", "normalized_ensemble"]))
    if shape == "member":
        return draw(members(obs, act))
    ensemble = RewardEnsemble(
        obs, act, [draw(members(obs, act)) for _ in range(draw(st.integers(2, 3)))]
    )
    if shape == "std":
        return AddSTDRewardWrapper(ensemble, default_alpha=draw(st.sampled_from([0.0, 0.5])))
    if shape == "normalized_ensemble":
        return NormalizedRewardNet(ensemble, _norm_layer(draw))
    return ensemble


# ----------------------------------------------------------------------- the batch
def sample(space: spaces.Space[Any], n: int, rng: np.random.Generator) -> Any:
    if isinstance(space, spaces.Dict):
        return {key: sample(sub, n, rng) for key, sub in space.items()}
    if isinstance(space, spaces.Box):
        dtype = np.float32 if rng.random() < 0.5 else np.float64
        return rng.uniform(-2, 2, (n, *space.shape)).astype(dtype)
    if isinstance(space, spaces.Discrete):
        return rng.integers(int(space.start), int(space.start) + int(space.n), n)
    if isinstance(space, spaces.MultiDiscrete):
        return rng.integers(0, space.nvec, (n, *space.shape))
    assert isinstance(space, spaces.MultiBinary)
    return rng.integers(0, 2, (n, *space.shape), dtype=np.int8)


def transitions(net: RewardNet, n: int, seed: int) -> tuple[Any, Any, Any, Any]:
    rng = np.random.default_rng(seed)
    obs, act = net.observation_space, net.action_space
    return sample(obs, n, rng), sample(act, n, rng), sample(obs, n, rng), rng.random(n) < 0.3


# ------------------------------------------------------------------- the reference
def reference(net: RewardNet, batch: tuple[Any, ...], kwargs: dict[str, Any]) -> np.ndarray:
    """What ``net.predict_processed(*batch, **kwargs)`` means, with torch, by hand."""
    if isinstance(net, NormalizedRewardNet):
        kwargs = dict(kwargs)
        update = kwargs.pop("update_stats", True)
        reward = torch.as_tensor(reference(net.base, batch, kwargs))
        layer = net.normalize_output_layer
        with torch.no_grad():
            out = (
                (reward - layer.running_mean) / torch.sqrt(layer.running_var + layer.eps)
            ).numpy()
            if update:
                layer.update_stats(reward)
        return out
    if isinstance(net, AddSTDRewardWrapper):
        kwargs = dict(kwargs)
        alpha = kwargs.pop("alpha", None)
        alpha = net.default_alpha if alpha is None else alpha
        rewards = np.stack([reference(m, batch, kwargs) for m in net.base.members], axis=-1)
        return rewards.mean(-1) + alpha * np.sqrt(rewards.var(-1, ddof=1))
    if isinstance(net, RewardEnsemble):
        return np.stack([reference(m, batch, kwargs) for m in net.members], axis=-1).mean(-1)
    modes = {m: m.training for m in net.modules()}
    net.eval()
    try:
        with torch.no_grad():
            return net(*net.preprocess(*batch)).numpy()
    finally:
        for module, mode in modes.items():
            module.training = mode


def amplification(net: RewardNet) -> float:
    """How much the stack's standardisations magnify a rounding error of a reward."""
    factor = 1.0
    for module in net.modules():
        if isinstance(module, NormalizedRewardNet):
            layer = module.normalize_output_layer
            factor *= max(1.0, float(1 / torch.sqrt(layer.running_var + layer.eps).min()))
    return factor


def assert_same(
    fast: RewardNet, ref: RewardNet, got: np.ndarray, want: np.ndarray, tol: float
) -> None:
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    for (name, a), (_, b) in zip(fast.state_dict().items(), ref.state_dict().items(), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=tol, atol=tol, err_msg=name)


def _compiled(net: RewardNet) -> bool:
    plan = net._kernel_plans.processed
    return plan is not None and plan.run is not None


# ------------------------------------------------------------------------ training
def train_step(net: RewardNet, seed: int) -> None:
    """One SGD step on a random regression target, in train mode (dropout included)."""
    torch.manual_seed(seed)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    inputs = net.preprocess(*transitions(net, 6, seed))
    loss = (net(*inputs) - 1.0).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def replace_a_linear(net: RewardNet, seed: int) -> None:
    """Replace one of the stack's Linear layers by a fresh one of the same shape."""
    linears = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    name, old = linears[seed % len(linears)]
    parent_name, _, child = name.rpartition(".")
    torch.manual_seed(seed)
    new = nn.Linear(old.in_features, old.out_features).to(old.weight.dtype)
    setattr(net.get_submodule(parent_name), child, new)


OPS = ["call", "call", "call_frozen", "train", "load", "double", "replace", "eps", "mode"]


@PROPERTY
@given(
    net=stacks(),
    ops=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 1000)), min_size=1, max_size=8),
)
def test_kernels_equal_torch_through_training(net: RewardNet, ops: list[tuple[str, int]]) -> None:
    ref = copy.deepcopy(net)
    tol = 1e-7  # float64 twins agree closely, unless their statistics were made in float32
    for op, seed in [*ops, ("call", 0)]:
        if op in ("call", "call_frozen"):
            if net.dtype == torch.float32:
                tol = 2e-4
            batch = transitions(net, 1 + seed % 17, seed)
            kwargs = {"update_stats": False} if op == "call_frozen" else {}
            scaled = tol * amplification(ref)
            got = net.predict_processed(*batch, **kwargs)
            assert _compiled(net)  # every stack here has a kernel
            assert_same(net, ref, got, reference(ref, batch, kwargs), scaled)
            scaled = tol * amplification(ref)
            np.testing.assert_allclose(
                net.predict(*batch), reference_predict(ref, batch), rtol=scaled, atol=scaled
            )
        elif op == "train":
            train_step(net, seed)
            train_step(ref, seed)
        elif op == "load":
            state = copy.deepcopy(net)
            for p in state.parameters():
                p.data.normal_(generator=torch.Generator().manual_seed(seed))
            net.load_state_dict(state.state_dict())
            ref.load_state_dict(state.state_dict())
        elif op == "double":
            net.double()
            ref.double()
        elif op == "replace":
            replace_a_linear(net, seed)
            replace_a_linear(ref, seed)
        elif op == "eps":
            for twin in (net, ref):
                for module in twin.modules():
                    if isinstance(module, (RunningNorm, EMANorm)):
                        module.eps = 0.5
                    if isinstance(module, ShapedRewardNet):
                        module.discount_factor = 0.5
        else:  # switch modes: predictions are eval mode whatever the mode
            net.train(not net.training)
            ref.train(net.training)


def reference_predict(net: RewardNet, batch: tuple[Any, ...]) -> np.ndarray:
    """``predict``: ``forward`` of nets and forward wrappers, the processed mean of ensembles."""
    while isinstance(net, (NormalizedRewardNet, AddSTDRewardWrapper)):
        net = net.base
    return reference(net, batch, {})  # (an ensemble's predict updates its members' statistics)


# -------------------------------------------------------------- what is noticed
CARTPOLE = gym.make("CartPole-v1")
OBS, ACT = CARTPOLE.observation_space, CARTPOLE.action_space


def _cartpole_batch(n: int = 5) -> tuple[Any, ...]:
    rng = np.random.default_rng(n)
    return (
        rng.normal(size=(n, 4)).astype(np.float32),
        rng.integers(0, 2, n),
        rng.normal(size=(n, 4)).astype(np.float32),
        rng.random(n) < 0.5,
    )


def test_a_changed_use_flag_changes_the_inputs_read() -> None:
    box = spaces.Box(-1, 1, (4,))
    net = BasicRewardNet(box, box, use_state=True, use_action=False)
    batch = _cartpole_batch()
    obs, _, next_obs, done = batch
    before = net.predict(obs, next_obs, next_obs, done)
    net.use_state, net.use_action = False, True  # the same width, the other input
    after = net.predict(obs, next_obs, next_obs, done)
    np.testing.assert_allclose(
        after, reference(net, (next_obs, next_obs, None, None), {}), rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(before, after)
    net.use_done = True  # the MLP is now too small: the torch path says so
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        net.predict(obs, next_obs, next_obs, done)


def test_instance_overrides_anywhere_in_the_stack_are_honoured() -> None:
    base = BasicRewardNet(OBS, ACT)
    net = NormalizedRewardNet(base)
    batch = _cartpole_batch()
    net.predict_processed(*batch)
    assert _compiled(net)
    base.predict_processed = lambda *args, **kwargs: np.full(5, 7.0, np.float32)
    stats = net.normalize_output_layer
    mean, var = float(stats.running_mean), float(stats.running_var)
    out = net.predict_processed(*batch)
    assert not _compiled(net)
    np.testing.assert_allclose(out, (7.0 - mean) / np.sqrt(var + 1e-5), rtol=1e-4)
    del base.predict_processed
    net.predict_processed(*batch)
    assert _compiled(net)
    net.predict_processed = lambda *args, **kwargs: np.zeros(5)
    assert net.predict_processed(*batch).tolist() == [0.0] * 5


def test_hooks_and_subclass_overrides_take_the_torch_path() -> None:
    net = BasicRewardNet(OBS, ACT)
    batch = _cartpole_batch()
    net.predict(*batch)
    seen: list[int] = []
    handle = net.mlp.register_forward_hook(lambda module, args, out: seen.append(len(out)))
    net.predict(*batch)
    assert seen == [5]
    handle.remove()
    net.predict(*batch)
    assert seen == [5] and net._kernel_plans.reward.run is not None

    class Doubled(BasicRewardNet):
        def forward(self, *args: Any) -> torch.Tensor:
            return 2 * super().forward(*args)

    doubled = Doubled(OBS, ACT)
    doubled.load_state_dict(net.state_dict())
    np.testing.assert_allclose(
        doubled.predict_processed(*batch), 2 * net.predict(*batch), rtol=1e-5, atol=1e-6
    )


def test_kernel_and_torch_paths_keep_the_same_errors() -> None:
    net = NormalizedRewardNet(BasicRewardNet(OBS, ACT, use_next_state=True))
    obs, acts, next_obs, done = _cartpole_batch()
    with pytest.raises(
        ValueError, match=r"state for Box.* to have shape \(batch, 4\), got shape \(5, 3\)"
    ):
        net.predict_processed(obs[:, :3], acts, next_obs, done)
    with pytest.raises(ValueError, match=r"action values of Discrete\(2\) in \[0, 2\), got \[2\]"):
        net.predict_processed(obs, acts + 1, next_obs, done)
    with pytest.raises(ValueError, match="uses next_state, but next_state=None was given"):
        net.predict_processed(obs, acts, None, done)
    with pytest.raises(ValueError, match="Batch sizes differ"):
        net.predict_processed(obs, acts[:3], next_obs, done)
    with pytest.raises(ValueError, match=r"state for Box.* to have shape .*got shape \(5, 2\)"):
        BasicRewardNet(OBS, ACT).predict(obs, acts, next_obs[:, :2], done)  # unused, still checked
    assert int(net.normalize_output_layer.count) == 0  # no failed call touched the statistics
    # Tensors and lists are accepted as before (through torch).
    want = net.predict_processed(obs, acts, next_obs, done, update_stats=False)
    got = net.predict_processed(
        torch.as_tensor(obs), acts.tolist(), next_obs, done, update_stats=False
    )
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_images_cnns_and_half_precision_take_the_torch_path() -> None:
    image = spaces.Box(0, 255, (8, 8, 3), np.uint8)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    acts = rng.integers(0, 2, 4)
    for net in (
        BasicRewardNet(image, spaces.Discrete(2), hid_sizes=(4,)),
        CNNRewardNet(image, spaces.Discrete(2), hid_channels=(4,)),
        NormalizedRewardNet(CNNRewardNet(image, spaces.Discrete(2), hid_channels=(4,))),
    ):
        ref = copy.deepcopy(net)
        batch = (frames, acts, frames, np.zeros(4, bool))
        got = net.predict_processed(*batch)
        assert not _compiled(net)
        np.testing.assert_allclose(got, reference(ref, batch, {}), rtol=1e-5, atol=1e-6)
    half = BasicRewardNet(OBS, ACT).half()
    batch = _cartpole_batch()
    assert half.predict(*batch).dtype == np.float16
    assert half._kernel_plans.reward.run is None
    half.float()
    half.predict(*batch)
    assert half._kernel_plans.reward.run is not None


def test_copies_get_their_own_plans() -> None:
    net = NormalizedRewardNet(BasicRewardNet(OBS, ACT))
    batch = _cartpole_batch()
    net.predict_processed(*batch)
    clone = copy.deepcopy(net)
    with torch.no_grad():
        for p in clone.parameters():
            p.add_(1.0)
    np.testing.assert_allclose(
        clone.predict_processed(*batch, update_stats=False),
        reference(clone, batch, {"update_stats": False}),
        rtol=1e-5,
        atol=1e-5,
    )
    assert int(net.normalize_output_layer.count) == 5
    assert int(clone.normalize_output_layer.count) == 5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_batches_match_torch_and_earlier_results_stay_intact(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    base = BasicRewardNet(OBS, ACT, hid_sizes=(64, 64), use_next_state=True)
    net = NormalizedRewardNet(
        ShapedRewardNet(base, BasicPotentialMLP(OBS, hid_sizes=(64,)), discount_factor=0.9)
    ).to(dtype)
    ref = copy.deepcopy(net)
    first, second = _cartpole_batch(5000), _cartpole_batch(4000)
    got_first = net.predict_processed(*first)
    kept = got_first.copy()
    got_second = net.predict_processed(*second)
    assert _compiled(net)
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    np.testing.assert_allclose(got_first, reference(ref, first, {}), rtol=tol, atol=tol)
    np.testing.assert_allclose(got_second, reference(ref, second, {}), rtol=tol, atol=tol)
    np.testing.assert_array_equal(got_first, kept)  # no buffer of a later call shared with it
    frozen = tuple(a.copy() for a in first)
    for array in frozen:
        array.flags.writeable = False  # read-only inputs are read, never written
    np.testing.assert_allclose(
        net.predict(*frozen), reference(ref.base, first, {}), rtol=tol, atol=tol
    )
