"""What a ``torch.save`` pickle may call, and the states it may set, when read without trust.

:class:`~rewardnets.files.unpickler.RestrictedUnpickler` resolves only
allowed names; this module bounds what the pickle does with them:

* :func:`checked_call` (``REDUCE``): only the functions of a fixed table,
  each with its arguments checked so that a small file cannot ask for a large
  allocation (``bytearray(3 * 10**9)``, ``frozenset(range(10**9))``, an
  ndarray of a huge shape). Classes are never called with a file's
  arguments: a module or a space is rebuilt from its state, its constructor
  never runs (``torch.nn.Linear(20000, 20000)`` in a file is refused);
* :func:`checked_new` (``NEWOBJ``): a bare instance of a module, a space or a
  placeholder, made without arguments;
* :func:`check_state` (``BUILD``): numpy dtypes get only the plain states
  numpy writes, and random bit generators only states within their ranges (an
  MT19937 position past its key crashes the process on the first draw).
"""

from __future__ import annotations

import builtins
import codecs
import collections
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rewardnets.files.format import UnsafePickleError

__all__ = [
    "BIT_GENERATORS",
    "MAX_PICKLED_ITEMS",
    "check_state",
    "checked_call",
    "checked_new",
    "latin1_encode",
]

#: The most items a pickle's ``set``, ``frozenset``, ``OrderedDict`` or
#: ``bytearray`` argument may have (each is already in the file, so this only
#: bounds how long one call may take).
MAX_PICKLED_ITEMS = 1 << 24

Check = Callable[[tuple[Any, ...]], None]


def latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as pickles of bytes use it, limited to latin-1."""
    if codecs.lookup(encoding).name != "iso8859-1" or not isinstance(text, str):
        raise UnsafePickleError(
            f"_codecs.encode with encoding {encoding!r}: pickles of bytes use 'latin1' only."
        )
    return text.encode("latin1", errors)


def _kind(value: Any) -> str:
    """``"an int"``, ``"a list"``: what a value is, for messages."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _refuse(what: str, why: str) -> UnsafePickleError:
    return UnsafePickleError(
        f"the pickle calls {what} {why}. Loading it could use memory or time out of "
        "proportion to the file; pass trust_pickle=True only if you trust whoever wrote it."
    )


