"""The conditional adversarial step: D judges (sample, label) pairs, G makes samples of the given labels."""

from __future__ import annotations

from typing import Any

from ganzoo.adversarial import run_loss
from ganzoo.specs import Losses


def cgan_losses(generator: Any, discriminator: Any, batch: dict[str, Any], stage: str,
                config: dict[str, Any], state: dict[str, Any]) -> Losses:
    """One step's terms; fakes are generated for the batch's own labels, so both sides see the data's class mix.

    Any ``--loss`` works: its terms, its gradient penalty (taken on samples paired with their labels), its metrics.
    """
    import torch

    from ganzoo.distributed import batch_noise

    real, labels = batch["real"], batch["label"]
    loss = run_loss(config, state, discriminator)
    noise = batch_noise(state, real.shape[0], int(config["latent_dim"]), real.device)  # shared across processes
    if stage == "discriminator":
        with torch.no_grad():
            fake = generator(noise, labels)
        real_out, fake_out = discriminator(real, labels), discriminator(fake, labels)
        terms = dict(loss.discriminator(real_out, fake_out))
        if hasattr(loss, "penalty"):  # gradient penalties (wgan-gp, dragan) on (sample, its label) pairs
            terms.update(loss.penalty(lambda x: discriminator(x, labels), real, fake))
        return Losses(terms, dict(loss.metrics(real_out.detach(), fake_out.detach())))
    return Losses(loss.generator(discriminator(generator(noise, labels), labels)))
