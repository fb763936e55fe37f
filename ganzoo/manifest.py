"""Pretrained generator files listed in manifests, checked by SHA-256 before use.

A manifest is JSON: ``{"format": "ganzoo.manifest/1", "weights": [{name, model, dataset, file,
sha256, trained_with, metrics}, ...]}``. ``file`` is a path relative to the manifest or an
``https://`` URL, downloaded once into ``cache_dir()/weights``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ganzoo.download import download, file_digest
from ganzoo.errors import GanzooError
from ganzoo.paths import cache_dir
from ganzoo.specs import PretrainedSpec

MANIFEST_FORMAT = "ganzoo.manifest/1"
REQUIRED = ("name", "model", "dataset", "file", "sha256")


def read_manifest(path: str | os.PathLike[str]) -> list[PretrainedSpec]:
    """Parse a manifest file into specs; a malformed manifest raises one clear sentence."""
    path = Path(path)
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GanzooError(f"Cannot read the weights manifest {path} ({exc}); fix or remove it.") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("weights"), list):
        raise GanzooError(f"{path} is not a ganzoo weights manifest (expected format {MANIFEST_FORMAT!r} and a 'weights' list).")
    specs = []
    for entry in data["weights"]:
        missing = [k for k in REQUIRED if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise GanzooError(f"An entry of the weights manifest {path} lacks {', '.join(missing)}; every entry needs {', '.join(REQUIRED)}.")
        specs.append(PretrainedSpec(
            name=entry["name"], model=entry["model"], dataset=entry["dataset"], location=entry["file"],
            sha256=entry["sha256"], trained_with=entry.get("trained_with", ""), metrics=entry.get("metrics", {}),
            base_dir=str(path.parent),
        ))
    return specs


def resolve(spec: PretrainedSpec) -> Path:
    """A local, checksum-verified path for ``spec``, downloading it first when it is a URL."""
    if spec.location.startswith(("https://", "http://")):
        return download(spec.location, cache_dir() / "weights" / f"{spec.sha256[:16]}-{spec.name}.safetensors", sha256=spec.sha256)
    path = Path(spec.location)
    if not path.is_absolute():
        path = Path(spec.base_dir) / path
    if not path.is_file():
        raise GanzooError(f"Pretrained weights {spec.name!r} should be at {path} but that file is missing; "
                          f"{_restore(spec)}.")
    actual = file_digest(path, "sha256")
    if actual != spec.sha256.lower():
        raise GanzooError(f"Pretrained weights {spec.name!r} at {path} do not match their SHA-256; the file is "
                          f"damaged or was replaced; {_restore(spec)} (if you wrote the plugin and the file is right, "
                          f"register the file's SHA-256, {actual}).")
    return path


def _restore(spec: PretrainedSpec) -> str:
    """How to get a shipped weights file back: reinstall the package whose plugin lists it, named as pip knows it
    (a plugin's own name, such as ganzoo's ``pretrained``, means nothing to pip)."""
    from ganzoo.plugin_manager import distribution_of

    package = distribution_of(spec.plugin)
    return f"reinstall the package {package!r} that ships it (in a source checkout, restore the file from there)"


def _no_generator_sentence(folder: Path, model: str) -> str:
    """Why a folder given as weights has no generator to load: a run stopped before its first epoch ended (it has
    checkpoints, and resuming it writes the generator), or a folder that is no run at all."""
    from ganzoo.checkpoint import list_checkpoints
    from ganzoo.errors import shell_word

    if list_checkpoints(folder):
        return (f"{folder} holds a run stopped before its first epoch ended, so it has checkpoints but no "
                f"generator.safetensors yet; finish an epoch with 'ganzoo train {model} --resume {shell_word(str(folder))}' "
                "and pass the folder again.")
    from ganzoo.run_folder import REPLACED_RUN

    if (folder / REPLACED_RUN).is_dir():
        return (f"{folder} holds no generator.safetensors: an --overwrite run stopped there before its first checkpoint "
                f"left the run it was to replace in {folder / REPLACED_RUN}; 'ganzoo train {model} --resume "
                f"{shell_word(str(folder))}' puts that run back and goes on with it.")
    return (f"{folder} is a folder without generator.safetensors; pass the --out folder of a 'ganzoo train' run or "
            "a generator .safetensors file.")


def generator_file(weights: Path) -> Path:
    """The file ``--weights`` names: a run folder stands for its ``generator.safetensors``."""
    return weights / "generator.safetensors" if weights.is_dir() else weights


def weights_path(model: str, weights: Path | None, pretrained: str | None) -> Path:
    """The generator file a command should load: ``weights`` itself (a run folder stands for its
    ``generator.safetensors``), or pretrained ``NAME`` of ``model``.

    Exactly one of the two must be given; pretrained weights of another model are refused.
    """
    from ganzoo.registry import command_for_model, get_registry

    if (weights is None) == (pretrained is None):
        raise GanzooError("Give exactly one of --weights FILE or --pretrained NAME.")
    if pretrained is None:
        weights = Path(weights)
        if weights.is_dir() and not generator_file(weights).is_file():
            raise GanzooError(_no_generator_sentence(weights, model))
        return generator_file(weights)
    entry = get_registry().pretrained.get(pretrained)
    if entry.model != model:
        raise GanzooError(f"Pretrained weights {pretrained!r} are for model {entry.model!r}, not {model!r}; "
                          f"use 'ganzoo {command_for_model(entry.model)} {entry.model} --pretrained {pretrained}'.")
    return resolve(entry)
