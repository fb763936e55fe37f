"""Building a model's networks and optimizers through the plugin hooks, with clear errors."""

from __future__ import annotations

from typing import Any

from ganzoo.errors import GanzooError
from ganzoo.plugin_manager import get_manager
from ganzoo.specs import ModelSpec


def _answer(hook_name: str, model: ModelSpec, result: Any) -> Any:
    """``result`` if it is a network; else one sentence naming the hook, the model and its plugin."""
    import torch

    if result is None:
        raise GanzooError(
            f"No installed plugin answers {hook_name} for model {model.name!r} (family {model.family!r}, "
            f"declared by plugin {model.plugin!r}); reinstall that plugin or check 'ganzoo plugins'."
        )
    if not isinstance(result, torch.nn.Module):
        raise GanzooError(
            f"{hook_name} for model {model.name!r} (declared by plugin {model.plugin!r}) returned a "
            f"{type(result).__name__}, not a torch.nn.Module; the plugin must return the network itself."
        )
    return result


def build_generator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """The generator module of ``model``, built by the plugin that owns its family."""
    return _answer("build_generator", model, get_manager().hook.build_generator(model=model, config=config))


def build_discriminator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """The discriminator module of ``model`` (after any wrapper plugins such as spectral-norm)."""
    return _answer("build_discriminator", model, get_manager().hook.build_discriminator(model=model, config=config))


def build_optimizers(model: ModelSpec, config: dict[str, Any], generator: Any, discriminator: Any) -> dict[str, Any]:
    """``{"generator": opt, "discriminator": opt}`` from the first plugin that answers (the core answers last)."""
    return get_manager().hook.build_optimizers(model=model, config=config, generator=generator, discriminator=discriminator)
