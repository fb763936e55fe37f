"""Checks of the settings a user sets with ``--set`` that only a network would otherwise notice.

The common training settings are checked in :func:`ganzoo.config.validate_numbers`. The models' own
settings are checked here in two ways: every value must have the type of its default (a width of
``64.5`` or a list where a number belongs is refused for any plugin's model), and the setting names the
built-in families share (``latent_dim``, ``hidden_dims``, ``dropout``, ``d_norm``...) must lie in their
range, so that ``latent_dim=0`` or ``dropout=2`` is one sentence rather than a torch error or a run that
learns nothing.
"""

from __future__ import annotations

import math
from typing import Any

from ganzoo.errors import GanzooError, with_article
from ganzoo.specs import ModelSpec

#: Keys only the dataset sets (``image_size``, also filled from the data, may be set); ``--set`` refuses them.
DATASET_ONLY = ("channels", "dim", "num_classes", "data_kind", "class_names")

#: Settings that must be whole numbers of at least 1, wherever a model declares them.
WHOLE_AT_LEAST_ONE = ("latent_dim", "g_width", "d_width", "embedding_dim", "blocks", "convs_per_scale")
#: Settings that must be whole numbers of at least 0.
WHOLE_AT_LEAST_ZERO = ("pool_size", "lr_patience")
#: Settings that must be numbers of at least 0 (loss weights).
AT_LEAST_ZERO = ("lambda_cycle", "lambda_identity", "lambda_l1", "lambda_k", "validity_weight", "class_weight",
                 "gp_weight")
#: Settings that must be numbers above 0 when the built-in loss that reads them trains, with that loss: WGAN's
#: clipping bound (0 would switch the clipping off) and BEGAN's gamma. A plugin's own ``gamma`` is its own business.
POSITIVE = {"clip_value": "wgan", "gamma": "began"}
#: Settings that must lie in [0, 1): Adam's betas and dropout rates.
FRACTIONS = ("beta1", "beta2", "dropout")
#: Settings that take one of a few words: the DCGAN discriminator's normalisation, pix2pix's direction.
CHOICES = {"d_norm": ("batch", "layer", "none"), "direction": ("AtoB", "BtoA")}
#: Settings the core and the built-in losses read as real numbers (rates, betas, loss weights): one a plugin gives a
#: whole-number default (``Hyperparameter("lr", 1)``) still takes a fraction (``--lr 0.001``).
REAL_NUMBERS = frozenset({"lr", "lr_d", "lr_g", "instance_noise", "label_smoothing", "d_weight_penalty", "r1_gamma",
                          "ema_decay", "max_memory_gb", *AT_LEAST_ZERO, *FRACTIONS})


def refuse_dataset_keys(overrides: dict[str, Any], model_name: str) -> None:
    """Refuse ``--set`` of a key the dataset decides, which would crash the networks or be overwritten."""
    for key in DATASET_ONLY:
        if key in overrides:
            raise GanzooError(f"{key} comes from the dataset and cannot be set; drop --set {key} and pick a dataset "
                              f"that has the {key} you want with --data (see 'ganzoo datasets' and "
                              f"'ganzoo info {model_name}').")


def refuse_unset_choices(overrides: dict[str, Any], known: set[str]) -> None:
    """Refuse a word choice of the model (one of ``known``) set to None (``--set d_norm=None``): for other settings
    None means "the default", which would silently replace what was surely meant here (``none``, no normalisation)."""
    for key in CHOICES:
        if key in known and key in overrides and overrides[key] is None:
            raise _not_a_choice(key, None)


def _not_a_choice(key: str, value: Any) -> GanzooError:
    choices = CHOICES[key]
    return GanzooError(f"{key} must be {', '.join(choices[:-1])} or {choices[-1]}, got {value!r}; "
                       f"set it as in --set {key}={choices[0]}.")


