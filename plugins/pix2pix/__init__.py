"""``pix2pix``: Isola et al. 2017, image-to-image translation with conditional adversarial networks.

A U-Net generator with skip connections and decoder dropout maps the input side of each pair
to the output side; a 70x70 PatchGAN sees input and output concatenated. Loss: the GAN loss
(binary cross-entropy, D's halved) plus λ·L1 to the target, λ = 100; Adam 2e-4, β1 0.5;
batch 1; random jitter (resize to 286, crop 256) and mirroring. Trains on paired data (A|B side
by side per file); ``direction`` says which side is the input. No torch import here: the
networks and losses live in :mod:`ganzoo.plugins.pix2pix.networks`.
"""

from __future__ import annotations

from typing import Any, Callable

from ganzoo.data.translation import DATA_HYPERPARAMETERS
from ganzoo.errors import GanzooError
from ganzoo.hookspecs import hookimpl
from ganzoo.specs import Hyperparameter, Losses, ModelSpec, Paper

FAMILY = "pix2pix"
PAPER = Paper("Image-to-Image Translation with Conditional Adversarial Networks", "Isola et al.", 2017, "1611.07004")

HYPERPARAMETERS = (
    Hyperparameter("image_size", 256, "side of the random crops and outputs: a power of two of at least 32 (64, 128, 256)"),
    Hyperparameter("direction", "AtoB", "AtoB: left half -> right half of each pair; BtoA the other way (a named "
                   "set trains as its paper does: BtoA, labels -> photo, on facades and cityscapes)"),
    Hyperparameter("g_width", 64, "U-Net features at the outermost level (ngf), doubled per level up to 8x"),
    Hyperparameter("d_width", 64, "PatchGAN features at the first layer (ndf)"),
    Hyperparameter("lambda_l1", 100.0, "weight of the L1 distance between output and target"),
    Hyperparameter("epochs", 200, "passes over the training pairs (200 for facades in the paper)"),
    Hyperparameter("batch_size", 1, "pairs per step (1 in the paper: batch norm then acts as instance norm)"),
    Hyperparameter("loss", "ns", "the paper's GAN loss (binary cross-entropy); other losses are not supported"),
) + DATA_HYPERPARAMETERS


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """pix2pix on paired data."""
    register(ModelSpec(
        name="pix2pix", family=FAMILY, task="image-to-image",
        summary="U-Net generator with skips and dropout, 70x70 PatchGAN on (input, output), GAN + 100 L1",
        paper=PAPER, default_dataset="facades", hyperparameters=HYPERPARAMETERS, data_kinds=("paired",),
    ))


def _check(config: dict[str, Any]) -> None:
    if config.get("loss", "ns") != "ns":
        raise GanzooError(f"pix2pix uses its paper's binary cross-entropy GAN loss; drop --loss {config['loss']}.")


@hookimpl
def build_generator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """The U-Net generator."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.pix2pix.networks import UNetGenerator

    _check(config)
    return UNetGenerator.from_config(config)


@hookimpl
def build_discriminator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """The 70x70 PatchGAN on input and output stacked as channels."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.pix2pix.networks import PatchDiscriminator

    _check(config)
    return PatchDiscriminator(2 * int(config["channels"]), int(config["d_width"]), norm="batch")


@hookimpl
def compute_losses(model: ModelSpec, config: dict[str, Any], generator: Any, discriminator: Any,
                   batch: dict[str, Any], stage: str, state: dict[str, Any]) -> Losses | None:
    """GAN terms for D; GAN plus λ·L1 for G."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.pix2pix.networks import pix2pix_losses

    return Losses(pix2pix_losses(generator, discriminator, batch, stage, config, state))
