"""The settings a plugin's extension declares (``ExtensionSpec.hyperparameters``). No torch import here.

They join a new run's config when the user switches their extension on (``--with NAME``), after the
settings of the model, its loss and the data, and are then treated as the model's own: ``--set`` takes
them, a value of another type than the default is refused, the checks by name of
:mod:`ganzoo.setting_checks` apply, a default ganzoo refuses names the plugin, the run's files and
checkpoints keep them (so ``--resume`` goes on with them), and every hook finds them in ``config``.
Without ``--with NAME`` they are no setting of the run, and ``--set`` of one names the extension to
switch on.
"""

from __future__ import annotations

from typing import Any, Iterable

from ganzoo.errors import GanzooError, with_article
from ganzoo.plugin_manager import distribution_of
from ganzoo.specs import ExtensionSpec, ModelSpec


def applies(extension: ExtensionSpec, model: ModelSpec) -> bool:
    """Whether ``model`` can switch ``extension`` on: :func:`refusal` finds no reason against it. ``ganzoo info``
    lists only these, so that it offers exactly what training takes."""
    return not refusal(extension, model)


def refusal(extension: ExtensionSpec, model: ModelSpec) -> str:
    """The sentence refusing ``--with NAME`` of ``extension`` for ``model``, or "" when the model can use it: its
    task, family and kind of discriminator must be among those the extension limits itself to, and the model must
    train in the core's standard step when the extension acts inside that step. The one rule that training refuses
    by and ``ganzoo info`` lists by."""
    from ganzoo.registry import computes_own_losses

    drop = f"so drop --with {extension.name}."
    if extension.tasks and model.task not in extension.tasks:
        return (f"--with {extension.name} works only with {' or '.join(extension.tasks)} models; {model.name!r} is "
                f"{model.task} and cannot use it, {drop}")
    if extension.standard_step and computes_own_losses(model):
        return f"--with {extension.name} {standard_step_only(model)}, {drop}"
    if extension.families and model.family not in extension.families:
        return (f"--with {extension.name} works only with models of the {' or '.join(extension.families)} family; "
                f"{model.name!r} is of the {model.family} family and cannot use it, {drop}")
    if extension.discriminators and model.discriminator not in extension.discriminators:
        kinds = " or ".join(extension.discriminators)
        return (f"--with {extension.name} cannot be added to the {model.discriminator} discriminator of "
                f"{model.name!r} (it works only on {with_article(kinds)} discriminator); drop --with {extension.name}.")
    return ""


def standard_step_only(model: ModelSpec) -> str:
    """Why ``model``, which computes its own losses, takes no remedy of the core's standard unconditional step: the
    middle of the sentences refusing those remedies and the extensions that act inside the step."""
    owner = f"{model.name!r} ({model.task})" if model.task != "unconditional" else f"{model.name!r} (plugin {model.plugin!r})"
    return f"works only in the standard step of unconditional models; {owner} computes its own losses"


def switched_on(names: Iterable[Any]) -> list[ExtensionSpec]:
    """The registered extensions among ``names`` (a config's ``with``), each once, in order; an unknown name is
    left to the check that refuses it."""
    from ganzoo.registry import get_registry

    table = get_registry().extensions.items
    found: list[ExtensionSpec] = []
    for name in names:
        if isinstance(name, str) and name in table and table[name] not in found:
            found.append(table[name])
    return found


def add_extension_settings(config: dict[str, Any], model: ModelSpec, loss: str, overrides: dict[str, Any]) -> None:
    """Add to a new run's ``config`` the settings of the extensions it switches on, with their defaults, once none
    clashes with another setting of the run (:func:`refuse_clashes`), ganzoo accepts their defaults and each
    ``--set`` among ``overrides`` has its default's type."""
    from ganzoo.plugin_checks import require_valid_extension_defaults
    from ganzoo.setting_checks import check_types

    names = overrides["with"] if overrides.get("with") is not None else config["with"]
    extensions = switched_on(names)
    refuse_clashes(model, loss, extensions)
    for extension in extensions:
        require_valid_extension_defaults(extension)
        defaults = {hp.name: hp.default for hp in extension.hyperparameters}
        check_types(defaults, overrides)
        config.update(defaults)


def _by_plugin(what: str, plugin: str) -> str:
    """``model 'tinygan' (plugin 'tiny' from ganzoo-tiny)``: ``what`` and the plugin and distribution it comes from."""
    return f"{what} (plugin {plugin!r} from {distribution_of(plugin)})"


def refuse_clashes(model: ModelSpec, loss: str, extensions: list[ExtensionSpec]) -> None:
    """Refuse a setting that one of the ``extensions`` a run switches on declares when ``model``, the run's
    ``loss`` or an extension before it declares it too, in one sentence naming both plugins: a run's config is
    one flat dict, so one default would replace the other unsaid, and each plugin would read the value meant for
    the other.

    Refused here, when both are used, rather than at registration: plugins are written and installed apart, and
    two of them (a model of one family, an extension made for another) may share a name they never meet on;
    skipping one at registration would take it from every user for a clash most never have. A name of ganzoo's
    own settings, which every run has, clashes in every run, so that one is refused at registration
    (:func:`core_setting_clash`)."""
    from ganzoo.registry import get_registry

    declared = get_registry().losses.get(loss)
    held = {hp.name: _by_plugin(f"model {model.name!r}", model.plugin) for hp in model.hyperparameters}
    held.update({key: _by_plugin(f"the {loss} loss", declared.plugin) for key in declared.defaults if key not in held})
    for extension in extensions:
        this = _by_plugin(f"the extension {extension.name!r}", extension.plugin)
        for hp in extension.hyperparameters:
            if hp.name in held:
                raise GanzooError(f"The setting {hp.name!r} of {this} is also a setting of {held[hp.name]}, and one "
                                  f"run cannot give it two values; drop --with {extension.name}, or ask the authors "
                                  "of either plugin to rename theirs.")
            held[hp.name] = this


def core_setting_clash(extension: ExtensionSpec) -> str:
    """Why ``extension`` may not declare one of its settings, or "": a name of ganzoo's own settings, which every
    run has (the common training ones and those the data decides), would replace ganzoo's in every run."""
    from ganzoo.config import TRAINING_HYPERPARAMETERS
    from ganzoo.setting_checks import DATASET_ONLY

    core = {hp.name for hp in TRAINING_HYPERPARAMETERS} | set(DATASET_ONLY) | {"image_size"}
    taken = next((hp.name for hp in extension.hyperparameters if hp.name in core), None)
    if taken is None:
        return ""
    return (f"extension {extension.name!r} declares the setting {taken!r}, which is one of ganzoo's own that every "
            "run has; give it a name of its own")


def unswitched_setting(model: ModelSpec, name: str) -> GanzooError | None:
    """The error for ``--set NAME=...`` of a setting that only extensions this run leaves off declare: it names the
    one to switch on (or says that ``model`` can use none of them); None when no extension declares ``name``."""
    from ganzoo.registry import get_registry

    owners = [extension for extension in get_registry().extensions.items.values()
              if any(hp.name == name for hp in extension.hyperparameters)]
    if not owners:
        return None
    usable = [extension for extension in owners if applies(extension, model)]
    if usable:
        return GanzooError(f"{name} is a setting of the extension {usable[0].name!r}, which this run does not switch "
                           f"on; add --with {usable[0].name}, or drop --set {name}.")
    return GanzooError(f"{name} is a setting of the extension {owners[0].name!r}, which model {model.name!r} cannot "
                       f"use; drop --set {name} ('ganzoo info {model.name}' lists the extensions it can use).")
