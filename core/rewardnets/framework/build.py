"""Building a reward net with its wrappers from a spec or a shorter config form.

The forms :func:`build_reward_net` accepts are documented in ``docs/config.md``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from gymnasium import spaces
from torch import nn

from rewardnets.framework.reward_net import (
    ForwardWrapper,
    PredictProcessedWrapper,
    RewardNet,
    RewardNetWrapper,
)
from rewardnets.framework.spec import _takes_base
from rewardnets.plugin_registry.configurable import SpecError
from rewardnets.plugin_registry.registry import import_object, registry

__all__ = ["build_reward_net", "normalize_config"]


def normalize_config(config: Any) -> dict[str, Any]:
    """Turn any accepted config form into the canonical spec dict.

    Raises:
        SpecError: The config has an unknown form or keys.
    """
    if isinstance(config, str):
        text = config.strip()
        if text[:1] in ("{", "["):  # JSON text, e.g. from a CLI flag or an env variable
            try:
                config = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SpecError(
                    f"The config {config!r} starts like JSON but is not valid JSON: {exc}."
                ) from exc
            return normalize_config(config)
        return {"net": config, "kwargs": {}, "wrappers": []}
    if isinstance(config, (list, tuple)):
        if not config:
            raise SpecError("Expected a non-empty list [net, wrapper, ...], got [].")
        first = normalize_config(config[0])
        return {**first, "wrappers": first["wrappers"] + list(config[1:])}
    if not isinstance(config, Mapping):
        raise SpecError(
            "Expected a reward-net config as a name, a dict or a list, got "
            f"{type(config).__name__}: {config!r}."
        )
    if "name" in config and "net" not in config:  # {"name": ..., "kwargs": ...}
        config = {("net" if k == "name" else k): v for k, v in config.items()}
    unknown = set(config) - {"net", "kwargs", "wrappers"}
    if unknown or "net" not in config:
        raise SpecError(
            "Expected a config dict with keys 'net' (or 'name'), 'kwargs' and "
            f"'wrappers', got keys {sorted(config)}."
        )
    net = config["net"]
    kwargs = _kwargs(config.get("kwargs"), "'kwargs'")
    if isinstance(net, Mapping):
        name, inner = _name_and_kwargs(net, "net")
        net, kwargs = name, {**inner, **kwargs}
    wrappers = config.get("wrappers") or []
    if not isinstance(wrappers, (list, tuple)):
        raise SpecError(f"Expected 'wrappers' to be a list, got {wrappers!r}.")
    return {"net": net, "kwargs": kwargs, "wrappers": list(wrappers)}


def _name_and_kwargs(item: Any, what: str) -> tuple[str, dict[str, Any]]:
    if isinstance(item, str):
        return item, {}
    if isinstance(item, Mapping):
        if "name" in item and set(item) <= {"name", "kwargs"}:
            return str(item["name"]), _kwargs(item.get("kwargs"), f"the kwargs of {what}")
        if len(item) == 1:
            ((name, kwargs),) = item.items()
            if isinstance(kwargs, Mapping):
                return str(name), dict(kwargs)
    raise SpecError(
        f"Expected {what} as a name, {{'name': ..., 'kwargs': {{...}}}} or "
        f"{{name: {{kwargs}}}}, got {item!r}."
    )


def _kwargs(value: Any, what: str) -> dict[str, Any]:
    """Keyword arguments from a config: a mapping (or nothing), as a new dict."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(
            f"Expected {what} to be a dict of keyword arguments, got "
            f"{type(value).__name__}: {value!r}."
        )
    return dict(value)


def build_reward_net(
    config: Any,
    observation_space: spaces.Space[Any],
    action_space: spaces.Space[Any],
    *,
    allow_import: bool = True,
) -> Any:
    """Build a reward net with its wrappers from plain data.

    Args:
        config: A net name (``"BasicRewardNet"``), a list ``[net, wrapper, ...]``
            or a dict ``{"net": ..., "kwargs": {...}, "wrappers": [...]}``; each
            wrapper a name, ``{"name": ..., "kwargs": {...}}`` or ``{name: kwargs}``;
            or any of these as JSON text (a string starting with ``{`` or ``[``).
        observation_space: The observation space of the env.
        action_space: The action space of the env.
        allow_import: Whether ``"package.module:Name"`` strings may import their
            module; when false, only already-imported modules are used.

    Returns:
        The reward net, wrappers applied in list order (first is innermost).

    Raises:
        UnknownNameError: A name is not registered (close matches listed).
        SpecError: The config is malformed or the wrapper order is invalid.
    """
    spec = normalize_config(config)
    if isinstance(spec["net"], str) and spec["net"] in registry.names("wrapper"):
        raise SpecError(
            f"{spec['net']!r} is a wrapper; build a net first and list "
            f"{spec['net']!r} under 'wrappers'."
        )
    net_cls = _resolve("reward_net", spec["net"], allow_import)
    if isinstance(net_cls, type) and issubclass(net_cls, RewardNet) and _takes_base(net_cls):
        raise SpecError(
            f"{spec['net']!r} is a wrapper; build a net first and list "
            f"{spec['net']!r} under 'wrappers'."
        )
    wrappers = [_name_and_kwargs(w, "a wrapper") for w in spec["wrappers"]]
    classes = [_resolve("wrapper", name, allow_import) for name, _ in wrappers]
    _check_order([name for name, _ in wrappers], classes, ForwardWrapper, PredictProcessedWrapper)
    kwargs = _decode_kwargs(net_cls, spec["kwargs"], observation_space, action_space, allow_import)
    net = _call(net_cls, spec["net"], observation_space, action_space, **kwargs)
    for (name, wkwargs), cls in zip(wrappers, classes, strict=False):
        decoded = _decode_kwargs(cls, wkwargs, observation_space, action_space, allow_import)
        net = _call(cls, name, net, **decoded)
    return net


