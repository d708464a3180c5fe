"""Loading reward nets that ``imitation`` saved, without ``imitation``.

``torch.save`` of an ``imitation`` reward net names classes such as
``imitation.rewards.reward_nets.BasicRewardNet``. While such a file is
unpickled, each of those names resolves to a placeholder that only keeps the
object's state (:class:`ImitationObject`); nothing of ``imitation`` is
imported or run. :func:`convert` then reads the constructor arguments back from
that state (spaces, ``use_*`` flags, layer sizes, activation, discount factor,
normalisation layer…), builds the equivalent rewardnets net through its
constructors, and loads the saved tensors into it with a strict
``load_state_dict``. The result is an ordinary rewardnets net: it has a spec,
and ``rewardnets.save`` writes it in the safe format.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import nn

from rewardnets.files.format import SerializationError, UnsafePickleError

__all__ = ["IMITATION_CLASSES", "ImitationObject", "convert", "imitation_class"]

_REWARD_NETS = "imitation.rewards.reward_nets"
_NETWORKS = "imitation.util.networks"


class ImitationObject:
    """The state of an ``imitation`` object, kept while its file is unpickled."""

    imitation_name: ClassVar[str] = ""
    _state: dict[str, Any]

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise SerializationError(
                f"The saved {self.imitation_name} has state of type "
                f"{type(state).__name__}; expected the dict of an nn.Module."
            )
        self._state = state

    @property
    def short_name(self) -> str:
        """The class name without its module."""
        return self.imitation_name.rsplit(".", 1)[-1]

    def get(self, key: str, default: Any = None) -> Any:
        """Return a saved attribute (a plain attribute or a submodule)."""
        state = self.__dict__.get("_state", {})
        if key in state.get("_modules", {}):
            return state["_modules"][key]
        return state.get(key, default)

    def __repr__(self) -> str:
        return f"<imitation {self.short_name}>"


def _stub(module: str, name: str) -> type[ImitationObject]:
    return type(name, (ImitationObject,), {"imitation_name": f"{module}.{name}"})


#: The imitation classes that have rewardnets equivalents, by pickle name.
IMITATION_CLASSES: dict[str, type[ImitationObject]] = {
    f"{module}.{name}": _stub(module, name)
    for module, names in {
        _REWARD_NETS: (
            "BasicRewardNet",
            "CnnRewardNet",
            "ShapedRewardNet",
            "BasicShapedRewardNet",
            "NormalizedRewardNet",
            "RewardEnsemble",
            "AddSTDRewardWrapper",
            "BasicPotentialMLP",
            "BasicPotentialCNN",
        ),
        _NETWORKS: ("RunningNorm", "EMANorm"),
    }.items()
    for name in names
}


def imitation_class(module: str, name: str) -> Any:
    """Resolve an ``imitation`` pickle name to its placeholder.

    Raises:
        UnsafePickleError: The name has no rewardnets equivalent.
    """
    key = f"{module}.{name}"
    if key in IMITATION_CLASSES:
        return IMITATION_CLASSES[key]
    if key == f"{_NETWORKS}.SqueezeLayer":
        from rewardnets.framework.networks import SqueezeLayer

        return SqueezeLayer
    known = ", ".join(sorted(k.rsplit(".", 1)[-1] for k in IMITATION_CLASSES))
    raise UnsafePickleError(
        f"the pickle refers to {key}, an imitation name that rewardnets cannot migrate "
        f"(it migrates {known}). imitation is never imported; pass trust_pickle=True "
        "with imitation installed to load the file as it is."
    )


# ---------------------------------------------------------------------- structure
def _children(module: Any) -> dict[str, Any]:
    state = module._state if isinstance(module, ImitationObject) else vars(module)
    return dict(state.get("_modules") or {})


def _layers(seq: Any, what: str) -> tuple[str, list[tuple[str, Any]]]:
    if not isinstance(seq, nn.Sequential):
        raise SerializationError(f"Expected {what} to be an nn.Sequential, got {seq!r}.")
    items = list(_children(seq).items())
    finals = [key for key, _ in items if key.endswith("dense_final")]
    if len(finals) != 1:
        raise SerializationError(
            f"{what} has layers {[k for k, _ in items]}; expected one '*dense_final' layer "
            "as imitation's build_mlp/build_cnn make."
        )
    prefix = finals[0][: -len("dense_final")]
    return prefix, [(key[len(prefix) :], layer) for key, layer in items]


def _common_kwargs(prefix: str, layers: list[tuple[str, Any]], hidden: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if prefix:
        kwargs["name"] = prefix[:-1]
    named = dict(layers)
    if hidden:
        activation = named.get("act0")
        kwargs["activation"] = None if activation is None else type(activation)
    dropout = named.get("dropout0")
    if isinstance(dropout, nn.Dropout):
        kwargs["dropout_prob"] = float(dropout.p)
    return kwargs


def _mlp_kwargs(seq: Any, what: str) -> dict[str, Any]:
    prefix, layers = _layers(seq, what)
    named = dict(layers)
    hid_sizes = []
    i = 0
    while f"dense{i}" in named:
        hid_sizes.append(int(named[f"dense{i}"].out_features))
        i += 1
    kwargs: dict[str, Any] = {"hid_sizes": hid_sizes}
    kwargs.update(_common_kwargs(prefix, layers, len(hid_sizes)))
    if "normalize_input" in named:
        kwargs["normalize_input_layer"] = _norm_factory(named["normalize_input"], what)
    return kwargs


def _cnn_kwargs(seq: Any, what: str) -> dict[str, Any]:
    prefix, layers = _layers(seq, what)
    named = dict(layers)
    convs = []
    i = 0
    while f"conv{i}" in named:
        convs.append(named[f"conv{i}"])
        i += 1
    kwargs: dict[str, Any] = {"hid_channels": [int(c.out_channels) for c in convs]}
    if convs:
        first = convs[0]
        kwargs["kernel_size"] = int(first.kernel_size[0])
        kwargs["stride"] = int(first.stride[0])
        padding = first.padding
        kwargs["padding"] = padding if isinstance(padding, str) else int(padding[0])
    kwargs.update(_common_kwargs(prefix, layers, len(convs)))
    return kwargs


def _norm_factory(layer: Any, what: str) -> Callable[[int], nn.Module]:
    from rewardnets.framework.networks import EMANorm, RunningNorm

    if isinstance(layer, nn.Identity):
        return nn.Identity
    if not isinstance(layer, ImitationObject) or layer.short_name not in ("RunningNorm", "EMANorm"):
        raise SerializationError(
            f"{what} uses the normalisation layer {layer!r}; rewardnets migrates "
            "imitation's RunningNorm and EMANorm and nn.Identity."
        )
    eps = float(layer.get("eps", 1e-5))
    if layer.short_name == "RunningNorm":
        return RunningNorm if eps == 1e-5 else functools.partial(RunningNorm, eps=eps)
    decay = float(layer.get("decay", 0.99))
    if (decay, eps) == (0.99, 1e-5):
        return EMANorm
    return functools.partial(EMANorm, decay=decay, eps=eps)


# ----------------------------------------------------------------------- converters
def _spaces(obj: ImitationObject) -> tuple[spaces.Space[Any], spaces.Space[Any]]:
    obs, act = obj.get("observation_space"), obj.get("action_space")
    if not isinstance(obs, spaces.Space) or not isinstance(act, spaces.Space):
        raise SerializationError(
            f"The saved imitation {obj.short_name} has no gymnasium observation and "
            f"action spaces (got {obs!r} and {act!r})."
        )
    return obs, act


def _flags(obj: ImitationObject, *names: str) -> dict[str, bool]:
    return {name: bool(obj.get(name)) for name in names}


def _require(obj: Any, names: tuple[str, ...], what: str) -> ImitationObject:
    if not isinstance(obj, ImitationObject) or obj.short_name not in names:
        raise SerializationError(
            f"Expected {what} to be imitation's {' or '.join(names)}, got {obj!r}."
        )
    return obj


def _plugin(name: str) -> Callable[..., nn.Module]:
    from rewardnets.plugin_registry.registry import registry

    entry = registry.find(name)
    if entry is None:
        raise SerializationError(
            f"Migrating an imitation net needs rewardnets' {name}, which no plugin provides "
            "(is the built-in plugin disabled?)."
        )
    return entry.obj


def _basic(obj: ImitationObject, parent_obs: Any = None) -> nn.Module:
    obs, act = _spaces(obj)
    kwargs = _mlp_kwargs(obj.get("mlp"), "BasicRewardNet.mlp")
    flags = _flags(obj, "use_state", "use_action", "use_next_state", "use_done")
    return _plugin("BasicRewardNet")(
        obs, act, normalize_images=bool(obj.get("normalize_images", True)), **flags, **kwargs
    )


def _cnn(obj: ImitationObject, parent_obs: Any = None) -> nn.Module:
    obs, act = _spaces(obj)
    kwargs = _cnn_kwargs(obj.get("cnn"), "CnnRewardNet.cnn")
    flags = _flags(obj, "use_state", "use_action", "use_next_state", "use_done", "hwc_format")
    return _plugin("CNNRewardNet")(
        obs, act, normalize_images=bool(obj.get("normalize_images", True)), **flags, **kwargs
    )


def _potential(obj: Any, obs: spaces.Space[Any]) -> nn.Module:
    obj = _require(obj, ("BasicPotentialMLP", "BasicPotentialCNN"), "the shaping potential")
    if obj.short_name == "BasicPotentialMLP":
        kwargs = _mlp_kwargs(obj.get("_potential_net"), "BasicPotentialMLP")
        kwargs.pop("flatten_input", None)
        return _plugin("BasicPotentialMLP")(obs, **kwargs)
    kwargs = _cnn_kwargs(obj.get("_potential_net"), "BasicPotentialCNN")
    kwargs["hid_sizes"] = kwargs.pop("hid_channels")
    return _plugin("BasicPotentialCNN")(obs, hwc_format=bool(obj.get("hwc_format", True)), **kwargs)


def _same_kwargs(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    def canon(value: Any) -> Any:
        if isinstance(value, functools.partial):
            return (value.func, tuple(sorted(value.keywords.items())))
        return value

    return {k: canon(v) for k, v in a.items()} == {k: canon(v) for k, v in b.items()}


def _shaped(obj: ImitationObject, parent_obs: Any = None) -> nn.Module:
    obs, act = _spaces(obj)
    base_obj, potential_obj = obj.get("_base"), obj.get("potential")
    discount = float(obj.get("discount_factor", 0.99))
    if (
        obj.short_name == "BasicShapedRewardNet"
        and isinstance(base_obj, ImitationObject)
        and base_obj.short_name == "BasicRewardNet"
        and isinstance(potential_obj, ImitationObject)
        and potential_obj.short_name == "BasicPotentialMLP"
    ):
        reward_kw = _mlp_kwargs(base_obj.get("mlp"), "BasicShapedRewardNet.base.mlp")
        potential_kw = _mlp_kwargs(potential_obj.get("_potential_net"), "the potential")
        potential_kw.pop("flatten_input", None)
        reward_hid, potential_hid = reward_kw.pop("hid_sizes"), potential_kw.pop("hid_sizes")
        if _same_kwargs(reward_kw, potential_kw):
            flags = _flags(base_obj, "use_state", "use_action", "use_next_state", "use_done")
            return _plugin("BasicShapedRewardNet")(
                obs,
                act,
                reward_hid_sizes=reward_hid,
                potential_hid_sizes=potential_hid,
                discount_factor=discount,
                **flags,
                **reward_kw,
            )
    base = convert_net(base_obj, "ShapedRewardNet.base")
    return _plugin("ShapedRewardNet")(
        base, _potential(potential_obj, obs), discount_factor=discount
    )


def _normalized(obj: ImitationObject, parent_obs: Any = None) -> nn.Module:
    base = convert_net(obj.get("_base"), "NormalizedRewardNet.base")
    factory = _norm_factory(obj.get("normalize_output_layer"), "NormalizedRewardNet")
    return _plugin("NormalizedRewardNet")(base, factory)


def _ensemble(obj: ImitationObject, parent_obs: Any = None) -> nn.Module:
    obs, act = _spaces(obj)
    members = obj.get("members")
    if not isinstance(members, nn.ModuleList):
        raise SerializationError(
            f"Expected RewardEnsemble.members to be a ModuleList, got {members!r}."
        )
    converted = [
        convert_net(m, f"RewardEnsemble.members[{i}]")
        for i, m in enumerate(_children(members).values())
    ]
    return _plugin("RewardEnsemble")(obs, act, converted)


def _add_std(obj: ImitationObject, parent_obs: Any = None) -> nn.Module:
    base = convert_net(obj.get("_base"), "AddSTDRewardWrapper.base")
    alpha = float(obj.get("default_alpha", 0.0))
    return _plugin("AddSTDRewardWrapper")(base, default_alpha=alpha)


_CONVERTERS: dict[str, Callable[..., nn.Module]] = {
    "BasicRewardNet": _basic,
    "CnnRewardNet": _cnn,
    "ShapedRewardNet": _shaped,
    "BasicShapedRewardNet": _shaped,
    "NormalizedRewardNet": _normalized,
    "RewardEnsemble": _ensemble,
    "AddSTDRewardWrapper": _add_std,
}


def convert_net(obj: Any, what: str) -> nn.Module:
    """Build the rewardnets net equivalent to a saved imitation net (fresh weights)."""
    if not isinstance(obj, ImitationObject) or obj.short_name not in _CONVERTERS:
        raise SerializationError(
            f"Expected {what} to be one of imitation's {', '.join(_CONVERTERS)}, got {obj!r}."
        )
    try:
        return _CONVERTERS[obj.short_name](obj)
    except SerializationError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise SerializationError(
            f"Cannot rebuild imitation's {obj.short_name} ({what}) as a rewardnets net: {exc}"
        ) from exc


# -------------------------------------------------------------------------- tensors
def _saved_tensors(module: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    state = module._state if isinstance(module, ImitationObject) else vars(module)
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for name, value in (state.get("_parameters") or {}).items():
        if value is not None:
            out[prefix + name] = value
    for name, value in (state.get("_buffers") or {}).items():
        if value is not None and name not in skip:
            out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            # imitation's attribute names (``_base``, ``_potential_net``) are kept:
            # the rewardnets classes accept them in load_state_dict.
            _saved_tensors(child, f"{prefix}{name}.", out)


def convert(obj: Any, where: str) -> nn.Module:
    """Turn an unpickled imitation net into the equivalent rewardnets net.

    Raises:
        SerializationError: The net cannot be rebuilt, or its tensors do not
            fit the rebuilt net.
    """
    net = convert_net(obj, where)
    tensors: dict[str, torch.Tensor] = {}
    _saved_tensors(obj, "", tensors)
    floating = [t.dtype for t in tensors.values() if t.is_floating_point()]
    if floating and floating[0] != torch.float32:
        net = net.to(floating[0])
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise SerializationError(
            f"{where}: the tensors saved by imitation do not fit the rebuilt rewardnets "
            f"{type(net).__name__}: {exc}"
        ) from exc
    net.train(bool(obj.get("training", True)))
    return net
