"""Resolving a model's configuration: defaults, then what the data decides, then the user's overrides."""

from __future__ import annotations

import ast
import math
import re
from typing import Any

from ganzoo.errors import GanzooError, unknown_name
from ganzoo.extension_settings import add_extension_settings, refusal, standard_step_only, unswitched_setting
from ganzoo.plugin_checks import require_latent_dim, require_valid_defaults
from ganzoo.setting_checks import (DATASET_ONLY, check_ranges, check_types, is_number, is_whole, refuse_dataset_keys,
                                   refuse_non_finite, refuse_unset_choices, require_classes)
from ganzoo.specs import DatasetInfo, Hyperparameter, ModelSpec

#: Settings every model has, shown by ``ganzoo info`` after the model's own.
TRAINING_HYPERPARAMETERS: tuple[Hyperparameter, ...] = (
    Hyperparameter("epochs", 5, "passes over the training data"),
    Hyperparameter("batch_size", 64, "samples per optimisation step"),
    Hyperparameter("lr", 2e-4, "learning rate of both optimizers (see lr_d / lr_g)"),
    Hyperparameter("lr_d", None, "discriminator learning rate; defaults to lr"),
    Hyperparameter("lr_g", None, "generator learning rate; defaults to lr"),
    Hyperparameter("beta1", 0.5, "Adam beta1 (0.5 as in DCGAN)"),
    Hyperparameter("beta2", 0.999, "Adam beta2"),
    Hyperparameter("decay_epochs", 0, "final epochs over which both learning rates fall linearly to 0 (0: constant)"),
    Hyperparameter("d_steps", 1, "discriminator steps per generator step (each epoch also ends with a generator "
                   "step)"),
    Hyperparameter("warmup_d_steps", 0, "discriminator steps before each of the first 25 generator steps and every "
                   "500th after (100 in the WGAN authors' code; 0: d_steps throughout; else at least d_steps)"),
    Hyperparameter("reuse_fake", False, "G's update reuses the fake batch of D's step instead of drawing a new one "
                   "(one G forward fewer per step, as the peers' loops do; needs d_steps=1)"),
    Hyperparameter("optimizer", "adam", "adam or rmsprop (WGAN's choice; beta1/beta2 apply to adam only)"),
    Hyperparameter("loss", "ns", "adversarial objective, one of the losses table below; its paper's settings apply unless set"),
    Hyperparameter("with", [], "cross-cutting extensions switched on (--with NAME)"),
    Hyperparameter("instance_noise", 0.0, "std of Gaussian noise added to every D input, annealed linearly to 0"),
    Hyperparameter("instance_noise_steps", 5000, "discriminator steps over which instance_noise anneals to 0"),
    Hyperparameter("label_smoothing", 0.0, "one-sided label smoothing: real target 1 - s (ns, minimax, lsgan, dragan)"),
    Hyperparameter("d_weight_penalty", 0.0, "coefficient of the L2 penalty sum(w^2) on the discriminator's weights"),
    Hyperparameter("r1_gamma", 0.0, "weight γ of the R1 penalty γ/2·E‖∇D(x)‖² on real data (Mescheder et al. 2018; 0: off)"),
    Hyperparameter("unroll_steps", 5, "with --with unrolled: D steps unrolled for G's loss (k, 5 in Metz et al.)"),
    Hyperparameter("pack", 2, "with --with pacgan: samples per packed D input (2..4 in Lin et al.)"),
    Hyperparameter("mbd_kernels", 16, "with --with minibatch-discrimination: number of kernels B"),
    Hyperparameter("mbd_kernel_dim", 4, "with --with minibatch-discrimination: dimension C of each kernel"),
    Hyperparameter("ema_decay", 0.999, "with --with ema: decay of the generator's moving average"),
    Hyperparameter("seed", 0, "random seed: same seed, same result on CPU"),
    Hyperparameter("log_every", 50, "steps between progress and metrics updates"),
    Hyperparameter("keep_checkpoints", 3, "how many per-epoch training states to keep"),
    Hyperparameter("checkpoint_every", 0, "steps between mid-epoch checkpoints; 0 = only at epoch ends"),
    Hyperparameter("max_bad_steps", 20, "skipped non-finite (NaN/inf) steps before the run is stopped"),
    Hyperparameter("precision", "fp32", "fp32, bf16 or fp16 autocast of the loss computation (fp16: a GradScaler per optimizer)"),
    Hyperparameter("channels_last", False, "keep networks and image batches in channels-last memory layout"),
    Hyperparameter("compile", False, "torch.compile each network (in place; first steps are slow while it compiles)"),
    Hyperparameter("fused_adam", None, "fused Adam kernel instead of foreach (default Adam optimizer only); "
                   "default: on the CPU and CUDA"),
    Hyperparameter("tf32", False, "allow TF32 matmuls and convolutions on CUDA (no effect on the CPU)"),
    Hyperparameter("cuda_graphs", False, "capture each training stage once as a CUDA graph and replay it "
                   "(gan/dcgan with standard losses; see ganzoo.cuda_graphs)"),
    Hyperparameter("fast", False, "preset: bf16, fused Adam, TF32; on CUDA also torch.compile, CUDA graphs and a batch "
                   "of 32+ made 4x larger at 2x the lr; on the CPU reuse_fake; options set explicitly win"),
    Hyperparameter("max_memory_gb", 4.0, "budget (GB) for the decoded training images on the training device: "
                   "larger image sets stay on the host (mapped from the cache of decoded folders) and each batch is "
                   "copied over; image-to-image sets over it stream from disk"),
    Hyperparameter("data_workers", None, "processes decoding image files (0 or 1: the training process; default "
                   "min(8, CPU cores per training process), from 512 images on); streamed image-to-image sets: "
                   "DataLoader workers (0: none)"),
    Hyperparameter("sync_bn", False, "several processes on CUDA: batch-norm statistics over the whole batch (SyncBatchNorm)"),
)

