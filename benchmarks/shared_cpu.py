"""torch's threads on a CPU shared with another busy process.

Runs the quickstart's toy training (``ganzoo train gan --data ring8``) alone and beside a neighbour, a process
doing small torch matrix products with torch's own default threads (as a second training run or a test suite
would), each time with torch's default thread count and with ``OMP_NUM_THREADS=1``. Prints the seconds of each
run's epochs (from the ``epoch`` rows of its ``metrics.jsonl``) and, per setting, the median and its ratio to the
default threads alone. Runs take turns within each round.

    python benchmarks/shared_cpu.py [--epochs 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

#: The neighbour: small matrix products with torch's default threads, forever, until it is killed.
NEIGHBOUR = "import torch\na = torch.randn(64, 64)\nwhile True:\n    a @ a\n"
#: A run that takes longer than this is stopped and reported as at least this long.
RUN_LIMIT_SECONDS = 600


def epoch_seconds(metrics: Path) -> float:
    """The summed seconds of the run's epochs, as its ``metrics.jsonl`` records them."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    return sum(row["seconds"] for row in rows if row.get("event") == "epoch")


def default_threads_environment() -> dict[str, str]:
    """This process's environment without ``OMP_NUM_THREADS``: torch then picks its default thread count."""
    return {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}


def train_once(epochs: int, threads: str | None, out: Path) -> float:
    """Seconds of the epochs of one toy run in a new process; ``threads`` sets OMP_NUM_THREADS (None: torch's
    default). A run stopped at :data:`RUN_LIMIT_SECONDS` counts as that many seconds, a lower bound."""
    env = default_threads_environment()
    if threads is not None:
        env["OMP_NUM_THREADS"] = threads
    command = [sys.executable, "-m", "ganzoo", "train", "gan", "--data", "ring8", "--epochs", str(epochs),
               "--out", str(out), "--overwrite", "--no-progress"]
    try:
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, timeout=RUN_LIMIT_SECONDS)
    except subprocess.TimeoutExpired:
        return float(RUN_LIMIT_SECONDS)
    return epoch_seconds(out / "metrics.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = [(neighbour, threads) for neighbour in (False, True) for threads in (None, "1")]
    seconds: dict[tuple[bool, str | None], list[float]] = {setting: [] for setting in settings}
    print(f"ganzoo train gan --data ring8 --epochs {args.epochs}, {os.cpu_count()} CPU cores, {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            print(f"  round {round_index + 1} of {args.rounds}")
            for neighbour, threads in settings:
                busy = (subprocess.Popen([sys.executable, "-c", NEIGHBOUR], env=default_threads_environment())
                        if neighbour else None)
                try:
                    took = train_once(args.epochs, threads, Path(scratch) / "run")
                finally:
                    if busy is not None:
                        busy.kill()
                        busy.wait()
                seconds[(neighbour, threads)].append(took)
                limit = " (stopped: at least)" if took >= RUN_LIMIT_SECONDS else ""
                print(f"  {_name(neighbour, threads):45s} {took:8.2f} s{limit}")
    baseline = statistics.median(seconds[(False, None)])
    print(f"median seconds of the {args.epochs} epochs, and ratio to the default threads alone:")
    for setting in settings:
        median = statistics.median(seconds[setting])
        print(f"  {_name(*setting):45s} {median:8.2f} s  {median / baseline:5.2f}x")


def _name(neighbour: bool, threads: str | None) -> str:
    """``default threads, beside a busy neighbour``."""
    count = "default threads" if threads is None else f"OMP_NUM_THREADS={threads}"
    return f"{count}, {'beside a busy neighbour' if neighbour else 'alone'}"


if __name__ == "__main__":
    main()
