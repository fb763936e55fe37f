"""Learning-rate schedule shared by every family: constant, then linear decay to 0 (``decay_epochs``).

CycleGAN's paper trains 100 epochs at a constant rate and 100 more with the rate falling
linearly to 0; the same schedule steadies any GAN near its end, where a constant rate keeps the
generator circling the data instead of settling on it. The rate is set once per epoch in
``on_epoch_start``, so a resumed run picks up the same schedule.
"""

from __future__ import annotations

from typing import Any

from ganzoo.hookspecs import hookimpl
from ganzoo.specs import ModelSpec


def decay_epochs(config: dict[str, Any]) -> int:
    """Final epochs of linear decay: ``decay_epochs``, or half of ``epochs`` when it is ``None`` (CycleGAN's default)."""
    value = config.get("decay_epochs")
    return int(config["epochs"]) // 2 if value is None else int(value)


def lr_factor(epoch: int, epochs: int, decay_epochs: int) -> float:
    """Learning-rate multiplier for the epoch that starts after ``epoch`` epochs: 1, then linear to 0 at ``epochs``.

    CycleGAN's 200 epochs: 1.0 for epochs 0-99, 1 - (e - 100)/100 from epoch 100 (0.5 at 150, 0 at 200).
    """
    constant = epochs - decay_epochs
    if decay_epochs <= 0 or epoch < constant:
        return 1.0
    return max(0.0, 1.0 - (epoch - constant) / decay_epochs)


@hookimpl
def on_epoch_start(model: ModelSpec, config: dict[str, Any], epoch: int, optimizers: dict[str, Any],
                   state: dict[str, Any]) -> None:
    """Set every optimizer's learning rate for this epoch (a no-op at ``decay_epochs`` 0)."""
    decay = decay_epochs(config)
    if decay <= 0:
        return
    from ganzoo.defaults import stage_lr

    factor = lr_factor(epoch, int(config["epochs"]), decay)
    for stage, optimizer in optimizers.items():
        for group in optimizer.param_groups:
            group["lr"] = stage_lr(config, stage) * factor
