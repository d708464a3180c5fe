"""The plugin registry: what every plugin contributes, found by name.

Plugins are found through the ``rewardnets`` entry-point group. Discovery is
lazy (the first look-up triggers it, never ``import rewardnets``), happens once
and is guarded by a lock. A plugin that fails to import or to register is
recorded with its distribution and the error, a warning is issued, and the
other plugins keep working.

Environment variables:
    REWARDNETS_PLUGINS: comma-separated entry-point or distribution names; when
        set, only these plugins load (set it to an empty string to load none).
    REWARDNETS_DISABLE_PLUGINS: comma-separated entry-point or distribution
        names that are not loaded.
    REWARDNETS_TRACE_PLUGINS: when set to a non-empty value, print each
        registration to standard error as it happens.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pluggy

from rewardnets.errors import (
    PluginConflictError,
    PluginError,
    UnknownNameError,
    kind_label,
)
from rewardnets.plugin_registry import hookspecs

__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "PluginInfo",
    "Registration",
    "Registry",
    "registry",
]

ENTRY_POINT_GROUP = "rewardnets"

#: Registry kind -> the hook that contributes it.
KINDS: dict[str, str] = {
    "reward_net": "register_reward_nets",
    "wrapper": "register_wrappers",
    "potential": "register_potentials",
    "norm_layer": "register_norm_layers",
    "reward_type": "register_reward_types",
}


@dataclasses.dataclass(frozen=True)
class Registration:
    """One registered name and where it came from."""

    kind: str
    name: str
    obj: Any
    plugin: str
    distribution: str | None
    version: str | None
    alias_of: str | None = None


@dataclasses.dataclass
class PluginInfo:
    """One plugin: its origin, its state and what it contributed."""

    name: str
    distribution: str | None
    version: str | None
    value: str
    status: str  # "loaded", "broken" or "disabled"
    error: str | None = None
    contributions: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able description of the plugin."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "value": self.value,
            "status": self.status,
            "error": self.error,
            "contributions": {
                kind: sorted(n for k, n in self.contributions if k == kind)
                for kind in KINDS
                if any(k == kind for k, _ in self.contributions)
            },
        }


def _env_names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


class Registry:
    """Names of reward nets, wrappers, normalisation layers and reward types."""

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self._lock = threading.RLock()
        self._discovered = False
        self._pm = pluggy.PluginManager("rewardnets")
        self._pm.add_hookspecs(hookspecs)
        self._entries: dict[str, dict[str, Registration]] = {k: {} for k in KINDS}
        self._conflicts: dict[tuple[str, str], list[Registration]] = {}
        self._plugins: dict[str, PluginInfo] = {}
        self._trace = bool(os.environ.get("REWARDNETS_TRACE_PLUGINS"))

    @property
    def kinds(self) -> dict[str, str]:
        """Each kind of name the registry holds, with the hook that contributes it."""
        return dict(KINDS)

    # ------------------------------------------------------------------ discovery
    @property
    def discovered(self) -> bool:
        """Whether the entry points have been scanned."""
        return self._discovered

    def discover(self) -> None:
        """Scan the entry-point group and load the plugins, once."""
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            self._load_entry_points()
            self._discovered = True

    def _load_entry_points(self) -> None:
        import importlib_metadata

        only = _env_names("REWARDNETS_PLUGINS")
        disabled = _env_names("REWARDNETS_DISABLE_PLUGINS") or set()
        eps = sorted(
            importlib_metadata.entry_points(group=self.group),
            key=lambda ep: (ep.dist.name if ep.dist else "", ep.name),
        )
        for ep in eps:
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            names = {ep.name, dist}
            if (only is not None and not names & only) or names & disabled:
                info = PluginInfo(ep.name, dist, version, ep.value, "disabled")
                self._plugins[self._unique_plugin_name(ep.name, dist)] = info
                continue
            plugin_name = self._unique_plugin_name(ep.name, dist)
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not break the others
                self._record_broken(plugin_name, dist, version, ep.value, exc)
                continue
            try:
                self._register(plugin, plugin_name, dist, version, ep.value, False)
            except Exception as exc:
                self._record_broken(plugin_name, dist, version, ep.value, exc)

    def _unique_plugin_name(self, name: str, dist: str | None) -> str:
        if name not in self._plugins:
            return name
        return f"{dist}:{name}"

    def _record_broken(
        self,
        plugin_name: str,
        dist: str | None,
        version: str | None,
        value: str,
        exc: BaseException,
    ) -> None:
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        self._plugins[plugin_name] = PluginInfo(plugin_name, dist, version, value, "broken", error)
        warnings.warn(
            f"rewardnets plugin {plugin_name!r} (entry point {value!r} of "
            f"distribution {dist} {version}) failed to load and was skipped: "
            f"{error}",
            RuntimeWarning,
            stacklevel=3,
        )

    # ---------------------------------------------------------------- registration
    def register_plugin(
        self,
        plugin: object,
        name: str | None = None,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> str:
        """Register a plugin object by hand (tests, notebooks).

        Args:
            plugin: A module, class or object with ``@hookimpl`` functions.
            name: The plugin's name; defaults to the object's ``__name__``.
            distribution: The distribution to report as the plugin's origin.
            version: The version to report.

        Returns:
            The name the plugin was registered under.

        Raises:
            PluginConflictError: A name it registers is already taken.
            PluginError: The plugin's hooks are invalid or raised.
        """
        self.discover()
        plugin_name = name or getattr(plugin, "__name__", None) or repr(plugin)
        with self._lock:
            if plugin_name in self._plugins:
                raise PluginError(
                    f"A plugin named {plugin_name!r} is already registered; "
                    "pass another name= or unregister it first."
                )
            self._register(plugin, plugin_name, distribution, version, plugin_name, True)
        return plugin_name

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin and every name it registered.

        Raises:
            PluginError: No plugin of that name is registered.
        """
        with self._lock:
            if name not in self._plugins:
                raise PluginError(
                    f"No plugin named {name!r}; registered plugins: "
                    f"{', '.join(sorted(self._plugins))}."
                )
            self._remove_contributions(name)
            del self._plugins[name]
            if self._pm.has_plugin(name):
                self._pm.unregister(name=name)

    def _register(
        self,
        plugin: object,
        plugin_name: str,
        dist: str | None,
        version: str | None,
        value: str,
        strict: bool,
    ) -> None:
        try:
            self._pm.register(plugin, name=plugin_name)
            self._pm.check_pending()
        except Exception as exc:
            if self._pm.has_plugin(plugin_name):
                self._pm.unregister(name=plugin_name)
            raise PluginError(f"Plugin {plugin_name!r} is invalid: {exc}") from exc
        info = PluginInfo(plugin_name, dist, version, value, "loaded")
        self._plugins[plugin_name] = info
        try:
            for kind, hook_name in KINDS.items():
                hook = getattr(self._pm.hook, hook_name)
                for impl in hook.get_hookimpls():
                    if impl.plugin_name != plugin_name:
                        continue
                    impl.function(register=self._make_register(kind, info, strict))
        except Exception:
            self._remove_contributions(plugin_name)
            del self._plugins[plugin_name]
            self._pm.unregister(name=plugin_name)
            raise

    def _make_register(self, kind: str, info: PluginInfo, strict: bool) -> Callable[..., None]:
        def register(name: str, obj: Any, *, aliases: tuple[str, ...] = ()) -> None:
            if not isinstance(name, str) or not name:
                raise PluginError(
                    f"Plugin {info.name!r} registered a {kind_label(kind)} with "
                    f"name {name!r}; expected a non-empty string."
                )
            for alias in (name, *aliases):
                entry = Registration(
                    kind,
                    alias,
                    obj,
                    info.name,
                    info.distribution,
                    info.version,
                    None if alias == name else name,
                )
                self._add(entry, strict)
                info.contributions.append((kind, alias))
                if self._trace:
                    print(
                        f"rewardnets: plugin {info.name!r} registered {kind_label(kind)} {alias!r}",
                        file=sys.stderr,
                    )

        return register

    def _add(self, entry: Registration, strict: bool) -> None:
        table = self._entries[entry.kind]
        key = (entry.kind, entry.name)
        if key in self._conflicts:
            self._conflicts[key].append(entry)
            return
        previous = table.get(entry.name)
        if previous is None:
            table[entry.name] = entry
            return
        if strict:
            raise PluginConflictError(_conflict_message([previous, entry]))
        del table[entry.name]
        self._conflicts[key] = [previous, entry]

    def _remove_contributions(self, plugin_name: str) -> None:
        for table in self._entries.values():
            for name in [n for n, e in table.items() if e.plugin == plugin_name]:
                del table[name]
        for key in list(self._conflicts):
            left = [e for e in self._conflicts[key] if e.plugin != plugin_name]
            if len(left) == 1:
                self._entries[key[0]][key[1]] = left[0]
                del self._conflicts[key]
            elif not left:
                del self._conflicts[key]
            else:
                self._conflicts[key] = left

    # --------------------------------------------------------------------- lookup
    def entry(self, kind: str, name: str) -> Registration:
        """Return the registration of ``name``.

        Raises:
            UnknownNameError: No plugin registers ``name``; lists close matches.
            PluginConflictError: Several plugins register ``name``.
        """
        _check_kind(kind)
        self.discover()
        found = self._entries[kind].get(name)
        if found is not None:
            return found
        if (kind, name) in self._conflicts:
            raise PluginConflictError(_conflict_message(self._conflicts[kind, name]))
        raise UnknownNameError(kind, name, self._entries[kind])

    def get(self, kind: str, name: str) -> Any:
        """Return the object registered as ``name`` of ``kind``."""
        return self.entry(kind, name).obj

    def resolve(self, kind: str, ref: Any, *, allow_import: bool = True) -> Any:
        """Turn a name, a ``"package.module:Name"`` string or an object into the object.

        Args:
            kind: One of :data:`KINDS`.
            ref: A registered name, an import string, or the object itself.
            allow_import: Whether an import string may import its module. When
                false, only modules that are already imported are used.

        Returns:
            The registered or imported object; non-strings are returned as is.
        """
        if not isinstance(ref, str):
            return ref
        _check_kind(kind)
        self.discover()
        if ":" in ref and ref not in self._entries[kind]:
            return import_object(ref, allow_import=allow_import)
        return self.get(kind, ref)

    def names(self, kind: str) -> list[str]:
        """Return the sorted names registered for ``kind``."""
        _check_kind(kind)
        self.discover()
        return sorted(self._entries[kind])

    def find(self, name: str) -> Registration | None:
        """Return the registration of ``name`` in any class-providing kind."""
        self.discover()
        for kind in ("reward_net", "wrapper", "potential", "norm_layer"):
            found = self._entries[kind].get(name)
            if found is not None:
                return found
        return None

    def name_of(self, kind: str, obj: Any) -> str | None:
        """Return the canonical registered name of ``obj``, if it has one."""
        _check_kind(kind)
        self.discover()
        for entry in self._entries[kind].values():
            if entry.obj is obj and entry.alias_of is None:
                return entry.name
        return None

    def plugins(self) -> list[PluginInfo]:
        """Return every known plugin, loaded, broken or disabled."""
        self.discover()
        return sorted(self._plugins.values(), key=lambda p: p.name)

    def conflicts(self) -> dict[tuple[str, str], list[Registration]]:
        """Return the names claimed by more than one plugin."""
        self.discover()
        return dict(self._conflicts)

    def __iter__(self) -> Iterator[Registration]:
        self.discover()
        for table in self._entries.values():
            yield from table.values()


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"Unknown registry kind {kind!r}; expected one of {KINDS}.")


