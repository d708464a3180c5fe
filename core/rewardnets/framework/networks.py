"""Network building blocks: MLP and CNN builders and running normalisation layers."""

from __future__ import annotations

import abc
import collections
import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "BaseNorm",
    "EMANorm",
    "RunningNorm",
    "SqueezeLayer",
    "build_cnn",
    "build_mlp",
    "cnn_transpose",
    "evaluating",
    "rename_state_dict_keys",
    "training",
    "training_mode",
]


@contextlib.contextmanager
def training_mode(module: nn.Module, mode: bool = False) -> Iterator[nn.Module]:
    """Put ``module`` in training (``mode=True``) or eval mode for the block, then restore it.

    Args:
        module: The module to switch.
        mode: ``True`` for training mode, ``False`` for evaluation mode.

    Yields:
        ``module``.
    """
    old_mode = module.training
    module.train(mode)
    try:
        yield module
    finally:
        module.train(old_mode)


def training(module: nn.Module) -> contextlib.AbstractContextManager[nn.Module]:
    """``training_mode(module, True)``: training mode for the block."""
    return training_mode(module, True)


def evaluating(module: nn.Module) -> contextlib.AbstractContextManager[nn.Module]:
    """``training_mode(module, False)``: eval mode for the block."""
    return training_mode(module, False)


def rename_state_dict_keys(
    state_dict: dict[str, Any], prefix: str, renames: dict[str, str]
) -> None:
    """Rename submodule keys of a state dict in place, for loading older layouts.

    Call it from a module's ``_load_from_state_dict`` before the default one, so
    that state dicts written under other attribute names (``imitation`` keeps
    a wrapper's base as ``_base``, rewardnets as ``base``) load with
    ``strict=True``. A key is renamed only when the new name is not taken.

    Args:
        state_dict: The state dict being loaded (``load_state_dict`` passes a copy).
        prefix: The module's key prefix in it, as ``_load_from_state_dict`` gets it.
        renames: Old submodule name to new submodule name.
    """
    for old, new in renames.items():
        old_prefix, new_prefix = f"{prefix}{old}.", f"{prefix}{new}."
        for key in [k for k in state_dict if k.startswith(old_prefix)]:
            target = new_prefix + key[len(old_prefix) :]
            if target not in state_dict:
                state_dict[target] = state_dict.pop(key)


def cnn_transpose(tens: torch.Tensor) -> torch.Tensor:
    """Transpose a batch of images from ``(batch, h, w, c)`` to ``(batch, c, h, w)``.

    Args:
        tens: A 4-dimensional tensor.

    Returns:
        The permuted tensor (a view).

    Raises:
        ValueError: ``tens`` is not 4-dimensional.
    """
    if tens.dim() != 4:
        raise ValueError(
            f"cnn_transpose expects a (batch, height, width, channels) tensor with 4 "
            f"dimensions, got shape {tuple(tens.shape)} ({tens.dim()} dimensions)."
        )
    return tens.permute(0, 3, 1, 2)


class SqueezeLayer(nn.Module):
    """Turn a ``(batch, 1)`` output into ``(batch,)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Squeeze the last dimension, which must have size 1."""
        if x.dim() != 2 or x.shape[1] != 1:
            raise ValueError(f"Expected shape (batch, 1), got {tuple(x.shape)}.")
        return x.squeeze(1)


