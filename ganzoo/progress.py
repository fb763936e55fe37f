"""The rich progress bar of a training run: epoch, step, losses, D(x), D(G(z)), images/s and ETA."""

from __future__ import annotations

from typing import Any

SHOWN_LIMIT = 6


def format_stats(stats: dict[str, float]) -> str:
    """A compact one-line summary of the latest logged losses and throughput."""
    skip = {"epoch", "step", "images_per_s"}
    parts = [f"{k} {v:.3f}" for k, v in stats.items() if k not in skip][:SHOWN_LIMIT]
    if "images_per_s" in stats:
        parts.append(f"{stats['images_per_s']:,.0f} img/s")
    return "  ".join(parts)


class TrainingProgress:
    """A context manager around :class:`rich.progress.Progress` with one bar for the whole run."""

    def __init__(self, console: Any, epochs: int, steps_per_epoch: int, enabled: bool = True, first_epoch: int = 0) -> None:
        self.epochs, self.steps_per_epoch, self.enabled = epochs, steps_per_epoch, enabled
        self.console, self.first_epoch = console, first_epoch
        self.progress: Any = None

    def __enter__(self) -> "TrainingProgress":
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[stats]}"),
            console=self.console, disable=not self.enabled,
        )
        self.progress.__enter__()
        total = self.epochs * self.steps_per_epoch
        self.task = self.progress.add_task(
            "train", total=total, completed=self.first_epoch * self.steps_per_epoch,
            epoch=min(self.first_epoch + 1, self.epochs), epochs=self.epochs, stats="",
        )
        return self

    def update(self, epoch: int, step_in_epoch: int, stats: dict[str, float]) -> None:
        """Move the bar to ``step_in_epoch`` of (0-based) ``epoch`` and show ``stats``."""
        self.progress.update(self.task, completed=epoch * self.steps_per_epoch + step_in_epoch,
                             epoch=epoch + 1, stats=format_stats(stats))

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)
