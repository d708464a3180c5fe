"""The fast paths of prediction keep every semantic of the slow ones they replace.

Eval-mode switching with cached flags (the torch path), host-side one-hot and
flag conversion, normalisation statistics kept by the compiled kernels, and
the cheap success path of the env wrapper's reward checks: each is compared
with what it replaces, and each cache is shown to notice the changes that
invalidate it. ``test_inference_kernels.py`` holds the property tests of the
kernels.
"""

from __future__ import annotations

import copy
import functools
import pickle
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

from rewardnets import EMANorm, RunningNorm
from rewardnets.reward_nets import BasicRewardNet, NormalizedRewardNet
from rewardnets.reward_wrapper import InvalidRewardError, call_reward_fn

BOX = spaces.Box(-1.0, 1.0, (3,))


def _batch(n: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 3)).astype(np.float32), rng.integers(0, 3, n)


# ------------------------------------------------------------------- eval switching
class _ModeProbe(nn.Module):
    """Records the training flags of chosen modules each time it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.watch: list[nn.Module] = []
        self.seen: list[list[bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append([self.training, *(m.training for m in self.watch)])
        return x


def test_predict_switches_modules_added_removed_or_replaced_after_the_first_call() -> None:
    net = BasicRewardNet(BOX, spaces.Discrete(3), hid_sizes=(8,))
    obs, acts = _batch()
    net.predict(obs, acts)  # caches the flags of the current tree
    probe = _ModeProbe()
    dropout = nn.Dropout(0.9)
    probe.watch.append(dropout)
    layers = net.mlp._modules  # edited in place, past nn.Module's API
    existing = list(layers.items())
    layers.clear()
    layers.update([("probe", probe), ("drop", dropout), *existing])
    first, second = net.predict(obs, acts), net.predict(obs, acts)
    np.testing.assert_array_equal(first, second)  # the new dropout was in eval mode
    assert probe.seen[-1] == [False, False]
    assert all(m.training for m in net.modules())  # and everything is back in train mode
    del net.mlp.drop  # remove the dropout ...
    net.mlp.probe = replacement = _ModeProbe()  # ... and replace the probe
    net.predict(obs, acts)
    assert replacement.seen == [[False]]
    assert dropout.training  # a removed module is not touched any more
    dropout.eval()
    net.predict(obs, acts)
    assert not dropout.training


def test_a_module_with_its_own_train_is_switched_by_calling_it() -> None:
    calls: list[bool] = []

    class CustomTrain(nn.Module):
        def train(self, mode: bool = True) -> CustomTrain:
            calls.append(mode)
            return super().train(mode)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert not self.training
            return x

    net = BasicRewardNet(BOX, spaces.Discrete(3), hid_sizes=(8,))
    net.mlp._modules = {"custom": CustomTrain(), **net.mlp._modules}
    calls.clear()
    net.predict(*_batch())
    assert calls == [False, True]
    assert net.training


def test_copies_and_pickles_of_a_net_switch_their_own_modules() -> None:
    net = BasicRewardNet(BOX, spaces.Discrete(3), hid_sizes=(8,), dropout_prob=0.5)
    obs, acts = _batch()
    net.predict(obs, acts)  # cache the flags before copying
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        probe = _ModeProbe()
        probe.watch.extend([net.mlp, clone.mlp])
        clone.mlp._modules = {"probe": probe, **clone.mlp._modules}
        clone.predict(obs, acts)
        assert probe.seen == [[False, True, False]]  # the original is left alone
        np.testing.assert_array_equal(clone.predict(obs, acts), clone.predict(obs, acts))
        assert clone.training and net.training


def test_predict_on_an_eval_net_leaves_it_in_eval_mode() -> None:
    net = BasicRewardNet(BOX, spaces.Discrete(3)).eval()
    net.predict(*_batch())
    assert not any(m.training for m in net.modules())


def test_gradients_are_enabled_again_after_predict_even_when_it_raises() -> None:
    net = BasicRewardNet(BOX, spaces.Discrete(3))
    with pytest.raises(ValueError, match="shape"):
        net.predict(np.zeros((2, 5)), np.zeros(2, int))
    assert torch.is_grad_enabled() and net.training
    with torch.no_grad():
        net.predict(*_batch())
        assert not torch.is_grad_enabled()


# --------------------------------------------------------------------- preprocessing
@pytest.mark.parametrize("values", [[0, 3], [-1, 1], [5]])
def test_discrete_values_out_of_range_are_a_clear_error(values: list[int]) -> None:
    net = BasicRewardNet(BOX, spaces.Discrete(3))
    obs = np.zeros((len(values), 3), np.float32)
    for acts in (np.array(values), torch.tensor(values)):
        with pytest.raises(ValueError, match=r"action values of Discrete\(3\) in \[0, 3\)"):
            net.predict(obs, acts)


def test_discrete_inputs_of_every_kind_give_the_same_one_hot() -> None:
    net = BasicRewardNet(BOX, spaces.Discrete(4, start=-1))
    obs = np.zeros((4, 3), np.float32)
    want = torch.eye(4)
    for acts in (
        np.array([-1, 0, 1, 2]),
        np.array([[-1], [0], [1], [2]]),
        np.array([-1, 0, 1, 2], np.int32),
        np.array([-1.0, 0.0, 1.0, 2.0]),
        [-1, 0, 1, 2],
        torch.tensor([-1, 0, 1, 2]),
    ):
        _, action, _, _ = net.preprocess(obs, acts, None, None)
        assert torch.equal(action, want), acts
    net.double()
    _, action, _, _ = net.preprocess(obs, np.array([-1, 0, 1, 2]), None, None)
    assert isinstance(action, torch.Tensor) and action.dtype == torch.float64


def test_large_discrete_spaces_are_one_hot_without_a_table() -> None:
    net = BasicRewardNet(BOX, spaces.Discrete(5000))
    _, action, _, _ = net.preprocess(np.zeros((2, 3)), np.array([0, 4999]), None, None)
    assert isinstance(action, torch.Tensor) and action.shape == (2, 5000)
    assert action[0, 0] == 1 and action[1, 4999] == 1 and action.sum() == 2
    with pytest.raises(ValueError, match=r"in \[0, 5000\), got \[5000\]"):
        net.preprocess(np.zeros((1, 3)), np.array([5000]), None, None)


@pytest.mark.parametrize(
    "done", [np.array([True, False]), np.array([1, 0]), np.array([[1.0], [0.0]]), [1, 0]]
)
def test_done_flags_become_floats_of_the_net_dtype(done: Any) -> None:
    net = BasicRewardNet(BOX, spaces.Discrete(3))
    _, _, _, done_th = net.preprocess(np.zeros((2, 3)), np.array([0, 1]), None, done)
    assert done_th is not None and done_th.dtype == torch.float32
    assert done_th.tolist() == [1.0, 0.0]


def test_box_input_of_any_memory_layout_gives_the_same_rewards() -> None:
    net = BasicRewardNet(BOX, spaces.Discrete(3))
    obs, acts = _batch()
    before = net.predict(obs, acts)
    obs_copy = obs.copy()
    np.testing.assert_array_equal(net.predict(obs_copy, acts), before)
    reversed_obs = obs[::-1]  # negative strides: torch.from_numpy refuses, a copy is made
    np.testing.assert_allclose(net.predict(reversed_obs, acts[::-1]), before[::-1], rtol=1e-6)


# ----------------------------------------------------------------- normalisation
def _normalized_twins(
    layer: type[RunningNorm | EMANorm],
) -> tuple[NormalizedRewardNet, NormalizedRewardNet]:
    """The same normalised net twice; the second always takes the torch path."""
    kwargs: dict[str, Any] = {"decay": 0.9} if layer is EMANorm else {}
    torch.manual_seed(0)
    fast = NormalizedRewardNet(
        BasicRewardNet(BOX, spaces.Discrete(3), hid_sizes=(8,)), functools.partial(layer, **kwargs)
    )
    slow = copy.deepcopy(fast)
    slow.base.mlp.register_forward_hook(lambda *_: None)  # a hook: no kernel for this stack
    return fast, slow


@pytest.mark.parametrize("layer", [RunningNorm, EMANorm])
def test_kernel_statistics_match_the_torch_update(layer: type[RunningNorm | EMANorm]) -> None:
    fast, slow = _normalized_twins(layer)
    for size in (1, 5, 64, 65, 300, 2):
        obs, acts = _batch(size, seed=size)
        got = fast.predict_processed(obs, acts)
        assert fast._kernel_plans.processed.run is not None  # the kernel ran
        np.testing.assert_allclose(got, slow.predict_processed(obs, acts), rtol=1e-5, atol=1e-6)
        assert slow._kernel_plans.processed.run is None
        for name, value in slow.state_dict().items():
            np.testing.assert_allclose(
                fast.state_dict()[name].numpy(), value.numpy(), rtol=1e-5, err_msg=name
            )


def test_statistics_replaced_moved_or_edited_in_place_are_seen() -> None:
    fast, slow = _normalized_twins(RunningNorm)
    obs, acts = _batch()
    for net in (fast, slow):
        net.predict_processed(obs, acts)
        layer = net.normalize_output_layer
        layer.count = torch.tensor(0)  # a new tensor under the same name
        net.predict_processed(obs, acts)
        assert int(layer.count) == len(obs)
        layer.share_memory()  # same tensors, new memory
        net.predict_processed(obs, acts)
        layer.running_mean.fill_(100.0)  # an in-place edit
    np.testing.assert_allclose(
        fast.predict_processed(obs, acts, update_stats=False),
        slow.predict_processed(obs, acts, update_stats=False),
        rtol=1e-5,
    )
    assert int(fast.normalize_output_layer.count) == 2 * len(obs)
    restored = pickle.loads(pickle.dumps(fast))
    restored.predict_processed(obs, acts)
    assert int(restored.normalize_output_layer.count) == 3 * len(obs)
    assert int(fast.normalize_output_layer.count) == 2 * len(obs)


def test_subclass_overrides_of_update_stats_and_normalize_are_used() -> None:
    calls: list[str] = []

    class Counting(RunningNorm):
        def update_stats(self, batch: torch.Tensor) -> None:
            calls.append("update")
            super().update_stats(batch)

    class Halving(RunningNorm):
        def normalize(self, x: torch.Tensor) -> torch.Tensor:
            calls.append("normalize")
            return x / 2

    obs, acts = _batch()
    counted = NormalizedRewardNet(BasicRewardNet(BOX, spaces.Discrete(3)), Counting)
    counted.predict_processed(obs, acts)
    assert calls == ["update"] and int(counted.normalize_output_layer.count) == len(obs)
    halved = NormalizedRewardNet(BasicRewardNet(BOX, spaces.Discrete(3)), Halving)
    raw = halved.predict(obs, acts)
    np.testing.assert_allclose(halved.predict_processed(obs, acts), raw / 2, rtol=1e-6)
    assert calls[-1] == "normalize"


def test_normalized_net_uses_a_base_that_post_processes_its_reward() -> None:
    class Doubled(BasicRewardNet):
        def predict_processed(self, *args: Any, **kwargs: Any) -> np.ndarray:
            return 2 * super().predict_processed(*args, **kwargs)

    obs, acts = _batch()
    base = Doubled(BOX, spaces.Discrete(3))
    net = NormalizedRewardNet(base)
    np.testing.assert_allclose(
        net.predict_processed(obs, acts), 2 * base.predict(obs, acts) / np.sqrt(1 + 1e-5), rtol=1e-5
    )
    nested = NormalizedRewardNet(NormalizedRewardNet(BasicRewardNet(BOX, spaces.Discrete(3))))
    th = nested.predict_processed_th(obs, acts)
    assert isinstance(th, torch.Tensor) and th.shape == (len(obs),)
    assert int(nested.base.normalize_output_layer.count) == len(obs)
    identity = NormalizedRewardNet(base, nn.Identity)
    np.testing.assert_allclose(identity.predict_processed(obs, acts), 2 * base.predict(obs, acts))


# ------------------------------------------------------------------- reward checks
def test_huge_finite_rewards_pass_the_one_reduction_check() -> None:
    rewards = np.array([3e38, 3e38, -1.0], np.float32)  # a float32 sum would overflow
    got = call_reward_fn(lambda *_: rewards, None, None, None, np.zeros(3, bool), batch_size=3)
    np.testing.assert_array_equal(got, rewards)
    bad = np.array([1.0, np.nan, np.inf], np.float32)
    with pytest.raises(InvalidRewardError, match=r"non-finite rewards at batch indices \[1, 2\]"):
        call_reward_fn(lambda *_: bad, None, None, None, np.zeros(3, bool), batch_size=3)
