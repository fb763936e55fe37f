"""Drawing samples from a generator reproducibly and writing them as a PNG grid or an ``.npz`` file.

Conditional models (task ``conditional``) are asked for classes: one class (``--class``, by
index or by the name kept in the generator file's config), N of every class (one grid row per
class, named in a legend column at its left), or, when nothing is asked, the classes in turn.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

from ganzoo.errors import GanzooError
from ganzoo.specs import ModelSpec

SAMPLE_SUFFIXES = (".png", ".npz")
#: Samples per class (one grid row each) in the per-epoch picture of a conditional model.
PICTURE_PER_CLASS = 8


def is_conditional(model: ModelSpec) -> bool:
    """Whether ``model``'s generator takes class labels."""
    return model.task == "conditional"


def class_names(config: dict[str, Any]) -> list[str]:
    """The class names stored at training time, or the indexes as text when the dataset named none."""
    count = int(config.get("num_classes") or 0)
    names = [str(name) for name in config.get("class_names") or []]
    return names if len(names) == count else [str(index) for index in range(count)]


def legend_names(config: dict[str, Any]) -> list[str]:
    """The class names as the legend column of a grid of one row per class gives them: in printable ASCII, which
    Pillow's built-in font draws in every version (see :func:`_printable`), and a name of which nothing is left
    ("猫") as its class index, which ``--class`` takes too."""
    return [_printable(name) or str(index) for index, name in enumerate(class_names(config))]


def _printable(name: str) -> str:
    """``name`` in printable ASCII: accents dropped ("café" is "cafe"), other letters "?"; "" when no letter is left."""
    plain = "".join(char for char in unicodedata.normalize("NFKD", name) if not unicodedata.combining(char))
    shown = "".join(char if " " <= char <= "~" else "?" for char in plain)
    return shown if shown.strip("? ") else ""


def resolve_class(config: dict[str, Any], wanted: str) -> int:
    """The index of class ``wanted``, given by name or by index, or one sentence listing the valid classes."""
    names = class_names(config)
    if wanted in names:
        return names.index(wanted)
    if wanted.isascii() and wanted.isdigit() and int(wanted) < len(names):  # not "²", which int() refuses
        return int(wanted)
    folded = [index for index, name in enumerate(names) if name.casefold() == wanted.casefold()]
    if len(folded) == 1:  # "Apple" for the folder apple/; two names that differ only in case stay as they are
        return folded[0]
    listing = ", ".join(name if name == str(i) else f"{i}={name}" for i, name in enumerate(names))
    raise GanzooError(f"Unknown class {wanted!r}: this generator knows {len(names)} classes; give an index or a name among {listing}.")


def per_class_labels(num_classes: int, per_class: int) -> "torch.Tensor":  # noqa: F821
    """``per_class`` labels of class 0, then of class 1, ...: one grid row per class."""
    import torch

    return torch.arange(num_classes).repeat_interleave(per_class)


def requested_labels(model: ModelSpec, config: dict[str, Any], num: int, wanted: str | None = None,
                     per_class: int | None = None) -> "torch.Tensor | None":  # noqa: F821
    """The labels to generate: ``None`` for unconditional models, else one class, N per class, or classes in turn."""
    import torch

    if not is_conditional(model):
        if wanted is not None or per_class is not None:
            raise GanzooError(f"Model {model.name!r} is unconditional, so it takes no class; drop --class/--per-class.")
        return None
    classes = int(config["num_classes"])
    if per_class is not None:
        return per_class_labels(classes, per_class)
    if wanted is not None:
        return torch.full((num,), resolve_class(config, wanted), dtype=torch.int64)
    return torch.arange(num) % classes


def picture_labels(model: ModelSpec, config: dict[str, Any]) -> "torch.Tensor | None":  # noqa: F821
    """Labels of the per-epoch picture: ``PICTURE_PER_CLASS`` of each class for conditional models, else ``None``."""
    if not is_conditional(model):
        return None
    return per_class_labels(int(config["num_classes"]), PICTURE_PER_CLASS)


#: torch's CPU normal sampler fills blocks of this many values and redraws a last partial block, so a draw of
#: another length would change the last values: draws are made in whole blocks.
_NORMAL_BLOCK = 16


