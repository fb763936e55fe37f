"""Paired (pix2pix) and unpaired (CycleGAN) image sets held in memory, with the papers' jitter per batch.

Layouts, as the authors distribute them:

- paired: every file holds A and B side by side (A left, B right), in ``DIR/train/`` or ``DIR`` itself;
  which side is the input is the model's ``direction`` setting, not the data's;
- unpaired: ``DIR/trainA/`` and ``DIR/trainB/``, or a folder with exactly two image sub-folders (A, B
  in name order).

Images are decoded once and resized to the load size ``round(image_size * 286 / 256)`` (286 for
256, as in both papers), stored as uint8 on the device; each batch takes a random ``image_size``
crop and a random horizontal flip there, in one gather, for both sides of a pair alike. Unpaired
epochs last ``max(len A, len B)`` steps: A is shuffled (wrapping around the shorter set) and B is
drawn independently at random, as the authors' code does.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ganzoo.errors import GanzooError
from ganzoo.specs import DatasetInfo, DatasetSpec

if TYPE_CHECKING:
    import torch

#: Both papers load 256x256 crops from images resized to 286x286.
JITTER_RATIO = 286 / 256
#: Image pairs shown in the per-epoch picture.
PICTURE_PAIRS = 4


def load_size(image_size: int) -> int:
    """The side images are resized to before the random crop: 286 for 256, scaled for other sizes."""
    return int(round(image_size * JITTER_RATIO))


@dataclass
class TranslationData:
    """Two image sets ``a`` and ``b`` (uint8, N x C x L x L) served as jittered ``{"a", "b"}`` batches."""

    name: str
    info: DatasetInfo
    tensors: dict[str, "torch.Tensor"]
    image_size: int
    flip: bool = True

    @property
    def paired(self) -> bool:
        return self.info.kind == "paired"

    def __len__(self) -> int:
        sizes = [int(t.shape[0]) for t in self.tensors.values()]
        return sizes[0] if self.paired else max(sizes)

    def to(self, device: "torch.device | str") -> "TranslationData":
        """A copy with both image sets on ``device``."""
        return replace(self, tensors={k: v.to(device) for k, v in self.tensors.items()})

    def steps_per_epoch(self, batch_size: int) -> int:
        """Full batches in one epoch (the last partial batch is dropped)."""
        steps = len(self) // batch_size
        if steps == 0:
            raise GanzooError(f"Dataset {self.name!r} has {len(self)} images, fewer than the batch size {batch_size}; lower --batch-size.")
        return steps

    def _crops(self, count: int, generator: "torch.Generator") -> tuple["torch.Tensor", ...]:
        import torch

        room = int(self.tensors["a"].shape[-1]) - self.image_size + 1
        tops = torch.randint(room, (count,), generator=generator)
        lefts = torch.randint(room, (count,), generator=generator)
        flips = torch.rand(count, generator=generator) < 0.5 if self.flip else torch.zeros(count, dtype=torch.bool)
        return tops, lefts, flips

    def batches(self, batch_size: int, generator: "torch.Generator") -> Iterator[dict[str, "torch.Tensor"]]:
        """One epoch of jittered batches in [-1, 1]; all random draws come from ``generator`` (CPU) at the epoch's start."""
        import torch

        device = self.tensors["a"].device
        count = len(self)
        order_a = torch.randperm(count, generator=generator) % int(self.tensors["a"].shape[0])
        crop_a = self._crops(count, generator)
        if self.paired:
            order_b, crop_b = order_a, crop_a
        else:
            order_b = torch.randint(int(self.tensors["b"].shape[0]), (count,), generator=generator)
            crop_b = self._crops(count, generator)
        draws = [t.to(device, non_blocking=True) for t in (order_a, *crop_a, order_b, *crop_b)]
        order_a, crop_a, order_b, crop_b = draws[0], draws[1:4], draws[4], draws[5:8]
        for step in range(self.steps_per_epoch(batch_size)):
            part = slice(step * batch_size, (step + 1) * batch_size)
            yield {
                "a": jitter(self.tensors["a"], order_a[part], *(t[part] for t in crop_a), self.image_size),
                "b": jitter(self.tensors["b"], order_b[part], *(t[part] for t in crop_b), self.image_size),
            }

    def preview(self, num: int = PICTURE_PAIRS) -> dict[str, "torch.Tensor"]:
        """The first ``num`` images of each side, centre-cropped, unflipped, in [-1, 1]: the per-epoch picture's inputs."""
        import torch

        result = {}
        for key, images in self.tensors.items():
            count = min(num, int(images.shape[0]))
            offset = (int(images.shape[-1]) - self.image_size) // 2
            zeros = torch.full((count,), offset, dtype=torch.long, device=images.device)
            index = torch.arange(count, device=images.device)
            result[key] = jitter(images, index, zeros, zeros, torch.zeros_like(zeros, dtype=torch.bool), self.image_size)
        return result


