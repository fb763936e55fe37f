"""Scoring generated samples against a dataset: Inception metrics, digit-classifier scores, toy mode scores.

Protocol: generated samples (uint8 images, as ``ganzoo sample`` writes them) are compared with the
dataset's training split loaded at the samples' resolution and channel count. Real-data features
are computed once per dataset, resolution, feature extractor (named by its weights' SHA-256) and
reference size, and cached in ``cache_dir()/eval-stats`` as safetensors: mean and covariance of all
reference features plus the features of ``REFERENCE_KEEP`` of them (KID and precision/recall).
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ganzoo.errors import GanzooError, unknown_name
from ganzoo.metric_names import METRICS

INCEPTION_METRICS = ("fid", "kid", "is", "pr")
#: The metrics that compare samples with features of real images (the rest, IS and toy, need none).
REFERENCED_METRICS = ("fid", "kid", "pr", "digits")
#: Real features kept in the cache for KID subsets and precision/recall; also the precision/recall sample cap.
REFERENCE_KEEP = 10_000
STATS_FORMAT = "ganzoo.eval-stats/1"
#: The Inception Score is the mean over this many splits of the samples, as in Salimans et al. 2016.
IS_SPLITS = 10
#: The digit classifier's classes: the ten digits.
DIGIT_CLASSES = 10

#: The first bytes of a zip archive, as ``np.load`` tells an .npz from other files: a local file header, or the
#: end-of-directory record of an archive with no files.
NPZ_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

FeatureExtractor = Callable[[Any], dict[str, Any]]


@dataclass
class Samples:
    """Generated data: uint8 images (N, C, H, W) or float vectors (N, D), with the labels they were asked for."""

    kind: str
    values: Any
    labels: np.ndarray | None = None
    #: the name of each class index ``labels`` holds (a conditional generator's classes); None: not known
    class_names: tuple[str, ...] | None = None


@dataclass
class Reference:
    """Real-data features summarised: Gaussian statistics of all of them and a random subset kept as is."""

    mean: np.ndarray
    cov: np.ndarray
    count: int
    features: np.ndarray
    cached: bool = False
    #: Why the features could not be cached, for the user; empty when they were.
    note: str = ""


def parse_metrics(text: str, plugin_metrics: Sequence[str] = ()) -> list[str]:
    """``"fid,kid"`` to ``["fid", "kid"]``, among the built-in :data:`METRICS` and ``plugin_metrics`` (the names
    plugins register, taken in any case); an unknown name raises one sentence suggesting the close known ones,
    phrased as for unknown models and datasets (:func:`ganzoo.errors.unknown_name`)."""
    known = {name.lower(): name for name in (*METRICS, *plugin_metrics)}
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise GanzooError(f"No metric in {text!r}; choose among {', '.join(known.values())} (comma-separated).")
    for name in names:
        if name.lower() not in known:
            raise unknown_name("metric", name, list(known.values()))
    return list(dict.fromkeys(known[name.lower()] for name in names))


def default_metrics(kind: str, dataset: str, dataset_metrics: Sequence[str] = ()) -> list[str]:
    """The metrics plugins register for ``dataset`` (``dataset_metrics``: ``toy`` for ring8 and grid25) when there
    are any, else the Inception metrics for images; points that no metric knows are refused in one sentence."""
    if dataset_metrics:
        return list(dataset_metrics)
    if kind != "images":
        raise GanzooError(f"No metric scores the points of {dataset!r}: the toy scores are defined for ring8 and grid25 "
                          "only, and no plugin registers a metric for it; evaluate a model trained on one of those.")
    return list(INCEPTION_METRICS)


def read_samples(path: str | os.PathLike[str]) -> Samples:
    """Samples from an ``.npz`` written by ``ganzoo sample``: ``images`` uint8 (N, C, H, W) or ``samples`` (N, D).

    Anything else (a .png, a .npy, a damaged archive) is refused in one sentence before numpy sees it: numpy
    would take a file that is not an archive for a pickle and advise unpickling it, which ganzoo never does.
    """
    import zipfile

    import torch

    not_npz = (f"Cannot read samples from {path}: it is not an .npz written by 'ganzoo sample'; "
               f"pass the file that 'ganzoo sample MODEL --out x.npz' writes.")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise GanzooError(f"Cannot read samples from {path} ({exc.strerror or exc}); pass an .npz written by "
                          f"'ganzoo sample --out x.npz'.") from None
    if magic not in NPZ_MAGIC:
        raise GanzooError(not_npz)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            content = {name: arrays[name] for name in arrays.files}
    except (zipfile.BadZipFile, EOFError, ValueError):  # a damaged archive, or arrays (objects) ganzoo never writes
        raise GanzooError(not_npz) from None
    except MemoryError:  # a damaged header claiming an array far larger than the file
        raise GanzooError(f"Cannot read samples from {path}: its arrays claim more memory than this machine has, so "
                          f"it is damaged or was not written by 'ganzoo sample'; write it again.") from None
    except OSError as exc:
        raise GanzooError(f"Cannot read samples from {path} ({exc}); pass an .npz written by 'ganzoo sample --out x.npz'.") from None
    if "images" in content:
        images = content["images"]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3) or 0 in images.shape[2:]:
            raise GanzooError(f"{path}: 'images' must be uint8 (N, C, H, W) with C = 1 or 3 and H, W at least 1, got "
                              f"{images.dtype} {images.shape}.")
        samples = Samples("images", torch.from_numpy(images))
    elif "samples" in content and content["samples"].ndim == 2 and content["samples"].dtype.kind in "fiu":
        points = content["samples"]
        if not np.isfinite(points).all():  # NaN or inf would be scored as far-off points, without a word
            raise GanzooError(f"{path}: {np.count_nonzero(~np.isfinite(points)):,} of the sample values are NaN or "
                              f"infinite, so they cannot be scored; sample again from a generator that had not diverged.")
        samples = Samples("vectors", torch.from_numpy(points.astype(np.float32)))
    else:
        raise GanzooError(f"{path} holds neither 'images' (uint8 N,C,H,W) nor 'samples' (float N,D); "
                          f"write it with 'ganzoo sample --out x.npz'.")
    count = len(samples.values)
    if count < 2:
        raise GanzooError(f"{path} holds {count} sample{'s' if count != 1 else ''}; scores need at least 2 (thousands "
                          f"for stable ones), so write more with 'ganzoo sample --num N --out x.npz'.")
    samples.labels = _labels(path, content.get("labels"), count)
    samples.class_names = _class_names(content.get("class_names"), samples.labels)
    return samples


def _class_names(names: np.ndarray | None, labels: np.ndarray | None) -> tuple[str, ...] | None:
    """The class each label index names, as 'ganzoo sample' writes them beside the labels (a folder's class
    sub-folders: ``eight`` before ``five``), so that scores read each class by its name; None when the file has
    none, or none that every label indexes (an index is then its own class)."""
    if names is None or labels is None or names.ndim != 1 or names.dtype.kind != "U":
        return None
    if len(labels) and int(labels.max()) >= len(names):
        return None
    return tuple(str(name) for name in names)


def _labels(path: str | os.PathLike[str], labels: np.ndarray | None, count: int) -> np.ndarray | None:
    """The class of each sample, checked: one class index (0 or more) per sample, as 'ganzoo sample --class' writes
    them."""
    again = "write the file again with 'ganzoo sample --class ... --out x.npz'"
    if labels is not None and (labels.ndim != 1 or len(labels) != count or labels.dtype.kind not in "iu"):
        raise GanzooError(f"{path}: 'labels' must hold one whole number per sample ({count}), got {labels.dtype} "
                          f"{labels.shape}; {again}.")
    if labels is not None and len(labels) and labels.min() < 0:
        raise GanzooError(f"{path}: 'labels' must be class indices (0 or more), but one is {labels.min()}; {again}.")
    return labels


def check_digit_labels(path: str | os.PathLike[str], labels: np.ndarray) -> None:
    """Refuse, before anything is scored, labels the digit classifier cannot compare its predictions with: its
    conditional accuracy needs digit classes (0 to 9); another set's classes would give a meaningless share."""
    if len(labels) and labels.max() >= DIGIT_CLASSES:
        raise GanzooError(f"{path}: its labels go up to {labels.max()}, but the digit classifier knows the "
                          f"{DIGIT_CLASSES} digits (0 to 9) only, so it cannot tell whether samples match their "
                          "labels; score them with other --metrics, or write the file without its 'labels'.")


