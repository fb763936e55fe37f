"""What an output file may replace: a result of its own kind, written again, but never a file the command reads
(its weights) nor a file of another kind (weights renamed ``.png``, a run's checkpoint given to ``--json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ganzoo.errors import GanzooError

#: How an existing file of each output kind starts: ``.npz`` is a zip (an empty one starts with its end record).
_STARTS = {".png": (b"\x89PNG\r\n\x1a\n",), ".npz": (b"PK\x03\x04", b"PK\x05\x06")}
#: The largest existing ``.json`` read to see that it is JSON; results files are a few kilobytes.
_MAX_JSON_BYTES = 16 * 1024 * 1024


def refuse_replacing(path: Path, option: str, kind: str, reads: Iterable[Path | None] = ()) -> None:
    """Stop before any work if writing ``path`` (given as ``option``) would replace one of the files the command
    ``reads``, or an existing file that is not of ``kind`` (".png", ".npz" or ".json", what the command writes):
    results are rewritten freely, nothing else is lost to a mistyped path."""
    if not path.exists() or path.is_dir():  # a folder is left to the write, which says so in its own sentence
        return
    for read in reads:
        if read is not None and read.exists() and path.samefile(read):
            raise GanzooError(f"{option} {path} is a file this command reads, and its output would replace it; choose "
                              f"another {option} file.")
    if not _is_of_kind(path, kind):
        raise GanzooError(f"{option} {path} already exists and is not a {kind} file, so writing there would destroy "
                          f"it; choose another {option} file, or remove that one first if it is not needed.")


def _is_of_kind(path: Path, kind: str) -> bool:
    """Whether the existing file ``path`` holds ``kind``; an empty file (nothing to lose) passes."""
    try:
        size = path.stat().st_size
        if size == 0:
            return True
        if kind == ".json":
            if size > _MAX_JSON_BYTES:
                return False
            json.loads(path.read_bytes())
            return True
        with open(path, "rb") as handle:
            return handle.read(8).startswith(_STARTS[kind])
    except (OSError, ValueError):  # unreadable, or not JSON (UnicodeDecodeError and JSONDecodeError are ValueErrors)
        return False
