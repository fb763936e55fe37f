"""``gan``: the vanilla GAN of Goodfellow et al. 2014 with MLP generator and discriminator.

Works on images (flattened) and on toy vectors. No torch import here: the networks live in
:mod:`ganzoo.plugins.gan.networks` and are imported when built.
"""

from __future__ import annotations

from typing import Any, Callable

from ganzoo.hookspecs import hookimpl
from ganzoo.specs import Hyperparameter, ModelSpec, Paper

FAMILY = "gan"
PAPER = Paper("Generative Adversarial Nets", "Goodfellow et al.", 2014, "1406.2661")

HYPERPARAMETERS = (
    Hyperparameter("latent_dim", 100, "size of the noise vector z fed to the generator"),
    Hyperparameter("hidden_dims", [256, 512, 1024], "widths of the generator's hidden layers (reversed in D)"),
    Hyperparameter("dropout", 0.3, "dropout after each discriminator hidden layer"),
    Hyperparameter("image_size", None, "side of generated images; default: the dataset's own size"),
    Hyperparameter("epochs", 50, "passes over the training data"),
    Hyperparameter("batch_size", 64, "samples per optimisation step"),
)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """The vanilla GAN, for images and toy vectors."""
    register(ModelSpec(
        name="gan", family=FAMILY, task="unconditional",
        summary="MLP generator and discriminator (LeakyReLU 0.2, dropout in D, tanh output on images)",
        paper=PAPER, default_dataset="mnist", hyperparameters=HYPERPARAMETERS,
        data_kinds=("images", "vectors"),
        defaults_by_data={"vectors": {"latent_dim": 8, "hidden_dims": [128, 128, 128], "dropout": 0.0,
                                      "batch_size": 256, "lr": 1e-3, "epochs": 20}},
    ))


@hookimpl
def build_generator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """The MLP generator, ending in tanh for images and linear for vectors."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.gan.networks import MLPGenerator

    return MLPGenerator.from_config(config)


@hookimpl
def build_discriminator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """The MLP discriminator that outputs one logit per sample."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.gan.networks import MLPDiscriminator

    return MLPDiscriminator.from_config(config)