def _arity(name: str, args: tuple[Any, ...], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        raise _refuse(name, f"with {len(args)} arguments; expected {low} to {high}")


def _materialised(name: str, value: Any) -> None:
    """``value`` is data that the file holds, not a lazy sequence to expand."""
    if not isinstance(value, (list, tuple, set, frozenset, dict, bytes, str)):
        raise _refuse(name, f"on {_kind(value)}; expected a list or tuple of items")
    if len(value) > MAX_PICKLED_ITEMS:
        raise _refuse(name, f"on {len(value)} items; at most {MAX_PICKLED_ITEMS}")


def _no_hooks(name: str, hooks: Any) -> None:
    if hooks:
        raise _refuse(name, "with backward hooks; saved reward nets have none")


def _collection(name: str) -> Check:
    def check(args: tuple[Any, ...]) -> None:
        _arity(name, args, 0, 1)
        if args:
            _materialised(name, args[0])

    return check


def _bytearray(args: tuple[Any, ...]) -> None:
    _arity("bytearray", args, 0, 3)
    if args and not isinstance(args[0], (bytes, str)):
        raise _refuse("bytearray", f"on {_kind(args[0])}; expected bytes or text")
    if args:
        _materialised("bytearray", args[0])


def _scalars(name: str, count: int) -> Check:
    def check(args: tuple[Any, ...]) -> None:
        _arity(name, args, 0, count)
        for arg in args:
            if not isinstance(arg, (int, float, complex, str, type(None))):
                raise _refuse(name, f"on {_kind(arg)}; expected numbers")

    return check


def _size(args: tuple[Any, ...]) -> None:
    _arity("torch.Size", args, 1, 1)
    _materialised("torch.Size", args[0])
    if not all(isinstance(n, int) for n in args[0]):
        raise _refuse("torch.Size", "with sizes that are not integers")


def _rebuild_tensor(name: str, hooks_at: int | None) -> Check:
    def check(args: tuple[Any, ...]) -> None:
        if not args or not isinstance(args[0], (torch.TypedStorage, torch.UntypedStorage)):
            raise _refuse(name, "without a storage of the file as its first argument")
        if hooks_at is not None and len(args) > hooks_at:
            _no_hooks(name, args[hooks_at])

    return check


def _rebuild_parameter(name: str, with_state: bool) -> Check:
    def check(args: tuple[Any, ...]) -> None:
        _arity(name, args, 3, 4 if with_state else 3)
        if not isinstance(args[0], torch.Tensor):
            raise _refuse(name, f"on {_kind(args[0])}; expected a tensor")
        _no_hooks(name, args[2])
        if with_state:
            _plain_attributes(name, args[3])

    return check


def _plain_attributes(name: str, state: Any) -> None:
    """An object state that sets only ordinary attributes (no ``__class__`` and the like)."""
    parts = state if isinstance(state, tuple) else (state,)
    for part in parts:
        if part is None:
            continue
        if not isinstance(part, Mapping) or any(
            not isinstance(key, str) or key.startswith("__") for key in part
        ):
            raise _refuse(name, "with a state that is not a table of plain attributes")


def _partial(args: tuple[Any, ...]) -> None:
    _arity("functools.partial", args, 1, 1)
    func = args[0]
    if not (isinstance(func, type) and issubclass(func, nn.Module)):
        raise _refuse("functools.partial", f"on {func!r}; expected an nn.Module class")


def _dtype(args: tuple[Any, ...]) -> None:
    _arity("numpy.dtype", args, 1, 3)
    if not isinstance(args[0], str) or len(args[0]) > 32:
        raise _refuse("numpy.dtype", f"on {args[0]!r}; expected a dtype name such as 'f4'")


def _reconstruct(args: tuple[Any, ...]) -> None:
    _arity("numpy ndarray reconstruction", args, 3, 3)
    cls, shape = args[0], args[1]
    if cls is not np.ndarray:
        raise _refuse("numpy ndarray reconstruction", f"for {cls!r}; expected numpy.ndarray")
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise _refuse("numpy ndarray reconstruction", f"with shape {shape!r}")
    if math.prod(shape) > 1:  # numpy writes (0,): the data come with the state
        raise _refuse("numpy ndarray reconstruction", f"with shape {shape}; numpy writes (0,)")


def _scalar(args: tuple[Any, ...]) -> None:
    _arity("numpy scalar", args, 1, 2)
    if not isinstance(args[0], np.dtype):
        raise _refuse("numpy scalar", f"with {type(args[0]).__name__}; expected a dtype")


#: The bit generators a space's random generator may hold, by name.
BIT_GENERATORS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        np.random.PCG64,
        np.random.PCG64DXSM,
        np.random.MT19937,
        np.random.Philox,
        np.random.SFC64,
    )
}


def _bit_generator_ctor(args: tuple[Any, ...]) -> None:
    _arity("a numpy bit generator constructor", args, 0, 1)
    if args and args[0] not in BIT_GENERATORS.values() and args[0] not in BIT_GENERATORS:
        raise _refuse("a numpy bit generator constructor", f"for {args[0]!r}")


def _generator_ctor(args: tuple[Any, ...]) -> None:
    _arity("a numpy generator constructor", args, 0, 1)
    if args and not isinstance(args[0], (np.random.BitGenerator, str)):
        raise _refuse("a numpy generator constructor", f"on {_kind(args[0])}")
    if args and isinstance(args[0], str) and args[0] not in BIT_GENERATORS:
        raise _refuse("a numpy generator constructor", f"for {args[0]!r}")


def _seed_sequence(args: tuple[Any, ...]) -> None:
    _arity("numpy SeedSequence unpickling", args, 3, 3)
    if not (
        isinstance(args[0], type) and issubclass(args[0], np.random.bit_generator.ISeedSequence)
    ):
        raise _refuse("numpy SeedSequence unpickling", f"for {args[0]!r}")
    if args[2] is not None:
        _seed_sequence_state(args[2])


