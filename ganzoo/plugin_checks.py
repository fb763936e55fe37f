"""Plugins' mistakes at training time, each turned into one sentence naming the plugin.

A third-party plugin is written and tested apart from ganzoo, so its mistakes reach users who did
not write it: an exception inside one of its hooks, a generator whose samples do not have the
data's shape, losses that are not scalar tensors, a model without ``latent_dim``, a dataset whose
``load`` raises or returns something else than ganzoo's data. Each becomes a
:class:`ganzoo.errors.GanzooError` naming the plugin. The checks of what plugins return run once
(after building, at each stage's first step), and an exception is traced to the hook that raised it
only after training stopped (:func:`hook_failure`), so the training loop pays nothing for them.

An exception raised in the code of ganzoo's own plugins (distribution ``ganzoo``) or of its core
keeps its traceback: that is our bug, and the traceback is what we need to fix it. A plugin's
:class:`GanzooError` (its own refusal) passes unchanged, and so do ``KeyboardInterrupt`` and
``SystemExit``. ``GANZOO_DEBUG=1`` shows a third-party plugin's exception with its traceback.
"""

from __future__ import annotations

import errno
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from ganzoo.errors import DEBUG_ENV, GanzooError, debugging, with_article
from ganzoo.out_of_memory import is_out_of_memory
from ganzoo.plugin_manager import BUILT_IN, get_plugins
from ganzoo.specs import DatasetInfo, DatasetSpec, ExtensionSpec, LossSpec, Losses, MetricSpec, ModelSpec


def _distribution(plugin: str) -> str | None:
    """The distribution that ships ``plugin``; None for ganzoo's core (registered without one) and unknown names."""
    return next((r.distribution for r in get_plugins().records if r.name == plugin), None)


def _third_party(plugin: str) -> bool:
    """Whether ``plugin`` comes from another distribution than ganzoo's."""
    return _distribution(plugin) not in (None, BUILT_IN)


def _named(plugin: str) -> str:
    """``plugin 'tiny' from ganzoo-tiny``, as ``ganzoo plugins`` names it."""
    return f"plugin {plugin!r} from {_distribution(plugin) or '?'}"


def _exception_text(exc: BaseException) -> str:
    """``KeyError: 'width'``: the type and first line of ``exc``."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


#: The errors of the machine's limits (a full disk or quota, no memory, too many open files), never a plugin's fault.
MACHINE_LIMITS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EFBIG})


def _blamed(exc: Exception, plugin: str | None, where: str) -> GanzooError | None:
    """The sentence for ``exc``, raised by third-party ``plugin`` ``where`` (``in compute_losses for model 'x'``);
    None when it must propagate as it is."""
    if isinstance(exc, (GanzooError, Warning)) or plugin is None or not _third_party(plugin) or debugging():
        return None  # its own refusal, or a warning the user's filter made an error (--strict-data's bad image)
    if (isinstance(exc, OSError) and exc.errno in MACHINE_LIMITS) or is_out_of_memory(exc):
        return None  # the machine's limits (disk, memory), not the plugin's mistake: the CLI says so
    if isinstance(exc, OSError) and exc.filename is not None:  # a file it looked for (a dataset's own data, say)
        return GanzooError(f"Plugin {plugin!r} from {_distribution(plugin)} met {_exception_text(exc)} {where}; check "
                           f"the path it names, or report it to the plugin's authors ({DEBUG_ENV}=1 shows the "
                           "traceback).")
    return GanzooError(f"Plugin {plugin!r} from {_distribution(plugin)} raised {_exception_text(exc)} {where}; fix "
                       f"the plugin or report it to its authors ({DEBUG_ENV}=1 shows the traceback).")


def _raised_in(exc: BaseException) -> tuple[str, str] | None:
    """(plugin, where) of the plugin code that raised ``exc``, the innermost on its traceback (a wrapper such as
    spectral-norm sees the exception of the implementation it wraps pass through it): a hook implementation
    (``"build_generator"``), or any other function of a plugin's modules, such as its loss's methods or its
    network's ``forward`` (``"discriminator() of its module walk_losses"``); None if no plugin code did."""
    manager = get_plugins().manager
    implementations = {getattr(impl.function, "__code__", None): (impl.plugin_name, caller.name)
                       for caller in vars(manager.hook).values() for impl in caller.get_hookimpls()}
    # a plugin's package, not only the module its entry point names (mypkg.nets beside mypkg.plugin); ganzoo's own
    # modules are the core's, whose exceptions keep their traceback
    packages = {getattr(module, "__name__", "").split(".")[0]: name for name, module in manager.list_name_plugin()
                if _third_party(name)}
    found, frame = None, exc.__traceback__
    while frame is not None:
        code = frame.tb_frame.f_code
        module = frame.tb_frame.f_globals.get("__name__", "")
        owner = packages.get(module.split(".")[0])
        if code in implementations:
            found = implementations[code]
        elif owner is not None:
            found = owner, f"{code.co_name}() of its module {module}"
        frame = frame.tb_next
    return found


