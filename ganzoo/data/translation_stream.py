"""Translation sets too big to hold in memory, read from disk batch by batch by DataLoader workers.

edges2shoes (49,825 pairs) and edges2handbags (138,567 pairs) decoded at the load size 286 would
take about 24 and 68 GB as uint8. When the decoded set would exceed ``max_memory_gb`` (or with
``stream=True``) :func:`ganzoo.data.translation.load_translation` returns a
:class:`StreamedTranslationData` instead: only the file lists stay in memory.

Each epoch's random draws (order, crop corners, flips) come from the engine's generator exactly as
for the in-memory set (:meth:`~ganzoo.data.translation.TranslationSet.draws`); the main process
turns them into batches of jobs (the batch sampler), and persistent worker processes decode,
resize to the load size and crop each job with the same code as the in-memory path, so batches
match it pixel for pixel. Workers hand back uint8 crops (pinned on CUDA, prefetched); the main
process moves them to the device and scales them to [-1, 1]. A file that cannot be decoded is
replaced by the next readable one, with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ganzoo.data import memory_budget_gb
from ganzoo.data.decoding import check_data_workers, default_workers
from ganzoo.data.translation import (PICTURE_PAIRS, TranslationFiles, TranslationSet, centre_preview, crop,
                                     decode_set, load_size, read_image, to_unit, undecodable)
from ganzoo.errors import GanzooError
from ganzoo.specs import DatasetInfo

if TYPE_CHECKING:
    import torch

#: Batches each worker prepares ahead.
PREFETCH_BATCHES = 4


def streaming_note(files: TranslationFiles, image_size: int, config: dict[str, Any]) -> str | None:
    """The line saying why the set is streamed, or None to hold it in memory (``stream`` and ``max_memory_gb``)."""
    mode, budget = config.get("stream", "auto"), memory_budget_gb(config)
    if not (mode == "auto" or isinstance(mode, bool)):
        raise GanzooError(f"stream must be auto, True or False, got {mode!r}; e.g. --set stream=True.")
    check_data_workers(config.get("data_workers"))
    need = files.decoded_bytes(image_size) / 1e9
    if mode is False or (mode == "auto" and need <= budget):
        return None
    what = f"{len(files.a)} image pairs" if files.paired else f"{len(files.a) + len(files.b)} images"
    why = "stream=True" if mode is True else f"over max_memory_gb={budget:g}"
    return f"streaming {what} from disk (would need {need:.1f} GB in memory; {why})"


@dataclass(frozen=True)
class _Decoder:
    """The map-style dataset each worker holds: ``decoder[job]`` reads, resizes and crops one example.

    A job is one row of an epoch's draws: ``(index_a, top_a, left_a, flip_a, index_b, top_b, left_b, flip_b)``.
    """

    files: TranslationFiles
    size: int

    def __len__(self) -> int:
        return len(self.files.a)

    def __getitem__(self, job: tuple[Any, ...]) -> tuple["torch.Tensor", "torch.Tensor"]:
        if self.files.paired:
            a, b = self._read(self.files.a, job[0], halves=True)
        else:
            (a,), (b,) = self._read(self.files.a, job[0], halves=False), self._read(self.files.b, job[4], halves=False)
        return self._crop(a, job[1:4]), self._crop(b, job[5:8])

    def _read(self, files: tuple[Path, ...], index: int, halves: bool) -> Any:
        """The file at ``index``, or the next readable one after it (each unreadable one is skipped with a warning);
        when none is, the error says why the first two were not."""
        reasons: dict[Path, str] = {}
        for offset in range(len(files)):
            path = files[(index + offset) % len(files)]
            read, reason = read_image(path, load_size(self.size), halves)
            if reason is None:
                return read
            reasons[path] = reason
        raise undecodable(files, tuple(reasons.get(path) for path in files))

    def _crop(self, array: Any, box: tuple[Any, ...]) -> "torch.Tensor":
        import torch

        top, left, flip = (torch.tensor([value]) for value in box)
        return crop(torch.from_numpy(array)[None], torch.zeros(1, dtype=torch.long), top, left, flip, self.size)[0]


def _plain_warnings(worker_id: int) -> None:
    """A worker's start: a skipped file is shown as ``warning: Skipped FILE: why.``, as the training process shows
    those of an in-memory set, rather than with the worker's source line."""
    import sys
    import warnings

    from ganzoo.data.decoding import BadImageWarning

    shown = warnings.showwarning

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, BadImageWarning):
            print(f"warning: {message}", file=sys.stderr, flush=True)
        else:
            shown(message, category, *args, **kwargs)

    warnings.showwarning = show


