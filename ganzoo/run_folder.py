"""What a training run writes into its ``--out`` folder, and how ``--overwrite`` replaces an earlier run there
without risking it: the earlier run's files are set aside and deleted only once the new run has a checkpoint of
its own, and come back if it fails before that."""

from __future__ import annotations

import shutil
from pathlib import Path

from ganzoo import checkpoint as ckpt
from ganzoo.errors import GanzooError
from ganzoo.safefile import cannot_write

#: Where ``--overwrite`` keeps the earlier run's files until the new run's first checkpoint.
REPLACED_RUN = ".replaced-run"
RUN_RESULTS = ("generator.safetensors", "discriminator.safetensors")
RUN_LOGS = ("metrics.jsonl", "losses.png", "run.json")


def run_results(out: Path) -> list[Path]:
    """What a run trained into ``out``: checkpoints and weights. Only these make ``out`` a run to protect."""
    return ckpt.list_checkpoints(out) + [out / name for name in RUN_RESULTS if (out / name).is_file()]


def run_logs(out: Path) -> list[Path]:
    """The logs and pictures a run wrote in ``out``: what it leaves besides its results."""
    logs = [out / name for name in RUN_LOGS if (out / name).is_file()]
    pictures = sorted((out / "samples").glob("epoch_*.png")) if (out / "samples").is_dir() else []
    return logs + pictures


def run_files(out: Path) -> list[Path]:
    """Every file a training run writes in ``out``: its results, logs and pictures; other files are not ours."""
    return run_results(out) + run_logs(out)


def refuse_overwrite(out: Path, overwrite: bool, model: str | None = None, dataset: str | None = None) -> None:
    """Stop before any work if ``out`` holds a run's checkpoints or weights and ``--overwrite`` was not given.

    Logs alone (a run that died before its first checkpoint) protect nothing: the new run replaces them. A run of
    another ``model`` or ``dataset`` than the new one (two folders of one name give one default ``--out``) is named,
    and not offered to ``--resume``, which would go on training it.
    """
    if not run_results(out) or overwrite:
        return
    held = recorded_run(out)
    if held is not None and model is not None and held != (model, dataset):
        raise GanzooError(f"{out} already holds a training run of {held[0]} on {held[1]}, not of this one; choose "
                          "another --out folder, or pass --overwrite to replace it.")
    resume = "continue it with --resume, " if ckpt.list_checkpoints(out) else ""  # weights alone cannot resume
    raise GanzooError(f"{out} already holds a training run; {resume}pass --overwrite to replace it, or choose "
                      "another --out folder.")


def recorded_run(out: Path) -> tuple[str, str] | None:
    """``(model, dataset)`` of the run in ``out`` as its ``run.json`` records them; None when it cannot be read."""
    import json

    try:
        info = json.loads((out / "run.json").read_text())
        return str(info["model"]), str(info["dataset"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def set_old_run_aside(out: Path) -> Path | None:
    """Move the files an earlier run left in ``out`` (``--overwrite``) into :data:`REPLACED_RUN`, where they stay
    until the new run writes its first checkpoint (:func:`drop_old_run`): a run that fails before that puts them
    back (:func:`put_old_run_back`), so a bad setting never costs the run it was to replace. Where they went, or
    None when there were none. Logs and pictures alone (a run that died before its first checkpoint) protect
    nothing: they are deleted, and a new run that fails early leaves its own logs, not the older ones."""
    aside, results, logs = out / REPLACED_RUN, run_results(out), run_logs(out)
    try:
        if aside.exists():  # a killed --overwrite run's, after its checkpoint (before it, recover_replaced_run)
            shutil.rmtree(aside)
        if not results:
            for path in logs:
                path.unlink()
            return None
        for path in results + logs:
            target = aside / path.relative_to(out)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.replace(target)
    except OSError as exc:
        raise cannot_write(out, exc, "--out", folder=True) from None
    return aside


def put_old_run_back(out: Path, aside: Path) -> None:
    """After a failure before the new run's first checkpoint: its files go, the earlier run's come back from
    ``aside``."""
    for path in run_files(out):
        path.unlink(missing_ok=True)
    for path in sorted(p for p in aside.rglob("*") if p.is_file()):
        target = out / path.relative_to(aside)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
    shutil.rmtree(aside, ignore_errors=True)


def recover_replaced_run(out: Path, option: str = "--out") -> str | None:
    """Give back the earlier run an ``--overwrite`` run set aside in ``out`` when that run was killed before its
    first checkpoint (``kill -9``, power loss: nothing put the files back); a note saying so, or None when there
    was nothing to give back. Called before a run looks at ``out``, so that a resume finds the earlier run and a
    new run without ``--overwrite`` is refused as it would have been. Under the run lock: an ``--overwrite`` run
    still training there is refused, not undone. Only a checkpoint shows that the replacing run got far enough:
    its weights are written just before its first one. ``option`` names the folder in the sentence of a folder
    that cannot be written."""
    from ganzoo.run_lock import hold_run_lock

    aside = out / REPLACED_RUN
    if not aside.is_dir():
        return None
    try:
        with hold_run_lock(out):
            if not aside.is_dir():
                return None
            if ckpt.list_checkpoints(out):  # the replacing run had its checkpoint: what it set aside was due to go
                shutil.rmtree(aside, ignore_errors=True)
                return None
            put_old_run_back(out, aside)
    except OSError as exc:
        raise cannot_write(out, exc, option, folder=True) from None
    return (f"note: a run started with --overwrite was stopped before its first checkpoint, so the files of the run "
            f"it was to replace are back in {out}")


def drop_old_run(aside: Path) -> None:
    """The new run has a checkpoint of its own: the earlier run's files set aside are no longer needed."""
    shutil.rmtree(aside, ignore_errors=True)
