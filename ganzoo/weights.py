"""Network weight files: a generator's (or discriminator's) ``state_dict`` in safetensors with what rebuilds it.

Metadata keys: ``format``, ``ganzoo_version``, ``model``, ``family``, ``config`` (JSON),
``dataset``, ``epoch``, ``step``, and ``plugin_distribution`` and ``plugin_version``, the plugin
distribution that declares the model (files written before them have none). Loading checks that the file is a ganzoo file of the network and
model asked for, that every tensor's name and shape fits, and that no floating tensor holds NaN or inf
(damaged data) before anything is copied. Training writes ``generator.safetensors`` for sampling and,
beside it, ``discriminator.safetensors`` from the same step for what needs the critic afterwards
(discriminator rejection sampling).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo.errors import GanzooError, UnknownNameError, shell_word
from ganzoo.safefile import WeightsError, digest_matches, load_tensors, read_metadata, save_tensors
from ganzoo.specs import ModelSpec

GENERATOR_FORMAT = "ganzoo.generator/1"
DISCRIMINATOR_FORMAT = "ganzoo.discriminator/1"
#: The discriminator file training writes beside ``generator.safetensors``.
DISCRIMINATOR_FILE = "discriminator.safetensors"
#: Metadata keys of the plugin distribution that declares the model, and its version, as the file was written.
PLUGIN_DISTRIBUTION, PLUGIN_VERSION = "plugin_distribution", "plugin_version"


@dataclass
class LoadedGenerator:
    """A generator rebuilt from a file, ready for sampling."""

    model: ModelSpec
    config: dict[str, Any]
    module: Any
    metadata: dict[str, str]


def save_network(path: str | os.PathLike[str], model: ModelSpec, config: dict[str, Any], network: Any,
                 dataset: str, epoch: int, step: int, file_format: str = GENERATOR_FORMAT) -> None:
    """Write a network's weights and the metadata that rebuilds it (a generator file unless ``file_format`` says)."""
    from ganzoo import __version__

    metadata = {
        "format": file_format, "ganzoo_version": __version__, "model": model.name, "family": model.family,
        "config": json.dumps(config, sort_keys=True), "dataset": dataset, "epoch": str(epoch), "step": str(step),
        **provenance(model),
    }
    save_tensors(path, network.state_dict(), metadata, with_digest=True)  # a damaged copy is told by its numbers


def provenance(model: ModelSpec) -> dict[str, str]:
    """The plugin distribution that declares ``model`` and its version, under the metadata keys files and
    checkpoints keep them under: someone given a third-party model's weights without its plugin learns what to
    install, and a file its plugin's network no longer fits tells which version wrote it."""
    from ganzoo.plugin_manager import plugin_record

    record = plugin_record(model.plugin)
    return {} if record is None else {PLUGIN_DISTRIBUTION: record.distribution, PLUGIN_VERSION: record.version}


def model_for_weights(name: str, weights: str | os.PathLike[str] | None) -> ModelSpec:
    """The model ``name`` whose ``weights`` (a file, or the run folder holding it) a command loads. When no
    installed plugin registers it and the file names the plugin distribution that made it, which is not
    installed, the sentence says to install that one rather than suggest models with close names."""
    from ganzoo.registry import get_model

    try:
        return get_model(name)
    except UnknownNameError:
        missing = _missing_plugin(Path(weights)) if weights is not None else ""
        if missing:
            raise WeightsError(missing) from None
        raise


def _missing_plugin(weights: Path) -> str:
    """The sentence naming the plugin distribution ``weights`` were made with, when it is not installed and so no
    plugin registers their model; "" for any other case (a file from before the distribution was kept, or whose
    plugin is installed but skipped or disabled, which the unknown name's own sentence tells)."""
    from ganzoo.manifest import generator_file
    from ganzoo.registry import get_registry

    path = generator_file(weights)
    try:
        metadata = read_metadata(path)
    except (GanzooError, OSError):  # no file, or not safetensors: the unknown name is said first, the file later
        return ""
    registry = get_registry()
    model, distribution = metadata.get("model"), metadata.get(PLUGIN_DISTRIBUTION)
    if not distribution or model in registry.models or distribution in registry.plugins.installed_names:
        return ""
    version = f" {metadata[PLUGIN_VERSION]}" if metadata.get(PLUGIN_VERSION) else ""
    return (f"{path} holds weights of model {model!r} from the plugin distribution {distribution!r}{version}, which "
            f"is not installed; pip install {distribution} (or put it on the Python path) and run again.")