def dataset_key(name: str, root: Path) -> str:
    """A cache-safe name for a dataset: image folders by path, their files' count and times and the decoding's
    version; registered datasets by name and the data ``root`` they are read from, since another root may hold
    other files under the same name (a subset, say) whose features must not stand in for these."""
    folder = Path(os.path.expanduser(name))
    if not folder.is_dir():
        where = hashlib.sha256(str(root.expanduser().resolve()).encode()).hexdigest()[:12]
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) + f"-root-{where}"
    from ganzoo.data.decoded_cache import FORMAT
    from ganzoo.data.folder import list_images, training_split

    folder = training_split(folder)[0]  # the images the reference holds: a split's train/ alone
    files = list_images(folder)
    # with the decoding's version: pictures decoded another way (before EXIF turning, say) give other features
    stamp = f"{folder.resolve()}|{len(files)}|{max((f.stat().st_mtime_ns for f in files if f.exists()), default=0)}|{FORMAT}"
    return f"folder-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}"


def feature_batches(extractor: FeatureExtractor, images: Any, batch_size: int, progress: Any = None,
                    description: str = "features") -> Iterator[dict[str, np.ndarray]]:
    """Run ``extractor`` over ``images`` in batches, yielding ``features`` and ``logits`` as float32 arrays."""
    task = progress.add_task(description, total=len(images)) if progress is not None else None
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        yield {name: value.cpu().float().numpy() for name, value in extractor(batch).items()}
        if task is not None:
            progress.advance(task, len(batch))