#: Optimizers the built-in plugins build (``adam`` by the core, ``rmsprop`` by the losses plugin).
OPTIMIZERS = ("adam", "rmsprop")

#: Remedies applied by the standard adversarial step (:mod:`ganzoo.adversarial`), which only unconditional models use.
UNCONDITIONAL_REMEDIES = ("instance_noise", "d_weight_penalty", "r1_gamma", "reuse_fake")

#: Settings that only tune those remedies or the unconditional-only extensions (unrolled, pacgan,
#: minibatch discrimination): other models refuse them when set, and ``ganzoo info`` leaves them out.
UNCONDITIONAL_TUNING = ("instance_noise_steps", "unroll_steps", "pack", "mbd_kernels", "mbd_kernel_dim")
#: Those of them that tune the standard step itself (not a D wrapper such as PacGAN's): an unconditional model
#: whose plugin computes its own losses refuses these, and keeps the D wrappers' ones.
STANDARD_STEP_TUNING = ("instance_noise_steps", "unroll_steps")

#: Settings that only tune an extension, and the extension (``--with NAME``) they tune.
EXTENSION_TUNING = {"unroll_steps": "unrolled", "pack": "pacgan", "mbd_kernels": "minibatch-discrimination",
                    "mbd_kernel_dim": "minibatch-discrimination", "ema_decay": "ema"}

#: Settings of the shared adversarial losses (:mod:`ganzoo.losses`), which image-to-image models, trained
#: with their paper's own fixed loss, would ignore: they refuse them when set, and ``ganzoo info`` leaves them out.
SHARED_LOSS_SETTINGS = ("label_smoothing",)

#: The seeds torch.manual_seed takes (a signed 64-bit integer).
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1


#: The words float() reads as infinity or NaN, which literal_eval leaves as text.
NON_FINITE = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)


