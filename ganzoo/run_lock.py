"""One training run per output folder at a time.

Two ``ganzoo train`` runs into one ``--out`` would interleave their checkpoints, weights and logs, and a
resume would then mix two runs. The run that writes holds an advisory lock on ``OUT/.ganzoo-train.lock``
(``flock``) from the moment it starts writing until it ends; the kernel drops the lock with the process,
so a run killed with ``kill -9`` leaves no stale lock behind. The file itself stays (removing a lock file
races with the next run taking it) and holds the process id of the last run, for the message. A run
looks (:func:`refuse_if_locked`) before its setup too, so that it is refused at once rather than after
minutes of loading, and checks again what it found once it holds the lock (see ``Trainer.run``).
Filesystems without ``flock`` (Lustre mounted ``noflock``, some network mounts) train unlocked.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Any, Iterator

from ganzoo.errors import GanzooError

LOCK_NAME = ".ganzoo-train.lock"


@contextlib.contextmanager
def hold_run_lock(out: Path) -> Iterator[None]:
    """Hold the training lock of run folder ``out`` (which must exist) for the block; refuse in one sentence when
    another process holds it. Without ``fcntl`` (Windows) or ``flock`` on this filesystem, runs are not locked."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(out / LOCK_NAME, "a+", encoding="ascii") as handle:
        if _take(fcntl, handle, out):
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
        yield


def refuse_if_locked(out: Path) -> None:
    """Refuse at once, before a run's setup, when another run holds ``out``'s lock (taken and given back here)."""
    try:
        import fcntl

        handle = open(out / LOCK_NAME, encoding="ascii")  # closed below; a reading handle can hold flock too
    except (ImportError, OSError):  # no lock file: no run has trained here since locks exist
        return
    with handle:
        _take(fcntl, handle, out)


def _take(fcntl: Any, handle: IO[str], out: Path) -> bool:
    """Lock ``handle`` without waiting: True when taken, False on a filesystem without ``flock``; the one sentence
    naming the holder when another process has it."""
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        raise GanzooError(f"Another 'ganzoo train' (process {holder or 'unknown'}) is writing to {out}; wait for "
                          f"it to end, or choose another --out folder.") from None
    except OSError:
        return False
    return True
