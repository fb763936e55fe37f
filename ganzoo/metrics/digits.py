"""Offline scores for MNIST-like digits, judged by the small CNN that ganzoo trains on MNIST.

Features are the classifier's penultimate activations (the 3136 flattened conv features its last
linear layer reads); the Fréchet distance between generated and real features plays FID's role
without any download. The class histogram of the predictions, its KL divergence to the uniform
histogram (0 = every digit equally often, log 10 = a single digit) and the mean top-class
probability (confidence) show mode dropping and blurry digits; conditional models also get the
share of images recognised as the class they were asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ganzoo.errors import GanzooError

DIGIT_SHAPE = (1, 28, 28)


class DigitFeatures:
    """Callable: uint8 images (N, 1, 28, 28) to the classifier's ``features`` (N, 3136) and ``logits`` (N, 10).

    Square grayscale images of another side (a DCGAN trained at 32 or 64 px) are resized to
    28 x 28 first, with antialiasing, so that they are judged as the digits they show.
    """

    def __init__(self, classifier: Any, identity: str) -> None:
        self.classifier = classifier
        self.body = classifier.net[:-1]
        self.head = classifier.net[-1]
        self.device = next(classifier.parameters()).device
        #: Names the classifier in cache keys.
        self.name = f"digits-{identity}"

    def __call__(self, images: Any) -> dict[str, Any]:
        import torch

        if images.dim() != 4 or images.shape[1] != 1 or images.shape[2] != images.shape[3]:
            raise GanzooError(f"The digit classifier reads square grayscale images, got {tuple(images.shape[1:])}; "
                              f"use --metrics digits only with MNIST-like data.")
        height = images.shape[2]
        with torch.inference_mode():
            pixels = images.to(self.device).float() / 127.5 - 1
            if height != DIGIT_SHAPE[1]:
                pixels = torch.nn.functional.interpolate(pixels, size=DIGIT_SHAPE[1:], mode="bilinear", antialias=True)
            features = self.body(pixels)
            return {"features": features.float(), "logits": self.head(features).float()}


def load_digit_features(path: str | os.PathLike[str] | None = None, device: str = "cpu") -> DigitFeatures:
    """The shipped MNIST classifier (or the one in ``path``) as a feature extractor."""
    from ganzoo.download import file_digest
    from ganzoo.metrics.classifier import load_classifier, shipped_classifier_path

    classifier = load_classifier(path, device)
    return DigitFeatures(classifier, file_digest(path or shipped_classifier_path(), "sha256")[:12])


@dataclass(frozen=True)
class ClassStatistics:
    """Share of samples predicted as each class, its KL to uniform, and the mean top-class probability."""

    histogram: tuple[float, ...]
    kl_to_uniform: float
    mean_confidence: float


def class_statistics(logits: np.ndarray) -> ClassStatistics:
    """Class statistics of classifier ``logits`` (N, K)."""
    logits = np.asarray(logits, dtype=np.float64)
    classes = logits.shape[1]
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = shifted / shifted.sum(axis=1, keepdims=True)
    histogram = np.bincount(probs.argmax(axis=1), minlength=classes) / len(probs)
    nonzero = histogram > 0
    kl = float(np.sum(histogram[nonzero] * np.log(histogram[nonzero] * classes)))
    return ClassStatistics(tuple(float(h) for h in histogram), kl, float(probs.max(axis=1).mean()))


#: Class names read as the digit they name, besides "0" to "9".
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def digit_of(name: str) -> int | None:
    """The digit a class name names ("7", "seven", "Seven"), or None for a name that names none."""
    text = str(name).strip().lower()
    if len(text) == 1 and text.isdigit():
        return int(text)
    return DIGIT_WORDS.index(text) if text in DIGIT_WORDS else None


def digit_labels(labels: np.ndarray, class_names: Sequence[str] | None) -> np.ndarray | None:
    """The digits samples of class indices ``labels`` were asked to show: a class's index is its place among
    ``class_names`` (class folders in name order: ``eight`` before ``five``), so each index is read through its
    name; None when a class names no digit. Without names the indices are the digits themselves."""
    if class_names is None:
        return labels
    digits = [digit_of(name) for name in class_names]
    if any(digit is None for digit in digits):
        return None
    return np.asarray(digits, dtype=np.int64)[np.asarray(labels)]


def conditional_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Share of samples whose predicted class is the label they were generated for."""
    return float((np.asarray(logits).argmax(axis=1) == np.asarray(labels)).mean())

