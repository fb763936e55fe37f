"""What a file is, told by its first bytes rather than its name, so that a file of the wrong kind is refused in a
sentence that says what it is, before any parser reads it as something else. No torch import here."""

from __future__ import annotations

import struct
from pathlib import Path

#: The kinds of weights file ganzoo reads: safetensors, and torch.save's zip archive and legacy pickle stream.
SAFETENSORS, TORCH_ZIP, TORCH_PICKLE = "safetensors", "torch-zip", "torch-pickle"
#: What NumPy's .npz archive is, in words.
NPZ = "a NumPy .npz archive of arrays"
#: How a zip archive starts (torch's own test; a signature found further in may be tensor data).
ZIP_MAGIC = b"PK\x03\x04"
#: The first bytes of the images a user may hand over by mistake, and what each is.
IMAGE_MAGICS = {b"\x89PNG\r\n\x1a\n": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
                b"BM": "a BMP image"}


def file_kind(path: Path) -> str:
    """:data:`SAFETENSORS`, :data:`TORCH_ZIP` or :data:`TORCH_PICKLE` for the files those write; for any other,
    what it is in words ("a PNG image", "a NumPy .npz archive", "a text file"...)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        return "an empty file"
    if len(head) > 8 and struct.unpack("<Q", head[:8])[0] <= size - 8 and head[8:9] == b"{":
        return SAFETENSORS
    if head.startswith(ZIP_MAGIC):
        return zip_kind(path)
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:  # a pickle's PROTO opcode, as torch.save writes
        return TORCH_PICKLE
    return next((kind for magic, kind in IMAGE_MAGICS.items() if head.startswith(magic)), None) or _text_or_not(head)


def in_words(kind: str) -> str:
    """A :func:`file_kind` as the words of a sentence: "a safetensors file", "a PNG image"..."""
    named = {SAFETENSORS: "a safetensors file", TORCH_ZIP: "a torch.save zip archive", TORCH_PICKLE: "a pickle"}
    return named.get(kind, kind)


def zip_kind(path: Path) -> str:
    """:data:`TORCH_ZIP` for torch.save's archive (a pickle inside, or one too damaged to list), else what the zip
    archive is: NumPy's .npz of arrays, or another."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        names = []
    if not names or any(name.endswith(".pkl") for name in names):
        return TORCH_ZIP
    if all(name.endswith(".npy") for name in names):
        return NPZ
    return "a zip archive of other files"


def _text_or_not(head: bytes) -> str:
    """"a text file" when ``head`` reads as UTF-8 text (cut anywhere in a character), else a file of no known kind."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = head[: exc.start].decode("utf-8") if exc.start >= len(head) - 3 else "\0"
    return "a text file" if text and "\0" not in text else "a file of no format ganzoo knows"
