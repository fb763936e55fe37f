"""The data a training run reads: which dataset a name means for a model (and a note when a folder of the same name
is not it), and what its checkpoints keep of it (the sample count and, for image sets up to 1 GiB, a SHA-256) so that
a resume notices data that changed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ganzoo.errors import GanzooError
from ganzoo.safefile import tensor_digest
from ganzoo.specs import ModelSpec


def dataset_for(model: ModelSpec, name: str) -> Any:
    """The dataset ``name`` as ``model`` trains on it: image-to-image models also take paired/unpaired
    folders and the pix2pix names of shared sets; the others, registered names and image folders."""
    if model.task == "image-to-image":
        from ganzoo.data import translation

        return translation.get_dataset(name, model.data_kinds)
    from ganzoo.registry import get_dataset

    return get_dataset(name)


def shadowed_folder_note(name: str) -> str | None:
    """A note when ``--data NAME`` names a registered dataset and a folder of that name lies in the current folder:
    the registered set is what trains (downloaded if need be), so a user who meant the folder is told how to say so."""
    from ganzoo.registry import get_registry

    datasets = get_registry().datasets
    if os.sep in name or name.startswith(".") or not os.path.isdir(name):
        return None
    if name not in datasets and f"pix2pix-{name}" not in datasets:
        return None
    return (f"note: --data {name} is the registered dataset {name!r}, not the folder ./{name} here; to train on that "
            f"folder, give --data ./{name}")


def sample_count(data: Any) -> int:
    """How many samples ``data`` holds, kept in checkpoints to notice data that changed: both domains' images of
    an unpaired set (its epoch length follows only the larger one), else its length."""
    sizes = getattr(data, "sizes", None)
    return sum(sizes()) if sizes is not None and not data.paired else len(data)


#: Image data up to this many bytes (1 GiB) is hashed for its checkpoints, so that a resume notices pictures that
#: changed under the same count; larger sets, streamed ones and vectors are compared by their count alone.
DIGESTED_BYTES = 2**30


def data_digest(data: Any) -> str | None:
    """SHA-256 of the image tensors ``data`` holds (both sides of a translation set), or None for a set over
    :data:`DIGESTED_BYTES`, one that reads its files as it goes, or vectors (toy sets are drawn by torch's random
    kernels, whose last bits may differ on another machine)."""
    tensors = getattr(data, "tensors", None)
    if (not isinstance(tensors, dict) or data.info.kind == "vectors"
            or sum(t.numel() * t.element_size() for t in tensors.values()) > DIGESTED_BYTES):
        return None
    return tensor_digest(tensors)


def refuse_out_inside_data(out: Path, dataset_name: str, resumed: bool = False) -> None:
    """Stop a run whose ``--out`` (or, ``resumed`` at a new data place, ``--resume``) lies inside its image
    folder(s): its pictures and files would join the training images of the next run on that folder, without a
    word."""
    from ganzoo.data.translation import FOLDER_PAIR

    for folder in dataset_name.split(FOLDER_PAIR):
        if Path(folder).is_absolute() and out.resolve().is_relative_to(folder):
            option, fix = (("--resume", "move the run folder out of it, or the data elsewhere, first") if resumed
                           else ("--out", "choose an --out folder outside it"))
            raise GanzooError(f"{option} {out} lies inside the data folder {folder}, so the run's pictures would "
                              f"become training images of the next run on it; {fix}.")


def refuse_changed_classes(model: ModelSpec, config: dict[str, Any], info: Any, dataset_name: str) -> None:
    """Refuse to resume a conditional run whose data's classes changed since it began (a class folder added,
    removed or renamed): its networks embed the classes it was built with, and a folder's class indices follow
    the sorted folder names, so the run would crash on a new index or go on teaching one class's name another's
    pictures."""
    if model.task != "conditional":
        return
    saved_names, names = config.get("class_names"), list(info.class_names or ())
    if config.get("num_classes") == info.num_classes and (saved_names is None or list(saved_names) == names):
        return

    def listed(count: Any, classes: Any) -> str:
        return f"{count} classes ({', '.join(map(str, classes))})" if classes else f"{count} classes"

    raise GanzooError(f"The classes of {dataset_name} changed since this run began: it was trained on "
                      f"{listed(config.get('num_classes'), saved_names)}, and the data now has "
                      f"{listed(info.num_classes, names)}; put the class folders back as they were to resume, or "
                      "start a new run on the data as it is.")