class BaseNorm(nn.Module, abc.ABC):
    """Standardise features with running statistics.

    Buffers ``running_mean``, ``running_var`` (both ``(num_features,)``) and
    ``count`` hold the statistics. In train mode, ``forward`` first folds the
    batch into the statistics, then standardises; in eval mode it only
    standardises.

    Args:
        num_features: The number of features (last dimension of the input).
        eps: Added to the variance before the square root; ``>= 0`` (0 gives
            exact standardisation, as in ``imitation``).
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor
    count: torch.Tensor

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"Expected num_features to be a positive int, got {num_features!r}.")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
            raise ValueError(f"Expected eps to be a number >= 0, got {eps!r}.")
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("running_mean", torch.empty(num_features))
        self.register_buffer("running_var", torch.empty(num_features))
        self.register_buffer("count", torch.empty((), dtype=torch.int64))
        self.reset_running_stats()

    def reset_running_stats(self) -> None:
        """Reset the statistics to mean 0, variance 1 and count 0."""
        self.running_mean.zero_()
        self.running_var.fill_(1)
        self.count.zero_()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise ``x`` with the current statistics, without updating them."""
        return (x - self.running_mean) / torch.sqrt(self.running_var + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise ``x``; in train mode, fold it into the statistics first."""
        if self.training:
            with torch.no_grad():
                self.update_stats(x)
        return self.normalize(x)

    def _as_rows(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.dim() == 1 and self.num_features == 1:
            batch = batch.reshape(-1, 1)
        if batch.dim() != 2 or batch.shape[1] != self.num_features:
            raise ValueError(
                f"Expected a batch of shape (batch, {self.num_features}), got {tuple(batch.shape)}."
            )
        return batch

    @abc.abstractmethod
    def update_stats(self, batch: torch.Tensor) -> None:
        """Fold ``batch`` of shape ``(batch, num_features)`` into the statistics."""

    def extra_repr(self) -> str:
        """Describe the layer's settings in its repr."""
        return f"{self.num_features}, eps={self.eps}"


class RunningNorm(BaseNorm):
    """Normalise with the exact mean and variance of everything seen so far.

    Batches are combined with the parallel algorithm of Chan et al. (1979).
    """

    def update_stats(self, batch: torch.Tensor) -> None:
        """Fold ``batch`` into the running mean and (population) variance."""
        batch = self._as_rows(batch).to(self.running_mean.dtype)
        n_b = batch.shape[0]
        if n_b == 0:
            return
        var_b, mean_b = torch.var_mean(batch, dim=0, unbiased=False)
        # With w = n_b / (n_a + n_b), Chan et al.'s update is two lerps and a
        # correction: few kernels, and no read of count on the host (no sync).
        weight = n_b / (self.count.to(mean_b.dtype) + n_b)
        delta = mean_b - self.running_mean
        self.running_mean.lerp_(mean_b, weight)
        self.running_var.lerp_(var_b, weight).addcmul_(delta.square(), weight * (1 - weight))
        self.count.add_(n_b)


class EMANorm(BaseNorm):
    """Normalise with exponentially weighted moving statistics.

    The weights are bias-corrected, so early batches are not pulled towards
    the initial mean 0 and variance 1.

    Args:
        num_features: The number of features.
        decay: How much of the previous statistics each batch keeps, in (0, 1).
        eps: Added to the variance before the square root.
    """

    num_batches: torch.Tensor
    inv_learning_rate: torch.Tensor

    def __init__(self, num_features: int, decay: float = 0.99, eps: float = 1e-5) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"Expected decay in (0, 1), got {decay!r}.")
        self.decay = decay
        super().__init__(num_features, eps=eps)
        self.register_buffer("num_batches", torch.zeros((), dtype=torch.int64))
        self.register_buffer("inv_learning_rate", torch.zeros(()))

    def reset_running_stats(self) -> None:
        """Reset the statistics and the bias correction."""
        super().reset_running_stats()
        if hasattr(self, "num_batches"):
            self.num_batches.zero_()
            self.inv_learning_rate.zero_()

    def update_stats(self, batch: torch.Tensor) -> None:
        """Move the statistics towards those of ``batch``."""
        batch = self._as_rows(batch).to(self.running_mean.dtype)
        if batch.shape[0] == 0:
            return
        # The learning rate is 1 / sum_{k<=t} decay^k: an exact average of the
        # weighted history instead of a mean biased towards the initial value.
        # decay^t is computed on the buffers' device: no host read, no sync.
        steps = self.num_batches.to(self.inv_learning_rate.dtype)
        self.inv_learning_rate.add_(torch.pow(self.decay, steps))
        lr = 1.0 / self.inv_learning_rate
        var_b, mean_b = torch.var_mean(batch, dim=0, unbiased=False)
        delta = mean_b - self.running_mean
        self.running_mean.add_(lr * delta)
        self.running_var.add_(lr * (var_b + (1 - lr) * delta.square() - self.running_var))
        self.count.add_(batch.shape[0])
        self.num_batches.add_(1)

    def extra_repr(self) -> str:
        """Describe the layer's settings in its repr."""
        return f"{super().extra_repr()}, decay={self.decay}"


