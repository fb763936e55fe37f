"""What a training process does when its terminal hangs up (the window or the ssh session closed).

The system then sends SIGHUP, whose default kills the process unsaved, and every later write to that terminal
fails with EIO. ganzoo stops the run as on Ctrl-C instead, saving its position, and first points the output that
went to the terminal at the null device, so that saving and saying where it saved fail on no write. A run
started under ``nohup`` (SIGHUP ignored) keeps training. Standard library only: the ``--devices`` launcher uses it.
"""

from __future__ import annotations

import os
import signal

#: The hang-up signal, where the system has one (not on Windows).
HANGUP: signal.Signals | None = getattr(signal, "SIGHUP", None)


def terminal_outputs() -> list[int]:
    """Which of standard output and error are a terminal, asked before a hang-up (after it, a terminal may no longer
    answer that it is one)."""
    return [descriptor for descriptor in (1, 2) if os.isatty(descriptor)]


def hangup_ignored() -> bool:
    """Whether this process was started with hang-ups ignored (``nohup``): then a closed terminal must not stop it."""
    return HANGUP is None or signal.getsignal(HANGUP) is signal.SIG_IGN


def write_to_null_device(descriptors: list[int]) -> None:
    """Point ``descriptors`` (the closed terminal's) at the null device, so that writes to them succeed unseen."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for descriptor in descriptors:
            os.dup2(null, descriptor)
    finally:
        os.close(null)
