"""Conditional networks by concatenation: ``[z, one_hot(y)]`` into G, ``[x, one_hot(y)]`` into D.

The inner networks are those of ``gan`` (MLP) and ``dcgan`` (convolutional), built with the
one-hot width added to their input.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.plugins.dcgan.networks import DCGANDiscriminator, DCGANGenerator, discriminator_norm
from ganzoo.plugins.gan.networks import MLPDiscriminator, MLPGenerator


class OneHotGenerator(nn.Module):
    """G(z, y) = inner(concat(z, one_hot(y)))."""

    def __init__(self, inner: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.inner = inner
        self.num_classes = num_classes

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1))


class OneHotDiscriminator(nn.Module):
    """D(x, y) = inner(concat(x, one_hot(y))): as features of a flat input or as constant maps beside image channels."""

    def __init__(self, inner: nn.Module, num_classes: int, as_maps: bool) -> None:
        super().__init__()
        self.inner = inner
        self.num_classes = num_classes
        self.as_maps = as_maps

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        code = F.one_hot(labels, self.num_classes).to(x.dtype)
        if self.as_maps:
            maps = code[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            return self.inner(torch.cat([x, maps], dim=1))
        return self.inner(torch.cat([x.flatten(1), code], dim=1))


def conditional_generator(conv: bool, config: dict[str, Any], num_classes: int) -> OneHotGenerator:
    """The DCGAN (``conv``) or MLP generator with ``num_classes`` extra inputs."""
    latent = int(config["latent_dim"]) + num_classes
    channels, size = int(config["channels"]), int(config["image_size"])
    if conv:
        inner: nn.Module = DCGANGenerator(latent, channels, size, int(config["g_width"]))
    else:
        inner = MLPGenerator(latent, list(config["hidden_dims"]), (channels, size, size), bounded=True)
    return OneHotGenerator(inner, num_classes)


def conditional_discriminator(conv: bool, config: dict[str, Any], num_classes: int) -> OneHotDiscriminator:
    """The DCGAN (``conv``) or MLP discriminator with the one-hot label as extra input."""
    channels, size = int(config["channels"]), int(config["image_size"])
    if conv:
        inner: nn.Module = DCGANDiscriminator(channels + num_classes, size, int(config["d_width"]), discriminator_norm(config))
    else:
        inner = MLPDiscriminator(math.prod((channels, size, size)) + num_classes,
                                 list(reversed(config["hidden_dims"])), float(config["dropout"]))
    return OneHotDiscriminator(inner, num_classes, as_maps=conv)
