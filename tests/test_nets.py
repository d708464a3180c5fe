"""The built-in nets and wrappers on every supported space, through the public API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

import rewardnets
from rewardnets.reward_nets import (
    AddSTDRewardWrapper,
    BasicPotentialCNN,
    BasicPotentialMLP,
    BasicRewardNet,
    BasicShapedRewardNet,
    CNNRewardNet,
    NormalizedRewardNet,
    RewardEnsemble,
    RewardNet,
    ShapedRewardNet,
)
from rewardnets.testing import check_reward_net, sample_transitions

BOX = spaces.Box(-1.0, 1.0, (3,))
VECTOR_SPACES: dict[str, tuple[spaces.Space[Any], spaces.Space[Any]]] = {
    "box-box": (BOX, spaces.Box(-2.0, 2.0, (2,))),
    "box-discrete": (BOX, spaces.Discrete(3)),
    "multidiscrete-multibinary": (spaces.MultiDiscrete([2, 4]), spaces.MultiBinary(2)),
    "dict-discrete": (
        spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,)), "mode": spaces.Discrete(3)}),
        spaces.Discrete(2),
    ),
}
IMAGE_SPACES = {
    "hwc": (spaces.Box(0, 255, (12, 12, 3), np.uint8), True),
    "chw": (spaces.Box(0, 255, (3, 12, 12), np.uint8), False),
}

Builder = Callable[[spaces.Space[Any], spaces.Space[Any]], RewardNet]
VECTOR_NETS: dict[str, Builder] = {
    "basic": lambda o, a: BasicRewardNet(o, a, hid_sizes=(8,)),
    "basic-all-inputs": lambda o, a: BasicRewardNet(o, a, use_next_state=True, use_done=True),
    "basic-shaped": lambda o, a: BasicShapedRewardNet(o, a, reward_hid_sizes=(4,)),
    "shaped": lambda o, a: ShapedRewardNet(BasicRewardNet(o, a), BasicPotentialMLP(o, (8,)), 0.9),
    "normalized-running": lambda o, a: NormalizedRewardNet(BasicRewardNet(o, a)),
    "normalized-ema-shaped": lambda o, a: NormalizedRewardNet(
        ShapedRewardNet(BasicRewardNet(o, a), BasicPotentialMLP(o)), rewardnets.EMANorm
    ),
    "normalized-identity": lambda o, a: NormalizedRewardNet(BasicRewardNet(o, a), nn.Identity),
    "ensemble": lambda o, a: RewardEnsemble(o, a, [BasicRewardNet(o, a) for _ in range(3)]),
    "ensemble-std": lambda o, a: AddSTDRewardWrapper(
        RewardEnsemble(o, a, [BasicRewardNet(o, a) for _ in range(2)]), default_alpha=0.5
    ),
}


@pytest.mark.parametrize("spaces_id", VECTOR_SPACES)
@pytest.mark.parametrize("net_id", VECTOR_NETS)
def test_vector_nets_conform(spaces_id: str, net_id: str) -> None:
    torch.manual_seed(0)
    obs_space, act_space = VECTOR_SPACES[spaces_id]
    check_reward_net(VECTOR_NETS[net_id](obs_space, act_space))


@pytest.mark.parametrize("layout", IMAGE_SPACES)
@pytest.mark.parametrize("use_action", [True, False])
@pytest.mark.parametrize("use_done", [True, False])
@pytest.mark.parametrize("use_next_state", [True, False])
def test_cnn_reward_net_conforms(
    layout: str, use_action: bool, use_done: bool, use_next_state: bool
) -> None:
    obs_space, hwc = IMAGE_SPACES[layout]
    net = CNNRewardNet(
        obs_space,
        spaces.Discrete(4),
        use_action=use_action,
        use_done=use_done,
        use_next_state=use_next_state,
        hwc_format=hwc,
        hid_channels=(4,),
    )
    check_reward_net(net)


@pytest.mark.parametrize("layout", IMAGE_SPACES)
def test_cnn_shaped_by_cnn_potential(layout: str) -> None:
    obs_space, hwc = IMAGE_SPACES[layout]
    base = CNNRewardNet(obs_space, spaces.Discrete(4), hwc_format=hwc, hid_channels=(4,))
    check_reward_net(ShapedRewardNet(base, BasicPotentialCNN(obs_space, (4,), hwc_format=hwc)))


def test_cnn_heads_are_selected_by_action_and_done() -> None:
    obs_space = spaces.Box(0, 255, (6, 6, 1), np.uint8)
    net = CNNRewardNet(obs_space, spaces.Discrete(3), use_done=True, hid_channels=(2,))
    obs = np.zeros((1, 6, 6, 1), np.uint8)
    state, _, _, _ = net.preprocess(obs, np.array([0]), None, None)
    heads = net.cnn(state.permute(0, 3, 1, 2))[0].detach()
    assert heads.shape == (6,)
    for action in range(3):
        for done in (0, 1):
            got = net.predict(obs, np.array([action]), None, np.array([done]))[0]
            assert got == pytest.approx(float(heads[done * 3 + action]), abs=1e-6)


def test_cnn_refuses_non_images_and_non_discrete_actions() -> None:
    with pytest.raises(ValueError, match="uint8 image observations"):
        CNNRewardNet(BOX, spaces.Discrete(2))
    with pytest.raises(ValueError, match="Discrete action space"):
        CNNRewardNet(spaces.Box(0, 255, (8, 8, 3), np.uint8), spaces.Box(-1.0, 1.0, (2,)))


def test_nets_without_next_state_or_done_accept_none() -> None:
    net = NormalizedRewardNet(BasicRewardNet(BOX, spaces.Discrete(3)))
    obs, acts = np.zeros((4, 3)), np.array([0, 1, 2, 0])
    assert net.predict_th(obs, acts, None, None).shape == (4,)
    assert net.predict(obs, acts, None, None).shape == (4,)
    assert net.predict_processed(obs, acts, None, None).shape == (4,)


def test_a_net_that_needs_next_state_says_so_when_given_none() -> None:
    net = BasicRewardNet(BOX, spaces.Discrete(3), use_next_state=True)
    with pytest.raises(ValueError, match="uses next_state, but next_state=None"):
        net.predict(np.zeros((2, 3)), np.array([0, 1]))
    shaped = BasicShapedRewardNet(BOX, spaces.Discrete(3))
    with pytest.raises(ValueError, match="ShapedRewardNet uses next_state"):
        shaped.predict(np.zeros((2, 3)), np.array([0, 1]))


def test_predict_uses_eval_mode_and_restores_training_mode() -> None:
    net = BasicRewardNet(BOX, spaces.Discrete(3), hid_sizes=(16,), dropout_prob=0.5)
    net.train()
    obs, acts = np.ones((64, 3)), np.zeros(64, int)
    first, second = net.predict(obs, acts), net.predict(obs, acts)
    np.testing.assert_array_equal(first, second)  # dropout off in eval mode
    assert net.training
    net.eval()
    net.predict(obs, acts)
    assert not net.training


def test_forward_keeps_gradients_through_shaping() -> None:
    net = BasicShapedRewardNet(BOX, spaces.Discrete(3))
    batch = sample_transitions(net, 5)
    reward = net(*net.preprocess(*batch))
    reward.sum().backward()
    potential_grads = [p.grad for p in net.potential.parameters()]
    base_grads = [p.grad for p in net.base.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in potential_grads[:1] + base_grads[:1])


def test_shaping_formula_and_terminal_potential_is_zero() -> None:
    net = BasicShapedRewardNet(BOX, spaces.Discrete(3), discount_factor=0.8)
    state, action, next_state, _ = sample_transitions(net, 6)
    done = np.array([0, 1, 0, 1, 0, 0])
    shaped = net.predict(state, action, next_state, done)
    base = net.base.predict(state, action, next_state, done)
    s_th, _, ns_th, _ = net.preprocess(state, action, next_state, done)
    with torch.no_grad():
        phi_s, phi_next = net.potential(s_th).numpy(), net.potential(ns_th).numpy()
    expected = base + 0.8 * (1 - done) * phi_next - phi_s
    np.testing.assert_allclose(shaped, expected, rtol=1e-5, atol=1e-6)


def test_normalized_standardises_with_the_stats_before_the_batch() -> None:
    torch.manual_seed(0)
    net = NormalizedRewardNet(BasicRewardNet(BOX, spaces.Discrete(3)))
    rng = np.random.default_rng(0)
    raw_seen: list[np.ndarray] = []
    for _ in range(4):
        obs, acts = rng.uniform(-1, 1, (16, 3)), rng.integers(0, 3, 16)
        raw = net.predict(obs, acts)
        got = net.predict_processed(obs, acts)
        if raw_seen:
            prior = np.concatenate(raw_seen)
            np.testing.assert_allclose(
                got, (raw - prior.mean()) / np.sqrt(prior.var() + 1e-5), rtol=1e-4, atol=1e-5
            )
        else:
            np.testing.assert_allclose(got, raw / np.sqrt(1 + 1e-5), rtol=1e-5)
        raw_seen.append(raw)
    assert int(net.normalize_output_layer.count) == 64


def test_normalized_update_stats_false_freezes_and_passes_kwargs_down() -> None:
    inner = NormalizedRewardNet(BasicRewardNet(BOX, spaces.Discrete(3)))
    outer = AddSTDRewardWrapper(
        RewardEnsemble(BOX, spaces.Discrete(3), [inner, BasicRewardNet(BOX, spaces.Discrete(3))])
    )
    obs, acts = np.zeros((3, 3)), np.zeros(3, int)
    outer.predict_processed(obs, acts, update_stats=False)
    assert int(inner.normalize_output_layer.count) == 0
    outer.predict_processed(obs, acts)
    assert int(inner.normalize_output_layer.count) == 3


def test_ensemble_moments_and_std_wrapper() -> None:
    members = [BasicRewardNet(BOX, spaces.Discrete(3)) for _ in range(4)]
    ensemble = RewardEnsemble(BOX, spaces.Discrete(3), members)
    assert ensemble.num_members == 4
    obs, acts = np.random.default_rng(1).uniform(-1, 1, (5, 3)), np.arange(5) % 3
    each = np.stack([m.predict(obs, acts) for m in members], axis=-1)
    mean, var = ensemble.predict_reward_moments(obs, acts)
    np.testing.assert_allclose(mean, each.mean(-1), rtol=1e-6)
    np.testing.assert_allclose(var, each.var(-1, ddof=1), rtol=1e-5)
    wrapper = AddSTDRewardWrapper(ensemble, default_alpha=2.0)
    np.testing.assert_allclose(
        wrapper.predict_processed(obs, acts), mean + 2.0 * np.sqrt(var), rtol=1e-5
    )
    np.testing.assert_allclose(
        wrapper.predict_processed(obs, acts, alpha=-1.0), mean - np.sqrt(var), rtol=1e-5
    )
    np.testing.assert_allclose(wrapper.predict(obs, acts), ensemble.predict(obs, acts))


def test_ensemble_and_std_wrapper_validate_input() -> None:
    with pytest.raises(ValueError, match="at least 2 members, got 1"):
        RewardEnsemble(BOX, spaces.Discrete(3), [BasicRewardNet(BOX, spaces.Discrete(3))])
    with pytest.raises(TypeError, match="RewardNetWithVariance"):
        AddSTDRewardWrapper(BasicRewardNet(BOX, spaces.Discrete(3)))


def test_forward_wrapper_on_top_of_predict_processed_wrapper_is_refused() -> None:
    normalized = NormalizedRewardNet(BasicRewardNet(BOX, spaces.Discrete(3)))
    with pytest.raises(ValueError, match="Apply ShapedRewardNet first"):
        ShapedRewardNet(normalized, BasicPotentialMLP(BOX))


def test_predict_processed_wrapper_passes_forward_and_predict_through() -> None:
    base = BasicRewardNet(BOX, spaces.Discrete(3))
    net = NormalizedRewardNet(base)
    batch = sample_transitions(net, 4)
    np.testing.assert_array_equal(net.predict(*batch), base.predict(*batch))
    assert torch.equal(net(*net.preprocess(*batch)), base(*base.preprocess(*batch)))
    assert net.device == base.device and net.dtype == base.dtype


def test_device_and_dtype_follow_the_parameters() -> None:
    net = NormalizedRewardNet(BasicRewardNet(BOX, spaces.Discrete(3)))
    assert net.dtype == torch.float32
    net.double()
    assert net.dtype == torch.float64
    assert net.predict_th(np.zeros((2, 3)), np.zeros(2, int)).dtype == torch.float64
    net.float()
    assert net.device == torch.device("cpu")


class MyRewardNet(RewardNet):
    """The custom net of the seed document."""

    def __init__(self, observation_space, action_space):
        super().__init__(observation_space, action_space)
        # initialize your custom reward network here

    def forward(self, state, action, next_state, done):
        # implement your custom reward network here
        return torch.zeros_like(done)


def test_seed_custom_net_example_runs() -> None:
    net = MyRewardNet(BOX, spaces.Discrete(3))
    batch = sample_transitions(net, 4)
    np.testing.assert_array_equal(net.predict_processed(*batch), np.zeros(4))
    check_reward_net(net)
    assert net.spec["net"] == "tests.test_nets:MyRewardNet" or net.spec["net"].endswith(
        ":MyRewardNet"
    )


def test_conformance_check_names_a_net_defined_in_a_function() -> None:
    class Local(MyRewardNet):
        pass

    with pytest.raises(AssertionError, match="defined inside a function"):
        check_reward_net(Local(BOX, spaces.Discrete(3)))


def test_a_net_returning_the_wrong_shape_is_named() -> None:
    class Wrong(RewardNet):
        def forward(self, state, action, next_state, done):
            return torch.zeros(len(state), 1)

    with pytest.raises(
        ValueError, match=r"Wrong.forward returned a reward of shape \(3, 1\); expected \(3,\)"
    ):
        Wrong(BOX, spaces.Discrete(3)).predict(np.zeros((3, 3)), np.zeros(3, int))