def hook_failure(exc: Exception, model: str | None = None) -> GanzooError | None:
    """One sentence for ``exc`` if a third-party plugin's code (a hook, or a function of its modules) raised it
    (while training ``model``, when given), else None (raise ``exc`` itself). Read off the traceback once the
    command stopped, so plugin calls in the loop cost nothing extra."""
    raised_in = _raised_in(exc)
    if raised_in is None:
        return None
    plugin, where = raised_in
    return _blamed(exc, plugin, f"in {where}" + (f" for model {model!r}" if model else ""))


def require_latent_dim(model: ModelSpec, config: dict[str, Any]) -> None:
    """Refuse a model drawn from noise whose settings have no ``latent_dim``, which the standard step and
    sampling read for the size of the noise, before anything is built (else a KeyError deep in training)."""
    if model.task == "image-to-image" or "latent_dim" in config:
        return
    raise GanzooError(f"Model {model.name!r} of {_named(model.plugin)} draws its samples from noise but declares no "
                      "latent_dim, the size of that noise; the plugin must add Hyperparameter('latent_dim', SIZE, "
                      "'noise size') to its ModelSpec's hyperparameters.")


def require_valid_defaults(model: ModelSpec, data_kind: str) -> None:
    """Refuse a model whose plugin declares a default (for ``data_kind``) that the checks of the settings refuse
    (``latent_dim`` given as the text ``"4"``, a negative ``lr``), before the user's settings are read: the user set
    nothing, so the sentence names the plugin rather than say it as of a value the user typed. A default of None
    (a setting the user must give, ``Hyperparameter("epochs", None, ...)``) is left to the check of what was given."""
    _refuse_declared_defaults(f"Model {model.name!r} ({_named(model.plugin)})", model.defaults(data_kind))


def require_valid_extension_defaults(extension: ExtensionSpec) -> None:
    """Refuse an extension whose plugin declares a default for one of its settings that the checks of the settings
    refuse (a ``dropout`` of 2), when a run switches it on, in the sentence :func:`require_valid_defaults` says of
    a model's."""
    _refuse_declared_defaults(f"Extension {extension.name!r} ({_named(extension.plugin)})",
                              {hp.name: hp.default for hp in extension.hyperparameters})


def _refuse_declared_defaults(owner: str, defaults: dict[str, Any]) -> None:
    """Refuse the ``defaults`` a plugin's ``owner`` (``Model 'x' (plugin 'p' from dist)``) declares when the checks
    of the settings refuse one, among the common training defaults, naming the plugin."""
    from ganzoo.config import TRAINING_HYPERPARAMETERS, validate_numbers

    declared = {key: value for key, value in defaults.items() if value is not None}
    try:
        validate_numbers({**{hp.name: hp.default for hp in TRAINING_HYPERPARAMETERS}, **declared})
    except GanzooError as exc:
        raise GanzooError(f"{owner} declares a default that ganzoo refuses: "
                          f"{str(exc).rstrip('.')}; fix the plugin's Hyperparameter or report it to its authors.") from None


def describe_shape(shape: Any) -> str:
    """A sample's shape as the sentences write it: ``3x28x28``."""
    return "x".join(str(size) for size in shape)


