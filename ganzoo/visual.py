"""Pictures of training: image grids, toy-data scatter plots, loss curves (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


#: Pixels between and around the images of a grid (torchvision's ``padding``, drawn black).
GRID_PADDING = 2
#: The widest a row's name is drawn in a grid's legend column, in pixels: about a dozen letters of Pillow's built-in
#: font; a longer name is cut short with "...", so that the column stays narrow beside the samples.
LEGEND_TEXT_WIDTH = 64
#: Pixels left and right of the names in a grid's legend column.
LEGEND_MARGIN = 3


def save_image_grid(images: Any, path: Path, nrow: int | None = None, row_names: list[str] | None = None) -> None:
    """Save images in [-1, 1], shape (N, C, H, W), as one PNG grid (square-ish by default).

    ``row_names`` (one per grid row: a conditional model's grid of one row per class) adds a legend column at the
    left naming each row, beside the samples rather than over them, so their pixels stay what they were.
    """
    from torchvision.utils import save_image

    from ganzoo.safefile import atomic_target

    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    with atomic_target(path) as temporary:  # a full disk never leaves half a picture in place of a good one
        save_image(images.detach().float().cpu(), str(temporary), format="png", nrow=nrow, normalize=True,
                   value_range=(-1, 1), padding=GRID_PADDING)
        if row_names:
            _add_row_legend(temporary, row_names, int(images.shape[2]))


def _add_row_legend(path: Path, names: list[str], image_height: int) -> None:
    """Rewrite the grid picture at ``path`` with a legend column naming its rows of ``image_height`` pixel images."""
    from PIL import Image

    with Image.open(path) as grid:
        labelled = _with_row_legend(grid, names, image_height, GRID_PADDING)
    labelled.save(path, format="png")


def _with_row_legend(grid: Any, names: list[str], image_height: int, padding: int) -> Any:
    """``grid`` (a PIL image of rows of ``image_height`` pixel images, ``padding`` pixels apart and around them) with
    a white column at its left giving each row's name in black, beside its images: as wide as the widest name, up to
    :data:`LEGEND_TEXT_WIDTH`, past which names end in "...". Pillow's built-in font needs no download; the names
    must be printable ASCII, which it draws in every Pillow version (see :func:`ganzoo.sampling.legend_names`)."""
    from PIL import Image, ImageFont

    font = ImageFont.load_default()
    shown = [_fitted(name, font, LEGEND_TEXT_WIDTH) for name in names]
    width = 2 * LEGEND_MARGIN + max(math.ceil(font.getlength(text)) for text in shown)
    labelled = Image.new("RGB", (width + grid.width, grid.height), "white")
    for row, text in enumerate(shown):
        labelled.paste(_legend_cell(text, font, width, image_height), (0, padding + row * (image_height + padding)))
    labelled.paste(grid.convert("RGB"), (width, 0))
    return labelled


def _legend_cell(text: str, font: Any, width: int, height: int) -> Any:
    """One row's name in black on white, centred in height in a ``width`` x ``height`` picture (cut off where the
    images are shorter than the letters)."""
    from PIL import Image, ImageDraw

    cell = Image.new("RGB", (width, height), "white")
    left, top, _, bottom = font.getbbox(text)
    ImageDraw.Draw(cell).text((LEGEND_MARGIN - left, (height - (bottom - top)) // 2 - top), text, fill="black",
                              font=font)
    return cell


def _fitted(text: str, font: Any, width: int) -> str:
    """``text`` when it is at most ``width`` pixels wide in ``font``, else its longest beginning that fits with "..."."""
    if font.getlength(text) <= width:
        return text
    kept = len(text)
    while kept and font.getlength(text[:kept].rstrip() + "...") > width:
        kept -= 1
    return text[:kept].rstrip() + "..."


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
