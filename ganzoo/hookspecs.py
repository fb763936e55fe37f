"""The hooks a ganzoo plugin can implement. Importable without torch.

Plugins are discovered through the ``ganzoo`` entry-point group; the built-in families are
registered the same way. Registration hooks (``register_*``) receive a ``register`` callback
and hand over plain records from :mod:`ganzoo.specs`. Building and training hooks are
``firstresult``: the plugin that owns the model's ``family`` answers, the others return
``None``. A plugin may wrap another's answer with ``@hookimpl(wrapper=True)`` (see
``ganzoo.plugins.spectral_norm``). An implementation may accept fewer arguments than the
spec lists, so specs can grow without breaking plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:
    from ganzoo.specs import DatasetSpec, ExtensionSpec, Losses, LossSpec, MetricSpec, ModelSpec, PretrainedSpec

PROJECT = "ganzoo"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Declare the models this plugin offers by calling ``register(ModelSpec(...))`` once per model."""


@hookspec
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Declare datasets by calling ``register(DatasetSpec(...))``; ``ganzoo datasets`` lists them."""


@hookspec
def register_losses(register: Callable[[LossSpec], None]) -> None:
    """Declare adversarial objectives selectable with ``--loss NAME`` for any family that uses them."""


@hookspec
def register_extensions(register: Callable[[ExtensionSpec], None]) -> None:
    """Declare cross-cutting options switched on with ``--with NAME`` (config key ``with``); the settings an
    ``ExtensionSpec`` declares in ``hyperparameters`` are in every hook's ``config`` when it is switched on."""


@hookspec
def register_pretrained(register: Callable[[PretrainedSpec], None]) -> None:
    """Declare pretrained generator files usable with ``ganzoo sample MODEL --pretrained NAME``."""


@hookspec
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Declare scores that ``ganzoo eval --metrics NAME`` computes by calling ``register(MetricSpec(...))`` once per
    metric: for a plugin's own dataset, whose data the built-in metrics cannot score, or for any."""


@hookspec(firstresult=True)
def build_generator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """Return the generator ``torch.nn.Module`` for ``model`` built from the resolved ``config``.

    ``config`` holds every hyperparameter plus what the data decided (``channels``,
    ``image_size``, ``dim``, ``num_classes``). A family with two generators (CycleGAN) returns
    one module holding both; everything ``sample`` needs must live in this module, because the
    generator file is its ``state_dict``. Return ``None`` for models of other families: a model whose network
    two plugins would build is refused in one sentence naming both.
    """


@hookspec(firstresult=True)
def build_discriminator(model: ModelSpec, config: dict[str, Any]) -> Any:
    """Return the discriminator ``torch.nn.Module`` (or one module holding several) for ``model``.

    Wrappers see the built module and may modify or replace it (spectral normalisation,
    packing). Return ``None`` for models of other families.
    """


@hookspec(firstresult=True)
def build_optimizers(model: ModelSpec, config: dict[str, Any], generator: Any, discriminator: Any) -> Any:
    """Return ``{"generator": optimizer, "discriminator": optimizer}`` for the two training stages.

    The core answers last with Adam(``lr``, (``beta1``, ``beta2``)) on each network; a loss or
    family that needs RMSprop or separate rates implements this and answers first.
    """


@hookspec(firstresult=True)
def generate(model: ModelSpec, config: dict[str, Any], generator: Any, num: int, noise: Any, labels: Any) -> Any:
    """Return ``num`` samples from ``generator`` in data space (images in [-1, 1] or vectors).

    ``noise`` is a tensor of shape (num, latent_dim) drawn by the caller so sampling is
    reproducible; ``labels`` is a long tensor of classes for conditional models, else ``None``.
    The core answers last with ``generator(noise)``.
    """


@hookspec(firstresult=True)
def compute_losses(
    model: ModelSpec,
    config: dict[str, Any],
    generator: Any,
    discriminator: Any,
    batch: dict[str, Any],
    stage: str,
    state: dict[str, Any],
) -> Losses | None:
    """Return :class:`ganzoo.specs.Losses` for one optimisation step of ``stage``.

    ``stage`` is ``"discriminator"`` or ``"generator"``; the engine zeroes that stage's
    optimizer, backpropagates the sum of ``Losses.terms`` and steps it. ``batch`` maps names to
    device tensors: ``real`` (images in [-1, 1] or vectors) and ``label`` when the data has
    classes; paired and unpaired data use ``a`` and ``b``. ``state`` is a dict the family may
    keep across steps (BEGAN's k_t, CycleGAN's image pools, a progressive-growing phase); its
    tensors and JSON values are saved in checkpoints, except keys starting with ``_``: caches
    rebuilt on demand, and what the engine lends (``_optimizers``, the run's optimizers by stage,
    which the unrolled GAN reads; ``_world`` under torchrun); a resume puts each tensor back on the
    training device, or on the host if it was kept there. Under torchrun a tensor that differs
    between processes is saved for each process and comes back to it on resume. Conditional GANs read
    ``batch["label"]``; image-to-image families compute all their terms (adversarial, cycle, L1)
    here, so the engine loop never changes.
    """


@hookspec
def after_step(model: ModelSpec, config: dict[str, Any], stage: str, generator: Any, discriminator: Any,
               state: dict[str, Any]) -> None:
    """Called after every optimizer step of ``stage``, for all plugins.

    For work that follows an update: WGAN's weight clipping of the critic, an exponential moving
    average of the generator's weights, BEGAN's k_t balance. Return nothing; keep what must survive
    a resume in ``state``.
    """


@hookspec
def on_epoch_start(model: ModelSpec, config: dict[str, Any], epoch: int, optimizers: dict[str, Any],
                   state: dict[str, Any], first_batch: int) -> None:
    """Called by the engine before each epoch's first batch, for all plugins; ``epoch`` counts the epochs done
    and ``first_batch`` is the batch the epoch starts from: 0, or where a run resumed inside it goes on.

    For per-epoch schedules: the core's ``decay_epochs`` schedule (:mod:`ganzoo.schedule`) sets
    every optimizer's ``lr`` here (constant, then linear decay to 0, as CycleGAN trains), times
    ``state["lr_scale"]``, which a ``tryfirst`` impl may lower (BEGAN halves it when M stalls); under
    ``--cuda-graphs`` a lowered scale has no effect, as the captured steps keep their rate. Also
    called for the epoch a resumed run continues, so a schedule set here is the same after
    ``--resume``. Every epoch's start has ``first_batch`` 0, and so has an epoch that a resume starts
    over (the data changed): a plugin that keeps a per-epoch sum in ``state`` tells the two apart by
    recording in ``state`` which epochs it has started (BEGAN's ``began_judged_epoch``), and drops
    the sum only on a start over. Return nothing.
    """