def sample_shape(config: dict[str, Any]) -> tuple[int, ...]:
    """The shape of one sample of the data ``config`` was resolved for: (dim,) or (channels, size, size)."""
    if config["data_kind"] == "vectors":
        return (int(config["dim"]),)
    size = int(config["image_size"])
    return int(config["channels"]), size, size


def samples_problem(config: dict[str, Any], samples: Any, asked: int) -> str | None:
    """What a generator gave instead of ``asked`` samples of the data's shape ("1 samples of shape 3x8x8", "a
    tuple"), or None when it gave those."""
    import torch

    if not isinstance(samples, torch.Tensor) or samples.dim() == 0:
        return with_article(type(samples).__name__ if not isinstance(samples, torch.Tensor) else "0-d tensor")
    if len(samples) == asked and tuple(samples.shape[1:]) == sample_shape(config):
        return None
    return f"{len(samples)} samples of shape {describe_shape(samples.shape[1:])}"


@contextmanager
def _trial_run(generator: Any, *networks: Any) -> Iterator[None]:
    """Run new networks once without changing them or the run: eval mode (batch-norm statistics stay), no_grad
    (not inference mode: a lazy layer made here must still train) and forked random streams (a forward's own
    draws, such as noise inputs, must not move the run's)."""
    import torch

    device = next(generator.parameters()).device
    modes = [(network, network.training) for network in (generator, *networks)]
    for network, _ in modes:
        network.eval()
    try:
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []), torch.no_grad():
            yield
    finally:
        for network, mode in modes:
            network.train(mode)


def _raise_if_blamed(exc: Exception, model: ModelSpec, where: str) -> None:
    """Raise the sentence for ``exc``, raised while trying a network of ``model``: a hook that raised names its
    plugin; else the model's plugin built the network that failed. Returns (so the caller re-raises ``exc``)
    when it is ganzoo's own bug."""
    error = hook_failure(exc, model.name) or _blamed(exc, model.plugin, where)
    if error is not None:
        raise error from exc


def check_generator(model: ModelSpec, config: dict[str, Any], generator: Any) -> None:
    """Draw two samples from a new ``generator`` and refuse it when their shape is not the data's.

    Once, right after building: a wrong shape would otherwise train into garbage or fail deep in
    torch. Through :func:`_trial_run`, so neither the weights, the batch-norm statistics nor the
    run's random streams change. Image-to-image generators take no noise and are not checked.
    """
    if model.task == "image-to-image":
        return
    import torch

    from ganzoo import sampling
    from ganzoo.registry import plugin_implements

    wanted = sample_shape(config)
    try:
        with _trial_run(generator):
            samples = sampling.generate(model, config, generator, 2, inference=False, checked=False)
    except Exception as exc:
        _raise_if_blamed(exc, model, f"in the generator of model {model.name!r} given noise of latent_dim "
                                  f"{config['latent_dim']}")
        raise
    problem = samples_problem(config, samples, 2)
    if problem is not None:
        fix = ("its generate hook must return one sample of the data's shape per noise row, and its build_generator "
               "follow config's dim, or channels and image_size") if plugin_implements(model, "generate") else (
            "its build_generator must follow config's dim, or channels and image_size")
        raise GanzooError(f"The generator of model {model.name!r} ({_named(model.plugin)}) gave {problem} where 2 "
                          f"samples of the data's shape {describe_shape(wanted)} were asked for; {fix}.")
    if samples.is_floating_point() and samples.dtype != torch.float32:  # before any autocast: the weights' own type
        raise GanzooError(f"The generator of model {model.name!r} ({_named(model.plugin)}) gave "
                          f"{str(samples.dtype).removeprefix('torch.')} samples where ganzoo trains in float32 (lower "
                          "precision comes from --precision); build its layers in float32, without .double() or .half().")


#: Samples (or PacGAN packs) the discriminator check scores: not 2, the size of many point sets, so that a
#: discriminator averaging its input over the batch does not pass for one giving a score per sample.
SCORED = 3


