"""Opt-in speed settings of a training run: mixed precision, channels-last, torch.compile, TF32.

All are off by default, and off means the loop runs exactly as without this module (the
bit-exact resume tests rely on it). ``precision`` puts ``torch.autocast`` around each stage's
loss computation; ``fp16`` adds one GradScaler per optimizer, whose overflowed steps the
divergence guard undoes on the device without counting them as bad steps (see
:class:`ganzoo.guard.StepGuard`), and whose state checkpoints keep for an exact resume. ``compile`` compiles each network in place
(``nn.Module.compile``; the parts a family calls directly, see :func:`compile_targets`) so weights,
checkpoints and generator files keep their names.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from ganzoo.errors import GanzooError

PRECISIONS = ("fp32", "bf16", "fp16")
#: ``fast`` multiplies a batch of at least FAST_MIN_BATCH by this, and the learning rates by its square root.
FAST_BATCH_FACTOR, FAST_MIN_BATCH = 4, 32


def validate(config: dict[str, Any]) -> None:
    """Refuse an unknown precision with one sentence."""
    if config.get("precision", "fp32") not in PRECISIONS:
        raise GanzooError(f"precision must be one of {', '.join(PRECISIONS)}, got {config.get('precision')!r}.")


def expand_fast(config: dict[str, Any], overrides: dict[str, Any], device_type: str, family: str,
                processes: int = 1, *, standard_step: bool) -> dict[str, Any]:
    """Fill in the ``fast`` preset (in place) where the user set nothing explicitly; return the settings it changed,
    for the run to say what ``--fast`` chose.

    bf16, fused Adam, TF32 and torch.compile (only on CUDA: on the CPU it costs minutes of
    compiling for little). Not channels-last: on an H100 it slowed DCGAN at 64 px, and with
    bf16 and compile torch 2.11 fails in DCGAN's transposed-convolution backward. CUDA graphs
    where the run supports them (:func:`ganzoo.cuda_graphs.unsupported_reason`). On the CPU,
    ``reuse_fake`` for models of the standard unconditional step (``standard_step``) with one D step per G step: one generator forward
    fewer per step (measured on the CPU only; on CUDA it cannot join the graphs). And on CUDA a
    batch of at least ``FAST_MIN_BATCH`` made ``FAST_BATCH_FACTOR`` times larger with the learning
    rates scaled by its square root, the usual rule for Adam. Models trained at small batches on
    purpose (CycleGAN and pix2pix at 1, with instance norm) keep theirs, and so does every run on
    the CPU: its convolutions are compute-bound, so a 4x batch raised no images/s there and its
    4x fewer steps left a 2-epoch MNIST DCGAN far behind (digit Frechet 382 against 228).
    """
    before = dict(config)
    _fill_fast(config, overrides, device_type, family, processes, standard_step)
    return {key: value for key, value in config.items() if before.get(key) != value}


def _fill_fast(config: dict[str, Any], overrides: dict[str, Any], device_type: str, family: str, processes: int,
               standard_step: bool) -> None:
    """The body of :func:`expand_fast`: set the preset's settings in ``config``."""
    import math

    if not config.get("fast"):
        return
    preset = {"precision": "bf16", "fused_adam": True, "tf32": True,
              "compile": device_type == "cuda"}
    config.update({key: value for key, value in preset.items() if key not in overrides})
    if "cuda_graphs" not in overrides:
        from ganzoo.cuda_graphs import unsupported_reason

        config["cuda_graphs"] = unsupported_reason(family, config, device_type, processes) is None
    if "reuse_fake" not in overrides and device_type == "cpu":
        config["reuse_fake"] = standard_step and int(config["d_steps"]) == 1 and not config.get("warmup_d_steps")
    if device_type != "cuda" or "batch_size" in overrides or int(config["batch_size"]) < FAST_MIN_BATCH:
        return
    config["batch_size"] = int(config["batch_size"]) * FAST_BATCH_FACTOR
    for key in ("lr", "lr_g", "lr_d"):
        if key not in overrides and config.get(key) is not None:
            config[key] = float(config[key]) * math.sqrt(FAST_BATCH_FACTOR)


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
            for part in compile_targets(net):
                part.compile()


def compile_targets(network: Any) -> list[Any]:
    """The modules whose calls training goes through: ``network``, or the parts its ``compile_units`` names.

    ``nn.Module.compile`` compiles a module's own calls only. A network whose family calls its
    parts directly (CycleGAN's ``generator.ab``, ``discriminator.a``) names them in a
    ``compile_units`` class attribute; compiling the holder alone would leave them eager. The
    names are followed recursively (the EMA wrapper names ``online``, whose own units are taken).
    """
    units = getattr(type(network), "compile_units", ())
    missing = [name for name in units if not hasattr(network, name)]
    if missing:
        raise GanzooError(f"{type(network).__name__} names {missing[0]!r} in compile_units but has no such part; "
                          "fix its plugin, or train without --compile.")
    return [network] if not units else [part for name in units for part in compile_targets(getattr(network, name))]


def autocast(config: dict[str, Any], device: Any) -> Any:
    """The autocast context of the run's precision (a no-op for fp32)."""
    import torch

    precision = config.get("precision", "fp32")
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    # CUDA graphs replay the casts of the weights, so autocast must not keep cached copies of them
    return torch.autocast(device.type, dtype=dtype, cache_enabled=not config.get("cuda_graphs"))


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


def describe_optimizer(optimizer: Any) -> str:
    """The optimizer as built, for ``run.json``: ``"Adam (fused)"``, ``"Adam (foreach)"``, ``"RMSprop (foreach)"``. The
    ``fused_adam`` setting's default (None) is decided on the device, so only the built optimizer says which ran."""
    kernels = [kernel for kernel in ("fused", "foreach") if optimizer.defaults.get(kernel)]
    name = type(optimizer).__name__
    return f"{name} ({kernels[0]})" if kernels else name