def worker_error(exc: GanzooError) -> GanzooError:
    """The error a DataLoader worker raised, with its class and its whole message (of one line or several; other
    attributes stay behind in the worker). Torch hands it on as an error of the same class whose text is "Caught
    NAME in DataLoader worker process 0. Original Traceback ... module.NAME: MESSAGE". One raised in this process
    (no workers) is returned as it is."""
    text = str(exc)
    if not text.startswith("Caught "):
        return exc
    marker = f"\n{type(exc).__module__}.{type(exc).__qualname__}: "
    at = text.rfind(marker)  # the traceback's last line names the class; the message follows it to the end
    message = text[at + len(marker):].rstrip() if at >= 0 else text.rstrip().splitlines()[-1]
    try:
        return type(exc)(message)
    except Exception:  # a subclass that takes other arguments: its message at least
        return GanzooError(message)


class _Plan:
    """The DataLoader's batch sampler: the current epoch's batches of jobs, set in the main process before each pass.

    Persistent workers keep only the static file lists; the plan is read where the sampler runs.
    """

    def __init__(self) -> None:
        self.batches: list[list[tuple[Any, ...]]] = []

    def __iter__(self) -> Iterator[list[tuple[Any, ...]]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


@dataclass
class StreamedTranslationData(TranslationSet):
    """A paired or unpaired set read from disk each epoch, served as the same ``{"a", "b"}`` batches as in memory."""

    name: str
    info: DatasetInfo
    files: TranslationFiles
    image_size: int
    flip: bool = True
    workers: int | None = None
    device: str = "cpu"
    notes: tuple[str, ...] = ()
    _plan: _Plan = field(default_factory=_Plan, init=False, repr=False)
    _loader: Any = field(default=None, init=False, repr=False)

    def sizes(self) -> tuple[int, int]:
        return len(self.files.a), len(self.files.a if self.files.paired else self.files.b)

    def to(self, device: "torch.device | str") -> "StreamedTranslationData":
        """A copy whose batches land on ``device`` (pinned host memory first when it is a CUDA device)."""
        return replace(self, device=str(device))

    def loader(self) -> Any:
        """The DataLoader (made once): workers, pinned memory on CUDA, persistent workers and prefetching."""
        if self._loader is None:
            import torch
            from torch.utils.data import DataLoader

            workers = default_workers() if self.workers is None else int(self.workers)
            ahead = {"persistent_workers": True, "prefetch_factor": PREFETCH_BATCHES} if workers else {}
            pin = torch.device(self.device).type == "cuda"
            self._loader = DataLoader(_Decoder(self.files, self.image_size), batch_sampler=self._plan,  # type: ignore[arg-type]
                                      num_workers=workers, pin_memory=pin, worker_init_fn=_plain_warnings, **ahead)
        return self._loader

    def batches(self, batch_size: int, generator: "torch.Generator") -> Iterator[dict[str, "torch.Tensor"]]:
        """One epoch of jittered batches in [-1, 1] on the device; the draws come from ``generator`` at the epoch's start."""
        import torch

        jobs = list(zip(*(t.tolist() for t in self.draws(generator))))
        self._plan.batches = [jobs[s * batch_size:(s + 1) * batch_size] for s in range(self.steps_per_epoch(batch_size))]
        device = torch.device(self.device)
        try:
            for a, b in self.loader():
                yield {"a": to_unit(a.to(device, non_blocking=True)), "b": to_unit(b.to(device, non_blocking=True))}
        except GanzooError as exc:  # raised in a worker: torch hands it on with the worker's traceback as its text
            raise worker_error(exc) from None

    def preview(self, num: int = PICTURE_PAIRS) -> dict[str, "torch.Tensor"]:
        """The first ``num`` images of each side, centre-cropped, unflipped, in [-1, 1] (decoded now)."""
        tensors = decode_set(self.files, load_size(self.image_size), num)
        return centre_preview({k: v.to(self.device) for k, v in tensors.items()}, self.image_size, num)