def _calls() -> dict[Any, Check]:
    from numpy.random import _pickle as np_random_pickle
    from numpy.random import bit_generator
    from torch import _utils as torch_utils

    table: dict[Any, Check] = {
        latin1_encode: _scalars("_codecs.encode", 3),
        builtins.set: _collection("set"),
        builtins.frozenset: _collection("frozenset"),
        builtins.bytearray: _bytearray,
        builtins.complex: _scalars("complex", 2),
        builtins.slice: _scalars("slice", 3),
        builtins.range: _scalars("range", 3),
        collections.OrderedDict: _collection("OrderedDict"),
        functools.partial: _partial,
        torch.Size: _size,
        torch.device: _scalars("torch.device", 2),
        torch.serialization._get_layout: _scalars("torch layout", 1),
        np.dtype: _dtype,
        np.ndarray.__reduce__(np.zeros(1))[0]: _reconstruct,
        np.float64(0).__reduce__()[0]: _scalar,
    }
    rebuilds = {
        "_rebuild_tensor": None,
        "_rebuild_tensor_v2": 5,
        "_rebuild_tensor_v3": 5,
    }
    for name, hooks_at in rebuilds.items():
        if hasattr(torch_utils, name):
            table[getattr(torch_utils, name)] = _rebuild_tensor(name, hooks_at)
    table[torch_utils._rebuild_parameter] = _rebuild_parameter("_rebuild_parameter", False)
    if hasattr(torch_utils, "_rebuild_parameter_with_state"):
        table[torch_utils._rebuild_parameter_with_state] = _rebuild_parameter(
            "_rebuild_parameter_with_state", True
        )
    for name, check in (
        ("__bit_generator_ctor", _bit_generator_ctor),
        ("__generator_ctor", _generator_ctor),
        ("__randomstate_ctor", _generator_ctor),
    ):
        if hasattr(np_random_pickle, name):
            table[getattr(np_random_pickle, name)] = check
    for name in ("__pyx_unpickle_SeedSequence", "__pyx_unpickle_SeedlessSeedSequence"):
        if hasattr(bit_generator, name):
            table[getattr(bit_generator, name)] = _seed_sequence
    return table


_CALLS: dict[Any, Check] | None = None


def _describe(func: Any) -> str:
    name = getattr(func, "__qualname__", None) or type(func).__name__
    return f"{getattr(func, '__module__', '?')}.{name}"


def checked_call(func: Any, args: Any) -> Any:
    """Call ``func(*args)`` for a pickle's ``REDUCE``, if the table allows it.

    Raises:
        UnsafePickleError: ``func`` is not a function the table allows (a
            class, above all), or its arguments are out of bounds.
    """
    global _CALLS
    if _CALLS is None:
        _CALLS = _calls()
    if not isinstance(args, tuple):
        raise _refuse(_describe(func), f"with arguments of type {type(args).__name__}")
    try:
        check = _CALLS.get(func)
    except TypeError:  # unhashable: not one of ours
        check = None
    if check is None:
        if isinstance(func, type):
            raise _refuse(
                f"the constructor of {_describe(func)}",
                "with arguments from the file; saved objects are rebuilt from their state, "
                "and no constructor runs",
            )
        raise _refuse(_describe(func), "which no saved reward net calls")
    check(args)
    try:
        return func(*args)
    except UnsafePickleError:
        raise
    except (TypeError, ValueError, OverflowError, IndexError, KeyError, RuntimeError) as exc:
        raise UnsafePickleError(
            f"the pickle calls {_describe(func)} with arguments it refuses: {exc}"
        ) from exc


#: Classes whose bare instances (``cls.__new__(cls)``) a pickle may make.
_NEW_OK: tuple[type, ...] = (nn.Module, spaces.Space)


def checked_new(cls: Any, args: Any, kwargs: Any) -> Any:
    """Make a bare instance for a pickle's ``NEWOBJ``: no arguments, no ``__init__``.

    Raises:
        UnsafePickleError: ``cls`` is not a module, space or placeholder class,
            or the pickle passes arguments.
    """
    from rewardnets.files.imitation import ImitationObject

    if not isinstance(cls, type):
        raise UnsafePickleError(f"the pickle makes an instance of {cls!r}, which is not a class.")
    if not issubclass(cls, (*_NEW_OK, ImitationObject)):
        raise _refuse(
            f"{_describe(cls)}.__new__",
            "; a file may make bare instances only of modules, spaces and migrated imitation "
            "classes",
        )
    if args or kwargs:
        raise _refuse(f"{_describe(cls)}.__new__", "with arguments; numpy and torch write none")
    # object.__new__ itself, not the class's own __new__: nothing of the class
    # runs until its state is set (what a class's __new__ records, such as
    # Configurable's constructor arguments, comes back with that state).
    return object.__new__(cls)


# ------------------------------------------------------------------------- states
def check_state(inst: Any, state: Any) -> None:
    """Check the state a pickle's ``BUILD`` sets on ``inst``, where numpy would trust it.

    Raises:
        UnsafePickleError: A dtype state other than numpy's plain ones, or a
            random generator state out of range.
    """
    if isinstance(inst, np.dtype):
        _dtype_state(inst, state)
    elif isinstance(inst, np.random.BitGenerator):
        _bit_generator_state(type(inst).__name__, state)
    elif isinstance(inst, np.random.RandomState):
        _random_state_state(state)
    elif isinstance(inst, np.random.bit_generator.ISeedSequence):
        _seed_sequence_state(state)
    elif isinstance(inst, (nn.Module, spaces.Space)) and not isinstance(state, Mapping):
        raise UnsafePickleError(
            f"the pickle sets the state of a {type(inst).__name__} to a "
            f"{type(state).__name__}; expected a table of attributes."
        )


