"""The plugin manager: finds plugins in the ``ganzoo`` entry-point group and loads them safely.

Built-in families are entry points of the ``ganzoo`` distribution itself, so they are found
exactly as a third party's would be. A plugin that fails to import, fails pluggy's signature
validation or implements an unknown hook is unregistered and recorded in
:func:`plugin_failures`; it never stops other plugins from working, not even by calling
``sys.exit`` as it imports. Set ``GANZOO_DISABLE_PLUGINS=name1,name2`` (entry-point or
distribution names) to skip plugins.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import EntryPoint, EntryPoints, entry_points

import pluggy

from ganzoo import hookspecs
from ganzoo.errors import debugging

ENTRY_POINT_GROUP = "ganzoo"
#: The distribution of the built-in plugins: loaded first, and its names win every clash.
BUILT_IN = "ganzoo"
DISABLE_ENV = "GANZOO_DISABLE_PLUGINS"
#: Seconds a third-party plugin's import may take before ``ganzoo list`` and ``ganzoo plugins`` point it out: every
#: command that reads the registry waits for it, ``ganzoo list`` included (llm's plugins made its --help take seconds).
SLOW_IMPORT_SECONDS = 1.0


@dataclass(frozen=True)
class PluginRecord:
    """A plugin that loaded: its name, the distribution that ships it and the hooks it implements."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used, with one line saying what failed."""

    name: str
    distribution: str
    reason: str
    #: the traceback of the exception that failed it, kept under ``GANZOO_DEBUG`` only (printed below the line)
    traceback: str = ""


@dataclass
class LoadedPlugins:
    """The plugin manager together with what loaded and what failed."""

    manager: pluggy.PluginManager
    records: list[PluginRecord] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    #: names in ``GANZOO_DISABLE_PLUGINS`` that no installed plugin or distribution has (a typo disables nothing)
    unmatched_disabled: list[str] = field(default_factory=list)
    #: every entry-point and distribution name found in the group, disabled ones included (what a typo is close to)
    installed_names: list[str] = field(default_factory=list)
    #: third-party plugins whose import took :data:`SLOW_IMPORT_SECONDS` or more: (name, distribution, seconds)
    slow_imports: list[tuple[str, str, float]] = field(default_factory=list)
    #: (build hook, model) pairs found to have one builder (see ganzoo.build): each plugin's hook is asked once
    single_builders: set[tuple[str, str]] = field(default_factory=set)

    def fail(self, name: str, distribution: str, reason: str, traceback: str = "") -> None:
        """Record that plugin ``name`` failed, unregistering it if it was registered."""
        plugin = self.manager.get_plugin(name)
        if plugin is not None:
            self.manager.unregister(plugin)
        self.records = [r for r in self.records if r.name != name]
        self.failures.append(PluginFailure(name, distribution, reason, traceback))


def debug_traceback(exc: BaseException) -> str:
    """``exc``'s traceback as text under ``GANZOO_DEBUG``, for a plugin's author to find the line that failed;
    "" otherwise (the failure's one line is enough for its users)."""
    if not debugging():
        return ""
    import traceback

    return "".join(traceback.format_exception(exc))


