"""Decode a whole folder of image files into one uint8 array, with worker processes and a progress bar.

A folder of 200,000 JPEGs (CelebA) takes minutes to decode one file at a time, and a training run
on a GPU can spend longer loading the images than training an epoch on them. Here chunks of files
are decoded by a pool of worker processes (``min(8, cores per training process)``; translation
sets take ``data_workers``) straight into one preallocated array, so the decoded set is held
once, not as a list of arrays plus a stacked copy (unreadable files are dropped by shrinking it
in place). File order is kept. A file that cannot be decoded is reported as a
:class:`BadImageWarning` in the calling process, in file order, and left out, and other warnings
a worker's reader raises are shown there too; with warnings turned into errors
(``--strict-data``) the first bad file stops the load and the pending chunks are cancelled.
Workers ignore Ctrl-C: the calling process stops the pool.

While :func:`decoding_settings` names a console (the training run does, on its main process), a
transient bar counts the files; it also carries the run's ``data_workers`` to every decoding the
dataset's loader starts.
"""

from __future__ import annotations

import math
import os
import warnings
from contextlib import closing, contextmanager
from contextvars import ContextVar
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

#: Worker processes used when ``data_workers`` is not set (fewer on machines with fewer cores).
MAX_WORKERS = 8
#: Below this many files (and ``data_workers`` unset) decoding stays in the calling process: starting a pool costs more.
MIN_POOL_FILES = 512
#: Most files one worker decodes per task: large enough to amortise the hand-over, small enough for a smooth bar.
CHUNK_FILES = 256
#: Most decoded bytes per task, so the chunks in flight (two per worker) stay small next to the set.
CHUNK_BYTES = 32 * 2**20

_SETTINGS: ContextVar[tuple[Any, "int | None", bool]] = ContextVar("ganzoo_decoding_settings",
                                                                   default=(None, None, False))


