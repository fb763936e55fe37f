"""DCGAN on MNIST: ganzoo's Trainer against a plain eager loop written the way the peers write it.

Usage:
  python benchmarks/dcgan_speed.py --data-root /work/shared/datasets [--batch-size 64|128]
      [--subset N] [--steps N] [--workers 0] [--image-size 28] [--device cpu]
      [--variants defaults off fused graphs bf16+fused+graphs ...]

Both runs use the same networks (ganzoo's dcgan), the same Adam settings, the same images
(the first ``--subset`` MNIST training images) and the same batch size, in this one process:

* ``peer``: pytorch/examples ``dcgan/main.py`` / PyTorch-GAN ``dcgan.py`` style. A
  ``torch.utils.data.DataLoader`` (shuffled, ``--workers`` processes, drop_last) over a Dataset
  that turns each uint8 array into a PIL image and applies torchvision ``ToTensor`` +
  ``Normalize`` per image; D on real, then on ``fake.detach()``, then G on the same fake;
  ``zero_grad(set_to_none=False)``; ``.item()`` on both losses every step.
* ``ganzoo``: :class:`ganzoo.engine.Trainer` for one epoch over the same images: uint8 tensors
  in memory, batches converted on the device, losses read every ``log_every`` steps, every
  update through the divergence guard, and its epoch end (sample picture, generator file,
  checkpoint) included in its time. By default it draws a fresh fake for the G step (one more G
  forward per step than the peer loop); the ``reuse`` option (``reuse_fake``) reuses D's fake as
  the peer loop does.

``--steps N`` trains N steps (the subset is cut to N*batch images); otherwise one epoch of the
subset. Prints images/s, seconds and each run's peak memory (host VmHWM, reset between runs
where Linux allows it, and on CUDA the allocator's peak; ``measure.py``), then each run's median over ``--rounds`` and its
ratio to the peer loop's median. The rounds run the peer loop and the variants in turn, because on
a busy machine whichever run goes first or meets a noisy neighbour is slower. ``--variants`` names the ganzoo
runs, one per entry: ``defaults``, ``off`` (every option off, foreach Adam), or ``+``-joined
options (``bf16``, ``fp16``, ``cl``, ``compile``, ``fused``, ``foreach``, ``tf32``, ``graphs``, ``reuse``, ``fast``;
see ``benchmarks/speed_variants.py``), so one command shows what each option adds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from measure import device_name, peak_memory, reset_peak_memory, take_turns
from speed_variants import variant_options

PEER = "peer eager loop"


class PILDigits:
    """The peers' Dataset: each item becomes a PIL image, then ToTensor + Normalize((0.5,), (0.5,))."""

    def __init__(self, images: Any, image_size: int) -> None:
        import torchvision.transforms as T

        self.images = images.numpy()  # (N, 28, 28) uint8
        steps = [T.Resize(image_size)] if image_size != self.images.shape[-1] else []
        self.transform = T.Compose([*steps, T.ToTensor(), T.Normalize((0.5,), (0.5,))])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Any:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index], mode="L")), 0


def peer_loop(images: Any, config: dict[str, Any], batch_size: int, workers: int, device: Any) -> tuple[float, int]:
    """Train the peers' way; returns (seconds, steps)."""
    import torch

    from ganzoo import build
    from ganzoo.registry import get_model

    model = get_model("dcgan")
    torch.manual_seed(int(config["seed"]))
    net_g = build.build_generator(model, config).to(device)
    net_d = build.build_discriminator(model, config).to(device)
    betas = (float(config["beta1"]), float(config["beta2"]))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=float(config["lr"]), betas=betas)
    opt_d = torch.optim.Adam(net_d.parameters(), lr=float(config["lr"]), betas=betas)
    criterion = torch.nn.BCEWithLogitsLoss()  # ganzoo's D outputs logits; the peers use Sigmoid + BCELoss
    loader = torch.utils.data.DataLoader(PILDigits(images, int(config["image_size"])), batch_size=batch_size,
                                         shuffle=True, num_workers=workers, drop_last=True)
    latent, steps = int(config["latent_dim"]), 0
    start = time.perf_counter()
    for real, _ in loader:
        real = real.to(device)
        ones = torch.full((real.shape[0],), 1.0, device=device)
        zeros = torch.full((real.shape[0],), 0.0, device=device)
        net_d.zero_grad(set_to_none=False)
        err_real = criterion(net_d(real).view(-1), ones)
        err_real.backward()
        fake = net_g(torch.randn(real.shape[0], latent, device=device))
        err_fake = criterion(net_d(fake.detach()).view(-1), zeros)
        err_fake.backward()
        err_d = err_real + err_fake
        opt_d.step()
        net_g.zero_grad(set_to_none=False)
        err_g = criterion(net_d(fake).view(-1), ones)
        err_g.backward()
        opt_g.step()
        _ = (err_d.item(), err_g.item())  # the peers print these every step
        steps += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, steps