def plugin_changed(model: ModelSpec, saved: dict[str, Any], use: str, instead: str) -> str:
    """Why a file of ``model`` does not fit the network built now from the file's own settings: the model's plugin
    now builds other networks than the one that saved it, named with its version now and, when ``saved`` (the
    file's metadata, or a checkpoint's) recorded it, then. ``use`` (``resume it``) and ``instead`` (``start a new
    run``) say what to do. The one sentence of ``train --resume`` and of the weights ``sample`` loads."""
    from ganzoo.plugin_manager import plugin_record

    record, then = plugin_record(model.plugin), saved.get(PLUGIN_VERSION)
    distribution, now = (record.distribution, record.version) if record is not None else (model.plugin, "?")
    named = f"the plugin of {model.name!r} ({distribution} {now}"
    changed = "now builds other networks than the one that saved it"
    if then is None:  # saved before the version was kept
        return f"{named}) {changed}; {use} with the version of {distribution} that saved it, or {instead}."
    if then == now:
        return f"{named}, as when it was saved) {changed}; {use} with the plugin's code as it was then, or {instead}."
    return f"{named}; {then} when it was saved) {changed}; {use} with {distribution} {then}, or {instead}."


def _third_party_reason(model: ModelSpec, metadata: dict[str, str]) -> str | None:
    """For a file of a third-party model that does not fit its network, :func:`plugin_changed`; None for ganzoo's
    own models, whose networks change only with ganzoo (:func:`check_state_dict`'s own guess)."""
    from ganzoo.plugin_manager import BUILT_IN, plugin_record

    record = plugin_record(model.plugin)
    if record is None or record.distribution == BUILT_IN:
        return None
    return plugin_changed(model, metadata, "use the file", "train the model again")


def check_state_dict(path: Path, expected: dict[str, Any], found: dict[str, Any], why: str | None = None) -> None:
    """Raise one clear sentence when the file's tensor names or shapes differ from the model's; ``why`` replaces
    the usual guess at the cause (another ganzoo version, other settings). Lazy parameters, whose shape the file
    gives them, are not compared."""
    from torch.nn.parameter import is_lazy

    lazy = {name for name, tensor in expected.items() if is_lazy(tensor)}
    missing = sorted(set(expected) - set(found) - lazy)
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"lacks {len(missing)} tensor(s) the model needs (first: {missing[0]!r})")
        if extra:
            parts.append(f"has {len(extra)} tensor(s) the model does not (first: {extra[0]!r})")
        raise WeightsError(f"{path} does not fit this network: it {' and '.join(parts)}; "
                           f"{why or 'was it written by another ganzoo version?'}")
    for name, tensor in expected.items():
        if name not in lazy and tuple(found[name].shape) != tuple(tensor.shape):
            raise WeightsError(
                f"{path} does not fit this network: tensor {name!r} has shape {tuple(found[name].shape)} in the file "
                f"but {tuple(tensor.shape)} in the model; {why or 'the file was trained with other settings.'}"
            )


def _read_config(path: Path, metadata: dict[str, str]) -> dict[str, Any]:
    try:
        config = json.loads(metadata["config"])
    except (KeyError, json.JSONDecodeError):
        config = None
    if not isinstance(config, dict):
        raise WeightsError(f"{path} has no readable config in its metadata; use a file written by ganzoo.")
    return config


def _build(path: Path, build: Any, model: Any, config: dict[str, Any]) -> Any:
    """``build(model, config)``, with a config that lacks a setting the network needs (a file edited or written by
    hand) named in one sentence instead of a KeyError."""
    from ganzoo.config import all_hyperparameters
    from ganzoo.setting_checks import DATASET_ONLY

    settings = {hp.name for hp in all_hyperparameters(model)} | set(DATASET_ONLY) | {"image_size", "latent_dim"}
    try:
        return build(model, config)
    except KeyError as exc:
        if not exc.args or exc.args[0] not in settings or exc.args[0] in config:  # not a missing setting: a bug
            raise
        raise WeightsError(f"{path} lacks the setting {exc.args[0]!r} that the {model.name} network needs in the "
                           f"config of its metadata; use a file written by 'ganzoo train'.") from None


