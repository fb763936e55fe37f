"""Tensor-level image conversions done once when a dataset is loaded."""

from __future__ import annotations

import torch

from ganzoo.errors import GanzooError


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Turn uint8 (N, C, H, W) images into ``channels`` channels (gray <-> RGB, RGBA drops alpha)."""
    have = images.shape[1]
    if have == channels:
        return images
    if channels == 3 and have == 1:
        return images.expand(-1, 3, -1, -1).contiguous()
    if channels == 3 and have == 4:
        return images[:, :3].contiguous()
    if channels == 1 and have in (3, 4):
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        gray = (images[:, :3].float() * weights).sum(1, keepdim=True)
        return gray.round().clamp(0, 255).to(torch.uint8)
    raise GanzooError(f"Cannot convert {have}-channel images to {channels} channels; use --set channels=1 or 3.")


def resize_uint8(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) images to ``size`` x ``size`` with antialiasing, in chunks to bound memory.

    Rounding and clamping work in place and the copy into the uint8 result casts, so each chunk
    makes one float temporary besides its input: loading MNIST at 64 px spends most of its time here.
    """
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8, device=images.device)
    for start in range(0, images.shape[0], chunk):
        part = torch.nn.functional.interpolate(images[start : start + chunk].float(), size=(size, size),
                                               mode="bilinear", antialias=True, align_corners=False)
        out[start : start + chunk] = part.round_().clamp_(0, 255)
    return out
