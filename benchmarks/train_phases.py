"""Where the wall time of one ``ganzoo train`` command goes: start-up, set-up, training, epoch ends.

Usage:
  python benchmarks/train_phases.py MODEL [--repeat N] [any ganzoo train option...]
  python benchmarks/train_phases.py dcgan --data mnist --data-root DATA --epochs 1 --device cpu
  python benchmarks/train_phases.py dcgan --data mnist --data-root DATA --image-size 64 --epochs 5 \\
      --batch-size 128 --device cuda --repeat 2

Runs the real command (``python -m ganzoo train MODEL ... --no-progress``) as a new process,
``--repeat`` times one after the other, and splits each run's wall time with its ``metrics.jsonl``:

* start-up: interpreter start, imports and option parsing, up to the Trainer (the launch to the
  ``setup`` row's time stamp, less the set-up seconds that row reports);
* set-up: building the networks (on CUDA this includes creating the CUDA context), loading and
  fitting the data and moving it to the device, building the optimizers, and the rest of the
  Trainer's construction (the ``setup`` row);
* training loops: each epoch's loop (the ``epoch`` rows; the first includes warm-up such as cuDNN
  autotuning or compiling);
* epoch ends and exit: what is left: pictures, weights and checkpoints after every epoch, the loss
  plot at the end and the process's exit.

It also times ``python -c "import torch"`` from start to exit (exit included, which tears torch
down), a reference for the start-up. Prints a table of
the phases, one column per run and, with several runs, their medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = ("wall", "python -c 'import torch'", "start-up", "set-up: networks", "set-up: data", "set-up: optimizers",
          "set-up: total", "training loops", "epoch ends and exit")


def timed_command(command: list[str]) -> tuple[float, float]:
    """Run ``command`` to its end; (launch time stamp, wall seconds). Stops the benchmark if it fails."""
    launched = time.time()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.time() - launched
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return launched, wall


def one_run(model: str, train_options: list[str]) -> dict[str, float]:
    """One ``ganzoo train`` process and ``import torch`` alone; the seconds of each phase."""
    _, import_torch = timed_command([sys.executable, "-c", "import torch"])
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        launched, wall = timed_command([sys.executable, "-m", "ganzoo", "train", model, *train_options,
                                        "--out", str(out), "--no-progress"])
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    setup = next(row for row in rows if row["event"] == "setup")
    loops = [row["seconds"] for row in rows if row["event"] == "epoch"]
    started_training = setup["time"] - launched
    return {"wall": wall, "python -c 'import torch'": import_torch, "start-up": started_training - setup["total_seconds"],
            "set-up: networks": setup["networks_seconds"], "set-up: data": setup["data_seconds"],
            "set-up: optimizers": setup["optimizers_seconds"], "set-up: total": setup["total_seconds"],
            "training loops": sum(loops), "epoch ends and exit": wall - started_training - sum(loops),
            "epochs": loops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     usage="%(prog)s MODEL [--repeat N] [ganzoo train options]")
    parser.add_argument("model")
    parser.add_argument("--repeat", type=int, default=1, help="runs, one after the other; medians are printed")
    args, train_options = parser.parse_known_args()
    print(f"ganzoo train {args.model} {' '.join(train_options)}  (python {sys.version.split()[0]})")
    runs = [one_run(args.model, train_options) for _ in range(args.repeat)]
    header = "".join(f"{f'run {index + 1}':>9}" for index in range(len(runs)))
    print(f"  {'phase':26}{header}" + (f"{'median':>9}" if len(runs) > 1 else ""))
    for name in PHASES:
        figures = [run[name] for run in runs] + ([statistics.median(run[name] for run in runs)] if len(runs) > 1 else [])
        print(f"  {name:26}" + "".join(f"{seconds:8.2f}s" for seconds in figures))
    for index, run in enumerate(runs):
        print(f"  run {index + 1}'s epoch loops: " + ", ".join(f"{seconds:.2f}" for seconds in run["epochs"]) + " s")

if __name__ == "__main__":
    main()
