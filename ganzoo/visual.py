"""Pictures of training: image grids, toy-data scatter plots, loss curves (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def save_image_grid(images: Any, path: Path, nrow: int | None = None) -> None:
    """Save images in [-1, 1], shape (N, C, H, W), as one PNG grid (square-ish by default)."""
    from torchvision.utils import save_image

    from ganzoo.safefile import atomic_target

    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    with atomic_target(path) as temporary:  # a full disk never leaves half a picture in place of a good one
        save_image(images.detach().float().cpu(), str(temporary), format="png", nrow=nrow, normalize=True,
                   value_range=(-1, 1), padding=2)


def save_image_files(pixels: Any, folder: Path, names: list[str]) -> None:
    """Save uint8 images (N, C, H, W), one PNG each, as ``folder/NAME`` for each of ``names`` (what FID tools and
    other programs that read a folder of pictures take); each written whole or not at all."""
    from PIL import Image

    from ganzoo.safefile import atomic_target

    folder.mkdir(parents=True, exist_ok=True)
    for array, name in zip(pixels.permute(0, 2, 3, 1).cpu().numpy(), names, strict=True):
        gray = array.shape[-1] == 1
        picture = Image.fromarray(array[..., 0] if gray else array, "L" if gray else "RGB")
        with atomic_target(folder / name) as temporary:
            picture.save(temporary, format="png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_vector_plot(fake: Any, real: Any, path: Path, title: str) -> None:
    """2-D data: generated points over real ones; other sizes: histograms of all entries. No real rows: no real layer."""
    plt = _pyplot()
    fake, real = fake.detach().float().cpu().numpy(), real.detach().float().cpu().numpy()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if fake.shape[1] == 2:
        ax.scatter(fake[:, 0], fake[:, 1], s=3, c="#d62728", alpha=0.5, label="generated")
        if len(real):
            ax.scatter(real[:, 0], real[:, 1], s=1, c="#222222", alpha=0.6, label="real")
        ax.set_aspect("equal", adjustable="datalim")
    else:
        bins = 60
        if len(real):
            ax.hist(real.ravel(), bins=bins, density=True, alpha=0.5, color="#999999", label="real")
        ax.hist(fake.ravel(), bins=bins, density=True, alpha=0.6, color="#d62728", label="generated")
    ax.set_title(title)
    ax.legend(loc="upper right", markerscale=4)
    _save_figure(fig, path)


def save_loss_plot(metrics_path: Path, path: Path) -> bool:
    """Plot every logged loss and metric from ``metrics.jsonl`` against the step; False if nothing to plot."""
    from ganzoo.training_log import read_rows

    rows = [r for r in read_rows(metrics_path) if r.get("event") == "log"]
    if not rows:
        return False
    plt = _pyplot()
    skip = {"event", "epoch", "step", "images_per_s", "time"}
    keys = [k for k in rows[-1] if k not in skip]
    losses = [k for k in keys if not k.startswith("D(")]
    probs = [k for k in keys if k.startswith("D(")]
    fig, axes = plt.subplots(1, 2 if probs else 1, figsize=(11 if probs else 6, 4), dpi=100, squeeze=False)
    steps = [r["step"] for r in rows]
    marker = "o" if len(rows) < 20 else None  # a short run's few points (one, for a single log line) would draw nothing
    if len(losses) > 10:  # the default cycle has 10 colours: more series would share them
        axes[0][0].set_prop_cycle(color=plt.get_cmap("tab20").colors)
    for key in losses:
        axes[0][0].plot(steps, [r.get(key) for r in rows], label=key, marker=marker)
    axes[0][0].set_xlabel("step")
    axes[0][0].set_title("losses")
    axes[0][0].legend()
    for key in probs:
        axes[0][1].plot(steps, [r.get(key) for r in rows], label=key, marker=marker)
    if probs:
        axes[0][1].set_xlabel("step")
        seen = [r[key] for r in rows for key in probs if isinstance(r.get(key), (int, float))]
        axes[0][1].set_ylim(min([0.0, *seen]) - 0.02, max([1.0, *seen]) + 0.02)  # 0..1, widened to show every value
        axes[0][1].set_title("discriminator outputs")
        axes[0][1].legend()
    _save_figure(fig, path)
    return True


def _save_figure(fig: Any, path: Path) -> None:
    """Write ``fig`` as a PNG at ``path`` through a temporary file (a full disk keeps the picture there whole), and
    free it."""
    from ganzoo.safefile import atomic_target

    try:
        with atomic_target(path) as temporary:
            fig.savefig(temporary, format="png", bbox_inches="tight")
    finally:
        _pyplot().close(fig)
