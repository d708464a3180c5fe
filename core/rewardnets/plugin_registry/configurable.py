"""Constructor arguments that a module remembers, so that it can be written as data."""

from __future__ import annotations

import functools
import inspect
from typing import Any, ClassVar

from rewardnets.errors import RewardNetsError

__all__ = ["CONFIG_REF_KINDS", "Configurable", "SpecError", "init_kwargs", "remember_arguments"]

#: What a ``config_refs`` entry may say a constructor argument refers to.
CONFIG_REF_KINDS = ("reward_net", "potential", "norm_layer", "object")


class SpecError(RewardNetsError, ValueError):
    """A config or spec that cannot be built, or a net that cannot be written as data."""


class Configurable:
    """Mixin that remembers the arguments a module was constructed with.

    ``RewardNet`` inherits it, so every reward net and wrapper remembers its
    arguments. Other classes need not: the registry remembers the arguments
    of every potential class it holds (:func:`remember_arguments`).

    Attributes:
        config_refs: Maps constructor parameters whose values are not plain data
            to what they refer to: ``"reward_net"`` (a reward net, written as
            its spec), ``"potential"`` (a potential module, written as its
            registered name and arguments), ``"norm_layer"`` (a normalisation
            layer class or factory, written as its registered name) or
            ``"object"`` (a class or function, written as
            ``"package.module:Name"``). Any class may declare it; it need not
            inherit this mixin.
    """

    config_refs: ClassVar[dict[str, str]] = {}

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        """Create the instance and remember the arguments it is constructed with."""
        self = super().__new__(cls)
        object.__setattr__(self, "_init_args", (args, kwargs))
        return self


def init_kwargs(obj: Any) -> dict[str, Any]:
    """Return the constructor arguments of ``obj`` by parameter name.

    Raises:
        SpecError: ``obj`` was not built by calling its class.
    """
    try:
        args, kwargs = obj.__dict__["_init_args"]
    except KeyError:
        raise SpecError(
            f"{type(obj).__name__} does not remember its constructor arguments, so it "
            "cannot be written as data. Register its class through a plugin (the "
            "registry makes every registered class remember them) and build it after "
            "`import rewardnets`, or inherit rewardnets.Configurable."
        ) from None
    sig = inspect.signature(type(obj).__init__)
    bound = sig.bind(None, *args, **kwargs)
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for i, (name, value) in enumerate(bound.arguments.items()):
        if i == 0:
            continue  # self
        param = sig.parameters[name]
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif param.kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                raise SpecError(
                    f"{type(obj).__name__} was given extra positional arguments, "
                    "which a spec cannot name; pass them by keyword."
                )
        else:
            out[name] = value
    return out


def remember_arguments(cls: type) -> None:
    """Make instances of ``cls`` remember the arguments they are constructed with.

    The registry calls it for each potential class a plugin registers, so
    that such a class needs no mixin to be saved. ``cls.__init__`` is wrapped
    once; only instances whose class is exactly ``cls`` are recorded (a
    subclass records its own arguments if it is registered too). Classes that
    inherit :class:`Configurable`, and torch's own classes, are left alone.

    Args:
        cls: The class.
    """
    if issubclass(cls, Configurable) or cls.__dict__.get("_rewardnets_remembers"):
        return
    if cls.__module__.split(".")[0] == "torch":
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if type(self) is cls and "_init_args" not in self.__dict__:
            object.__setattr__(self, "_init_args", (args, kwargs))
        original(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[method-assign]
    cls._rewardnets_remembers = True  # type: ignore[attr-defined]
