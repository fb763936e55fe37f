"""Registries of models, datasets, losses, extensions, pretrained files and metrics, built from the hooks.

Each ``register_*`` implementation is called on its own, with only the arguments it declares, so
one plugin raising during registration, or registering in a way the hook does not take, is
reported (``ganzoo plugins``, ``ganzoo list``) and the others still register. Lookups of unknown
names raise :class:`ganzoo.errors.UnknownNameError` with close suggestions, and name the skipped
plugins, one of which may be what registers the name.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, TypeVar, get_args

from pluggy import HookImpl

from ganzoo.errors import GanzooError, UnknownNameError, command_for, unknown_name, with_article
from ganzoo.plugin_manager import BUILT_IN, LoadedPlugins, debug_traceback, get_plugins
from ganzoo.specs import (DataKind, DatasetSpec, ExtensionSpec, Hyperparameter, LossSpec, MetricSpec, ModelSpec,
                          PretrainedSpec, Task)

T = TypeVar("T")


@dataclass
class Table(Generic[T]):
    """Named records of one kind, in registration order."""

    kind: str
    items: dict[str, T] = field(default_factory=dict)
    #: the plugins that were skipped, as ``'name' from distribution``: one of them may be what registers a missing name
    skipped: tuple[str, ...] = ()
    #: the plugins that ``GANZOO_DISABLE_PLUGINS`` kept out: one of them may be what registers a missing name
    disabled: tuple[str, ...] = ()

    def get(self, name: str) -> T:
        """The record called ``name``; unknown names raise with the closest known names and the skipped and
        disabled plugins."""
        try:
            return self.items[name]
        except KeyError:
            error = unknown_name(self.kind, name, list(self.items))
            notes = [_skipped_sentence(self.skipped)] if self.skipped else []
            notes += [_disabled_sentence(self.disabled)] if self.disabled else []
            raise (UnknownNameError(" ".join([str(error), *notes])) if notes else error) from None

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching the fnmatch ``pattern`` (``"*gan"``, ``"dc*"``) whatever their case, as names are
        suggested whatever their case (``"DC*"`` finds dcgan)."""
        return sorted(n for n in self.items if fnmatch.fnmatchcase(n.lower(), pattern.lower()))

    def __contains__(self, name: object) -> bool:
        return name in self.items


@dataclass
class Registry:
    """Everything the installed plugins declared."""

    models: Table[ModelSpec]
    datasets: Table[DatasetSpec]
    losses: Table[LossSpec]
    extensions: Table[ExtensionSpec]
    pretrained: Table[PretrainedSpec]
    metrics: Table[MetricSpec]
    plugins: LoadedPlugins


