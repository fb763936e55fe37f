"""``cyclegan``: Zhu et al. 2017, unpaired image-to-image translation with cycle-consistent GANs.

Two ResNet generators (G_AB, G_BA: 9 residual blocks at 256, 6 at 128 and below; instance norm;
reflection padding) and two 70x70 PatchGANs (D_A, D_B). Least-squares GAN loss; cycle loss
λ = 10; identity loss 0.5·λ; each discriminator sees a pool of 50 earlier fakes; Adam 2e-4,
β1 0.5; batch 1; 100 epochs at constant learning rate, then 100 of linear decay to 0 (the core
``decay_epochs`` schedule of :mod:`ganzoo.schedule`, which this family defaults to half of the
epochs); load 286, crop 256, flip. No torch import here: networks, pool and losses live in
:mod:`ganzoo.plugins.cyclegan.networks`.
"""

from __future__ import annotations

from typing import Any, Callable

from ganzoo.data.translation import DATA_HYPERPARAMETERS
from ganzoo.errors import GanzooError
from ganzoo.hookspecs import hookimpl
from ganzoo.specs import Hyperparameter, Losses, ModelSpec, Paper

FAMILY = "cyclegan"
PAPER = Paper("Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks", "Zhu et al.", 2017,
              "1703.10593")

HYPERPARAMETERS = (
    Hyperparameter("image_size", 256, "side of the random crops and outputs, divisible by 4 and at least 24 (64, 128, 256)"),
    Hyperparameter("g_width", 64, "generator features after the first 7x7 conv (ngf); 4x that in the residual blocks"),
    Hyperparameter("d_width", 64, "PatchGAN features at the first layer (ndf)"),
    Hyperparameter("blocks", None, "residual blocks per generator; default: 9 at 256 px, 6 at 128 and below"),
    Hyperparameter("lambda_cycle", 10.0, "weight of the cycle-consistency L1 losses (λ)"),
    Hyperparameter("lambda_identity", 0.5, "identity L1 loss weight as a fraction of λ (0 turns it off)"),
    Hyperparameter("pool_size", 50, "earlier fakes kept for the discriminators (0 turns the pool off)"),
    Hyperparameter("decay_epochs", None, "final epochs over which lr falls linearly to 0; default: half of epochs (100 of 200)"),
    Hyperparameter("epochs", 200, "passes over the larger domain: 100 at constant lr, then 100 of linear decay"),
    Hyperparameter("batch_size", 1, "images per domain per step (1 in the paper)"),
    Hyperparameter("loss", "lsgan", "the paper's least-squares GAN loss; other losses are not supported"),
) + DATA_HYPERPARAMETERS


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """CycleGAN on unpaired data."""
    register(ModelSpec(
        name="cyclegan", family=FAMILY, task="image-to-image",
        summary="two ResNet generators, two 70x70 PatchGANs, LSGAN + cycle (10) + identity (5) losses, image pools",
        paper=PAPER, default_dataset="horse2zebra", hyperparameters=HYPERPARAMETERS, data_kinds=("unpaired",),
    ))


def _check(config: dict[str, Any]) -> None:
    if config.get("loss", "lsgan") != "lsgan":
        raise GanzooError(f"cyclegan uses its paper's least-squares GAN loss; drop --loss {config['loss']}.")


@hookimpl
def build_generator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """G_AB and G_BA in one module."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.cyclegan.networks import CycleGenerators

    _check(config)
    return CycleGenerators.from_config(config)


@hookimpl
def build_discriminator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """D_A and D_B in one module."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.cyclegan.networks import CycleDiscriminators

    _check(config)
    return CycleDiscriminators(int(config["channels"]), int(config["d_width"]))


@hookimpl
def compute_losses(model: ModelSpec, config: dict[str, Any], generator: Any, discriminator: Any,
                   batch: dict[str, Any], stage: str, state: dict[str, Any]) -> Losses | None:
    """Both discriminators' terms, or both generators' adversarial, cycle and identity terms."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.cyclegan.networks import cycle_losses

    return Losses(cycle_losses(generator, discriminator, batch, stage, config, state))