def check_discriminator(model: ModelSpec, config: dict[str, Any], generator: Any, discriminator: Any) -> None:
    """Score a few samples of a new ``generator`` with a new ``discriminator``, and refuse it in one sentence
    naming its plugin when that fails (most often a first layer sized for other data) or when its scores do not
    have the batch as their first dimension (a mean over the batch trains on the wrong numbers without a word),
    instead of a torch traceback or a silent run. Only for the standard unconditional step, which calls
    ``discriminator(x)`` alone; models with their own ``compute_losses`` call theirs with what they choose
    (labels, image pairs)."""
    from ganzoo import sampling
    from ganzoo.registry import computes_own_losses

    if computes_own_losses(model):
        return
    pack = int(config.get("pack") or 1) if "pacgan" in (config.get("with") or ()) else 1  # D takes whole packs
    try:
        with _trial_run(generator, discriminator):
            scores = discriminator(sampling.generate(model, config, generator, SCORED * pack, inference=False))
    except Exception as exc:
        _raise_if_blamed(exc, model, f"in the discriminator of model {model.name!r} given samples of shape "
                                  f"{describe_shape(sample_shape(config))}")
        raise
    problem = _scores_problem(scores)
    if problem:
        scored = f"{SCORED} packs of {pack} samples" if pack > 1 else f"{SCORED} samples"
        unit = "pack" if pack > 1 else "sample"
        raise GanzooError(f"The discriminator of model {model.name!r} ({_named(model.plugin)}) gave {problem} for "
                          f"{scored}, where one score per {unit} was expected (shape {SCORED}, or {SCORED}x... for "
                          f"several per {unit}, as a PatchGAN gives); its forward must keep the batch as the first "
                          "dimension, without averaging or summing over it.")


def _scores_problem(scores: Any) -> str:
    """What a discriminator gave for :data:`SCORED` samples instead of scores with the batch first ("a single
    number", "scores of shape 1x3", "a tuple"), or ""."""
    import torch

    if not isinstance(scores, torch.Tensor):
        return with_article(type(scores).__name__)
    if scores.dim() == 0:
        return "a single number"
    return "" if scores.shape[0] == SCORED else f"scores of shape {describe_shape(scores.shape)}"


def _losses_source(model: ModelSpec, config: dict[str, Any]) -> str:
    """Who made the losses: the model's plugin, or for the standard step the ``--loss``'s plugin."""
    from ganzoo.registry import computes_own_losses, get_registry

    if computes_own_losses(model):
        return f"compute_losses for model {model.name!r} ({_named(model.plugin)})"
    loss = get_registry().losses.get(config["loss"])
    return f"--loss {loss.name} ({_named(loss.plugin)}), training model {model.name!r},"


def no_losses(model: ModelSpec, stage: str) -> GanzooError:
    """The sentence for a ``stage`` no plugin answered ``compute_losses`` for: the model's plugin implements it but
    answered None (a forgotten return; the standard step does not stand in for such a plugin), or the core's
    standard step trains unconditional models only, so any other model's plugin must compute its losses itself."""
    from ganzoo.registry import plugin_computes_losses

    if plugin_computes_losses(model):
        return GanzooError(f"compute_losses of {_named(model.plugin)} returned None for its model {model.name!r} at the "
                           f"{stage} stage; a plugin that implements compute_losses computes its models' losses at "
                           "every stage, so return Losses(terms, metrics) there (or leave compute_losses out of the "
                           "plugin for ganzoo's standard step to train its unconditional models).")
    if model.task == "unconditional":
        return GanzooError(f"No plugin computes the losses of model {model.name!r} ({_named(model.plugin)}); check "
                           "'ganzoo plugins' for a blocked or skipped plugin.")
    return GanzooError(f"No plugin computes the losses of the {model.task} model {model.name!r} "
                       f"({_named(model.plugin)}): ganzoo's standard step trains unconditional models only, so the "
                       "plugin must implement compute_losses for it.")


def _value_problem(value: Any) -> str:
    """Why ``value`` cannot be a loss term or metric, or "": the engine needs a tensor holding one number."""
    import torch

    if not isinstance(value, torch.Tensor):
        return f"{with_article(type(value).__name__)}, not a torch tensor"
    if value.dim() != 0:
        return f"a tensor of shape {describe_shape(value.shape)}, not a scalar (reduce it with .mean() or .sum())"
    return ""


