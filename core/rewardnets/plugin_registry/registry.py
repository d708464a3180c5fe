"""The plugin registry: what every plugin contributes, found by name.

Plugins are found through the ``rewardnets`` entry-point group. Discovery is
lazy (the first look-up triggers it, never ``import rewardnets``), happens once
and is guarded by a lock. A plugin that fails to import or to register is
recorded with its distribution and the error, a warning is issued, and the
other plugins keep working.

Two plugins may claim one name. The rule, per name: a provider the user
picked (``REWARDNETS_PREFER`` or :meth:`Registry.prefer`) wins; otherwise the
built-in distribution (``rewardnets``) wins over a third party; otherwise the
name is a conflict, an error that names both when it is looked up. Each clash
is announced once, with a warning that names both distributions. Third-party
plugins should use namespaced names (``lab/MyNet``), which never clash.

Environment variables:
    REWARDNETS_PLUGINS: comma-separated entry-point or distribution names; when
        set, only these plugins load (set it to an empty string to load none).
    REWARDNETS_DISABLE_PLUGINS: comma-separated entry-point or distribution
        names that are not loaded.
    REWARDNETS_PREFER: comma-separated ``name=provider`` pairs, the provider a
        distribution or plugin name: who provides ``name`` when several do.
    REWARDNETS_TRACE_PLUGINS: when set to a non-empty value, print each
        registration to standard error as it happens.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import os
import sys
import threading
import traceback
import types
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
from rewardnets.plugin_registry.configurable import CONFIG_REF_KINDS, remember_arguments

__all__ = [
    "BUILTIN_DISTRIBUTION",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "PluginClashWarning",
    "PluginInfo",
    "Registration",
    "Registry",
    "registry",
]

ENTRY_POINT_GROUP = "rewardnets"

#: The distribution of the built-in plugins; it wins a name clash with a third party.
BUILTIN_DISTRIBUTION = "rewardnets"

#: Registry kind -> the hook that contributes it.
KINDS: dict[str, str] = {
    "reward_net": "register_reward_nets",
    "wrapper": "register_wrappers",
    "potential": "register_potentials",
    "norm_layer": "register_norm_layers",
    "reward_type": "register_reward_types",
    "command": "register_commands",
    "query_selector": "register_query_selectors",
    "teacher": "register_teachers",
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
    #: The full traceback of a broken plugin's error.
    traceback: str | None = None
    #: The hook (or ``"import"``) that failed, for a broken plugin.
    failed_in: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able description of the plugin."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "value": self.value,
            "status": self.status,
            "error": self.error,
            "failed_in": self.failed_in,
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


def _env_preferences() -> dict[str, str]:
    raw = os.environ.get("REWARDNETS_PREFER", "")
    prefs: dict[str, str] = {}
    for part in raw.split(","):
        name, sep, provider = part.partition("=")
        if part.strip() and (not sep or not name.strip() or not provider.strip()):
            warnings.warn(
                f"REWARDNETS_PREFER has {part.strip()!r}; expected name=provider pairs "
                "separated by commas (e.g. BasicRewardNet=rewardnets). Ignored.",
                RuntimeWarning,
                stacklevel=4,
            )
            continue
        if sep:
            prefs[name.strip()] = provider.strip()
    return prefs


#: A check of what a plugin registers for one kind: returns a problem, or None.
KindCheck = Callable[[Any], "str | None"]


class Registry:
    """Names of reward nets, wrappers, normalisation layers and reward types."""

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self._lock = threading.RLock()
        self._discovered = False
        self._discovering: int | None = None  # the thread that is discovering
        self._pm = pluggy.PluginManager("rewardnets")
        self._pm.add_hookspecs(hookspecs)
        self._entries: dict[str, dict[str, Registration]] = {k: {} for k in KINDS}
        self._claims: dict[tuple[str, str], list[Registration]] = {}
        self._announced: set[tuple[str, str]] = set()
        self._preferences: dict[str, str] = {}
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
        """Scan the entry-point group and load the plugins, once.

        Re-entrant: a plugin that imports ``rewardnets`` (and looks names up)
        while it is being loaded sees the plugins loaded so far.
        """
        if self._discovered or self._discovering == threading.get_ident():
            return
        with self._lock:  # other threads wait here until discovery is complete
            if self._discovered or self._discovering == threading.get_ident():
                return
            self._discovering = threading.get_ident()
            try:
                self._preferences = {**_env_preferences(), **self._preferences}
                self._load_entry_points()
            finally:
                self._discovering = None
            self._discovered = True
            self._resolve_all()
            self._announce_clashes()

    def _load_entry_points(self) -> None:
        import importlib_metadata

        only = _env_names("REWARDNETS_PLUGINS")
        disabled: set[str] = _env_names("REWARDNETS_DISABLE_PLUGINS") or set()
        eps = sorted(
            importlib_metadata.entry_points(group=self.group),
            # The built-ins first: a third-party plugin may use them while it loads.
            key=lambda ep: (
                (ep.dist.name if ep.dist else "") != BUILTIN_DISTRIBUTION,
                ep.dist.name if ep.dist else "",
                ep.name,
            ),
        )
        known: set[str] = set()
        for ep in eps:
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            names = {ep.name, dist}
            known |= {n for n in names if n}
            if (only is not None and not names & only) or names & disabled:
                info = PluginInfo(ep.name, dist, version, ep.value, "disabled")
                self._plugins[self._unique_plugin_name(ep.name, dist)] = info
                continue
            plugin_name = self._unique_plugin_name(ep.name, dist)
            try:
                plugin = ep.load()
            except BaseException as exc:  # a broken plugin must not break the others
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._record_broken(plugin_name, dist, version, ep.value, exc, "import")
                continue
            try:
                self._register(plugin, plugin_name, dist, version, ep.value, False)
            except _HookFailed as failed:
                self._record_broken(plugin_name, dist, version, ep.value, failed.error, failed.hook)
            except Exception as exc:
                self._record_broken(plugin_name, dist, version, ep.value, exc, "registration")
        for var, wanted in (("REWARDNETS_PLUGINS", only), ("REWARDNETS_DISABLE_PLUGINS", disabled)):
            unmatched = sorted((wanted or set()) - known)
            if unmatched:
                warnings.warn(
                    f"{var} names {', '.join(map(repr, unmatched))}, which match no installed "
                    f"plugin or distribution; known: {', '.join(sorted(known)) or 'none'}.",
                    RuntimeWarning,
                    stacklevel=4,
                )

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
        failed_in: str,
    ) -> None:
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        full = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self._plugins[plugin_name] = PluginInfo(
            plugin_name, dist, version, value, "broken", error, traceback=full, failed_in=failed_in
        )
        where = "to import" if failed_in == "import" else f"in {failed_in}"
        warnings.warn(
            f"rewardnets plugin {plugin_name!r} (entry point {value!r} of "
            f"distribution {dist} {version}) failed {where} and was skipped: "
            f"{error}. `rewardnets plugins --verbose` shows the traceback.",
            RuntimeWarning,
            stacklevel=4,
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
            PluginError: The plugin's hooks are invalid, raised, or registered
                something of the wrong kind.
        """
        self.discover()
        plugin_name = name or getattr(plugin, "__name__", None) or repr(plugin)
        with self._lock:
            if plugin_name in self._plugins:
                raise PluginError(
                    f"A plugin named {plugin_name!r} is already registered; "
                    "pass another name= or unregister it first."
                )
            try:
                self._register(plugin, plugin_name, distribution, version, plugin_name, True)
            except _HookFailed as failed:
                raise failed.error from failed.error.__cause__
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

    def set_kind_check(self, kind: str, check: KindCheck) -> None:
        """Check what plugins register as ``kind`` from now on.

        The framework installs these (a reward net must be a ``RewardNet``
        subclass, and so on); the registry itself knows nothing of reward nets.

        Args:
            kind: One of :data:`KINDS`.
            check: ``check(obj)`` returns a description of what is wrong, or None.
        """
        _check_kind(kind)
        _KIND_CHECKS[kind] = check

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
            raise PluginError(
                f"Plugin {plugin_name!r} is invalid: {exc}{_hook_suggestion(str(exc))}"
            ) from exc
        info = PluginInfo(plugin_name, dist, version, value, "loaded")
        self._plugins[plugin_name] = info
        hook_name = ""
        try:
            for kind, hook_name in KINDS.items():
                hook = getattr(self._pm.hook, hook_name)
                for impl in hook.get_hookimpls():
                    if impl.plugin_name != plugin_name:
                        continue
                    impl.function(register=self._make_register(kind, info, strict))
        except BaseException as exc:
            self._remove_contributions(plugin_name)
            del self._plugins[plugin_name]
            self._pm.unregister(name=plugin_name)
            if isinstance(exc, KeyboardInterrupt):
                raise
            if isinstance(exc, PluginConflictError):
                raise
            raise _HookFailed(hook_name, exc) from exc
        if strict:
            self._resolve_all()

    def _make_register(self, kind: str, info: PluginInfo, strict: bool) -> Callable[..., None]:
        def register(name: str, obj: Any, *, aliases: tuple[str, ...] = ()) -> None:
            label = kind_label(kind)
            if not isinstance(name, str) or not name:
                raise PluginError(
                    f"Plugin {info.name!r} registered a {label} with "
                    f"name {name!r}; expected a non-empty string."
                )
            if isinstance(aliases, str) or not all(isinstance(a, str) and a for a in aliases or ()):
                raise PluginError(
                    f"Plugin {info.name!r} registered {label} {name!r} with aliases "
                    f"{aliases!r}; expected a tuple of non-empty strings."
                )
            check = _KIND_CHECKS.get(kind)
            problem = check(obj) if check is not None else None
            if problem is not None:
                raise PluginError(
                    f"Plugin {info.name!r} (distribution {info.distribution}) registered "
                    f"{label} {name!r} as {obj!r}, which is not a valid {label}: {problem}."
                )
            refs = getattr(obj, "config_refs", None) if isinstance(obj, type) else None
            bad_refs = {k: v for k, v in (refs or {}).items() if v not in CONFIG_REF_KINDS}
            if bad_refs:
                raise PluginError(
                    f"Plugin {info.name!r} registered {label} {name!r} whose config_refs "
                    f"say {bad_refs}; each value must be one of {', '.join(CONFIG_REF_KINDS)}."
                )
            if kind == "potential" and isinstance(obj, type):
                remember_arguments(obj)
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
                        f"rewardnets: plugin {info.name!r} registered {label} {alias!r}",
                        file=sys.stderr,
                    )

        return register

    def _add(self, entry: Registration, strict: bool) -> None:
        key = (entry.kind, entry.name)
        claims = self._claims.setdefault(key, [])
        if strict and claims:
            raise PluginConflictError(_conflict_message([*claims, entry]))
        claims.append(entry)
        self._resolve(key)

    def _resolve(self, key: tuple[str, str]) -> None:
        """Put the winner of ``key``'s claims in the table (or nothing, for a conflict)."""
        kind, name = key
        claims = self._claims.get(key, [])
        table = self._entries[kind]
        winner = self._winner(name, claims)
        if winner is None:
            table.pop(name, None)
        else:
            table[name] = winner

    def _resolve_all(self) -> None:
        for key in list(self._claims):
            self._resolve(key)

    def _winner(self, name: str, claims: list[Registration]) -> Registration | None:
        if not claims:
            return None
        preferred = self._preferences.get(name)
        if preferred is not None:
            picked = [c for c in claims if preferred in (c.distribution, c.plugin)]
            if len(picked) == 1:
                return picked[0]
        if len(claims) == 1:
            return claims[0]
        builtin = [c for c in claims if c.distribution == BUILTIN_DISTRIBUTION]
        if len(builtin) == 1:
            return builtin[0]
        return None

    def _announce_clashes(self) -> None:
        for key, claims in self._claims.items():
            if len(claims) < 2 or key in self._announced:
                continue
            self._announced.add(key)
            winner = self._entries[key[0]].get(key[1])
            if winner is None:
                outcome = (
                    "Looking it up is an error until you pick one: "
                    f"REWARDNETS_PREFER={key[1]}=<distribution>."
                )
            else:
                outcome = (
                    f"Using {_origin(winner)}; pick another with "
                    f"REWARDNETS_PREFER={key[1]}=<distribution>."
                )
            warnings.warn(
                f"{_conflict_message(claims, advice=False)} {outcome}",
                PluginClashWarning,
                stacklevel=4,
            )

    def _remove_contributions(self, plugin_name: str) -> None:
        for key in list(self._claims):
            left = [e for e in self._claims[key] if e.plugin != plugin_name]
            if left:
                self._claims[key] = left
            else:
                del self._claims[key]
                self._entries[key[0]].pop(key[1], None)
            if key in self._claims:
                self._resolve(key)

    def prefer(self, name: str, provider: str) -> None:
        """Pick who provides ``name`` when several plugins claim it.

        Args:
            name: The registered name (of any kind).
            provider: A distribution name or a plugin name.

        Raises:
            UnknownNameError: No plugin of that provider claims ``name``.
        """
        self.discover()
        with self._lock:
            matches = [
                c
                for (_, claimed), claims in self._claims.items()
                if claimed == name
                for c in claims
                if provider in (c.distribution, c.plugin)
            ]
            if not matches:
                providers = sorted(
                    {
                        str(c.distribution or c.plugin)
                        for (_, claimed), claims in self._claims.items()
                        if claimed == name
                        for c in claims
                    }
                )
                raise UnknownNameError(
                    "provider", f"{provider} (for {name!r})", providers or ["<none>"]
                )
            self._preferences[name] = provider
            self._resolve_all()

    # --------------------------------------------------------------------- lookup
    def entry(self, kind: str, name: str) -> Registration:
        """Return the registration of ``name``.

        Raises:
            UnknownNameError: No plugin registers ``name``; lists close matches.
            PluginConflictError: Several plugins register ``name`` and no rule
                picks one.
        """
        _check_kind(kind)
        self.discover()
        found = self._entries[kind].get(name)
        if found is not None:
            return found
        claims = self._claims.get((kind, name), [])
        if len(claims) > 1:
            raise PluginConflictError(_conflict_message(claims))
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

    def builtin(self, name: str) -> Registration | None:
        """Return the built-in distribution's registration of ``name``, whoever else claims it.

        ``rewardnets.BasicRewardNet`` and the seed's import paths use it: they
        always give the built-in classes.
        """
        self.discover()
        for kind in ("reward_net", "wrapper", "potential", "norm_layer"):
            for claim in self._claims.get((kind, name), []):
                if claim.distribution == BUILTIN_DISTRIBUTION:
                    return claim
        return None

    def attribute(self, module: str, name: str, builtin_names: tuple[str, ...]) -> Any:
        """The object behind a package attribute such as ``rewardnets.BasicRewardNet``.

        Names in ``builtin_names`` always give the built-in distribution's
        object, whatever third parties register; other names give the
        registry's winner.

        Raises:
            AttributeError: Nothing provides ``name``; when a built-in plugin is
                disabled or broken, the message says so.
        """
        if name in builtin_names:
            found = self.builtin(name)
            if found is not None:
                return found.obj
            states = [
                f"plugin {p.name!r} is {p.status}" + (f" ({p.error})" if p.error else "")
                for p in self.plugin_of(BUILTIN_DISTRIBUTION)
                if p.status != "loaded"
            ]
            detail = f"; {', '.join(states)}" if states else ""
            raise AttributeError(
                f"module {module!r} has no attribute {name!r}: the built-in plugin that "
                f"provides it is not loaded{detail}. Check REWARDNETS_PLUGINS and "
                "REWARDNETS_DISABLE_PLUGINS, or run `rewardnets plugins`."
            )
        found = self.find(name) if not name.startswith("_") else None
        if found is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return found.obj

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

    def plugin_of(self, distribution: str) -> list[PluginInfo]:
        """Return the plugins of ``distribution`` (loaded, broken or disabled)."""
        self.discover()
        return [p for p in self.plugins() if p.distribution == distribution]

    def conflicts(self) -> dict[tuple[str, str], list[Registration]]:
        """Return the names claimed by more than one plugin, resolved or not."""
        self.discover()
        return {key: list(claims) for key, claims in self._claims.items() if len(claims) > 1}

    def __iter__(self) -> Iterator[Registration]:
        self.discover()
        for table in self._entries.values():
            yield from table.values()


