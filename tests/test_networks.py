"""build_mlp, build_cnn and the running normalisation layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rewardnets.networks import EMANorm, RunningNorm, build_cnn, build_mlp


def test_build_mlp_names_layers_and_shapes() -> None:
    mlp = build_mlp(4, (8, 6), out_size=1, name="r", squeeze_output=True, dropout_prob=0.1)
    names = [n for n, _ in mlp.named_children()]
    assert names == [
        "r_dense0",
        "r_act0",
        "r_dropout0",
        "r_dense1",
        "r_act1",
        "r_dropout1",
        "r_dense_final",
        "r_squeeze",
    ]
    assert mlp(torch.zeros(3, 4)).shape == (3,)


def test_build_mlp_flatten_and_input_normalisation() -> None:
    mlp = build_mlp(6, [], out_size=2, flatten_input=True, normalize_input_layer=RunningNorm)
    assert isinstance(mlp.normalize_input, RunningNorm)
    assert mlp(torch.zeros(5, 2, 3)).shape == (5, 2)


def test_build_mlp_rejects_squeeze_of_wide_output() -> None:
    with pytest.raises(ValueError, match="squeeze_output needs out_size == 1"):
        build_mlp(3, (4,), out_size=2, squeeze_output=True)


@pytest.mark.parametrize("size", [(7, 7), (32, 48), (84, 84)])
@pytest.mark.parametrize("stride", [1, 2])
def test_build_cnn_works_for_any_image_size(size: tuple[int, int], stride: int) -> None:
    cnn = build_cnn(3, (4, 5), out_size=1, stride=stride, squeeze_output=True, name="c")
    assert cnn(torch.zeros(2, 3, *size)).shape == (2,)
    assert "c_conv0" in dict(cnn.named_children())


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(1, 20), min_size=1, max_size=6),
    st.integers(1, 3),
    st.integers(0, 2**31 - 1),
)
def test_running_norm_matches_the_exact_statistics(
    sizes: list[int], features: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    batches = [rng.normal(3.0, 2.0, (n, features)) for n in sizes]
    norm = RunningNorm(features).double()
    for batch in batches:
        norm.update_stats(torch.as_tensor(batch))
    everything = np.concatenate(batches)
    np.testing.assert_allclose(norm.running_mean.numpy(), everything.mean(0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(norm.running_var.numpy(), everything.var(0), rtol=1e-9, atol=1e-9)
    assert int(norm.count) == len(everything)


def test_ema_norm_weights_batches_geometrically() -> None:
    decay = 0.5
    norm = EMANorm(1, decay=decay).double()
    means = [1.0, 5.0, -2.0]
    for m in means:
        norm.update_stats(torch.full((4, 1), m, dtype=torch.float64))
    # Bias-corrected EMA of constant batches: weights decay^(t-k), normalised.
    weights = np.array([decay**2, decay, 1.0])
    expected_mean = float(np.dot(weights, means) / weights.sum())
    assert norm.running_mean.item() == pytest.approx(expected_mean)
    assert int(norm.count) == 12 and int(norm.num_batches) == 3


def test_ema_first_batch_is_not_pulled_towards_the_prior() -> None:
    norm = EMANorm(2, decay=0.99)
    norm.update_stats(torch.tensor([[10.0, -4.0], [12.0, -6.0]]))
    assert torch.allclose(norm.running_mean, torch.tensor([11.0, -5.0]))
    assert torch.allclose(norm.running_var, torch.tensor([1.0, 1.0]))


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 1.5])
def test_ema_decay_must_be_in_open_unit_interval(decay: float) -> None:
    with pytest.raises(ValueError, match=r"decay in \(0, 1\)"):
        EMANorm(1, decay=decay)


def test_forward_updates_in_train_mode_only() -> None:
    norm = RunningNorm(1)
    x = torch.tensor([[2.0], [4.0]])
    norm.eval()
    assert torch.allclose(norm(x), x / np.sqrt(1 + norm.eps))
    assert int(norm.count) == 0
    norm.train()
    out = norm(x)
    assert int(norm.count) == 2
    assert torch.allclose(out, (x - 3.0) / torch.sqrt(torch.tensor(1.0 + norm.eps)))


def test_norm_rejects_wrong_feature_count() -> None:
    with pytest.raises(ValueError, match=r"shape \(batch, 2\), got \(3, 5\)"):
        RunningNorm(2).update_stats(torch.zeros(3, 5))


def test_norm_buffers_are_in_the_state_dict() -> None:
    keys = set(nn.Sequential(EMANorm(2)).state_dict())
    assert {"0.running_mean", "0.running_var", "0.count", "0.num_batches"} <= keys
