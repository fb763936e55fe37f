"""torchrun as ``ganzoo train --devices N`` runs it: torchrun itself, with its end told in one sentence.

When one of its processes fails, torchrun ends with its own traceback and a report of every process (``ChildFailedError``);
when it gets a signal (its launcher died and Linux sent it SIGTERM), with another traceback (``SignalException``).
Here torchrun runs as it is, and either end becomes one sentence saying which process ended how; the
failed process's own output, above it, keeps its cause. Run as ``python -m ganzoo.torchrun TORCHRUN-ARGS``.
"""

from __future__ import annotations

import runpy
import signal
import sys

#: The exit status after a process failed, as torchrun's own.
FAILED = 1


def failure_sentence(rank: int, exitcode: int, processes: int | None) -> str:
    """What ended process ``rank`` (of ``processes``) with ``exitcode``: a status, or (when negative) a signal."""
    of = f" of {processes}" if processes else ""
    if exitcode >= 0:
        return (f"training process {rank}{of} ended with status {exitcode}; its own output above says why, and the "
                f"others were stopped.")
    name = _signal_name(-exitcode)
    why = " (the kernel's out-of-memory killer sends it when memory runs out; 'dmesg' says whether it did)" \
        if -exitcode == signal.SIGKILL else ""
    return f"training process {rank}{of} was killed by {name}{why}, and the others were stopped."


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _processes(argv: list[str]) -> int | None:
    """The ``--nproc-per-node`` torchrun was given, when it is a number."""
    for index, word in enumerate(argv):
        value = word.split("=", 1)[1] if word.startswith("--nproc-per-node=") else (
            argv[index + 1] if word == "--nproc-per-node" and index + 1 < len(argv) else None)
        if value is not None:
            return int(value) if value.isdigit() else None
    return None


def main() -> int:
    """Run torchrun on this process's arguments; 0, :data:`FAILED` after a process failed, 128 + N after signal N."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    try:  # as __main__, as ``python -m torch.distributed.run`` runs it: its log lines then read as torchrun's own
        runpy.run_module("torch.distributed.run", run_name="__main__", alter_sys=True)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        print(f"Error: {failure_sentence(rank, failure.exitcode, _processes(sys.argv[1:]))}", file=sys.stderr)
        return FAILED
    except SignalException as exc:
        name = _signal_name(int(exc.sigval))
        print(f"Error: torchrun got {name} (its --devices launcher ended, or it came from outside), so it stopped the "
              f"training processes.", file=sys.stderr)
        return 128 + int(exc.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