class PluginClashWarning(RuntimeWarning):
    """Two plugins claim one name; the warning says which one is used."""


class _HookFailed(Exception):
    """A plugin's hook raised (or registered something of the wrong kind)."""

    def __init__(self, hook: str, error: BaseException) -> None:
        super().__init__(hook, error)
        self.hook = hook
        self.error = error if isinstance(error, Exception) else PluginError(str(error))


def _check_command(obj: Any) -> str | None:
    import click

    if isinstance(obj, click.Command):
        return None
    return f"expected a click command (a @click.command() function), got a {type(obj).__name__}"


#: The checks :meth:`Registry.set_kind_check` installed, by kind.
_KIND_CHECKS: dict[str, KindCheck] = {"command": _check_command}


def _origin(entry: Registration) -> str:
    return f"{entry.distribution or '<no distribution>'} (plugin {entry.plugin!r})"


def _hook_suggestion(message: str) -> str:
    """' Did you mean ...?' for an unknown hook in pluggy's validation message."""
    for word in message.replace("'", " ").replace('"', " ").split():
        if word.startswith("register_") and word not in KINDS.values():
            close = difflib.get_close_matches(word, KINDS.values(), n=1, cutoff=0.6)
            if close:
                return f" Did you mean {close[0]!r}? The hooks are {', '.join(KINDS.values())}."
            return f" The hooks are {', '.join(KINDS.values())}."
    return ""


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"Unknown registry kind {kind!r}; expected one of {KINDS}.")


