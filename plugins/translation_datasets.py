"""The CycleGAN and pix2pix authors' datasets by name, downloaded from their public host on first use.

CycleGAN sets are zip files of ``NAME/trainA, trainB, testA, testB``; pix2pix sets are
``.tar.gz`` files of ``NAME/train, val, test`` with A and B side by side in every image (names
and URLs as in the authors' ``datasets/download_*_dataset.sh``). The three names both papers use
(facades, maps, cityscapes) are registered as ``NAME`` (unpaired) and ``pix2pix-NAME`` (paired);
``--data facades`` picks the paired one for pix2pix.

An archive is downloaded with :func:`ganzoo.download.download` (progress bar, ``.part`` file,
atomic rename), read in full (zip CRCs, gzip stream), extracted into a hidden folder with
member paths checked, its folders and image counts checked, and only then renamed into place
and the archive deleted. A damaged archive is deleted and fetched again once; it is never used.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from ganzoo.errors import GanzooError
from ganzoo.hookspecs import hookimpl
from ganzoo.specs import DatasetInfo, DatasetSpec

CYCLEGAN_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
PIX2PIX_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

CYCLEGAN_SETS = {
    "apple2orange": "apples <-> oranges (ImageNet)",
    "summer2winter_yosemite": "Yosemite in summer <-> winter (Flickr)",
    "horse2zebra": "horses <-> zebras (ImageNet), 1067 + 1334 training images",
    "monet2photo": "Monet paintings <-> landscape photos",
    "cezanne2photo": "Cezanne paintings <-> landscape photos",
    "ukiyoe2photo": "Ukiyo-e prints <-> landscape photos",
    "vangogh2photo": "Van Gogh paintings <-> landscape photos",
    "maps": "Google Maps <-> aerial photos, unpaired",
    "cityscapes": "Cityscapes labels <-> photos, unpaired",
    "facades": "CMP Facades labels <-> photos, unpaired",
    "iphone2dslr_flower": "iPhone <-> DSLR flower photos (shallow depth of field)",
}
PIX2PIX_SETS = {
    "facades": "CMP Facades, photo (A) | labels (B): 400 training pairs; trained BtoA, as in the paper",
    "maps": "aerial photo (A) | Google map (B), 1096 training pairs",
    "cityscapes": "Cityscapes photo (A) | labels (B) pairs (no longer distributed by the authors); trained BtoA, as "
                  "in the paper",
    "edges2shoes": "shoe edges | photo, 49825 training pairs (needs much memory at 256)",
    "edges2handbags": "handbag edges | photo, 138567 training pairs (needs much memory at 256)",
    "night2day": "night | day photos of the same webcam scenes, 17823 training pairs",
}
#: What the left (A) and right (B) half of each pix2pix pair shows, and the direction the paper trains on the set.
PAIRED_SIDES = {
    "facades": ("photo", "labels", "BtoA"),
    "maps": ("aerial photo", "map", "AtoB"),
    "cityscapes": ("photo", "labels", "BtoA"),
    "edges2shoes": ("edges", "photo", "AtoB"),
    "edges2handbags": ("edges", "photo", "AtoB"),
    "night2day": ("night", "day", "AtoB"),
}
#: Image counts per folder where they are known; other sets only need non-empty folders.
KNOWN_COUNTS = {
    ("cyclegan", "horse2zebra"): {"trainA": 1067, "trainB": 1334, "testA": 120, "testB": 140},
    ("pix2pix", "facades"): {"train": 400, "val": 100, "test": 106},
}
WITHDRAWN = {("pix2pix", "cityscapes"): "The pix2pix authors no longer distribute Cityscapes for licence reasons; "
             "download it from https://cityscapes-dataset.com and prepare it with their "
             "datasets/prepare_cityscapes_dataset.py"}


@dataclass(frozen=True)
class Archive:
    """One of the authors' archives: where it comes from and what it must contain once extracted."""

    paper: str  # "cyclegan" or "pix2pix"
    name: str
    url: str = ""
    folders: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, paper: str, name: str) -> "Archive":
        """The archive of set ``name`` from ``paper``, with its expected folders."""
        if paper == "cyclegan":
            return cls(paper, name, CYCLEGAN_URL.format(name=name), ("trainA", "trainB"),
                       KNOWN_COUNTS.get((paper, name), {}))
        return cls(paper, name, PIX2PIX_URL.format(name=name), ("train",), KNOWN_COUNTS.get((paper, name), {}))

    @property
    def filename(self) -> str:
        return os.path.basename(self.url)

    def folder(self, root: Path) -> Path:
        """Where the set lives once extracted (a paper's sub-folder, since names repeat across papers)."""
        return root / self.paper / self.name

    def problem(self, folder: Path) -> str | None:
        """Why ``folder`` is not a complete copy of this set, or None when it is."""
        for sub in self.folders + tuple(k for k in self.counts if k not in self.folders):
            if not (folder / sub).is_dir():
                return f"{folder / sub} is missing"
            found = sum(1 for p in (folder / sub).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            expected = self.counts.get(sub)
            if found == 0 or (expected is not None and found != expected):
                return f"{folder / sub} holds {found} images, expected {expected or 'some'}"
        return None


def _check_member(name: str, top: str) -> PurePosixPath | None:
    """The member's path inside the set, None for files outside ``top/`` (macOS metadata); refuse unsafe paths."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise GanzooError(f"The archive holds an unsafe path {name!r}; it is not extracted.")
    return path if path.parts and path.parts[0] == top else None


def _extract(archive_path: Path, spec: Archive, into: Path) -> None:
    """Read the whole archive (so truncation or a bad CRC shows) and extract ``NAME/...`` into ``into``."""
    if spec.url.endswith(".zip"):
        with zipfile.ZipFile(archive_path) as archive:
            members = [m for m in archive.infolist() if _check_member(m.filename, spec.name) is not None]
            bad = archive.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"bad CRC in {bad}")
            archive.extractall(into, members=members)
    else:
        with tarfile.open(archive_path, "r:gz") as archive:
            members = [m for m in archive.getmembers() if _check_member(m.name, spec.name) is not None]
            archive.extractall(into, members=members, filter="data")


def _try_archive(archive_path: Path, spec: Archive, folder: Path) -> str | None:
    """Extract a local archive into ``folder``; why it is unusable ("it is damaged (...)"), or None when the set is
    in place."""
    staging = folder.parent / f".{spec.name}.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _extract(archive_path, spec, staging)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, GanzooError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        return f"it is damaged ({exc})"
    problem = spec.problem(staging / spec.name)
    if problem:
        shutil.rmtree(staging, ignore_errors=True)  # named as inside the archive: the staging folder is gone
        return f"it is incomplete: its {problem.replace(str(staging) + os.sep, '')}"
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging / spec.name, folder)
    shutil.rmtree(staging, ignore_errors=True)
    return None


def ensure_dataset(spec: Archive, root: Path, progress: bool = True) -> Path:
    """The extracted set under ``root``, downloading and checking the archive first if needed."""
    from ganzoo.download import DownloadError, download

    withdrawn = WITHDRAWN.get((spec.paper, spec.name))
    folder = spec.folder(root)
    if spec.problem(folder) is None:
        return folder
    if withdrawn:
        raise GanzooError(f"{withdrawn}, then place it as {folder}/train/ (A|B side by side).")
    archive_path = folder.parent / spec.filename  # download() makes its folder, and removes it if it fails
    hint = f"download {spec.url} by hand and place {spec.filename} in {folder.parent}"
    set_aside = None  # an unusable archive that was there before (placed by hand, say): kept until a good one is in
    if archive_path.is_file():
        placed_reason = _try_archive(archive_path, spec, folder)
        if placed_reason is None:
            archive_path.unlink()
            return folder
        set_aside = archive_path.with_name(archive_path.name + ".unusable")
        os.replace(archive_path, set_aside)
    try:
        download(spec.url, archive_path, progress=progress)
    except DownloadError as exc:
        if set_aside is None:
            raise  # offline: one sentence naming the URL and the place
        raise GanzooError(f"The archive {archive_path} could not be used ({placed_reason}), so it was moved to "
                          f"{set_aside}, and a fresh copy could not be downloaded ({exc.reason}); {hint}.") from None
    reason = _try_archive(archive_path, spec, folder)
    archive_path.unlink(missing_ok=True)
    if reason is not None:
        kept = f"; the unusable archive found before is at {set_aside}" if set_aside else ""
        raise GanzooError(f"The archive downloaded from {spec.url} cannot be used ({reason}), so it was deleted"
                          f"{kept}; {hint}.")
    if set_aside is not None:
        set_aside.unlink()  # the set is in place from a good copy: the unusable one has served its purpose
    return folder


def direction_note(name: str, direction: str) -> str:
    """What ``direction`` turns into what on the pix2pix set ``name``, and whether its paper trains that way."""
    a, b, paper = PAIRED_SIDES[name]
    source, target = (a, b) if direction == "AtoB" else (b, a)
    other = "BtoA" if direction == "AtoB" else "AtoB"
    how = "as in the paper" if direction == paper else f"the paper trains {paper}"
    return (f"{name} pairs hold the {a} (A) | the {b} (B): this run turns {source} into {target} ({direction}, {how}; "
            f"a new run with --set direction={other} trains the other way)")


def _loader(spec: Archive, kind: str, label: str) -> Callable[..., object]:
    def load(root: Path, image_size: int | None = None, channels: int | None = None, config: dict | None = None):
        from ganzoo.data.translation import load_translation

        direction = (config or {}).get("direction")
        notes = (direction_note(spec.name, direction),) if kind == "paired" and direction in ("AtoB", "BtoA") else ()
        return load_translation(ensure_dataset(spec, Path(root)), kind, label, image_size or 256, config, notes)

    return load


@hookimpl
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """The 11 CycleGAN sets (unpaired) and 6 pix2pix sets (paired), 256x256 colour."""
    for name, summary in CYCLEGAN_SETS.items():
        spec = Archive.of("cyclegan", name)
        register(DatasetSpec(name, summary, DatasetInfo("unpaired", channels=3, image_size=256),
                             _loader(spec, "unpaired", name), source=spec.url))
    for name, summary in PIX2PIX_SETS.items():
        spec = Archive.of("pix2pix", name)
        label = f"pix2pix-{name}" if name in CYCLEGAN_SETS else name
        info = DatasetInfo("paired", channels=3, image_size=256, paper_settings=(("direction", PAIRED_SIDES[name][2]),))
        register(DatasetSpec(label, summary, info, _loader(spec, "paired", label), source=spec.url))
