"""Conformance checks for reward nets, for plugin authors and our own tests.

``check_reward_net(net)`` runs the checks the built-in nets pass. Run it in the
test suite of a package that contributes nets::

    from rewardnets.testing import check_reward_net

    def test_my_net_conforms():
        check_reward_net(MyRewardNet(obs_space, act_space))
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from rewardnets.errors import RewardNetsError
from rewardnets.framework.build import build_reward_net
from rewardnets.framework.configurable import SpecError
from rewardnets.framework.reward_net import RewardNet

__all__ = ["ConformanceError", "check_reward_net", "sample_transitions"]


class ConformanceError(RewardNetsError, AssertionError):
    """A reward net failed a conformance check; the message names the check."""


def _sample(space: spaces.Space[Any], n: int, rng: np.random.Generator) -> Any:
    if isinstance(space, spaces.Dict):
        return {k: _sample(s, n, rng) for k, s in space.spaces.items()}
    local = copy.deepcopy(space)
    local.seed(int(rng.integers(2**31)))
    return np.stack([np.asarray(local.sample()) for _ in range(n)])


def sample_transitions(
    net: RewardNet, batch_size: int = 8, seed: int = 0
) -> tuple[Any, Any, Any, np.ndarray]:
    """Sample a random batch ``(state, action, next_state, done)`` from ``net``'s spaces."""
    rng = np.random.default_rng(seed)
    state = _sample(net.observation_space, batch_size, rng)
    action = _sample(net.action_space, batch_size, rng)
    next_state = _sample(net.observation_space, batch_size, rng)
    done = rng.random(batch_size) < 0.3
    return state, action, next_state, done


def _check(name: str, condition: bool, detail: Callable[[], str]) -> None:
    if not condition:
        raise ConformanceError(f"check {name!r} failed: {detail()}")


def check_reward_net(
    net: RewardNet, *, batch_size: int = 8, seed: int = 0, check_spec: bool = True
) -> None:
    """Check that ``net`` behaves as the RewardNet contract says.

    The checks run on a deep copy, so ``net`` (and any statistics it keeps) is
    left untouched. Checked: output shapes and dtypes on samples of its spaces;
    ``predict*`` run without gradients, in eval mode, and restore the previous
    mode; ``forward`` keeps gradients; ``forward`` and ``predict`` agree;
    ``predict_processed`` returns numpy ``(batch,)``; a device round trip (to
    CUDA and back where available) keeps predictions; and the net's spec
    rebuilds a net of the same structure that, given the same weights,
    predicts the same.

    Args:
        net: The reward net to check.
        batch_size: The batch size of the sampled transitions.
        seed: Seed of the sampled transitions.
        check_spec: Whether to check the spec round trip.

    Raises:
        ConformanceError: A check failed; the message names it.
    """
    if not isinstance(net, RewardNet):
        raise ConformanceError(f"expected a RewardNet, got {type(net).__name__}")
    net = copy.deepcopy(net)
    batch = sample_transitions(net, batch_size, seed)

    for mode in (True, False):
        net.train(mode)
        reward_th = net.predict_th(*batch)
        _check(
            "predict restores the training mode",
            net.training is mode,
            lambda m=mode: f"training was {m} before predict_th and {net.training} after",  # type: ignore[misc]
        )
    _check(
        "predict_th returns a (batch,) tensor",
        isinstance(reward_th, torch.Tensor) and reward_th.shape == (batch_size,),
        lambda: f"got {type(reward_th).__name__} of shape {getattr(reward_th, 'shape', None)}",
    )
    _check(
        "predict_th has no gradient",
        not reward_th.requires_grad,
        lambda: "the returned tensor requires grad",
    )
    _check(
        "predict_th is on the net's device",
        reward_th.device == net.device,
        lambda: f"reward on {reward_th.device}, net on {net.device}",
    )
    _check(
        "predict_th is floating point",
        reward_th.is_floating_point(),
        lambda: f"dtype {reward_th.dtype}",
    )
    reward_np = net.predict(*batch)
    _check(
        "predict returns a finite numpy (batch,)",
        isinstance(reward_np, np.ndarray)
        and reward_np.shape == (batch_size,)
        and bool(np.all(np.isfinite(reward_np))),
        lambda: f"got {type(reward_np).__name__} {getattr(reward_np, 'shape', None)}",
    )
    processed = net.predict_processed(*batch)
    _check(
        "predict_processed returns a numpy (batch,)",
        isinstance(processed, np.ndarray) and processed.shape == (batch_size,),
        lambda: f"got {type(processed).__name__} {getattr(processed, 'shape', None)}",
    )

    net.eval()
    inputs = net.preprocess(*batch)
    forward = net(*inputs)
    _check(
        "forward and predict agree",
        forward.shape == (batch_size,)
        and torch.allclose(forward.detach(), net.predict_th(*batch), atol=1e-5, rtol=1e-4),
        lambda: f"forward {forward.detach()} vs predict_th {net.predict_th(*batch)}",
    )
    if any(p.requires_grad for p in net.parameters()):
        _check(
            "forward keeps gradients",
            forward.requires_grad,
            lambda: "forward's output does not require grad although the net has parameters",
        )

    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    for device in devices:
        moved = copy.deepcopy(net).to(device)
        _check(
            f"net moves to {device}",
            moved.device.type == device.type,
            lambda m=moved: f"device is {m.device}",  # type: ignore[misc]
        )
        back = moved.to("cpu").predict(*batch) if device.type != "cpu" else moved.predict(*batch)
        _check(
            f"predictions survive a round trip to {device}",
            np.allclose(back, reward_np, atol=1e-5, rtol=1e-4),
            lambda b=back: f"{b} vs {reward_np}",  # type: ignore[misc]
        )

    if check_spec:
        try:
            spec = net.spec
        except SpecError as exc:
            raise ConformanceError(f"check 'the net has a spec' failed: {exc}") from exc
        rebuilt = build_reward_net(spec, net.observation_space, net.action_space)
        _check(
            "the spec rebuilds the same structure",
            type(rebuilt) is type(net) and rebuilt.spec == spec,
            lambda: f"rebuilt {type(rebuilt).__name__} with spec {rebuilt.spec}, from {spec}",
        )
        try:
            rebuilt.load_state_dict(net.state_dict())
        except RuntimeError as exc:
            raise ConformanceError(
                f"check 'the spec rebuilds the same parameters' failed: {exc}"
            ) from exc
        rebuilt.to(net.device)
        _check(
            "the rebuilt net predicts the same",
            np.allclose(rebuilt.predict(*batch), reward_np, atol=1e-5, rtol=1e-4),
            lambda: f"{rebuilt.predict(*batch)} vs {reward_np}",
        )
