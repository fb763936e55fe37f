"""CycleGAN training steps per second: ganzoo's Trainer against a peer-style eager loop, same networks.

Writes a small synthetic unpaired set (``--steps`` + 1 random images per domain at 286/256 of
``--image-size``), then, in this one process:

* ``peer``: PyTorch-GAN ``cyclegan.py`` style. A ``DataLoader`` (``--workers`` processes,
  shuffled) over a Dataset that opens each file with PIL and applies torchvision Resize (×1.12,
  bicubic), RandomCrop, RandomHorizontalFlip, ToTensor and Normalize; per step the generators'
  update (identity, least-squares GAN and cycle terms), then D_A and D_B on replay-buffer fakes,
  and ``.item()`` on the losses every step. Same networks (ganzoo's), same Adam settings.
* ``ganzoo``: the ``ganzoo train cyclegan`` Trainer for ``--steps`` steps, once per entry of
  ``--variants`` (``defaults``, ``off``, or ``+``-joined speed options such as
  ``bf16+cl+compile``; see ``benchmarks/speed_variants.py``).

Steps per second exclude warm-up: the peer's first ``--warmup`` steps and, for ganzoo, the steps
before its first log row (``--log-every``; compilation happens there). Prints each run's rate and
peak memory (``measure.py``); then, over ``--rounds`` rounds that run the peer loop and the
variants in turn, each run's median rate, its ratio to the peer's median, and the extrapolated
time of one horse2zebra epoch (1334 steps, the larger domain) and of the paper's 200 epochs.

    python benchmarks/cyclegan_step.py --image-size 64 --steps 20 --threads 2 --rounds 3 --variants defaults cl bf16 fast
    python benchmarks/cyclegan_step.py --device cuda --image-size 256 --steps 200 --log-every 25 \\
        --workers 8 --variants defaults bf16+cl compile bf16+cl+compile
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from measure import device_name, peak_memory, reset_peak_memory, take_turns
from speed_variants import variant_options

HORSE2ZEBRA_STEPS = 1334


def write_unpaired_set(root: Path, count: int, image_size: int) -> None:
    """``count`` random RGB PNGs per domain in ``root/trainA`` and ``root/trainB``, 286/256 of the crop."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    side = round(image_size * 286 / 256)
    for domain in ("trainA", "trainB"):
        (root / domain).mkdir(parents=True)
        for index in range(count):
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(root / domain / f"{index}.png")


class PeerUnpairedImages:
    """PyTorch-GAN's ImageDataset: PIL open + Resize/RandomCrop/Flip/ToTensor/Normalize per item."""

    def __init__(self, root: Path, image_size: int) -> None:
        import torchvision.transforms as T

        self.files_a = sorted((root / "trainA").iterdir())
        self.files_b = sorted((root / "trainB").iterdir())
        self.transform = T.Compose([
            T.Resize(int(image_size * 1.12), T.InterpolationMode.BICUBIC), T.RandomCrop(image_size),
            T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ])

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def __getitem__(self, index: int) -> dict[str, Any]:
        import random

        from PIL import Image

        image_a = Image.open(self.files_a[index % len(self.files_a)]).convert("RGB")
        image_b = Image.open(self.files_b[random.randrange(len(self.files_b))]).convert("RGB")
        return {"a": self.transform(image_a), "b": self.transform(image_b)}


class PeerReplayBuffer:
    """PyTorch-GAN's ReplayBuffer: 50 earlier fakes, each returned image swapped in with probability ½."""

    def __init__(self, size: int = 50) -> None:
        self.size, self.data = size, []

    def push_and_pop(self, images: Any) -> Any:
        import random

        import torch

        out = []
        for image in images.data:
            image = image.unsqueeze(0)
            if len(self.data) < self.size:
                self.data.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                slot = random.randint(0, self.size - 1)
                out.append(self.data[slot].clone())
                self.data[slot] = image
            else:
                out.append(image)
        return torch.cat(out)


def peer_loop(root: Path, config: dict[str, Any], workers: int, warmup: int, device: Any) -> tuple[float, int]:
    """Train the peers' way over the set once; returns (seconds after warm-up, timed steps)."""
    import itertools

    import torch

    from ganzoo import build
    from ganzoo.registry import get_model

    model = get_model("cyclegan")
    torch.manual_seed(0)
    generators = build.build_generator(model, config).to(device)
    discriminators = build.build_discriminator(model, config).to(device)
    betas = (float(config["beta1"]), float(config["beta2"]))
    lr = float(config["lr"])
    opt_g = torch.optim.Adam(itertools.chain(generators.ab.parameters(), generators.ba.parameters()), lr=lr, betas=betas)
    opt_da = torch.optim.Adam(discriminators.a.parameters(), lr=lr, betas=betas)
    opt_db = torch.optim.Adam(discriminators.b.parameters(), lr=lr, betas=betas)
    gan_loss, cycle_loss, identity_loss = torch.nn.MSELoss(), torch.nn.L1Loss(), torch.nn.L1Loss()
    lam, lam_id = float(config["lambda_cycle"]), float(config["lambda_cycle"]) * float(config["lambda_identity"])
    buffer_a, buffer_b = PeerReplayBuffer(), PeerReplayBuffer()
    loader = torch.utils.data.DataLoader(PeerUnpairedImages(root, int(config["image_size"])), batch_size=1,
                                         shuffle=True, num_workers=workers)
    start, steps = None, 0
    for step, batch in enumerate(loader):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        real_a, real_b = batch["a"].to(device), batch["b"].to(device)
        opt_g.zero_grad()
        loss_identity = (identity_loss(generators.ba(real_a), real_a) + identity_loss(generators.ab(real_b), real_b)) / 2
        fake_b, fake_a = generators.ab(real_a), generators.ba(real_b)
        pred_b, pred_a = discriminators.b(fake_b), discriminators.a(fake_a)
        loss_gan = (gan_loss(pred_b, torch.ones_like(pred_b)) + gan_loss(pred_a, torch.ones_like(pred_a))) / 2
        loss_cycle = (cycle_loss(generators.ba(fake_b), real_a) + cycle_loss(generators.ab(fake_a), real_b)) / 2
        loss_g = loss_gan + lam * loss_cycle + lam_id * loss_identity
        loss_g.backward()
        opt_g.step()
        losses_d = []
        for disc, opt, real, fake, buffer in ((discriminators.a, opt_da, real_a, fake_a, buffer_a),
                                              (discriminators.b, opt_db, real_b, fake_b, buffer_b)):
            opt.zero_grad()
            pred_real, pred_fake = disc(real), disc(buffer.push_and_pop(fake).detach())
            loss_d = (gan_loss(pred_real, torch.ones_like(pred_real)) + gan_loss(pred_fake, torch.zeros_like(pred_fake))) / 2
            loss_d.backward()
            opt.step()
            losses_d.append(loss_d)
        _ = (loss_g.item(), losses_d[0].item(), losses_d[1].item())  # the peer prints these every step
        steps += 1 if start is not None else 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, steps