def noise(num: int, latent_dim: int, seed: int) -> "torch.Tensor":  # noqa: F821
    """Standard normal noise drawn on the CPU from ``seed``, so every device gets the same z; more samples from the
    same seed begin with the same ones (``--num 20`` starts with ``--num 10``'s ten)."""
    import torch

    values = max(_NORMAL_BLOCK, -(-num * latent_dim // _NORMAL_BLOCK) * _NORMAL_BLOCK)
    drawn = torch.randn(values, generator=torch.Generator().manual_seed(seed))
    return drawn[: num * latent_dim].view(num, latent_dim).clone()


def generate(model: ModelSpec, config: dict[str, Any], generator: Any, num: int, seed: int = 0,
             batch_size: int = 1000, labels: Any = None, z: Any = None,
             inference: bool = True, checked: bool = True) -> "torch.Tensor":  # noqa: F821
    """``num`` samples on the generator's device in batches; returns them on that device.

    Conditional models get ``labels`` (a long tensor of ``num`` classes); without them the classes take turns.
    The noise is drawn from ``seed`` unless ``z`` (``num`` rows on the CPU) is given. ``inference=False``
    leaves torch's inference mode off, for a caller whose generator still has to train afterwards. The first batch
    must be that many samples of the data's shape (``checked=False``: the caller checks the shape itself).
    """
    import torch

    from ganzoo.plugin_manager import get_manager

    if labels is None:
        labels = requested_labels(model, config, num)
    device = next(generator.parameters()).device
    if z is None:
        z = noise(num, int(config["latent_dim"]), seed)
    parts = []
    with torch.inference_mode(inference):
        for start in range(0, num, batch_size):
            part_labels = None if labels is None else labels[start : start + batch_size].to(device)
            part = get_manager().hook.generate(
                model=model, config=config, generator=generator, num=min(batch_size, num - start),
                noise=z[start : start + batch_size].to(device, non_blocking=True), labels=part_labels,
            )
            if checked and not parts:  # the first batch tells: the rest come from the same code
                _check_batch(model, config, part, min(batch_size, num - start))
            parts.append(part)
    return parts[0] if len(parts) == 1 else torch.cat(parts)  # one batch as it came, for the caller that checks it


def _check_batch(model: ModelSpec, config: dict[str, Any], samples: Any, asked: int) -> None:
    """Refuse a batch of samples that is not ``asked`` samples of the data's shape (the generate hook of a plugin
    that returns half of them, or another shape), which would be written or scored as if it were right."""
    from ganzoo.plugin_checks import describe_shape, sample_shape, samples_problem

    problem = samples_problem(config, samples, asked)
    if problem is not None:
        raise GanzooError(f"The generator of model {model.name!r} (plugin {model.plugin!r}) gave {problem} where "
                          f"{asked} samples of shape {describe_shape(sample_shape(config))} were asked for; its "
                          "generate hook must return one sample of the data's shape per noise row.")


def to_uint8(images: "torch.Tensor") -> "torch.Tensor":  # noqa: F821
    """Images in [-1, 1] to uint8 [0, 255], rounded, on their device."""
    import torch

    return images.add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def generated_reference(dataset: str | None, num: int) -> Any:
    """Up to ``num`` real points of ``dataset`` when it is a registered set of points (the toy sets, a plugin's:
    small, and made in memory or read from the data root where training found them), for a picture of samples over
    them as training draws; None for other data."""
    from ganzoo.paths import data_root
    from ganzoo.registry import get_registry

    datasets = get_registry().datasets
    if dataset is None or dataset not in datasets or datasets.get(dataset).info.kind != "vectors":
        return None
    try:
        return datasets.get(dataset).load(data_root(), None, None).tensors["real"][:num]
    except Exception:  # a set that cannot be read here (moved, or under another --data-root): no real layer
        return None


def write_samples(path: Path, samples: "torch.Tensor", data_kind: str, real: Any = None,  # noqa: F821
                  labels: Any = None, nrow: int | None = None, title: str | None = None,
                  names: list[str] | None = None, row_names: list[str] | None = None) -> None:
    """``.png``: a grid (images, ``nrow`` per row, each row named in a legend column at the left by ``row_names``
    when given) or a scatter/histogram (vectors); ``.npz``: ``images`` uint8 or ``samples`` float, plus ``labels``
    int64 and the ``class_names`` they index (text) when given; a path without an ending: a folder of one PNG per
    image (:func:`sample_file_names`). Only the grid takes ``row_names``: arrays and files of one sample have no rows.

    A write that fails anyway after :func:`ganzoo.safefile.check_writable` (a full disk, a folder that vanished)
    ends in the same one sentence naming ``path`` rather than a traceback.
    """
    from ganzoo.safefile import cannot_write

    suffix = path.suffix.lower()
    if suffix and suffix not in SAMPLE_SUFFIXES:
        raise GanzooError(f"Cannot write samples to {path}: use a .png (picture) or .npz (arrays) file name, or a "
                          "folder name without an ending (one picture per sample).")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not suffix:
            from ganzoo.visual import save_image_files

            for earlier in earlier_sample_files(path):  # an earlier draw's pictures go, not mixed with these
                earlier.unlink()
            save_image_files(to_uint8(samples), path, sample_file_names(len(samples), labels, names))
        elif suffix == ".npz":
            _write_npz(path, samples, data_kind, labels, names)
        else:
            _write_picture(path, samples, data_kind, real, nrow, title or f"{len(samples)} samples", row_names)
    except OSError as exc:
        raise cannot_write(path, exc, "--out") from None


def sample_file_names(count: int, labels: Any = None, names: list[str] | None = None) -> list[str]:
    """The file names of ``count`` samples written one picture each: ``000000.png``..., sorting in drawing order,
    and ``000000-dog.png`` with its class name (or index) for a conditional model's."""
    width = max(6, len(str(count - 1)))
    if labels is None:
        return [f"{index:0{width}d}.png" for index in range(count)]
    classes = [_file_name_part(names[int(label)]) if names else "" for label in labels]
    return [f"{index:0{width}d}-{name or int(label)}.png" for index, (name, label) in enumerate(zip(classes, labels))]


#: The name of a picture :func:`sample_file_names` gives.
SAMPLE_FILE = re.compile(r"\d{6,}(-.+)?\.png")


def earlier_sample_files(folder: Path) -> list[Path]:
    """The pictures an earlier ``sample --out FOLDER`` wrote in ``folder`` (none when it does not exist)."""
    if not folder.is_dir():
        return []
    return [path for path in folder.iterdir() if SAMPLE_FILE.fullmatch(path.name) and path.is_file()]


#: The longest class name (in UTF-8 bytes) a sample's file name takes; a longer one gives its index instead.
NAME_PART_BYTES = 100


def _file_name_part(name: str) -> str:
    """``name`` when it can be part of a file name on any common system (no separator, control character or
    character Windows refuses, not only dots, short enough), else "" (the class index stands in)."""
    if not name or name.strip(".") == "" or len(name.encode()) > NAME_PART_BYTES:
        return ""
    if any(char in '/\\:*?"<>|' or ord(char) < 32 for char in name):
        return ""
    return name


def _write_npz(path: Path, samples: "torch.Tensor", data_kind: str, labels: Any,  # noqa: F821
               names: list[str] | None) -> None:
    """The arrays of :func:`write_samples`' ``.npz``: what ``ganzoo eval --samples`` reads back. Class names are
    a text array (numpy's fixed-width unicode, which ``np.load`` reads without unpickling anything)."""
    from ganzoo.safefile import atomic_target

    arrays = {"images": to_uint8(samples).cpu().numpy()} if data_kind == "images" else {"samples": samples.float().cpu().numpy()}
    if labels is not None:
        arrays["labels"] = labels.cpu().numpy().astype(np.int64)
        if names:
            arrays["class_names"] = np.array(names, dtype=str)
    with atomic_target(path) as temporary, open(temporary, "wb") as handle:  # a full disk keeps a good file whole
        np.savez(handle, **arrays)


def _write_picture(path: Path, samples: "torch.Tensor", data_kind: str, real: Any, nrow: int | None,  # noqa: F821
                   title: str, row_names: list[str] | None) -> None:
    """The picture of :func:`write_samples`' ``.png``: an image grid (its rows named by ``row_names`` when given),
    or points over ``real`` ones under ``title``."""
    from ganzoo import visual

    if data_kind == "images":
        visual.save_image_grid(samples, path, nrow=nrow, row_names=row_names)
    else:
        visual.save_vector_plot(samples, real if real is not None else samples[:0], path, title=title)
