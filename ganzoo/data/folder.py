"""Any folder of images as a dataset: decoded once, converted to one channel count and size.

Images in sub-folders become classes named after the sub-folders (when every image sits in
one). A folder laid out as a split (``train/`` beside ``val/`` or ``test/``) is its ``train/``
alone. Grayscale, 16-bit, 32-bit, palette and RGBA images are converted (RGBA is composited on
white); files that cannot be decoded are skipped with a warning naming them (the training command
turns that warning into an error with ``--strict-data``), and a class none of whose files decodes
is refused. Large folders are decoded by worker processes (:mod:`ganzoo.data.decoding`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Iterator

from ganzoo.data import decoded_cache
from ganzoo.data.decoded_cache import Decoded
from ganzoo.data.decoding import BadImageWarning, UnusableImage, decode_files
from ganzoo.errors import GanzooError, shell_word
from ganzoo.specs import DatasetInfo, DatasetSpec

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
DEFAULT_FOLDER_SIZE = 64
#: The EXIF tag saying how a picture is turned (1: as stored).
EXIF_ORIENTATION = 0x0112


#: Folders that tools leave beside images and that hold none of the user's: a Mac archive's resource forks.
TOOL_FOLDERS = ("__MACOSX",)


def ignored(name: str) -> bool:
    """Whether a file or folder called ``name`` is left out of a dataset: hidden ones (``.ipynb_checkpoints``,
    macOS's ``._photo.png``) and :data:`TOOL_FOLDERS`, which would otherwise become classes or broken images."""
    return name.startswith(".") or name in TOOL_FOLDERS


def _walk_images(folder: Path) -> Iterator[Path]:
    """Image files below ``folder``, in no set order; links to folders are followed (each folder once, so a link
    back up does not loop), and :func:`ignored` names are skipped. A link to a file that is gone is listed too, so
    that decoding skips it saying why (see :func:`~ganzoo.data.decoding.unreadable_reason`) rather than in silence."""
    seen: set[tuple[int, int]] = set()
    for root, folders, files in os.walk(folder, followlinks=True):
        status = os.stat(root)
        if (status.st_dev, status.st_ino) in seen:
            folders.clear()
            continue
        seen.add((status.st_dev, status.st_ino))
        folders[:] = [name for name in folders if not ignored(name)]
        for name in files:
            path = Path(root) / name
            if not ignored(name) and path.suffix.lower() in IMAGE_EXTENSIONS and (path.is_file() or path.is_symlink()):
                yield path


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` (see :func:`_walk_images`), sorted so the dataset order is reproducible."""
    return sorted(_walk_images(folder))


def has_images(folder: Path) -> bool:
    """Whether any image file lies below ``folder``; stops at the first."""
    return next(_walk_images(folder), None) is not None


#: Sub-folders that hold held-out images when they lie beside ``train/``: such a folder is a split, trained on its
#: ``train/`` alone (see :func:`training_split`).
HELD_OUT_SPLITS = ("val", "valid", "validation", "test")


def training_split(folder: Path) -> tuple[Path, str | None]:
    """The folder to train on for ``--data folder``, and a line saying so when that is not ``folder`` itself.

    A folder holding no images of its own and whose sub-folders with images are ``train`` and one or more of
    :data:`HELD_OUT_SPLITS`, nothing else, is a split (as many sets are shipped): it is its ``train/`` alone, that
    folder's own sub-folders being the classes, rather than classes called "train" and "val" with the held-out
    images trained on. The choice follows the folder's layout only, so a resume on the same folder makes it again.
    """
    try:
        with os.scandir(folder) as entries:
            named = [(entry.name, Path(entry.path)) for entry in entries if not ignored(entry.name)]
    except OSError:  # no folder, or one that cannot be read: listing its images says so in its own sentence
        return folder, None
    if any(path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file() for _, path in named):
        return folder, None
    holding = {name: path for name, path in named if path.is_dir() and has_images(path)}
    held_out = sorted(set(holding) - {"train"})
    if "train" not in holding or not held_out or not set(held_out) <= set(HELD_OUT_SPLITS):
        return folder, None
    left_out = " and ".join(str(holding[name]) for name in held_out)
    verb = "is" if len(held_out) == 1 else "are"
    return holding["train"], f"using {holding['train']} (the training split of {folder}; {left_out} {verb} left out)"


def _classes(folder: Path, files: list[Path]) -> tuple[str, ...]:
    """The class names of ``files`` (sorted below ``folder``): their sub-folders of ``folder``, when every file lies
    in one and there are two or more such folders between them; else none."""
    parents = {f.parent for f in files}
    if folder in parents or len(parents) < 2:
        return ()
    return tuple(sorted({f.relative_to(folder).parts[0] for f in files}))


def _classes_note(folder: Path, files: list[Path], classes: tuple[str, ...]) -> str:
    """Why ``folder`` of ``files`` gives fewer than two ``classes``, with what to do, as the end of the sentence a
    conditional model refuses it with; empty when it gives two or more."""
    if len(classes) >= 2:
        return ""
    loose = next((path for path in files if path.parent == folder), None)
    tops = {path.relative_to(folder).parts[0] for path in files if path.parent != folder}
    if loose is not None and tops:
        return (f"images such as {loose} lie beside its sub-folders, and a folder gives classes only when every "
                f"image lies in one of them; move such images into a class folder or out of {folder}")
    if loose is not None:
        return f"its images lie in it directly; put them in sub-folders of {folder}, one per class, two or more"
    only = folder / tops.pop()
    if len(_classes(only, files)) >= 2:  # all below one sub-folder, whose own sub-folders would be the classes
        return (f"every image lies in {only}, whose sub-folders would be the classes; pass --data "
                f"{shell_word(str(only))}")
    return (f"every image lies in its one sub-folder {only}; a folder gives classes when its images lie in two or "
            "more sub-folders, one per class")


def upright_in_mode(image, channels: int):
    """The picture as a viewer shows it: turned as its EXIF orientation says (a phone's portrait photo is stored
    sideways), then any PIL mode converted to ``L`` or ``RGB``, scaling 16-bit and compositing alpha on white."""
    from PIL import Image, ImageOps

    file_format = image.format  # a turned copy has none
    if image.getexif().get(EXIF_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        top = _white_level(array, image.mode, file_format)
        image = Image.fromarray((array / top * 255).round().clip(0, 255).astype("uint8"), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L" if channels == 1 else "RGB")


def _white_level(array: Any, mode: str, file_format: str | None) -> float:
    """The value that is white in the pixels ``array`` of a PIL image of ``mode`` (one of more than 8 bits), or
    :class:`~ganzoo.data.decoding.UnusableImage` saying why none fits.

    16-bit values span 0..65535 whatever one picture holds (a dark frame stays dark beside its set): the I;16
    modes, and a PNG in mode I (older Pillow opens 16-bit PNGs so). Other 32-bit integers (mode I, a TIFF) have
    no such range: 0..255 when they fit in it, 0..65535 as 16-bit, else their own maximum; negative ones have
    no range at all. 32-bit floating-point pixels (mode F) are fractions of 0..1, as float images are written,
    or 0..255 when some exceed 1; others (negative, beyond 255, NaN) fit neither and are refused rather than
    made black or white.
    """
    import numpy as np

    if mode.startswith("I;16") or (mode == "I" and file_format == "PNG"):
        return 65535.0
    low, high = float(np.min(array)), float(np.max(array))
    kind = "integer pixels (mode I)" if mode == "I" else "floating-point pixels (mode F)"
    if mode == "I" and low >= 0:
        return 255.0 if high <= 255 else max(65535.0, high)
    if mode == "F" and 0 <= low and high <= 255:  # NaN fails both comparisons
        return 1.0 if high <= 1 else 255.0
    expected = "of 0 or more" if mode == "I" else "of 0..1 or 0..255"
    raise UnusableImage(f"its 32-bit {kind} run from {low:g} to {high:g}, and only values {expected} have a "
                        "known black and white; save it with 8- or 16-bit pixels")


def _fit(image, size: int):
    """Resize the shorter side to ``size`` and center-crop a square."""
    from PIL import Image

    width, height = image.size
    scale = size / min(width, height)
    image = image.resize((max(size, round(width * scale)), max(size, round(height * scale))), Image.Resampling.BICUBIC)
    left = (image.size[0] - size) // 2
    top = (image.size[1] - size) // 2
    return image.crop((left, top, left + size, top + size))


#: About how many files :func:`probe` opens (their headers only) to tell colour from grayscale and find the size.
PROBE_FILES = 256


def _probed(folder: Path, files: list[Path], classes: tuple[str, ...]) -> list[Path]:
    """The files :func:`probe` looks at: spread over the whole sorted list (not its start alone, where a gray class
    can hide a colour one), plus each class's first file."""
    spread = files[:: max(1, -(-len(files) // PROBE_FILES))]  # a step rounded up: at most PROBE_FILES of them
    firsts = {name: None for name in classes}
    for path in files:
        name = path.relative_to(folder).parts[0]
        if name in firsts and firsts[name] is None:
            firsts[name] = path
    chosen = set(spread)
    return spread + [path for path in firsts.values() if path is not None and path not in chosen]


def probe(folder: Path) -> DatasetInfo:
    """Look at the folder without decoding everything: channels, a native size and classes."""
    from PIL import Image

    files = list_images(folder)
    if not files:
        raise GanzooError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found in {folder}; put image files there or in class sub-folders.")
    sizes, color = set(), False
    classes = _classes(folder, files)
    for path in _probed(folder, files, classes):
        try:
            with Image.open(path) as image:
                sizes.add(image.size)
                color = color or image.mode not in ("L", "1", "I", "I;16", "I;16B", "I;16L", "F", "LA")
        except Exception:  # damaged files raise many types inside PIL; load_folder reports them
            continue
    square = {w for (w, h) in sizes if w == h}
    native = square.pop() if len(sizes) == 1 and square else DEFAULT_FOLDER_SIZE
    return DatasetInfo(kind="images", channels=3 if color else 1, image_size=native, num_classes=len(classes),
                       class_names=classes, classes_note=_classes_note(folder, files, classes))


def read_fitted(path: Path, image_size: int, channels: int):
    """One image file as uint8 (channels, size, size): converted, shorter side resized, centre-cropped."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        array = np.asarray(_fit(upright_in_mode(image, channels), image_size), dtype=np.uint8)
    return array.reshape(image_size, image_size, channels).transpose(2, 0, 1)


def _decode(folder: Path, files: list[Path], image_size: int, channels: int, workers: int | None,
            out: Any = None) -> Decoded:
    """Decode ``files`` (of ``folder``), labelled by class sub-folder when there are classes; into ``out``
    (see :func:`ganzoo.data.decoding.decode_files`) when given."""
    import torch

    classes = _classes(folder, files)
    index = {name: i for i, name in enumerate(classes)}
    images, reasons = decode_files(partial(read_fitted, image_size=image_size, channels=channels), files,
                                   (channels, image_size, image_size), workers, out=out)
    skipped = tuple((path, why) for path, why in zip(files, reasons) if why is not None)
    if not len(images):
        raise GanzooError(f"None of the {len(files)} image files in {folder} could be decoded "
                          f"({first_reasons(folder, skipped)}); check that they are images.")
    labels = [index[path.relative_to(folder).parts[0]] if classes else 0 for path, why in zip(files, reasons) if why is None]
    return Decoded(torch.from_numpy(images), torch.tensor(labels, dtype=torch.int64), skipped)


def first_reasons(folder: Path, skipped: tuple[tuple[Path, str], ...], shown: int = 2) -> str:
    """``a.png: why; b.png: why; and 3 more``: why the first ``shown`` files of ``skipped`` (below ``folder``) could
    not be used, in the words of their warnings, for a sentence that has no room for every one."""
    named = "; ".join(f"{path.relative_to(folder)}: {why}" for path, why in skipped[:shown])
    return named + (f"; and {len(skipped) - shown} more" if len(skipped) > shown else "")


def _refuse_empty_classes(folder: Path, classes: tuple[str, ...], labels: Any,
                          skipped: tuple[tuple[Path, str], ...]) -> None:
    """Refuse a class sub-folder none of whose files could be decoded: kept, it would be a class with no images,
    which a conditional model would still be asked to draw."""
    import torch

    if not classes:
        return
    counts = torch.bincount(labels, minlength=len(classes)).tolist()
    empty = next((name for name, count in zip(classes, counts) if count == 0), None)
    if empty is None:
        return
    bad = tuple((path, why) for path, why in skipped if path.relative_to(folder).parts[0] == empty)
    raise GanzooError(f"None of the {len(bad)} image files of the class folder {folder / empty} could be decoded "
                      f"({first_reasons(folder / empty, bad, shown=1)}), so that class would have no images; fix or "
                      "remove its files.")


def load_folder(folder: Path, image_size: int, channels: int, workers: int | None = None):
    """Decode every image of ``folder`` into uint8 (N, C, S, S) and labels (N,) tensors, plus notes for the user.

    Unreadable files are skipped with a :class:`~ganzoo.data.decoding.BadImageWarning`; ``workers``
    as in :func:`ganzoo.data.decoding.decode_files`. Large folders are read from, or decoded
    straight into, the cache of decoded folders (:mod:`ganzoo.data.decoded_cache`).
    """
    files = list_images(folder)
    classes = _classes(folder, files)
    # None: too few files, the cache switched off, or a file gone since listing (decoding names it)
    expected = decoded_cache.fingerprint(folder, files) if decoded_cache.enabled(files) else None
    if expected is None:
        decoded = _decode(folder, files, image_size, channels, workers)
        _refuse_empty_classes(folder, classes, decoded.labels, decoded.skipped)
        return decoded.images, decoded.labels, ()
    entry = decoded_cache.entry_path(folder, image_size, channels)
    shape = (channels, image_size, image_size)
    cached = decoded_cache.read(entry, folder, expected, shape, len(classes))
    if cached is not None:
        for path, reason in cached.skipped:
            warnings.warn(BadImageWarning(path, reason), stacklevel=2)
        _refuse_empty_classes(folder, classes, cached.labels, cached.skipped)
        return cached.images, cached.labels, (f"loaded {len(cached.images):,} decoded images from the cache {entry}",)
    decoded, note = decoded_cache.decode_into(entry, folder, expected, len(files), shape, len(classes),
                                              partial(_decode, folder, files, image_size, channels, workers))
    _refuse_empty_classes(folder, classes, decoded.labels, decoded.skipped)
    return decoded.images, decoded.labels, (note,) if note else ()


def folder_dataset(path: str | os.PathLike[str]) -> DatasetSpec:
    """A :class:`DatasetSpec` for an image folder given on the command line (its training split, see
    :func:`training_split`, whose choice is the first line the load notes); named as given."""
    from ganzoo.data import InMemoryData

    given = Path(path)
    folder, split_note = training_split(given)
    info = probe(folder)

    def load(root: Path | None = None, image_size: int | None = None, channels: int | None = None) -> InMemoryData:
        size, chans = image_size or info.image_size, channels or info.channels
        images, labels, notes = load_folder(folder, size, chans)
        tensors = {"real": images, "label": labels} if info.num_classes else {"real": images}
        notes = (split_note, *notes) if split_note else notes
        return InMemoryData(str(given), replace(info, image_size=size, channels=chans), tensors, notes)

    return DatasetSpec(name=str(given), summary=f"images in {folder}", info=info, load=load, source=str(given))
