"""A reward net as an ONNX graph of raw transitions: :func:`export_onnx`.

The graph does what ``net.predict_processed(obs, acts, next_obs, dones,
update_stats=False)`` does, in one piece: the preprocessing of the raw arrays
(one-hot of ``Discrete`` and ``MultiDiscrete``, ``MultiBinary`` and ``Box`` as
floats, uint8 images scaled to [0, 1], each ``Dict`` key its own input), the
nets' ``forward`` (shaping, CNN layouts and all), and the post-processing of
the wrappers with their statistics frozen: ``NormalizedRewardNet``'s
standardisation, ``RewardEnsemble``'s mean, ``AddSTDRewardWrapper``'s
``mean + alpha * std``. It is built as a torch module, captured with
``torch.export`` (batch dimension dynamic) and converted by torch's ONNX
exporter, which needs the ``export`` extra (onnx, onnxscript).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rewardnets.errors import RewardNetsError
from rewardnets.files.format import atomic_write
from rewardnets.files.reward_functions import RewardTypeError
from rewardnets.files.serialize import wrapper_stack
from rewardnets.framework.networks import BaseNorm
from rewardnets.framework.preprocessing import check_space, is_image_space
from rewardnets.framework.reward_net import (
    PredictProcessedWrapper,
    RewardNet,
    RewardNetWrapper,
)
from rewardnets.plugin_registry.registry import registry

__all__ = ["REWARD_TYPES", "ExportError", "describe_inputs", "export_onnx"]

#: The reward types :func:`export_onnx` takes, as ``load_reward`` names them.
REWARD_TYPES = (
    "RewardNet_normalized",
    "RewardNet_unnormalized",
    "RewardNet_shaped",
    "RewardNet_unshaped",
    "RewardNet_std_added",
)
_SAMPLE_BATCH = 3  # not 0 or 1, which torch.export would take for constants


class ExportError(RewardNetsError, ValueError):
    """A reward net, or a part of it, that cannot be exported; the message names the part."""


def _plugin_class(name: str) -> type | None:
    entry = registry.find(name)
    return entry.obj if entry is not None and isinstance(entry.obj, type) else None


def _label(path: str, net: Any) -> str:
    return f"{path} ({type(net).__name__})"


def _overrides(net: Any, name: str, owner: Any) -> bool:
    return getattr(type(net), name) is not getattr(owner, name)


# ---------------------------------------------------------------- preprocessing
def onnx_inputs(space: spaces.Space[Any], name: str) -> list[tuple[str, tuple[int, ...], str]]:
    """The graph inputs of a space: ``(name, shape without the batch, numpy dtype)`` each.

    A ``Dict`` space gives one input per key, named ``name.key``.
    """
    if isinstance(space, spaces.Dict):
        return [
            item for key, sub in space.spaces.items() for item in onnx_inputs(sub, f"{name}.{key}")
        ]
    if isinstance(space, spaces.Discrete):
        return [(name, (), "int64")]
    if isinstance(space, spaces.MultiDiscrete):
        return [(name, tuple(space.shape), "int64")]
    assert isinstance(space, (spaces.Box, spaces.MultiBinary))
    return [(name, tuple(space.shape), str(np.dtype(space.dtype)))]


class _Preprocess(nn.Module):
    """Raw tensors of one (non-Dict) space to the float tensors a net's ``forward`` takes."""

    starts: torch.Tensor
    positions: torch.Tensor

    def __init__(self, space: spaces.Space[Any], normalize_images: bool, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype
        self.kind = type(space).__name__
        self.scale = bool(normalize_images and is_image_space(space))
        sizes: list[int] = []
        starts: list[int] = []
        if isinstance(space, spaces.Discrete):
            sizes, starts = [int(space.n)], [int(space.start)]
        elif isinstance(space, spaces.MultiDiscrete):
            sizes = [int(n) for n in np.asarray(space.nvec).flatten()]
            starts = [int(s) for s in np.asarray(space.start).flatten()]
        self.sizes = sizes
        self.register_buffer("starts", torch.tensor(starts, dtype=torch.int64), persistent=False)
        self.register_buffer(
            "positions", torch.arange(max(sizes, default=0), dtype=torch.int64), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "Discrete":
            index = x.reshape(-1).to(torch.int64) - self.starts[0]
            return (index.unsqueeze(1) == self.positions[: self.sizes[0]]).to(self.dtype)
        if self.kind == "MultiDiscrete":
            flat = x.reshape(x.shape[0], -1).to(torch.int64) - self.starts
            hots = [
                (flat[:, i : i + 1] == self.positions[:n]).to(self.dtype)
                for i, n in enumerate(self.sizes)
            ]
            return torch.cat(hots, dim=1)
        if self.scale:
            return (x.to(torch.float32) / 255.0).to(self.dtype)
        return x.to(self.dtype)


def _preprocessors(space: spaces.Space[Any], net: RewardNet) -> nn.Module:
    if isinstance(space, spaces.Dict):
        return nn.ModuleDict({key: _preprocessors(sub, net) for key, sub in space.spaces.items()})
    return _Preprocess(space, net.normalize_images, net.dtype)


def _tree(module: nn.Module, flat: Iterator[torch.Tensor]) -> Any:
    """Rebuild a (Dict) space's preprocessed value from the flat graph inputs."""
    if isinstance(module, nn.ModuleDict):
        return {key: _tree(sub, flat) for key, sub in module.items()}
    return module(next(flat))


# -------------------------------------------------------------- the reward's parts
class _Forward(nn.Module):
    """A net's ``forward`` on preprocessed inputs: its ``predict``."""

    def __init__(self, net: RewardNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, *inputs: Any) -> torch.Tensor:
        return self.net(*inputs)


class _Normalized(nn.Module):
    """``NormalizedRewardNet``'s standardisation, statistics frozen."""

    def __init__(self, inner: nn.Module, layer: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.layer = layer

    def forward(self, *inputs: Any) -> torch.Tensor:
        reward = self.inner(*inputs)
        if isinstance(self.layer, BaseNorm):
            return self.layer.normalize(reward)
        return self.layer(reward.reshape(-1, 1)).reshape(-1)


class _Members(nn.Module):
    """An ensemble's mean, plus ``alpha`` times the (ddof=1) std when ``alpha`` is set."""

    def __init__(self, members: list[nn.Module], alpha: float | None) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.alpha = alpha

    def forward(self, *inputs: Any) -> torch.Tensor:
        rewards = torch.stack([m(*inputs) for m in self.members], dim=-1)
        mean = rewards.mean(dim=-1)
        if self.alpha is None:
            return mean
        return mean + self.alpha * torch.sqrt(rewards.var(dim=-1, correction=1))


class _Builder:
    """Turns a wrapper stack into the modules above, recording its leaves."""

    def __init__(self, top: RewardNet) -> None:
        self.top = top
        self.leaves: list[tuple[str, _Forward]] = []
        self.normalized = _plugin_class("NormalizedRewardNet")
        self.ensemble = _plugin_class("RewardEnsemble")
        self.add_std = _plugin_class("AddSTDRewardWrapper")

    def _is(self, net: Any, cls: type | None) -> bool:
        return cls is not None and isinstance(net, cls)

    def processed(self, net: Any, path: str, alpha: float | None = None) -> nn.Module:
        """The module of ``net.predict_processed``."""
        if self._is(net, self.normalized) and not _overrides(
            net,
            "predict_processed",
            self.normalized,
        ):
            inner = self.processed(net.base, f"{path}.base")
            return _Normalized(inner, net.normalize_output_layer)
        if self._is(net, self.add_std) and not _overrides(
            net,
            "predict_processed",
            self.add_std,
        ):
            base = net.base
            if not self._is(base, self.ensemble):
                raise ExportError(
                    f"Cannot export {_label(path + '.base', base)}: AddSTDRewardWrapper's "
                    "variance is exported for a RewardEnsemble only."
                )
            value = net.default_alpha if alpha is None else alpha
            return self._ensemble(base, f"{path}.base", float(value))
        if self._is(net, self.ensemble) and not _overrides(
            net,
            "predict_processed",
            self.ensemble,
        ):
            return self._ensemble(net, path, None)
        if not _overrides(net, "predict_processed", RewardNet):
            return self.predicted(net, path)
        raise ExportError(
            f"Cannot export {_label(path, net)}: it computes its processed reward in Python "
            "(its own predict_processed), which the exporter does not know. The exporter "
            "knows NormalizedRewardNet, RewardEnsemble and AddSTDRewardWrapper; wrappers "
            "that change forward are exported through their forward."
        )

    def _ensemble(self, net: Any, path: str, alpha: float | None) -> nn.Module:
        if _overrides(net, "predict_processed_all", self.ensemble):
            raise ExportError(f"Cannot export {_label(path, net)}: its own predict_processed_all.")
        members = [
            self.processed(member, f"{path}.members[{i}]") for i, member in enumerate(net.members)
        ]
        return _Members(members, alpha)

    def predicted(self, net: Any, path: str) -> nn.Module:
        """The module of ``net.predict``."""
        if self._is(net, self.ensemble) and not _overrides(
            net,
            "predict",
            self.ensemble,
        ):
            return self._ensemble(net, path, None)
        if isinstance(net, PredictProcessedWrapper) and not _overrides(
            net, "predict", PredictProcessedWrapper
        ):
            return self.predicted(net.base, f"{path}.base")
        if _overrides(net, "predict", RewardNet) or _overrides(net, "predict_th", RewardNet):
            raise ExportError(
                f"Cannot export {_label(path, net)}: it overrides predict or predict_th, so "
                "its reward is not its forward."
            )
        self._check_preprocessing(net, path)
        leaf = _Forward(net)
        self.leaves.append((path, leaf))
        return leaf

    def _check_preprocessing(self, net: RewardNet, path: str) -> None:
        owner: Any = net
        while isinstance(owner, RewardNetWrapper) and not _overrides(
            owner, "preprocess", RewardNetWrapper
        ):
            owner = owner.base
        if _overrides(owner, "preprocess", RewardNet):
            raise ExportError(
                f"Cannot export {_label(path, net)}: {type(owner).__name__} overrides "
                "preprocess; the exporter reproduces RewardNet's own preprocessing only."
            )
        if owner.normalize_images != self.top.normalize_images:
            raise ExportError(
                f"Cannot export {_label(path, net)}: its normalize_images differs from the "
                "outermost net's."
            )


def _find(net: RewardNet, cls: type | None) -> RewardNet | None:
    node: RewardNet = net
    while cls is None or not isinstance(node, cls):
        if cls is None or not isinstance(node, RewardNetWrapper):
            return None
        node = node.base
    return node


def _select(net: RewardNet, reward_type: str | None) -> tuple[RewardNet, str, bool]:
    """The part of ``net`` a reward type gives: ``(part, its path, processed?)``."""
    stack = " > ".join(wrapper_stack(net))

    def needs(what: str) -> RewardTypeError:
        return RewardTypeError(f"Reward type {reward_type!r} needs {what}; the net is {stack}.")

    if reward_type is None:
        return net, "net", True
    if reward_type == "RewardNet_normalized":
        normalized = _plugin_class("NormalizedRewardNet")
        if normalized is None or not isinstance(net, normalized):
            raise needs("a NormalizedRewardNet as the outermost wrapper")
        return net, "net", True
    if reward_type == "RewardNet_unnormalized":
        normalized, path = _plugin_class("NormalizedRewardNet"), "net"
        while normalized is not None and isinstance(net, normalized):
            net, path = net.base, f"{path}.base"  # type: ignore[assignment]
        return net, path, False
    if reward_type in ("RewardNet_shaped", "RewardNet_unshaped"):
        shaped = _find(net, _plugin_class("ShapedRewardNet"))
        if reward_type == "RewardNet_shaped":
            if shaped is None:
                raise needs("a ShapedRewardNet in the wrapper stack")
            return shaped, "the ShapedRewardNet", False
        if shaped is None:
            return net, "net", False
        base: Any = shaped.base
        return base, "the ShapedRewardNet's base", False
    if reward_type == "RewardNet_std_added":
        found = _find(net, _plugin_class("AddSTDRewardWrapper"))
        if found is None:
            raise needs("an AddSTDRewardWrapper (over a RewardEnsemble)")
        return found, "the AddSTDRewardWrapper", True
    raise ExportError(
        f"Reward type {reward_type!r} cannot be exported; expected None (the net's "
        f"predict_processed) or one of {', '.join(REWARD_TYPES)}."
    )


# ----------------------------------------------------------------------- the graph
class _RewardGraph(nn.Module):
    """Raw, flat inputs -> preprocessing -> the reward's module."""

    def __init__(self, net: RewardNet, reward: nn.Module) -> None:
        super().__init__()
        self.obs = _preprocessors(net.observation_space, net)
        self.acts = _preprocessors(net.action_space, net)
        self.n_obs = len(onnx_inputs(net.observation_space, "obs"))
        self.n_acts = len(onnx_inputs(net.action_space, "acts"))
        self.dtype = net.dtype
        self.reward = reward

    def forward(self, *flat: torch.Tensor) -> torch.Tensor:
        n, m = self.n_obs, self.n_acts
        state = _tree(self.obs, iter(flat[:n]))
        action = _tree(self.acts, iter(flat[n : n + m]))
        next_state = _tree(self.obs, iter(flat[n + m : 2 * n + m]))
        done = flat[-1].reshape(-1).to(self.dtype)
        return self.reward(state, action, next_state, done)


def _graph_inputs(net: RewardNet) -> list[tuple[str, tuple[int, ...], str]]:
    return [
        *onnx_inputs(net.observation_space, "obs"),
        *onnx_inputs(net.action_space, "acts"),
        *onnx_inputs(net.observation_space, "next_obs"),
        ("dones", (), "bool"),
    ]


def _samples(net: RewardNet) -> tuple[torch.Tensor, ...]:
    """A small batch of valid raw inputs, without touching the spaces' random state."""

    def values(space: spaces.Space[Any]) -> list[np.ndarray]:
        if isinstance(space, spaces.Dict):
            return [v for sub in space.spaces.values() for v in values(sub)]
        if isinstance(space, spaces.Discrete):
            return [np.full(_SAMPLE_BATCH, int(space.start), dtype=np.int64)]
        if isinstance(space, spaces.MultiDiscrete):
            start = np.asarray(space.start, dtype=np.int64)
            return [np.broadcast_to(start, (_SAMPLE_BATCH, *space.shape)).copy()]
        assert isinstance(space, (spaces.Box, spaces.MultiBinary))
        zero = np.zeros((_SAMPLE_BATCH, *space.shape), dtype=space.dtype)
        if isinstance(space, spaces.Box):
            zero = np.clip(zero, space.low, space.high).astype(space.dtype)
        return [zero]

    arrays = [
        *values(net.observation_space),
        *values(net.action_space),
        *values(net.observation_space),
        np.zeros(_SAMPLE_BATCH, dtype=bool),
    ]
    return tuple(torch.from_numpy(a) for a in arrays)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's chatter (warnings, log lines about absent torchvision)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _capture(module: nn.Module, samples: tuple[torch.Tensor, ...]) -> Any:
    batch = torch.export.Dim("batch")
    with _quiet():
        return torch.export.export(
            module, samples, dynamic_shapes=(tuple({0: batch} for _ in samples),), strict=False
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def export_onnx(
    net: RewardNet,
    path: str | os.PathLike[str],
    *,
    reward_type: str | None = None,
    alpha: float | None = None,
    opset: int = 18,
) -> Path:
    """Export ``net``'s reward as an ONNX graph of the raw transition arrays.

    The graph's inputs are ``obs``, ``acts``, ``next_obs`` (a ``Dict`` space
    gives one input per key: ``obs.<key>``) and ``dones``, in the dtypes of
    the spaces (``Discrete`` and ``MultiDiscrete`` as int64, ``dones`` as
    bool), each with a leading batch dimension ``batch`` of any size. Its
    output ``reward`` has shape ``(batch,)`` in the net's float dtype, and is
    what the reward type gives through ``load_reward`` (with frozen
    statistics). Every input is in the graph, used or not.

    Args:
        net: The reward net (any stack of the built-in nets and wrappers, and
            your own nets whose ``forward`` ``torch.export`` can capture).
        path: Where to write the ``.onnx`` file (atomically).
        reward_type: ``None`` for ``net.predict_processed(...,
            update_stats=False)``, or one of ``load_reward``'s types:
            ``RewardNet_normalized``, ``RewardNet_unnormalized``,
            ``RewardNet_shaped``, ``RewardNet_unshaped``, ``RewardNet_std_added``.
        alpha: For ``AddSTDRewardWrapper``: the weight of the std; default:
            its ``default_alpha``.
        opset: The ONNX opset of the graph.

    Returns:
        The path written.

    Raises:
        RewardTypeError: The net lacks what ``reward_type`` needs.
        ExportError: A part of the net cannot be exported (the message names
            it), or onnx / onnxscript are not installed.
    """
    if not isinstance(net, RewardNet):
        raise ExportError(f"Expected a RewardNet to export, got {type(net).__name__}.")
    check_space(net.observation_space, "observation_space")
    check_space(net.action_space, "action_space")
    try:
        import onnx  # noqa: F401  (the exporter needs both)
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ExportError(
            f"Exporting to ONNX needs onnx and onnxscript ({exc}); install them with "
            "`pip install 'rewardnets[export]'`."
        ) from exc
    part, where, processed = _select(net, reward_type)
    builder = _Builder(net)
    with torch.no_grad():
        if processed:
            reward = builder.processed(part, where, alpha)
        else:
            reward = builder.predicted(part, where)
    graph = _RewardGraph(net, reward).eval()
    samples = _samples(net)
    training = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        program = _export(graph, builder, samples, net, opset)
    finally:
        for module, mode in training:
            module.training = mode

    def write(out: IO[bytes]) -> None:
        out.write(program)

    return atomic_write(path, write)


def _export(
    graph: _RewardGraph,
    builder: _Builder,
    samples: tuple[torch.Tensor, ...],
    net: RewardNet,
    opset: int,
) -> bytes:
    """The ONNX model of ``graph``, serialised; a failure names the part that failed."""
    try:
        captured = _capture(graph, samples)
    except Exception as exc:
        for leaf_path, leaf in builder.leaves:
            try:
                _capture(_RewardGraph(net, leaf).eval(), samples)
            except Exception as leaf_exc:
                raise ExportError(
                    f"Cannot export {_label(leaf_path, leaf.net)}: torch.export cannot "
                    f"capture its forward ({_first_line(leaf_exc)}). Data-dependent Python "
                    "control flow (an `if` on a tensor's value) does not trace; use "
                    "torch.where or torch.cond."
                ) from leaf_exc
        raise ExportError(
            f"Cannot export {' > '.join(wrapper_stack(net))}: torch.export cannot capture "
            f"its reward ({_first_line(exc)})."
        ) from exc
    names = [name for name, _, _ in _graph_inputs(net)]
    try:
        with _quiet():
            program = torch.onnx.export(
                captured,
                dynamo=True,
                input_names=names,
                output_names=["reward"],
                opset_version=opset,
                verbose=False,
            )
    except Exception as exc:
        raise ExportError(
            f"Cannot convert {' > '.join(wrapper_stack(net))} to ONNX: {_first_line(exc)}"
        ) from exc
    assert program is not None
    proto = program.model_proto
    for value in [*proto.graph.input, *proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "batch"
    return bytes(proto.SerializeToString())


def describe_inputs(net: RewardNet) -> Mapping[str, tuple[tuple[int | str, ...], str]]:
    """The exported graph's inputs: name to ``(shape, dtype)``, batch first."""
    return {name: (("batch", *shape), dtype) for name, shape, dtype in _graph_inputs(net)}