def _check_order(names: list[str], classes: list[Any], fwd: type, ppw: type) -> None:
    seen_ppw = None
    for name, cls in zip(names, classes, strict=False):
        if isinstance(cls, type) and issubclass(cls, ppw):
            seen_ppw = seen_ppw or name
        elif isinstance(cls, type) and issubclass(cls, fwd) and seen_ppw:
            forward = [n for n, c in zip(names, classes, strict=False) if issubclass(c, fwd)]
            rest = [n for n in names if n not in forward]
            raise SpecError(
                f"Wrapper order {names} is invalid: the forward wrapper {name!r} "
                f"comes after the predict-processed wrapper {seen_ppw!r}, so its "
                "change would not reach predict_processed. List forward wrappers "
                f"first: {forward + rest}."
            )


def _call(cls: Any, name: str, /, *args: Any, **kwargs: Any) -> Any:
    try:
        return cls(*args, **kwargs)
    except TypeError as exc:
        raise SpecError(f"Cannot build {name!r} with kwargs {sorted(kwargs)}: {exc}") from exc


def _decode_kwargs(
    cls: Any,
    kwargs: Mapping[str, Any],
    observation_space: spaces.Space[Any],
    action_space: spaces.Space[Any],
    allow_import: bool,
) -> dict[str, Any]:
    refs = getattr(cls, "config_refs", {})
    out = {}
    for name, value in kwargs.items():
        ref = refs.get(name)
        out[name] = _decode(value, ref, observation_space, action_space, allow_import)
    return out


def _decode(
    value: Any,
    ref: str | None,
    observation_space: spaces.Space[Any],
    action_space: spaces.Space[Any],
    allow_import: bool,
) -> Any:
    if ref is None or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_decode(v, ref, observation_space, action_space, allow_import) for v in value]
    if ref == "reward_net":
        return build_reward_net(value, observation_space, action_space, allow_import=allow_import)
    if ref == "potential":
        name, kwargs = _name_and_kwargs(value, "a potential")
        cls = _resolve("potential", name, allow_import)
        decoded = _decode_kwargs(cls, kwargs, observation_space, action_space, allow_import)
        return _call(cls, name, observation_space, **decoded)
    if isinstance(value, Mapping):  # a partially applied class or function
        name, kwargs = _name_and_kwargs(value, "a class with kwargs")
        func = _decode(name, ref, observation_space, action_space, allow_import)
        return functools.partial(func, **kwargs)
    if ref == "norm_layer":
        return _resolve("norm_layer", value, allow_import)
    if not isinstance(value, str):
        return value
    if ":" not in value:  # "Tanh" for torch.nn.Tanh
        found = getattr(nn, value, None)
        if not _is_module_class(found):
            raise SpecError(f"Expected the name of a torch.nn class such as 'Tanh', got {value!r}.")
        return found
    return _resolve(None, value, allow_import)


def _is_module_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, nn.Module)


#: What a name of each kind must resolve to: a subclass of this class.
_EXPECTED_CLASS: dict[str | None, tuple[type, str]] = {
    "reward_net": (RewardNet, "a RewardNet subclass"),
    "wrapper": (RewardNetWrapper, "a RewardNetWrapper subclass"),
    "potential": (nn.Module, "an nn.Module subclass"),
    "norm_layer": (nn.Module, "an nn.Module subclass"),
    None: (nn.Module, "an nn.Module class"),
}


def _resolve(kind: str | None, ref: Any, allow_import: bool) -> Any:
    """Resolve a name or import string to an object of the right kind.

    A registered name gives the registered object (its kind was checked when
    it was registered). An import string must give a class of the kind the
    position needs — a wrapper a ``RewardNetWrapper`` subclass, a net a
    ``RewardNet`` subclass, anything else an ``nn.Module`` class — checked
    before anything is called. With ``allow_import=False`` (data from a file)
    its module must already be imported, and nothing is imported on the way.
    """
    is_import_string = (
        isinstance(ref, str) and ":" in ref and (kind is None or ref not in registry.names(kind))
    )
    try:
        if kind is None or is_import_string:
            obj = import_object(ref, allow_import=allow_import)
        else:
            obj = registry.resolve(kind, ref, allow_import=allow_import)
    except (ValueError, AttributeError, ImportError) as exc:
        raise SpecError(f"Cannot resolve {ref!r}: {exc}") from exc
    # A trusted config may name a factory function as a norm layer or an
    # activation; data from a file may name only classes.
    factory_ok = allow_import and kind in (None, "norm_layer") and callable(obj)
    if is_import_string and not factory_ok:
        base, what = _EXPECTED_CLASS[kind]
        if not (isinstance(obj, type) and issubclass(obj, base)):
            trust = (
                " Data loaded without trust may name only registered objects and classes "
                "of already-imported modules."
                if not allow_import
                else ""
            )
            raise SpecError(f"{ref!r} is {_describe(obj)}; expected {what} here.{trust}")
    return obj


def _describe(obj: Any) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    return f"a {type(obj).__name__}"