def _conflict_message(entries: list[Registration], *, advice: bool = True) -> str:
    first = entries[0]
    owners = " and ".join(
        f"plugin {e.plugin!r} (distribution {e.distribution or '<none>'} "
        f"{e.version or ''})".replace(" )", ")")
        for e in entries
    )
    message = f"The {kind_label(first.kind)} name {first.name!r} is claimed by {owners}."
    if advice:
        message += (
            f" Pick one with REWARDNETS_PREFER={first.name}=<distribution> (or "
            "rewardnets.registry.prefer(name, distribution)), or disable one with "
            "REWARDNETS_DISABLE_PLUGINS=<plugin name>."
        )
    return message


def import_object(ref: str, *, allow_import: bool = True) -> Any:
    """Return the object named by ``"package.module:Qual.Name"``.

    Args:
        ref: The import string.
        allow_import: When false (data from a file), the module must already
            be imported, and each name is looked up statically, in the
            module's namespace and the classes' dicts: a module's lazy
            ``__getattr__`` (``torch:_dynamo``) is never triggered, so nothing
            is imported.

    Raises:
        ValueError: ``ref`` is malformed, or its module is not imported and
            ``allow_import`` is false.
        ImportError: The module cannot be imported.
        AttributeError: The module has no such attribute (without import: no
            such attribute defined yet).
    """
    if not isinstance(ref, str):
        raise ValueError(f"Expected an import string 'package.module:Name', got {ref!r}.")
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
            if allow_import:
                obj = getattr(obj, part)
            elif isinstance(obj, types.ModuleType):
                obj = vars(obj)[part]
            else:
                obj = inspect.getattr_static(obj, part)
        except (AttributeError, KeyError) as exc:
            defined = "" if allow_import else " defined (data never triggers a lazy import)"
            raise AttributeError(
                f"Module {module_name!r} has no attribute {qualname!r}{defined} (from {ref!r})."
            ) from exc
    return obj


#: The process-wide registry.
registry = Registry()
