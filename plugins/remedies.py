"""``--with`` remedies against mode collapse that change the networks: PacGAN, EMA, unrolling.

Instance noise, label smoothing, the discriminator weight penalty and two time-scale learning
rates are plain settings (``--set instance_noise=0.1``, ``--set lr_d=4e-4``); see
:mod:`ganzoo.remedies`. ``unrolled`` is computed in :mod:`ganzoo.adversarial`; this plugin only
declares it. Minibatch discrimination has a plugin of its own (:mod:`ganzoo.plugins.minibatch_discrimination`):
its wrapper must be the innermost, this one's the outermost.
"""

from __future__ import annotations

from typing import Any, Callable

from ganzoo.hookspecs import hookimpl
from ganzoo.specs import ExtensionSpec, ModelSpec

UNROLLED, PACGAN, EMA = "unrolled", "pacgan", "ema"


@hookimpl
def register_extensions(register: Callable[[ExtensionSpec], None]) -> None:
    """Declare the three options; the first two change the standard unconditional step or its D's input."""
    unconditional = ("unconditional",)
    register(ExtensionSpec(UNROLLED, "unrolled GAN (Metz et al. 2016, arXiv:1611.02163): G's loss against D advanced "
                                     "unroll_steps differentiable steps (default 5)", tasks=unconditional,
                           standard_step=True))
    register(ExtensionSpec(PACGAN, "PacGAN (Lin et al. 2018, arXiv:1712.04086): D judges `pack` samples at once "
                                   "(stacked along channels/features; default 2)", tasks=unconditional,
                           discriminators=("classifier",)))
    register(ExtensionSpec(EMA, "exponential moving average of G's weights (ema_decay, default 0.999), used for "
                                "pictures, the generator file and sampling"))


@hookimpl(wrapper=True, tryfirst=True)
def build_discriminator(model: ModelSpec, config: dict[str, Any]):
    """Outermost wrapper: rebuild D for packed inputs (PacGAN).

    Packing rebuilds the discriminator through the hook with ``pack`` times the channels (or
    features) and without ``pacgan``, so every other wrapper (spectral norm, minibatch
    discrimination) applies to the inner network exactly once.
    """
    discriminator = yield
    extensions = config.get("with", [])
    if discriminator is None or PACGAN not in extensions:
        return discriminator
    from ganzoo import remedies
    from ganzoo.errors import GanzooError
    from ganzoo.plugin_manager import get_manager

    if hasattr(discriminator, "reconstruction_error"):  # BEGAN's D: no verdict on a pack, only per-image errors
        raise GanzooError(f"--with pacgan cannot pack the autoencoder discriminator of {model.name!r}, which "
                          "scores each image by its own reconstruction; drop --with pacgan.")
    pack = int(config.get("pack", 2))
    inner_config = {**remedies.packed_config(config, pack), "with": [w for w in extensions if w != PACGAN]}
    inner = get_manager().hook.build_discriminator(model=model, config=inner_config)
    return remedies.make_packed_discriminator(inner, pack)


@hookimpl(wrapper=True)
def build_generator(model: ModelSpec, config: dict[str, Any]):
    """With ``ema``, wrap the family's generator so its moving average is trained alongside and saved."""
    generator = yield
    if generator is None or EMA not in config.get("with", []):
        return generator
    from ganzoo.remedies import make_ema_generator

    return make_ema_generator(generator)


#: Generator updates folded into the average so far (JSON in the checkpointed state, for the warm-up).
EMA_UPDATES = "ema_updates"


@hookimpl
def after_step(config: dict[str, Any], stage: str, generator: Any, state: dict[str, Any]) -> None:
    """With ``ema``, fold the generator's new weights into its moving average after each generator step."""
    if stage == "generator" and EMA in config.get("with", []):
        updates = int(state.get(EMA_UPDATES, 0))
        generator.update(float(config.get("ema_decay", 0.999)), updates)
        state[EMA_UPDATES] = updates + 1
