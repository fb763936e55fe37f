"""Cost of the divergence guard: one DCGAN discriminator update, plain ``backward(); step()`` vs guarded.

Usage: python benchmarks/guard_overhead.py [--device cuda] [--image-size 64] [--batch-size 128] [--steps 200]
Prints milliseconds per update for both and the relative overhead, with foreach Adam (the guard
copies and restores) and fused Adam (the kernel skips a bad update itself). The guarded variant is what
the training loop runs (ganzoo.guard.StepGuard), including its per-step record; the records are
flushed every 50 steps as at log time. On CUDA it then runs 20 guarded updates with torch's sync
debug mode set to "error", which proves no update waits for the GPU.
"""

from __future__ import annotations

import argparse
import time
from typing import Any


def main() -> None:
    """Time both variants on the same networks and batch, alternating to share any drift."""
    import torch

    from ganzoo.build import build_discriminator, build_generator
    from ganzoo.config import resolve_config
    from ganzoo.guard import keep_state_on_device
    from ganzoo.registry import get_model
    from ganzoo.specs import DatasetInfo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = get_model("dcgan")
    config = resolve_config(model, DatasetInfo("images", channels=3, image_size=args.image_size), {})
    generator = build_generator(model, config).to(device)
    discriminator = build_discriminator(model, config).to(device)
    real = torch.rand(args.batch_size, 3, args.image_size, args.image_size, device=device) * 2 - 1
    noise = torch.randn(args.batch_size, int(config["latent_dim"]), device=device)
    with torch.no_grad():
        fake = generator(noise)
    print(f"dcgan D update, {args.image_size}x{args.image_size}, batch {args.batch_size}, {device}"
          f" ({sum(p.numel() for p in discriminator.parameters()):,} parameters)")
    for kernel in ("foreach", "fused"):
        optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999), **{kernel: True})
        keep_state_on_device(optimizer, device)
        _measure(kernel, optimizer, discriminator, real, fake, device, args.steps)


def _measure(kernel: str, optimizer: Any, discriminator: Any, real: Any, fake: Any, device: Any, steps: int) -> None:
    """Print plain and guarded milliseconds per update with ``optimizer`` (and, on CUDA, prove no sync)."""
    import torch

    from ganzoo.guard import StepGuard

    guard = StepGuard()

    def loss() -> dict:
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        real_out, fake_out = discriminator(real), discriminator(fake)
        return {"d_real": bce(real_out, torch.ones_like(real_out)), "d_fake": bce(fake_out, torch.zeros_like(fake_out))}

    def plain(step: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        sum(loss().values()).backward()
        optimizer.step()

    def guarded(step: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        guard.step(optimizer, loss(), step, "discriminator")
        if step % 50 == 0:
            guard.flush()

    def timed(fn) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for step in range(1, steps + 1):
            fn(step)
        guard.flush()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / steps * 1e3

    for fn in (plain, guarded):
        timed(fn)  # warm-up (cudnn autotune, allocator, Adam state)
    results = {"plain": [], "guarded": []}
    for _ in range(3):
        results["plain"].append(timed(plain))
        results["guarded"].append(timed(guarded))
    best = {name: min(values) for name, values in results.items()}
    print(f"  {kernel} Adam: plain {best['plain']:.3f} ms/update, guarded {best['guarded']:.3f} ms/update "
          f"(+{(best['guarded'] / best['plain'] - 1) * 100:.1f}%)")
    if device.type == "cuda":  # any device-to-host wait inside a guarded step now raises
        torch.cuda.set_sync_debug_mode("error")
        for step in range(1, 21):
            guarded(step % 50 + 1)
        torch.cuda.set_sync_debug_mode("default")
        print(f"  {kernel} Adam: no host synchronisation in 20 guarded updates (torch.cuda.set_sync_debug_mode('error'))")

if __name__ == "__main__":
    main()
