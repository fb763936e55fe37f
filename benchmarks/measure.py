"""What the speed benchmarks share: rounds taken in turn, the device in words, peak memory per run.

Peak host memory is the kernel's resident high-water mark (VmHWM), reset through
/proc/self/clear_refs where Linux allows it; on CUDA the peak of torch's allocator is read too.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any, Iterator


def take_turns(rounds: int) -> Iterator[int]:
    """Round indices, each announced when there are several.

    Each round runs the peer loop and every variant once, in turn, so that no run always goes
    first on a warming machine or always meets the same noisy neighbour; medians are compared.
    """
    for index in range(rounds):
        if rounds > 1:
            print(f"  round {index + 1} of {rounds}")
        yield index


def device_name(device: Any) -> str:
    """The GPU's name, or the CPU's kind and torch's thread count."""
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads"


def reset_peak_memory(device: Any) -> bool:
    """Start a new peak for this process; False where the host peak cannot be reset (it then keeps growing)."""
    if device.type == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats(device)
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_memory(device: Any) -> str:
    """Peak resident host memory since the last reset, and on CUDA the allocator's peak, as text."""
    text = f"peak RSS {_peak_rss_mib():6.0f} MiB"
    if device.type == "cuda":
        import torch

        text += f", peak GPU {torch.cuda.max_memory_allocated(device) / 2**20:6.0f} MiB"
    return text


def _peak_rss_mib() -> float:
    """VmHWM, or ru_maxrss (the peak since start) without /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
