"""``ganzoo train --devices N``: the same command run as N processes under torchrun, stopped together.

A Ctrl-C in a terminal reaches every process of the foreground process group. torchrun answers it
with a traceback of its own (``SignalException``) and signals its processes a second time. So
torchrun runs in a session of its own: the launcher alone gets the Ctrl-C (or a SIGTERM, or a
hang-up) and passes it on once to torchrun's processes. They agree on a step to stop at, save a
checkpoint there and end with status 0 (:data:`LAUNCHED_ENV` tells them), so torchrun ends quietly,
and the launcher reports 130. A second Ctrl-C kills them all at once, as it stops a single process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

#: Set in the processes this launcher starts: an interrupted run then ends with status 0, and the launcher says 130.
LAUNCHED_ENV = "GANZOO_DEVICES_LAUNCH"
#: The exit status of a run stopped by a signal after saving its position, as a shell reports Ctrl-C.
INTERRUPTED = 130
#: What the launcher passes on: Ctrl-C and a hang-up as SIGINT, SIGTERM as itself.
_PASSED_ON = {signal.SIGINT: signal.SIGINT, signal.SIGHUP: signal.SIGINT, signal.SIGTERM: signal.SIGTERM}


def launched_here() -> bool:
    """True in a process started by :func:`launch`."""
    return os.environ.get(LAUNCHED_ENV) == "1"


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


def launch(devices: int, args: list[str]) -> int:
    """Run ``ganzoo ARGS`` under torchrun with ``devices`` processes; its exit status (130 once interrupted)."""
    with subprocess.Popen(launch_command(devices, args), env={**os.environ, LAUNCHED_ENV: "1"},
                          start_new_session=True) as torchrun:
        signals = 0

        def pass_on(number: int, frame: Any) -> None:
            nonlocal signals
            signals += 1
            if signals > 1:  # asked twice: stop now
                os.killpg(torchrun.pid, signal.SIGKILL)
                return
            workers = children(torchrun.pid)
            for worker in workers:
                try:
                    os.kill(worker, _PASSED_ON[signal.Signals(number)])
                except ProcessLookupError:  # it ended meanwhile
                    pass
            if not workers:  # no /proc to find them by: torchrun passes it on (with its own report)
                torchrun.send_signal(number)

        previous = {number: signal.signal(number, pass_on) for number in _PASSED_ON}
        try:
            status = torchrun.wait()
        finally:
            for number, before in previous.items():
                signal.signal(number, signal.SIG_DFL if before is None else before)  # None: set outside Python
    return INTERRUPTED if signals and status == 0 else status
