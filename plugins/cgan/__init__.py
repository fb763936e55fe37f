"""``cgan`` and ``cdcgan``: conditional GANs of Mirza & Osindero 2014.

The class label, one-hot encoded, is concatenated to the noise in G and to the sample in D:
``cgan`` is the MLP version of the course (one-hot appended to the flattened image), ``cdcgan``
the convolutional one (DCGAN networks; in D the one-hot vector enters as constant feature
maps stacked on the image). Both need a dataset with labels. No torch import here: networks
and losses live in :mod:`ganzoo.plugins.cgan.networks` and :mod:`ganzoo.plugins.cgan.training`.
"""

from __future__ import annotations

from typing import Any, Callable

from ganzoo.errors import GanzooError
from ganzoo.hookspecs import hookimpl
from ganzoo.plugins.dcgan import D_NORM, IMAGE_SIZE
from ganzoo.setting_checks import require_classes
from ganzoo.specs import Hyperparameter, Losses, ModelSpec, Paper

FAMILY = "cgan"
PAPER = Paper("Conditional Generative Adversarial Nets", "Mirza & Osindero", 2014, "1411.1784")

NUM_CLASSES = Hyperparameter(
    "num_classes", None,
    "classes G and D are conditioned on: set by the dataset, which must have labels (mnist: 10; a folder: its sub-folders)",
)
CLASS_NAMES = Hyperparameter(
    "class_names", None, "class names from the dataset, kept in the generator file for 'ganzoo sample --class NAME'",
)

MLP_HYPERPARAMETERS = (
    Hyperparameter("latent_dim", 100, "size of the noise vector z; the one-hot label is appended to it"),
    Hyperparameter("hidden_dims", [256, 512, 1024], "widths of the generator's hidden layers (reversed in D)"),
    Hyperparameter("dropout", 0.3, "dropout after each discriminator hidden layer"),
    Hyperparameter("image_size", None, "side of generated images; default: the dataset's own size"),
    Hyperparameter("epochs", 30, "passes over the training data"),
    Hyperparameter("batch_size", 64, "samples per optimisation step"),
    NUM_CLASSES, CLASS_NAMES,
)

CONV_HYPERPARAMETERS = (
    Hyperparameter("latent_dim", 100, "size of the noise vector z; the one-hot label is appended to it"),
    Hyperparameter("g_width", 64, "generator feature maps at the last layer, doubled per layer going in"),
    Hyperparameter("d_width", 64, "discriminator feature maps at the first layer, doubled per layer"),
    D_NORM,
    IMAGE_SIZE,
    Hyperparameter("epochs", 5, "passes over the training data"),
    Hyperparameter("batch_size", 64, "samples per optimisation step"),
    NUM_CLASSES, CLASS_NAMES,
)


def labelled_sample(model: ModelSpec, generator: Any, noise: Any, labels: Any) -> Any:
    """``generator(noise, labels)``, the calling convention of the conditional families' generators."""
    if labels is None:
        raise GanzooError(f"Model {model.name!r} is conditional: pass the classes to generate (e.g. --class 3).")
    return generator(noise, labels)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """The MLP and the convolutional conditional GAN."""
    register(ModelSpec(
        name="cgan", family=FAMILY, task="conditional",
        summary="MLP conditional GAN: one-hot label concatenated to z in G and to the flattened image in D",
        paper=PAPER, default_dataset="mnist", hyperparameters=MLP_HYPERPARAMETERS,
    ))
    register(ModelSpec(
        name="cdcgan", family=FAMILY, task="conditional",
        summary="convolutional conditional GAN: DCGAN networks, one-hot label appended to z in G and as feature maps in D",
        paper=PAPER, default_dataset="mnist", hyperparameters=CONV_HYPERPARAMETERS,
    ))


@hookimpl
def build_generator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """G(z, y): the MLP or DCGAN generator fed ``[z, one_hot(y)]``."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.cgan import networks

    classes = require_classes(model, config)
    return networks.conditional_generator(model.name == "cdcgan", config, classes)


@hookimpl
def build_discriminator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """D(x, y): the MLP or DCGAN discriminator seeing the sample together with its one-hot label."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.cgan import networks

    classes = require_classes(model, config)
    return networks.conditional_discriminator(model.name == "cdcgan", config, classes)


@hookimpl
def generate(model: ModelSpec, config: dict[str, Any], generator: Any, num: int, noise: Any, labels: Any) -> Any:
    """``generator(noise, labels)``: one sample of each requested class."""
    return labelled_sample(model, generator, noise, labels) if model.family == FAMILY else None


@hookimpl
def compute_losses(model: ModelSpec, config: dict[str, Any], generator: Any, discriminator: Any,
                   batch: dict[str, Any], stage: str, state: dict[str, Any]) -> Losses | None:
    """The adversarial step with real and generated samples both paired with the batch's labels."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.cgan.training import cgan_losses

    return cgan_losses(generator, discriminator, batch, stage, config, state)