def check_losses(model: ModelSpec, config: dict[str, Any], stage: str, losses: Any) -> None:
    """Refuse what ``compute_losses`` returned for ``stage`` unless the engine can backpropagate and log it:
    a :class:`Losses` of scalar tensors, at least one term with a gradient. Called at each stage's first step only."""
    if not isinstance(losses, Losses):
        raise GanzooError(f"{_losses_source(model, config)} returned {with_article(type(losses).__name__)} for the {stage} stage, "
                          "not a ganzoo.specs.Losses; return Losses(terms, metrics) with scalar tensors.")
    for kind, values in (("term", losses.terms), ("metric", losses.metrics)):
        for name, value in values.items():
            problem = _value_problem(value)
            if problem:
                raise GanzooError(f"{_losses_source(model, config)} gave the {stage} {kind} {name!r} as {problem}; "
                                  "every term and metric must be a scalar torch tensor.")
    if not losses.terms:
        raise GanzooError(f"{_losses_source(model, config)} gave no terms for the {stage} stage; return at least one "
                          "loss tensor to backpropagate.")
    if not any(term.requires_grad for term in losses.terms.values()):
        raise GanzooError(f"{_losses_source(model, config)} gave {stage} terms that do not depend on the networks' "
                          "weights, so there is nothing to backpropagate; compute them without .detach(), .item() or "
                          "torch.no_grad().")


def _called_blaming(call: Callable[[], Any], plugin: str, where: str) -> Any:
    """``call()``; an exception raised in a plugin's function that is not a hook (so not found by
    :func:`hook_failure`) becomes the sentence naming ``plugin`` and ``where``."""
    try:
        return call()
    except Exception as exc:
        failure = _blamed(exc, plugin or None, where)
        if failure is None:
            raise
        raise failure from exc


def loaded(dataset: DatasetSpec, root: Any, config: dict[str, Any]) -> Any:
    """``dataset.load(root, image_size, channels)`` for the run ``config`` describes (image-to-image sets also get
    ``config=``, to choose streaming or not), checked: an exception its ``load`` raises, or an answer the engine
    cannot train on, is one sentence naming its plugin."""
    settings = {"config": config} if dataset.info.kind in ("paired", "unpaired") else {}
    data = _called_blaming(lambda: dataset.load(root, config.get("image_size"), config.get("channels"), **settings),
                           dataset.plugin, f"in the load function of dataset {dataset.name!r}")
    check_loaded_data(dataset, data, config)
    return data


def scored(metric: MetricSpec, samples: Any, real: Any, dataset: str, taken: set[str]) -> dict[str, Any]:
    """``metric.score(samples, real, dataset)``, checked: an exception it raises, or an answer eval cannot show (not
    a dict of names to numbers or lists of numbers, or a name in ``taken``, those another metric already gave), is
    one sentence naming its plugin. Whole numbers stay whole (a count of modes), the others become floats."""
    import numbers

    scores = _called_blaming(lambda: metric.score(samples, real, dataset), metric.plugin,
                             f"in the score function of metric {metric.name!r}")
    owner = f"The score function of metric {metric.name!r} ({_named(metric.plugin)})"
    if not isinstance(scores, dict) or not scores:
        got = "an empty dict" if isinstance(scores, dict) else with_article(type(scores).__name__)
        raise GanzooError(f"{owner} returned {got}, not a dict of names to numbers; it must return one such as "
                          "{'coverage': 0.93}.")

    def number(value: Any) -> bool:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)

    for name, value in scores.items():
        if not isinstance(name, str) or not (number(value) or (isinstance(value, list) and all(map(number, value)))):
            raise GanzooError(f"{owner} returned {name!r}: {with_article(type(value).__name__)}; each score must be "
                              "a number (a float, an int) or a list of numbers, under a name (a str).")
        if name in taken:
            raise GanzooError(f"{owner} returned a score named {name!r}, which another metric of this eval already "
                              "gives; name its scores after the metric (such as 'NAME_score').")

    def plain(value: Any) -> int | float:
        return int(value) if isinstance(value, numbers.Integral) else float(value)

    return {name: [plain(v) for v in value] if isinstance(value, list) else plain(value)
            for name, value in scores.items()}


