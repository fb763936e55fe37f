"""Conditional accuracy of generated digits, judged by a small CNN trained on real MNIST.

A conditional generator is good at following its label when a classifier trained on the real
data recognises the requested class in what it makes. The shipped classifier
(``weights/mnist-classifier.safetensors``, trained by ``benchmarks/train_digit_classifier.py``)
takes 28x28 grayscale images in [-1, 1], as generators output them, and keeps its MNIST test
accuracy in the file's metadata. A class counts as *present* when at least half of the images
requested for it are recognised as it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.safefile import WeightsError, load_tensors, read_metadata, save_tensors

CLASSIFIER_FORMAT = "ganzoo.classifier/1"
CLASSIFIER_FILE_NAME = "mnist-classifier.safetensors"
PRESENT_ACCURACY = 0.5


class DigitClassifier(nn.Module):
    """Two conv blocks (32 then 64 maps, each pooled to half size) and one linear layer: ~60k parameters."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(True),
            nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, num_classes),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits of (N, 1, 28, 28) images in [-1, 1]."""
        return self.net(images)


@dataclass(frozen=True)
class ConditionalScores:
    """Overall conditional accuracy, accuracy per requested class, and which classes are present."""

    accuracy: float
    per_class: tuple[float, ...]
    present: tuple[bool, ...]

    @property
    def all_present(self) -> bool:
        """Whether every class is recognised in at least half of the images requested for it."""
        return all(self.present)


def save_classifier(path: str | os.PathLike[str], classifier: DigitClassifier, test_accuracy: float) -> None:
    """Write the classifier's weights with its MNIST test accuracy in the metadata."""
    save_tensors(path, classifier.state_dict(), {"format": CLASSIFIER_FORMAT, "dataset": "mnist",
                                                 "test_accuracy": f"{test_accuracy:.4f}"})


def shipped_classifier_path() -> Path:
    """Where the MNIST classifier shipped with ganzoo lives (``weights/`` = package ``ganzoo.pretrained``)."""
    import ganzoo.pretrained

    return Path(ganzoo.pretrained.__file__).parent / CLASSIFIER_FILE_NAME


def load_classifier(path: str | os.PathLike[str] | None = None, device: str = "cpu") -> DigitClassifier:
    """The classifier saved in ``path`` (default: the shipped MNIST one), in eval mode on ``device``."""
    path = Path(path or shipped_classifier_path())
    if not path.is_file():
        raise WeightsError(f"{path} does not exist; train it with 'python benchmarks/train_digit_classifier.py'.")
    if read_metadata(path).get("format") != CLASSIFIER_FORMAT:
        raise WeightsError(f"{path} is not a ganzoo digit-classifier file; pass one written by benchmarks/train_digit_classifier.py.")
    classifier = DigitClassifier()
    classifier.load_state_dict(load_tensors(path))
    return classifier.to(device).eval()


def predict(classifier: DigitClassifier, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted classes (N,) of images in [-1, 1], on the classifier's device."""
    device = next(classifier.parameters()).device
    with torch.inference_mode():
        return torch.cat([classifier(images[i : i + batch_size].to(device).float()).argmax(1)
                          for i in range(0, len(images), batch_size)])


def conditional_scores(images: torch.Tensor, labels: torch.Tensor, classifier: Any = None) -> ConditionalScores:
    """Score generated ``images`` (N, 1, 28, 28) in [-1, 1] against the ``labels`` they were requested with."""
    if images.shape[1:] != (1, 28, 28):
        raise ValueError(f"the digit classifier takes (N, 1, 28, 28) images, got {tuple(images.shape)}")
    classifier = classifier if classifier is not None else load_classifier()
    labels = labels.to(next(classifier.parameters()).device)
    hits = (predict(classifier, images) == labels).float()
    classes = torch.arange(10, device=labels.device)
    asked = (labels[None, :] == classes[:, None]).float()
    per_class = ((asked * hits).sum(1) / asked.sum(1).clamp(min=1)).tolist()
    present = tuple(bool(count) and acc >= PRESENT_ACCURACY for count, acc in zip(asked.sum(1).tolist(), per_class))
    return ConditionalScores(hits.mean().item(), tuple(per_class), present)


def conditional_accuracy(images: torch.Tensor, labels: torch.Tensor, classifier: Any = None) -> float:
    """Share of generated images that the MNIST classifier assigns to the class they were requested for."""
    return conditional_scores(images, labels, classifier).accuracy
