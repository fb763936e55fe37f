"""``dcgan``: Radford et al. 2015, deep convolutional GAN.

Strided (transposed) convolutions, batch norm, ReLU in G and LeakyReLU(0.2) in D, tanh output,
weights drawn from N(0, 0.02), Adam lr 2e-4 with beta1 0.5. Image sides from 8 up that are 4 to 7 times a power of
two (28, 32, 40, 64, 128...), 1 or 3 channels.
"""

from __future__ import annotations

from typing import Any, Callable

from ganzoo.hookspecs import hookimpl
from ganzoo.specs import Hyperparameter, ModelSpec, Paper

FAMILY = "dcgan"
PAPER = Paper("Unsupervised Representation Learning with Deep Convolutional Generative Adversarial Networks",
              "Radford et al.", 2015, "1511.06434")

#: The discriminator's normalisation, a setting of every model built on the DCGAN discriminator.
D_NORM = Hyperparameter("d_norm", "batch", "discriminator normalisation: batch, layer (each image over C,H,W: "
                        "WGAN-GP's critic, the default with --loss wgan-gp) or none")

#: The image side of the DCGAN networks (and of the families built on them): 4 to 7 times 2, 4, 8...
IMAGE_SIZE = Hyperparameter("image_size", None, "side of generated images, from 8 up, 4 to 7 times a power of two "
                            "(28, 32, 40, 64...); default: the dataset's own size")

HYPERPARAMETERS = (
    Hyperparameter("latent_dim", 100, "size of the noise vector z (100 in the paper)"),
    Hyperparameter("g_width", 64, "generator feature maps at the last layer (ngf), doubled per layer going in"),
    Hyperparameter("d_width", 64, "discriminator feature maps at the first layer (ndf), doubled per layer"),
    D_NORM,
    IMAGE_SIZE,
    Hyperparameter("epochs", 5, "passes over the training data"),
    Hyperparameter("batch_size", 64, "samples per step (the paper used 128; 64 doubles the updates per epoch on MNIST-sized sets)"),
)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """DCGAN for 1- or 3-channel images."""
    register(ModelSpec(
        name="dcgan", family=FAMILY, task="unconditional",
        summary="strided convolutions, batch norm, ReLU in G / LeakyReLU in D, tanh output, N(0, 0.02) init",
        paper=PAPER, default_dataset="mnist", hyperparameters=HYPERPARAMETERS,
    ))


@hookimpl
def build_generator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """The transposed-convolution generator."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.dcgan.networks import DCGANGenerator

    return DCGANGenerator.from_config(config)


@hookimpl
def build_discriminator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """The strided-convolution discriminator that outputs one logit per image."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.dcgan.networks import DCGANDiscriminator

    return DCGANDiscriminator.from_config(config)
