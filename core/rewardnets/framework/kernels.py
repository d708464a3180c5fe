"""Numpy kernels of reward calls, and the builder that plans them.

A *kernel* is the eval-mode, no-grad arithmetic of a net (or of one of its
methods) written with numpy on zero-copy views of the live parameter tensors
(``param.detach().numpy()`` shares memory, so an optimizer step is seen by the
next call). :class:`KernelBuilder` asks each net of a stack for its kernel
(``RewardNet.reward_kernel``, ``processed_kernel``, ``moments_kernel``; a
plain ``nn.Module`` may offer ``array_kernel``), and records, while it goes,
everything the kernels depend on: the modules visited, their children,
parameters and buffers (identity and memory address), the attributes a kernel
reads, and the absence of hooks and of overrides on the instances. That record
is the plan's guard (see :mod:`rewardnets.framework.inference`), checked on
every call; when it fails the plan is built again.

Kinds of kernel (``Batch`` is ``(state, action, next_state, done)``: flat
2-d arrays of the net's dtype, ``done`` 1-d, or ``None`` where not given):

- reward kernel ``fn(batch) -> (batch_size,)``: the twin of ``forward``;
- processed kernel ``fn(batch, kwargs) -> (batch_size,)``: of ``predict_processed``;
- moments kernel ``fn(batch, kwargs) -> (mean, var)``: of ``predict_reward_moments``;
- array kernel ``fn(x) -> y`` on 2-d arrays: of a module's ``forward``.

A net (or module) that cannot be compiled returns ``None`` from its kernel
method, and the whole call takes the torch path.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rewardnets.framework.networks import BaseNorm, EMANorm, RunningNorm, SqueezeLayer
from rewardnets.framework.preprocessing import is_image_space

__all__ = [
    "ArrayKernel",
    "Batch",
    "KernelBuilder",
    "MomentsKernel",
    "NormKernel",
    "NotCompilable",
    "ProcessedKernel",
    "RewardKernel",
    "is_covered",
    "prepare_inputs",
]

#: Preprocessed inputs of a kernel: flat ``(batch, features)`` arrays (``done``
#: is ``(batch,)``) in the net's dtype, ``None`` where not given.
Batch = tuple[Any, Any, Any, Any]
RewardKernel = Callable[[Batch], np.ndarray]
ProcessedKernel = Callable[[Batch, dict[str, Any]], np.ndarray]
MomentsKernel = Callable[[Batch, dict[str, Any]], tuple[np.ndarray, np.ndarray]]
ArrayKernel = Callable[[np.ndarray], np.ndarray]

_NUMPY_OF: dict[torch.dtype, np.dtype[Any]] = {
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
}
#: The methods each kind of kernel stands in for (besides ``__call__``).
STANDS_FOR: dict[str, tuple[str, ...]] = {
    "reward": ("forward", "preprocess", "predict_th", "predict", "__call__"),
    "processed": ("predict_processed",),
    "moments": ("predict_reward_moments",),
    "array": ("forward", "__call__"),
    "processed_th": ("predict_processed", "predict", "predict_th"),
}
_KERNEL_METHOD = {
    "reward": "reward_kernel",
    "processed": "processed_kernel",
    "moments": "moments_kernel",
    "array": "array_kernel",
}
_NUMERIC = frozenset("biuf")
#: Up to this many rewards, batch moments use Python floats (cheaper than numpy's calls).
_FLOAT_MATH_MAX = 64


class NotCompilable(Exception):
    """Raised while building a plan: this stack runs through torch."""


def _owner(cls: type, name: str) -> type | None:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass
    return None


def is_covered(obj: Any, kernel_method: str, methods: Iterable[str]) -> bool:
    """Whether ``obj``'s kernel method stands in for its ``methods``.

    It does when no method is overridden below the class that defines the
    kernel method (a subclass that changes ``forward`` but not
    ``reward_kernel`` keeps the torch path), and none is set on the instance.
    """
    cls = type(obj)
    kernel_owner = _owner(cls, kernel_method)
    if kernel_owner is None:
        return False
    attrs = obj.__dict__
    for name in methods:
        if name in attrs:
            return False
        owner = _owner(cls, name)
        if owner is not None and not issubclass(kernel_owner, owner):
            return False
    return True


class KernelBuilder:
    """Builds the numpy kernels of a stack and records what they depend on.

    Kernel methods (``reward_kernel(builder)`` and friends) call
    :meth:`reward`, :meth:`processed`, :meth:`moments` or :meth:`array` for
    the nets and modules they are made of, :meth:`watch` for the attributes
    they read, :meth:`needs` for the inputs they require, and :meth:`view`
    for parameters they read directly. Any of these raises
    :class:`NotCompilable` when the part cannot be compiled.

    Args:
        dtype: The torch dtype of the stack (float32 or float64).
    """

    def __init__(self, dtype: torch.dtype) -> None:
        #: The numpy dtype every array of the plan has (None: no kernel can be built).
        self.dtype: np.dtype[Any] | None = _NUMPY_OF.get(dtype)
        #: The modules visited, in order, for the guard.
        self.modules: list[nn.Module] = []
        #: ``(owner, attribute name, value)`` the kernels read.
        self.watched: list[tuple[nn.Module, str, Any]] = []
        #: The inputs (``"action"``, ``"next_state"``, ``"done"``) a kernel needs.
        self.needed: set[str] = set()
        #: The spaces of the stack: ``(observation_space, action_space, normalize_images)``.
        self.spaces: tuple[Any, Any, bool] | None = None
        self._seen: set[int] = set()

    # ------------------------------------------------------------------ recording
    def visit(self, module: nn.Module) -> None:
        """Record ``module`` for the guard (its children, tensors and hooks)."""
        if id(module) in self._seen:
            return
        # Recorded first: a plan without a kernel is guarded by what refused it too.
        self._seen.add(id(module))
        self.modules.append(module)
        attrs = module.__dict__
        if attrs["_forward_hooks"] or attrs["_forward_pre_hooks"]:
            raise NotCompilable(f"{type(module).__name__} has forward hooks")
        for tensors in (attrs["_parameters"], attrs["_buffers"]):
            for tensor in tensors.values():
                if tensor is not None and not tensor.is_cpu:
                    raise NotCompilable(f"{type(module).__name__} is on {tensor.device}")

    def watch(self, owner: nn.Module, *names: str) -> tuple[Any, ...]:
        """Record attributes of ``owner`` that the kernel reads; return their values."""
        values = []
        for name in names:
            value = owner.__dict__.get(name, _MISSING)
            self.watched.append((owner, name, value))
            values.append(getattr(owner, name))
        return tuple(values)

    def needs(self, *inputs: str) -> None:
        """Declare inputs (``"action"``, ``"next_state"``, ``"done"``) the kernel uses."""
        self.needed.update(inputs)

    def view(self, module: nn.Module, name: str) -> np.ndarray | None:
        """A numpy view of ``module``'s parameter or buffer ``name`` (None if it is None).

        Raises:
            NotCompilable: The tensor is not in CPU memory, or is a float
                tensor of another dtype than the plan's.
        """
        self.visit(module)
        tensor: torch.Tensor | None = module._parameters.get(name)
        if tensor is None:
            tensor = module._buffers.get(name)
        if tensor is None:
            return None
        if not tensor.is_cpu or (
            tensor.is_floating_point() and _NUMPY_OF.get(tensor.dtype, False) != self.dtype
        ):
            raise NotCompilable(f"{name} is {tensor.dtype} on {tensor.device}")
        return tensor.detach().numpy()

    # ------------------------------------------------------------------- kernels
    def _ask(self, obj: Any, kind: str) -> Any:
        method = _KERNEL_METHOD[kind]
        self.visit(obj)
        if not is_covered(obj, method, STANDS_FOR[kind]):
            raise NotCompilable(f"{type(obj).__name__} overrides what its {method} replaces")
        kernel = getattr(obj, method)(self)
        if kernel is None:
            raise NotCompilable(f"{type(obj).__name__} has no {method}")
        return kernel

    def _net(self, net: Any) -> None:
        # (Not watched: the torch path, too, keeps the preprocessing a net was built with.)
        own = (net.observation_space, net.action_space, net.normalize_images)
        if self.spaces is None:
            self.spaces = own
        elif own != self.spaces:
            raise NotCompilable("nets of the stack have different spaces")

    def reward(self, net: Any) -> RewardKernel:
        """The reward kernel of ``net`` (the twin of its eval-mode ``forward``)."""
        self._net(net)
        return self._ask(net, "reward")

    def processed(self, net: Any) -> ProcessedKernel:
        """The processed kernel of ``net`` (the twin of its ``predict_processed``)."""
        self._net(net)
        return self._ask(net, "processed")

    def moments(self, net: Any) -> MomentsKernel:
        """The moments kernel of ``net`` (the twin of its ``predict_reward_moments``)."""
        self._net(net)
        return self._ask(net, "moments")

    def array(self, module: Any, width: int) -> tuple[ArrayKernel, int]:
        """The array kernel of ``module`` on inputs of ``width`` features, and its output width.

        Built-in layers (``Sequential``, ``Linear``, ReLU, Tanh, Sigmoid,
        LeakyReLU, Identity, Dropout, Flatten, ``SqueezeLayer``, ``RunningNorm``,
        ``EMANorm``; exact types) are known here; another module may define
        ``array_kernel(builder, width) -> (kernel, width)``. A width of 0 stands
        for a squeezed ``(batch,)`` output.
        """
        if not isinstance(module, nn.Module):
            raise NotCompilable(f"{type(module).__name__} is not a module")
        known = _LAYERS.get(type(module))
        if known is None:
            self.visit(module)
            if not is_covered(module, "array_kernel", STANDS_FOR["array"]):
                raise NotCompilable(f"no kernel for {type(module).__name__}")
            result = getattr(module, "array_kernel")(self, width)  # noqa: B009
            if result is None:
                raise NotCompilable(f"{type(module).__name__} has no array_kernel")
            return result
        self.visit(module)
        if "forward" in module.__dict__ or "__call__" in module.__dict__:
            raise NotCompilable("forward set on the instance")
        return known(self, module, width)

    def norm(self, layer: nn.Module) -> NormKernel:
        """Standardisation and statistics update of a norm layer, on the host.

        ``RunningNorm``, ``EMANorm`` (without overrides of ``normalize`` or
        ``update_stats``) and ``nn.Identity`` are supported.
        """
        if type(layer) is nn.Identity:
            self.visit(layer)
            return NormKernel(None, None, None, 0.0)
        if not isinstance(layer, (RunningNorm, EMANorm)):
            raise NotCompilable(f"no kernel for {type(layer).__name__}")
        base = EMANorm if isinstance(layer, EMANorm) else RunningNorm
        cls = type(layer)
        for name in ("normalize", "update_stats", "forward"):
            if name in layer.__dict__ or _owner(cls, name) not in (base, BaseNorm):
                raise NotCompilable(f"{cls.__name__} overrides {name}")
        views = {name: self.view(layer, name) for name in layer._buffers}
        (eps,) = self.watch(layer, "eps")
        decay = self.watch(layer, "decay")[0] if base is EMANorm else None
        return NormKernel(views, base, decay, float(eps))


_MISSING = object()


# ------------------------------------------------------------------------ norm layers
class NormKernel:
    """A norm layer's standardisation and update, on numpy views of its buffers.

    The buffers stay the only copy of the statistics; the arithmetic of a
    batch's moments is done in double precision.

    Args:
        views: Numpy views of the layer's buffers, or None for ``nn.Identity``.
        kind: ``RunningNorm`` or ``EMANorm`` (whose update to apply).
        decay: ``EMANorm``'s decay.
        eps: The layer's ``eps``.
    """

    __slots__ = ("_decay", "_eps", "_kind", "_views")

    def __init__(
        self, views: dict[str, Any] | None, kind: type | None, decay: float | None, eps: float
    ) -> None:
        self._views = views
        self._kind = kind
        self._decay = decay
        self._eps = eps

    def _shift_scale(self) -> tuple[float, float]:
        views = self._views
        assert views is not None
        variance = float(views["running_var"][0]) + self._eps
        # (1 / sqrt(0) is what torch's division by a zero std gives: inf.)
        return float(views["running_mean"][0]), (
            1.0 / math.sqrt(variance) if variance > 0 else math.inf
        )

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / sqrt(var + eps)`` of a ``(batch, features)`` array, as it is now."""
        views = self._views
        if views is None:
            return x
        mean, var = views["running_mean"], views["running_var"]
        with np.errstate(divide="ignore", invalid="ignore"):
            return (x - mean) / np.sqrt(var + x.dtype.type(self._eps))

    def standardize(self, x: np.ndarray, update: bool) -> np.ndarray:
        """Standardise 1-d rewards with the statistics as they are; then fold them in if ``update``.

        The arithmetic is done in double precision (with Python floats for a
        small batch, cheaper than numpy's calls) and rounded once to ``x``'s dtype.
        """
        if self._views is None:
            return x
        shift, scale = self._shift_scale()
        n = x.shape[0]
        if n <= _FLOAT_MATH_MAX:
            values = x.tolist()
            if scale == math.inf:
                out = np.array([_times_inf(v - shift) for v in values], x.dtype)
            else:
                out = np.array([(v - shift) * scale for v in values], x.dtype)
            if update and n:
                mean_b = sum(values) / n
                var_b = sum([(v - mean_b) * (v - mean_b) for v in values]) / n
                self._fold(mean_b, var_b, n)
            return out
        x64 = x.astype(np.float64)
        with np.errstate(invalid="ignore"):
            out = ((x64 - shift) * scale).astype(x.dtype)
        if update:  # (numpy reductions: a BLAS dot may start threads)
            mean_b = float(x64.mean())
            x64 -= mean_b
            np.square(x64, out=x64)
            self._fold(mean_b, float(x64.mean()), n)
        return out

    def update(self, x: np.ndarray) -> None:
        """Fold the batch ``x`` (``(batch,)`` or ``(batch, features)``) into the statistics."""
        if self._views is None or x.shape[0] == 0:
            return
        x64 = x.astype(np.float64)
        if x.ndim == 1:
            self._fold(float(x64.mean()), float(x64.var()), x.shape[0])
        else:
            self._fold(x64.mean(axis=0), x64.var(axis=0), x.shape[0])

    def _fold(self, mean_b: Any, var_b: Any, n_b: int) -> None:
        """Fold a batch's moments (floats for one feature, else arrays) into the buffers."""
        views = self._views
        assert views is not None
        mean, var, count = views["running_mean"], views["running_var"], views["count"]
        if self._kind is EMANorm:  # bias-corrected learning rate, as EMANorm.update_stats
            inv_rate, num_batches = views["inv_learning_rate"], views["num_batches"]
            inv = float(inv_rate) + self._decay ** int(num_batches)  # type: ignore[operator]
            weight = 1.0 / inv
            inv_rate[...] = inv
            num_batches[...] = int(num_batches) + 1
        else:  # Chan et al.'s parallel update, as RunningNorm.update_stats
            weight = n_b / (int(count) + n_b)
        corr = weight * (1 - weight)
        if isinstance(mean_b, float):
            mean_a, var_a = float(mean[0]), float(var[0])
            delta = mean_b - mean_a
            mean[0] = mean_a + weight * delta
            var[0] = var_a + weight * (var_b - var_a) + corr * delta * delta
        else:
            mean_a, var_a = mean.astype(np.float64), var.astype(np.float64)
            delta = mean_b - mean_a
            mean[...] = mean_a + weight * delta
            var[...] = var_a + weight * (var_b - var_a) + corr * delta * delta
        count[...] = int(count) + n_b


