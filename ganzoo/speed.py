"""Opt-in speed settings of a training run: mixed precision, channels-last, torch.compile, TF32.

All are off by default, and off means the loop runs exactly as without this module (the
bit-exact resume tests rely on it). ``precision`` puts ``torch.autocast`` around each stage's
loss computation; ``fp16`` adds one GradScaler per optimizer, whose overflowed steps the
divergence guard undoes on the device without counting them as bad steps (see
:class:`ganzoo.guard.StepGuard`), and whose state checkpoints keep for an exact resume. ``compile`` compiles each network in place
(``nn.Module.compile``) so weights, checkpoints and generator files keep their names.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from ganzoo.errors import GanzooError

PRECISIONS = ("fp32", "bf16", "fp16")


def validate(config: dict[str, Any]) -> None:
    """Refuse an unknown precision with one sentence."""
    if config.get("precision", "fp32") not in PRECISIONS:
        raise GanzooError(f"precision must be one of {', '.join(PRECISIONS)}, got {config.get('precision')!r}.")


def prepare_networks(config: dict[str, Any], device: Any, *networks: Any) -> None:
    """Apply channels-last, TF32 and torch.compile as the config asks (in place)."""
    import torch

    if device.type == "cuda" and config.get("tf32"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    for net in networks:
        if config.get("channels_last"):
            net.to(memory_format=torch.channels_last)
        if config.get("compile"):
            net.compile()


def autocast(config: dict[str, Any], device: Any) -> Any:
    """The autocast context of the run's precision (a no-op for fp32)."""
    import torch

    precision = config.get("precision", "fp32")
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def grad_scalers(config: dict[str, Any], device: Any, stages: Any) -> dict[str, Any]:
    """One GradScaler per optimizer for fp16; none otherwise."""
    import torch

    if config.get("precision", "fp32") != "fp16":
        return {}
    return {stage: torch.amp.GradScaler(device.type) for stage in stages}


def to_channels_last(batch: dict[str, Any]) -> dict[str, Any]:
    """Images of a batch in channels-last layout (other entries unchanged)."""
    import torch

    return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 and v.is_floating_point() else v
            for k, v in batch.items()}
