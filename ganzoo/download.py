"""Downloading a file once, checked, with a progress bar; a partial or corrupt download is never used.

The file is streamed to ``DEST.part``, its length and checksum verified, then renamed onto
``DEST``; a failure removes the part file and raises :class:`DownloadError` naming the URL
and where to place the file by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from ganzoo.errors import GanzooError

CHUNK = 1 << 20


class DownloadError(GanzooError):
    """A download that failed or arrived damaged; ``reason`` says why in a few words, for callers' own sentences."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


def file_digest(path: str | os.PathLike[str], algorithm: str) -> str:
    """Hex digest of a file's contents (``"md5"`` or ``"sha256"``), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: str | os.PathLike[str], md5: str | None = None, sha256: str | None = None) -> bool:
    """True when the file exists and matches every checksum given."""
    if not os.path.isfile(path):
        return False
    if md5 and file_digest(path, "md5") != md5.lower():
        return False
    return not (sha256 and file_digest(path, "sha256") != sha256.lower())


def download(
    url: str,
    dest: str | os.PathLike[str],
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Fetch ``url`` into ``dest`` unless a file with the right checksum is already there."""
    dest = Path(dest)
    if verify(dest, md5, sha256) and (md5 or sha256):
        return dest
    made = [folder for folder in (dest.parent, *dest.parent.parents) if not folder.exists()]  # deepest first
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    hint = f"download {url} by hand and place it at {dest}"
    try:
        _stream(url, part, timeout, progress)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        _clean_up(part, made)
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"Could not download {url} ({reason}); {hint}.", str(reason)) from None
    if not verify(part, md5, sha256):
        _clean_up(part, made)
        raise DownloadError(f"The file downloaded from {url} does not match its checksum (corrupt or changed); {hint}.",
                            "it did not match its checksum")
    os.replace(part, dest)
    return dest


def _clean_up(part: Path, made: list[Path]) -> None:
    """Remove a failed download's partial file and the folders made for it, so a failure leaves nothing behind."""
    part.unlink(missing_ok=True)
    for folder in made:
        try:
            folder.rmdir()
        except OSError:  # not empty (someone else's file) or gone: leave it and its parents
            break


def _stream(url: str, part: Path, timeout: float, progress: bool) -> None:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        received = 0
        with open(part, "wb") as out, Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            disable=not progress, transient=True,
        ) as bar:
            task = bar.add_task(f"download {os.path.basename(url)}", total=total)
            for chunk in iter(lambda: response.read(CHUNK), b""):
                out.write(chunk)
                received += len(chunk)
                bar.update(task, advance=len(chunk))
            out.flush()
            os.fsync(out.fileno())
    if total is not None and received != total:
        raise OSError(f"connection closed after {received} of {total} bytes")
