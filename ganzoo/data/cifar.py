"""CIFAR-10 from the authors' binary archive (fixed-size records, no pickle)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from ganzoo.download import DownloadError, download
from ganzoo.errors import GanzooError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
FOLDER = "cifar-10-batches-bin"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
RECORD = 1 + 3 * 32 * 32


def _batch_files(split: str) -> list[str]:
    return [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]


def ensure_extracted(root: Path, url: str = URL, md5: str | None = MD5) -> Path:
    """The folder of ``.bin`` batches under ``root``, downloading and extracting the archive if needed."""
    folder = root / FOLDER
    if all((folder / name).is_file() for name in _batch_files("train") + _batch_files("test")):
        return folder
    try:
        archive = download(url, root / "cifar-10-binary.tar.gz", md5=md5)
    except DownloadError as exc:
        raise GanzooError(
            f"CIFAR-10 is not in {folder} and could not be downloaded ({url}: {exc.reason}); put "
            f"cifar-10-binary.tar.gz in {root}, or its extracted {FOLDER}/ folder there, or point --data-root / "
            "GANZOO_DATA at a folder that has it."
        ) from None
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith(FOLDER + "/")]
            tar.extractall(root, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        archive.unlink(missing_ok=True)
        raise GanzooError(f"The CIFAR-10 archive {archive} is damaged ({exc}); it was removed, run again to download it.") from None
    return folder


def read_batches(folder: Path, split: str = "train"):
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 tensors of ``split``."""
    import torch

    records = []
    for name in _batch_files(split):
        raw = np.fromfile(folder / name, dtype=np.uint8)
        if raw.size % RECORD:
            raise GanzooError(f"{folder / name} is truncated; delete {folder} and run again to re-extract it.")
        records.append(raw.reshape(-1, RECORD))
    data = np.concatenate(records)
    labels = torch.from_numpy(data[:, 0].astype(np.int64))
    images = torch.from_numpy(data[:, 1:].reshape(-1, 3, 32, 32).copy())
    return images, labels
