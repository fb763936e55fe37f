"""Signals that stop a training run only after its current step, so that it saves its position first.

Ctrl-C (SIGINT), SIGTERM (``kill``, a scheduler's preemption) and a hang-up (the terminal or ssh session closed)
set a flag that the loop checks between steps; see :func:`deferred_stop` for what a second signal does, alone
and under torchrun, and :mod:`ganzoo.terminal` for what a hang-up does to the output.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from ganzoo.terminal import HANGUP, HANGUPS, hangup_ignored, terminal_outputs, write_to_null_device


class StopRequest:
    """Set by :func:`deferred_stop`'s handler: a stop was asked for, and whether by a hang-up."""

    requested = False
    hung_up = False


#: The signals that stop a run after saving its position: Ctrl-C, ``kill``'s default (a scheduler's preemption) and,
#: where the system has it, a hang-up (the terminal or ssh session closed; see :mod:`ganzoo.terminal`).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, *HANGUPS)


@contextmanager
def deferred_stop(together: bool = False) -> Iterator[StopRequest]:
    """While training, the first Ctrl-C (SIGINT), SIGTERM or hang-up only sets a flag the loop checks after the current
    step. After a hang-up the output that went to the closed terminal goes to the null device, so that saving the
    position and saying where it is fail on no write to it.

    Alone, a second Ctrl-C or SIGTERM stops at once (a hang-up never does, and after one a Ctrl-C cannot have come
    from the keyboard, so it is ignored). ``together`` (one of torchrun's processes): the processes agree on
    one step to stop at (see :meth:`ganzoo.engine.Trainer.run`) and save there, and later signals are ignored, since a
    process that stopped at once would leave the others waiting for it in their next all-reduce; torchrun
    (or the ``--devices`` launcher, on a second Ctrl-C) kills the processes when they must stop now.
    """
    flag = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    # a run under nohup keeps training when its terminal closes
    stoppers = [number for number in STOP_SIGNALS if number != HANGUP or not hangup_ignored()]
    previous = {number: signal.getsignal(number) for number in stoppers}
    terminals = terminal_outputs()

    def restore(numbers: Iterable[int]) -> None:
        for number in numbers:
            before = previous[number]
            if before is None:  # installed outside Python: Python's own for Ctrl-C, the system's for the others
                before = signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL
            signal.signal(number, before)

    def ignored_for_good() -> tuple[Any, ...]:
        # after a hang-up the shell passes its own on too, and no one is left at the keyboard to mean a Ctrl-C that
        # comes with it: the save, and the words that follow it, must die of neither
        return (HANGUP, signal.SIGINT) if flag.hung_up else ()

    def handler(signum: int, frame: Any) -> None:
        flag.requested = True
        if signum == HANGUP:
            flag.hung_up = True
            write_to_null_device(terminals)
            for number in ignored_for_good():
                signal.signal(number, signal.SIG_IGN)
        if not together:  # a second Ctrl-C or SIGTERM stops at once; a later hang-up still points the output away
            restore(number for number in previous if number != HANGUP and number not in ignored_for_good())

    for number in stoppers:
        signal.signal(number, handler)
    try:
        yield flag
    finally:
        restore(number for number in previous if number not in ignored_for_good())
