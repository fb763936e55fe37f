"""Drawing samples from a generator reproducibly and writing them as a PNG grid or an ``.npz`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ganzoo.errors import GanzooError
from ganzoo.specs import ModelSpec

SAMPLE_SUFFIXES = (".png", ".npz")


def noise(num: int, latent_dim: int, seed: int) -> "torch.Tensor":  # noqa: F821
    """Standard normal noise drawn on the CPU from ``seed``, so every device gets the same z."""
    import torch

    return torch.randn(num, latent_dim, generator=torch.Generator().manual_seed(seed))


def generate(model: ModelSpec, config: dict[str, Any], generator: Any, num: int, seed: int = 0,
             batch_size: int = 1000, labels: Any = None) -> "torch.Tensor":  # noqa: F821
    """``num`` samples on the generator's device in batches; returns them on that device."""
    import torch

    from ganzoo.plugin_manager import get_manager

    device = next(generator.parameters()).device
    z = noise(num, int(config["latent_dim"]), seed)
    parts = []
    with torch.inference_mode():
        for start in range(0, num, batch_size):
            part_labels = None if labels is None else labels[start : start + batch_size].to(device)
            parts.append(get_manager().hook.generate(
                model=model, config=config, generator=generator, num=min(batch_size, num - start),
                noise=z[start : start + batch_size].to(device, non_blocking=True), labels=part_labels,
            ))
    return torch.cat(parts)


def to_uint8(images: "torch.Tensor") -> "torch.Tensor":  # noqa: F821
    """Images in [-1, 1] to uint8 [0, 255], rounded, on their device."""
    import torch

    return images.add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def write_samples(path: Path, samples: "torch.Tensor", data_kind: str, real: Any = None,  # noqa: F821
                  labels: Any = None) -> None:
    """``.png``: a grid (images) or a scatter/histogram (vectors); ``.npz``: ``images`` uint8 or ``samples`` float."""
    suffix = path.suffix.lower()
    if suffix not in SAMPLE_SUFFIXES:
        raise GanzooError(f"Cannot write samples to {path}: use a .png (picture) or .npz (arrays) file name.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npz":
        arrays = {"images": to_uint8(samples).cpu().numpy()} if data_kind == "images" else {"samples": samples.float().cpu().numpy()}
        if labels is not None:
            arrays["labels"] = labels.cpu().numpy().astype(np.int64)
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
        return
    from ganzoo import visual

    if data_kind == "images":
        visual.save_image_grid(samples, path)
    else:
        visual.save_vector_plot(samples, real if real is not None else samples[:0], path, title=f"{len(samples)} samples")
