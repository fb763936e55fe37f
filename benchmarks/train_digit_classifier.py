"""Train the MNIST digit classifier that judges conditional generators, and print its test accuracy.

    python benchmarks/train_digit_classifier.py --data-root /work/shared/datasets

Writes ``weights/mnist-classifier.safetensors`` (about 240 kB) with the MNIST test accuracy in
its metadata (``test_accuracy``). Training images get random shifts of up to 2 pixels, so the
classifier judges a digit's shape rather than its exact placement. A few epochs on a CPU take
minutes; on a GPU seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ganzoo.data.idx import MNIST, load_idx_dataset
from ganzoo.device import pick_device
from ganzoo.metrics.classifier import DigitClassifier, predict, save_classifier, shipped_classifier_path
from ganzoo.paths import data_root


def shifted(images: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Each image moved by a random whole-pixel offset in [-max_shift, max_shift] (zero padding = background)."""
    padded = F.pad(images, (max_shift,) * 4, value=-1.0)
    size = images.shape[-1]
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2,), generator=generator).tolist()
    return padded[..., dy : dy + size, dx : dx + size]


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] to float [-1, 1], the range generators output."""
    return images.float().div(127.5).sub(1.0)


def train(root: Path, epochs: int, device: torch.device, seed: int) -> tuple[DigitClassifier, float]:
    """Adam with a cosine-decayed rate, batches of 128; returns the classifier and its test accuracy."""
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    train_x, train_y = load_idx_dataset(MNIST, root, "train")
    test_x, test_y = load_idx_dataset(MNIST, root, "test")
    train_x, train_y = to_unit(train_x).to(device), train_y.to(device)
    classifier = DigitClassifier().to(device)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=2e-3)
    batch, steps = 128, len(train_x) // 128
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps)
    for epoch in range(epochs):
        start = time.perf_counter()
        classifier.train()
        perm = torch.randperm(len(train_x), generator=order).to(device)
        for step in range(steps):
            index = perm[step * batch : (step + 1) * batch]
            loss = F.cross_entropy(classifier(shifted(train_x[index], order)), train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        classifier.eval()
        accuracy = (predict(classifier, to_unit(test_x)).cpu() == test_y).float().mean().item()
        print(f"epoch {epoch + 1}/{epochs}: test accuracy {accuracy:.4f} ({time.perf_counter() - start:.1f} s)", flush=True)
    return classifier.cpu(), accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="folder holding MNIST/raw/ (default: $GANZOO_DATA or the cache)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="cpu, cuda or auto")
    parser.add_argument("--out", type=Path, default=shipped_classifier_path())
    args = parser.parse_args()
    classifier, accuracy = train(data_root(args.data_root), args.epochs, pick_device(args.device), args.seed)
    save_classifier(args.out, classifier, accuracy)
    size_kb = args.out.stat().st_size / 1024
    print(f"MNIST test accuracy {accuracy:.4f}; wrote {args.out} ({size_kb:.0f} kB)")


if __name__ == "__main__":
    main()
