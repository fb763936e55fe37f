"""Models the literature names after their loss: ``wgan``, ``wgan-gp``, ``lsgan`` (DCGAN networks) and ``began``.

``wgan``, ``wgan-gp`` and ``lsgan`` are of family ``dcgan``, so the DCGAN plugin builds their
networks; their default ``loss`` brings the paper's training settings (see ``LossSpec.defaults``).
``began`` has its own family (:mod:`ganzoo.plugins.began_networks`): an autoencoder discriminator, and a
generator built like its decoder on images (the MLP generator on vectors).
"""

from __future__ import annotations

from typing import Any, Callable

from ganzoo.hookspecs import hookimpl
from ganzoo.plugins.dcgan import HYPERPARAMETERS as DCGAN_HYPERPARAMETERS
from ganzoo.plugins.dcgan import IMAGE_SIZE
from ganzoo.plugins.losses import BEGAN, LSGAN, WGAN, WGAN_GP
from ganzoo.specs import Hyperparameter, ModelSpec, Paper

BEGAN_FAMILY = "began"

NAMED = (
    ("wgan", WGAN, "DCGAN networks trained as a Wasserstein critic with weight clipping (RMSprop 5e-5, 5 critic steps)"),
    ("wgan-gp", WGAN_GP, "DCGAN networks with the WGAN gradient penalty (Adam 1e-4, betas 0.5/0.9, 5 critic steps; "
                         "layer norm in the critic instead of batch norm, as in the paper)"),
    ("lsgan", LSGAN, "DCGAN networks trained with the least-squares loss"),
)

BEGAN_HYPERPARAMETERS = (
    Hyperparameter("latent_dim", 64, "size of the noise vector z"),
    Hyperparameter("embedding_dim", 64, "size of the autoencoder's bottleneck h"),
    Hyperparameter("g_width", 64, "generator feature maps (images; n in the paper)"),
    Hyperparameter("d_width", 64, "autoencoder feature maps, grown by this much per downsampling (images; n)"),
    Hyperparameter("convs_per_scale", 2, "3x3 convolutions per resolution in the autoencoder and the generator "
                                         "(images; 'typically 2' in the paper)"),
    Hyperparameter("uniform_noise", True, "the generator reads z ~ U[-1, 1] as in the paper, mapped from the normal "
                                          "noise by erf(z/sqrt 2) (images)"),
    Hyperparameter("hidden_dims", [128, 128], "hidden widths of the MLP generator and autoencoder (vectors)"),
    IMAGE_SIZE,
    Hyperparameter("gamma", 0.5, "diversity ratio: target of E[L(G(z))] / E[L(x)]"),
    Hyperparameter("lambda_k", 0.001, "learning rate of the balance k_t"),
    Hyperparameter("loss", "began", "the BEGAN objective (needs this model's autoencoder discriminator)"),
    Hyperparameter("lr", 1e-4, "learning rate of both networks (the paper's 1e-4)"),
    Hyperparameter("lr_patience", 2, "halve both learning rates after this many epochs in a row whose mean M set no "
                                     "new low, as the paper does when M stalls (0: never)"),
    Hyperparameter("epochs", 5, "passes over the training data"),
    Hyperparameter("batch_size", 64, "samples per optimisation step"),
)


def _with_loss(name: str, paper: Paper) -> tuple[Hyperparameter, ...]:
    own = Hyperparameter("loss", name, f"the {name} objective of {paper.cite()}; its settings apply unless set")
    return (*DCGAN_HYPERPARAMETERS, own)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """The named loss models (only when the DCGAN plugin that builds their networks is loaded) and BEGAN."""
    from ganzoo.plugin_manager import get_manager

    for name, paper, summary in NAMED if get_manager().get_plugin("dcgan") is not None else ():
        register(ModelSpec(name=name, family="dcgan", task="unconditional", summary=summary, paper=paper,
                           default_dataset="mnist", hyperparameters=_with_loss(name, paper)))
    register(ModelSpec(
        name="began", family=BEGAN_FAMILY, task="unconditional",
        summary="autoencoder discriminator scored by L1 reconstruction error, k_t equilibrium, convergence measure M",
        paper=BEGAN, default_dataset="mnist", hyperparameters=BEGAN_HYPERPARAMETERS, data_kinds=("images", "vectors"),
        losses=("began",), discriminator="autoencoder",
        defaults_by_data={"vectors": {"latent_dim": 8, "embedding_dim": 8, "batch_size": 256, "lr": 1e-3, "epochs": 20,
                                      "lr_patience": 0}},
    ))


@hookimpl
def build_generator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """BEGAN's generator: its decoder's architecture on images (runs saved before that: DCGAN's), the MLP
    generator on vectors."""
    if model.family != BEGAN_FAMILY:
        return None
    if config["data_kind"] == "vectors":
        from ganzoo.plugins.gan.networks import MLPGenerator

        return MLPGenerator.from_config(config)
    from ganzoo.plugins.began_networks import DecoderGenerator, convs_per_scale

    convs = convs_per_scale(config)
    if convs is None:
        from ganzoo.plugins.dcgan.networks import DCGANGenerator

        return DCGANGenerator.from_config(config)
    # runs saved before ``uniform_noise`` existed were trained on the normal noise itself
    return DecoderGenerator(int(config["latent_dim"]), int(config["channels"]), int(config["image_size"]),
                            int(config["g_width"]), convs[1], bool(config.get("uniform_noise", False)))


@hookimpl
def build_discriminator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """BEGAN's autoencoder discriminator."""
    if model.family != BEGAN_FAMILY:
        return None
    from ganzoo.plugins.began_networks import AutoencoderDiscriminator

    return AutoencoderDiscriminator.from_config(config)
