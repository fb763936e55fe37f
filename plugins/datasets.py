"""Built-in datasets: MNIST, Fashion-MNIST, CIFAR-10 and the toy distributions, with the toy sets' mode scores."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ganzoo.hookspecs import hookimpl
from ganzoo.specs import DatasetInfo, DatasetSpec, MetricSpec

MNIST_DIGITS = tuple(str(d) for d in range(10))


def _idx_loader(source_name: str, dataset_name: str) -> Callable[..., object]:
    def load(root: Path, image_size: int | None = None, channels: int | None = None):
        from ganzoo.data import InMemoryData
        from ganzoo.data import idx

        source = getattr(idx, source_name)
        images, labels = idx.load_idx_dataset(source, Path(root))
        info = DatasetInfo("images", channels=1, image_size=28, num_classes=10, class_names=source.class_names)
        data = InMemoryData(dataset_name, info, {"real": images, "label": labels})
        return data.fit_images(image_size or 28, channels or 1)

    return load


def _load_cifar10(root: Path, image_size: int | None = None, channels: int | None = None):
    from ganzoo.data import InMemoryData, cifar

    images, labels = cifar.read_batches(cifar.ensure_extracted(Path(root)))
    info = DatasetInfo("images", channels=3, image_size=32, num_classes=10, class_names=cifar.CLASS_NAMES)
    return InMemoryData("cifar10", info, {"real": images, "label": labels}).fit_images(image_size or 32, channels or 3)


def _toy_loader(name: str) -> Callable[..., object]:
    def load(root: Path | None = None, image_size: int | None = None, channels: int | None = None):
        from ganzoo.data import toy

        if name in toy.MIXTURES:
            return toy.load_mixture(toy.MIXTURES[name], name)
        return {"gaussian-1d": toy.load_gaussian_1d, "line-2d": toy.load_line_2d}[name]()

    return load


@hookimpl
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """MNIST-family and CIFAR-10 images (downloaded on first use) and four in-memory toy sets."""
    digits = DatasetInfo("images", channels=1, image_size=28, num_classes=10, class_names=MNIST_DIGITS)
    register(DatasetSpec("mnist", "70k handwritten digits, 28x28 grayscale (60k train)", digits,
                         _idx_loader("MNIST", "mnist"), source="LeCun et al. 1998"))
    fashion = DatasetInfo("images", channels=1, image_size=28, num_classes=10)
    register(DatasetSpec("fashion-mnist", "Zalando clothing, 28x28 grayscale, 10 classes (60k train)", fashion,
                         _idx_loader("FASHION_MNIST", "fashion-mnist"), source="Xiao et al. 2017"))
    cifar = DatasetInfo("images", channels=3, image_size=32, num_classes=10)
    register(DatasetSpec("cifar10", "60k tiny colour images, 32x32, 10 classes (50k train)", cifar,
                         _load_cifar10, source="Krizhevsky 2009"))
    toys = {
        "gaussian-1d": ("vectors of 8 entries drawn from N(4, 1.25): the course's first GAN", 8),
        "line-2d": ("2-D points on the line y = 2x + 0.5, x in [-1, 1]", 2),
        "ring8": ("8 Gaussians (std 0.02) on a circle of radius 2 (Metz et al. 2016)", 2),
        "grid25": ("25 Gaussians (std 0.05) on the grid {-4,-2,0,2,4}^2 (Lin et al. 2018)", 2),
    }
    for name, (summary, dim) in toys.items():
        register(DatasetSpec(name, summary, DatasetInfo("vectors", dim=dim), _toy_loader(name), source="generated"))


def _toy_scores(samples: object, real: object, dataset: str) -> dict[str, float | int]:
    """The mode scores of 2-D points on the mixture ``dataset`` names (their means and spread are known, so the real
    points are not needed)."""
    from ganzoo.evaluation import toy_scores

    return toy_scores(samples.values, dataset)  # type: ignore[attr-defined]


@hookimpl
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """``--metrics toy`` (the default for ring8 and grid25): modes captured, the share of samples within 3 std of a
    mode, and the reverse KL of the modes' shares to uniform, as Srivastava et al. 2017 and Lin et al. 2018 count."""
    from ganzoo.data.toy import MIXTURES

    register(MetricSpec("toy", "modes captured, share within 3 std of a mode, reverse KL to uniform", _toy_scores,
                        kinds=("vectors",), datasets=tuple(MIXTURES), uses_real=False))
