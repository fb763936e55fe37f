"""Seconds per CycleGAN training step (default widths) through the real engine, and what an epoch costs.

Writes a small synthetic unpaired set, trains ``--steps`` steps with ``ganzoo train cyclegan``'s
Trainer at ``--image-size`` (batch 1, the paper's setting), and prints seconds per step from the
run's metrics, the extrapolated time of one horse2zebra epoch (1334 steps: the larger domain)
and of the paper's 200 epochs.

    python benchmarks/cyclegan_step.py --image-size 64 --steps 12 --threads 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

HORSE2ZEBRA_STEPS = 1334


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    from ganzoo.engine import TrainRequest, Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        side = round(args.image_size * 286 / 256)
        for domain in ("trainA", "trainB"):
            (root / "data" / domain).mkdir(parents=True)
            for index in range(args.steps + 1):  # one warm-up step, then the timed ones
                Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(root / "data" / domain / f"{index}.png")
        request = TrainRequest(model="cyclegan", out=root / "run", data=str(root / "data"), device=args.device,
                               progress=False, overrides={"image_size": args.image_size, "epochs": 1, "log_every": 1})
        trainer = Trainer(request)
        started = time.perf_counter()
        trainer.run()
        wall = time.perf_counter() - started
        rows = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()]
        times = [row["time"] for row in rows if row.get("event") == "log"]
    per_step = (times[-1] - times[0]) / (len(times) - 1)  # the first step (warm-up) excluded
    print(f"cyclegan {args.image_size}px, default widths (g_width 64, d_width 64, "
          f"{9 if args.image_size >= 256 else 6} blocks), batch 1, device {args.device}, "
          f"threads {torch.get_num_threads()}:")
    print(f"  {per_step:.3f} s per step (mean of {len(times) - 1} steps; whole run incl. set-up {wall:.1f} s)")
    print(f"  one horse2zebra epoch ({HORSE2ZEBRA_STEPS} steps): {per_step * HORSE2ZEBRA_STEPS / 60:.1f} min; "
          f"200 epochs: {per_step * HORSE2ZEBRA_STEPS * 200 / 3600:.1f} h")


if __name__ == "__main__":
    main()
