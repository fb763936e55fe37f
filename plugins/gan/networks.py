"""MLP networks of the vanilla GAN."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def _sample_shape(config: dict[str, Any]) -> tuple[int, ...]:
    if config["data_kind"] == "vectors":
        return (int(config["dim"]),)
    return (int(config["channels"]), int(config["image_size"]), int(config["image_size"]))


class MLPGenerator(nn.Module):
    """z -> [Linear, LeakyReLU(0.2)] x len(hidden) -> Linear -> tanh (images) or identity (vectors)."""

    def __init__(self, latent_dim: int, hidden_dims: list[int], out_shape: tuple[int, ...], bounded: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = latent_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        layers.append(nn.Linear(width, math.prod(out_shape)))
        if bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.out_shape = out_shape

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MLPGenerator":
        """Build from a resolved ganzoo config."""
        return cls(int(config["latent_dim"]), list(config["hidden_dims"]), _sample_shape(config),
                   bounded=config["data_kind"] == "images")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """x (flattened) -> [Linear, LeakyReLU(0.2), Dropout] x len(hidden) -> Linear -> one logit."""

    def __init__(self, in_features: int, hidden_dims: list[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MLPDiscriminator":
        """Build from a resolved ganzoo config; hidden widths are the generator's, reversed."""
        return cls(math.prod(_sample_shape(config)), list(reversed(config["hidden_dims"])), float(config["dropout"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)
