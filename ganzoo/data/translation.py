"""Paired (pix2pix) and unpaired (CycleGAN) image sets, with the papers' jitter per batch.

Layouts, as the authors distribute them:

- paired: every file holds A and B side by side (A left, B right), in ``DIR/train/`` or ``DIR`` itself;
  which side is the input is the model's ``direction`` setting, not the data's;
- unpaired: ``DIR/trainA/`` and ``DIR/trainB/``, a folder with exactly two image sub-folders (A, B
  in name order), or two folders given as ``--data-a``/``--data-b`` (recorded as one dataset name,
  ``"A | B"`` with both paths absolute, so ``--resume`` finds them again).

Images are decoded and resized to the load size ``round(image_size * 286 / 256)`` (286 for 256,
as in both papers); each batch takes a random ``image_size`` crop and a random horizontal flip,
for both sides of a pair alike. Unpaired epochs last ``max(len A, len B)`` steps: A is shuffled
(wrapping around the shorter set) and B is drawn independently at random, as the authors' code
does. All of an epoch's random draws come from the engine's data-order generator at its start.

A set whose decoded images fit in ``max_memory_gb`` is held as uint8 on the training device
(:class:`TranslationData`, one gather per batch); a larger one, or any with ``stream=True``, is
read from disk by DataLoader workers (:mod:`ganzoo.data.translation_stream`). Both give the same
``{"a", "b"}`` batches, pixel for pixel, from the same draws.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ganzoo.errors import GanzooError
from ganzoo.specs import DatasetInfo, DatasetSpec, Hyperparameter

if TYPE_CHECKING:
    import torch

#: Both papers load 256x256 crops from images resized to 286x286.
JITTER_RATIO = 286 / 256
#: Image pairs shown in the per-epoch picture.
PICTURE_PAIRS = 4
#: Joins the two folders of ``--data-a``/``--data-b`` into the run's dataset name.
FOLDER_PAIR = " | "

#: Data settings of the image-to-image families (shown by ``ganzoo info``; may change on resume).
DATA_HYPERPARAMETERS = (
    Hyperparameter("stream", "auto", "auto: read batches from disk with worker processes when the decoded images "
                   "would exceed max_memory_gb, else hold them on the device; True: always stream; False: never"),
)


def load_size(image_size: int) -> int:
    """The side images are resized to before the random crop: 286 for 256, scaled for other sizes."""
    return int(round(image_size * JITTER_RATIO))


# -- what in-memory and streamed sets share -------------------------------------------------------


class TranslationSet:
    """Epoch length, steps and each epoch's random draws of a translation set, however its images are kept.

    Subclasses provide ``name``, ``info``, ``image_size``, ``flip`` and :meth:`sizes`.
    """

    name: str
    info: DatasetInfo
    image_size: int
    flip: bool

    def sizes(self) -> tuple[int, int]:
        """Images of side A and of side B (the same count for a paired set)."""
        raise NotImplementedError

    @property
    def paired(self) -> bool:
        return self.info.kind == "paired"

    def __len__(self) -> int:
        count_a, count_b = self.sizes()
        return count_a if self.paired else max(count_a, count_b)

    def steps_per_epoch(self, batch_size: int) -> int:
        """Full batches in one epoch (the last partial batch is dropped)."""
        steps = len(self) // batch_size
        if steps == 0:
            raise GanzooError(f"Dataset {self.name!r} has {len(self)} images, fewer than the batch size {batch_size}; lower --batch-size.")
        return steps

    def _crops(self, count: int, generator: "torch.Generator") -> tuple["torch.Tensor", ...]:
        import torch

        room = load_size(self.image_size) - self.image_size + 1
        tops = torch.randint(room, (count,), generator=generator)
        lefts = torch.randint(room, (count,), generator=generator)
        flips = torch.rand(count, generator=generator) < 0.5 if self.flip else torch.zeros(count, dtype=torch.bool)
        return tops, lefts, flips

    def draws(self, generator: "torch.Generator") -> tuple["torch.Tensor", ...]:
        """One epoch's ``(order_a, tops_a, lefts_a, flips_a, order_b, tops_b, lefts_b, flips_b)``, CPU tensors.

        A paired set uses A's order and crops for B too; an unpaired one draws B's images at random.
        """
        import torch

        count_a, count_b = self.sizes()
        count = len(self)
        order_a = torch.randperm(count, generator=generator) % count_a
        crop_a = self._crops(count, generator)
        if self.paired:
            return (order_a, *crop_a, order_a, *crop_a)
        order_b = torch.randint(count_b, (count,), generator=generator)
        return (order_a, *crop_a, order_b, *self._crops(count, generator))


def crop(images: "torch.Tensor", index: "torch.Tensor", tops: "torch.Tensor", lefts: "torch.Tensor",
         flips: "torch.Tensor", size: int) -> "torch.Tensor":
    """``size`` x ``size`` crops at (``tops``, ``lefts``) of ``images[index]``, mirrored where ``flips``; uint8 (B, C, S, S)."""
    import torch

    steps = torch.arange(size, device=images.device)
    rows = tops[:, None] + steps
    cols = lefts[:, None] + torch.where(flips[:, None], size - 1 - steps, steps)
    return images[index[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # gather is (B, S, S, C)


def to_unit(images: "torch.Tensor") -> "torch.Tensor":
    """uint8 images as float in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def jitter(images: "torch.Tensor", index: "torch.Tensor", tops: "torch.Tensor", lefts: "torch.Tensor",
           flips: "torch.Tensor", size: int) -> "torch.Tensor":
    """:func:`crop` as float in [-1, 1]."""
    return to_unit(crop(images, index, tops, lefts, flips, size))


