"""``ganzoo train --devices N``: the same command run as N processes under torchrun, stopped together.

torchrun answers a signal of its own with a traceback (``SignalException``) and a failed status, and
it reports a process that ends with a non-zero status as a failed run. So torchrun runs in a session
of its own, where the terminal's Ctrl-C does not reach it, and the launcher passes a Ctrl-C or a
SIGTERM on once, as a Ctrl-C, and a hang-up as a hang-up (see :mod:`ganzoo.terminal`), to torchrun's processes
(found through ``/proc``; each leads a session of its own),
each once it has marked itself ready in the folder named by :data:`LAUNCHED_ENV` (its command has
started: a signal during Python's start-up would kill it with torchrun's failure report). They agree
on a step to stop at, save a checkpoint there, note in that folder that they stopped, and end with
status 0, so torchrun ends quietly; the launcher then reports 130. Stopped before training (imports,
data loading), they say "Interrupted." and end the same way, with nothing saved. Processes still running
:data:`STRAGGLER_SECONDS` after one said it stopped (stuck waiting for it) are killed. A signal in the
run's last log interval lets it finish (status 0). A second Ctrl-C kills them all at once (status
130), as it stops a single process. A process stopped by a ganzoo error (bad input: one sentence) leaves
its sentence in the folder and ends with status 0, so torchrun prints no failure report; the launcher
prints each distinct sentence once and ends with status 1. A process whose collective breaks (a RuntimeError: the
peer it waited on left) after another left its sentence, or ended outright, ends with status 0 too, without its
traceback, as that sentence (or torchrun's, for the one that ended) is the cause; any other failure keeps its traceback. A signal the launcher was started to ignore (a
background job's Ctrl-C) stays ignored. On Linux torchrun gets SIGTERM if the launcher dies, and passes it on.
Without ``/proc`` (macOS) torchrun gets the signals itself and answers them its own way. torchrun runs as
:mod:`ganzoo.torchrun`, which ends a run whose process failed, or one torchrun itself got a signal in, with a sentence
instead of torchrun's traceback and report; the launcher adds how to go on (``after_failure``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from ganzoo.terminal import HANGUP, HANGUPS, stop_on_hangup, terminal_outputs, write_to_null_device

#: Set in the processes :func:`launch` starts to the folder where each says it is ready for a signal, and
#: where a run stopped by a signal says so.
LAUNCHED_ENV = "GANZOO_DEVICES_LAUNCH"
#: The exit status of a run stopped by a signal after saving its position, as a shell reports Ctrl-C.
INTERRUPTED = 130
#: The signals the launcher passes on to torchrun's processes.
_PASSED_ON = (signal.SIGINT, signal.SIGTERM, *HANGUPS)
#: The file a process that stopped writes in the launcher's folder.
_STOPPED = "interrupted"
#: The start of the name of the file a process writes in the launcher's folder once its command runs.
_READY = "ready-"
#: The start of the name of the file where a process stopped by a ganzoo error leaves its sentence.
_ERROR = "error-"
#: Seconds between looks at torchrun (has it ended, are its processes ready for a signal that waits for them).
_POLL_SECONDS = 0.2
#: Seconds the others get to end once a process has said it stopped (by then the run's position is saved) or left
#: an error; any still running then, stuck waiting for one that left (a process group that had not formed yet, a
#: collective it will never join), are killed.
STRAGGLER_SECONDS = 15.0
#: Seconds a process whose collective broke looks for another's error sentence before it reports its own failure.
ERROR_WAIT_SECONDS = 0.5


def interrupted_status() -> int:
    """The exit status of a process whose run stopped at the step all processes agreed on: 130, or 0 under
    :func:`launch` once the launcher's folder says so (torchrun would report any other status as a failed run;
    the launcher reports 130)."""
    folder = os.environ.get(LAUNCHED_ENV)
    if not folder:
        return INTERRUPTED
    try:
        (Path(folder) / _STOPPED).touch()
    except OSError:  # the launcher cannot be told: fall back to the status itself
        return INTERRUPTED
    return 0


def _error_file(folder: str) -> Path:
    """Where this process leaves its error sentence in the launcher's ``folder`` (named by rank, then process id)."""
    return Path(folder) / f"{_ERROR}{int(os.environ.get('RANK', '0')):06d}-{os.getpid()}"


def leave_error(sentence: str) -> bool:
    """Under :func:`launch`, leave this process's error sentence for the launcher to print once (every process
    usually meets the same one), and say so: the process then ends with status 0, as torchrun would otherwise
    report a failed run at length. False elsewhere, or when the folder cannot be written: the caller prints it."""
    folder = os.environ.get(LAUNCHED_ENV)
    if not folder:
        return False
    path = _error_file(folder)
    unfinished = path.with_name(f".{path.name}.tmp")  # whole or not there: the launcher may read it at any moment
    try:
        unfinished.write_text(sentence)
        unfinished.replace(path)
    except (OSError, ValueError):
        return False
    return True


