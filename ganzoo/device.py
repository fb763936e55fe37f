"""Choosing the torch device: CUDA, then Apple MPS, then CPU, unless the user names one."""

from __future__ import annotations

from ganzoo.errors import GanzooError


def pick_device(name: str | None = None) -> "torch.device":  # noqa: F821
    """``name`` as a torch device ("cpu", "cuda", "cuda:1", "mps"), or the best available one."""
    import torch

    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GanzooError(f"Unknown device {name!r}; use cpu, cuda, cuda:N, mps or auto.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanzooError(f"Device {name!r} was asked for but this machine has no usable CUDA GPU; use --device cpu.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GanzooError(f"Device {name!r} was asked for but MPS is not available here; use --device cpu.")
    return device
