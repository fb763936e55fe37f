"""Datasets held in memory as tensors and served in shuffled batches on the training device.

Images are stored once as uint8 (N, C, H, W) at the size the model wants, then each batch is
sliced, converted to float and scaled to [-1, 1] on the device: no per-batch image decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterator

from ganzoo.errors import GanzooError
from ganzoo.specs import DatasetInfo

if TYPE_CHECKING:
    import torch


@dataclass
class InMemoryData:
    """A whole dataset as tensors: ``real`` (uint8 images or float vectors) and optional ``label``.

    ``notes``: lines the training run shows the user about how the data was loaded (e.g. from a cache).
    """

    name: str
    info: DatasetInfo
    tensors: dict[str, "torch.Tensor"]
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.tensors["real"].shape[0])

    def to(self, device: "torch.device | str") -> "InMemoryData":
        """A copy with every tensor on ``device``."""
        return replace(self, tensors={k: v.to(device) for k, v in self.tensors.items()})

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

        device = self.tensors["real"].device
        order = torch.randperm(len(self), generator=generator).to(device, non_blocking=True)
        is_images = self.info.kind == "images"
        rank, processes = part
        rows = batch_size // processes
        for step in range(self.steps_per_epoch(batch_size)):
            start = step * batch_size + rank * rows
            index = order[start : start + rows]
            batch = {key: value.index_select(0, index) for key, value in self.tensors.items()}
            if is_images:
                batch["real"] = batch["real"].float().div_(127.5).sub_(1.0)
            yield batch
