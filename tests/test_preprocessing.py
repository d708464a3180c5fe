"""Preprocessing of every supported space, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rewardnets.reward_nets import BasicRewardNet


def _net(obs_space: spaces.Space, act_space: spaces.Space, **kwargs: object) -> BasicRewardNet:
    return BasicRewardNet(obs_space, act_space, **kwargs)


def test_box_and_discrete() -> None:
    net = _net(spaces.Box(-2.0, 2.0, (2, 3)), spaces.Discrete(4, start=1))
    state, action, _, done = net.preprocess(
        np.ones((5, 2, 3)),
        np.array([1, 2, 3, 4, 1]),
        np.zeros((5, 2, 3)),
        np.array([0, 1, 0, 0, 1]),
    )
    assert (
        isinstance(state, torch.Tensor)
        and state.dtype == torch.float32
        and state.shape == (5, 2, 3)
    )
    assert isinstance(action, torch.Tensor)
    assert action.tolist()[0] == [1.0, 0.0, 0.0, 0.0]  # start=1 is the first one-hot slot
    assert action.tolist()[3] == [0.0, 0.0, 0.0, 1.0]
    assert done is not None and done.dtype == torch.float32 and done.tolist() == [0, 1, 0, 0, 1]


def test_multidiscrete_and_multibinary() -> None:
    net = _net(spaces.MultiBinary(3), spaces.MultiDiscrete([2, 3]))
    state, action, _, _ = net.preprocess(
        np.array([[1, 0, 1]], np.int8), np.array([[1, 2]]), None, None
    )
    assert isinstance(state, torch.Tensor) and state.dtype == torch.float32
    assert isinstance(action, torch.Tensor) and action.tolist() == [[0, 1, 0, 0, 1]]


@pytest.mark.parametrize("shape", [(8, 8, 3), (3, 8, 8)], ids=["hwc", "chw"])
def test_uint8_images_scaled_only_when_normalize_images(shape: tuple[int, ...]) -> None:
    space = spaces.Box(0, 255, shape, np.uint8)
    images = np.full((2, *shape), 255, np.uint8)
    scaled, _, _, _ = _net(space, spaces.Discrete(2)).preprocess(
        images, np.array([0, 1]), None, None
    )
    raw, _, _, _ = _net(space, spaces.Discrete(2), normalize_images=False).preprocess(
        images, np.array([0, 1]), None, None
    )
    assert isinstance(scaled, torch.Tensor) and float(scaled.max()) == 1.0
    assert isinstance(raw, torch.Tensor) and float(raw.max()) == 255.0


def test_dict_space_preprocesses_each_key() -> None:
    space = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,)), "mode": spaces.Discrete(3)})
    net = _net(space, spaces.Discrete(2))
    state, _, _, _ = net.preprocess(
        {"pos": np.zeros((4, 2)), "mode": np.array([0, 1, 2, 1])}, np.zeros(4, int), None, None
    )
    assert isinstance(state, dict) and set(state) == {"pos", "mode"}
    assert state["mode"].shape == (4, 3) and state["pos"].shape == (4, 2)


def test_wrong_state_shape_names_expected_and_received() -> None:
    net = _net(spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(2))
    with pytest.raises(ValueError, match=r"state .* shape \(batch, 3\), got shape \(5, 4\)"):
        net.predict(np.zeros((5, 4)), np.zeros(5, int))


def test_mismatched_batch_sizes() -> None:
    net = _net(spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(2))
    with pytest.raises(ValueError, match="state has 5 rows but action has 4"):
        net.predict(np.zeros((5, 3)), np.zeros(4, int))


def test_dict_observation_missing_key() -> None:
    space = spaces.Dict({"a": spaces.Box(-1.0, 1.0, (1,)), "b": spaces.Box(-1.0, 1.0, (1,))})
    net = _net(space, spaces.Discrete(2))
    with pytest.raises(KeyError, match=r"missing keys \['b'\]"):
        net.predict({"a": np.zeros((2, 1))}, np.zeros(2, int))


def test_unsupported_space_is_refused_clearly() -> None:
    with pytest.raises(TypeError, match="not supported; expected one of Box"):
        _net(spaces.Tuple((spaces.Discrete(2),)), spaces.Discrete(2))
    with pytest.raises(TypeError, match=r"gymnasium\.spaces\.Space, got tuple"):
        _net((3,), spaces.Discrete(2))  # type: ignore[arg-type]
