"""The line a training run starts with: the data it found, and how it will go through it.

A folder whose sub-folders became classes, a size taken from the images, or a set much smaller than
expected is seen here at once, not after the run (in ``run.json``) or at sampling time.
"""

from __future__ import annotations

from typing import Any

#: Classes up to this many are listed with their counts; more are summed up by their smallest and largest count.
LISTED_CLASSES = 10


def data_line(model: str, dataset: str, data: Any, config: dict[str, Any], steps_per_epoch: int,
              device: str, processes: int = 1) -> str:
    """``training MODEL on DATASET: WHAT; batch B, S steps an epoch, E epochs, on DEVICE``."""
    epochs = int(config["epochs"])
    on = f"{processes} processes on {device.split(':')[0]}" if processes > 1 else device  # cuda:0, cuda:1...: cuda
    return (f"training {model} on {dataset}: {describe_data(data, config)}; batch {int(config['batch_size'])}, "
            f"{steps_per_epoch:,} step{'s' if steps_per_epoch != 1 else ''} an epoch, {epochs} "
            f"epoch{'s' if epochs != 1 else ''}, on {on}")


def describe_data(data: Any, config: dict[str, Any]) -> str:
    """What ``data`` holds: image pairs or two domains (translation sets), images with their shape and classes,
    or vectors; a plugin's other kind of data by its length. Only said, never checked: what it cannot describe (a
    plugin's data of another make) it counts, so that this line never stops a run."""
    try:
        return _described(data, config)
    except Exception:  # noqa: BLE001 - a line of information; the checks of the data are elsewhere
        return f"{len(data):,} samples"


def _described(data: Any, config: dict[str, Any]) -> str:
    sizes = getattr(data, "sizes", None)
    if sizes is not None:  # a translation set (in memory or streamed)
        count_a, count_b = sizes()
        side = f"at {int(config['image_size'])} px"
        if data.paired:
            return f"{count_a:,} image pair{'s' if count_a != 1 else ''} {side}"
        return f"{count_a:,} images in domain A and {count_b:,} in domain B {side}"
    tensors = getattr(data, "tensors", None)
    info = getattr(data, "info", None)
    if tensors is None or "real" not in tensors or info is None:
        return f"{len(data):,} samples"
    real = tensors["real"]
    if info.kind == "images":
        channels, height, width = (int(n) for n in real.shape[1:])
        what = f"{len(real):,} images, {channels}x{height}x{width}"
    else:
        what = f"{len(real):,} vectors of {int(real[0].numel())} values"
    labels = tensors.get("label")
    if labels is not None and int(config.get("num_classes") or 0) >= 2:
        what += f", {class_counts(labels, int(config['num_classes']), config.get('class_names'))}"
    return what


def class_counts(labels: Any, classes: int, names: list[str] | None) -> str:
    """``2 classes (cat 6, dog 6)``, or ``47 classes of 3 to 120 each`` when there are more than
    :data:`LISTED_CLASSES`."""
    import torch

    labels = labels.reshape(-1).long().cpu()
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < classes:  # -1 for unlabelled, say
        return f"{classes} classes"
    counts = torch.bincount(labels, minlength=classes).tolist()
    if classes > LISTED_CLASSES:
        return f"{classes} classes of {min(counts):,} to {max(counts):,} each"
    names = names if names and len(names) == classes else [str(index) for index in range(classes)]
    return f"{classes} classes ({', '.join(f'{name} {count:,}' for name, count in zip(names, counts))})"
