"""Specs: a reward net with its wrappers, as plain data.

A spec is JSON-able data that builds a net through the registry::

    {"net": "BasicRewardNet", "kwargs": {"hid_sizes": [64, 64]},
     "wrappers": [{"name": "ShapedRewardNet", "kwargs": {...}}, ...]}

Every net built by a constructor call remembers its arguments, so
:func:`reward_net_spec` turns any net into its spec;
:func:`rewardnets.framework.build.build_reward_net` builds a net from one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from rewardnets.plugin_registry.configurable import SpecError, init_kwargs
from rewardnets.plugin_registry.registry import registry

__all__ = ["reward_net_spec"]


def _takes_base(cls: type) -> bool:
    return "base" in inspect.signature(cls.__init__).parameters  # type: ignore[misc]


def _class_name(kind: str, cls: type) -> str:
    name = registry.name_of(kind, cls)
    if name is not None:
        return name
    if "<locals>" in cls.__qualname__:
        raise SpecError(
            f"{cls.__qualname__} is defined inside a function, so no spec can name "
            "it; define it at module level or register it through a plugin."
        )
    return f"{cls.__module__}:{cls.__qualname__}"


# ------------------------------------------------------------------------ encode
def reward_net_spec(net: Any) -> dict[str, Any]:
    """Return the spec of ``net``: its base net, kwargs and wrapper stack.

    Raises:
        SpecError: A constructor argument cannot be written as data.
    """
    wrappers: list[dict[str, Any]] = []
    while _is_wrapper(net):
        wrappers.insert(
            0,
            {
                "name": _class_name("wrapper", type(net)),
                "kwargs": _encode_kwargs(net, positional=1),  # the base
            },
        )
        net = net.base
    return {
        "net": _class_name("reward_net", type(net)),
        "kwargs": _encode_kwargs(net, positional=2),  # the spaces
        "wrappers": wrappers,
    }


def _encode_kwargs(obj: Any, positional: int) -> dict[str, Any]:
    """Encode ``obj``'s constructor arguments but the first ``positional`` ones.

    Those (the spaces of a net, the space of a potential, the base of a
    wrapper) are given positionally when the spec is built, whatever their
    parameter names.
    """
    refs = getattr(type(obj), "config_refs", {})
    parameters = list(inspect.signature(type(obj).__init__).parameters)[1:]
    skip = set(parameters[:positional])
    out = {}
    for name, value in init_kwargs(obj).items():
        if name in skip:
            continue
        where = f"{type(obj).__name__}({name}=...)"
        out[name] = _encode(value, refs.get(name), where)
    return out


def _encode(value: Any, ref: str | None, where: str) -> Any:
    if isinstance(value, (list, tuple)):
        return [_encode(v, ref, where) for v in value]
    if ref == "reward_net":
        return reward_net_spec(value)
    if ref == "potential":
        return {
            "name": _class_name("potential", type(value)),
            "kwargs": _encode_kwargs(value, positional=1),  # the space
        }
    if ref in ("norm_layer", "object"):
        if value is None:
            return None
        if isinstance(value, functools.partial):
            return {
                "name": _encode(value.func, ref, where),
                "kwargs": {k: _encode(v, None, where) for k, v in value.keywords.items()},
            }
        if ref == "norm_layer" and registry.name_of("norm_layer", value) is not None:
            return registry.name_of("norm_layer", value)
        module = getattr(value, "__module__", None)
        qualname = getattr(value, "__qualname__", None)
        if module and qualname and "<" not in qualname:
            return f"{module}:{qualname}"
        raise SpecError(f"{where}: cannot name {value!r} as data.")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _encode(v, None, where) for k, v in value.items()}
    raise SpecError(
        f"{where}: a value of type {type(value).__name__} cannot be written as "
        "data. Use JSON-able values, or declare the parameter in the class's "
        "config_refs."
    )


def _is_wrapper(net: Any) -> bool:
    """Whether ``net`` wraps a net it was given as ``base`` (a ``RewardNetWrapper``)."""
    return isinstance(getattr(net, "base", None), nn.Module) and _takes_base(type(net))
