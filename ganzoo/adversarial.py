"""The standard adversarial step for unconditional families: D on real vs. fake, then G against D.

Families whose networks map noise to samples (``gan``, ``dcgan``, third-party ones) answer
``compute_losses`` with :func:`unconditional_losses`.
"""

from __future__ import annotations

from typing import Any

from ganzoo.specs import Losses


def make_loss(config: dict[str, Any]) -> Any:
    """The :class:`ganzoo.losses.AdversarialLoss` named by ``config["loss"]``."""
    from ganzoo.registry import get_registry

    return get_registry().losses.get(config["loss"]).factory(config)


def unconditional_losses(generator: Any, discriminator: Any, batch: dict[str, Any], stage: str,
                         config: dict[str, Any], state: dict[str, Any]) -> Losses:
    """One step's terms: the discriminator on ``batch["real"]`` against fresh fakes, or the generator."""
    import torch

    real = batch["real"]
    loss = state.get("_loss")
    if loss is None:
        loss = state["_loss"] = make_loss(config)
    noise = torch.randn(real.shape[0], int(config["latent_dim"]), device=real.device)
    if stage == "discriminator":
        with torch.no_grad():
            fake = generator(noise)
        real_out, fake_out = discriminator(real), discriminator(fake)
        metrics = {"D(x)": torch.sigmoid(real_out).mean(), "D(G(z))": torch.sigmoid(fake_out).mean()}
        return Losses(loss.discriminator(real_out, fake_out), metrics)
    return Losses(loss.generator(discriminator(generator(noise))))