def check_types(defaults: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Refuse a set value whose type differs from its default's (bool, whole number, number, text or list); a
    setting read as a real number (:data:`REAL_NUMBERS`) takes any number, whatever its default."""
    for key, default in defaults.items():
        if key in REAL_NUMBERS and is_whole(default):
            default = float(default)
        value = overrides.get(key)
        if value is None or default is None or _same_kind(default, value):
            continue
        if key == "with":
            raise GanzooError(f"with must be a list of extension names, got {value!r}; switch one on with --with NAME.")
        raise GanzooError(f"{key} must be {_kind_name(default)} like its default {_as_typed(default)}, "
                          f"got {value!r}; set it as in --set {key}={_as_typed(default)}.")


def refuse_non_finite(overrides: dict[str, Any]) -> None:
    """Refuse an infinite or NaN value the user set (``1e999``, ``inf``, ``nan``), which no weight, rate or size
    can be, for every setting the checks by name (:func:`check_ranges`, ``validate_numbers``) have not refused."""
    for key, value in overrides.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise GanzooError(f"{key} must be a finite number, got {value!r}.")


def check_ranges(config: dict[str, Any]) -> None:
    """Refuse shared model settings outside the range any network could train with."""
    for key in WHOLE_AT_LEAST_ONE + WHOLE_AT_LEAST_ZERO:
        low = 1 if key in WHOLE_AT_LEAST_ONE else 0
        value = config.get(key)
        if value is not None and (not is_whole(value) or value < low):
            raise GanzooError(f"{key} must be a whole number of at least {low}, got {value!r}.")
    for key in AT_LEAST_ZERO:
        value = config.get(key)
        if value is not None and (not is_number(value) or not 0 <= value < float("inf")):
            raise GanzooError(f"{key} must be a finite number of at least 0, got {value!r}.")
    for key, loss in POSITIVE.items():
        value = config.get(key)
        if config.get("loss") == loss and value is not None and (not is_number(value) or not 0 < value < float("inf")):
            raise GanzooError(f"{key} must be a positive finite number, got {value!r}.")
    for key in FRACTIONS:
        value = config.get(key)
        if value is not None and (not is_number(value) or not 0 <= value < 1):
            raise GanzooError(f"{key} must be a number from 0 up to (not including) 1, got {value!r}.")
    for key, choices in CHOICES.items():
        if key in config and config[key] not in choices:
            raise _not_a_choice(key, config[key])
    hidden = config.get("hidden_dims")
    if hidden is not None and (not isinstance(hidden, (list, tuple)) or not hidden
                               or not all(is_whole(width) and width >= 1 for width in hidden)):
        raise GanzooError(f"hidden_dims must be a non-empty list of whole numbers of at least 1, such as "
                          f"[256, 512], got {hidden!r}.")


def is_whole(value: Any) -> bool:
    """Whether ``value`` is a whole number (an int, not a bool, which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a number (an int or a float, not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same_kind(default: Any, value: Any) -> bool:
    """Whether ``value`` may stand where ``default`` stands: a float setting takes whole numbers too."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return is_whole(value)
    if isinstance(default, float):
        return is_number(value)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    if isinstance(default, str):  # a choice; some also take True/False (stream: auto, True or False)
        return isinstance(value, (str, bool))
    return isinstance(value, type(default))


def _as_typed(default: Any) -> str:
    """``default`` as it is typed after ``--set KEY=``: text bare, a list without spaces for the shell."""
    return default if isinstance(default, str) else repr(default).replace(" ", "")


def _kind_name(default: Any) -> str:
    if isinstance(default, bool):
        return "True or False"
    if isinstance(default, int):
        return "a whole number"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, (list, tuple)):
        return "a list"
    if isinstance(default, str):
        return "text"
    return f"{with_article(type(default).__name__)}"


def require_classes(model: ModelSpec, config: dict[str, Any], why: str = "") -> int:
    """The number of classes of a conditional ``model``'s data, or a clear refusal when the dataset has no labels
    (checked for every conditional model, a plugin's too, when its settings are resolved: sampling would otherwise
    divide by the number of classes); ``why``: the dataset's own account of its missing classes
    (``DatasetInfo.classes_note``), else a general one is given."""
    classes = int(config.get("num_classes") or 0)
    if classes < 2:
        why = why or ("a folder gives none when images lie beside its sub-folders or it has only one; a plugin's "
                      "dataset declares its classes as DatasetInfo(..., num_classes=N)")
        raise GanzooError(
            f"Model {model.name!r} is conditional and needs a dataset with class labels (mnist, fashion-mnist, cifar10, "
            f"or an image folder whose images all lie in sub-folders, one per class, two or more), but this dataset has "
            f"{classes} {'class' if classes == 1 else 'classes'} ({why})."
        )
    return classes