def _times_inf(value: float) -> float:
    """``value * inf`` as torch gives it: nan for 0, signed inf otherwise."""
    return math.nan if value == 0 or value != value else math.copysign(math.inf, value)


# ---------------------------------------------------------------------------- layers
#: From this much work (rows x inputs x outputs) on, a Linear layer runs torch's
#: matrix product (on the same memory, with torch's thread settings); below it,
#: numpy's, whose per-call cost is a fraction of a torch op's. OpenBLAS, numpy's
#: BLAS, starts threads of its own from about twice this size; on a busy
#: machine those threads cost more than they give.
TORCH_MATMUL_WORK = 1 << 17


def _linear(
    builder: KernelBuilder, layer: nn.Linear, width: int, scratch: bool = False
) -> tuple[ArrayKernel, int]:
    """A Linear layer; with ``scratch``, large outputs go to a buffer reused across calls.

    Only an output that the next Linear layer consumes may be a scratch
    buffer (one per thread): reusing it spares the allocator, which with
    glibc's defaults hands out fresh pages (page faults) for each large
    activation, most of a large batch's cost.
    """
    weight = builder.view(layer, "weight")
    bias = builder.view(layer, "bias")
    assert weight is not None
    if weight.ndim != 2 or weight.shape[1] != width:
        raise NotCompilable("Linear input size differs")
    transposed = weight.T
    weight_th = torch.from_numpy(weight)
    weight_t_th = weight_th.t()
    bias_th = None if bias is None else torch.from_numpy(bias)
    out_features = int(weight.shape[0])
    torch_rows = max(1, TORCH_MATMUL_WORK // (weight.shape[0] * weight.shape[1]))
    buffers = threading.local()

    def large(x: np.ndarray) -> np.ndarray:
        x_th = torch.from_numpy(x)
        if not scratch:
            return _linear_op(x_th, weight_th, bias_th).numpy()
        out = getattr(buffers, "out", None)
        if out is None or out.shape[0] != x.shape[0]:
            out = buffers.out = torch.empty((x.shape[0], out_features), dtype=weight_th.dtype)
        if bias_th is None:
            torch.mm(x_th, weight_t_th, out=out)
        else:
            torch.addmm(bias_th, x_th, weight_t_th, out=out)
        return out.numpy()

    def linear(x: np.ndarray) -> np.ndarray:
        if x.shape[0] >= torch_rows and x.flags.writeable and x.flags.c_contiguous:
            return large(x)
        out = x @ transposed
        if bias is not None:
            out += bias
        return out

    return linear, out_features


_linear_op = torch.nn.functional.linear


def _relu_in_place(x: np.ndarray) -> np.ndarray:
    if x.size >= 1 << 16:  # torch's kernel streams large arrays faster
        torch.from_numpy(x).relu_()
        return x
    return np.maximum(x, 0, out=x)


def _elementwise(fn: Callable[[np.ndarray], np.ndarray]) -> Any:
    def make(builder: KernelBuilder, layer: nn.Module, width: int) -> tuple[ArrayKernel, int]:
        return fn, width

    return make


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -x)).astype(x.dtype, copy=False)