def extract(extractor: FeatureExtractor, images: Any, batch_size: int, progress: Any = None,
            description: str = "features") -> dict[str, np.ndarray]:
    """Every output of ``extractor`` over ``images``, concatenated."""
    parts: dict[str, list[np.ndarray]] = {}
    for outputs in feature_batches(extractor, images, batch_size, progress, description):
        for name, value in outputs.items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


def reference_path(extractor_name: str, key: str, real_num: int | None) -> Path:
    """Where the real features of dataset ``key`` under this extractor and reference size are cached."""
    from ganzoo.paths import cache_dir

    return cache_dir() / "eval-stats" / f"{key}-train-{extractor_name}-n{real_num or 'all'}.safetensors"


def reference_cached(extractor_name: str, key: str, real_num: int | None) -> bool:
    """Whether :func:`reference` will read these real features from the cache; when not, it needs the dataset,
    which eval then loads before generating anything, so that a dataset it cannot have fails at once."""
    return _read_reference(reference_path(extractor_name, key, real_num)) is not None


def reference(extractor: Any, key: str, load_real: Callable[[], Any], batch_size: int, real_num: int | None,
              progress: Any = None, say: Callable[[str], None] | None = None) -> Reference:
    """Features of the real images, from the cache when this dataset/extractor/size was seen before.

    A cache file that is damaged (truncated, non-finite, shapes that do not fit) is computed again and
    replaced; one that cannot be written costs only the next run's time, so the scores still come out. ``say``
    is told when the features are computed rather than read.
    """
    import torch

    from ganzoo.metrics.frechet import RunningStats
    from ganzoo.paths import CACHE_ENV
    from ganzoo.safefile import save_tensors

    path = reference_path(extractor.name, key, real_num)
    cached = _read_reference(path)
    if cached is not None:
        return cached
    images = load_real()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    images = images[order[: real_num or len(images)]]
    if say is not None:  # minutes for a whole training split, with no bar where the output is not a terminal
        say(f"computing the features of {len(images)} real images, to keep in {path.parent} for later evals")
    running, kept = RunningStats(), []
    for outputs in feature_batches(extractor, images, batch_size, progress, "real features"):
        running.update(outputs["features"])
        if sum(len(part) for part in kept) < REFERENCE_KEEP:
            kept.append(outputs["features"])
    stats = running.stats()
    features = np.concatenate(kept)[:REFERENCE_KEEP]
    note = ""
    try:
        save_tensors(path, {"mean": torch.from_numpy(stats.mean), "cov": torch.from_numpy(stats.cov),
                            "features": torch.from_numpy(features)}, {"format": STATS_FORMAT, "count": str(stats.count)})
    except GanzooError as exc:
        cause = exc.__cause__
        reason = (cause.strerror or cause) if isinstance(cause, OSError) else exc
        note = (f"the real features could not be cached in {path.parent} ({reason}); the next eval computes them "
                f"again unless {CACHE_ENV} points at a writable folder")
    return Reference(stats.mean, stats.cov, stats.count, features, note=note)


def _read_reference(path: Path) -> Reference | None:
    """The cached real features at ``path``, or ``None`` when there are none or the file is damaged.

    Read once per version of the file: eval asks before generating (:func:`reference_cached`) and again when
    scoring (:func:`reference`), and the file holds tens of megabytes of features."""
    try:
        status = path.stat()
    except OSError:
        return None
    return _read_reference_version(path, status.st_mtime_ns, status.st_size)


@functools.lru_cache(maxsize=2)
def _read_reference_version(path: Path, mtime_ns: int, size: int) -> Reference | None:
    """:func:`_read_reference` of the file's version ``(mtime_ns, size)``, which keys the cache of this function."""
    from ganzoo.safefile import WeightsError, load_tensors, read_metadata

    if not path.is_file():
        return None
    try:
        metadata = read_metadata(path)
        count = metadata.get("count", "")
        if metadata.get("format") != STATS_FORMAT or not (count.isascii() and count.isdigit()):
            return None
        tensors = load_tensors(path)
    except WeightsError:
        return None
    if set(tensors) != {"mean", "cov", "features"}:
        return None
    # copies: a kept result must not be a view of a mapped file that may later be rewritten in place
    mean, cov, features = (tensors[name].numpy().copy() for name in ("mean", "cov", "features"))
    dim = mean.shape[0] if mean.ndim == 1 else -1
    if cov.shape != (dim, dim) or features.ndim != 2 or features.shape[1] != dim or len(features) < 2:
        return None
    if not all(np.isfinite(array).all() for array in (mean, cov, features)):
        return None
    return Reference(mean, cov, int(metadata["count"]), features, cached=True)