class BadImageWarning(UserWarning):
    """An image file in a data folder that could not be used and was skipped; ``reason`` says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"Skipped {path}: {reason}.")
        self.path, self.reason = path, reason


class UnusableImage(ValueError):
    """Raised by a reader for a file that decodes but is not what the set needs (a pix2pix file that is no A|B pair)."""


def unreadable_reason(exc: Exception) -> str:
    """Why a file whose reading raised ``exc`` was skipped, as :class:`BadImageWarning` says it: the reader's own words
    for an :class:`UnusableImage`, else "not a readable image (what the decoder said)".

    Running out of memory (an image size too large for the machine) is not the file's fault: ``exc`` is raised
    again, so that the run ends saying so rather than calling every file unreadable.
    """
    from ganzoo.out_of_memory import is_out_of_memory

    if is_out_of_memory(exc):
        raise exc
    if isinstance(exc, UnusableImage):
        return str(exc)
    if isinstance(exc, FileNotFoundError) and exc.filename is not None and os.path.islink(exc.filename):
        return f"a link to {os.readlink(exc.filename)}, which is missing"
    return f"not a readable image ({str(exc) or type(exc).__name__})"


@contextmanager
def skipped_files_told(say: Callable[[str], None], strict: bool = False) -> Iterator[None]:
    """Within this block, each :class:`BadImageWarning` is told through ``say`` once the block ends, as
    ``warning: Skipped FILE: why.``, rather than as Python shows a warning (with the source line that raised it);
    other warnings are shown as usual. ``strict`` (``--strict-data``): the first such file ends the block in one
    sentence naming it. What loading ``train`` and ``eval`` do both tell the user this way."""
    from ganzoo.errors import GanzooError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error" if strict else "always", BadImageWarning)
        try:
            yield
        except BadImageWarning as exc:
            raise GanzooError(f"{exc.path}: {exc.reason}; fix or remove it, "
                              "or drop --strict-data to skip such files.") from None
    for warning in caught:
        if issubclass(warning.category, BadImageWarning):
            say(f"warning: {warning.message}")
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def default_workers(alone: bool = False) -> int:
    """``min(8, cores / processes on this node)``: torchrun's processes share the node's cores, unless
    this process decodes ``alone`` (the others waiting for it)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local_processes = 1 if alone else max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(MAX_WORKERS, cores // local_processes))


def check_data_workers(workers: Any) -> None:
    """Refuse a ``data_workers`` setting that is not None or a whole number of at least 0, in one sentence."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        from ganzoo.errors import GanzooError

        raise GanzooError(f"data_workers must be a whole number of at least 0 (0: decode in the training process), "
                          f"got {workers!r}.")


@contextmanager
def decoding_settings(console: Any = None, workers: int | None = None, alone: bool = False) -> Iterator[None]:
    """Within this block, decoding shows a bar on ``console`` (None: no bar) and, where its caller
    names no number of workers, uses ``workers`` (None: :func:`decode_files`'s default, taken with
    ``alone`` as in :func:`default_workers`)."""
    check_data_workers(workers)
    token = _SETTINGS.set((console, workers, alone))
    try:
        yield
    finally:
        _SETTINGS.reset(token)


Outcome = tuple[Any, "str | None", list[tuple[str, type[Warning]]]]


def _decode_chunk(read: Callable[[Path], Any], paths: Sequence[Path]) -> list[Outcome]:
    """For each file of ``paths``: ``(array, None, warnings)`` if readable, ``(None, reason, warnings)`` if not.

    Warnings the reader raises (PIL's DecompressionBombWarning, say) are handed back as
    ``(message, category)`` so the calling process shows them: a worker's own would be lost.
    """
    results: list[Outcome] = []
    for path in paths:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                array, reason = read(path), None
            except Exception as exc:  # PIL raises OSError, SyntaxError, EOFError, struct.error... on damaged files
                array, reason = None, unreadable_reason(exc)
        results.append((array, reason, [(str(w.message), w.category) for w in caught]))
    return results


def _ignore_interrupts() -> None:
    """Worker start-up: Ctrl-C is the calling process's to handle (it stops the pool)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _chunks(files: Sequence[Path], workers: int, file_bytes: int) -> list[Sequence[Path]]:
    """Chunks of at most :data:`CHUNK_FILES` files and :data:`CHUNK_BYTES`, at least four per worker when the set allows."""
    size = max(1, min(CHUNK_FILES, CHUNK_BYTES // max(1, file_bytes), math.ceil(len(files) / (4 * workers))))
    return [files[start : start + size] for start in range(0, len(files), size)]


def _chunk_results(read: Callable[[Path], Any], chunks: list[Sequence[Path]], workers: int) -> Iterator[list[Outcome]]:
    """Each chunk's results, in order: in this process, or from a pool of ``workers`` processes."""
    import multiprocessing

    if workers <= 1 or len(chunks) < 2 or multiprocessing.current_process().daemon:  # daemons may not start processes
        yield from (_decode_chunk(read, chunk) for chunk in chunks)
        return
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from ganzoo.errors import GanzooError

    workers = min(workers, len(chunks))
    pool = ProcessPoolExecutor(workers, initializer=_ignore_interrupts)
    pending = iter(chunks)
    finished = False
    try:  # two chunks per worker in flight: results are dropped once copied, so they never pile up
        in_flight = deque(pool.submit(_decode_chunk, read, chunk) for chunk in islice(pending, 2 * workers))
        while in_flight:
            try:
                results = in_flight.popleft().result()
            except BrokenProcessPool:
                raise GanzooError("A worker process decoding the images died (out of memory, or a crash inside the "
                                  "image library); free memory and run again (image-to-image models can also decode "
                                  "in the training process with --set data_workers=0).") from None
            in_flight.extend(pool.submit(_decode_chunk, read, chunk) for chunk in islice(pending, 1))
            yield results
        finished = True
    finally:
        if not finished:  # an error, Ctrl-C or a stop by the caller (--strict-data): no chunk is worth finishing
            _terminate_workers(pool)
        pool.shutdown(wait=True, cancel_futures=True)


def _terminate_workers(pool: Any) -> None:
    """Stop ``pool``'s workers now: ``terminate_workers`` from Python 3.14, the pool's process table before it."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def decode_files(read: Callable[[Path], Any], files: Sequence[Path], shape: tuple[int, ...],
                 workers: int | None = None, what: str = "images", parts_first: bool = False,
                 out: Any = None) -> tuple[Any, list[str | None]]:
    """Decode ``files`` with ``read`` into one uint8 array of (readable files, ``*shape``).

    ``read`` (a module-level function or a :func:`functools.partial` of one, so worker processes
    can receive it) turns a path into a uint8 array of ``shape`` or raises. Returns the array and,
    for each file, None if it was read or why it could not be. ``workers`` 0 or 1 decodes in this
    process; None takes :func:`default_workers` for :data:`MIN_POOL_FILES` files or more.
    ``parts_first``: ``shape`` is (parts, ...) and the array is laid out (parts, files, ...), so
    each part (a pair's A and B sides) is contiguous without a copy. ``out``: a uint8 array of
    (files, ``*shape``) to decode into instead (a memory-mapped file, say); the readable images
    fill its first rows and the returned array is a view of them.
    """
    import numpy as np
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console, workers_set, alone = _SETTINGS.get()
    workers = workers_set if workers is None else workers
    if workers is None:
        workers = default_workers(alone) if len(files) >= MIN_POOL_FILES else 1
    chunks = _chunks(files, max(1, workers), math.prod(shape))
    if out is None:
        out = np.empty((shape[0], len(files), *shape[1:]) if parts_first else (len(files), *shape), dtype=np.uint8)
        owned = True
    elif parts_first or out.dtype != np.uint8 or out.shape != (len(files), *shape):
        raise ValueError(f"out must be uint8 of shape {(len(files), *shape)}, got {out.dtype} {out.shape}")
    else:
        owned = False
    reasons: list[str | None] = []
    kept = 0
    with Progress(TextColumn(f"decoding {len(files):,} {what}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("eta"), TimeRemainingColumn(), console=console, transient=True,
                  disable=console is None or len(chunks) < 2) as bar, \
            closing(_chunk_results(read, chunks, workers)) as chunk_results:
        task = bar.add_task("decode", total=len(files))
        for chunk, results in zip(chunks, chunk_results, strict=True):  # strict: drains the pool, which ends calmly
            for path, (array, reason, raised) in zip(chunk, results):
                for message, category in raised:
                    warnings.warn(message, category, stacklevel=2)
                if reason is None:
                    if parts_first:
                        out[:, kept] = array
                    else:
                        out[kept] = array
                    kept += 1
                else:
                    warnings.warn(BadImageWarning(path, reason), stacklevel=2)
                reasons.append(reason)
            bar.advance(task, len(chunk))
    if not owned:
        return out[:kept], reasons
    if kept < len(files):  # drop the rows of unreadable files without holding a second copy
        out = np.ascontiguousarray(out[:, :kept]) if parts_first else _shrink(out, kept)
    return out, reasons


def _shrink(array: Any, rows: int) -> Any:
    """``array[:rows]``, shrinking its own buffer in place rather than copying it."""
    array.resize((rows, *array.shape[1:]), refcheck=False)
    return array