def disabled_names() -> set[str]:
    """Plugin or distribution names listed in ``GANZOO_DISABLE_PLUGINS``."""
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _hooks_of(manager: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    callers = manager.get_hookcallers(plugin) or []
    return tuple(sorted(caller.name for caller in callers))


def _short(exc: BaseException) -> str:
    """The exception's type and first line; for pluggy's refusal of a hook implementation, its reason too (the
    arguments a hook does not have, a wrapper that does not yield), without the definition it repeats."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if isinstance(exc, pluggy.PluginValidationError):
        lines = [line for line in lines if not line.startswith("hookimpl definition:")]
    else:
        lines = lines[:1]
    text = "; ".join(lines)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _unknown_hooks_reason(manager: pluggy.PluginManager, module: object, exc: Exception) -> str:
    """Why ``module`` is refused for hooks ganzoo has no spec for, naming each with the closest real hook: a misspelled
    hook would never be called, and pluggy's own message shows the module's repr rather than what to rename."""
    import difflib

    known = [name for name, caller in vars(manager.hook).items() if caller.has_spec()]
    unknown = sorted(caller.name for caller in manager.get_hookcallers(module) or [] if not caller.has_spec())
    if not unknown:  # not expected: pluggy refused it for another reason
        return f"implements an unknown hook ({_short(exc)})"
    close = {hook: difflib.get_close_matches(hook, known, n=1, cutoff=0.6) for hook in unknown}
    if len(unknown) == 1:
        hook = unknown[0]
        advice = f"did you mean {close[hook][0]!r}?" if close[hook] else "rename it to a hook of ganzoo.hookspecs"
        return f"implements an unknown hook {hook!r}; {advice}"
    named = ", ".join(f"{hook!r}" + (f" (did you mean {near[0]!r}?)" if near else "") for hook, near in close.items())
    return f"implements unknown hooks {named}; rename each to a hook of ganzoo.hookspecs"


def _signature_reason(manager: pluggy.PluginManager, exc: Exception) -> str:
    """For a hook implementation that takes arguments its spec does not give: which ones, and the spec's own, in
    place of pluggy's text; "" for any other refusal."""
    import re

    hook = re.search(r"for hook '(\w+)'", str(exc))
    extra = re.search(r"Argument\(s\) \{(.*?)\} are declared in the hookimpl", str(exc))
    caller = getattr(manager.hook, hook.group(1), None) if hook else None
    if extra is None or caller is None or caller.spec is None:
        return ""
    return (f"its hook {caller.name} takes {extra.group(1)}, which ganzoo does not give: {caller.name} gives "
            f"{', '.join(caller.spec.argnames)} (an implementation may take fewer of them, by those names)")


def _register(loaded: LoadedPlugins, name: str, dist: str, version: str, module: object) -> None:
    manager = loaded.manager
    try:
        manager.register(module, name=name)
    except Exception as exc:  # pluggy.PluginValidationError, duplicate names
        reason = _signature_reason(manager, exc) or f"invalid hook implementation ({_short(exc)})"
        loaded.failures.append(PluginFailure(name, dist, reason))
        return
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        loaded.fail(name, dist, _unknown_hooks_reason(manager, module, exc))
        return
    hooks = _hooks_of(manager, module)
    if not hooks:
        loaded.fail(name, dist, "implements no ganzoo hook; mark its hook functions with ganzoo.hookspecs.hookimpl")
        return
    loaded.records.append(PluginRecord(name, dist, version, hooks))


def _load_order(ep: EntryPoint) -> tuple[bool, str, str]:
    """ganzoo's own plugins first, then the others by distribution and entry-point name: on any clash of
    names the built-in plugin wins, and between two third-party ones the outcome does not depend on sys.path."""
    dist = ep.dist.name if ep.dist is not None else ""
    return dist != BUILT_IN, dist.lower(), ep.name


def _report_other_groups(loaded: LoadedPlugins, found: EntryPoints) -> None:
    """A failure line for each entry point in a group that looks meant for ganzoo (``ganzoo.plugins``,
    ``ganzoo_plugins``) but is not its group, which ganzoo never reads: the plugin would be missing without a word."""
    for group in sorted(found.groups):
        if group != ENTRY_POINT_GROUP and group.lower().replace("_", ".").startswith(f"{ENTRY_POINT_GROUP}."):
            for ep in found.select(group=group):
                dist = ep.dist.name if ep.dist is not None else "?"
                loaded.failures.append(PluginFailure(ep.name, dist, (
                    f"its entry point is in the group {group!r}, which ganzoo does not read; declare it under "
                    f"[project.entry-points.{ENTRY_POINT_GROUP}]")))


def load_plugins() -> LoadedPlugins:
    """Build a fresh plugin manager from the ``ganzoo`` entry points (no caching)."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    loaded = LoadedPlugins(manager)
    manager.register(importlib.import_module("ganzoo.defaults"), name="ganzoo.defaults")
    manager.register(importlib.import_module("ganzoo.schedule"), name="ganzoo.schedule")
    blocked = disabled_names()
    owners: dict[str, tuple[str, str]] = {}  # entry-point name -> (distribution, object reference)
    matched: set[str] = set()
    found = entry_points()
    _report_other_groups(loaded, found)
    for ep in sorted(found.select(group=ENTRY_POINT_GROUP), key=_load_order):
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        if ep.name in owners:
            if owners[ep.name] != (dist, ep.value):  # not the same distribution found twice on sys.path
                loaded.failures.append(PluginFailure(ep.name, dist, (
                    f"its entry-point name {ep.name!r} is already taken by the plugin of {owners[ep.name][0]}; "
                    "rename the entry point in its distribution")))
            continue
        owners[ep.name] = (dist, ep.value)
        matched |= {ep.name, dist} & blocked
        if ep.name in blocked or dist in blocked:
            loaded.disabled.append(ep.name)
            continue
        started = time.perf_counter()
        try:
            module = ep.load()
        except (Exception, SystemExit) as exc:  # a broken plugin must never break ganzoo itself, nor end it
            loaded.failures.append(PluginFailure(ep.name, dist, f"import failed ({_short(exc)})", debug_traceback(exc)))
            continue
        seconds = time.perf_counter() - started
        if seconds >= SLOW_IMPORT_SECONDS and dist != BUILT_IN:
            loaded.slow_imports.append((ep.name, dist, seconds))
        _register(loaded, ep.name, dist, version, module)
    loaded.unmatched_disabled = sorted(blocked - matched)
    loaded.installed_names = sorted(set(owners) | {dist for dist, _ in owners.values()})
    return loaded


@lru_cache(maxsize=1)
def get_plugins() -> LoadedPlugins:
    """The process-wide plugin manager, loaded on first use."""
    return load_plugins()


def get_manager() -> pluggy.PluginManager:
    """Shortcut for ``get_plugins().manager``."""
    return get_plugins().manager


def plugin_record(plugin: str) -> PluginRecord | None:
    """The record of the loaded plugin called ``plugin`` (its distribution and version); None for ganzoo's core
    (registered without one) and names no plugin loaded under."""
    return next((r for r in get_plugins().records if r.name == plugin), None)


def distribution_of(plugin: str) -> str:
    """The distribution (the name pip knows) that ships the loaded plugin called ``plugin``; the plugin's own name
    when none is known."""
    record = plugin_record(plugin)
    return record.distribution if record is not None and record.distribution else plugin


def reset() -> None:
    """Forget the loaded plugins and the registry built from them (tests, notebooks)."""
    from ganzoo import registry

    get_plugins.cache_clear()
    registry.get_registry.cache_clear()
