"""Building a model's networks and optimizers through the plugin hooks, with clear errors."""

from __future__ import annotations

from typing import Any

from ganzoo.errors import GanzooError, with_article
from ganzoo.plugin_manager import distribution_of, get_manager, get_plugins
from ganzoo.specs import ModelSpec


def _answer(hook_name: str, model: ModelSpec, result: Any) -> Any:
    """``result`` if it is a network; else one sentence naming the hook, the model and its plugin."""
    import torch

    if result is None:
        raise GanzooError(
            f"No installed plugin answers {hook_name} for model {model.name!r} (family {model.family!r}, "
            f"declared by plugin {model.plugin!r}); the plugin of that family must implement {hook_name} and return "
            f"the network when model.family is {model.family!r} ('ganzoo plugins' shows the hooks each plugin has, "
            "and any skipped or disabled)."
        )
    if not isinstance(result, torch.nn.Module):
        raise GanzooError(
            f"{hook_name} for model {model.name!r} (declared by plugin {model.plugin!r}) returned "
            f"{with_article(type(result).__name__)}, not a torch.nn.Module; the plugin must return the network itself."
        )
    return result


def _builders(hook_name: str, model: ModelSpec, config: dict[str, Any]) -> list[str]:
    """The plugins whose own implementation of ``hook_name`` (wrappers aside) returns a network for ``model``, in
    the order pluggy asks them, each asked on the meta device (no memory, no arithmetic); one that fails there is
    left out."""
    import warnings

    import torch

    arguments = {"model": model, "config": config}
    answering = []
    for impl in reversed(getattr(get_manager().hook, hook_name).get_hookimpls()):  # pluggy calls the last first
        if impl.hookwrapper or impl.wrapper:
            continue
        try:  # quietly: the real build says what it has to say once
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                network = impl.function(*(arguments[name] for name in impl.argnames))
        except Exception:  # a network that needs real tensors; the real build reports a failure of its own
            continue
        if network is not None:
            answering.append(impl.plugin_name)
    return answering


def _refuse_two_builders(hook_name: str, model: ModelSpec, config: dict[str, Any]) -> None:
    """Refuse a model whose network two plugins would build: the first in pluggy's order would win unsaid, so a
    plugin whose build hook forgets to check ``model.family`` silently trained its network in place of the one
    the model's own plugin builds (the built-in ``gan`` included)."""
    checked = get_plugins().single_builders  # once per model and process: a build hook may print or download
    if (hook_name, model.name) in checked:
        return
    answering = _builders(hook_name, model, config)
    if len(answering) < 2:
        checked.add((hook_name, model.name))
        return
    named = " and ".join(f"{name!r} ({distribution_of(name)})" for name in answering[:2])
    raise GanzooError(
        f"Plugins {named} both answer {hook_name} for model {model.name!r} (family {model.family!r}), so which "
        f"network it gets would depend on their order; a build hook must return None for models of other "
        f"families (compare model.family with its own), and a new family needs a name of its own.")


def refuse_undeclared_family_settings(model: ModelSpec, config: dict[str, Any]) -> None:
    """Refuse a third party's model of a family other plugins' models belong to (family ``dcgan``) that lacks a
    setting every one of those models declares: the family's build hooks read them from the config, and a missing
    one was a ``KeyError`` traceback inside the family's plugin. For a new run's resolved ``config``: ganzoo's own
    models are left alone, as are settings read back from files (older ones may lack a setting added since, which
    the networks then default)."""
    from ganzoo.plugin_manager import BUILT_IN
    from ganzoo.registry import get_registry

    builders = {impl.plugin_name for impl in get_manager().hook.build_generator.get_hookimpls()
                if not (impl.hookwrapper or impl.wrapper)}
    if model.plugin in builders or distribution_of(model.plugin) == BUILT_IN:  # it builds its family itself
        return
    # the family's models from plugins that build networks: the settings they all declare are what it is built from
    others = [other for other in get_registry().models.items.values()
              if other.family == model.family and other.plugin != model.plugin and other.plugin in builders]
    if not others:
        return
    shared = set.intersection(*({h.name for h in other.hyperparameters} for other in others))
    missing = [h.name for h in others[0].hyperparameters if h.name in shared and h.name not in config]
    if missing:
        raise GanzooError(
            f"Model {model.name!r} (plugin {model.plugin!r} from {distribution_of(model.plugin)}) is of family "
            f"{model.family!r}, whose networks are built from settings it does not declare ({', '.join(missing)}); "
            f"declare them in its hyperparameters, as model {others[0].name!r} does ('ganzoo info {others[0].name}' "
            f"lists them with their defaults).")


def build_generator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """The generator module of ``model``, built by the plugin that owns its family (the only one that answers)."""
    _refuse_two_builders("build_generator", model, config)
    return _answer("build_generator", model, get_manager().hook.build_generator(model=model, config=config))


def build_discriminator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """The discriminator module of ``model`` (after any wrapper plugins such as spectral-norm)."""
    _refuse_two_builders("build_discriminator", model, config)
    return _answer("build_discriminator", model, get_manager().hook.build_discriminator(model=model, config=config))


def build_optimizers(model: ModelSpec, config: dict[str, Any], generator: Any, discriminator: Any) -> dict[str, Any]:
    """``{"generator": opt, "discriminator": opt}`` from the first plugin that answers (the core answers last)."""
    return get_manager().hook.build_optimizers(model=model, config=config, generator=generator, discriminator=discriminator)