def built_loss(loss: LossSpec, config: dict[str, Any]) -> Any:
    """``loss.factory(config)``, checked: an exception the factory raises, or an object that is not an
    :class:`ganzoo.losses.AdversarialLoss`, is one sentence naming its plugin."""
    from ganzoo.losses import AdversarialLoss

    made = _called_blaming(lambda: loss.factory(config), loss.plugin, f"in the factory of --loss {loss.name}")
    if not isinstance(made, AdversarialLoss):
        raise GanzooError(f"The factory of --loss {loss.name} ({_named(loss.plugin)}) returned "
                          f"{with_article(type(made).__name__)}, not a ganzoo.losses.AdversarialLoss; it must return an instance of "
                          "a subclass of AdversarialLoss.")
    return made


def _samples_problem(info: DatasetInfo, real: Any, config: dict[str, Any]) -> tuple[str, str]:
    """Why the samples (``real``) a dataset's ``load`` returned cannot be trained on, and what to do, or ("", ""):
    the networks are built for the declared points, or for the images' size and channels ``load`` was given."""
    import torch

    declared = "return samples of the declared shape, or declare the shape they have"
    if real is None:
        return "it has no 'real' entry", "put the samples under 'real'"
    if not isinstance(real, torch.Tensor):
        return f"its 'real' entry is {with_article(type(real).__name__)}, not a torch tensor", declared
    if real.dim() == 0:
        return "its 'real' tensor is a single number, not a batch of samples", declared
    if real.shape[0] == 0:
        return "it holds no samples", "return the samples it should hold, or refuse in a sentence of its own"
    if info.kind == "vectors" and (real.dim() != 2 or real.shape[1] != info.dim):
        return f"its samples have shape {describe_shape(real.shape[1:])}, but it declares {info.dim}-D points", declared
    if info.kind == "vectors" and real.dtype != torch.float32:
        return (f"its points are {str(real.dtype).removeprefix('torch.')}, but points are kept as float32 (the "
                "networks' type)", "return them as float32 (tensor.float())")
    if info.kind != "images":
        return "", ""
    if real.dim() != 4:
        return (f"its 'real' tensor has shape {describe_shape(real.shape)}, but images must be count x channels x height x "
                "width"), declared
    if real.dtype != torch.uint8:
        return (f"its images are {str(real.dtype).removeprefix('torch.')}, but images are kept as uint8 (0 to 255)",
                "return them as uint8")
    wanted = sample_shape(config)
    if tuple(real.shape[1:]) != wanted:
        return (f"its images are {describe_shape(real.shape[1:])}, but load was asked for {describe_shape(wanted)}",
                "resize and convert them to the image_size and channels load is given (InMemoryData.fit_images "
                "does both)")
    return "", ""


def check_loaded_data(dataset: DatasetSpec, data: Any, config: dict[str, Any]) -> None:
    """Refuse what a dataset's ``load`` returned unless the engine can train on it with ``config``: a
    :class:`ganzoo.data.InMemoryData` holding samples of the declared shape (images: uint8, of the size and
    channels ``load`` was given), or for paired/unpaired sets a translation set."""
    from ganzoo.data import InMemoryData

    if dataset.info.kind in ("paired", "unpaired"):
        from ganzoo.data.translation import TranslationSet

        wanted, name = TranslationSet, "ganzoo.data.translation.TranslationSet"
    else:
        wanted, name = InMemoryData, "ganzoo.data.InMemoryData"
    source = f" of {_named(dataset.plugin)}" if dataset.plugin else ""
    if not isinstance(data, wanted):
        raise GanzooError(f"The load function of dataset {dataset.name!r}{source} returned {with_article(type(data).__name__)}, "
                          f"not a {name}; it must return {name.rsplit('.', 1)[1]}(name, info, {{'real': tensor}}).")
    if wanted is not InMemoryData:
        return
    problem, fix = _samples_problem(dataset.info, data.tensors.get("real"), config)
    if problem:
        raise GanzooError(f"The load function of dataset {dataset.name!r}{source} returned data the run cannot train "
                          f"on: {problem}; {fix}.")