def leave_error_before_leaving(exc: BaseException) -> None:
    """Under :func:`launch`, leave the sentence that ``exc`` will end this process with while it is still in the
    process group: the others' collectives break ("Connection closed by peer") only once it leaves, and by then
    they find the sentence, so they end quietly and it is printed once. Nothing for an exception without one."""
    from ganzoo.errors import user_sentence

    sentence = user_sentence(exc)
    if sentence is not None:
        leave_error(sentence)


def another_process_left(wait: float = ERROR_WAIT_SECONDS) -> bool:
    """Under :func:`launch`, whether a process other than this one left an error sentence, or ended without one
    (killed outright or crashed, which torchrun then reports in a sentence: :mod:`ganzoo.torchrun`), looked for up to
    ``wait`` seconds (a failing process leaves its sentence before it leaves the process group, so it is there when
    this one's collective breaks; the wait covers a file system slow to show it, and a process still on its way
    out). False elsewhere."""
    folder = os.environ.get(LAUNCHED_ENV)
    if not folder:
        return False
    own, deadline = _error_file(folder).name, time.monotonic() + wait
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "0"))  # torchrun's processes on this machine: all of them
    while True:
        if any(path.name != own for path in Path(folder).glob(f"{_ERROR}*")):
            return True
        if processes and Path("/proc").is_dir() and len(children(os.getppid(), running=True)) < processes:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)


def _errors(folder: Path) -> list[str]:
    """The distinct error sentences the processes left in ``folder``, in rank order."""
    sentences: list[str] = []
    for path in sorted(folder.glob(f"{_ERROR}*")):
        try:
            sentence = path.read_text()
        except OSError:
            continue
        if sentence not in sentences:
            sentences.append(sentence)
    return sentences


def started_by_launcher() -> bool:
    """Whether this process is one of those :func:`launch` started (through torchrun)."""
    return bool(os.environ.get(LAUNCHED_ENV))


def mark_ready() -> None:
    """Under :func:`launch`, tell the launcher that this process's command runs, so a Ctrl-C or hang-up passed on
    now ends it in a few words rather than with a traceback; elsewhere nothing."""
    folder = os.environ.get(LAUNCHED_ENV)
    if folder:
        stop_on_hangup()
        try:
            (Path(folder) / f"{_READY}{os.getpid()}").touch()
        except OSError:  # the folder is gone: the launcher passes nothing on, and a second Ctrl-C kills
            pass


def interrupted_by_user() -> int:
    """Say that a Ctrl-C stopped the command before its run could stop at a step (under torchrun, in process 0
    alone), and return :func:`interrupted_status`: nothing was saved, and torchrun must not report a failure."""
    from ganzoo.distributed import is_main

    if is_main():
        print("Interrupted.", file=sys.stderr)
    return interrupted_status()


def launch_command(devices: int, args: list[str], log_dir: Path) -> list[str]:
    """The torchrun command that runs ``ganzoo ARGS`` as ``devices`` processes on this machine. torchrun keeps its
    logs in ``log_dir``, the launcher's own folder, which goes when the run ends (by default torchrun makes a
    ``torchelastic_*`` folder in the system's temporary folder for every run, and leaves it there)."""
    return [sys.executable, "-m", "ganzoo.torchrun", "--standalone", f"--nproc-per-node={devices}",
            f"--log-dir={log_dir}", "-m", "ganzoo", *args]


