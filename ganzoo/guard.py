"""Divergence guard: an optimizer step whose loss, gradients or new weights are not finite is undone.

Design (no host synchronisation per step on a GPU):

* Before ``optimizer.step()`` the guard copies the parameters that have gradients and their
  optimizer state tensors, and checks the gradients with the fused kernel that AMP's GradScaler
  uses (``_amp_foreach_non_finite_check_and_unscale_`` with scale 1, which leaves them unchanged).
* The optimizer steps as usual. The new weights are checked the same way, and one device-side
  flag ``ok = loss finite and gradients finite and weights finite`` is formed.
* Every updated tensor is set to ``torch.where(ok, new, old)`` in place: bit-identical to the
  update when ``ok``, the exact previous value otherwise (state that the step created, such as
  Adam's moments on its first step, goes back to zeros, i.e. to a fresh state). ``where`` is used
  rather than arithmetic masking because ``0 * NaN`` is NaN.
* Nothing is read back: each step appends a small tensor (its loss terms and the two flags) to a
  pending list that :meth:`StepGuard.flush` reads with one transfer at log time.

With fused Adam (the default on the CPU and CUDA) the copies and ``where`` are not needed: the fused
kernel takes the flag itself (the ``found_inf`` argument GradScaler uses) and leaves weights,
moments and step counters untouched when the loss or the gradients are not finite. That saves
two kernels per parameter tensor and step, which on a GPU is most of the guard's cost. Adam's
update is bounded by its learning rate, so finite weights and gradients give finite weights;
should they not, the step is still recorded as bad, but not undone.

Zeroing the gradients would not be enough: Adam still moves the weights with its momentum and
decays its moments. Tensors an optimizer keeps on the host (torch's non-capturable ``step``
counters) cannot be restored without reading the flag, so on CUDA :func:`keep_state_on_device`
switches torch's optimizers to ``capturable`` mode; any host tensor left is restored after one
read of the flag (a sync, only for such optimizers). Python numbers in optimizer state and
``after_step`` hooks (e.g. an EMA) are not undone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

GRADIENTS, WEIGHTS = "gradients", "weights"


@dataclass
class BadStep:
    """One skipped update: its 1-based step, the stage and what was not finite."""

    step: int
    stage: str
    causes: list[str]

    def describe(self) -> str:
        """``"step 12 (discriminator): loss 'd_real' is nan"``."""
        return f"step {self.step} ({self.stage}): {', '.join(self.causes)}"


def keep_state_on_device(optimizer: Any, device: Any) -> None:
    """Make torch optimizers keep their step counters next to the weights on CUDA (and on the host elsewhere)."""
    import torch

    capturable = device.type == "cuda"
    for group in optimizer.param_groups:
        if "capturable" not in group or group.get("fused"):
            continue
        group["capturable"] = capturable
        for param in group["params"]:
            step = optimizer.state.get(param, {}).get("step")
            if isinstance(step, torch.Tensor):
                optimizer.state[param]["step"] = step.to(param.device if capturable else "cpu")


def _is_fused(optimizer: Any) -> bool:
    """Whether ``optimizer`` skips its own update when given ``found_inf`` (torch's fused Adam/AdamW/SGD)."""
    return bool(getattr(optimizer, "_step_supports_amp_scaling", False)) and all(
        group.get("fused") for group in optimizer.param_groups)


def _check_finite(tensors: list[Any], found: Any, one: Any) -> None:
    """Set ``found`` to 1 on the device when any element of ``tensors`` is NaN or inf."""
    import torch

    floats = [t for t in tensors if t.is_floating_point() and t.device == found.device]
    if floats:
        torch._amp_foreach_non_finite_check_and_unscale_(floats, found, one)


class StepGuard:
    """Backpropagates, steps and undoes non-finite updates; remembers each step's record for :meth:`flush`."""

    def __init__(self) -> None:
        self._pending: list[tuple[int, str, tuple[str, ...], Any]] = []

    def step(self, optimizer: Any, terms: dict[str, Any], step: int, stage: str, scaler: Any = None,
             average: Any = None) -> None:
        """``sum(terms).backward()`` and ``optimizer.step()``, applied only if everything stays finite.

        With an fp16 ``scaler`` the scaled sum is backpropagated and the gradients unscaled; an
        overflow is undone like any bad update but not recorded (the scaler lowers its scale).
        ``average`` (multi-process runs, :meth:`ganzoo.distributed.World.average`) is given the
        gradients, still scaled, and the loss values right after the backward, so that every
        process steps with the same gradients and takes the same decision.
        """
        import torch

        total = sum(terms.values())
        (total if scaler is None else scaler.scale(total)).backward()
        values = torch.stack([t.detach().float().reshape(()) for t in terms.values()])
        if average is not None:
            average([p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None] + [values])
            total = values.sum()
        if scaler is not None:
            scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            optimizer.step()
            return
        device = params[0].device
        with torch.no_grad():
            one = torch.ones(1, device=device)
            grads_bad, weights_bad = torch.zeros(1, device=device), torch.zeros(1, device=device)
            _check_finite([p.grad for p in params], grads_bad, one)
        if _is_fused(optimizer):
            with torch.no_grad():
                optimizer.found_inf = torch.maximum(grads_bad, (~torch.isfinite(total.detach())).float().reshape(1)).reshape(())
            try:
                optimizer.step()
            finally:  # only this step's flag: a later plain step() must not see it
                del optimizer.found_inf
            with torch.no_grad():
                _check_finite([p.detach() for p in params], weights_bad, one)
            self._finish(step, stage, terms, values, grads_bad, weights_bad, scaler)
            return
        with torch.no_grad():
            old_params = [p.detach().clone() for p in params]
            old_state = {(i, key): value.clone() for i, p in enumerate(params)
                         for key, value in optimizer.state.get(p, {}).items() if isinstance(value, torch.Tensor)}
        optimizer.step()
        with torch.no_grad():
            _check_finite([p.detach() for p in params], weights_bad, one)
            ok = (torch.isfinite(total.detach()) & (grads_bad + weights_bad == 0)).reshape(())
            host_ok: bool | None = None
            for param, old in zip(params, old_params):
                torch.where(ok, param, old, out=param)
            for i, param in enumerate(params):
                for key, value in optimizer.state.get(param, {}).items():
                    if not isinstance(value, torch.Tensor):
                        continue
                    old = old_state.get((i, key))
                    if value.device != ok.device:  # a host-side counter: needs the flag on the host
                        host_ok = bool(ok) if host_ok is None else host_ok
                        if not host_ok:
                            value.copy_(old if old is not None else torch.zeros_like(value))
                    else:
                        torch.where(ok, value, old if old is not None else torch.zeros_like(value), out=value)
        self._finish(step, stage, terms, values, grads_bad, weights_bad, scaler)

    def _finish(self, step: int, stage: str, terms: dict[str, Any], values: Any, grads_bad: Any, weights_bad: Any,
                scaler: Any) -> None:
        """Remember the step's record (loss values and both flags) and let an fp16 scaler adjust its scale."""
        import torch

        with torch.no_grad():
            if scaler is not None:  # an overflow is the scaler's business, and so are the weights it spoiled
                grads_bad, weights_bad = grads_bad * 0, weights_bad * (grads_bad == 0)
            record = torch.stack([*values, grads_bad[0], weights_bad[0]])
        if scaler is not None:
            scaler.update()
        self._pending.append((step, stage, tuple(terms), record))

    def take_last_record(self) -> tuple[int, str, tuple[str, ...], Any]:
        """Remove and return the newest pending record (CUDA graph capture keeps its tensor for the replays)."""
        return self._pending.pop()

    def add_record(self, step: int, stage: str, names: tuple[str, ...], record: Any) -> None:
        """Queue a record made outside :meth:`step` (a replayed CUDA graph's, copied) for :meth:`flush`."""
        self._pending.append((step, stage, names, record))

    def flush(self) -> list[BadStep]:
        """The bad steps since the last flush (one device-to-host transfer for all of them)."""
        import torch

        if not self._pending:
            return []
        rows = torch.cat([record for *_, record in self._pending]).tolist()
        bad, offset = [], 0
        for step, stage, names, record in self._pending:
            values = rows[offset : offset + len(names)]
            grads_bad, weights_bad = rows[offset + len(names)], rows[offset + len(names) + 1]
            offset += record.numel()
            causes = [f"loss {name!r} is {value}" for name, value in zip(names, values) if not math.isfinite(value)]
            if grads_bad:
                causes.append("gradients are not finite")
            if weights_bad:
                causes.append("the updated weights are not finite")
            if causes:
                bad.append(BadStep(step, stage, causes))
        self._pending.clear()
        return bad
