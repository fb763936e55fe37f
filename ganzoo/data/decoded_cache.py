"""Decoded image folders kept on disk, so the next run on the same folder starts in seconds.

Decoding a large folder takes minutes (CelebA's 202,599 JPEGs: about 83 s at 64 px on two cores,
at the rate ``benchmarks/folder_decode.py`` measures) and every run, resume and evaluation would
pay it again. A folder of at least
:data:`MIN_CACHED_FILES` images is therefore written, once decoded, to
``cache_dir()/decoded/`` as one safetensors file per folder, image size and channel count:
the uint8 images, their labels, and in its metadata a fingerprint of the folder (every file's
relative path, size and modification time) and the files that could not be decoded. A later load
whose fingerprint matches reads that file instead of decoding (and names the unreadable files
again, in order); any added, removed or changed file means decoding again and replacing the entry.
A damaged entry (see :func:`read`) is decoded again too. Writing is atomic, done by one process
per node under torchrun, and a failed write (a full disk) only costs the cache. A hit is mapped
from the file copy-on-write, so nothing written to the tensors reaches it. ``GANZOO_DECODE_CACHE=0``
turns the cache off; deleting the folder between runs is safe.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ganzoo.paths import cache_dir

#: Folders with fewer images decode in about a second: not worth a file in the cache.
MIN_CACHED_FILES = 512
#: ``GANZOO_DECODE_CACHE=0`` turns the cache off.
CACHE_SWITCH_ENV = "GANZOO_DECODE_CACHE"
#: A temporary file of a write older than this (seconds) was left by a killed process.
STALE_SECONDS = 3600
#: Bumped whenever decoding changes what it produces, so older entries are not reused.
FORMAT = "1"


@dataclass(frozen=True)
class Decoded:
    """A decoded folder: uint8 images (N, C, S, S), labels (N,), and ``(file, reason)`` of each file left out."""

    images: Any
    labels: Any
    skipped: tuple[tuple[Path, str], ...]


def enabled(files: Sequence[Path]) -> bool:
    """Whether a folder of ``files`` is cached: large enough, and the cache not switched off."""
    return len(files) >= MIN_CACHED_FILES and os.environ.get(CACHE_SWITCH_ENV, "1") != "0"


def entry_path(folder: Path, image_size: int, channels: int) -> Path:
    """The cache file of ``folder`` decoded at ``image_size`` with ``channels``."""
    name = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "decoded" / f"{name}-{image_size}px-{channels}ch.safetensors"


def fingerprint(folder: Path, files: Sequence[Path]) -> str | None:
    """SHA-256 over every file's path relative to ``folder``, size and modification time, in order.

    None when a file cannot be looked at (removed since the folder was listed): the load then
    decodes without the cache, and the decoding names the file.
    """
    digest = hashlib.sha256(FORMAT.encode())
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            return None
        digest.update(f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def read(path: Path, folder: Path, expected: str, shape: tuple[int, int, int], classes: int) -> Decoded | None:
    """The entry at ``path`` if its fingerprint is ``expected``; None if absent, stale, unreadable or damaged.

    Damage is caught where safetensors sees it (structure, sizes) and where it would break
    training: images other than uint8 of ``shape`` (C, S, S), labels outside ``classes``. A
    changed pixel inside an intact file is not detected (a digest would cost a pass over the set).
    """
    import torch

    from ganzoo.errors import GanzooError
    from ganzoo.safefile import load_tensors, read_metadata

    if not path.is_file():
        return None
    try:
        metadata = read_metadata(path)
        if metadata.get("fingerprint") != expected:
            return None
        tensors = load_tensors(path)
        skipped = tuple((folder / name, reason) for name, reason in json.loads(metadata["skipped"]))
        images, labels = tensors["images"], tensors["labels"]
    except (GanzooError, OSError, KeyError, ValueError, TypeError, RecursionError):  # decode again and replace it
        return None
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != shape:
        return None
    if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
        return None
    if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < max(1, classes)):
        return None
    return Decoded(images, labels, skipped)


def write(path: Path, folder: Path, expected: str, decoded: Decoded) -> str | None:
    """Store ``decoded`` with fingerprint ``expected`` at ``path`` (one process per node); a note for the user, or None."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    from ganzoo.safefile import atomic_target

    if os.environ.get("LOCAL_RANK", "0") != "0":
        return None
    skipped = [[str(file.relative_to(folder)), reason] for file, reason in decoded.skipped]
    metadata = {"format": FORMAT, "folder": str(folder.resolve()), "fingerprint": expected, "skipped": json.dumps(skipped)}
    try:
        _remove_stale_temporaries(path)
        with atomic_target(path) as tmp:
            save_file({"images": decoded.images.contiguous(), "labels": decoded.labels.contiguous()}, str(tmp), metadata)
    except (OSError, SafetensorError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return f"could not cache the decoded images in {path} ({reason}); the next run decodes them again"
    size = decoded.images.numel() / 1e9
    return f"cached the decoded images in {path} ({size:.1f} GB); later runs on this folder load them from there"


def _remove_stale_temporaries(path: Path) -> None:
    """Delete what a killed earlier write of ``path`` left behind (its temporary file, as large as the set).

    Only temporaries untouched for :data:`STALE_SECONDS` go: a write in progress elsewhere keeps its file fresh.
    """
    import time

    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if time.time() - leftover.stat().st_mtime > STALE_SECONDS:
                leftover.unlink()
        except OSError:
            continue