def jitter(images: "torch.Tensor", index: "torch.Tensor", tops: "torch.Tensor", lefts: "torch.Tensor",
           flips: "torch.Tensor", size: int) -> "torch.Tensor":
    """Crop ``size`` x ``size`` at (``tops``, ``lefts``) from ``images[index]``, mirrored where ``flips``; float in [-1, 1]."""
    import torch

    steps = torch.arange(size, device=images.device)
    rows = tops[:, None] + steps
    cols = lefts[:, None] + torch.where(flips[:, None], size - 1 - steps, steps)
    crops = images[index[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (B, S, S, C)
    return crops.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


# -- reading folders -----------------------------------------------------------------------------


def _read(path: Path, size: int, halves: bool) -> list[Any] | None:
    """``[image]`` or ``[left half, right half]`` as uint8 (size, size, 3) arrays, or None (with a warning) if unreadable."""
    import numpy as np
    from PIL import Image

    from ganzoo.data.folder import BadImageWarning, _to_mode

    try:
        with Image.open(path) as image:
            image.load()
            image = _to_mode(image, 3)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        warnings.warn(f"Skipped {path}: not a readable image ({exc}).", BadImageWarning, stacklevel=3)
        return None
    width, height = image.size
    parts = [image.crop((0, 0, width // 2, height)), image.crop((width // 2, 0, width, height))] if halves else [image]
    return [np.asarray(p.resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8) for p in parts]


def _stack(arrays: list[Any]) -> "torch.Tensor":
    import numpy as np
    import torch

    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def load_images(folder: Path, size: int) -> "torch.Tensor":
    """Every image below ``folder`` resized to ``size`` x ``size`` RGB, as uint8 (N, 3, size, size)."""
    from ganzoo.data.folder import list_images

    files = list_images(folder)
    arrays = [read[0] for read in (_read(path, size, halves=False) for path in files) if read is not None]
    if not arrays:
        raise GanzooError(f"No readable images in {folder}; put the domain's image files there.")
    return _stack(arrays)


def load_pairs(folder: Path, size: int) -> tuple["torch.Tensor", "torch.Tensor"]:
    """The A (left) and B (right) halves of every image below ``folder``, each resized to ``size``."""
    from ganzoo.data.folder import list_images

    reads = [read for read in (_read(path, size, halves=True) for path in list_images(folder)) if read is not None]
    if not reads:
        raise GanzooError(f"No readable images in {folder}; a paired set holds files with A and B side by side.")
    return _stack([r[0] for r in reads]), _stack([r[1] for r in reads])


def unpaired_folders(root: Path) -> tuple[Path, Path]:
    """``(A, B)`` folders of an unpaired set: ``trainA``/``trainB``, or the only two sub-folders."""
    if (root / "trainA").is_dir() and (root / "trainB").is_dir():
        return root / "trainA", root / "trainB"
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    if len(subfolders) == 2:
        return subfolders[0], subfolders[1]
    raise GanzooError(f"{root} is not an unpaired dataset: give a folder with trainA/ and trainB/ (CycleGAN layout) "
                      f"or with exactly two image sub-folders, one per domain.")


def paired_folder(root: Path) -> Path:
    """The folder of side-by-side A|B files of a paired set: ``train/`` when present, else ``root``."""
    return root / "train" if (root / "train").is_dir() else root


def load_translation(root: Path, kind: str, name: str, image_size: int) -> TranslationData:
    """Load a paired or unpaired set from ``root`` for crops of ``image_size``."""
    size = load_size(image_size)
    if kind == "paired":
        a, b = load_pairs(paired_folder(root), size)
    else:
        folder_a, folder_b = unpaired_folders(root)
        a, b = load_images(folder_a, size), load_images(folder_b, size)
    info = DatasetInfo(kind, channels=3, image_size=image_size)  # type: ignore[arg-type]
    return TranslationData(name, info, {"a": a, "b": b}, image_size)


def folder_dataset(path: str | os.PathLike[str], kind: str) -> DatasetSpec:
    """A :class:`DatasetSpec` for a paired or unpaired folder given with ``--data DIR``."""
    root = Path(path).expanduser()
    if kind == "unpaired":
        unpaired_folders(root)  # refuse a wrong layout before any network is built
    info = DatasetInfo(kind, channels=3, image_size=256)  # type: ignore[arg-type]

    def load(data_root: Path | None = None, image_size: int | None = None, channels: int | None = None) -> TranslationData:
        return load_translation(root, kind, str(root), image_size or 256)

    return DatasetSpec(name=str(root), summary=f"{kind} images in {root}", info=info, load=load, source=str(root))


def get_dataset(name: str, kinds: tuple[str, ...]) -> DatasetSpec:
    """The dataset ``name`` for a model training on ``kinds``: a folder, or a registered set.

    Names shared by both papers' sets (``facades``, ``maps``, ``cityscapes``) mean the paired
    pix2pix version (registered as ``pix2pix-NAME``) for a model that trains on paired data.
    """
    from ganzoo.registry import get_dataset as registered
    from ganzoo.registry import get_registry

    known = get_registry().datasets
    if "paired" in kinds and f"pix2pix-{name}" in known:
        return registered(f"pix2pix-{name}")
    if name not in known and os.path.isdir(os.path.expanduser(name)):
        return folder_dataset(name, kinds[0])
    return registered(name)


def picture(generator: Any, data: TranslationData) -> tuple["torch.Tensor", int]:
    """The per-epoch picture's images and images per row: the family's rows (``generator.picture_rows``) for the preview."""
    import torch

    with torch.inference_mode():
        rows = generator.picture_rows(**data.preview())
    return torch.cat(rows), int(rows[0].shape[0])
