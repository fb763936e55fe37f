"""Distances between feature distributions: the Fréchet distance (FID) and the kernel distance (KID).

The Fréchet distance between Gaussians N(m1, S1) and N(m2, S2) is
``|m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``. The trace of the matrix square root is
computed without scipy from the eigenvalues of the symmetric matrix ``L^T S2 L`` (``S1 = L L^T``), which
are those of ``S1 S2``; small negative eigenvalues from rounding are clipped to zero, so the result
stays real.

KID (Bińkowski et al. 2018) is the unbiased estimator of the squared MMD with the cubic polynomial
kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets, as torch-fidelity and the paper do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GaussianStats:
    """Mean and covariance of a set of feature vectors, and how many vectors they came from."""

    mean: np.ndarray
    cov: np.ndarray
    count: int


def gaussian_stats(features: np.ndarray) -> GaussianStats:
    """Mean and (unbiased) covariance of ``features`` (N, D), in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need at least 2 feature vectors of shape (N, D), got {features.shape}")
    return GaussianStats(features.mean(axis=0), np.cov(features, rowvar=False), len(features))


class RunningStats:
    """Mean and covariance accumulated batch by batch in float64, so no feature matrix is kept whole.

    Sums are taken around the first batch's mean (the shifted-data method), which keeps the one-pass
    covariance accurate when the features' mean is large compared with their spread.
    """

    def __init__(self) -> None:
        self.count = 0
        self.shift: np.ndarray | None = None
        self.total: np.ndarray | None = None
        self.outer: np.ndarray | None = None

    def update(self, features: np.ndarray) -> None:
        """Add the rows of ``features`` (N, D)."""
        features = np.asarray(features, dtype=np.float64)
        if self.shift is None:
            self.shift = features.mean(axis=0)
            self.total = np.zeros_like(self.shift)
            self.outer = np.zeros((len(self.shift), len(self.shift)))
        centred = features - self.shift
        self.count += len(features)
        self.total += centred.sum(axis=0)
        self.outer += centred.T @ centred

    def stats(self) -> GaussianStats:
        """The mean and unbiased covariance of every row added so far."""
        if self.count < 2:
            raise ValueError("need at least 2 feature vectors")
        mean_offset = self.total / self.count
        cov = (self.outer - self.count * np.outer(mean_offset, mean_offset)) / (self.count - 1)
        return GaussianStats(self.shift + mean_offset, cov, self.count)


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """``tr((cov1 cov2)^(1/2))`` for covariance matrices.

    With ``cov1 = L L^T`` (Cholesky), ``cov1 cov2`` is similar to the symmetric ``L^T cov2 L``, so the
    trace is the sum of the square roots of that matrix's eigenvalues: one Cholesky factorisation
    and one eigenvalue-only decomposition, several times faster than eigenvectors for 2048 features.
    A singular ``cov1`` (fewer samples than features) gets the smallest diagonal jitter that factorises.
    """
    scale = max(float(np.trace(cov1)) / len(cov1), np.finfo(np.float64).tiny)
    jitter = 0.0
    while True:
        try:
            factor = np.linalg.cholesky(cov1 + jitter * scale * np.eye(len(cov1)))
            break
        except np.linalg.LinAlgError:
            jitter = 1e-12 if jitter == 0.0 else jitter * 10
    middle = factor.T @ cov2 @ factor
    values = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(values, 0, None)).sum())


def frechet_distance(stats1: GaussianStats, stats2: GaussianStats) -> float:
    """The Fréchet distance between the Gaussians fitted to two feature sets (FID when the features are Inception's)."""
    if stats1.mean.shape != stats2.mean.shape:
        raise ValueError(f"feature sizes differ: {stats1.mean.shape} vs {stats2.mean.shape}")
    diff = stats1.mean - stats2.mean
    value = diff @ diff + np.trace(stats1.cov) + np.trace(stats2.cov) - 2 * trace_sqrt_product(stats1.cov, stats2.cov)
    return float(max(value, 0.0))


def frechet_distance_to(features: np.ndarray, reference: GaussianStats) -> float:
    """The Fréchet distance between the Gaussian fitted to ``features`` (N, D) and ``reference``.

    With fewer samples than features the covariance ``C^T C`` (``C`` the centred, scaled samples) is
    singular; then ``tr((C^T C R)^(1/2))`` is computed exactly from the small N x N matrix ``C R C^T``,
    which has the same non-zero eigenvalues, instead of factorising a D x D matrix.
    """
    features = np.asarray(features, dtype=np.float64)
    count, dim = features.shape
    if count > dim:
        return frechet_distance(gaussian_stats(features), reference)
    mean = features.mean(axis=0)
    centred = (features - mean) / np.sqrt(count - 1)
    small = centred @ reference.cov @ centred.T
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((small + small.T) / 2), 0, None)).sum()
    diff = mean - reference.mean
    value = diff @ diff + (centred**2).sum() + np.trace(reference.cov) - 2 * trace_sqrt
    return float(max(value, 0.0))


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    """``(x.y / d + coef0) ** degree`` between the rows of ``x`` and ``y`` (d = feature size)."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD between samples ``x`` (m, D) and ``y`` (n, D) with the cubic polynomial kernel."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2 * kxy.mean())


@dataclass(frozen=True)
class KernelDistance:
    """KID: mean and standard deviation of the unbiased squared MMD over ``subsets`` random subsets."""

    mean: float
    std: float
    subsets: int
    subset_size: int


def kernel_distance(fake: np.ndarray, real: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> KernelDistance:
    """KID between feature sets; the subset size shrinks to the smaller set when either has fewer rows."""
    size = min(subset_size, len(fake), len(real))
    if size < 2:
        raise ValueError("KID needs at least 2 feature vectors on each side")
    rng = np.random.default_rng(seed)
    values = np.array([
        mmd2_unbiased(fake[rng.choice(len(fake), size, replace=False)], real[rng.choice(len(real), size, replace=False)])
        for _ in range(subsets)
    ])
    return KernelDistance(float(values.mean()), float(values.std()), subsets, size)