def _conflict_message(entries: list[Registration]) -> str:
    first = entries[0]
    owners = " and ".join(
        f"plugin {e.plugin!r} (distribution {e.distribution or '<none>'} "
        f"{e.version or ''})".replace(" )", ")")
        for e in entries
    )
    return (
        f"The {kind_label(first.kind)} name {first.name!r} is claimed by {owners}. "
        "Disable one of them with REWARDNETS_DISABLE_PLUGINS=<plugin name> or "
        "uninstall its distribution."
    )


def import_object(ref: str, *, allow_import: bool = True) -> Any:
    """Return the object named by ``"package.module:Qual.Name"``.

    Args:
        ref: The import string.
        allow_import: When false, the module must already be imported.

    Raises:
        ValueError: ``ref`` is malformed, or its module is not imported and
            ``allow_import`` is false.
        ImportError: The module cannot be imported.
        AttributeError: The module has no such attribute.
    """
    module_name, _, qualname = ref.partition(":")
    if not module_name or not qualname:
        raise ValueError(f"Expected an import string 'package.module:Name', got {ref!r}.")
    if allow_import:
        module = importlib.import_module(module_name)
    elif module_name in sys.modules:
        module = sys.modules[module_name]
    else:
        raise ValueError(
            f"{ref!r} names module {module_name!r}, which is not imported; "
            "rewardnets does not import modules named by data. Import it "
            "yourself first."
        )
    obj: Any = module
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise AttributeError(
                f"Module {module_name!r} has no attribute {qualname!r} (from {ref!r})."
            ) from exc
    return obj


#: The process-wide registry.
registry = Registry()