def centre_preview(tensors: dict[str, "torch.Tensor"], image_size: int, num: int) -> dict[str, "torch.Tensor"]:
    """The first ``num`` images of each side, centre-cropped, unflipped, in [-1, 1]: the per-epoch picture's inputs."""
    import torch

    result = {}
    for key, images in tensors.items():
        count = min(num, int(images.shape[0]))
        offset = (int(images.shape[-1]) - image_size) // 2
        zeros = torch.full((count,), offset, dtype=torch.long, device=images.device)
        index = torch.arange(count, device=images.device)
        result[key] = jitter(images, index, zeros, zeros, torch.zeros_like(zeros, dtype=torch.bool), image_size)
    return result


@dataclass
class TranslationData(TranslationSet):
    """Two image sets ``a`` and ``b`` (uint8, N x C x L x L) held on the device, served as jittered ``{"a", "b"}`` batches."""

    name: str
    info: DatasetInfo
    tensors: dict[str, "torch.Tensor"]
    image_size: int
    flip: bool = True
    #: Lines the run prints once loaded (which sub-folder is domain A).
    notes: tuple[str, ...] = ()

    def sizes(self) -> tuple[int, int]:
        return int(self.tensors["a"].shape[0]), int(self.tensors["b"].shape[0])

    def to(self, device: "torch.device | str") -> "TranslationData":
        """A copy with both image sets on ``device``."""
        return replace(self, tensors={k: v.to(device) for k, v in self.tensors.items()})

    def batches(self, batch_size: int, generator: "torch.Generator") -> Iterator[dict[str, "torch.Tensor"]]:
        """One epoch of jittered batches in [-1, 1]; all random draws come from ``generator`` (CPU) at the epoch's start."""
        device = self.tensors["a"].device
        draws = [t.to(device, non_blocking=True) for t in self.draws(generator)]
        for step in range(self.steps_per_epoch(batch_size)):
            part = slice(step * batch_size, (step + 1) * batch_size)
            yield {
                "a": jitter(self.tensors["a"], *(t[part] for t in draws[:4]), self.image_size),
                "b": jitter(self.tensors["b"], *(t[part] for t in draws[4:]), self.image_size),
            }

    def preview(self, num: int = PICTURE_PAIRS) -> dict[str, "torch.Tensor"]:
        """The first ``num`` images of each side, centre-cropped, unflipped, in [-1, 1]."""
        return centre_preview(self.tensors, self.image_size, num)


# -- reading folders -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TranslationFiles:
    """The image files of a set: paired (``a`` holds the A|B files, ``b`` is empty) or unpaired (``a``, ``b``)."""

    kind: str
    a: tuple[Path, ...]
    b: tuple[Path, ...] = ()

    @property
    def paired(self) -> bool:
        return self.kind == "paired"

    def images(self) -> int:
        """Decoded images the set makes (two per paired file)."""
        return 2 * len(self.a) if self.paired else len(self.a) + len(self.b)

    def decoded_bytes(self, image_size: int) -> int:
        """Memory the whole set takes once decoded at the load size (uint8 RGB)."""
        return self.images() * 3 * load_size(image_size) ** 2


