"""What a training process does when its terminal hangs up (the window or the ssh session closed).

The system then sends SIGHUP, whose default kills the process unsaved, and every later write to that terminal
fails with EIO. ganzoo stops the run as on Ctrl-C instead, saving its position, and first points the output that
went to the terminal (or to a pipe whose reader the hang-up ends too) at the null device, so that saving and saying
where it saved fail on no write; later hang-ups (the shell passes its own on) are ignored. A run started under
``nohup`` (SIGHUP ignored) keeps training. Standard library only: the ``--devices`` launcher uses it.
"""

from __future__ import annotations

import os
import signal
import stat

#: The hang-up signal, where the system has one (not on Windows).
HANGUP: signal.Signals | None = getattr(signal, "SIGHUP", None)
#: The hang-up signal as a tuple to add to others: empty where the system has none.
HANGUPS: tuple[signal.Signals, ...] = (HANGUP,) if HANGUP is not None else ()


def terminal_outputs() -> list[int]:
    """Which of standard output and error a hang-up closes: a terminal, or a pipe (``| tee log`` in the same
    terminal: the reader is hung up too). Asked before a hang-up, after which a terminal may no longer answer that
    it is one. A file keeps what follows, the run's last words included."""
    return [descriptor for descriptor in (1, 2) if os.isatty(descriptor) or _is_pipe(descriptor)]


def _is_pipe(descriptor: int) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(descriptor).st_mode)
    except OSError:  # closed
        return False


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


def stop_on_hangup() -> None:
    """Outside training's own handler (before it, and after it): a hang-up sends the output to the null device and
    stops the command as a Ctrl-C does (``KeyboardInterrupt``); later hang-ups are ignored. For the processes of
    ``ganzoo train --devices``, to which the launcher passes a hang-up on while they may still be setting up;
    nothing under nohup."""
    if hangup_ignored():
        return
    outputs = terminal_outputs()

    def hung_up(signum: int, frame: object) -> None:
        write_to_null_device(outputs)
        signal.signal(signum, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(HANGUP, hung_up)  # type: ignore[arg-type]