def parse_value(text: str) -> Any:
    """Parse a ``--set key=value`` value: Python literals (numbers, lists, True), ``inf`` and ``nan`` as the floats
    they name (so that the range checks refuse them as they do ``--lr inf``), or a plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return float(text) if NON_FINITE.fullmatch(text) else text


def parse_overrides(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Turn ``["hidden_dims=[256,256]", "lr=0.0002"]`` into a dict, with a clear error for a malformed pair."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise GanzooError(f"Cannot read --set {pair!r}; write it as KEY=VALUE, e.g. --set lr=0.0002.")
        out[key.strip().replace("-", "_")] = parse_value(value.strip())
    return out


def all_hyperparameters(model: ModelSpec) -> list[Hyperparameter]:
    """The model's own hyperparameters followed by the common training ones it does not redefine."""
    own = {hp.name for hp in model.hyperparameters}
    return list(model.hyperparameters) + [hp for hp in TRAINING_HYPERPARAMETERS if hp.name not in own]


def resolve_config(model: ModelSpec, info: DatasetInfo, overrides: dict[str, Any]) -> dict[str, Any]:
    """The full configuration for training ``model`` on data described by ``info``.

    Precedence, lowest first: common training defaults, the model's defaults, the model's
    defaults for this data kind, the chosen loss's paper settings (``LossSpec.defaults``, and
    ``LossSpec.network_defaults`` for the settings this model has), the dataset's paper settings
    (``DatasetInfo.paper_settings``) that this model has, the data's shape, the settings of the
    extensions switched on (``ExtensionSpec.hyperparameters``), the user's ``overrides``. Unknown
    keys are refused so a typo never silently does nothing.
    """
    if info.kind not in model.data_kinds:
        raise GanzooError(
            f"Model {model.name!r} trains on {' or '.join(model.data_kinds)} data, but this dataset holds {info.kind} data; "
            f"pick a dataset of that kind (see 'ganzoo datasets')."
        )
    if info.kind == "vectors" and overrides.get("image_size") is not None:
        raise GanzooError(f"--image-size sets the side of generated images, but this dataset holds {info.dim}-D points; "
                          "drop it, or pick an image dataset.")
    config: dict[str, Any] = {hp.name: hp.default for hp in TRAINING_HYPERPARAMETERS}
    config.update(model.defaults(info.kind))
    require_valid_defaults(model, info.kind)  # the plugin's mistake is not said as if the user had typed it
    check_types(config, overrides)  # before the loss's defaults are looked up by its name
    loss = overrides.get("loss") or config["loss"]
    if not isinstance(loss, str):
        raise GanzooError(f"loss must be the name of a loss, such as ns or wgan-gp, got {loss!r}; "
                          f"'ganzoo info {model.name}' lists them.")
    refuse_unmatched_loss(model, loss)
    networks = loss_network_defaults(loss, config)
    config.update(loss_defaults(loss))
    check_types(loss_defaults(loss), overrides)  # the loss's own settings (gp_weight, clip_value...)
    config.update(networks)
    config.update({name: value for name, value in info.paper_settings if name in config})
    config.update(
        channels=info.channels, dim=info.dim, num_classes=info.num_classes, data_kind=info.kind,
    )
    if model.task == "conditional":  # kept in the generator file so 'ganzoo sample --class NAME' knows them
        require_classes(model, config, info.classes_note)
        config["class_names"] = list(info.class_names)
    if config.get("image_size") is None:
        config["image_size"] = info.image_size
    add_extension_settings(config, model, loss, overrides)
    refuse_dataset_keys(overrides, model.name)
    known = set(config)
    refuse_unset_choices(overrides, known)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise unknown_setting(model, unknown[0], sorted(known - set(DATASET_ONLY)))
    config.update({k: v for k, v in overrides.items() if v is not None})
    config["with"] = list(dict.fromkeys(config.get("with") or []))  # each once: --with ema --with ema is one
    require_latent_dim(model, config)
    refuse_unconditional_only(model, config, overrides)
    refuse_idle_tuning(model, config, overrides)
    validate_numbers(config)
    refuse_short_warmup(config)
    refuse_non_finite(overrides)
    return config


