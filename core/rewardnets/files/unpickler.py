"""Reading ``torch.save`` files without running code from them.

A pickle can call any function it names. :class:`RestrictedUnpickler` resolves
only the names that a saved reward net needs:

1. a fixed allow-list of torch, numpy, gymnasium and standard-library names
   (:func:`allowed_globals`): tensor rebuild functions, dtypes, ``OrderedDict``,
   numpy arrays and random generators, gymnasium spaces;
2. classes that registered plugins provide (reward nets, wrappers, potentials,
   normalisation layers);
3. subclasses of ``torch.nn.Module`` (so also of ``RewardNet``) defined in a
   module that this process has already imported; the lookup reads the
   module's namespace and never imports anything;
4. the classes of ``imitation``'s reward nets, which become placeholders that
   :mod:`rewardnets.files.imitation` turns into the equivalent rewardnets nets.

Every other name is refused with :class:`UnsafePickleError`, which names it.
"""

from __future__ import annotations

import builtins
import collections
import functools
import inspect
import io
import pickle
import sys
import types
from collections.abc import Callable
from typing import IO, Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rewardnets.files.format import SerializationError, UnsafePickleError
from rewardnets.files.pickle_calls import (
    BIT_GENERATORS,
    check_state,
    checked_call,
    checked_new,
    latin1_encode,
)

__all__ = [
    "RestrictedUnpickler",
    "allowed_globals",
    "imported_module_class",
    "load_torch_file",
    "resolve_global",
]

_ALLOWED: dict[str, Any] | None = None


