"""Whether a forward pass can fit at all, found before it runs: the OS may kill a process that overcommits
memory (the CPU) instead of raising, so a size far too large for the machine is refused up front."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch
    from torch import nn


def free_bytes(device: "torch.device", sharing: int = 1) -> int | None:
    """The memory ``device`` has free now for each of ``sharing`` processes that share it: the GPU's free memory
    for CUDA, for the CPU the host's ``MemAvailable`` (Linux), each process's share of it, or less where
    ``ulimit -v`` leaves the process less room (a limit each process has for itself); None where it cannot be
    known (another OS, another accelerator)."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0]) // sharing
    if device.type != "cpu":
        return None
    available = _proc_kib("/proc/meminfo", "MemAvailable")
    if available is None:
        return None
    import resource

    available //= sharing
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]  # ulimit -v: the process's address space, not the machine's
    used = _proc_kib("/proc/self/status", "VmSize")
    if limit != resource.RLIM_INFINITY and used is not None:
        available = min(available, max(0, limit - used))
    return available


def _proc_kib(path: str, field: str) -> int | None:
    """The ``field: N kB`` line of a /proc file, in bytes; None where there is no such file or line."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(":")
        if name == field:
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


def generator_floor(model: Any, config: dict[str, Any], batch: int, direction: str | None = None) -> int | None:
    """Bytes the generator's largest layer needs on a batch of ``batch`` samples (see :func:`activation_floor`;
    an image-to-image one translating ``direction``), from a pass on the meta device; None for point data, or for
    a network that cannot be built or run there (a third-party one needing real tensors), which training and
    translating then meet themselves. A side the plugin's build refuses raises its own :class:`GanzooError`."""
    import torch

    from ganzoo import build, sampling
    from ganzoo.errors import GanzooError

    if config.get("data_kind") == "vectors" or "image_size" not in config:
        return None
    try:
        with torch.device("meta"):
            network = build.build_generator(model, config)
        with torch.no_grad():
            if model.task == "image-to-image":
                images = torch.empty(batch, int(config["channels"]), int(config["image_size"]),
                                     int(config["image_size"]), device="meta")
                return activation_floor(network, lambda: network.translate(images, direction))
            return activation_floor(network, lambda: sampling.generate(model, config, network, batch, batch_size=batch,
                                                                        inference=False, checked=False))
    except GanzooError:  # the plugin's own refusal (a side its network cannot take): said before anything else
        raise
    except Exception:  # a network the meta device cannot take: training or translating meets the size itself
        return None


def refuse_training_too_large(model: Any, config: dict[str, Any], device: "torch.device", batch: int,
                              sharing: int = 1) -> None:
    """Refuse, before any network or image takes memory, an image size and batch whose generator's largest layer
    alone needs more than ``device`` has free, for each of the ``sharing`` processes that share it (``--devices``
    on one machine's CPU): on the CPU the system would kill a process mid-step instead of torch raising an error
    that could be reported."""
    from ganzoo.errors import GanzooError

    needed = generator_floor(model, config, batch)
    free = free_bytes(device, sharing) if needed is not None else None
    if needed is not None and free is not None and needed > free:
        each = f" for each of the {sharing} processes sharing it" if sharing > 1 else ""
        raise GanzooError(f"--image-size {config['image_size']} with a batch of {batch} needs at least "
                          f"{needed / 2**30:.1f} GiB for the generator's largest layer alone, more than the "
                          f"{free / 2**30:.1f} GiB free on {device}{each}; use a smaller --image-size or --batch-size.")
