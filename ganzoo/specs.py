"""Plain records that plugins hand to the registry. No torch import here.

Plugins describe what they offer with these dataclasses through the ``register_*`` hooks;
the registry (:mod:`ganzoo.registry`) collects them, and the CLI lists them without
building a single network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

Task = Literal["unconditional", "conditional", "image-to-image"]
DataKind = Literal["images", "vectors", "paired", "unpaired"]


@dataclass(frozen=True)
class Hyperparameter:
    """One tunable setting of a model or an extension, with its default and a one-line meaning."""

    name: str
    default: Any
    help: str


@dataclass(frozen=True)
class Paper:
    """The publication a model or loss comes from."""

    title: str
    authors: str
    year: int
    arxiv: str = ""

    def cite(self) -> str:
        """Short human citation, e.g. ``Radford et al. 2015 (arXiv:1511.06434)``."""
        ref = f" (arXiv:{self.arxiv})" if self.arxiv else ""
        return f"{self.authors} {self.year}{ref}"


@dataclass(frozen=True)
class ModelSpec:
    """A named model a plugin offers.

    ``family`` groups models that share networks (``wgan`` and ``dcgan`` could both be of
    family ``dcgan``); hook implementations answer for the families they own and return
    ``None`` for others. ``defaults_by_data`` overrides hyperparameter defaults per data kind
    (an MLP needs other widths on 2-D points than on images).
    """

    name: str
    family: str
    task: Task
    summary: str
    paper: Paper | None
    default_dataset: str
    hyperparameters: tuple[Hyperparameter, ...]
    data_kinds: tuple[DataKind, ...] = ("images",)
    defaults_by_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    plugin: str = ""
    #: the only losses (``--loss``) it trains with, when its networks read no other (BEGAN's autoencoder
    #: discriminator); empty: any its task takes
    losses: tuple[str, ...] = ()
    #: what its discriminator is, for the extensions that change one kind only (``ExtensionSpec.discriminators``):
    #: ``"classifier"``, a network giving each sample a verdict (a classifier or a critic), or another word for
    #: another kind (BEGAN's ``"autoencoder"``, which scores each sample by its own reconstruction)
    discriminator: str = "classifier"

    def defaults(self, data_kind: str | None = None) -> dict[str, Any]:
        """Hyperparameter defaults, with the overrides for ``data_kind`` applied."""
        values = {hp.name: hp.default for hp in self.hyperparameters}
        if data_kind is not None:
            values.update(self.defaults_by_data.get(data_kind, {}))
        return values


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset before building its networks."""

    kind: DataKind
    channels: int = 0
    image_size: int = 0
    dim: int = 0
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    #: settings the dataset's paper trains with, as (name, value) pairs (pix2pix on facades: direction BtoA); they
    #: apply to the models that have the setting, over the models' defaults and under the user's own
    paper_settings: tuple[tuple[str, Any], ...] = ()
    #: for data of fewer than two classes, why and what to do, as the end of the sentence a conditional model refuses
    #: it with (an image folder names a file lying beside its class folders); empty: a general explanation
    classes_note: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset. ``load(root, image_size, channels)`` returns a :class:`ganzoo.data.InMemoryData`."""

    name: str
    summary: str
    info: DatasetInfo
    load: Callable[..., Any]
    source: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class LossSpec:
    """A named adversarial objective. ``factory(config)`` returns a :class:`ganzoo.losses.AdversarialLoss`.

    ``defaults`` are the paper's training settings (``d_steps``, ``optimizer``, ``lr``, betas...),
    applied over the model's defaults when this loss is picked, unless the user sets them.
    ``network_defaults`` are the paper's choices for the networks (WGAN-GP's critic has no batch norm:
    ``d_norm='layer'``), applied the same way but only to models that have the setting.
    """

    name: str
    summary: str
    factory: Callable[[dict[str, Any]], Any]
    paper: Paper | None = None
    plugin: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    network_defaults: dict[str, Any] = field(default_factory=dict)
    #: the only models it works with, when it needs their networks (BEGAN's loss: an autoencoder discriminator);
    #: empty: any model
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtensionSpec:
    """A cross-cutting option switched on with ``ganzoo train ... --with NAME``."""

    name: str
    summary: str
    plugin: str = ""
    #: the model tasks it works with (``"unconditional"``...); empty: every task. Others refuse it in one sentence.
    tasks: tuple[str, ...] = ()
    #: it acts inside the core's standard unconditional step, so models that compute their own losses refuse it too
    standard_step: bool = False
    #: the model families it works with (its own plugin's, say); empty: every family. Others refuse it in one sentence.
    families: tuple[str, ...] = ()
    #: the kinds of discriminator (``ModelSpec.discriminator``) it can change, when it rebuilds or edits D's network
    #: (PacGAN, minibatch discrimination: ``("classifier",)``); empty: every kind. Others refuse it in one sentence.
    discriminators: tuple[str, ...] = ()
    #: its own settings, as a model declares its own: with ``--with NAME`` they join the run's config (``--set`` takes
    #: them, ``ganzoo info`` lists them); without it ``--set`` refuses them, naming the extension
    hyperparameters: tuple[Hyperparameter, ...] = ()


@dataclass(frozen=True)
class PretrainedSpec:
    """A pretrained generator file: where it lives, its checksum, and how good it is.

    ``location`` is a path (relative paths are resolved against ``base_dir``) or an ``https://``
    (or ``http://``) URL that is downloaded once into the cache and checked against ``sha256``, the
    file's 64 hexadecimal digits (a plugin with another value is skipped at registration).
    """

    name: str
    model: str
    dataset: str
    location: str
    sha256: str
    trained_with: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    base_dir: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class MetricSpec:
    """A score that ``ganzoo eval --metrics NAME`` computes, declared by a plugin: for its own dataset (a kind of data
    the built-in metrics cannot score), or for any.

    ``score(samples, real, dataset)`` gets the :class:`ganzoo.evaluation.Samples` to score (``values``: uint8
    images (N, C, H, W) or float vectors (N, D), on the CPU; ``labels`` and ``class_names`` for a conditional
    model's), ``real``, the dataset's training data as one CPU tensor (images as uint8 at the samples' channels and
    size, vectors as float), or None when ``uses_real`` is False, and the name of the dataset (for a metric of
    several). It returns ``{name: number}`` (a list of numbers is taken too), shown in eval's table and written by
    ``--json``; names the other metrics give are refused. ganzoo's own ``toy`` scores are registered this way.
    """

    name: str
    summary: str
    score: Callable[[Any, Any, str], dict[str, Any]]
    #: the kinds of samples it scores (``"images"``, ``"vectors"``); others refuse it in one sentence
    kinds: tuple[str, ...] = ("images", "vectors")
    #: the datasets it scores against (its plugin's own, say); empty: any. ``ganzoo eval --data NAME`` with no
    #: ``--metrics`` scores with the metrics that name NAME here.
    datasets: tuple[str, ...] = ()
    #: whether ``score`` compares with the real data: it is then loaded before any sample is generated, so that data
    #: that cannot be had fails first
    uses_real: bool = True
    plugin: str = ""


@dataclass
class Losses:
    """What ``compute_losses`` returns: ``terms`` are summed and backpropagated, ``metrics`` only logged.

    Both map names to scalar tensors; the engine detaches them for logging and never
    reads them on the host inside the step.
    """

    terms: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
