"""``ganzoo train --devices N``: the same command run as N processes under torchrun, stopped together.

torchrun answers a signal of its own with a traceback (``SignalException``) and a failed status, and
it reports a process that ends with a non-zero status as a failed run. So torchrun runs in a session
of its own, where the terminal's Ctrl-C does not reach it, and the launcher passes a Ctrl-C, a
SIGTERM or a hang-up on once to torchrun's processes (each leads a session of its own too). They
agree on a step to stop at, save a checkpoint there, note in the file named by :data:`LAUNCHED_ENV`
that they were interrupted, and end with status 0, so torchrun ends quietly; the launcher then
reports 130. A second Ctrl-C kills them all at once, as it stops a single process. A signal the
launcher was started to ignore (``nohup``'s hang-up) stays ignored. On Linux torchrun gets SIGTERM
if the launcher dies, so the processes never outlive it unseen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

#: Set in the processes :func:`launch` starts to the file where an interrupted run says so.
LAUNCHED_ENV = "GANZOO_DEVICES_LAUNCH"
#: The exit status of a run stopped by a signal after saving its position, as a shell reports Ctrl-C.
INTERRUPTED = 130
#: What the launcher passes on: Ctrl-C and a hang-up as SIGINT, SIGTERM as itself.
_PASSED_ON = {signal.SIGINT: signal.SIGINT, signal.SIGHUP: signal.SIGINT, signal.SIGTERM: signal.SIGTERM}
#: The words an interrupted process writes to the launcher's file.
_STOPPED = "interrupted"


def interrupted_status() -> int:
    """The exit status of a process whose run a signal stopped: 130, or 0 under :func:`launch` once the launcher's
    file says so (torchrun would report any other status as a failed run; the launcher reports 130)."""
    report = os.environ.get(LAUNCHED_ENV)
    if not report:
        return INTERRUPTED
    try:
        Path(report).write_text(_STOPPED)
    except OSError:  # the launcher cannot be told: fall back to the status itself
        return INTERRUPTED
    return 0


def launch_command(devices: int, args: list[str]) -> list[str]:
    """The torchrun command that runs ``ganzoo ARGS`` as ``devices`` processes on this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={devices}",
            "-m", "ganzoo", *args]


def children(parent: int) -> list[int]:
    """The process ids whose parent is ``parent``, read from ``/proc`` (empty where there is none)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command name: state, parent id, ...
        except (OSError, IndexError):  # the process ended meanwhile
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def _signal_group(leader: int, number: int) -> None:
    """Send ``number`` to the process group ``leader`` leads, or to ``leader`` alone if it leads none."""
    try:
        os.killpg(leader, number)
    except ProcessLookupError:
        try:
            os.kill(leader, number)
        except ProcessLookupError:  # it ended meanwhile
            pass


def _end_with_parent(unblock: set[signal.Signals]) -> Callable[[], None]:
    """What torchrun's process runs before torchrun starts: take the signals the launcher held back while starting
    it, and (on Linux) ask for SIGTERM when the launcher dies."""
    prctl = None
    if sys.platform.startswith("linux"):
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl

    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, unblock)
        if prctl is not None:
            prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG

    return setup


def launch(devices: int, args: list[str]) -> int:
    """Run ``ganzoo ARGS`` under torchrun with ``devices`` processes; its exit status (130 once interrupted, 128 + N
    when torchrun died of signal N)."""
    handled = {number for number in _PASSED_ON if signal.getsignal(number) is not signal.SIG_IGN}
    descriptor, report = tempfile.mkstemp(prefix="ganzoo-devices-", suffix=".txt")
    os.close(descriptor)
    torchrun: subprocess.Popen[bytes] | None = None
    signals = 0

    def pass_on(number: int, frame: Any) -> None:
        nonlocal signals
        signals += 1
        if torchrun is None or torchrun.poll() is not None:
            return
        workers = children(torchrun.pid)
        if signals > 1:  # asked twice: stop everything now
            for worker in workers:
                _signal_group(worker, signal.SIGKILL)
            _signal_group(torchrun.pid, signal.SIGKILL)
        elif workers:
            for worker in workers:
                _signal_group(worker, _PASSED_ON[signal.Signals(number)])
        else:  # no /proc to find them by: torchrun passes it on (with its own report)
            torchrun.send_signal(number)

    # held back while torchrun starts, so that no Ctrl-C falls between its start and the handlers
    held = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    previous = {number: signal.signal(number, pass_on) for number in handled}
    try:
        try:
            torchrun = subprocess.Popen(launch_command(devices, args), env={**os.environ, LAUNCHED_ENV: report},
                                        start_new_session=True, preexec_fn=_end_with_parent(handled))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        status = torchrun.wait()
    finally:
        for number, before in previous.items():
            signal.signal(number, signal.SIG_DFL if before is None else before)  # None: set outside Python
        stopped = Path(report).read_text() == _STOPPED
        Path(report).unlink()
    if status < 0:
        return 128 - status
    return INTERRUPTED if stopped and status == 0 else status
