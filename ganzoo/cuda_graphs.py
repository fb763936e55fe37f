"""Opt-in CUDA graph replay of the training stages (``cuda_graphs``).

A small GAN on a fast GPU is limited by the host launching its kernels one by one, not by the
GPU: a DCGAN step at 64 px launches several hundred. With ``cuda_graphs`` each stage (the
discriminator's update, the generator's) runs eagerly for a few warm-up steps, is then captured
once as a CUDA graph (forward, backward, the divergence guard and the optimizer step) and
afterwards replayed: one launch per stage. The batch is copied into the graph's input tensors
first; the noise is drawn inside the graph from the CUDA generator, which advances on every
replay.

Replay repeats exactly what was captured, so everything a stage does must be tensor work on the
GPU with nothing decided on the host from step to step. That holds for the families and losses
in :data:`SUPPORTED_FAMILIES` and :data:`SUPPORTED_LOSSES` without step-dependent remedies;
:func:`unsupported_reason` names what stands in the way otherwise. fp16 (its GradScaler keeps
host-side state) and multi-process runs are not supported either. Hooks that other plugins add
to these stages (``after_step``) are captured too, so they must not read values on the host.
"""

from __future__ import annotations

from typing import Any, Callable

from ganzoo.specs import Losses

#: Families whose stages are plain tensor work (the standard adversarial step).
SUPPORTED_FAMILIES = ("gan", "dcgan")
#: Losses without host-side state or step-dependent settings.
SUPPORTED_LOSSES = ("ns", "minimax", "lsgan", "hinge", "wgan", "wgan-gp", "dragan")
#: Settings that change on the host during training (annealed noise, the lr schedule) and so cannot be replayed.
DYNAMIC_SETTINGS = ("instance_noise", "decay_epochs")
#: Eager steps per stage before its capture (lazy optimizer state, cuDNN autotuning, compilation).
WARMUP_STEPS = 3


def unsupported_reason(family: str, config: dict[str, Any], device_type: str, processes: int) -> str | None:
    """Why ``config`` cannot be replayed as CUDA graphs, or ``None`` when it can."""
    if device_type != "cuda":
        return "CUDA graphs need a CUDA device"
    if processes > 1:
        return "CUDA graphs are not supported with several processes"
    if family not in SUPPORTED_FAMILIES:
        return f"CUDA graphs support the {' and '.join(SUPPORTED_FAMILIES)} families, not {family}"
    if config.get("loss") not in SUPPORTED_LOSSES:
        return f"CUDA graphs support the losses {', '.join(SUPPORTED_LOSSES)}, not {config.get('loss')}"
    if config.get("precision") == "fp16":
        return "CUDA graphs do not support fp16 (its GradScaler decides on the host); use bf16"
    if config.get("with"):
        return f"CUDA graphs do not support --with {', '.join(config['with'])}"
    if config.get("reuse_fake"):
        return "CUDA graphs capture each stage alone, so the generator's stage cannot reuse the fake of D's (reuse_fake)"
    dynamic = [name for name in DYNAMIC_SETTINGS if config.get(name)]
    if dynamic:
        return f"CUDA graphs do not support {', '.join(dynamic)} (it changes during training)"
    return None


def make_capturable(optimizers: dict[str, Any]) -> None:
    """Switch torch optimizers to ``capturable`` mode, which graph capture of ``step()`` requires."""
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            if "capturable" in group:
                group["capturable"] = True


class StageGraphs:
    """Runs each training stage eagerly ``WARMUP_STEPS`` times, then captures it and replays the graph."""

    def __init__(self, guard: Any) -> None:
        self.guard = guard
        self.eager_runs: dict[str, int] = {}
        self.captured: dict[str, tuple[Any, dict[str, Any], Losses, tuple[str, ...], Any]] = {}

    def run(self, stage: str, batch: dict[str, Any], step: int, eager: Callable[[dict[str, Any]], Losses]) -> Losses:
        """One ``stage`` update on ``batch`` (the guard's record queued as step ``step``)."""
        entry = self.captured.get(stage)
        if entry is None:
            if self.eager_runs.get(stage, 0) < WARMUP_STEPS:
                self.eager_runs[stage] = self.eager_runs.get(stage, 0) + 1
                return self._on_side_stream(eager, batch)
            entry = self._capture(stage, batch, eager)
        graph, inputs, losses, names, record = entry
        if any(inputs[key].shape != value.shape for key, value in batch.items()):
            return eager(batch)  # a batch of another size: run it eagerly
        for key, value in batch.items():
            inputs[key].copy_(value)
        graph.replay()
        self.guard.add_record(step, stage, names, record.clone())
        return losses

    @staticmethod
    def _on_side_stream(eager: Callable[[dict[str, Any]], Losses], batch: dict[str, Any]) -> Losses:
        """Warm-up runs go on a side stream, as torch's capture recipe asks."""
        import torch

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            losses = eager(batch)
        torch.cuda.current_stream().wait_stream(side)
        return losses

    def _capture(self, stage: str, batch: dict[str, Any], eager: Callable[[dict[str, Any]], Losses]) -> tuple:
        """Capture ``stage`` on a copy of ``batch``; the capture itself computes nothing, so replay once after it."""
        import torch

        from ganzoo.errors import GanzooError
        from ganzoo.out_of_memory import is_out_of_memory

        inputs = {key: value.clone() for key, value in batch.items()}
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                losses = eager(inputs)
        except RuntimeError as error:
            if is_out_of_memory(error):  # the capture's memory pool did not fit: the CLI says so in its own sentence
                raise
            raise GanzooError(f"Capturing the {stage} step as a CUDA graph failed ({str(error).splitlines()[0]}); "
                              "something in it waits for the GPU, such as a plugin hook reading a value: "
                              "drop --cuda-graphs.") from None
        _, _, names, record = self.guard.take_last_record()
        entry = (graph, inputs, losses, names, record)
        self.captured[stage] = entry
        return entry
