"""Where a DCGAN step's time goes: each convolution of the 28 px networks, per precision and layout.

Usage:
  python benchmarks/conv_layers.py [--batch-size 64] [--repeats 30] [--device cpu]

For every convolution of ganzoo's ``dcgan`` generator and discriminator at 28 × 28 (default
widths), times its forward, its input gradient and its weight gradient alone
(``aten.convolution_backward`` with one output asked for), in fp32 and bf16, NCHW and
channels-last. Prints milliseconds, GFLOP/s (2 × multiply-adds of the forward; each gradient
costs the same) and each setting's total as a ratio to fp32 NCHW measured in the same run, so
one can see whether a step is bound by arithmetic and what a precision or a layout can buy.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

SETTINGS = (("fp32", "nchw"), ("fp32", "cl"), ("bf16", "nchw"), ("bf16", "cl"))
PARTS = ("forward", "input grad", "weight grad")


def _median_ms(run: Callable[[], Any], repeats: int, device: Any) -> float:
    """Median wall time of ``run`` in milliseconds after three warm-up calls."""
    import statistics

    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):
        run()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def convolutions(batch_size: int) -> list[tuple[str, Any, tuple[int, ...]]]:
    """(name, conv module, input shape) for every convolution of the 28 px DCGAN networks."""
    import torch
    from torch import nn

    from ganzoo import build
    from ganzoo.config import resolve_config
    from ganzoo.registry import get_model
    from ganzoo.specs import DatasetInfo

    model = get_model("dcgan")
    config = resolve_config(model, DatasetInfo("images", channels=1, image_size=28), {"image_size": 28})
    found = []
    for net_name, net, shape in (("G", build.build_generator(model, config), (int(config["latent_dim"]), 1, 1)),
                                 ("D", build.build_discriminator(model, config), (1, 28, 28))):
        x = torch.zeros(batch_size, *shape)
        for index, layer in enumerate(net.net):
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                kind = "convT" if isinstance(layer, nn.ConvTranspose2d) else "conv"
                found.append((f"{net_name}{index} {kind} {layer.in_channels}->{layer.out_channels}", layer, tuple(x.shape)))
            with torch.no_grad():
                x = layer(x)
    return found


def time_convolution(layer: Any, shape: tuple[int, ...], precision: str, layout: str, repeats: int,
                     device: Any) -> tuple[dict[str, float], float]:
    """({part: ms}, forward GFLOP) of one convolution in one precision and memory layout."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    memory = torch.channels_last if layout == "cl" else torch.contiguous_format
    x = torch.randn(shape, device=device, dtype=dtype).contiguous(memory_format=memory)
    weight = layer.weight.detach().to(device=device, dtype=dtype).contiguous(memory_format=memory)
    transposed = isinstance(layer, torch.nn.ConvTranspose2d)
    args = ([layer.stride[0]] * 2, [layer.padding[0]] * 2, [1, 1], transposed, [0, 0], 1)
    y = torch.ops.aten.convolution(x, weight, None, *args)
    grad = torch.randn_like(y)

    def backward(mask: list[bool]) -> Callable[[], Any]:
        return lambda: torch.ops.aten.convolution_backward(grad, x, weight, None, *args, mask)

    runs = {"forward": lambda: torch.ops.aten.convolution(x, weight, None, *args),
            "input grad": backward([True, False, False]), "weight grad": backward([False, True, False])}
    # multiply-adds: each value on the strided side (a conv's output, a transposed conv's input) meets a whole filter
    macs = (x if transposed else y).numel() * weight[0].numel()
    return {part: _median_ms(run, repeats, device) for part, run in runs.items()}, 2 * macs / 1e9


def main() -> None:
    """Time every convolution in every setting and print the table."""
    import torch

    from ganzoo.device import pick_device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = pick_device(args.device)
    print(f"dcgan 28 px convolutions, batch {args.batch_size}, {device}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    totals: dict[tuple[str, str], float] = {}
    for name, layer, shape in convolutions(args.batch_size):
        for precision, layout in SETTINGS:
            times, gflop = time_convolution(layer, shape, precision, layout, args.repeats, device)
            totals[(precision, layout)] = totals.get((precision, layout), 0.0) + sum(times.values())
            cells = "  ".join(f"{part} {ms:6.2f} ms ({gflop / ms * 1000:5.0f} GFLOP/s)" for part, ms in times.items())
            print(f"  {name:<22} {precision} {layout:<4}  {gflop:5.3f} GFLOP  {cells}")
    baseline = totals[SETTINGS[0]]
    print("  all convolutions, forward + both gradients once each:")
    for (precision, layout), total in totals.items():
        print(f"  {precision} {layout:<4}  {total:7.2f} ms  {baseline / total:4.2f}x fp32 nchw")


if __name__ == "__main__":
    main()
