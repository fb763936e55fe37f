"""The conditional adversarial step: D judges (sample, label) pairs, G makes samples of the given labels."""

from __future__ import annotations

from typing import Any

from ganzoo.adversarial import make_loss
from ganzoo.specs import Losses


def cgan_losses(generator: Any, discriminator: Any, batch: dict[str, Any], stage: str,
                config: dict[str, Any], state: dict[str, Any]) -> Losses:
    """One step's terms; fakes are generated for the batch's own labels, so both sides see the data's class mix."""
    import torch

    real, labels = batch["real"], batch["label"]
    loss = state.get("_loss")
    if loss is None:
        loss = state["_loss"] = make_loss(config)
    noise = torch.randn(real.shape[0], int(config["latent_dim"]), device=real.device)
    if stage == "discriminator":
        with torch.no_grad():
            fake = generator(noise, labels)
        real_out, fake_out = discriminator(real, labels), discriminator(fake, labels)
        metrics = {"D(x)": torch.sigmoid(real_out).mean(), "D(G(z))": torch.sigmoid(fake_out).mean()}
        return Losses(loss.discriminator(real_out, fake_out), metrics)
    return Losses(loss.generator(discriminator(generator(noise, labels), labels)))