#: In-place twins of activations, for arrays a kernel has just made (a Linear's output).
_IN_PLACE: dict[type, ArrayKernel] = {
    nn.ReLU: _relu_in_place,
    nn.Tanh: lambda x: np.tanh(x, out=x),
}


def _leaky_relu(builder: KernelBuilder, layer: nn.LeakyReLU, width: int) -> tuple[ArrayKernel, int]:
    (slope,) = builder.watch(layer, "negative_slope")
    slope = float(slope)

    def leaky_relu(x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x, x * x.dtype.type(slope))

    return leaky_relu, width


def _identity_fn(x: np.ndarray) -> np.ndarray:
    return x


def _identity(builder: KernelBuilder, layer: nn.Module, width: int) -> tuple[ArrayKernel, int]:
    """Identity, Dropout (eval mode) and a Flatten of 2-d inputs do nothing."""
    if isinstance(layer, nn.Flatten):
        start, end = builder.watch(layer, "start_dim", "end_dim")
        if (start, end) != (1, -1):
            raise NotCompilable("Flatten of other dimensions")
    return _identity_fn, width


def _squeeze(builder: KernelBuilder, layer: nn.Module, width: int) -> tuple[ArrayKernel, int]:
    if width != 1:
        raise NotCompilable("SqueezeLayer of more than one feature")
    return (lambda x: x[:, 0]), 0


