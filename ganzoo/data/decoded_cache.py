"""Decoded image folders kept on disk, so the next run on the same folder starts in seconds.

Decoding a large folder takes minutes (CelebA's 202,599 JPEGs: about 107 s at 64 px on two cores,
at the rate ``benchmarks/folder_decode.py`` measures) and every run, resume and evaluation would
pay it again. A folder of at least :data:`MIN_CACHED_FILES` images is therefore decoded straight
into a file in ``cache_dir()/decoded/`` (so it is never held in memory as well, and a folder larger
than memory decodes), one safetensors file per folder, image size and channel count: the uint8
images, their labels, the files that could not be decoded, and in its metadata a fingerprint of
the folder (every file's relative path, size, modification time and inode change time: a file whose bytes were
replaced and its modification time set back, as ``cp -p`` or ``touch -r`` do, still counts as changed). A later load
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
import math
import os
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ganzoo.errors import env_switch
from ganzoo.paths import cache_dir

#: Folders with fewer images decode in about a second: not worth a file in the cache.
MIN_CACHED_FILES = 512
#: ``GANZOO_DECODE_CACHE=0`` turns the cache off.
CACHE_SWITCH_ENV = "GANZOO_DECODE_CACHE"
#: A temporary file of a write older than this (seconds) was left by a killed process.
STALE_SECONDS = 3600
#: Bumped whenever decoding or the entry's layout changes, so older entries are not reused.
#: 4: pictures turned upright by their EXIF orientation; 5: 16-bit values always over 65535; 6: 32-bit floating-point
#: pictures read over 0..1 (or 0..255), and 32-bit ones outside their ranges skipped.
FORMAT = "6"
#: Bytes kept for an entry's header, written after the images are decoded into the file behind it.
HEADER_SPACE = 16384
#: Where an entry's data starts: its 8-byte header length, then the header.
DATA_START = 8 + HEADER_SPACE
#: Bytes allocated for the list of unreadable files (more is written if needed; unused room is cut off).
SKIPPED_ROOM = 2**20


@dataclass(frozen=True)
class Decoded:
    """A decoded folder: uint8 images (N, C, S, S), labels (N,), and ``(file, reason)`` of each file left out."""

    images: Any
    labels: Any
    skipped: tuple[tuple[Path, str], ...]


def enabled(files: Sequence[Path]) -> bool:
    """Whether a folder of ``files`` is cached: large enough, and the cache not switched off."""
    return len(files) >= MIN_CACHED_FILES and env_switch(CACHE_SWITCH_ENV, True)


def entry_path(folder: Path, image_size: int, channels: int) -> Path:
    """The cache file of ``folder`` decoded at ``image_size`` with ``channels``."""
    name = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "decoded" / f"{name}-{image_size}px-{channels}ch.safetensors"


def fingerprint(folder: Path, files: Sequence[Path]) -> str | None:
    """SHA-256 over every file's path relative to ``folder``, size, modification and inode change times, in order.

    The change time (``st_ctime_ns``) moves whenever a file is written, renamed or has its times set, and no user
    tool can set it back, so replaced bytes are noticed even under a restored modification time. It also moves on
    ``chmod``: that costs one needless decoding, never a stale image.

    None when a file cannot be looked at (removed since the folder was listed): the load then
    decodes without the cache, and the decoding names the file.
    """
    digest = hashlib.sha256(FORMAT.encode())
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            return None
        digest.update(f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\n".encode())
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
        images, labels = tensors["images"], tensors["labels"]
        skipped = tuple((folder / name, reason) for name, reason in json.loads(tensors["skipped"].numpy().tobytes()))
    except (GanzooError, OSError, KeyError, ValueError, TypeError, RecursionError):  # decode again and replace it
        return None
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != shape:
        return None
    if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
        return None
    if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < max(1, classes)):
        return None
    return Decoded(images, labels, skipped)


def decode_into(path: Path, folder: Path, expected: str, count: int, shape: tuple[int, int, int], classes: int,
                decode: Callable[[Any], Decoded]) -> tuple[Decoded, str | None]:
    """Decode ``count`` files straight into a new entry at ``path`` with fingerprint ``expected``; the
    decoded folder (mapped from the entry) and a note for the user.

    ``decode(out)`` decodes into ``out``, a uint8 (count, C, S, S) array (the entry's image region,
    mapped from disk), or into memory when ``out`` is None. Decoding into the file means the set is
    never held in memory as well: a folder larger than memory decodes, and training reads it from the
    page cache. The whole entry is allocated on disk first, so a full disk shows up at once (then the
    folder is decoded in memory, as it is by a node's other processes when they find no entry).
    SIGTERM (torchrun stopping a run) ends the decoding with the temporary file removed, as an
    error or Ctrl-C does.
    """
    import numpy as np

    from ganzoo.safefile import atomic_target

    if os.environ.get("LOCAL_RANK", "0") != "0":
        return decode(None), None
    row = math.prod(shape)
    labels_start = _aligned(count * row)
    decoded = None
    try:
        _remove_stale_temporaries(path)
        with _terminate_as_exit(), atomic_target(path) as tmp:
            with open(tmp, "r+b") as handle:
                _allocate(handle, DATA_START + labels_start + 8 * count + SKIPPED_ROOM)
            images = np.memmap(tmp, dtype=np.uint8, mode="r+", offset=DATA_START, shape=(count, *shape))
            decoded = decode(images)
            images.flush()
            _finish(tmp, folder, expected, decoded, labels_start)
    except (OSError, ValueError) as exc:  # a full disk, an unwritable cache folder, a path too long for the header
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        note = f"could not cache the decoded images in {path} ({reason}); the next run decodes them again"
        # decoded into the removed temporary file: its mapping stays readable until the run ends
        return (decoded if decoded is not None else decode(None)), note
    size = decoded.images.numel() / 1e9
    note = f"cached the decoded images in {path} ({size:.1f} GB); later runs on this folder load them from there"
    mapped = read(path, folder, expected, shape, classes)  # copy-on-write, as a later run's
    return (mapped if mapped is not None else decoded), note


def _aligned(offset: int) -> int:
    """``offset`` rounded up to a multiple of 8, where the labels (int64) start."""
    return -(-offset // 8) * 8


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """Within this block SIGTERM raises SystemExit (in the main thread), so the temporary entry, as
    large as the set, is removed rather than left behind by Python's default of dying at once."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _allocate(handle: Any, size: int) -> None:
    """Give the open file ``size`` bytes of disk now: writing through a mapping to a full disk would
    kill the process (SIGBUS), allocating raises an OSError instead. Not on copy-on-write filesystems
    (btrfs, ZFS), where writing into allocated space still takes new blocks."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(handle.fileno(), 0, size)
    else:  # no way to reserve the blocks: a sparse file
        handle.truncate(size)


def _finish(tmp: Path, folder: Path, expected: str, decoded: Decoded, labels_start: int) -> None:
    """Write the labels, the unreadable files and, last, the safetensors header of the entry ``tmp``.

    Layout after the header (padded to :data:`HEADER_SPACE` with spaces, as safetensors allows):
    the readable images, the rows left unused by unreadable files, the labels (8-byte aligned) and
    the ``skipped`` list as UTF-8 JSON.
    """
    images_end = decoded.images.numel()
    labels = decoded.labels.numpy().astype("<i8").tobytes()
    skipped = json.dumps([[str(file.relative_to(folder)), reason] for file, reason in decoded.skipped]).encode()
    labels_end = labels_start + len(labels)
    header: dict[str, Any] = {
        "__metadata__": {"format": FORMAT, "folder": str(folder.resolve()), "fingerprint": expected},
        "images": {"dtype": "U8", "shape": list(decoded.images.shape), "data_offsets": [0, images_end]},
    }
    if labels_start > images_end:
        header["unused"] = {"dtype": "U8", "shape": [labels_start - images_end], "data_offsets": [images_end, labels_start]}
    header["labels"] = {"dtype": "I64", "shape": [len(decoded.labels)], "data_offsets": [labels_start, labels_end]}
    header["skipped"] = {"dtype": "U8", "shape": [len(skipped)], "data_offsets": [labels_end, labels_end + len(skipped)]}
    text = json.dumps(header).encode()
    if len(text) > HEADER_SPACE:
        raise ValueError(f"the folder's path is too long for the entry's header ({len(text)} bytes)")
    with open(tmp, "r+b") as handle:
        handle.seek(DATA_START + labels_start)
        handle.write(labels + skipped)
        handle.truncate()
        handle.seek(0)
        handle.write(struct.pack("<Q", HEADER_SPACE) + text.ljust(HEADER_SPACE, b" "))


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