def children(parent: int, running: bool = False) -> list[int]:
    """The process ids whose parent is ``parent``, read from ``/proc`` (empty where there is none); with ``running``
    only those that have not ended (an ended one stays, as a zombie, until its parent collects its status)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command name: state, parent id, ...
        except (OSError, IndexError):  # the process ended meanwhile
            continue
        if int(fields[1]) == parent and not (running and fields[0] == "Z"):
            found.append(int(stat.parent.name))
    return found


def _send(pid: int, number: int, group: bool = False) -> None:
    """Send signal ``number`` to ``pid`` (or the process group it leads, falling back to it alone), if it still runs."""
    try:
        if group:
            try:
                os.killpg(pid, number)
                return
            except ProcessLookupError:  # it leads no group
                pass
        os.kill(pid, number)
    except ProcessLookupError:  # it ended meanwhile
        pass


def _child_setup(mask: set[signal.Signals]) -> Callable[[], None]:
    """What torchrun's process runs before torchrun starts: the launcher's own signal mask back, and (on Linux)
    SIGTERM when the launcher dies (and at once if it died already)."""
    prctl = None
    if sys.platform.startswith("linux"):
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    launcher = os.getpid()

    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if prctl is not None:
            prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
            if os.getppid() != launcher:  # died before the request was made
                os.kill(os.getpid(), signal.SIGTERM)

    return setup


class _Relay:
    """The launcher's signal handler: passes the first Ctrl-C or SIGTERM on, as a Ctrl-C, or a hang-up, as a
    hang-up, to each of the ``devices`` processes of torchrun once it is ready (:func:`mark_ready` in ``folder``);
    a later Ctrl-C kills them all. After a hang-up its own output to the closed terminal goes to the null device."""

    def __init__(self, folder: Path, devices: int) -> None:
        self.folder, self.devices = folder, devices
        self.terminals = terminal_outputs()
        self.torchrun: subprocess.Popen[bytes] | None = None
        self.pending: int | None = None  # a signal that not every process of torchrun has had yet
        self.reached: dict[int, int] = {}  # the processes it was passed on to, and as which signal
        self.passed = self.killed = self.hung_up = False

    def __call__(self, number: int, frame: object) -> None:
        if number == HANGUP:
            write_to_null_device(self.terminals)
            self.hung_up = True
        if self.passed or self.pending is not None:
            if number == signal.SIGINT and not self.hung_up:  # asked twice: stop everything now (after a hang-up no
                self.kill()  # one is at the keyboard: that Ctrl-C was sent with the hang-up, as by a closing terminal)
            elif number == HANGUP:  # after a Ctrl-C: they must stop writing to the closed terminal too
                self.deliver()
            return
        self.pending = number
        self.deliver()

    def deliver(self) -> None:
        """Pass the pending signal on to each of torchrun's processes that is ready and has not had it, and after a
        hang-up the hang-up to those that had a Ctrl-C."""
        torchrun = self.torchrun
        if (self.pending is None and not self.hung_up) or torchrun is None or torchrun.poll() is not None:
            return
        if not Path("/proc").is_dir():  # no way to find its processes: torchrun passes it on, its own way
            if self.pending is not None:
                torchrun.send_signal(self.pending)
            self.pending, self.passed = None, True
            return
        # a Ctrl-C for a SIGTERM too: the same stop, while a SIGTERM from torchrun itself still means that another
        # process failed; a hang-up as itself, so that they too stop writing to the terminal
        wanted = HANGUP if self.hung_up else signal.SIGINT
        workers = children(torchrun.pid)
        for worker in workers:  # not their groups: their data-loading processes must not get it
            if self.reached.get(worker) != wanted and (self.folder / f"{_READY}{worker}").exists():
                _send(worker, wanted)
                self.reached[worker] = wanted
        if len(workers) >= self.devices and set(self.reached).issuperset(workers):
            self.pending, self.passed = None, True

    def kill(self) -> None:
        torchrun = self.torchrun
        if torchrun is None or torchrun.poll() is not None:
            return
        self.killed = True
        if not Path("/proc").is_dir():
            torchrun.send_signal(signal.SIGINT)
            return
        for worker in children(torchrun.pid):
            _send(worker, signal.SIGKILL, group=True)
        _send(torchrun.pid, signal.SIGKILL, group=True)


def launch(devices: int, args: list[str], after_failure: Callable[[], str | None] = lambda: None) -> int:
    """Run ``ganzoo ARGS`` under torchrun with ``devices`` processes; its exit status (130 once stopped by a
    signal, 128 + N when torchrun died of signal N otherwise). When a process failed (torchrun has said which, in
    a sentence: :mod:`ganzoo.torchrun`), what ``after_failure`` returns is printed below it (how to go on)."""
    folder = Path(tempfile.mkdtemp(prefix="ganzoo-devices-"))
    relay, previous = _Relay(folder, devices), {}
    handled = {number for number in _PASSED_ON if signal.getsignal(number) is not signal.SIG_IGN}
    held = signal.pthread_sigmask(signal.SIG_BLOCK, handled)  # no signal between torchrun's start and the relay
    try:
        previous = {number: signal.signal(number, relay) for number in handled}
        relay.torchrun = subprocess.Popen(launch_command(devices, args, folder / "torchrun"), env={**os.environ, LAUNCHED_ENV: str(folder)},
                                          start_new_session=True, preexec_fn=_child_setup(held))
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        stopped_at = None
        while True:  # with a timeout: a signal that came before torchrun's processes were ready reaches them then
            try:
                status = relay.torchrun.wait(timeout=_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                relay.deliver()
            if stopped_at is None and ((folder / _STOPPED).exists() or any(folder.glob(f"{_ERROR}*"))):
                stopped_at = time.monotonic()
            elif (stopped_at is not None and not relay.killed and Path("/proc").is_dir()
                  and time.monotonic() - stopped_at > STRAGGLER_SECONDS):
                relay.kill()  # without /proc, killing means signalling torchrun, whose own grace applies
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        for number, before in previous.items():
            if relay.hung_up and number in (HANGUP, signal.SIGINT):  # no one at the keyboard: nothing to stop now
                signal.signal(number, signal.SIG_IGN)
            else:
                signal.signal(number, signal.SIG_DFL if before is None else before)  # None: set outside Python
        stopped = (folder / _STOPPED).exists()  # False once a /tmp cleaner removed it: no process said so
        errors = _errors(folder)
        shutil.rmtree(folder, ignore_errors=True)
    for sentence in errors:
        print(f"Error: {sentence}", file=sys.stderr)
    if errors:
        return 1
    if relay.killed:
        return INTERRUPTED
    if status < 0:
        return 128 - status
    if stopped and status == 0:
        return INTERRUPTED
    advice = after_failure() if status != 0 else None
    if advice:
        print(advice, file=sys.stderr)
    return status
