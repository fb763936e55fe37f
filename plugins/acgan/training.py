"""The ACGAN step: validity terms from the configured adversarial loss plus auxiliary cross-entropy terms."""

from __future__ import annotations

from typing import Any

from ganzoo.adversarial import run_loss
from ganzoo.specs import Losses


def acgan_losses(generator: Any, discriminator: Any, batch: dict[str, Any], stage: str,
                 config: dict[str, Any], state: dict[str, Any]) -> Losses:
    """D: weighted validity loss + classification of real images (true labels), and of fakes (requested
    labels) when ``classify_fakes`` is on, as in the paper (off by default: see the plugin's docstring).

    G: weighted validity loss + classification of its images under the labels it was asked for.
    Fakes get classes drawn uniformly, as in the paper (c ~ p_c).
    """
    import torch
    import torch.nn.functional as F

    from ganzoo.distributed import batch_labels, batch_noise

    real, labels = batch["real"], batch["label"]
    loss = run_loss(config, state, discriminator)
    w_valid, w_class = float(config["validity_weight"]), float(config["class_weight"])
    size = real.shape[0]
    noise = batch_noise(state, size, int(config["latent_dim"]), real.device)  # both shared across processes
    wanted = batch_labels(state, size, int(config["num_classes"]), real.device)
    if stage == "discriminator":
        with torch.no_grad():
            fake = generator(noise, wanted)
        (real_valid, real_class), (fake_valid, fake_class) = discriminator(real), discriminator(fake)
        terms = dict(loss.discriminator(real_valid, fake_valid))
        if hasattr(loss, "penalty"):  # gradient penalties (wgan-gp, dragan) on the validity head
            terms.update(loss.penalty(lambda x: discriminator(x)[0], real, fake))
        terms = {name: w_valid * value for name, value in terms.items()}
        terms["d_class_real"] = w_class * F.cross_entropy(real_class, labels)
        if config["classify_fakes"]:
            terms["d_class_fake"] = w_class * F.cross_entropy(fake_class, wanted)
        metrics = {
            **loss.metrics(real_valid.detach(), fake_valid.detach()),
            "acc_real": (real_class.argmax(1) == labels).float().mean(),
            "acc_fake": (fake_class.argmax(1) == wanted).float().mean(),
        }
        return Losses(terms, metrics)
    fake_valid, fake_class = discriminator(generator(noise, wanted))
    terms = {name: w_valid * value for name, value in loss.generator(fake_valid).items()}
    terms["g_class"] = w_class * F.cross_entropy(fake_class, wanted)
    return Losses(terms)