def _dtype_state(inst: np.dtype[Any], state: Any) -> None:
    plain = (
        isinstance(state, tuple)
        and len(state) in (8, 9)
        and state[0] in (3, 4)
        and state[1] in ("<", ">", "|", "=")
        and state[2] is None  # no subarray
        and state[3] is None  # no field names
        and state[4] is None  # no fields
        and state[5] == -1
        and state[6] == -1
        and state[7] == inst.flags
        and (len(state) == 8 or state[8] is None)
    )
    if not plain:
        raise UnsafePickleError(
            f"the pickle gives numpy dtype {inst} the state {str(state)[:120]}; only the "
            "plain states numpy writes for a number dtype are accepted."
        )


def _bad_generator(name: str, why: str) -> UnsafePickleError:
    return UnsafePickleError(
        f"the pickle gives a numpy {name} bit generator a state {why}; numpy would crash "
        "on its first draw. The file is damaged or hostile."
    )


def _int_in(value: Any, low: int, high: int) -> bool:
    return (
        isinstance(value, (int, np.integer))
        and not isinstance(value, bool)
        and bool(low <= value <= high)
    )


def _array_of(value: Any, length: int) -> bool:
    return isinstance(value, np.ndarray) and value.shape == (length,)


def _bit_generator_state(name: str, state: Any) -> None:
    if isinstance(state, tuple):  # (state, seed sequence) in numpy 2
        if len(state) != 2:
            raise _bad_generator(name, f"tuple of {len(state)} items")
        if state[1] is not None and not isinstance(state[1], np.random.bit_generator.ISeedSequence):
            raise _bad_generator(name, f"with a seed sequence of type {type(state[1]).__name__}")
        state = state[0]
    if not isinstance(state, Mapping) or state.get("bit_generator") != name:
        raise _bad_generator(name, "that is not a state of this generator")
    inner = state.get("state")
    if not isinstance(inner, Mapping):
        raise _bad_generator(name, "without its inner state")
    if name != "MT19937" and not _int_in(state.get("has_uint32"), 0, 1):
        raise _bad_generator(name, f"with has_uint32={state.get('has_uint32')!r}")
    if name == "MT19937":
        ok = _array_of(inner.get("key"), 624) and _int_in(inner.get("pos"), 0, 624)
        detail = f"with pos={inner.get('pos')!r} (expected 0 to 624 over a key of 624 words)"
    elif name == "Philox":
        ok = (
            _array_of(inner.get("counter"), 4)
            and _array_of(inner.get("key"), 2)
            and _array_of(state.get("buffer"), 4)
            and _int_in(state.get("buffer_pos"), 0, 4)
        )
        detail = f"with buffer_pos={state.get('buffer_pos')!r} (expected 0 to 4)"
    elif name == "SFC64":
        ok = _array_of(inner.get("state"), 4)
        detail = "whose state is not 4 words"
    else:  # PCG64, PCG64DXSM: two integers, masked by numpy
        ok = isinstance(inner.get("state"), int) and isinstance(inner.get("inc"), int)
        detail = "whose state and increment are not integers"
    if not ok:
        raise _bad_generator(name, detail)


def _random_state_state(state: Any) -> None:
    if not isinstance(state, Mapping) or not isinstance(state.get("bit_generator"), str):
        raise _bad_generator("RandomState", "that is not a table naming its bit generator")
    name = state["bit_generator"]
    if name not in BIT_GENERATORS:
        raise _bad_generator("RandomState", f"naming bit generator {name!r}")
    inner = {k: v for k, v in state.items() if k not in ("has_gauss", "gauss")}
    if name != "MT19937":
        inner.setdefault("has_uint32", 0)
    _bit_generator_state(name, inner)


def _seed_sequence_state(state: Any) -> None:
    # (entropy, n_children_spawned, pool, pool_size, spawn_key)
    ok = (
        isinstance(state, tuple)
        and len(state) == 5
        and _int_in(state[1], 0, 1 << 62)
        and _int_in(state[3], 1, 1 << 16)
        and isinstance(state[2], np.ndarray)
        and state[2].dtype == np.uint32
        and state[2].shape == (state[3],)
        and isinstance(state[4], tuple)
    )
    if not ok:
        raise UnsafePickleError(
            f"the pickle gives a numpy SeedSequence the state {str(state)[:120]}; expected "
            "(entropy, children spawned, a pool of pool_size words, pool_size, spawn key)."
        )