def ganzoo_run(root: Path, out: Path, image_size: int, log_every: int, options: dict[str, Any],
               device: str) -> tuple[float, int, float]:
    """The Trainer for one epoch of the set; (seconds between its first and last log rows, steps between, wall)."""
    from ganzoo.engine import TrainRequest, Trainer

    request = TrainRequest(model="cyclegan", out=out, data=str(root), device=device, progress=False,
                           overrides={"image_size": image_size, "epochs": 1, "log_every": log_every, **options})
    started = time.perf_counter()
    Trainer(request).run()
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logs = [row for row in rows if row.get("event") == "log"]
    return logs[-1]["time"] - logs[0]["time"], logs[-1]["step"] - logs[0]["step"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--log-every", type=int, default=1, help="ganzoo's log interval; timing starts at its first log")
    parser.add_argument("--warmup", type=int, default=1, help="peer steps left out of its timing")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the peer loop (PyTorch-GAN: 8)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", nargs="+", default=["defaults"], help="ganzoo runs: defaults or e.g. bf16+cl+compile")
    parser.add_argument("--skip-peer", action="store_true", help="only the ganzoo run(s)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the peer loop and every variant this many times, in turn; medians are compared")
    args = parser.parse_args()

    import torch

    from ganzoo.config import resolve_config
    from ganzoo.device import pick_device
    from ganzoo.registry import get_model
    from ganzoo.specs import DatasetInfo

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    runs = [(variant, variant_options(variant)) for variant in args.variants]
    print(f"cyclegan {args.image_size}px, default widths (g_width 64, d_width 64, "
          f"{9 if args.image_size >= 256 else 6} blocks), batch 1, {args.steps} steps, {device_name(device)}, "
          f"torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_unpaired_set(root, args.steps + 1, args.image_size)
        config = resolve_config(get_model("cyclegan"), DatasetInfo("unpaired", channels=3, image_size=args.image_size),
                                {"image_size": args.image_size})
        peer_name = f"peer eager loop (workers={args.workers})"
        rates: dict[str, list[float]] = {}
        for round_index in take_turns(args.rounds):
            if not args.skip_peer:
                reset_peak_memory(device)
                seconds, steps = peer_loop(root, config, args.workers, args.warmup, device)
                rates.setdefault(peer_name, []).append(steps / seconds)
                print(f"  {peer_name:<36} {steps / seconds:7.2f} steps/s ({seconds / steps * 1000:.1f} ms per step over "
                      f"{steps} steps)  {peak_memory(device)}")
            for index, (variant, options) in enumerate(runs):
                reset_peak_memory(device)
                seconds, steps, wall = ganzoo_run(root, Path(tmp) / f"run{round_index}-{index}", args.image_size,
                                                  args.log_every, options, args.device)
                rates.setdefault(variant, []).append(steps / seconds)
                print(f"  {'ganzoo Trainer (' + variant + ')':<36} {steps / seconds:7.2f} steps/s ({seconds / steps * 1000:.1f} "
                      f"ms per step over {steps} steps; whole run incl. set-up {wall:.1f} s)  {peak_memory(device)}")
    peer_rate = statistics.median(rates[peer_name]) if peer_name in rates else None
    print(f"  median of {args.rounds} round(s), steps/s" + (" and ratio to the peer loop:" if peer_rate else ":"))
    if peer_rate:
        print(f"  {peer_name:<36} {peer_rate:7.2f}")
    for variant, _ in runs:
        rate = statistics.median(rates[variant])
        ratio = f"  {rate / peer_rate:.2f}x" if peer_rate else ""
        print(f"  {'ganzoo Trainer (' + variant + ')':<36} {rate:7.2f}{ratio}; one horse2zebra epoch "
              f"({HORSE2ZEBRA_STEPS} steps): {HORSE2ZEBRA_STEPS / rate / 60:.1f} min, "
              f"200 epochs: {HORSE2ZEBRA_STEPS * 200 / rate / 3600:.1f} h")


if __name__ == "__main__":
    main()