def inception_scores(metrics: list[str], fake: dict[str, np.ndarray], real: Reference | None) -> dict[str, Any]:
    """FID, KID (ganzoo.metrics.frechet), IS and precision/recall (torch-fidelity's definitions) from features."""
    import torch

    from ganzoo.metrics.frechet import GaussianStats, frechet_distance_to, kernel_distance

    results: dict[str, Any] = {}
    if "fid" in metrics:
        results["fid"] = frechet_distance_to(fake["features"], GaussianStats(real.mean, real.cov, real.count))
    if "kid" in metrics:
        kid = kernel_distance(fake["features"], real.features)
        results.update(kid_mean=kid.mean, kid_std=kid.std, kid_subset_size=kid.subset_size)
    if "is" in metrics:
        from torch_fidelity.metric_isc import isc_features_to_metric

        if len(fake["logits"]) < IS_SPLITS:
            raise GanzooError(f"The Inception Score averages over {IS_SPLITS} splits, so it needs at least {IS_SPLITS} samples; raise --num.")

        scores = isc_features_to_metric(torch.from_numpy(fake["logits"]), splits=IS_SPLITS, shuffle=True, rng_seed=2020)
        results.update(is_mean=scores["inception_score_mean"], is_std=scores["inception_score_std"])
    if "pr" in metrics:
        from torch_fidelity.metric_prc import prc_features_to_metric

        count = min(len(fake["features"]), len(real.features))
        scores = prc_features_to_metric(torch.from_numpy(fake["features"][:count]).float(),
                                        torch.from_numpy(real.features[:count]).float(),
                                        prc_neighborhood=3, save_cpu_ram=True, verbose=False)
        results.update(precision=scores["precision"], recall=scores["recall"], pr_samples=count)
    return results


def digit_scores(fake: dict[str, np.ndarray], real: Reference, labels: np.ndarray | None,
                 class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Fréchet distance in the digit classifier's feature space, class histogram, KL to uniform, confidence, and
    for samples of asked classes the share the classifier reads as the digit asked for (each class read through its
    name in ``class_names``; left out when a class names no digit, see :func:`digit_classes_note`)."""
    from ganzoo.metrics.digits import class_statistics, conditional_accuracy, digit_labels
    from ganzoo.metrics.frechet import GaussianStats, frechet_distance_to

    if labels is not None:
        labels = digit_labels(labels, class_names)

    classes = class_statistics(fake["logits"])
    results: dict[str, Any] = {
        "digits_frechet": frechet_distance_to(fake["features"], GaussianStats(real.mean, real.cov, real.count)),
        "digits_kl_to_uniform": classes.kl_to_uniform,
        "digits_confidence": classes.mean_confidence,
        "digits_histogram": list(classes.histogram),
    }
    if labels is not None:
        results["digits_conditional_accuracy"] = conditional_accuracy(fake["logits"], labels)
    return results


def digit_classes_note(samples: Samples) -> str | None:
    """Why the digits' conditional accuracy is left out for ``samples`` of classes that name no digit, or None."""
    from ganzoo.metrics.digits import digit_labels

    if samples.labels is None or samples.class_names is None or digit_labels(samples.labels, samples.class_names) \
            is not None:
        return None
    shown = ", ".join(samples.class_names[:4]) + (", ..." if len(samples.class_names) > 4 else "")
    return (f"digits_conditional_accuracy is left out: the generator's classes ({shown}) do not name the digits "
            "0 to 9 (as folders named 0..9 or zero..nine would), so its labels cannot be matched with the digit "
            "classifier's")


def toy_scores(samples: Any, dataset: str) -> dict[str, Any]:
    """Modes captured, share of high-quality samples and reverse KL on ring8 / grid25."""
    from ganzoo.data.toy import MIXTURES
    from ganzoo.metrics.toy import mode_scores

    values = np.asarray(samples.cpu().numpy(), dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != 2:
        raise GanzooError(f"Toy scores need 2-D points (N, 2), got samples of shape {values.shape}.")
    scores = mode_scores(values, MIXTURES[dataset])
    return {"modes": scores.modes, "total_modes": scores.total_modes, "high_quality": scores.high_quality,
            "reverse_kl": scores.reverse_kl}
