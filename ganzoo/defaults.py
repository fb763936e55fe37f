"""Core answers to the building hooks, registered last so any plugin can answer first."""

from __future__ import annotations

from typing import Any

from ganzoo.hookspecs import hookimpl
from ganzoo.specs import ModelSpec


def stage_lr(config: dict[str, Any], stage: str) -> float:
    """The learning rate of ``stage`` ("generator" or "discriminator"): ``lr_g``/``lr_d`` or ``lr``."""
    specific = config.get("lr_g" if stage == "generator" else "lr_d")
    return float(specific if specific is not None else config["lr"])


@hookimpl(trylast=True)
def build_optimizers(model: ModelSpec, config: dict[str, Any], generator: Any, discriminator: Any) -> dict[str, Any]:
    """Adam on each network with the configured betas: the fused kernel (``fused_adam``; by default on
    the CPU and CUDA, where torch has it; it also spares the divergence guard its copies), else the
    foreach one."""
    import torch

    betas = (float(config["beta1"]), float(config["beta2"]))
    fused = config.get("fused_adam")
    if fused is None:
        fused = next(generator.parameters()).device.type in ("cpu", "cuda")
    kernel = {"fused": True} if fused else {"foreach": True}
    return {
        stage: torch.optim.Adam(net.parameters(), lr=stage_lr(config, stage), betas=betas, **kernel)
        for stage, net in (("generator", generator), ("discriminator", discriminator))
    }


@hookimpl(trylast=True)
def generate(model: ModelSpec, config: dict[str, Any], generator: Any, num: int, noise: Any, labels: Any) -> Any:
    """Unconditional sampling: ``generator(noise)``."""
    return generator(noise)


@hookimpl(trylast=True)
def compute_losses(model: ModelSpec, config: dict[str, Any], generator: Any, discriminator: Any,
                   batch: dict[str, Any], stage: str, state: dict[str, Any]) -> Any:
    """Unconditional families (noise in, sample out) get the standard adversarial step for free."""
    if model.task != "unconditional":
        return None
    from ganzoo.adversarial import unconditional_losses

    return unconditional_losses(generator, discriminator, batch, stage, config, state)
