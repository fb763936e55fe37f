"""ACGAN networks: an embedding-modulated DCGAN generator and a two-headed DCGAN discriminator."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganzoo.plugins.dcgan.networks import DCGANDiscriminator, DCGANGenerator, discriminator_norm, init_dcgan_weights


class ACGANGenerator(nn.Module):
    """G(z, y) = DCGAN generator(z * embed(y)); the embedding keeps its default N(0, 1) initialisation."""

    def __init__(self, latent_dim: int, num_classes: int, channels: int, image_size: int, width: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.net = DCGANGenerator(latent_dim, channels, image_size, width)

    @classmethod
    def from_config(cls, config: dict[str, Any], num_classes: int) -> "ACGANGenerator":
        """Build from a resolved ganzoo config."""
        return cls(int(config["latent_dim"]), num_classes, int(config["channels"]), int(config["image_size"]),
                   int(config["g_width"]))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(z * self.embed(labels))


class ACGANDiscriminator(nn.Module):
    """x -> DCGAN trunk (strided convs, ``norm``, LeakyReLU) -> validity logit and class logits (one conv head each)."""

    def __init__(self, channels: int, image_size: int, width: int, num_classes: int, norm: str = "batch") -> None:
        super().__init__()
        dcgan = DCGANDiscriminator(channels, image_size, width, norm)
        self.trunk = dcgan.net[:-1]
        last = dcgan.net[-1]
        self.validity = nn.Conv2d(last.in_channels, 1, last.kernel_size, 1, 0)
        self.classes = nn.Conv2d(last.in_channels, num_classes, last.kernel_size, 1, 0)
        self.validity.apply(init_dcgan_weights)
        self.classes.apply(init_dcgan_weights)

    @classmethod
    def from_config(cls, config: dict[str, Any], num_classes: int) -> "ACGANDiscriminator":
        """Build from a resolved ganzoo config."""
        return cls(int(config["channels"]), int(config["image_size"]), int(config["d_width"]), num_classes,
                   discriminator_norm(config))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x)
        return self.validity(features).flatten(), self.classes(features).flatten(1)
