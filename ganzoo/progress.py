"""How a training run shows its progress: a rich bar on a terminal (epoch, step, losses, D(x),
D(G(z)), images/s and ETA), plain lines when the output goes to a file or a pipe."""

from __future__ import annotations

import time
from typing import Any

SHOWN_LIMIT = 10  # every term of the built-in families: CycleGAN logs ten (cycle and identity last)
PLAIN_EVERY_SECONDS = 60.0  # within a long epoch, one plain line at most this often


def format_stats(stats: dict[str, float]) -> str:
    """A compact one-line summary of the latest logged losses and throughput."""
    skip = {"epoch", "step", "images_per_s"}
    parts = [f"{k} {v:.3f}" for k, v in stats.items() if k not in skip][:SHOWN_LIMIT]
    if "images_per_s" in stats:  # a CycleGAN at 256 px on a CPU does under one image a second
        rate = stats["images_per_s"]
        parts.append(f"{rate:,.0f} img/s" if rate >= 10 else f"{rate:.2g} img/s")
    return "  ".join(parts)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


class TrainingProgress:
    """A context manager with one bar for the whole run (:class:`rich.progress.Progress`) on a terminal.

    Elsewhere (a log file, a pipe, a batch job) a live bar leaves only its last frame, cut to 80
    columns, so there it prints a line at the end of each epoch and at most every
    :data:`PLAIN_EVERY_SECONDS` within one.
    """

    def __init__(self, console: Any, epochs: int, steps_per_epoch: int, enabled: bool = True, first_epoch: int = 0) -> None:
        self.epochs, self.steps_per_epoch, self.enabled = epochs, steps_per_epoch, enabled
        self.console, self.first_epoch = console, first_epoch
        self.plain = enabled and console is not None and not console.is_terminal
        self.progress: Any = None
        self.start = self.last_line = time.monotonic()

    def __enter__(self) -> "TrainingProgress":
        if self.plain:
            return self
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        class BarThenStats(Progress):
            """The bar on one line and the latest losses on the next, so neither squeezes the other."""

            def get_renderables(self) -> Any:
                from rich.text import Text

                yield self.make_tasks_table(self.tasks)
                for task in self.tasks:
                    if task.fields.get("stats"):
                        yield Text(task.fields["stats"], no_wrap=True, overflow="ellipsis")

        self.progress = BarThenStats(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
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
        if self.plain:
            self._print_line(epoch, step_in_epoch, stats)
            return
        self.progress.update(self.task, completed=epoch * self.steps_per_epoch + step_in_epoch,
                             epoch=epoch + 1, stats=format_stats(stats))

    def step(self, epoch: int, step_in_epoch: int) -> None:
        """Move the bar to ``step_in_epoch`` of (0-based) ``epoch`` between the updates that bring new losses."""
        if self.progress is not None:
            self.progress.update(self.task, completed=epoch * self.steps_per_epoch + step_in_epoch, epoch=epoch + 1)

    def _print_line(self, epoch: int, step_in_epoch: int, stats: dict[str, float]) -> None:
        now = time.monotonic()
        if step_in_epoch < self.steps_per_epoch and now - self.last_line < PLAIN_EVERY_SECONDS:
            return
        self.last_line = now
        self.console.print(f"epoch {epoch + 1}/{self.epochs}  step {step_in_epoch}/{self.steps_per_epoch}  "
                           f"{_clock(now - self.start)}  {format_stats(stats)}", markup=False, soft_wrap=True)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)
