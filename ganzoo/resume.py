"""What a ``--resume`` run continues from, and every reason to refuse it.

The trainer reads its resume point here, and ``ganzoo train --resume RUN --devices N`` reads it once
before torchrun starts, so a run that cannot resume is named in one sentence rather than once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo import checkpoint as ckpt
from ganzoo.errors import GanzooError, shell_word
from ganzoo.specs import ModelSpec

#: Settings that may differ when a run is resumed; any other difference is refused.
RESUMABLE_CHANGES = ("epochs", "log_every", "keep_checkpoints", "checkpoint_every", "max_bad_steps",
                     "stream", "max_memory_gb", "data_workers")


@dataclass
class ResumePoint:
    """The newest whole checkpoint of a run folder, and what the resumed run trains with."""

    path: Path
    meta: dict[str, Any]
    tensors: dict[str, Any]
    model: ModelSpec
    dataset: str
    config: dict[str, Any]
    #: Newer checkpoints that were damaged and passed over, newest first.
    skipped: list[Path]

    @property
    def epochs_done(self) -> int:
        return int(self.meta["counters"]["epoch"])


def read_resume_point(out: Path, model: str | None, data: str | None, overrides: dict[str, Any]) -> ResumePoint:
    """The checkpoint ``out`` resumes from, for a request naming ``model`` and ``data`` (``None``: the run's own)
    with ``overrides``; refuses another model, another dataset, a setting outside :data:`RESUMABLE_CHANGES` and
    ``--epochs`` that leave nothing to train."""
    from ganzoo.registry import get_model
    from ganzoo.run_data import refuse_out_inside_data

    path, meta, tensors, skipped = ckpt.load_latest_checkpoint(out)
    spec = get_model(meta["model"])
    if model and spec.name != model:
        raise GanzooError(f"{out} holds a run of model {spec.name!r}, not {model!r}; resume it with "
                          f"'ganzoo train {spec.name} --resume {shell_word(str(out))}'.")
    dataset, gone = meta["dataset"], _gone_folders(meta["dataset"])
    if data and recorded_data_name(data) != recorded_data_name(dataset):  # older runs kept folders relative
        if not gone:
            raise GanzooError(f"{out} was trained on {dataset!r}, not {data!r}; drop --data to resume it.")
        dataset = data  # the folder moved: the run goes on from its new place (a change of contents is noted)
        refuse_out_inside_data(out, recorded_data_name(data), resumed=True)  # checked when a run starts, so here too
    elif gone:
        raise GanzooError(_gone_sentence(out, dataset, gone[0]))
    config = resumed_config(out, meta["config"], overrides)
    point = ResumePoint(path, meta, tensors, spec, dataset, config, skipped)
    _refuse_finished(out, int(config["epochs"]), point.epochs_done)
    return point


def _gone_folders(recorded: str) -> list[str]:
    """The folders of a run's recorded dataset (a folder, or an ``A | B`` pair, absolute) that no longer exist."""
    import os

    from ganzoo.data.translation import FOLDER_PAIR

    return [part for part in recorded.split(FOLDER_PAIR) if os.path.isabs(part) and not os.path.isdir(part)]


def _gone_sentence(out: Path, recorded: str, gone: str) -> str:
    """Why a run whose image folder ``gone`` no longer exists cannot resume, and the options that give its new place:
    ``--data`` for one folder, ``--data-a`` and ``--data-b`` (both, as training took them) for a pair."""
    from ganzoo.data.translation import FOLDER_PAIR

    parts = recorded.split(FOLDER_PAIR)
    if len(parts) == 1:
        return (f"{out} was trained on the folder {gone}, which is gone; put it back there, or give its new place "
                f"with --data to resume it.")
    domain = "AB"[parts.index(gone)]
    return (f"{out} was trained on the domain-{domain} folder {gone}, which is gone; put it back there, or give "
            f"both folders, as they are now, with --data-a and --data-b to resume it.")


def recorded_data_name(name: str) -> str:
    """``--data`` as a run records it: a registered dataset's name as is, a folder (or ``A | B`` pair of folders)
    made absolute, so that ``--resume`` from another working folder trains on the same images and never on
    another folder that happens to have the same relative name there."""
    import os

    from ganzoo.data.translation import FOLDER_PAIR
    from ganzoo.registry import get_registry

    known = get_registry().datasets
    if name in known or f"pix2pix-{name}" in known:
        return name
    parts = name.split(FOLDER_PAIR)
    if not all(os.path.isdir(os.path.expanduser(part)) for part in parts):
        return name  # not there: the dataset lookup says so in one sentence
    return FOLDER_PAIR.join(str(Path(part).expanduser().resolve()) for part in parts)


def resumed_config(out: Path, saved: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The saved config with ``overrides`` applied; only :data:`RESUMABLE_CHANGES` may differ."""
    from ganzoo.config import TRAINING_HYPERPARAMETERS, validate_numbers

    config = {hp.name: hp.default for hp in TRAINING_HYPERPARAMETERS if hp.name in RESUMABLE_CHANGES}
    config.update(saved)  # runs saved before a resumable setting existed get its default
    for key, value in overrides.items():
        if value is None or config.get(key) == value:
            continue
        if key not in RESUMABLE_CHANGES:
            trained = config.get(key)
            if key == "image_size" and config.get("data_kind") == "vectors":
                trained_with = "points, which have no image size"
            elif trained is None:
                trained_with = f"{key} unset (its default, decided when the run started)"
            else:
                trained_with = f"{key}={trained!r}"
            raise GanzooError(f"Cannot resume {out} with {key}={value!r}: it was trained with {trained_with}; "
                              f"only {', '.join(RESUMABLE_CHANGES)} may change on resume.")
        config[key] = value
    # decay_epochs cannot change on resume and was checked against the epochs the run started with; other
    # epochs re-plan the decay from where it is (ganzoo.schedule), which copes with fewer epochs than it
    checked = config if config["epochs"] == saved.get("epochs") else {**config, "decay_epochs": None}
    try:
        validate_numbers(checked)
    except GanzooError:
        if _valid({**checked, **{key: saved[key] for key in RESUMABLE_CHANGES if key in saved}}):
            raise  # the change is what is wrong
        # the run's own settings, which a later version checks more strictly (pack=1 once passed), trained
        # anyway: only the changes are judged, among the defaults
        validate_numbers({**{hp.name: hp.default for hp in TRAINING_HYPERPARAMETERS},
                          **{key: config[key] for key in RESUMABLE_CHANGES if key in config}})
    return config


def _valid(config: dict[str, Any]) -> bool:
    """Whether ``config`` passes :func:`ganzoo.config.validate_numbers`."""
    from ganzoo.config import validate_numbers

    try:
        validate_numbers(config)
    except GanzooError:
        return False
    return True


def _refuse_finished(out: Path, epochs: int, done: int) -> None:
    """Stop a resume that would train nothing: ``done`` epochs already reach the ``epochs`` asked for."""
    if epochs <= done:
        reached = "all it was asked for" if epochs == done else f"more than --epochs {epochs}"
        raise GanzooError(f"{out} has already trained {done} epoch{'s' if done != 1 else ''}, {reached}; "
                          f"pass --epochs with a number above {done} to train further.")