def check_finite(path: Path, tensors: dict[str, Any]) -> None:
    """Raise one clear sentence naming the first floating tensor that holds NaN or infinite values.

    Training never saves such weights (the guard skips non-finite updates, and no network keeps an inf or
    NaN buffer by design), so they mean the file's data was damaged on disk or in transfer; refusing here
    stops ``ganzoo sample`` or ``translate`` from writing garbage with a success exit code.
    One ``isfinite`` pass per floating tensor keeps the check cheap next to reading the file.
    """
    import torch

    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise WeightsError(f"{path} is damaged: tensor {name!r} holds NaN or infinite values; "
                               "use an intact copy or an earlier checkpoint, or train again.")


def check_digest(path: Path, tensors: dict[str, Any]) -> None:
    """Raise one clear sentence when the tensors differ from the SHA-256 saved with them: a byte flipped on disk or in
    transfer loads as a finite but wrong number, and the generator would draw noise. Files from before the digest
    have none to compare."""
    if not digest_matches(read_metadata(path), tensors):
        raise WeightsError(f"{path} is damaged: its numbers no longer match the SHA-256 saved with them; use an intact "
                           "copy or an earlier checkpoint, or train again.")


def _load_into(path: Path, module: Any, device: str, why: str | None) -> Any:
    """``module`` with the tensors of ``path``, checked (``why``: the cause a file that does not fit gives)."""
    tensors = load_tensors(path)
    check_state_dict(path, module.state_dict(), tensors, why)
    check_finite(path, tensors)
    check_digest(path, tensors)
    module.load_state_dict(tensors)
    return module.to(device).eval()


def load_generator(path: str | os.PathLike[str], model_name: str | None = None, device: str = "cpu") -> LoadedGenerator:
    """Rebuild the generator saved in ``path``; ``model_name`` must match the model it was trained as."""
    from ganzoo.build import build_generator
    from ganzoo.registry import command_for_model, get_model

    path = Path(path)
    metadata = read_metadata(path)
    if metadata.get("format") != GENERATOR_FORMAT:
        kind = metadata.get("format", "no ganzoo metadata")
        raise WeightsError(f"{path} is not a ganzoo generator file ({kind}); pass OUT/generator.safetensors from 'ganzoo train'.")
    if model_name is not None and metadata.get("model") != model_name:
        saved = str(metadata.get("model"))
        raise WeightsError(
            f"{path} holds weights of model {saved!r}, not {model_name!r}; use 'ganzoo {command_for_model(saved)} "
            f"{saved} --weights {shell_word(str(path))}' or pass a {model_name} file."
        )
    config = _read_config(path, metadata)
    model = get_model(str(metadata.get("model")))
    module = _load_into(path, _build(path, build_generator, model, config), device, _third_party_reason(model, metadata))
    return LoadedGenerator(model, config, module, metadata)


def load_discriminator(path: str | os.PathLike[str], generator: LoadedGenerator, device: str = "cpu") -> Any:
    """Rebuild the discriminator saved in ``path`` that was trained together with ``generator`` (same model and step)."""
    from ganzoo.build import build_discriminator

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"No discriminator file at {path}; 'ganzoo train' writes {DISCRIMINATOR_FILE} beside "
                           "generator.safetensors (pretrained weights ship the generator only), or pass --discriminator FILE.")
    metadata = read_metadata(path)
    if metadata.get("format") != DISCRIMINATOR_FORMAT:
        kind = metadata.get("format", "no ganzoo metadata")
        raise WeightsError(f"{path} is not a ganzoo discriminator file ({kind}); pass OUT/{DISCRIMINATOR_FILE} from 'ganzoo train'.")
    mine = (metadata.get("model"), metadata.get("step"))
    theirs = (generator.metadata.get("model"), generator.metadata.get("step"))
    if mine != theirs:
        raise WeightsError(f"{path} is the discriminator of model {mine[0]!r} at step {mine[1]}, but the generator is "
                           f"{theirs[0]!r} at step {theirs[1]}; pass the {DISCRIMINATOR_FILE} written with that generator.")
    return _load_into(path, _build(path, build_discriminator, generator.model, generator.config), device,
                      _third_party_reason(generator.model, metadata))