def _norm(builder: KernelBuilder, layer: BaseNorm, width: int) -> tuple[ArrayKernel, int]:
    if layer.num_features != width:
        raise NotCompilable("norm layer size differs")
    return builder.norm(layer).normalize, width


def _sequential(builder: KernelBuilder, seq: nn.Sequential, width: int) -> tuple[ArrayKernel, int]:
    steps: list[ArrayKernel] = []
    fresh = False  # whether the last step's output is an array made by this kernel
    layers = list(seq._modules.values())
    last_linear = max((i for i, m in enumerate(layers) if type(m) is nn.Linear), default=-1)
    for i, layer in enumerate(layers):
        if width == 0:
            raise NotCompilable("a layer after a squeeze")
        in_width = width
        step, width = builder.array(layer, width)
        if type(layer) is nn.Linear and i < last_linear:  # consumed by a later Linear
            step, width = _linear(builder, layer, in_width, scratch=True)
        if step is _identity_fn:
            continue
        if fresh and type(layer) in _IN_PLACE:
            step = _IN_PLACE[type(layer)]
        fresh = type(layer) is nn.Linear
        steps.append(step)
    if not steps:
        return _identity_fn, width
    if len(steps) == 1:
        return steps[0], width

    def sequential(x: np.ndarray) -> np.ndarray:
        for step in steps:
            x = step(x)
        return x

    return sequential, width