def ganzoo_run(count: int, overrides: dict[str, Any], data_root: str, device: str) -> tuple[float, float, int]:
    """Ganzoo's Trainer for one epoch over the first ``count`` images; (run seconds, loop seconds, steps)."""
    import json
    from dataclasses import replace

    from ganzoo.engine import Trainer, TrainRequest

    with tempfile.TemporaryDirectory() as out:
        request = TrainRequest(model="dcgan", out=Path(out), data="mnist", overrides={"epochs": 1, **overrides},
                               data_root=data_root, device=device, progress=False)
        trainer = Trainer(request)
        trainer.data = replace(trainer.data, tensors={k: v[:count] for k, v in trainer.data.tensors.items()})
        trainer.steps_per_epoch = trainer.data.steps_per_epoch(int(trainer.config["batch_size"]))
        start = time.perf_counter()
        result = trainer.run()
        seconds = time.perf_counter() - start
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
        loop = next(row["seconds"] for row in rows if row.get("event") == "epoch")
        return seconds, loop, result.steps


def main() -> None:
    """Run both loops and print their figures."""
    import torch

    from ganzoo.config import resolve_config
    from ganzoo.data.idx import MNIST, load_idx_dataset
    from ganzoo.device import pick_device
    from ganzoo.registry import get_model
    from ganzoo.specs import DatasetInfo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="folder holding MNIST/raw/")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--subset", type=int, default=0, help="use the first N training images (0: all 60,000)")
    parser.add_argument("--steps", type=int, default=0, help="train this many steps (0: one epoch of the subset)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the peer loop (PyTorch-GAN: 0)")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", nargs="+", default=["defaults"],
                        help="ganzoo runs: defaults, off, or +-joined options, e.g. bf16+fused+graphs "
                             "(benchmarks/speed_variants.py)")
    parser.add_argument("--skip-peer", action="store_true", help="only the ganzoo run(s)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the peer loop and every variant this many times, in turn; medians are compared")
    args = parser.parse_args()

    device = pick_device(args.device)
    images, _ = load_idx_dataset(MNIST, Path(args.data_root), "train")
    count = args.subset or len(images)
    if args.steps:
        if args.steps * args.batch_size > count:
            print(f"note: --steps {args.steps} at batch {args.batch_size} needs {args.steps * args.batch_size} images, "
                  f"more than the {count} of the subset: each run trains {count // args.batch_size} steps, one epoch")
        count = min(count, args.steps * args.batch_size)
    images = images[:count, 0]
    overrides = {"batch_size": args.batch_size, "image_size": args.image_size, "log_every": 50}
    config = resolve_config(get_model("dcgan"), DatasetInfo("images", channels=1, image_size=28), overrides)
    print(f"dcgan, MNIST {args.image_size}x{args.image_size}, batch {args.batch_size}, {count} images, "
          f"device: {device_name(device)}, torch {torch.__version__}, peer DataLoader workers {args.workers}")

    if not reset_peak_memory(device):
        print("  (peak RSS cannot be reset here: each figure is the process's peak so far)")

    def report(name: str, seconds: float, steps: int, extra: str = "") -> float:
        rate = steps * args.batch_size / seconds
        print(f"  {name:<34} {steps:5d} steps {seconds:8.2f} s {rate:9.1f} images/s  {peak_memory(device)}{extra}")
        return rate

    runs = [(f"ganzoo Trainer ({variant})", variant_options(variant)) for variant in args.variants]
    rates: dict[str, list[tuple[float, float]]] = {}  # name -> [(rate with the epoch end, loop-alone rate)]
    for _ in take_turns(args.rounds):
        if not args.skip_peer:
            reset_peak_memory(device)
            seconds, steps = peer_loop(images, config, args.batch_size, args.workers, device)
            rate = report(PEER, seconds, steps)
            rates.setdefault(PEER, []).append((rate, rate))
        for name, options in runs:
            reset_peak_memory(device)
            seconds, loop, steps = ganzoo_run(count, {**overrides, **options}, args.data_root, args.device)
            rates.setdefault(name, []).append((report(name, seconds, steps, f"  (loop alone {loop:.2f} s)"),
                                               steps * args.batch_size / loop))
    peer = statistics.median(r for r, _ in rates[PEER]) if PEER in rates else None
    print(f"  median of {args.rounds} round(s), images/s" + (" and ratio to the peer loop (loop alone):" if peer else ":"))
    for name, _ in runs:
        rate, loop_rate = (statistics.median(values) for values in zip(*rates[name]))
        ratio = f"  {rate / peer:.2f}x ({loop_rate / peer:.2f}x)" if peer else ""
        print(f"  {name:<34} {rate:9.1f}{ratio}")

if __name__ == "__main__":
    main()
