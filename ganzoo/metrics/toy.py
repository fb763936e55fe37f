"""Mode coverage on Gaussian-mixture toy sets, scored as in the unrolled-GAN and PacGAN papers.

A sample is high quality when it lies within 3 standard deviations of its nearest mode; a
mode is captured when it is the nearest mode of at least one high-quality sample. The reverse
KL compares the histogram of high-quality samples over modes with the uniform histogram.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganzoo.data.toy import GaussianMixture


@dataclass(frozen=True)
class ModeScores:
    """Modes captured (of ``total_modes``), share of high-quality samples, reverse KL to uniform."""

    modes: int
    total_modes: int
    high_quality: float
    reverse_kl: float


def mode_scores(samples: np.ndarray, mixture: GaussianMixture) -> ModeScores:
    """Score ``samples`` (N, 2) against ``mixture``."""
    samples = np.asarray(samples, dtype=np.float64)
    means = np.asarray(mixture.means, dtype=np.float64)
    distances = np.linalg.norm(samples[:, None, :] - means[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    good = distances[np.arange(len(samples)), nearest] <= 3 * mixture.std
    counts = np.bincount(nearest[good], minlength=len(means)).astype(np.float64)
    captured = int((counts > 0).sum())
    if counts.sum() == 0:
        return ModeScores(0, len(means), 0.0, float("inf"))
    p = counts / counts.sum()
    nonzero = p > 0
    reverse_kl = float(np.sum(p[nonzero] * np.log(p[nonzero] * len(means))))
    return ModeScores(captured, len(means), float(good.mean()), reverse_kl)
