"""Pairs per second the translation data path serves at 256 px: in memory versus streamed from disk.

Writes ``--pairs`` synthetic edges2shoes-like JPEG files (512x256, A|B side by side), then times
one epoch of ``batches()`` (load 286, random crop 256, flip) held in memory and streamed with
each worker count in ``--workers``, and prints pairs/s and the memory the decoded set would take.
Figures are for the data path alone; a training step runs on top of them.

    python benchmarks/translation_stream.py --pairs 200 --workers 0 1 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    from ganzoo.data.translation import load_translation

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "train").mkdir()
        rng = np.random.default_rng(0)
        for index in range(args.pairs):  # smooth noise compresses like photos, not like white noise
            small = rng.integers(0, 256, (16, 32, 3), dtype=np.uint8)
            Image.fromarray(small).resize((512, 256), Image.Resampling.BICUBIC).save(root / "train" / f"{index}.jpg", quality=90)

        def epoch(data, label: str) -> None:
            start = time.perf_counter()
            count = sum(int(b["a"].shape[0]) for b in data.batches(args.batch_size, torch.Generator().manual_seed(0)))
            seconds = time.perf_counter() - start
            print(f"{label:<22} {count / seconds:8.1f} pairs/s  ({count} pairs in {seconds:.2f} s)")

        start = time.perf_counter()
        memory = load_translation(root, "paired", "bench", args.image_size)
        print(f"in memory: decoding {args.pairs} pairs took {time.perf_counter() - start:.2f} s")
        epoch(memory, "in memory")
        for workers in args.workers:
            streamed = load_translation(root, "paired", "bench", args.image_size, {"stream": True, "data_workers": workers})
            epoch(streamed, f"streamed, {workers} workers")
        gigabytes = streamed.files.decoded_bytes(args.image_size) / 1e9
        print(f"decoded size: {gigabytes / args.pairs * 1e3:.2f} MB per pair; edges2shoes (49825 pairs) "
              f"{gigabytes / args.pairs * 49825:.1f} GB, edges2handbags (138567) {gigabytes / args.pairs * 138567:.1f} GB")


if __name__ == "__main__":
    main()
