"""Reading and writing safetensors files safely: validation before use, atomic replacement on write.

Nothing here (or anywhere in ganzoo) unpickles a file. Files that look like PyTorch pickles
are refused with a sentence explaining why and how to convert them.
"""

from __future__ import annotations

import errno
import json
import os
import re
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ganzoo.errors import GanzooError

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")
MAX_HEADER = 100 * 1024 * 1024


class WeightsError(GanzooError):
    """A weights or checkpoint file that cannot be used as asked."""


def _refuse_pickle(path: Path) -> WeightsError:
    return WeightsError(
        f"{path} looks like a PyTorch pickle file, which ganzoo never loads because unpickling can run arbitrary code; "
        "convert it once in a session you trust with torch.load(path, weights_only=True) and "
        "safetensors.torch.save_file(state_dict, 'model.safetensors')."
    )


def _refuse_zip(path: Path) -> WeightsError:
    """The sentence for a zip given as weights: torch.save's (a pickle inside), an .npz of samples, or another."""
    from ganzoo.file_kinds import NPZ, TORCH_ZIP, zip_kind

    kind = zip_kind(path)
    if kind == TORCH_ZIP:
        return _refuse_pickle(path)
    if kind == NPZ:
        return WeightsError(f"{path} is an .npz of arrays (as 'ganzoo sample' writes), not weights; pass a "
                            ".safetensors file written by ganzoo ('ganzoo eval --samples' scores an .npz).")
    return WeightsError(f"{path} is a zip archive, not a safetensors file; pass a .safetensors file written by ganzoo.")


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed JSON header of a safetensors file, after checking the file is complete.

    Raises :class:`WeightsError` for a missing, pickled, non-safetensors or truncated file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Weights file {path} does not exist; pass the path of a .safetensors file written by ganzoo.")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        # A zip (torch.save) or pickle start read as a header length is far beyond the file's size; a real
        # safetensors header length may well start with the same bytes (0x80 is 1 in 256 lengths), and then it
        # fits the file, or the file was cut short and its JSON header still opens after the length.
        fits = len(head) == 8 and struct.unpack("<Q", head)[0] <= size - 8
        json_follows = handle.read(1) == b"{"
        if not fits and not json_follows:  # not safetensors, even cut short: what is it? (a renamed one passes on)
            if head[:2] == b"PK":
                raise _refuse_zip(path)
            if head[:1] == b"\x80" or path.suffix.lower() in PICKLE_SUFFIXES:
                raise _refuse_pickle(path)
        handle.seek(8)
        if len(head) < 8:
            raise WeightsError(f"{path} is not a safetensors file (only {size} bytes); pass a .safetensors file written by ganzoo.")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER, size - 8):
            raise WeightsError(f"{path} is not a safetensors file or is truncated (bad header length); use an intact copy.")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: absurdly nested JSON
        raise WeightsError(f"{path} is not a safetensors file (its header is not JSON); use an intact copy.") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{path} is not a safetensors file (its header is not a table); use an intact copy.")
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise WeightsError(f"{path} is not a valid safetensors file (entry {name!r} has no data offsets); use an intact copy.")
        end = max(end, offsets[1])
    if 8 + length + end != size:
        raise WeightsError(f"{path} is truncated or damaged ({size} bytes, its header describes {8 + length + end}); use an intact copy.")
    return header


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The string metadata of a validated safetensors file (empty when it has none)."""
    metadata = read_header(path).get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WeightsError(f"{path} has malformed metadata; use a file written by ganzoo.")
    return metadata


def load_tensors(path: str | os.PathLike[str], device: str = "cpu") -> dict[str, Any]:
    """All tensors of a validated safetensors file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    read_header(path)
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} could not be read as safetensors ({exc}); use an intact copy.") from None


def cannot_write(path: str | os.PathLike[str], exc: OSError, option: str, folder: bool = False) -> GanzooError:
    """The one sentence for an output that cannot be written: the path, the system's reason, and what to do.

    ``mkdir(exist_ok=True)`` reports a file standing where a folder should be as "File exists", which reads as
    if the output itself were in the way; the shell's "Not a directory" names the real problem.
    """
    reason = os.strerror(errno.ENOTDIR) if isinstance(exc, FileExistsError) else exc.strerror or str(exc)
    if option == "--resume":  # the run's own folder: it cannot move, but a copy can
        advice = "copy the run folder to a writable place and resume it there"
    else:
        advice = f"choose a writable {option} folder" if folder else f"point {option} at a file in a writable folder"
    return GanzooError(f"Cannot write to {path} ({reason}); {advice}.")