_LAYERS: dict[type, Callable[..., tuple[ArrayKernel, int]]] = {
    nn.Sequential: _sequential,
    nn.Linear: _linear,
    nn.ReLU: _elementwise(_relu),
    nn.Tanh: _elementwise(np.tanh),
    nn.Sigmoid: _elementwise(_sigmoid),
    nn.LeakyReLU: _leaky_relu,
    nn.Identity: _identity,
    nn.Dropout: _identity,
    nn.Flatten: _identity,
    SqueezeLayer: _squeeze,
    RunningNorm: _norm,
    EMANorm: _norm,
}


# ---------------------------------------------------------------------------- inputs
InputFn = Callable[[Any], Any]


def _space_input(space: spaces.Space[Any], normalize_images: bool, dtype: np.dtype[Any]) -> InputFn:
    """A function from a batch of ``space`` to a flat 2-d array of ``dtype``, or None.

    None means the batch is not the plain case (another type, a shape or a
    value the torch path would reject or convert differently): the call
    then takes the torch path, which gives its usual errors.
    """
    if isinstance(space, spaces.Dict):
        subs = [(key, _space_input(sub, normalize_images, dtype)) for key, sub in space.items()]

        def dict_input(batch: Any) -> Any:
            if not isinstance(batch, Mapping):
                return None
            parts: list[np.ndarray] = []
            for key, fn in subs:
                value = batch.get(key)
                part = None if value is None else fn(value)
                if part is None or (parts and part.shape[0] != parts[0].shape[0]):
                    return None
                parts.append(part)
            return np.concatenate(parts, axis=1)

        return dict_input
    if isinstance(space, spaces.Discrete):
        return _discrete_input(space, dtype)
    if isinstance(space, spaces.MultiDiscrete):
        return _multi_discrete_input(space, dtype)
    if isinstance(space, (spaces.Box, spaces.MultiBinary)):
        if normalize_images and is_image_space(space):
            raise NotCompilable("image observations")
        shape = tuple(space.shape)
        ndim = len(shape) + 1
        flat = int(np.prod(shape))

        def box_input(batch: Any) -> Any:
            if (
                type(batch) is not np.ndarray
                or batch.ndim != ndim
                or batch.shape[1:] != shape
                or batch.dtype.kind not in _NUMERIC
            ):
                return None
            if ndim != 2:
                batch = batch.reshape(batch.shape[0], flat)
            return batch if batch.dtype == dtype else batch.astype(dtype)

        return box_input
    raise NotCompilable(f"space {space}")


