"""Conformance checks for what plugins contribute, for plugin authors and our own tests.

One checker per kind: :func:`check_reward_net` (nets and wrapper stacks),
:func:`check_potential`, :func:`check_norm_layer`, :func:`check_reward_type`,
:func:`check_query_selector` and :func:`check_teacher`.
Each runs the checks the built-ins pass and returns a
:class:`ConformanceReport` naming them, or raises :class:`ConformanceError`
naming the check that failed. Run them in the test suite of a package that
contributes to rewardnets::

    from rewardnets.testing import check_reward_net

    def test_my_net_conforms():
        check_reward_net(MyRewardNet(obs_space, act_space))
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

import rewardnets
import rewardnets.serialize
from rewardnets import RewardNet, SpecError, build_reward_net
from rewardnets.errors import RewardNetsError

__all__ = [
    "ConformanceError",
    "ConformanceReport",
    "check_norm_layer",
    "check_potential",
    "check_query_selector",
    "check_reward_net",
    "check_reward_type",
    "check_teacher",
    "sample_transitions",
]


class ConformanceError(RewardNetsError, AssertionError):
    """A contribution failed a conformance check; the message names the check."""


@dataclasses.dataclass
class ConformanceReport:
    """What a checker checked: every check passed (a failure raises instead).

    Attributes:
        subject: What was checked (a class name, a reward type).
        passed: The names of the checks, in the order they ran.
        skipped: Checks that did not apply, each with the reason.
    """

    subject: str
    passed: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.subject}: {len(self.passed)} checks passed"]
        lines += [f"  ok    {name}" for name in self.passed]
        lines += [f"  skip  {name}" for name in self.skipped]
        return "\n".join(lines)


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


def _checker(report: ConformanceReport) -> Callable[[str, bool, Callable[[], str]], None]:
    def check(name: str, condition: bool, detail: Callable[[], str]) -> None:
        if not condition:
            raise ConformanceError(f"{report.subject}: check {name!r} failed: {detail()}")
        report.passed.append(name)

    return check


def check_reward_net(
    net: RewardNet,
    *,
    batch_size: int = 8,
    seed: int = 0,
    check_spec: bool = True,
    check_save: bool = True,
) -> ConformanceReport:
    """Check that ``net`` behaves as the RewardNet contract says.

    The checks run on a deep copy, so ``net`` (and any statistics it keeps) is
    left untouched. Checked: output shapes and dtypes on samples of its spaces;
    ``predict*`` run without gradients, in eval mode, and restore the previous
    mode; ``forward`` keeps gradients; ``forward`` and ``predict`` agree;
    ``predict_processed`` returns numpy ``(batch,)``; a device round trip (to
    CUDA and back where available) keeps predictions; and the net's spec
    rebuilds a net of the same structure that, given the same weights,
    predicts the same; and ``rewardnets.save`` then ``rewardnets.load`` gives
    a net that predicts the same.

    Args:
        net: The reward net to check (any wrapper stack).
        batch_size: The batch size of the sampled transitions.
        seed: Seed of the sampled transitions.
        check_spec: Check the spec round trip (turn off for a net that is not
            meant to be built from data).
        check_save: Check the save/load round trip in the safe format (needs
            ``check_spec``'s conditions too: a registered or importable class).

    Returns:
        The report of the checks that passed.

    Raises:
        ConformanceError: A check failed; the message names it.
    """
    if not isinstance(net, RewardNet):
        raise ConformanceError(f"expected a RewardNet, got {type(net).__name__}")
    report = ConformanceReport(type(net).__name__)
    _check = _checker(report)
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
            raise ConformanceError(
                f"{report.subject}: check 'the net has a spec' failed: {exc}"
            ) from exc
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
                f"{report.subject}: check 'the spec rebuilds the same parameters' failed: {exc}"
            ) from exc
        rebuilt.to(net.device)
        _check(
            "the rebuilt net predicts the same",
            np.allclose(rebuilt.predict(*batch), reward_np, atol=1e-5, rtol=1e-4),
            lambda: f"{rebuilt.predict(*batch)} vs {reward_np}",
        )
    else:
        report.skipped.append("the spec round trip (check_spec=False)")
    if check_save:
        with tempfile.TemporaryDirectory() as folder:
            path = rewardnets.serialize.save(net, Path(folder) / "net.rn")
            loaded = rewardnets.serialize.load(path, device=net.device)
        _check(
            "save and load keep the predictions",
            np.allclose(loaded.predict(*batch), reward_np, atol=1e-6, rtol=1e-5),
            lambda: f"{loaded.predict(*batch)} vs {reward_np}",
        )
    else:
        report.skipped.append("the save/load round trip (check_save=False)")
    return report


def _state_batch(space: spaces.Space[Any], batch_size: int, seed: int) -> Any:
    """A preprocessed batch of states, as a potential receives them."""
    probe = rewardnets.BasicRewardNet(space, spaces.Discrete(2), hid_sizes=(2,))
    states = _sample(space, batch_size, np.random.default_rng(seed))
    return probe.preprocess(states, None, None, None)[0]


def check_potential(
    potential: type[nn.Module] | nn.Module,
    observation_space: spaces.Space[Any],
    *,
    batch_size: int = 8,
    seed: int = 0,
    **kwargs: Any,
) -> ConformanceReport:
    """Check a shaping potential as ``ShapedRewardNet`` uses it.

    Checked: it is built as ``cls(observation_space, **kwargs)`` into an
    ``nn.Module``; it maps a batch of preprocessed states to a floating-point
    ``(batch,)`` potential that keeps gradients; a ``ShapedRewardNet`` over a
    ``BasicRewardNet`` with it passes :func:`check_reward_net` (spec and save
    round trips included when the class is registered).

    Args:
        potential: The potential class (or an instance, whose class is checked).
        observation_space: The space its states come from.
        batch_size: The batch size of the sampled states.
        seed: Seed of the sampled states.
        **kwargs: Constructor arguments.

    Returns:
        The report of the checks that passed.

    Raises:
        ConformanceError: A check failed; the message names it.
    """
    cls = potential if isinstance(potential, type) else type(potential)
    report = ConformanceReport(cls.__qualname__)
    _check = _checker(report)
    try:
        module = cls(observation_space, **kwargs)
    except Exception as exc:
        raise ConformanceError(
            f"{report.subject}: check 'built as cls(observation_space, **kwargs)' failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    _check(
        "it is an nn.Module",
        isinstance(module, nn.Module),
        lambda: f"got a {type(module).__name__}",
    )
    states = _state_batch(observation_space, batch_size, seed)
    value = module(states)
    _check(
        "it returns a floating-point (batch,) tensor",
        isinstance(value, torch.Tensor)
        and value.shape == (batch_size,)
        and value.is_floating_point(),
        lambda: f"got {type(value).__name__} of shape {getattr(value, 'shape', None)}",
    )
    if any(p.requires_grad for p in module.parameters()):
        _check(
            "it keeps gradients",
            value.requires_grad,
            lambda: "the potential does not require grad although the module has parameters",
        )
    base = rewardnets.BasicRewardNet(observation_space, spaces.Discrete(2), hid_sizes=(4,))
    shaped = rewardnets.ShapedRewardNet(base, module, discount_factor=0.9)
    return _check_inside(report, "potential", cls, "shaped net", shaped, batch_size, seed)


def _check_inside(
    report: ConformanceReport,
    kind: str,
    part: Any,
    label: str,
    net: RewardNet,
    batch_size: int,
    seed: int,
) -> ConformanceReport:
    """Run :func:`check_reward_net` on a net built around ``part``, into ``report``.

    The spec and save round trips run only when ``part`` is registered as
    ``kind``: a file can name only registered parts.
    """
    registered = rewardnets.registry.name_of(kind, part) is not None
    inner = check_reward_net(
        net, batch_size=batch_size, seed=seed, check_spec=registered, check_save=registered
    )
    report.passed += [f"{label}: {name}" for name in inner.passed]
    if not registered:
        report.skipped.append(f"spec and save round trips (it is not registered as a {kind})")
    return report


def check_norm_layer(
    layer: Callable[[int], nn.Module],
    *,
    num_features: int = 3,
    batch_size: int = 16,
    seed: int = 0,
) -> ConformanceReport:
    """Check a normalisation layer as ``NormalizedRewardNet`` and ``build_mlp`` use it.

    Checked: ``layer(num_features)`` is an ``nn.Module`` that preserves the
    shape of a ``(batch, num_features)`` input; in eval mode a call changes no
    buffer; for a layer with ``update_stats``, ``update_stats(batch)`` changes
    its buffers and train mode updates them; ``NormalizedRewardNet`` over a
    ``BasicRewardNet`` with it gives a finite ``(batch,)`` reward, changes
    its statistics only when ``update_stats=True``, and passes
    :func:`check_reward_net` (spec and save round trips included when the
    layer is registered).

    Args:
        layer: The layer class or factory ``(num_features) -> nn.Module``.
        num_features: The feature count to build it with.
        batch_size: The batch size of the sampled inputs.
        seed: Seed of the sampled inputs.

    Returns:
        The report of the checks that passed.

    Raises:
        ConformanceError: A check failed; the message names it.
    """
    name = getattr(layer, "__qualname__", None) or type(layer).__name__
    report = ConformanceReport(name)
    _check = _checker(report)
    module = layer(num_features)
    _check("it builds an nn.Module", isinstance(module, nn.Module), lambda: repr(module))
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, num_features, generator=generator) * 3 + 1

    def buffers() -> list[torch.Tensor]:
        return [b.detach().clone() for b in module.buffers()]

    module.eval()
    before = buffers()
    with torch.no_grad():
        out = module(x)
    _check(
        "it preserves the shape",
        isinstance(out, torch.Tensor) and out.shape == x.shape,
        lambda: f"{tuple(x.shape)} became {getattr(out, 'shape', None)}",
    )
    _check(
        "eval mode changes no buffer",
        all(torch.equal(a, b) for a, b in zip(before, buffers(), strict=True)),
        lambda: "a buffer changed in eval mode",
    )
    update = getattr(module, "update_stats", None)
    if callable(update) and before:
        with torch.no_grad():
            update(x)
        _check(
            "update_stats changes the statistics",
            any(not torch.equal(a, b) for a, b in zip(before, buffers(), strict=True)),
            lambda: "no buffer changed",
        )
    else:
        report.skipped.append("statistics checks (the layer keeps none)")
    obs_space = spaces.Box(-1.0, 1.0, (3,))
    net = rewardnets.NormalizedRewardNet(
        rewardnets.BasicRewardNet(obs_space, spaces.Discrete(2), hid_sizes=(4,)), layer
    )
    batch = sample_transitions(net, batch_size, seed)
    stats = [b.detach().clone() for b in net.normalize_output_layer.buffers()]
    frozen = net.predict_processed(*batch, update_stats=False)
    _check(
        "NormalizedRewardNet gives finite (batch,) rewards",
        frozen.shape == (batch_size,) and bool(np.all(np.isfinite(frozen))),
        lambda: f"got {frozen!r}",
    )
    _check(
        "update_stats=False leaves the statistics",
        all(
            torch.equal(a, b)
            for a, b in zip(stats, net.normalize_output_layer.buffers(), strict=True)
        ),
        lambda: "the statistics changed",
    )
    return _check_inside(report, "norm_layer", layer, "normalised net", net, batch_size, seed)


def check_reward_type(
    reward_type: str,
    net: RewardNet,
    venv: Any,
    *,
    seed: int = 0,
    **options: Any,
) -> ConformanceReport:
    """Check a registered reward type on a net saved for ``venv``.

    ``net`` is saved with ``rewardnets.save`` to a temporary file; the type
    loads it through ``load_reward``. Checked: the loader returns a callable;
    it gives ``venv.num_envs`` finite float rewards for a batch from
    ``venv``'s spaces; two calls give the same rewards and leave the saved
    net's statistics as they were (evaluation never changes a reward); it
    accepts ``device="cpu"`` and ``trust_pickle=False``; it refuses a file
    saved for other spaces with a ``SpaceMismatchError``.

    Args:
        reward_type: The registered reward type.
        net: A net the type accepts, built for ``venv``'s spaces.
        venv: A ``VecEnv``.
        seed: Seed of the sampled batch.
        **options: Options the type needs, passed to every ``load_reward``.

    Returns:
        The report of the checks that passed.

    Raises:
        ConformanceError: A check failed; the message names it.
    """
    report = ConformanceReport(f"reward type {reward_type!r}")
    _check = _checker(report)
    load_reward = rewardnets.serialize.load_reward
    n = int(venv.num_envs)
    batch = sample_transitions(net, n, seed)
    with tempfile.TemporaryDirectory() as folder:
        path = rewardnets.serialize.save(net, Path(folder) / "net.rn")
        fn = load_reward(reward_type, path, venv, device="cpu", trust_pickle=False, **options)
        _check("it returns a callable", callable(fn), lambda: f"got {type(fn).__name__}")
        loaded_net = getattr(fn, "reward_net", None)
        before = (
            [t.clone() for t in loaded_net.state_dict().values()]
            if isinstance(loaded_net, RewardNet)
            else None
        )
        first = np.asarray(fn(*batch))
        _check(
            "it gives one finite float reward per env",
            first.shape == (n,) and first.dtype.kind == "f" and bool(np.all(np.isfinite(first))),
            lambda: f"got {first!r} for {n} envs",
        )
        second = np.asarray(fn(*batch))
        _check(
            "evaluating twice gives the same rewards",
            np.array_equal(first, second),
            lambda: f"{first} then {second}",
        )
        if before is not None and isinstance(loaded_net, RewardNet):
            after = list(loaded_net.state_dict().values())
            _check(
                "evaluating leaves the net's statistics",
                all(torch.equal(a, b) for a, b in zip(before, after, strict=True)),
                lambda: "a buffer of the loaded net changed while the reward was evaluated",
            )
        else:
            report.skipped.append("the statistics check (the reward function has no reward_net)")
        other = _other_space(net.observation_space)
        if other is None:
            report.skipped.append("the space check (no other space to try)")
            return report
        wrong_path = Path(folder) / "wrong.rn"
        try:
            wrong_net = build_reward_net(net.spec, other, net.action_space)
        except (RewardNetsError, ValueError, TypeError):
            report.skipped.append("the space check (the net cannot be rebuilt for another space)")
            return report
        rewardnets.serialize.save(wrong_net, wrong_path)
        try:
            load_reward(reward_type, wrong_path, venv, **options)
        except rewardnets.serialize.SpaceMismatchError:
            report.passed.append("it refuses a net saved for other spaces")
        else:
            raise ConformanceError(
                f"{report.subject}: check 'it refuses a net saved for other spaces' failed: "
                f"a net saved for observation space {other} loaded for {venv.observation_space}"
            )
    return report


def _other_space(space: spaces.Space[Any]) -> spaces.Space[Any] | None:
    """A space of another structure than ``space``, for the space check."""
    if isinstance(space, spaces.Box) and space.dtype.kind == "f":
        return spaces.Box(-1.0, 1.0, (int(np.prod(space.shape)) + 1,), space.dtype)
    if isinstance(space, spaces.Discrete):
        return spaces.Discrete(int(space.n) + 1)
    return None


def _resolve(kind: str, obj: Any) -> tuple[str, Any]:
    if isinstance(obj, str):
        return repr(obj), rewardnets.registry.resolve(kind, obj)
    return getattr(obj, "__qualname__", type(obj).__name__), obj


def check_query_selector(
    selector: Any, *, n_fragments: int = 12, n_members: int = 3, seed: int = 0
) -> ConformanceReport:
    """Check a query selector (a registered name or the callable itself).

    Checked, on random candidate pairs and member returns: it returns
    ``n_queries`` distinct integer indices into the candidates, for a few
    sizes including all of them; it does not change its inputs; the same
    generator state gives the same choice; it works when all members agree.

    Args:
        selector: A registered selector name, or ``selector(pairs,
            member_returns, n_queries, rng)``.
        n_fragments: Fragments in the sampled pool.
        n_members: Ensemble members in the sampled returns.
        seed: Seeds the samples.

    Returns:
        The report of the checks that passed.

    Raises:
        ConformanceError: A check failed; the message names it.
    """
    name, select = _resolve("query_selector", selector)
    report = ConformanceReport(f"query selector {name}")
    _check = _checker(report)
    rng = np.random.default_rng(seed)
    first = rng.integers(n_fragments, size=20)
    pairs = np.stack([first, (first + rng.integers(1, n_fragments, size=20)) % n_fragments], 1)
    returns = rng.normal(size=(n_members, n_fragments))
    pairs_before, returns_before = pairs.copy(), returns.copy()
    for n in (1, 5, len(pairs)):
        picked = np.asarray(select(pairs, returns, n, np.random.default_rng(seed)))
        problem = f"asked for {n} of {len(pairs)} candidates, got {picked!r}"
        _check(
            f"it picks {n} distinct candidates",
            picked.dtype.kind in "iu"
            and picked.shape == (n,)
            and len(np.unique(picked)) == n
            and bool(np.all((picked >= 0) & (picked < len(pairs)))),
            functools.partial(str, problem),
        )
    _check(
        "it leaves its inputs unchanged",
        np.array_equal(pairs, pairs_before) and np.array_equal(returns, returns_before),
        lambda: "the pairs or the member returns were modified",
    )
    again = [np.asarray(select(pairs, returns, 5, np.random.default_rng(seed))) for _ in range(2)]
    _check(
        "the same generator state gives the same choice",
        np.array_equal(again[0], again[1]),
        lambda: f"{again[0]} then {again[1]}",
    )
    agreeing = np.repeat(returns[:1], n_members, axis=0)
    same = np.asarray(select(pairs, agreeing, 5, np.random.default_rng(seed)))
    _check(
        "it picks when all members agree",
        same.shape == (5,) and len(np.unique(same)) == 5,
        lambda: f"got {same!r}",
    )
    return report


def check_teacher(
    teacher: Any, *, n_pairs: int = 64, length: int = 5, seed: int = 0, **options: Any
) -> ConformanceReport:
    """Check a teacher (a registered name or a factory), built with ``options``.

    Checked, on random per-step rewards: the factory builds a callable; it
    gives ``(n_pairs,)`` floats in [0, 1] or ``nan`` (skipped); swapping the
    fragments of every pair mirrors the labels (``p`` becomes ``1 - p``, a
    skip stays a skip) for the same generator state; the same generator
    state gives the same labels; it answers some pairs and prefers the
    better fragment of most pairs whose returns differ a lot.

    Args:
        teacher: A registered teacher name, or ``factory(**options) -> teacher``.
        n_pairs: Pairs in the sampled batch.
        length: Steps per sampled fragment.
        seed: Seeds the samples and the teacher's generator.
        **options: Passed to the factory.

    Returns:
        The report of the checks that passed.

    Raises:
        ConformanceError: A check failed; the message names it.
    """
    name, factory = _resolve("teacher", teacher)
    report = ConformanceReport(f"teacher {name}")
    _check = _checker(report)
    built = factory(**options)
    _check("the factory builds a callable", callable(built), lambda: f"got {built!r}")
    rng = np.random.default_rng(seed)
    r1 = rng.normal(size=(n_pairs, length))
    r2 = rng.normal(size=(n_pairs, length))
    r2[: n_pairs // 2] -= 3.0  # the first half: the first fragment is clearly better
    prefs = np.asarray(built(r1, r2, np.random.default_rng(seed)))
    answered = ~np.isnan(prefs) if prefs.dtype.kind == "f" else np.ones(prefs.shape, bool)
    _check(
        "it gives one float label in [0, 1] (or nan) per pair",
        prefs.shape == (n_pairs,)
        and prefs.dtype.kind == "f"
        and bool(np.all((prefs[answered] >= 0) & (prefs[answered] <= 1))),
        lambda: f"got {prefs!r} for {n_pairs} pairs",
    )
    swapped = np.asarray(built(r2, r1, np.random.default_rng(seed)))
    _check(
        "swapping the fragments mirrors the labels",
        swapped.shape == prefs.shape
        and np.array_equal(np.isnan(swapped), ~answered)
        and np.allclose(swapped[answered], 1.0 - prefs[answered], atol=1e-6),
        lambda: f"{prefs} swapped gave {swapped}",
    )
    again = np.asarray(built(r1, r2, np.random.default_rng(seed)))
    _check(
        "the same generator state gives the same labels",
        np.array_equal(prefs, again, equal_nan=True),
        lambda: f"{prefs} then {again}",
    )
    clear = prefs[: n_pairs // 2][answered[: n_pairs // 2]]
    _check(
        "it answers and prefers the clearly better fragment of most pairs",
        len(clear) > 0 and float(np.mean(clear > 0.5)) > 0.5,
        lambda: f"labels on pairs whose first fragment is better by 3 per step: {clear}",
    )
    return report