Activation = Callable[[], nn.Module]
NormFactory = Callable[[int], nn.Module]


def _prefix(name: str | None) -> str:
    return f"{name}_" if name else ""


def _input_norm_layer(factory: NormFactory, in_size: int) -> nn.Module:
    """``factory(in_size)``, with an error that names the factory when it does not fit."""
    name = getattr(factory, "__qualname__", None) or type(factory).__name__
    expected = (
        "a class or factory called with one argument, the input size, that returns an "
        "nn.Module (such as rewardnets.RunningNorm)"
    )
    if not callable(factory):
        raise ValueError(f"Expected normalize_input_layer to be {expected}; got {factory!r}.")
    try:
        layer = factory(in_size)
    except TypeError as exc:
        raise ValueError(
            f"normalize_input_layer={name} cannot be called as {name}({in_size}): {exc}. "
            f"Expected {expected}."
        ) from exc
    if not isinstance(layer, nn.Module):
        raise ValueError(
            f"normalize_input_layer={name} returned a {type(layer).__name__}; expected {expected}."
        )
    return layer


def _sizes(values: Any, what: str) -> list[int]:
    """Layer sizes as a list of ints, or a clear error (a string is not a list of sizes)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(
            f"Expected {what} to be a sequence of layer sizes such as (32, 32), got "
            f"{type(values).__name__}: {values!r}."
        )
    sizes = list(values)
    for i, size in enumerate(sizes):
        if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)):
            raise TypeError(
                f"Expected {what}[{i}] to be an integer layer size, got "
                f"{type(size).__name__}: {size!r}."
            )
    return [int(size) for size in sizes]


def build_mlp(
    in_size: int,
    hid_sizes: Iterable[int],
    out_size: int = 1,
    name: str | None = None,
    activation: Activation | None = nn.ReLU,
    dropout_prob: float = 0.0,
    squeeze_output: bool = False,
    flatten_input: bool = False,
    normalize_input_layer: NormFactory | None = None,
) -> nn.Sequential:
    """Build a multi-layer perceptron.

    Layers are named ``{name}_dense0``, ``{name}_act0``, ... ``{name}_dense_final``
    (without the prefix when ``name`` is None).

    Args:
        in_size: Size of the input features.
        hid_sizes: Sizes of the hidden layers; empty for a linear model.
        out_size: Size of the output.
        name: Prefix of the layer names.
        activation: Activation class inserted after each hidden layer, or None.
        dropout_prob: Dropout after each hidden layer when positive.
        squeeze_output: Squeeze ``(batch, 1)`` to ``(batch,)``; needs ``out_size == 1``.
        flatten_input: Flatten all but the batch dimension first.
        normalize_input_layer: A factory ``(in_size) -> nn.Module`` applied to
            the input, such as :class:`RunningNorm`.

    Returns:
        The network as an ``nn.Sequential``.

    Raises:
        ValueError: ``squeeze_output`` with ``out_size != 1``, a bad size, or a
            ``normalize_input_layer`` that cannot be called with ``in_size``.
    """
    hid_sizes = _sizes(hid_sizes, "hid_sizes")
    for what, size in [("in_size", in_size), ("out_size", out_size)] + [
        (f"hid_sizes[{i}]", h) for i, h in enumerate(hid_sizes)
    ]:
        if size < 1:
            raise ValueError(f"Expected {what} to be positive, got {size}.")
    if not 0.0 <= dropout_prob < 1.0:
        raise ValueError(f"Expected dropout_prob in [0, 1), got {dropout_prob}.")
    if squeeze_output and out_size != 1:
        raise ValueError(f"squeeze_output needs out_size == 1, got out_size={out_size}.")
    prefix = _prefix(name)
    layers: collections.OrderedDict[str, nn.Module] = collections.OrderedDict()
    if flatten_input:
        layers[f"{prefix}flatten"] = nn.Flatten()
    if normalize_input_layer is not None:
        layers[f"{prefix}normalize_input"] = _input_norm_layer(normalize_input_layer, in_size)
    prev = in_size
    for i, size in enumerate(hid_sizes):
        layers[f"{prefix}dense{i}"] = nn.Linear(prev, size)
        if activation is not None:
            layers[f"{prefix}act{i}"] = activation()
        if dropout_prob > 0.0:
            layers[f"{prefix}dropout{i}"] = nn.Dropout(dropout_prob)
        prev = size
    layers[f"{prefix}dense_final"] = nn.Linear(prev, out_size)
    if squeeze_output:
        layers[f"{prefix}squeeze"] = SqueezeLayer()
    return nn.Sequential(layers)


def build_cnn(
    in_channels: int,
    hid_channels: Iterable[int],
    out_size: int = 1,
    name: str | None = None,
    activation: Activation | None = nn.ReLU,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int | str = "same",
    dropout_prob: float = 0.0,
    squeeze_output: bool = False,
) -> nn.Sequential:
    """Build a convolutional network for images of any size.

    Convolutions are followed by global average pooling and a linear layer, so
    the output size does not depend on the image size.

    Args:
        in_channels: Channels of the input image (CHW layout).
        hid_channels: Channels of each convolution.
        out_size: Size of the output.
        name: Prefix of the layer names.
        activation: Activation class after each convolution, or None.
        kernel_size: Kernel size of each convolution.
        stride: Stride of each convolution.
        padding: Padding of each convolution; ``"same"`` keeps the size (with
            ``stride > 1`` it pads ``kernel_size // 2``).
        dropout_prob: Dropout after each convolution when positive.
        squeeze_output: Squeeze ``(batch, 1)`` to ``(batch,)``; needs ``out_size == 1``.

    Returns:
        The network as an ``nn.Sequential``.

    Raises:
        ValueError: ``squeeze_output`` with ``out_size != 1``, or a bad size.
    """
    hid_channels = _sizes(hid_channels, "hid_channels")
    if in_channels < 1 or out_size < 1 or any(c < 1 for c in hid_channels):
        raise ValueError(
            f"Expected positive sizes, got in_channels={in_channels}, "
            f"hid_channels={hid_channels}, out_size={out_size}."
        )
    if squeeze_output and out_size != 1:
        raise ValueError(f"squeeze_output needs out_size == 1, got out_size={out_size}.")
    if not 0.0 <= dropout_prob < 1.0:
        raise ValueError(f"Expected dropout_prob in [0, 1), got {dropout_prob}.")
    if padding == "same" and stride != 1:
        padding = kernel_size // 2
    prefix = _prefix(name)
    layers: collections.OrderedDict[str, nn.Module] = collections.OrderedDict()
    prev = in_channels
    for i, channels in enumerate(hid_channels):
        layers[f"{prefix}conv{i}"] = nn.Conv2d(
            prev, channels, kernel_size, stride=stride, padding=padding
        )
        if activation is not None:
            layers[f"{prefix}act{i}"] = activation()
        if dropout_prob > 0.0:
            layers[f"{prefix}dropout{i}"] = nn.Dropout(dropout_prob)
        prev = channels
    layers[f"{prefix}avg_pool"] = nn.AdaptiveAvgPool2d(1)
    layers[f"{prefix}flatten"] = nn.Flatten()
    layers[f"{prefix}dense_final"] = nn.Linear(prev, out_size)
    if squeeze_output:
        layers[f"{prefix}squeeze"] = SqueezeLayer()
    return nn.Sequential(layers)