def _int_values(batch: Any) -> Any:
    """``batch`` as a 1-d or 2-d integer numpy array, or None."""
    if type(batch) is not np.ndarray:
        return None
    kind = batch.dtype.kind
    if kind == "i" or (kind == "u" and batch.dtype.itemsize < 8):
        return batch
    return None


def _signed(values: np.ndarray) -> bool:
    """Whether an integer array can hold negative values."""
    return values.dtype.kind == "i"


def _discrete_input(space: spaces.Discrete, dtype: np.dtype[Any]) -> InputFn:
    n, start = int(space.n), int(space.start)
    if n > 512:
        raise NotCompilable("a large Discrete space")
    table = np.eye(n, dtype=dtype)

    def discrete_input(batch: Any) -> Any:
        values = _int_values(batch)
        if values is None:
            return None
        if values.ndim != 1:
            if values.ndim != 2 or values.shape[1] != 1:
                return None
            values = values[:, 0]
        if start:
            values = values - start
        # take refuses indices >= n (IndexError) but wraps negative ones.
        if not values.shape[0] or (_signed(values) and values.min() < 0):
            return None
        try:
            return table.take(values, 0)
        except IndexError:
            return None

    return discrete_input


def _multi_discrete_input(space: spaces.MultiDiscrete, dtype: np.dtype[Any]) -> InputFn:
    nvec = np.asarray(space.nvec).reshape(-1).astype(np.int64)
    starts = np.asarray(space.start).reshape(-1).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
    shape, width = tuple(space.shape), int(nvec.sum())

    def multi_discrete_input(batch: Any) -> Any:
        values = _int_values(batch)
        if values is None or values.shape[1:] != shape or not values.shape[0]:
            return None
        index = values.reshape(values.shape[0], -1) - starts
        if (index < 0).any() or (index >= nvec).any():
            return None
        out = np.zeros((index.shape[0], width), dtype)
        out[np.arange(index.shape[0])[:, None], index + offsets] = 1
        return out

    return multi_discrete_input