def unknown_setting(model: ModelSpec, name: str, known: list[str]) -> GanzooError:
    """The error for a setting ``model`` does not have: when it is an extension's setting it names the ``--with``
    that brings it, when it is a loss's setting (``gp_weight``) it names the ``--loss`` that brings it (or, for an
    image-to-image model, which trains with its paper's loss alone, says to drop it), when it is other models'
    (``g_width``) it names them, else it suggests close names among ``known``."""
    from ganzoo.registry import get_registry

    switched = unswitched_setting(model, name)
    if switched is not None:
        return switched
    registry, see = get_registry(), f"'ganzoo info {model.name}'"
    losses = [loss.name for loss in registry.losses.items.values() if name in loss.defaults]
    named = f"{' and '.join(losses[:3])} {'losses' if len(losses) > 1 else 'loss'}"
    if losses and model.task == "image-to-image":
        return GanzooError(f"{name} is a setting of the {named}, and {model.name!r} trains with its paper's loss "
                           f"alone; drop it (see {see} for its settings).")
    if losses:
        return GanzooError(f"{name} is a setting of the {named}, which this run does not use; "
                           f"pass --loss {losses[0]} with it, or see {see} for the settings of {model.name!r}.")
    owners = [other.name for other in registry.models.items.values()
              if other.name != model.name and any(hp.name == name for hp in other.hyperparameters)]
    if owners:
        shown = ", ".join(owners[:4]) + (" and others" if len(owners) > 4 else "")
        return GanzooError(f"Model {model.name!r} has no setting {name!r} (a setting of {shown}); see {see} for its "
                           "settings.")
    return unknown_name("setting", name, known, see=see)


