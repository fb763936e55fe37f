"""Images/s and peak memory loading an image folder: a plain decoding loop against ganzoo's workers.

Writes ``--images`` synthetic CelebA-like JPEGs (178x218, smooth noise, which compresses like a
photo), then loads them at ``--image-size`` as uint8 tensors, each run in a fresh process, the
variants taking turns for ``--rounds`` rounds (medians compared):

- ``plain``: the loop a training script writes, one file after another: decode, convert,
  resize and centre-crop (the same functions ganzoo uses), a list of arrays, ``np.stack``, then
  ``permute(...).contiguous()`` to (N, C, H, W);
- ``workers=K``: :func:`ganzoo.data.folder.load_folder` with K worker processes (0: in the
  calling process, straight into one preallocated array), the cache of decoded folders off;
- ``into-cache``: the first load of a folder with the cache on (the default for 512 images or
  more): the default workers decode straight into a new cache entry on disk (removed before each
  run), which the load then maps;
- ``cached``: the same call reading the folder's entry in the cache of decoded folders (just
  written by ``into-cache``, so it is in the OS page cache).

Every variant's time includes reading every byte of the result once (a cache entry is mapped
from disk and read lazily).

Peak memory is the loading process's peak RSS above what it held after its imports, as a
multiple of the decoded set's size (workers' own memory is not included: they hold one chunk).
RSS counts the pages of a mapped entry too, though the kernel can drop those at any time, so the
anonymous memory the process holds after loading (RssAnon growth, × the set) is printed as well:
what a set costs that cannot be given back.

    python benchmarks/folder_decode.py --images 4000 --image-size 64 --rounds 3 --workers 0 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_images(folder: Path, count: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(count):
        small = rng.integers(0, 256, (14, 11, 3), dtype=np.uint8)
        Image.fromarray(small).resize((178, 218), Image.Resampling.BICUBIC).save(folder / f"{index:06d}.jpg", quality=90)


def peak_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def anonymous_bytes() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("RssAnon:"))


def load(variant: str, folder: Path, image_size: int) -> dict[str, float]:
    """Load ``folder`` the ``variant`` way in this (fresh) process: seconds and peak RSS growth."""
    import numpy as np
    import torch

    from ganzoo.data.folder import list_images, load_folder, read_fitted

    torch.set_num_threads(1)
    before = max(current_rss_bytes(), peak_rss_bytes())
    anonymous_before = anonymous_bytes()
    start = time.perf_counter()
    if variant == "plain":
        arrays = [read_fitted(path, image_size, 3).transpose(1, 2, 0) for path in list_images(folder)]
        images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        del arrays
    else:
        workers = int(variant.split("=")[1]) if variant.startswith("workers=") else None
        images, _, _ = load_folder(folder, image_size, 3, workers=workers)
    images.max()  # every byte read (a cache entry is mapped from disk lazily); no wider copy made
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "images": int(images.shape[0]),
            "peak_growth": (peak_rss_bytes() - before) / images.numel(),
            "anonymous_held": (anonymous_bytes() - anonymous_before) / images.numel()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(load(args.child[0], Path(args.child[1]), args.image_size)))
        return

    variants = ["plain", *(f"workers={count}" for count in args.workers), "into-cache", "cached"]
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "images", Path(tmp) / "cache"
        folder.mkdir()
        write_images(folder, args.images)

        def run_child(variant: str) -> dict[str, float]:
            uses_cache = variant in ("into-cache", "cached")
            env = {**os.environ, "GANZOO_CACHE": str(cache), "GANZOO_DECODE_CACHE": "1" if uses_cache else "0"}
            if variant == "into-cache":
                shutil.rmtree(cache, ignore_errors=True)
            child = subprocess.run([sys.executable, __file__, "--image-size", str(args.image_size), "--child", variant, str(folder)],
                                   check=True, capture_output=True, text=True, env=env)
            return json.loads(child.stdout.strip().splitlines()[-1])

        print(f"{args.images} JPEGs of 178x218 loaded at {args.image_size} px, {args.rounds} rounds, each run in a fresh process")
        runs: dict[str, list[dict[str, float]]] = {variant: [] for variant in variants}
        for round_index in range(args.rounds):
            for variant in variants:
                run = run_child(variant)
                runs[variant].append(run)
                print(f"round {round_index + 1} {variant:<10} {run['seconds']:6.2f} s  peak +{run['peak_growth']:.2f}x "
                      f"the set, anonymous held +{run['anonymous_held']:.2f}x", flush=True)
    base = statistics.median(args.images / run["seconds"] for run in runs["plain"])
    print(f"\n{'variant':<10} {'images/s':>9} {'vs plain':>9} {'peak memory (x set)':>20} {'anonymous held (x set)':>23}")
    for variant in variants:
        rate = statistics.median(args.images / run["seconds"] for run in runs[variant])
        memory = statistics.median(run["peak_growth"] for run in runs[variant])
        anonymous = statistics.median(run["anonymous_held"] for run in runs[variant])
        print(f"{variant:<10} {rate:9.0f} {rate / base:8.2f}x {memory:20.2f} {anonymous:23.2f}")


if __name__ == "__main__":
    main()