def _qualified(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def allowed_globals() -> dict[str, Any]:
    """Return the fixed allow-list: ``"module.name"`` -> the object it resolves to.

    The objects are taken from modules rewardnets itself imports; a name in a
    file never causes an import.
    """
    global _ALLOWED
    if _ALLOWED is not None:
        return _ALLOWED
    table: dict[str, Any] = {}
    for name in ("set", "frozenset", "bytearray", "complex", "slice", "range"):
        table[f"builtins.{name}"] = getattr(builtins, name)
        table[f"__builtin__.{name}"] = getattr(builtins, name)
    table["_codecs.encode"] = latin1_encode
    table["collections.OrderedDict"] = collections.OrderedDict
    table["functools.partial"] = functools.partial

    # torch: tensors, parameters, dtypes and devices.
    from torch import _utils as torch_utils

    for name in (
        "_rebuild_tensor",
        "_rebuild_tensor_v2",
        "_rebuild_tensor_v3",
        "_rebuild_parameter",
        "_rebuild_parameter_with_state",
    ):
        if hasattr(torch_utils, name):
            table[f"torch._utils.{name}"] = getattr(torch_utils, name)
    table["torch.Size"] = torch.Size
    table["torch.device"] = torch.device
    table["torch.nn.parameter.Parameter"] = nn.Parameter
    table["torch.storage.UntypedStorage"] = torch.UntypedStorage
    table["torch.storage.TypedStorage"] = torch.TypedStorage
    table["torch.serialization._get_layout"] = torch.serialization._get_layout
    for name, value in vars(torch).items():
        if isinstance(value, (torch.dtype, torch.layout)):
            table[f"torch.{name}"] = value

    # numpy: arrays, scalars, dtypes and random generators (gymnasium spaces
    # carry a generator once sampled or seeded).
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    scalar = np.float64(0).__reduce__()[0]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[f"{module}._reconstruct"] = reconstruct
        table[f"{module}.scalar"] = scalar
    table["numpy.ndarray"] = np.ndarray
    table["numpy.dtype"] = np.dtype
    from numpy.random import _pickle as np_random_pickle
    from numpy.random import bit_generator

    for name in ("__bit_generator_ctor", "__generator_ctor", "__randomstate_ctor"):
        if hasattr(np_random_pickle, name):
            table[f"numpy.random._pickle.{name}"] = getattr(np_random_pickle, name)
    for name in ("__pyx_unpickle_SeedSequence", "__pyx_unpickle_SeedlessSeedSequence"):
        if hasattr(bit_generator, name):
            table[f"numpy.random.bit_generator.{name}"] = getattr(bit_generator, name)
    for cls in (
        *BIT_GENERATORS.values(),
        np.random.SeedSequence,
        np.random.Generator,
        np.random.RandomState,
    ):
        table[_qualified(cls)] = cls

    # gymnasium: the spaces reward nets support.
    for space_cls in (
        spaces.Box,
        spaces.Discrete,
        spaces.MultiDiscrete,
        spaces.MultiBinary,
        spaces.Dict,
        spaces.Tuple,
    ):
        table[_qualified(space_cls)] = space_cls
    _ALLOWED = table
    return table


def _plugin_class(module: str, name: str) -> Any:
    from rewardnets.plugin_registry.registry import registry

    for entry in registry:
        obj = entry.obj
        if (
            isinstance(obj, type)
            and issubclass(obj, nn.Module)  # whatever a plugin registers, a file gets modules
            and obj.__module__ == module
            and obj.__qualname__ == name
        ):
            return obj
    return None


def imported_module_class(module: str, name: str) -> Any:
    """Return the ``nn.Module`` subclass ``name`` of the imported ``module``, or None.

    Reads the module's namespace without triggering a module ``__getattr__``, so
    nothing is imported.
    """
    mod = sys.modules.get(module)
    if mod is None:
        return None
    parts = name.split(".")
    obj = vars(mod).get(parts[0])  # a plain look-up: no module __getattr__, no import
    for part in parts[1:]:
        if not isinstance(obj, type):
            return None
        try:
            obj = inspect.getattr_static(obj, part)
        except AttributeError:
            return None
    if isinstance(obj, type) and issubclass(obj, nn.Module):
        return obj
    return None


def resolve_global(module: str, name: str) -> Any:
    """Return what the pickle name ``module.name`` may resolve to.

    Raises:
        UnsafePickleError: The name is not allowed.
    """
    key = f"{module}.{name}"
    if module == "imitation" or module.startswith("imitation."):
        from rewardnets.files.imitation import imitation_class

        return imitation_class(module, name)
    table = allowed_globals()
    if key in table:
        return table[key]
    found = _plugin_class(module, name)
    if found is None:
        found = imported_module_class(module, name)
    if found is not None:
        return found
    if module in sys.modules:
        why = "which is not a torch.nn.Module subclass nor on the allow-list"
    else:
        why = (
            f"whose module {module!r} is not imported (rewardnets never imports a module "
            "that a file names; import it yourself if it defines your own net)"
        )
    raise UnsafePickleError(
        f"the pickle refers to {key}, {why}. Loading it could run code from the file. "
        "Only tensors, numpy arrays, gymnasium spaces, torch.nn.Module subclasses of "
        "imported modules and classes of registered plugins are allowed; pass "
        "trust_pickle=True only if you trust whoever wrote the file."
    )


class RestrictedUnpickler(pickle._Unpickler):
    """An unpickler that resolves names with :func:`resolve_global` only, and calls little.

    Resolving a name is not enough: a pickle can *call* what it resolved with
    arguments of its own (``torch.nn.Linear(20000, 20000)``, ``bytearray(3e9)``).
    So this unpickler (Python's own, whose opcodes can be overridden) checks
    every call a pickle makes:

    * ``REDUCE`` (and the old ``INST``/``OBJ``) may call only the functions
      of :data:`CALLS`, each with its arguments checked so that the work
      stays proportional to the file; a class is never called with the
      file's arguments, so constructors never run;
    * ``NEWOBJ`` creates an instance without running ``__init__``, with no
      arguments (``object.__new__``-style classes only);
    * ``BUILD`` sets an object's state; the states of numpy dtypes and random
      bit generators are checked first (a bad one crashes numpy later).

    Every resolved name is added to :attr:`seen` (``"module.name"``), so that a
    caller can tell which classes a file uses.
    """

    seen: set[str]
    # Set by pickle's Python unpickler while it loads (typeshed does not list them).
    stack: list[Any]
    append: Callable[[Any], None]
    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: IO[bytes], **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.seen = set()

    def find_class(self, module: str, name: str) -> Any:
        """Resolve ``module.name`` if it is allowed, else raise."""
        obj = resolve_global(module, name)
        self.seen.add(f"{module}.{name}")
        return obj

    def load_reduce(self) -> None:
        """``REDUCE``: call an allowed function with checked arguments."""
        args = self.stack.pop()
        self.stack[-1] = checked_call(self.stack[-1], args)

    def _instantiate(self, klass: Any, args: Any) -> None:
        """``INST`` and ``OBJ`` (protocols 0 and 1): as ``REDUCE``."""
        self.append(checked_call(klass, tuple(args)))

    def load_newobj(self) -> None:
        """``NEWOBJ``: an instance whose ``__init__`` never runs."""
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(checked_new(cls, args, {}))

    def load_newobj_ex(self) -> None:
        """``NEWOBJ_EX``: as ``NEWOBJ``."""
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(checked_new(cls, args, kwargs))

    def load_build(self) -> None:
        """``BUILD``: set the state of the object below it, once it is checked."""
        check_state(self.stack[-2], self.stack[-1])
        super().load_build()  # type: ignore[misc]

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build


def _pickle_module(seen: set[str]) -> types.SimpleNamespace:
    """A module-like object for ``torch.load(pickle_module=...)``."""

    class _Unpickler(RestrictedUnpickler):
        def __init__(self, file: IO[bytes], **kwargs: Any) -> None:
            super().__init__(file, **kwargs)
            self.seen = seen

    def load(file: IO[bytes], **kwargs: Any) -> Any:
        return _Unpickler(file, **kwargs).load()

    return types.SimpleNamespace(
        __name__="rewardnets.files.unpickler",
        Unpickler=_Unpickler,
        load=load,
        UnpicklingError=pickle.UnpicklingError,
    )


def load_torch_file(
    data: bytes,
    where: str,
    *,
    map_location: Any = None,
    trust_pickle: bool = False,
    seen: set[str] | None = None,
) -> Any:
    """Unpickle the bytes of a ``torch.save`` file.

    Args:
        data: The file's content.
        where: How error messages name the file.
        map_location: Passed to :func:`torch.load`.
        trust_pickle: Load with plain :func:`torch.load`, which runs whatever
            code the file names. Only for files you trust.
        seen: When given, receives the ``"module.name"`` of every resolved name.

    Raises:
        UnsafePickleError: The file names something outside the allow-list.
        SerializationError: The file cannot be unpickled.
    """
    from rewardnets.plugin_registry.registry import registry

    registry.discover()  # plugin classes are found in their (imported) modules
    try:
        if trust_pickle:
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)
        return torch.load(
            io.BytesIO(data),
            map_location=map_location,
            weights_only=False,
            pickle_module=_pickle_module(seen if seen is not None else set()),
        )
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"Refused to load {where}: {exc}") from None
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(
            f"{where} cannot be loaded as a torch.save file: {type(exc).__name__}: {exc}"
        ) from exc