def check_writable(path: str | os.PathLike[str], option: str, folder: bool = False, create: bool = True) -> None:
    """Create the folder of output ``path`` (``path`` itself when ``folder``) and a throw-away file in it.

    Commands call this before their expensive work (generating, scoring, translating) so that an unwritable
    output fails at once in one sentence (see :func:`cannot_write`) instead of after minutes of computing.
    With ``create=False`` nothing is made: the probe goes into the nearest folder that exists, so a
    command that fails later (its data missing, say) leaves no empty folder behind.
    """
    path = Path(path)
    where = path if folder else path.parent
    while not create and not where.exists() and where != where.parent:
        where = where.parent
    try:
        if create:
            where.mkdir(parents=True, exist_ok=True)
        elif not where.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(where))
        fd, probe = tempfile.mkstemp(prefix=".ganzoo-write-test.", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise cannot_write(path, exc, option, folder) from None


def _new_file_mode() -> int:
    """The mode ``open()`` gives new files under this process's umask (``mkstemp`` would leave 0600).

    Linux shows the umask in /proc/self/status; elsewhere it is read by setting and restoring it.
    """
    try:
        line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("Umask:"))
        mask = int(line.split()[1], 8)
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0)
        os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_target(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary file next to ``path`` to write; when the block ends without error it replaces ``path``.

    The temporary file is synced to disk first and removed on any error, so a crash or a full disk
    never leaves a half-written file at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            try:  # weights and checkpoints readable like every other file of the run, where the filesystem allows
                os.fchmod(handle.fileno(), _new_file_mode())
            except OSError:
                pass
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: The names :func:`atomic_target` gives its temporary files: ``.NAME.`` + mkstemp's 8 random characters + ``.tmp``.
_UNFINISHED = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def drop_unfinished_writes(folder: Path) -> None:
    """Delete the temporary files :func:`atomic_target` left in ``folder`` when its process was killed mid-write
    (``kill -9``, power loss): nothing else cleans them, and a checkpoint's can be hundreds of megabytes.
    Call it only while no other process writes to ``folder``."""
    if folder.is_dir():
        for leftover in folder.iterdir():
            if _UNFINISHED.match(leftover.name) and leftover.is_file():
                leftover.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash or full disk never leaves a half-written file there."""
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)


#: Metadata key of :func:`tensor_digest`, written by ``save_tensors(..., with_digest=True)``.
DIGEST_KEY = "tensor_sha256"


def tensor_digest(tensors: dict[str, Any]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order.

    Equal digests mean bit-identical tensors. safetensors checks a file's structure, not its
    numbers: a flipped byte inside a tensor loads fine. Checkpoints carry this digest so a resume
    can tell a damaged one and fall back; multi-process runs compare their weights with it.
    """
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # read in place, not copied
    return digest.hexdigest()


def digest_matches(metadata: dict[str, str], tensors: dict[str, Any]) -> bool:
    """Whether ``tensors`` still match the :func:`tensor_digest` their file's ``metadata`` keeps; files written
    before the digest was kept have none, and pass."""
    expected = metadata.get(DIGEST_KEY)
    return expected is None or tensor_digest(tensors) == expected


def save_tensors(path: str | os.PathLike[str], tensors: dict[str, Any], metadata: dict[str, str],
                 with_digest: bool = False) -> None:
    """Save tensors (moved to CPU, made contiguous) with string metadata, atomically; ``with_digest`` adds
    :func:`tensor_digest` to the metadata under :data:`DIGEST_KEY`."""
    from safetensors.torch import save

    cpu = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    if with_digest:
        metadata = {**metadata, DIGEST_KEY: tensor_digest(cpu)}
    try:
        atomic_write_bytes(path, save(cpu, metadata=metadata))
    except OSError as exc:
        raise WeightsError(f"Could not write {path} ({exc.strerror or exc}); free disk space or choose a writable --out "
                           "folder.") from exc  # the cause tells callers with other advice the system's reason
