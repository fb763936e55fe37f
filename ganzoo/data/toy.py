"""Toy distributions generated in memory: the course's 1-D Gaussian and line, and the mode-collapse sets.

``ring8`` and ``grid25`` follow the literature (Metz et al. 2016; Lin et al. 2018): ring8 has 8
Gaussians of std 0.02 with means at angle 2*pi*k/8 on a circle of radius 2; grid25 has 25
Gaussians of std 0.05 at {-4, -2, 0, 2, 4}^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ganzoo.data import InMemoryData
from ganzoo.specs import DatasetInfo

TOY_SAMPLES = 51_200
TOY_SEED = 2014


@dataclass(frozen=True)
class GaussianMixture:
    """Equal-weight isotropic Gaussians: their means and shared standard deviation."""

    means: tuple[tuple[float, ...], ...]
    std: float

    def sample(self, num: int, seed: int = TOY_SEED) -> "torch.Tensor":  # noqa: F821
        """``num`` points, each from a uniformly chosen component, reproducible from ``seed``."""
        import torch

        gen = torch.Generator().manual_seed(seed)
        means = torch.tensor(self.means, dtype=torch.float32)
        which = torch.randint(len(self.means), (num,), generator=gen)
        return means[which] + self.std * torch.randn(num, means.shape[1], generator=gen)


RING8 = GaussianMixture(
    means=tuple((2.0 * math.cos(2 * math.pi * k / 8), 2.0 * math.sin(2 * math.pi * k / 8)) for k in range(8)),
    std=0.02,
)
GRID25 = GaussianMixture(means=tuple((float(x), float(y)) for x in range(-4, 5, 2) for y in range(-4, 5, 2)), std=0.05)

#: The course's first example: vectors whose entries are drawn from N(GAUSSIAN_MEAN, GAUSSIAN_STD).
GAUSSIAN_MEAN, GAUSSIAN_STD, GAUSSIAN_DIM = 4.0, 1.25, 8
#: Points on the line y = LINE_SLOPE * x + LINE_INTERCEPT with x uniform in [-1, 1].
LINE_SLOPE, LINE_INTERCEPT = 2.0, 0.5


def _vectors(name: str, values: "torch.Tensor") -> InMemoryData:  # noqa: F821
    info = DatasetInfo(kind="vectors", dim=int(values.shape[1]))
    return InMemoryData(name=name, info=info, tensors={"real": values.contiguous()})


def load_mixture(mixture: GaussianMixture, name: str) -> InMemoryData:
    """The mixture as a dataset of :data:`TOY_SAMPLES` points."""
    return _vectors(name, mixture.sample(TOY_SAMPLES))


def load_gaussian_1d() -> InMemoryData:
    """Vectors of :data:`GAUSSIAN_DIM` independent N(4, 1.25) entries."""
    import torch

    gen = torch.Generator().manual_seed(TOY_SEED)
    return _vectors("gaussian-1d", GAUSSIAN_MEAN + GAUSSIAN_STD * torch.randn(TOY_SAMPLES, GAUSSIAN_DIM, generator=gen))


def load_line_2d() -> InMemoryData:
    """Points (x, 2x + 0.5) with x uniform in [-1, 1]."""
    import torch

    gen = torch.Generator().manual_seed(TOY_SEED)
    x = torch.rand(TOY_SAMPLES, 1, generator=gen) * 2 - 1
    return _vectors("line-2d", torch.cat([x, LINE_SLOPE * x + LINE_INTERCEPT], dim=1))


MIXTURES = {"ring8": RING8, "grid25": GRID25}