def prepare_inputs(
    observation_space: spaces.Space[Any],
    action_space: spaces.Space[Any],
    normalize_images: bool,
    dtype: np.dtype[Any] | None,
    needed: set[str],
) -> Callable[[Any, Any, Any, Any], Batch | None]:
    """A function from numpy transitions to a kernel's :data:`Batch`, or None.

    It converts what ``RewardNet.preprocess`` converts (the same one-hot,
    dtype casts, Dict keys in the space's order), flattened; every given input
    is converted (and so validated), used or not. None (take the torch path)
    for anything but the plain case: another input type, a shape, a value out
    of range, batch sizes that differ, an empty batch, or a needed input
    missing.

    Raises:
        NotCompilable: A space the kernels do not handle (e.g. images).
    """
    if dtype is None:
        raise NotCompilable("a dtype other than float32 or float64")
    obs_fn = _space_input(observation_space, normalize_images, dtype)
    act_fn = _space_input(action_space, normalize_images, dtype)
    need_action, need_next = "action" in needed, "next_state" in needed
    need_done = "done" in needed

    def prepare(state: Any, action: Any, next_state: Any, done: Any) -> Batch | None:
        s = obs_fn(state)
        if s is None:
            return None
        n = s.shape[0]
        a = ns = d = None
        if action is not None:
            a = act_fn(action)
            if a is None or a.shape[0] != n:
                return None
        elif need_action:
            return None
        if next_state is not None:
            ns = obs_fn(next_state)
            if ns is None or ns.shape[0] != n:
                return None
        elif need_next:
            return None
        if done is not None:
            if type(done) is not np.ndarray or done.dtype.kind not in _NUMERIC or done.size != n:
                return None
            d = done.reshape(-1)
            if d.dtype != dtype:
                d = d.astype(dtype)
        elif need_done:
            return None
        return s, a, ns, d

    return prepare
