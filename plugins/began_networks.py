"""BEGAN's networks (Berthelot et al. 2017): the autoencoder discriminator, whose output is each sample's L1
reconstruction error, and on images a generator built like its decoder (not sharing its weights).

On images, each resolution has ``convs_per_scale`` 3x3 convolutions with ELU ("typically 2" in the paper): the
encoder then halves the size with a strided convolution that widens the maps by ``d_width``, the decoder doubles it
by nearest-neighbour upsampling at ``width`` maps, and a last 3x3 convolution gives the image, with no squashing.
The paper draws z ~ U[-1, 1]; ganzoo gives every generator standard normal noise (one seed, one picture, across
sampling, interpolation and rejection sampling), so the generator maps it through erf(z/sqrt 2), the normal CDF
rescaled to [-1, 1], which is exactly uniform there.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganzoo.plugins.dcgan.networks import layout

#: 1/sqrt(2): erf(z/sqrt 2) = 2 Phi(z) - 1 turns a standard normal z into a uniform one on [-1, 1].
INVERSE_SQRT_2 = 0.7071067811865476


def convs_per_scale(config: dict[str, Any]) -> tuple[int, int] | None:
    """``(encoder, decoder)`` convolutions per resolution of a resolved config; ``None`` for runs saved before the
    setting existed, which had none in the encoder and one in the decoder, and the DCGAN generator."""
    if "convs_per_scale" not in config:
        return None
    convs = int(config["convs_per_scale"])
    return convs, convs


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
        channels, size, width = int(config["channels"]), int(config["image_size"]), int(config["d_width"])
        encoder_convs, decoder_convs = convs_per_scale(config) or (0, 1)
        return cls(conv_encoder(channels, size, width, h, encoder_convs),
                   conv_decoder(h, channels, size, width, decoder_convs))


class DecoderGenerator(nn.Module):
    """BEGAN's generator on images: z -> the decoder's architecture, with weights of its own.

    With ``uniform_noise`` the standard normal noise is first mapped to U[-1, 1] (the paper's z); without it
    (runs saved before the setting existed) the decoder reads the normal noise as it was trained to.
    """

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int, convs: int,
                 uniform_noise: bool) -> None:
        super().__init__()
        self.uniform_noise = uniform_noise
        self.net = conv_decoder(latent_dim, channels, image_size, width, convs)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.flatten(1)
        return self.net(torch.special.erf(z * INVERSE_SQRT_2) if self.uniform_noise else z)


def _mlp_autoencoder(dim: int, hidden: list[int], h: int) -> tuple[nn.Module, nn.Module]:
    def mlp(widths: list[int]) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(nn.ELU())
        return nn.Sequential(*layers)

    return mlp([dim, *hidden, h]), mlp([h, *reversed(hidden), dim])


def conv_encoder(channels: int, image_size: int, width: int, h: int, convs: int) -> nn.Sequential:
    """Image -> h: a 3x3 convolution to ``width`` maps, then per resolution ``convs`` convolutions and (but at the
    smallest) a strided one adding ``width`` maps, then a linear map of the flattened maps."""
    base, steps = layout(image_size)
    feats = [width * (i + 1) for i in range(steps + 1)]
    layers: list[nn.Module] = [nn.Conv2d(channels, feats[0], 3, 1, 1), nn.ELU()]
    for scale, features in enumerate(feats):
        for _ in range(convs):
            layers += [nn.Conv2d(features, features, 3, 1, 1), nn.ELU()]
        if scale < steps:
            layers += [nn.Conv2d(features, feats[scale + 1], 3, 2, 1), nn.ELU()]
    return nn.Sequential(*layers, nn.Flatten(1), nn.Linear(feats[-1] * base * base, h))


def conv_decoder(h: int, channels: int, image_size: int, width: int, convs: int) -> nn.Sequential:
    """h -> image: a linear map to ``width`` maps of the smallest size, then per resolution ``convs`` convolutions
    and (but at the largest) a nearest-neighbour doubling, then a 3x3 convolution to the image's channels."""
    base, steps = layout(image_size)
    layers: list[nn.Module] = [nn.Linear(h, width * base * base), nn.Unflatten(1, (width, base, base))]
    for scale in range(steps + 1):
        for _ in range(convs):
            layers += [nn.Conv2d(width, width, 3, 1, 1), nn.ELU()]
        if scale < steps:
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
    return nn.Sequential(*layers, nn.Conv2d(width, channels, 3, 1, 1))