def _listed(names: tuple[str, ...]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return f"{', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else names[0]


def _skipped_sentence(skipped: tuple[str, ...]) -> str:
    """The sentence an unknown name ends with when plugins were skipped: the name may be one of theirs, which a
    typo's suggestions alone would hide."""
    plural = len(skipped) > 1
    return (f"Plugin{'s' if plural else ''} {_listed(skipped)} {'were' if plural else 'was'} skipped and may be what "
            "registers it; see 'ganzoo plugins' for why.")


def _disabled_sentence(disabled: tuple[str, ...]) -> str:
    """The sentence an unknown name ends with when ``GANZOO_DISABLE_PLUGINS`` kept plugins out: a name of theirs
    is unknown only because of that setting, which the user may have forgotten."""
    plural = len(disabled) > 1
    return (f"Plugin{'s' if plural else ''} {_listed(disabled)} {'are' if plural else 'is'} disabled by "
            f"GANZOO_DISABLE_PLUGINS and may be what registers it; take {'them' if plural else 'it'} out of that "
            "variable to use it.")


#: each registration hook: the table it fills and the record its ``register`` takes
_REGISTRATION_HOOKS: dict[str, tuple[str, type]] = {
    "register_models": ("models", ModelSpec),
    "register_datasets": ("datasets", DatasetSpec),
    "register_losses": ("losses", LossSpec),
    "register_extensions": ("extensions", ExtensionSpec),
    "register_pretrained": ("pretrained", PretrainedSpec),
    "register_metrics": ("metrics", MetricSpec),
}


def _declared_by(impl: HookImpl, hook_name: str) -> tuple[list[Any], str, str]:
    """Call one registration hook implementation: the specs it registers, or none and why it is refused (with the
    traceback of what it raised, under ``GANZOO_DEBUG``).

    It gets only the arguments it declares (pluggy lets an implementation take fewer than the spec). A hook that
    hands ``register`` something else than its spec, or returns its specs instead of registering them, is refused
    with what to do, rather than failing deep inside ganzoo or being ignored in silence.
    """
    wanted = _REGISTRATION_HOOKS[hook_name][1]
    pending: list[Any] = []
    mistakes: list[str] = []

    def register(spec: Any) -> None:
        if isinstance(spec, PretrainedSpec) and not spec.base_dir:  # a relative file lies beside the plugin's module
            spec = dataclasses.replace(spec, base_dir=os.path.dirname(getattr(impl.plugin, "__file__", "") or ""))
        if isinstance(spec, wanted):
            pending.append(dataclasses.replace(spec, plugin=impl.plugin_name))
        else:
            mistakes.append(f"{hook_name} called register() with {with_article(type(spec).__name__)}; register() takes a "
                            f"ganzoo.specs.{wanted.__name__}")

    arguments = {"register": register}
    raised = trace = ""
    try:
        returned = impl.function(**{name: arguments[name] for name in impl.argnames})
    except (Exception, SystemExit) as exc:  # isolate the faulty plugin, even one that calls sys.exit
        returned, raised, trace = None, f"{hook_name} raised {type(exc).__name__}: {exc}", debug_traceback(exc)
    if mistakes or raised:
        return [], mistakes[0] if mistakes else raised, trace
    if returned is not None:
        return [], (f"{hook_name} returned {with_article(type(returned).__name__)} instead of calling register(spec) for each "
                    "spec; call register(spec) once per spec and return nothing"), ""
    return pending, "", ""


def _declared_twice(spec: ModelSpec | ExtensionSpec) -> list[str]:
    """Hyperparameter names ``spec`` declares more than once (checked after :func:`_hyperparameters_problem`):
    ``ganzoo info`` would list each twice and one of the defaults would win in silence."""
    names = Counter(hp.name for hp in spec.hyperparameters)
    return [name for name, count in names.items() if count > 1]


def _hyperparameters_problem(kind: str, spec: ModelSpec | ExtensionSpec) -> str:
    """Why the ``hyperparameters`` of ``spec``, a ``kind`` (model or extension), are not a tuple of
    :class:`Hyperparameter` each declared once, or "": a one-item tuple written without its trailing comma is the
    item itself, which would fail later, in every command that reads it, as a traceback."""
    hyperparameters = spec.hyperparameters
    if isinstance(hyperparameters, Hyperparameter):
        return (f"{kind} {spec.name!r} gives hyperparameters=Hyperparameter(...), not a tuple of them; add the "
                "trailing comma: hyperparameters=(Hyperparameter(...),)")
    if not isinstance(hyperparameters, (tuple, list)):
        return (f"{kind} {spec.name!r} gives hyperparameters as {with_article(type(hyperparameters).__name__)}, not a tuple of "
                "ganzoo.specs.Hyperparameter")
    odd = next((hp for hp in hyperparameters if not isinstance(hp, Hyperparameter)), None)
    if odd is not None:
        return (f"{kind} {spec.name!r} lists {with_article(type(odd).__name__)} among its hyperparameters; write each as "
                "ganzoo.specs.Hyperparameter(name, default, help)")
    twice = _declared_twice(spec)
    if twice:
        return f"{kind} {spec.name!r} declares hyperparameter {twice[0]!r} twice; declare each setting once"
    return ""


def _data_kinds_problem(model: ModelSpec) -> str:
    """Why ``model``'s ``data_kinds`` are not a tuple of the data kinds ganzoo knows, or "" (a string in its place
    is a one-item tuple that lost its trailing comma)."""
    kinds = model.data_kinds
    known = get_args(DataKind)
    if isinstance(kinds, str):
        return (f"model {model.name!r} gives data_kinds={kinds!r}, a string, not a tuple; add the trailing comma: "
                f"data_kinds=({kinds!r},)")
    unknown = [kind for kind in kinds if kind not in known] if isinstance(kinds, (tuple, list)) else [kinds]
    if unknown:
        return f"model {model.name!r} has data kind {unknown[0]!r}; use kinds among {', '.join(known)}"
    return ""


def _fields_problem(kind: str, spec: Any) -> str:
    """Why the settings a model or an extension (a ``kind``) declares, or a model's data kinds, cannot be read, or
    "". An extension may not take the name of one of ganzoo's own settings, which every run has
    (:func:`ganzoo.extension_settings.core_setting_clash`)."""
    if isinstance(spec, ModelSpec):
        return _hyperparameters_problem(kind, spec) or _data_kinds_problem(spec)
    if isinstance(spec, ExtensionSpec):
        from ganzoo.extension_settings import core_setting_clash

        return _hyperparameters_problem(kind, spec) or core_setting_clash(spec)
    return ""


def _registration_problem(table: "Table[Any]", spec: Any, dist_of: dict[str, str]) -> str:
    """Why ``spec`` cannot join ``table`` (a name another plugin or it already has, a task no code handles), or ""."""
    holder = table.items.get(spec.name)
    alike = next((held for name, held in table.items.items() if name.lower() == spec.name.lower()), None)
    if holder is None and alike is not None:  # 'GAN' beside 'gan': one typed in the wrong case runs the other
        return (f"registers {table.kind} {spec.name!r}, which differs only in case from {alike.name!r} of plugin "
                f"{alike.plugin!r} ({dist_of.get(alike.plugin, '?')}); give it a name of its own")
    if holder is not None and holder.plugin == spec.plugin:
        return f"registers {table.kind} {spec.name!r} twice; register each name once"
    if holder is not None:
        return (f"registers {table.kind} {spec.name!r}, which plugin {holder.plugin!r} of "
                f"{dist_of.get(holder.plugin, '?')} already registers; give it another name")
    tasks = get_args(Task)
    if isinstance(spec, ModelSpec) and spec.task not in tasks:
        return f"model {spec.name!r} has task {spec.task!r}; use one of {', '.join(tasks)}"
    fields = _fields_problem(table.kind, spec)
    if fields:
        return fields
    if isinstance(spec, PretrainedSpec) and not re.fullmatch(r"[0-9a-fA-F]{64}", spec.sha256):
        return f"pretrained weights {spec.name!r} have sha256 {spec.sha256!r}, not 64 hexadecimal digits"
    return _metric_problem(spec) if isinstance(spec, MetricSpec) else ""


def _metric_problem(spec: MetricSpec) -> str:
    """Why a plugin's metric cannot join ``ganzoo eval --metrics``, or "": a built-in metric's name (which would
    hide it), a kind of samples eval never scores, or a score that cannot be called."""
    from ganzoo.metric_names import METRICS, SAMPLE_KINDS

    if spec.name.lower() in METRICS:
        return f"registers metric {spec.name!r}, the name of a built-in one; give it a name of its own"
    unknown = [kind for kind in spec.kinds if kind not in SAMPLE_KINDS]
    if unknown or not spec.kinds:
        return (f"metric {spec.name!r} scores kinds {spec.kinds!r}; give one or both of "
                f"{' and '.join(map(repr, SAMPLE_KINDS))}")
    if not callable(spec.score):
        return f"metric {spec.name!r} has score {with_article(type(spec.score).__name__)}, not a function"
    return ""


def build_registry(loaded: LoadedPlugins) -> Registry:
    """Call every registration hook implementation and collect what each declares."""
    tables: dict[str, Table[Any]] = {
        "models": Table("model"),
        "datasets": Table("dataset"),
        "losses": Table("loss"),
        "extensions": Table("extension"),
        "pretrained": Table("pretrained weights"),
        "metrics": Table("metric"),
    }
    dist_of = {r.name: r.distribution for r in loaded.records}
    declared: list[tuple[Table[Any], Any]] = []
    for hook_name, (table_name, _) in _REGISTRATION_HOOKS.items():
        caller = getattr(loaded.manager.hook, hook_name)
        for impl in caller.get_hookimpls():
            specs, problem, trace = _declared_by(impl, hook_name)
            if problem:
                loaded.fail(impl.plugin_name, dist_of.get(impl.plugin_name, "?"), problem, trace)
                continue
            declared.extend((tables[table_name], spec) for spec in specs)
    # ganzoo's own names win a clash; between other plugins, the distribution whose name sorts first (stable sort:
    # each plugin's own order is kept)
    declared.sort(key=lambda item: (dist_of.get(item[1].plugin) != BUILT_IN, dist_of.get(item[1].plugin, "").lower(),
                                    item[1].plugin))
    # a loaded plugin that failed here; not one of the same entry-point name that was never loaded
    failed = {f.name for f in loaded.failures if dist_of.get(f.name) == f.distribution}
    for table, spec in declared:
        if spec.plugin in failed:  # a skipped plugin's names must not block another plugin's
            continue
        problem = _registration_problem(table, spec, dist_of)
        if problem:
            loaded.fail(spec.plugin, dist_of.get(spec.plugin, "?"), problem)
            failed.add(spec.plugin)
        else:
            table.items.setdefault(spec.name, spec)
    _refuse_weights_of_no_model(loaded, tables, failed, dist_of)
    skipped = tuple(dict.fromkeys(f"{failure.name!r} from {failure.distribution}" for failure in loaded.failures))
    for table in tables.values():
        table.items = {name: spec for name, spec in table.items.items() if spec.plugin not in failed}
        table.skipped = skipped
        table.disabled = tuple(repr(name) for name in loaded.disabled)
    return Registry(plugins=loaded, **tables)


def _refuse_weights_of_no_model(loaded: LoadedPlugins, tables: dict[str, "Table[Any]"], failed: set[str],
                                dist_of: dict[str, str]) -> None:
    """Leave out pretrained weights whose model no plugin registered. While a plugin is disabled or skipped the model
    may be its own, so they are left out quietly; otherwise the plugin that listed them made a mistake, and is
    skipped saying so."""
    pretrained, models = tables["pretrained"].items, tables["models"].items
    orphans = [spec for spec in pretrained.values() if spec.plugin not in failed and spec.model not in models]
    for spec in orphans:
        del pretrained[spec.name]
        if not loaded.disabled and not loaded.failures:
            loaded.fail(spec.plugin, dist_of.get(spec.plugin, "?"),
                        f"registers pretrained weights {spec.name!r} for model {spec.model!r}, which no plugin "
                        "registers; give the name of the model they were trained with")
            failed.add(spec.plugin)


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The process-wide registry, built on first use from :func:`ganzoo.plugin_manager.get_plugins`."""
    return build_registry(get_plugins())


def list_models(pattern: str = "*") -> list[str]:
    """Names of registered models matching ``pattern`` (fnmatch), like ``timm.list_models``."""
    return get_registry().models.names(pattern)


def get_model(name: str) -> ModelSpec:
    """The :class:`ModelSpec` called ``name``; the name of pretrained weights or of a dataset given in its place is
    told apart."""
    registry = get_registry()
    if name not in registry.models and name in registry.datasets:
        raise UnknownNameError(f"{name!r} is a dataset, not a model; train a model on it, as in 'ganzoo train "
                               f"{_model_for_dataset(registry, name)} --data {name}' ('ganzoo list' shows the models).")
    if name not in registry.models and name in registry.pretrained:
        weights = registry.pretrained.get(name)
        raise UnknownNameError(
            f"{name!r} names pretrained weights of the model {weights.model!r}, not a model; give the model and "
            f"the weights, as in 'ganzoo {command_for_model(weights.model)} {weights.model} --pretrained {name}' "
            f"('ganzoo info {weights.model}' "
            "describes both).")
    return registry.models.get(name)


def _model_for_dataset(registry: Registry, dataset: str) -> str:
    """A model to suggest for ``dataset``, among those whose default data it is, else those that take its kind of
    data: the plainest, that is an unconditional one first, a family's own model (not a variant) first, then the
    shortest name (the vanilla ``gan`` for MNIST or ring8)."""
    kind = registry.datasets.get(dataset).info.kind
    models = list(registry.models.items.values())
    fitting = [m for m in models if m.default_dataset == dataset] or [m for m in models if kind in m.data_kinds]
    fitting.sort(key=lambda m: (m.task != "unconditional", m.family != m.name, len(m.name), m.name))
    return fitting[0].name if fitting else "MODEL"


def command_for_model(name: str) -> str:
    """The command a sentence suggests for a generator of model ``name`` (:func:`ganzoo.errors.command_for` of its
    task); a model no plugin registers counts as one that samples."""
    model = get_registry().models.items.get(name)
    return command_for(model.task if model is not None else "")


def get_dataset(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` called ``name``; an existing folder path gives an image-folder dataset."""
    registry = get_registry()
    if name in registry.datasets:
        return registry.datasets.get(name)
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        from ganzoo.data.folder import folder_dataset

        return folder_dataset(path)
    if os.path.isfile(path):
        raise GanzooError(f"--data {name!r} is a file; pass the folder that holds the images, or a dataset name from "
                          f"'ganzoo datasets'.")
    if os.sep in name or name.startswith("."):
        raise GanzooError(f"Data folder {name!r} does not exist; pass an existing folder of images or a dataset name from 'ganzoo datasets'.")
    return registry.datasets.get(name)


def computes_own_losses(model: ModelSpec) -> bool:
    """Whether ``model`` trains with its plugin's own ``compute_losses`` rather than the core's standard
    unconditional step: every conditional and image-to-image model, and an unconditional one whose plugin
    implements ``compute_losses``. The standard step's remedies (instance noise, R1, unrolling...) and
    rejection sampling are refused for these models, since their losses never read them."""
    return model.task != "unconditional" or plugin_computes_losses(model)


def plugin_computes_losses(model: ModelSpec) -> bool:
    """Whether the plugin that declared ``model`` implements ``compute_losses``."""
    return plugin_implements(model, "compute_losses")


def plugin_implements(model: ModelSpec, hook: str) -> bool:
    """Whether the plugin that declared ``model`` implements the hook called ``hook``."""
    return any(impl.plugin_name == model.plugin for impl in getattr(get_plugins().manager.hook, hook).get_hookimpls())