def refuse_unconditional_only(model: ModelSpec, config: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Refuse the remedies of the standard unconditional step, and the extensions ``model`` cannot use
    (:func:`ganzoo.extension_settings.refusal`).

    Models that compute their own losses would silently ignore those settings, and a packed
    (PacGAN) or minibatch-discriminating D cannot take their labels or paired images, so one
    sentence now beats a useless run or a traceback. Settings that only tune those remedies are
    refused when the user sets them (their defaults are always there).
    """
    from ganzoo.registry import get_registry

    why = standard_step_only(model)
    remedies, tuning = refused_settings(model)
    for key in remedies:
        if config.get(key):
            raise GanzooError(f"{key} {why} and would ignore it, so drop it.")
    for key in tuning:
        if overrides.get(key) is not None:
            raise GanzooError(f"{key} {why} and would ignore it, so drop --set {key}.")
    if model.task == "image-to-image":
        for key in SHARED_LOSS_SETTINGS:
            if config.get(key):
                raise GanzooError(f"{key} has no effect on {model.name!r}, which trains with its paper's own loss, "
                                  f"so drop --set {key}.")
    extensions = get_registry().extensions.items
    for name in config["with"]:
        refused = refusal(extensions[name], model) if name in extensions else ""
        if refused:
            raise GanzooError(refused)


def refuse_idle_tuning(model: ModelSpec, config: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Refuse a setting the user set that only tunes an extension or remedy this run leaves off (``--set pack=3``
    without ``--with pacgan``): it would change nothing, without a word. One tuning an extension ``model`` cannot
    use (:func:`unusable_tuning`) is refused as that, not with advice to switch the extension on."""
    unusable = unusable_tuning(model)
    for key, extension in EXTENSION_TUNING.items():
        if overrides.get(key) is not None and key in unusable:
            raise GanzooError(f"{key} tunes --with {extension}, which model {model.name!r} cannot use; drop --set "
                              f"{key} ('ganzoo info {model.name}' lists the extensions it can use).")
        if overrides.get(key) is not None and extension not in config["with"]:
            raise GanzooError(f"{key} tunes --with {extension}, which this run does not switch on; add --with "
                              f"{extension}, or drop --set {key}.")
    if overrides.get("instance_noise_steps") is not None and not config.get("instance_noise"):
        raise GanzooError("instance_noise_steps tunes instance noise, which is off in this run (instance_noise 0); "
                          "set instance_noise=STD too, or drop --set instance_noise_steps.")


def refuse_pack_over_batch(config: dict[str, Any], batch: int, processes: int = 1) -> None:
    """Refuse a PacGAN ``pack`` larger than the ``batch`` each of ``processes`` processes gives its discriminator:
    no pack could be formed at the first step."""
    if "pacgan" in config["with"] and int(config["pack"]) > batch:
        held = (f"the {batch} samples of each process's share of the batch ({config['batch_size']} over {processes} "
                f"processes) hold" if processes > 1 else f"a batch of {batch} holds")
        raise GanzooError(f"--with pacgan packs pack={config['pack']} samples into each discriminator input, more than "
                          f"{held}; lower --set pack or raise --batch-size.")


def renamed_loss_note(model: ModelSpec, config: dict[str, Any]) -> str | None:
    """A note when a model named after its loss (``lsgan``, ``wgan-gp``) trains with another: it is then its
    family's networks with that loss, which the reader of its run folder would not guess from the model's name."""
    from ganzoo.registry import get_registry

    loss = config.get("loss")
    if model.name not in get_registry().losses.names() or loss == model.name:
        return None
    return (f"note: model {model.name!r} is {model.family} networks trained with the {model.name} loss and its "
            f"settings; with --loss {loss} it trains as 'ganzoo train {model.family} --loss {loss}' would")


def refused_settings(model: ModelSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(remedies, tuning settings) ``model`` refuses because its losses would never read them, and ``ganzoo info``
    leaves out: none in the standard unconditional step, all for conditional and image-to-image models, and those
    of the step itself for an unconditional model whose plugin computes its own losses."""
    from ganzoo.registry import computes_own_losses

    if not computes_own_losses(model):
        return (), ()
    return UNCONDITIONAL_REMEDIES, UNCONDITIONAL_TUNING if model.task != "unconditional" else STANDARD_STEP_TUNING


def unusable_tuning(model: ModelSpec) -> tuple[str, ...]:
    """The settings tuning a built-in extension that ``model`` cannot use (``pack`` for BEGAN, which refuses PacGAN):
    ``ganzoo info`` leaves them out, and ``--set`` of one is refused."""
    from ganzoo.extension_settings import applies
    from ganzoo.registry import get_registry

    extensions = get_registry().extensions.items
    return tuple(key for key, name in EXTENSION_TUNING.items()
                 if name in extensions and not applies(extensions[name], model))


def accepts_loss(model: ModelSpec, loss: Any) -> bool:
    """Whether ``model`` and the :class:`LossSpec` ``loss`` train together: neither limits itself to others."""
    return (not model.losses or loss.name in model.losses) and (not loss.models or model.name in loss.models)


def refuse_unmatched_loss(model: ModelSpec, name: str) -> None:
    """Refuse a loss that ``model`` does not train with (``ModelSpec.losses``), or that works only with other
    models (``LossSpec.models``): BEGAN's autoencoder discriminator scores by reconstruction error, which other
    losses would read as logits, and BEGAN's loss needs that discriminator."""
    from ganzoo.registry import get_registry

    loss = get_registry().losses.get(name)
    if accepts_loss(model, loss):
        return
    if model.losses and name not in model.losses:
        raise GanzooError(f"Model {model.name!r} trains with the {' or '.join(model.losses)} loss alone (its networks "
                          f"read no other); drop --loss {name}.")
    raise GanzooError(f"--loss {name} works only with the {' or '.join(loss.models)} model; train that model, or pick "
                      f"another loss ('ganzoo info {model.name}' lists them).")


def loss_defaults(name: str) -> dict[str, Any]:
    """The paper's settings of loss ``name`` (WGAN: 5 critic steps, RMSprop, lr 5e-5...)."""
    from ganzoo.registry import get_registry

    return dict(get_registry().losses.get(name).defaults)


def loss_network_defaults(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """The network choices of loss ``name``'s paper that a model with settings ``config`` has (WGAN-GP: a critic
    without batch norm); a model without the setting (an MLP critic has no normalisation) takes none of them."""
    from ganzoo.registry import get_registry

    return {key: value for key, value in get_registry().losses.get(name).network_defaults.items() if key in config}


def refuse_short_warmup(config: dict[str, Any]) -> None:
    """Refuse a ``warmup_d_steps`` that would give the first generator steps fewer discriminator steps than the
    others. New runs only: a run saved with one before this rule resumes as it was trained."""
    warmup, d_steps = config.get("warmup_d_steps", 0), config["d_steps"]
    if 0 < warmup < d_steps:
        raise GanzooError(f"warmup_d_steps ({warmup}) would give the first generator steps fewer discriminator steps "
                          f"than d_steps ({d_steps}) gives the others; set it to 0 (off) or at least {d_steps} "
                          "(the WGAN authors' code uses 100).")


def validate_numbers(config: dict[str, Any]) -> None:
    """Refuse settings no training could use, one clear sentence each."""
    from ganzoo.data import memory_budget_gb

    memory_budget_gb(config)  # here too, so that its own sentence (in gigabytes) comes before any general one
    positive_ints = ("epochs", "batch_size", "d_steps", "log_every", "keep_checkpoints", "max_bad_steps")
    for key in positive_ints:
        value = config.get(key)
        if not is_whole(value) or value < 1:
            raise GanzooError(f"{key} must be a whole number of at least 1, got {value!r}.")
    every = config.get("checkpoint_every")
    if not is_whole(every) or every < 0:
        raise GanzooError(f"checkpoint_every must be a whole number of steps of at least 0 (0 = only at epoch ends), "
                          f"got {every!r}.")
    for key in ("lr", "lr_d", "lr_g"):
        value = config.get(key)
        if value is not None and (not is_number(value) or not 0 < value < math.inf):
            raise GanzooError(f"{key} must be a positive finite number, got {value!r}.")
    seed = config.get("seed")
    if seed is not None and (not is_whole(seed) or not SEED_MIN <= seed <= SEED_MAX):
        raise GanzooError(f"seed must be a whole number from {SEED_MIN} to {SEED_MAX}, got {seed!r}.")
    from ganzoo.speed import validate as validate_speed

    validate_speed(config)
    if config.get("optimizer", "adam") not in OPTIMIZERS:
        raise GanzooError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {config.get('optimizer')!r}.")
    for key in ("instance_noise", "label_smoothing", "d_weight_penalty", "r1_gamma"):
        value = config.get(key, 0.0)
        if not is_number(value) or value < 0:
            raise GanzooError(f"{key} must be a number of at least 0, got {value!r}.")
    if not 0 <= float(config.get("label_smoothing", 0.0)) < 1:
        raise GanzooError(f"label_smoothing must be below 1 (0.1 is usual), got {config['label_smoothing']!r}.")
    if not 0 <= float(config.get("ema_decay", 0.999)) < 1:
        raise GanzooError(f"ema_decay must lie in [0, 1) (0.999 is usual), got {config['ema_decay']!r}.")
    warmup, d_steps = config.get("warmup_d_steps", 0), config["d_steps"]
    if not is_whole(warmup) or warmup < 0:
        raise GanzooError(f"warmup_d_steps must be a whole number of at least 0 (0 = off), got {warmup!r}.")
    if config.get("reuse_fake") and (d_steps != 1 or warmup):
        name, value, plain = ("d_steps", d_steps, 1) if d_steps != 1 else ("warmup_d_steps", warmup, 0)
        raise GanzooError(f"reuse_fake needs one discriminator step per generator step, but {name} is {value}; "
                          f"set {name}={plain} or drop reuse_fake.")
    decay = config.get("decay_epochs")
    if decay is not None and (not is_whole(decay) or not 0 <= decay <= config["epochs"]):
        raise GanzooError(f"decay_epochs must be a whole number from 0 to epochs ({config['epochs']}), got {decay!r}.")
    for key, low in (("unroll_steps", 1), ("pack", 2), ("mbd_kernels", 1), ("mbd_kernel_dim", 1), ("instance_noise_steps", 1)):
        value = config.get(key, low)
        if not is_whole(value) or value < low:
            raise GanzooError(f"{key} must be a whole number of at least {low}, got {value!r}.")
    refuse_pack_over_batch(config, int(config["batch_size"]))
    check_ranges(config)
