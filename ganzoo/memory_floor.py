"""Whether a forward pass can fit at all, found before it runs: the OS may kill a process that overcommits
memory (the CPU) instead of raising, so a size far too large for the machine is refused up front."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch
    from torch import nn


def free_bytes(device: "torch.device") -> int | None:
    """The memory ``device`` has free now: the GPU's free memory for CUDA, the host's ``MemAvailable`` for the CPU
    (Linux); None where it cannot be known (another OS, another accelerator)."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(":")
        if name == "MemAvailable":
            return int(value.split()[0]) * 1024
    return None


def activation_floor(module: "nn.Module", forward: Callable[[], Any]) -> int:
    """Bytes that ``forward()`` (a pass through ``module`` on meta tensors: no memory, no arithmetic) needs at the
    least: the largest input plus output of any one of its layers, which are alive together. The real peak is higher
    (skips, other layers' outputs), so a floor above the free memory means the pass cannot fit."""
    import torch

    def size(value: Any) -> int:
        if isinstance(value, torch.Tensor):
            return value.numel() * value.element_size()
        if isinstance(value, (tuple, list)):
            return sum(size(item) for item in value)
        return 0

    largest = 0

    def measure(layer: "nn.Module", inputs: Any, output: Any) -> None:
        nonlocal largest
        largest = max(largest, size(inputs) + size(output))

    layers = [layer for layer in module.modules() if not any(layer.children())]
    handles = [layer.register_forward_hook(measure) for layer in layers]
    try:
        forward()
    finally:
        for handle in handles:
            handle.remove()
    return largest
