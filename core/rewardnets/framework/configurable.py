"""Constructor arguments that a module remembers, so that it can be written as data."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from rewardnets.errors import RewardNetsError

__all__ = ["Configurable", "SpecError", "init_kwargs"]


class SpecError(RewardNetsError, ValueError):
    """A config or spec that cannot be built, or a net that cannot be written as data."""


class Configurable:
    """Mixin that remembers the arguments a module was constructed with.

    Attributes:
        config_refs: Maps constructor parameters whose values are not plain data
            to what they refer to: ``"reward_net"``, ``"potential"``,
            ``"norm_layer"`` or ``"object"`` (a class or function, written as
            ``"package.module:Name"``).
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
            f"{type(obj).__name__} does not remember its constructor arguments; "
            "only nets built by calling their class have a spec."
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