def read_parts(path: Path, size: int, halves: bool) -> Any:
    """The image, or its left and right halves, resized to ``size``: uint8 (1 or 2, 3, size, size); raises if unreadable."""
    import numpy as np
    from PIL import Image

    from ganzoo.data.decoding import UnusableImage
    from ganzoo.data.folder import upright_in_mode

    with Image.open(path) as image:
        image.load()
        image = upright_in_mode(image, 3)
    width, height = image.size
    if halves and not is_pair_shaped(width, height):
        raise UnusableImage(f"{width}x{height} is not an A|B pair, which is about twice as wide as high")
    parts = list(pair_halves(image)) if halves else [image]
    return np.stack([np.asarray(p.resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8) for p in parts]).transpose(0, 3, 1, 2)


def pair_halves(image: Any) -> tuple[Any, Any]:
    """The A (left) and B (right) halves of the PIL picture of an A|B pair."""
    width, height = image.size
    return image.crop((0, 0, width // 2, height)), image.crop((width // 2, 0, width, height))


def is_pair_shaped(width: int, height: int) -> bool:
    """Whether a ``width`` x ``height`` image can hold two square-ish pictures side by side (pix2pix's sets are
    exactly twice as wide as high); a plain photo's halves would be two slivers of one scene, not a pair."""
    return 1.5 * height <= width <= 3 * height


#: How many files of a paired set are looked at for one A|B pair before the set is refused.
PAIR_PROBE = 20


def looks_unpaired(root: Path) -> bool:
    """Whether ``root`` has the CycleGAN layout (``trainA/`` and ``trainB/``), so a paired model given it was most
    likely handed an unpaired set."""
    return (root / "trainA").is_dir() and (root / "trainB").is_dir()


def _searched(folder: Path, files: tuple[Path, ...]) -> str:
    """Where ``files`` were found, as a message names it: ``folder``, or ``folder`` and its subfolders when some of
    them lie deeper (naming the first file's own folder would hide the others)."""
    deeper = any(path.parent != folder for path in files)
    return f"{folder} and its subfolders" if deeper else str(folder)


def refuse_unpaired_files(files: tuple[Path, ...], folder: Path) -> None:
    """Stop at once when none of the first :data:`PAIR_PROBE` files of a paired set, found below ``folder``, is an
    A|B pair (read from their headers, no decoding): a folder of plain photos would otherwise train pix2pix to map
    each photo's left half to its right half. A stray photo among pairs is skipped with a warning when the set is
    decoded. The message names ``folder`` (and its subfolders when the files lie deeper), since that is what was
    searched."""
    from PIL import Image

    sizes: list[tuple[Path, tuple[int, int]]] = []
    for path in files[:PAIR_PROBE]:
        try:
            with Image.open(path) as image:
                sizes.append((path, image.size))
        except Exception:  # an unreadable file is skipped, with a warning, when the set is decoded
            continue
        if is_pair_shaped(*sizes[-1][1]):
            return
    if sizes:
        (first, (width, height)), looked = sizes[0], min(len(files), PAIR_PROBE)
        where = _searched(folder, files[:PAIR_PROBE])  # the folders of the images looked at
        raise GanzooError(f"None of the first {looked} images in {where} is an A|B pair (two "
                          f"pictures side by side, twice as wide as high; {first.relative_to(folder)} is "
                          f"{width}x{height}), which paired training needs; for unpaired photos in two folders "
                          f"use cyclegan.")


def read_image(path: Path, size: int, halves: bool) -> tuple[Any, str | None]:
    """:func:`read_parts` and None; or, for an unreadable file, None and why, which a
    :class:`~ganzoo.data.decoding.BadImageWarning` also shows (the reason goes into the error of a set none of whose
    files decodes)."""
    from ganzoo.data.decoding import BadImageWarning, unreadable_reason

    try:
        return read_parts(path, size, halves), None
    except Exception as exc:  # PIL raises OSError, SyntaxError, EOFError, struct.error... on damaged files
        reason = unreadable_reason(exc)
        warnings.warn(BadImageWarning(path, reason), stacklevel=3)
        return None, reason


def undecodable(files: tuple[Path, ...], reasons: tuple[str | None, ...] = ()) -> GanzooError:
    """The error for a set none of whose ``files`` can be decoded, naming the folder that holds them all and, when
    ``reasons`` (one per file) are known, why the first two could not be."""
    from ganzoo.data.folder import first_reasons

    common = Path(os.path.commonpath([path.parent for path in files])) if files else None
    where = _searched(common, files) if common is not None else "the folder"
    skipped = tuple((path, why) for path, why in zip(files, reasons) if why is not None)
    why = f" ({first_reasons(common, skipped)})" if skipped and common is not None else ""
    return GanzooError(f"None of the {len(files)} image files in {where} could be decoded{why}; check that they are "
                       "images.")


def decode(files: tuple[Path, ...], size: int, halves: bool, workers: int | None = None) -> list["torch.Tensor"]:
    """The readable ``files`` resized to ``size``: ``[images]``, or ``[left halves, right halves]``; uint8 (N, 3, size, size)."""
    from functools import partial

    import torch

    from ganzoo.data.decoding import decode_files

    parts = 2 if halves else 1
    what = "image pairs" if halves else "images"
    images, reasons = decode_files(partial(read_parts, size=size, halves=halves), files, (parts, 3, size, size),
                                   workers, what, parts_first=True)
    if not images.shape[1]:
        raise undecodable(files, tuple(reasons))
    return [torch.from_numpy(images[side]) for side in range(parts)]


def decode_set(files: TranslationFiles, size: int, limit: int | None = None,
               workers: int | None = None) -> dict[str, "torch.Tensor"]:
    """``{"a", "b"}``: the set's (first ``limit``) readable images of each side at ``size``, uint8 (N, 3, size, size)."""
    if files.paired:
        a, b = decode(files.a[:limit], size, halves=True, workers=workers)
    else:
        (a,), (b,) = (decode(files.a[:limit], size, halves=False, workers=workers),
                      decode(files.b[:limit], size, halves=False, workers=workers))
    return {"a": a, "b": b}


def _images(folder: Path, what: str) -> tuple[Path, ...]:
    from ganzoo.data.folder import list_images

    files = tuple(list_images(folder))
    if not files:
        raise GanzooError(f"No images in {folder}; put {what} there.")
    return files


def unpaired_folders(root: Path) -> tuple[Path, Path]:
    """``(A, B)`` folders of an unpaired set: ``trainA``/``trainB``, or the only two sub-folders holding images."""
    from ganzoo.data.folder import has_images, ignored

    if looks_unpaired(root):
        return root / "trainA", root / "trainB"
    subfolders = [p for p in sorted(root.iterdir()) if p.is_dir() and not ignored(p.name) and has_images(p)] \
        if root.is_dir() else []
    if len(subfolders) == 2:
        return subfolders[0], subfolders[1]
    found = f"it has {len(subfolders)} ({', '.join(p.name for p in subfolders[:5])}{', ...' if len(subfolders) > 5 else ''})" \
        if subfolders else "it has none"
    raise GanzooError(f"{root} is not an unpaired dataset: give a folder with trainA/ and trainB/ (CycleGAN layout) "
                      f"or with exactly two image sub-folders, one per domain; {found}, or give the two with "
                      f"--data-a DIR --data-b DIR.")


def paired_folder(root: Path) -> Path:
    """The folder of side-by-side A|B files of a paired set: ``train/`` when present, else ``root``."""
    return root / "train" if (root / "train").is_dir() else root


def list_files(root: Path | tuple[Path, Path], kind: str) -> TranslationFiles:
    """The files of a paired set in ``root``, or of an unpaired one in ``root`` or the folders ``(A, B)``."""
    if kind == "paired":
        assert isinstance(root, Path)
        folder = paired_folder(root)
        if looks_unpaired(folder):  # whatever shape its photos have: their halves are no pairs
            raise GanzooError(f"{folder} has trainA/ and trainB/, the layout of an unpaired (CycleGAN) set, while paired "
                              f"training needs files with A and B side by side; train cyclegan on it.")
        files = _images(folder, "files with A and B side by side")
        refuse_unpaired_files(files, folder)
        return TranslationFiles(kind, files)
    folder_a, folder_b = unpaired_folders(root) if isinstance(root, Path) else root
    return TranslationFiles(kind, _images(folder_a, "the domain's image files"), _images(folder_b, "the domain's image files"))


def load_translation(root: Path | tuple[Path, Path], kind: str, name: str, image_size: int,
                     config: dict[str, Any] | None = None, notes: tuple[str, ...] = ()) -> "TranslationSet":
    """Load a paired or unpaired set from ``root`` (or two folders) for crops of ``image_size``; ``notes`` are
    lines the run prints once the set is loaded.

    The images are held in memory unless ``config`` asks to stream them (``stream``) or they
    would not fit in ``max_memory_gb``; then a :class:`~ganzoo.data.translation_stream.StreamedTranslationData`
    reads them from disk instead.
    """
    from ganzoo.data.translation_stream import StreamedTranslationData, streaming_note

    files = list_files(root, kind)
    info = DatasetInfo(kind, channels=3, image_size=image_size)  # type: ignore[arg-type]
    notes = (*notes, *(_domains_note(root, files) if kind == "unpaired" else ()), *_loose_images_note(root, kind))
    note = streaming_note(files, image_size, config or {})
    if note is not None:
        return StreamedTranslationData(name, info, files, image_size, workers=(config or {}).get("data_workers"),
                                       notes=(*notes, note))
    workers = (config or {}).get("data_workers")
    return TranslationData(name, info, decode_set(files, load_size(image_size), workers=workers), image_size,
                           notes=notes)


def _domains_note(root: Path | tuple[Path, Path], files: TranslationFiles) -> tuple[str, ...]:
    """Which of a folder's two image sub-folders became domain A, when nothing but their names' order says so
    (not ``trainA``/``trainB``, nor ``--data-a``/``--data-b``): AtoB and BtoA mean nothing until it is said."""
    if not isinstance(root, Path) or looks_unpaired(root):
        return ()
    folder_a, folder_b = unpaired_folders(root)
    return (f"domain A is {folder_a.name}/ ({len(files.a)} images) and domain B is {folder_b.name}/ "
            f"({len(files.b)} images), in name order: AtoB turns {folder_a.name} into {folder_b.name}",)


def _loose_images_note(root: Path | tuple[Path, Path], kind: str) -> tuple[str, ...]:
    """Images lying directly in a set's folder while the set is read from its sub-folders (the two domains', or
    ``train/``) belong to no part of it: they are left out, and this says so rather than drop them in silence."""
    from ganzoo.data.folder import IMAGE_EXTENSIONS, ignored

    if not isinstance(root, Path) or (kind == "paired" and paired_folder(root) == root):
        return ()
    loose = sorted(path.name for path in root.iterdir()
                   if path.suffix.lower() in IMAGE_EXTENSIONS and not ignored(path.name) and not path.is_dir())
    if not loose:
        return ()
    shown = ", ".join(loose[:3]) + (", ..." if len(loose) > 3 else "")
    where = "in neither domain's folder" if kind == "unpaired" else f"outside {paired_folder(root).name}/"
    count = "1 image lies" if len(loose) == 1 else f"{len(loose)} images lie"
    return (f"{count} directly in {root} ({shown}), {where}, and {'is' if len(loose) == 1 else 'are'} left out",)


def _loader(source: Path | tuple[Path, Path], kind: str, name: str) -> Any:
    def load(data_root: Path | None = None, image_size: int | None = None, channels: int | None = None,
             config: dict[str, Any] | None = None) -> TranslationSet:
        return load_translation(source, kind, name, image_size or 256, config)

    return load


def folder_dataset(path: str | os.PathLike[str], kind: str) -> DatasetSpec:
    """A :class:`DatasetSpec` for a paired or unpaired folder given with ``--data DIR``."""
    root = Path(path).expanduser()
    if kind == "unpaired":
        unpaired_folders(root)  # refuse a wrong layout before any network is built
    info = DatasetInfo(kind, channels=3, image_size=256)  # type: ignore[arg-type]
    return DatasetSpec(name=str(root), summary=f"{kind} images in {root}", info=info,
                       load=_loader(root, kind, str(root)), source=str(root))


# -- two folders: --data-a / --data-b -------------------------------------------------------------


def _domain_folder(path: str | os.PathLike[str], side: str) -> Path:
    """The domain-``side`` folder as an absolute path, refused unless it exists and holds an image."""
    from ganzoo.data.folder import IMAGE_EXTENSIONS, has_images

    folder = Path(path).expanduser().resolve()
    if folder.is_file():
        raise GanzooError(f"The domain-{side} folder {folder} is a file, not a folder; give the folder holding domain "
                          f"{side}'s images (this file lies in {folder.parent}).")
    if not folder.is_dir():
        raise GanzooError(f"The domain-{side} folder {folder} does not exist; give an existing folder of domain-{side} "
                          f"images (a resumed run needs its folders where they were).")
    if FOLDER_PAIR in str(folder):
        raise GanzooError(f"The folder name {folder} contains {FOLDER_PAIR.strip()!r}, which ganzoo uses to join two "
                          f"folders; rename it.")
    if not has_images(folder):
        raise GanzooError(f"The domain-{side} folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                          f"put domain {side}'s images there.")
    return folder


def two_folder_data(model: Any, data: str | None, data_a: str | None, data_b: str | None) -> str:
    """The dataset name for ``--data-a A --data-b B`` (``"A | B"``, absolute), refusing each misuse in one sentence."""
    if data is not None:
        raise GanzooError("Give either --data or the two folders --data-a and --data-b, not both.")
    if data_a is None or data_b is None:
        given, missing = ("--data-a", "--data-b") if data_b is None else ("--data-b", "--data-a")
        raise GanzooError(f"{given} needs {missing} too: give one folder of images per domain.")
    if "unpaired" not in model.data_kinds:
        if model.task == "image-to-image":
            raise GanzooError(f"{model.name} trains on paired images (A and B side by side in each file), not on two "
                              f"folders; pass --data DIR with such files, or train cyclegan on the two folders.")
        raise GanzooError(f"--data-a and --data-b give the two domains of an unpaired image-to-image model such as "
                          f"cyclegan; {model.name} takes --data.")
    folders = _domain_folder(data_a, "A"), _domain_folder(data_b, "B")
    refuse_shared_images(*folders)
    return FOLDER_PAIR.join(str(folder) for folder in folders)


def refuse_shared_images(folder_a: Path, folder_b: Path) -> None:
    """Refuse two domain folders (absolute) that share images: the same folder, or one inside the other (its images
    are read with all subfolders), would make both domains, or part of one, the same pictures."""
    if folder_a == folder_b:
        raise GanzooError(f"--data-a and --data-b name the same folder {folder_a}; give one folder per domain.")
    for inner, outer, side, other in ((folder_a, folder_b, "A", "B"), (folder_b, folder_a, "B", "A")):
        if inner.is_relative_to(outer):
            raise GanzooError(f"The domain-{side} folder {inner} lies inside the domain-{other} folder {outer}, which is "
                              f"read with its subfolders, so domain {other} would hold domain {side}'s images too; give "
                              f"two separate folders.")


def two_folder_dataset(name: str, kinds: tuple[str, ...]) -> DatasetSpec:
    """The unpaired :class:`DatasetSpec` of a dataset name ``"A | B"`` written by :func:`two_folder_data`."""
    parts = name.split(FOLDER_PAIR)
    if "unpaired" not in kinds or len(parts) != 2:
        raise GanzooError(f"{name!r} names two folders, an unpaired set; this model trains on "
                          f"{' or '.join(kinds)} data: pass --data DIR.")
    folder_a, folder_b = (_domain_folder(path, side) for path, side in zip(parts, "AB"))
    info = DatasetInfo("unpaired", channels=3, image_size=256)
    return DatasetSpec(name=name, summary=f"unpaired images: A in {folder_a}, B in {folder_b}", info=info,
                       load=_loader((folder_a, folder_b), "unpaired", name), source=name)


def get_dataset(name: str, kinds: tuple[str, ...]) -> DatasetSpec:
    """The dataset ``name`` for a model training on ``kinds``: a folder, two folders, or a registered set.

    Names shared by both papers' sets (``facades``, ``maps``, ``cityscapes``) mean the paired
    pix2pix version (registered as ``pix2pix-NAME``) for a model that trains on paired data.
    """
    from ganzoo.registry import get_dataset as registered
    from ganzoo.registry import get_registry

    known = get_registry().datasets
    if "paired" in kinds and f"pix2pix-{name}" in known:
        return registered(f"pix2pix-{name}")
    if name not in known and FOLDER_PAIR in name:
        return two_folder_dataset(name, kinds)
    if name not in known and os.path.isdir(os.path.expanduser(name)):
        return folder_dataset(name, kinds[0])
    return registered(name)


def picture(generator: Any, data: Any) -> tuple["torch.Tensor", int]:
    """The per-epoch picture's images and images per row: the family's rows (``generator.picture_rows``) for the preview."""
    import torch

    with torch.inference_mode():
        rows = generator.picture_rows(**data.preview())
    return torch.cat(rows), int(rows[0].shape[0])
