"""A short MNIST run per loss: does each objective train DCGAN, and how far does it get?

    python benchmarks/mnist_losses.py --data-root /work/shared/datasets                # every loss, 1 epoch
    python benchmarks/mnist_losses.py --data-root DATA --only ns,wgan-gp --epochs 2
    python benchmarks/mnist_losses.py --data-root DATA --only wgan-gp --set d_norm=batch   # one setting changed
    python benchmarks/mnist_losses.py --from-json runs/a/mnist_losses.json runs/b/mnist_losses.json  # join, redraw

For each loss, ``dcgan`` (``began`` for the BEGAN loss, which needs its autoencoder discriminator)
is trained on MNIST with that loss's paper settings through the normal engine (same seed, same
epochs), then ``--num`` samples are scored with the project's offline digit scores
(``ganzoo eval --metrics digits``: Fréchet distance in the shipped classifier's feature space,
KL of the predicted-digit histogram to uniform, mean confidence). Prints one markdown table row per
loss with the training time, and writes one figure with a row of 16 samples per loss
(``--figure``, default docs/mnist-losses.png) and OUT/mnist_losses.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

LOSSES = ["ns", "minimax", "lsgan", "wgan", "wgan-gp", "dragan", "hinge", "kl-wgan",
          "f-gan-kl", "f-gan-rkl", "f-gan-js", "f-gan-pearson", "f-gan-hellinger", "began"]
ROW_SAMPLES = 16


def model_for(loss: str) -> tuple[str, dict[str, Any]]:
    """The model and overrides that train ``loss`` on MNIST."""
    return ("began", {}) if loss == "began" else ("dcgan", {"loss": loss})


def train_and_score(loss: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train one loss, then score ``args.num`` samples with the digit classifier; returns one result row."""
    from ganzoo.cli.main import cli
    from ganzoo.engine import DivergedError, TrainRequest, train

    from ganzoo.config import parse_overrides

    model, overrides = model_for(loss)
    overrides.update({**parse_overrides(args.set), "epochs": args.epochs, "seed": args.seed})
    label = " ".join([loss, *args.set])  # the row's name: the loss, and the settings changed for it
    out = args.out / "_".join([loss, *args.set])  # a run with other settings never replaces this one's
    start = time.perf_counter()
    try:
        result = train(TrainRequest(model=model, out=out, data="mnist", overrides=overrides, data_root=args.data_root,
                                    device=args.device, overwrite=True, progress=False))
    except DivergedError as error:
        return {"loss": loss, "label": label, "model": model, "diverged": str(error), "seconds": time.perf_counter() - start}
    seconds = time.perf_counter() - start
    scores_path = out / "digits.json"
    cli.main(["eval", model, "--weights", str(result.generator_path), "--data", "mnist", "--metrics", "digits",
              "--num", str(args.num), "--json", str(scores_path), "--device", args.device or "auto",
              *(["--data-root", args.data_root] if args.data_root else [])], standalone_mode=False)
    scores = json.loads(scores_path.read_text())
    return {"loss": loss, "label": label, "model": model, "seconds": seconds, "weights": str(result.generator_path),
            "scores": scores}


def _label(row: dict[str, Any]) -> str:
    """The row's name: its loss, and any setting changed with --set (rows saved before labels existed: the loss)."""
    return str(row.get("label", row["loss"]))


def _score(row: dict[str, Any], name: str) -> float:
    """One digit score from the row's ``ganzoo eval`` JSON."""
    return float(row["scores"]["metrics"][name])


def print_table(rows: list[dict[str, Any]], epochs: int) -> None:
    """One markdown row per loss: digit Fréchet distance, KL to uniform, confidence, training time."""
    print(f"\nMNIST, {epochs} epoch(s) per loss (lower Fréchet and KL are better; real test images: Fréchet 11.46)\n")
    print("| loss | model | digit Fréchet | KL to uniform | mean confidence | train seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        if "diverged" in row:
            print(f"| {_label(row)} | {row['model']} | diverged | - | - | {row['seconds']:.0f} |")
            continue
        print(f"| {_label(row)} | {row['model']} | {_score(row, 'digits_frechet'):.1f} "
              f"| {_score(row, 'digits_kl_to_uniform'):.3f} | {_score(row, 'digits_confidence'):.3f} "
              f"| {row['seconds']:.0f} |")


def save_figure(rows: list[dict[str, Any]], path: Path, seed: int) -> None:
    """One row of :data:`ROW_SAMPLES` samples per trained loss, labelled with the loss name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torchvision

    from ganzoo import sampling
    from ganzoo.weights import load_generator

    trained = [row for row in rows if "weights" in row]
    figure, axes = plt.subplots(len(trained), 1, figsize=(8, 0.62 * len(trained) + 0.3), squeeze=False)
    for axis, row in zip(axes[:, 0], trained):
        loaded = load_generator(Path(row["weights"]), row["model"], "cpu")
        images = sampling.generate(loaded.model, loaded.config, loaded.module, ROW_SAMPLES, seed=seed)
        strip = torchvision.utils.make_grid(images.cpu(), nrow=ROW_SAMPLES, normalize=True, value_range=(-1, 1), padding=1)
        axis.imshow(strip.permute(1, 2, 0).numpy())
        axis.set_xticks([]), axis.set_yticks([])
        axis.set_ylabel(_label(row), rotation=0, ha="right", va="center", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="folder holding MNIST/raw/ (default: $GANZOO_DATA or the cache)")
    parser.add_argument("--only", default="", help="comma-separated losses (default: all)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per loss (default 1)")
    parser.add_argument("--num", type=int, default=10_000, help="samples scored per loss (default 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="cpu, cuda or auto")
    parser.add_argument("--out", type=Path, default=Path("runs/mnist-losses"))
    parser.add_argument("--figure", type=Path, default=Path("docs/mnist-losses.png"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for every loss's run, as in ganzoo train --set, named in the row; began "
                             "has other networks, so pair settings it lacks with --only")
    parser.add_argument("--from-json", type=Path, nargs="+",
                        help="print the table and redraw the figure from earlier runs' mnist_losses.json (rows joined)")
    args = parser.parse_args(argv)
    if args.from_json:
        saved = [json.loads(path.read_text()) for path in args.from_json]
        rows = [row for run in saved for row in run["rows"]]
        rows.sort(key=lambda row: LOSSES.index(row["loss"]))
        print_table(rows, saved[0]["epochs"])
        save_figure(rows, args.figure, args.seed)
        return 0
    losses = [name.strip() for name in args.only.split(",") if name.strip()] or LOSSES
    unknown = sorted(set(losses) - set(LOSSES))
    if unknown:
        parser.error(f"unknown loss {unknown[0]!r}; choose from {', '.join(LOSSES)}")
    rows = []
    for loss in losses:
        rows.append(train_and_score(loss, args))
        args.out.mkdir(parents=True, exist_ok=True)  # saved after every loss: an interrupted sweep keeps its rows
        (args.out / "mnist_losses.json").write_text(json.dumps({"epochs": args.epochs, "rows": rows}, indent=2) + "\n")
        print(f"{loss}: done in {rows[-1]['seconds']:.0f} s", flush=True)
    print_table(rows, args.epochs)
    save_figure(rows, args.figure, args.seed)
    print(f"\nfigure: {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
