"""``acgan``: auxiliary classifier GAN of Odena et al. 2017.

D has two heads on a shared DCGAN trunk: a validity logit (real or generated) and class logits.
G gets the class through a learned embedding multiplied with the noise, z * embed(y), as in the
paper's public implementations, so both randomness and class survive. D minimises the validity
loss plus the classification loss on real images (on generated ones too with ``classify_fakes``, the
paper's choice, which on MNIST let D learn G's wrong digits as the requested class: 70 % conditional
accuracy against 96 % without, 5 epochs each); G minimises its validity loss
plus the classification loss of its images under their requested classes. The two are weighted
by ``validity_weight`` and ``class_weight`` (the course's tip when G ignores the class: set
validity_weight=0.01). Needs a dataset with labels. No torch import here.
"""

from __future__ import annotations

from typing import Any, Callable

from ganzoo.hookspecs import hookimpl
from ganzoo.plugins.cgan import CLASS_NAMES, NUM_CLASSES, labelled_sample
from ganzoo.setting_checks import require_classes
from ganzoo.plugins.dcgan import D_NORM, IMAGE_SIZE
from ganzoo.specs import Hyperparameter, Losses, ModelSpec, Paper

FAMILY = "acgan"
PAPER = Paper("Conditional Image Synthesis with Auxiliary Classifier GANs", "Odena et al.", 2017, "1610.09585")

HYPERPARAMETERS = (
    Hyperparameter("latent_dim", 100, "size of the noise vector z, multiplied element-wise by the class embedding"),
    Hyperparameter("g_width", 64, "generator feature maps at the last layer, doubled per layer going in"),
    Hyperparameter("d_width", 64, "discriminator feature maps at the first layer, doubled per layer"),
    D_NORM,
    Hyperparameter("validity_weight", 1.0, "weight of the real/fake terms (try 0.01 if G ignores the class)"),
    Hyperparameter("class_weight", 1.0, "weight of the auxiliary classification terms in D's and G's losses"),
    Hyperparameter("classify_fakes", False, "True: D's classifier also learns generated images under their requested "
                   "class (the paper's L_C; 70 % conditional accuracy on MNIST, G's 3s and 6s taught to D as such); "
                   "False: real images only (96 %)"),
    IMAGE_SIZE,
    Hyperparameter("epochs", 5, "passes over the training data"),
    Hyperparameter("batch_size", 64, "samples per optimisation step"),
    NUM_CLASSES, CLASS_NAMES,
)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """ACGAN for labelled 1- or 3-channel images."""
    register(ModelSpec(
        name="acgan", family=FAMILY, task="conditional",
        summary="DCGAN networks; G gets z * embed(y), D has a validity head and an auxiliary classifier head",
        paper=PAPER, default_dataset="mnist", hyperparameters=HYPERPARAMETERS,
    ))


@hookimpl
def build_generator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """G(z, y) = DCGAN generator(z * embed(y))."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.acgan.networks import ACGANGenerator

    return ACGANGenerator.from_config(config, require_classes(model, config))


@hookimpl
def build_discriminator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """D(x) -> (validity logit, class logits)."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.acgan.networks import ACGANDiscriminator

    return ACGANDiscriminator.from_config(config, require_classes(model, config))


@hookimpl
def generate(model: ModelSpec, config: dict[str, Any], generator: Any, num: int, noise: Any, labels: Any) -> Any:
    """``generator(noise, labels)``: one sample of each requested class."""
    return labelled_sample(model, generator, noise, labels) if model.family == FAMILY else None


@hookimpl
def compute_losses(model: ModelSpec, config: dict[str, Any], generator: Any, discriminator: Any,
                   batch: dict[str, Any], stage: str, state: dict[str, Any]) -> Losses | None:
    """Weighted validity and auxiliary-classification terms for D or G."""
    if model.family != FAMILY:
        return None
    from ganzoo.plugins.acgan.training import acgan_losses

    return acgan_losses(generator, discriminator, batch, stage, config, state)
