"""MNIST-style datasets in the IDX format (MNIST, Fashion-MNIST), read without torchvision or pickle.

Files are looked for in ``ROOT/<Folder>/raw/`` (the torchvision layout), uncompressed or
``.gz``; when missing they are downloaded from the dataset's mirrors and checked by MD5.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganzoo.download import DownloadError, download
from ganzoo.errors import GanzooError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class IdxSource:
    """Where one IDX dataset lives: its folder name, mirrors, and per-file MD5 of the ``.gz`` archives."""

    folder: str
    mirrors: tuple[str, ...]
    md5: dict[str, str]
    class_names: tuple[str, ...]


MNIST = IdxSource(
    folder="MNIST",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    md5={
        "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    class_names=tuple(str(d) for d in range(10)),
)
FASHION_MNIST = IdxSource(
    folder="FashionMNIST",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    md5={
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    class_names=("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"),
)


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped) into an array; a damaged file raises a clear error."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise GanzooError(f"Cannot read {path} ({exc}); delete it so it is downloaded again.") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise GanzooError(f"{path} is not an IDX file; delete it and place the original file there.")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise GanzooError(f"{path} holds {len(data)} bytes but its header promises {expected}; delete it and download it again.")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def locate(source: IdxSource, root: Path, stem: str, mirrors: tuple[str, ...] | None = None,
           needed: tuple[str, ...] = ()) -> Path:
    """Path of ``stem`` (raw or .gz) under ``root``, downloading the .gz when neither is there.

    When no mirror answers, the error names every file of ``needed`` (the split's images and
    labels, say) still missing, so the user fetches them all at once.
    """
    raw_dir = root / source.folder / "raw"
    for candidate in (raw_dir / stem, raw_dir / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    mirrors = mirrors or source.mirrors
    reasons = []
    for mirror in mirrors:
        try:
            return download(mirror + f"{stem}.gz", raw_dir / f"{stem}.gz", md5=source.md5.get(stem))
        except DownloadError as exc:
            reasons.append(exc.reason)
    missing = [name for name in dict.fromkeys((stem, *needed))
               if not any((raw_dir / f).is_file() for f in (name, f"{name}.gz"))]
    where = "; ".join(f"from {mirror}: {reason}" for mirror, reason in zip(mirrors, reasons)) or "no mirror is known"
    raise GanzooError(
        f"{source.folder} is not in {raw_dir} and could not be downloaded ({where}); put "
        f"{' and '.join(f'{name}.gz' for name in missing)} there, or point --data-root / GANZOO_DATA at a folder "
        f"that has {source.folder}/raw/."
    )


def load_idx_dataset(source: IdxSource, root: Path, split: str = "train", mirrors: tuple[str, ...] | None = None):
    """Images (N, 1, 28, 28) uint8 and labels (N,) int64 of ``split`` (``train`` or ``test``) as tensors."""
    import torch

    prefix = "train" if split == "train" else "t10k"
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    images = read_idx(locate(source, root, stems[0], mirrors, needed=stems))
    labels = read_idx(locate(source, root, stems[1], mirrors, needed=stems))
    if images.shape[0] != labels.shape[0]:
        raise GanzooError(f"{source.folder} {split} has {images.shape[0]} images but {labels.shape[0]} labels; re-download it.")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))
