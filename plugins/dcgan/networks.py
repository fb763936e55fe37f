"""DCGAN networks for square images of side ``base * 2**k``, base 4 to 7 and k at least 1 (28, 32, 40, 64...)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganzoo.errors import GanzooError, image_size_origin


def layout(image_size: int) -> tuple[int, int]:
    """``(base, upsamplings)`` with ``base * 2**upsamplings == image_size``, base in 4..7, at least one upsampling."""
    for upsamplings in range(1, 10):
        base, rest = divmod(image_size, 2**upsamplings)
        if rest == 0 and 4 <= base <= 7:
            return base, upsamplings
    raise GanzooError(
        f"DCGAN cannot make {image_size}x{image_size} images{image_size_origin()}; pass --image-size with a side of 8 "
        f"or more that is 4 to 7 times a power of two, such as 28, 32, 64 or 128."
    )


def discriminator_norm(config: dict[str, Any]) -> str:
    """The ``d_norm`` of a resolved config (checked there); runs saved before the setting existed used batch norm."""
    return str(config.get("d_norm", "batch"))


def _normalisation(norm: str, features: int) -> nn.Module:
    """DCGAN's batch norm; layer norm over each image's (C, H, W) with a scale and offset per channel, WGAN-GP's
    replacement (its gradient penalty needs each image's score to depend on that image alone, which batch norm
    breaks); or none."""
    if norm == "batch":
        return nn.BatchNorm2d(features)
    if norm == "layer":
        return nn.GroupNorm(1, features)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be batch, layer or none, got {norm!r}")


def init_dcgan_weights(module: nn.Module) -> None:
    """The paper's initialisation: convolutions N(0, 0.02), batch-norm scale N(1, 0.02) and bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z -> ConvT(base x base) -> [ConvT stride 2, BN, ReLU] ... -> ConvT stride 2 -> tanh."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int) -> None:
        super().__init__()
        base, ups = layout(image_size)
        feats = width * 2 ** (ups - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, feats, base, 1, 0, bias=False), nn.BatchNorm2d(feats), nn.ReLU(True),
        ]
        for _ in range(ups - 1):
            layers += [nn.ConvTranspose2d(feats, feats // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(feats // 2), nn.ReLU(True)]
            feats //= 2
        layers += [nn.ConvTranspose2d(feats, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "DCGANGenerator":
        """Build from a resolved ganzoo config."""
        return cls(int(config["latent_dim"]), int(config["channels"]), int(config["image_size"]), int(config["g_width"]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """x -> Conv stride 2, LReLU -> [Conv stride 2, norm, LReLU] ... -> Conv(base x base) -> one logit.

    ``norm`` is batch, layer or none. A convolution followed by batch or layer norm has no bias, which the
    norm's offset makes redundant; with no norm it has one.
    """

    def __init__(self, channels: int, image_size: int, width: int, norm: str = "batch") -> None:
        super().__init__()
        base, downs = layout(image_size)
        feats = width
        layers: list[nn.Module] = [nn.Conv2d(channels, feats, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(downs - 1):
            layers += [nn.Conv2d(feats, feats * 2, 4, 2, 1, bias=norm == "none"), _normalisation(norm, feats * 2),
                       nn.LeakyReLU(0.2, True)]
            feats *= 2
        layers.append(nn.Conv2d(feats, 1, base, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "DCGANDiscriminator":
        """Build from a resolved ganzoo config."""
        return cls(int(config["channels"]), int(config["image_size"]), int(config["d_width"]), discriminator_norm(config))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()
