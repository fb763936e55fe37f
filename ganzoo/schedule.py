"""Learning-rate schedule shared by every family: constant, then linear decay to 0 (``decay_epochs``).

CycleGAN's paper trains 100 epochs at a constant rate and 100 more with the rate falling
linearly to 0; the same schedule steadies any GAN near its end, where a constant rate keeps the
generator circling the data instead of settling on it. The rate is set once per epoch in
``on_epoch_start``, so a resumed run picks up the same schedule.

A run resumed with other ``--epochs`` keeps its rate continuous: the schedule is re-planned from
the factor it had reached (an *anchor*, kept in the checkpointed ``state``). A falling rate falls
on from there to 0 at the new last epoch; a constant one stays so until the last ``decay_epochs``
epochs (or falls from the anchor when fewer are left). A run whose rate had already reached 0
would train nothing more; its new epochs start again at the full rate and decay as a fresh
schedule would (a warm restart).
"""

from __future__ import annotations

from typing import Any

from ganzoo.hookspecs import hookimpl
from ganzoo.specs import ModelSpec

#: Key in the plugins' ``state`` of the re-planned schedule's start: ``[epoch, factor]``.
ANCHOR_KEY = "lr_schedule_anchor"
#: Key in the plugins' ``state`` of a multiplier on every rate that a plugin lowers for its own reasons (BEGAN halves
#: it when its convergence measure stalls) in a ``tryfirst`` ``on_epoch_start``, before the schedule sets the rates.
LR_SCALE_KEY = "lr_scale"


def decay_epochs(config: dict[str, Any]) -> int:
    """Final epochs of linear decay: ``decay_epochs``, or half of ``epochs`` when it is ``None`` (CycleGAN's default)."""
    value = config.get("decay_epochs")
    return int(config["epochs"]) // 2 if value is None else int(value)


def lr_factor(epoch: int, epochs: int, decay_epochs: int, anchor: tuple[int, float] | None = None) -> float:
    """Learning-rate multiplier for the epoch that starts after ``epoch`` epochs: 1, then linear to 0 at ``epochs``.

    CycleGAN's 200 epochs: 1.0 for epochs 0-99, 1 - (e - 100)/100 from epoch 100 (0.5 at 150, 0 at 200).
    With ``anchor`` ``(start, factor)`` (a resumed run whose ``epochs`` changed) the schedule holds
    ``factor`` from ``start`` and falls linearly to 0 at ``epochs``: at once when ``factor`` < 1,
    over the last ``decay_epochs`` (but not before ``start``) when it is 1.
    """
    if decay_epochs <= 0:
        return 1.0
    start, factor = anchor if anchor is not None else (0, 1.0)
    falls_from = start if factor < 1.0 else max(start, epochs - decay_epochs)
    if epoch < falls_from:
        return factor
    return max(0.0, factor * (epochs - epoch) / (epochs - falls_from))


def anchor_on_resume(saved: dict[str, Any], config: dict[str, Any], done: int,
                     anchor: list[float] | None) -> tuple[list[float] | None, str | None]:
    """The schedule's anchor for a run resumed after ``done`` epochs, and a note for the user when it moved.

    ``saved`` is the config the run trained with, ``config`` the one it resumes with and ``anchor`` the
    anchor it had. Unchanged ``epochs`` (or no decay) keep the anchor; other ``epochs`` start the decay
    from the factor reached, or, when that is 0, from the full rate again.
    """
    if decay_epochs(config) <= 0 or int(saved["epochs"]) == int(config["epochs"]):
        return anchor, None
    old = tuple(anchor) if anchor is not None else None
    reached = lr_factor(done, int(saved["epochs"]), decay_epochs(saved), old)  # type: ignore[arg-type]
    if reached > 0.0:
        return [done, reached], None
    return [done, 1.0], (f"note: the run's learning-rate schedule ended at epoch {done}, where its rate reaches 0; the "
                         f"new epochs start again at the full rate and decay to 0 by epoch {config['epochs']}.")


@hookimpl
def on_epoch_start(model: ModelSpec, config: dict[str, Any], epoch: int, optimizers: dict[str, Any],
                   state: dict[str, Any]) -> None:
    """Set every optimizer's learning rate for this epoch: the schedule's factor times ``state[LR_SCALE_KEY]`` (a no-op
    at ``decay_epochs`` 0 with no scale)."""
    decay = decay_epochs(config)
    scale = float(state.get(LR_SCALE_KEY, 1.0))
    if decay <= 0 and scale == 1.0:
        return
    from ganzoo.defaults import stage_lr

    anchor = state.get(ANCHOR_KEY)
    factor = lr_factor(epoch, int(config["epochs"]), decay, tuple(anchor) if anchor is not None else None) * scale
    for stage, optimizer in optimizers.items():
        for group in optimizer.param_groups:
            group["lr"] = stage_lr(config, stage) * factor
