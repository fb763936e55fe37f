"""BEGAN's autoencoder discriminator (Berthelot et al. 2017): its output is each sample's L1 reconstruction error."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganzoo.plugins.dcgan.networks import layout


class AutoencoderDiscriminator(nn.Module):
    """x -> encoder -> h (embedding_dim) -> decoder -> x'; forward returns mean |x - x'| per sample.

    ``reconstruction_error`` tells the BEGAN loss that this module's outputs are errors, not logits.
    """

    reconstruction_error = True

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.decoder(self.encoder(x)) - x).abs().flatten(1).mean(1)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "AutoencoderDiscriminator":
        """Convolutional for images (ELU, strided convolutions as in the paper), MLP for vectors."""
        h = int(config["embedding_dim"])
        if config["data_kind"] == "vectors":
            return cls(*_mlp_autoencoder(int(config["dim"]), list(config["hidden_dims"]), h))
        return cls(*_conv_autoencoder(int(config["channels"]), int(config["image_size"]), int(config["d_width"]), h))


def _mlp_autoencoder(dim: int, hidden: list[int], h: int) -> tuple[nn.Module, nn.Module]:
    def mlp(widths: list[int]) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(nn.ELU())
        return nn.Sequential(*layers)

    return mlp([dim, *hidden, h]), mlp([h, *reversed(hidden), dim])


def _conv_autoencoder(channels: int, image_size: int, width: int, h: int) -> tuple[nn.Module, nn.Module]:
    base, steps = layout(image_size)
    feats = [width * (i + 1) for i in range(steps + 1)]
    encoder: list[nn.Module] = [nn.Conv2d(channels, feats[0], 3, 1, 1), nn.ELU()]
    for a, b in zip(feats, feats[1:]):
        encoder += [nn.Conv2d(a, b, 3, 2, 1), nn.ELU()]
    encoder += [nn.Flatten(1), nn.Linear(feats[-1] * base * base, h)]
    decoder: list[nn.Module] = [nn.Linear(h, width * base * base), nn.Unflatten(1, (width, base, base))]
    for _ in range(steps):
        decoder += [nn.Conv2d(width, width, 3, 1, 1), nn.ELU(), nn.Upsample(scale_factor=2, mode="nearest")]
    decoder += [nn.Conv2d(width, width, 3, 1, 1), nn.ELU(), nn.Conv2d(width, channels, 3, 1, 1)]
    return nn.Sequential(*encoder), nn.Sequential(*decoder)
