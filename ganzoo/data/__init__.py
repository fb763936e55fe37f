"""Datasets held in memory as tensors and served in shuffled batches on the training device.

Images are stored once as uint8 (N, C, H, W) at the size the model wants, then each batch is
sliced, converted to float and scaled to [-1, 1] on the device: no per-batch image decoding.
A set larger than the device's budget (``max_memory_gb``) stays on the host, where a large
image folder is mapped from the cache of decoded folders, and each batch's rows are gathered
there and copied to the device (through pinned memory on CUDA, without waiting for the copy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterator

from ganzoo.errors import GanzooError
from ganzoo.specs import DatasetInfo

if TYPE_CHECKING:
    import torch


def memory_budget_gb(config: dict[str, Any]) -> float:
    """``max_memory_gb`` of ``config`` (default 4), refused in one sentence unless a positive number."""
    budget = config.get("max_memory_gb", 4.0)
    if not isinstance(budget, (int, float)) or isinstance(budget, bool) or not 0 < budget < math.inf:
        raise GanzooError(f"max_memory_gb must be a positive number of gigabytes, got {budget!r}.")
    return float(budget)


@dataclass
class InMemoryData:
    """A whole dataset as tensors: ``real`` (uint8 images or float vectors) and optional ``label``.

    ``notes``: lines the training run shows the user about how the data was loaded (e.g. from a cache).
    ``target``: the device batches are copied to when the tensors stay on the host (see :meth:`to`).
    """

    name: str
    info: DatasetInfo
    tensors: dict[str, "torch.Tensor"]
    notes: tuple[str, ...] = ()
    target: "torch.device | None" = None

    def __len__(self) -> int:
        return int(self.tensors["real"].shape[0])

    def nbytes(self) -> int:
        """Bytes the samples (``real``) take."""
        return self.tensors["real"].numel() * self.tensors["real"].element_size()

    def to(self, device: "torch.device | str", max_bytes: int | None = None) -> "InMemoryData":
        """A copy with every tensor on ``device``, or, for images over ``max_bytes``, left on the host
        with each batch copied to ``device`` (:attr:`target`)."""
        import torch

        device = torch.device(device)
        if max_bytes is None or self.info.kind != "images" or self.nbytes() <= max_bytes:
            return replace(self, tensors={k: v.to(device) for k, v in self.tensors.items()}, target=None)
        return replace(self, target=device)

    def fit_images(self, image_size: int, channels: int) -> "InMemoryData":
        """Resize (antialiased) and convert channels once, so batches need no per-step work."""
        if self.info.kind != "images":
            return self
        from ganzoo.data.transforms import convert_channels, resize_uint8

        images = self.tensors["real"]
        images = convert_channels(images, channels)
        if images.shape[-1] != image_size or images.shape[-2] != image_size:
            images = resize_uint8(images, image_size)
        info = replace(self.info, channels=channels, image_size=image_size)
        return replace(self, info=info, tensors={**self.tensors, "real": images})

    def steps_per_epoch(self, batch_size: int) -> int:
        """Full batches in one pass (the last partial batch is dropped, as GAN training usually does)."""
        steps = len(self) // batch_size
        if steps == 0:
            raise GanzooError(
                f"Dataset {self.name!r} has {len(self)} samples, fewer than the batch size {batch_size}; lower --batch-size."
            )
        return steps

    def batches(self, batch_size: int, generator: "torch.Generator",
                part: tuple[int, int] = (0, 1)) -> Iterator[dict[str, "torch.Tensor"]]:
        """Shuffled full batches for one epoch; ``generator`` (CPU) fixes the order.

        ``part=(rank, processes)``: process ``rank``'s slice of each batch of ``batch_size`` rows
        (every process draws the same order and takes ``batch_size / processes`` rows of it).
        """
        import torch

        order = torch.randperm(len(self), generator=generator)
        if self.target is None:
            order = order.to(self.tensors["real"].device, non_blocking=True)
        is_images = self.info.kind == "images"
        rank, processes = part
        rows = batch_size // processes
        for step in range(self.steps_per_epoch(batch_size)):
            start = step * batch_size + rank * rows
            index = order[start : start + rows]
            if self.target is None:
                batch = {key: value.index_select(0, index) for key, value in self.tensors.items()}
            else:
                batch = {key: self._copied_rows(value, index) for key, value in self.tensors.items()}
            if is_images:
                batch["real"] = batch["real"].float().div_(127.5).sub_(1.0)
            yield batch

    def _copied_rows(self, tensor: "torch.Tensor", index: "torch.Tensor") -> "torch.Tensor":
        """``tensor``'s rows ``index``, gathered on the host and copied to :attr:`target`.

        On CUDA the rows land in pinned memory and the copy does not wait: torch's pinned-memory
        cache keeps a buffer until the copy that reads it has finished.
        """
        import torch

        pinned = self.target.type == "cuda"
        rows = torch.empty((len(index), *tensor.shape[1:]), dtype=tensor.dtype, pin_memory=pinned)
        torch.index_select(tensor, 0, index, out=rows)
        return rows.to(self.target, non_blocking=pinned)
