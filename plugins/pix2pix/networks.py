"""pix2pix networks: the U-Net generator and the 70x70 PatchGAN discriminator, as in the authors' code.

The U-Net halves the side ``log2(image_size)`` times down to 1x1 (8 times at 256) and mirrors
back up, concatenating each encoder level to the decoder level of the same size. The three
decoder levels after the bottleneck (fewer on small images) use dropout 0.5: the paper's only
noise source, kept on at inference as the paper does. Batch norm uses the statistics of the
current batch also at inference (batch 1: instance normalisation), as in the paper's test code.
The PatchGAN sees input and output concatenated and scores 70x70 patches.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ganzoo.errors import GanzooError

#: Decoder levels right after the bottleneck that use dropout (3 at 256).
DROPOUT_LEVELS = 3


def init_weights(module: nn.Module) -> None:
    """The authors' init: convolutions N(0, 0.02), bias 0; norm scale N(1, 0.02), bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def batch_norm(features: int) -> nn.Module:
    """Batch norm that always normalises with the current batch's statistics (train and inference alike)."""
    return nn.BatchNorm2d(features, track_running_stats=False)


def unet_depth(image_size: int) -> int:
    """How many times the U-Net halves ``image_size`` (to 1x1); sides must be powers of two of at least 32."""
    depth = int(round(math.log2(image_size))) if image_size > 0 else 0
    if image_size < 32 or 2**depth != image_size:
        raise GanzooError(f"The pix2pix U-Net needs a power-of-two image side of at least 32 (64, 128, 256), got {image_size}; "
                          f"choose such a side with --image-size.")
    return depth


class UNetLevel(nn.Module):
    """One encoder/decoder level around ``inner`` (None at the bottleneck); the output is ``[x, up(inner(down(x)))]``."""

    def __init__(self, outer: int, features: int, inner: nn.Module | None, outermost: bool = False,
                 dropout: bool = False, in_channels: int | None = None) -> None:
        super().__init__()
        in_channels = in_channels or outer
        self.outermost = outermost
        down: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2, True)]
        down.append(nn.Conv2d(in_channels, features, 4, 2, 1, bias=False))
        if inner is not None and not outermost:
            down.append(batch_norm(features))
        up_in = features if inner is None else features * 2
        up: list[nn.Module] = [nn.ReLU(True)]
        if outermost:
            up += [nn.ConvTranspose2d(up_in, outer, 4, 2, 1), nn.Tanh()]
        else:
            up += [nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=False), batch_norm(outer)]
            if dropout:
                up.append(nn.Dropout(0.5))
        self.down, self.inner, self.up = nn.Sequential(*down), inner, nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(x)
        if self.inner is not None:
            y = self.inner(y)
        y = self.up(y)
        return y if self.outermost else torch.cat([x, y], 1)


class UNetGenerator(nn.Module):
    """U-Net mapping the ``direction``'s input side to its output side (``picture_rows`` / ``translate``)."""

    def __init__(self, channels: int, image_size: int, width: int, direction: str = "AtoB") -> None:
        super().__init__()
        depth = unet_depth(image_size)
        widths = [width, width * 2, width * 4] + [width * 8] * (depth - 3)  # features below each level, outermost first
        level: nn.Module | None = None
        for index in range(depth - 1, 0, -1):
            dropout = depth - 1 - DROPOUT_LEVELS <= index < depth - 1 and widths[index - 1] == width * 8
            level = UNetLevel(widths[index - 1], widths[index], level, dropout=dropout)
        self.net = UNetLevel(channels, widths[0], level, outermost=True)
        self.direction = direction
        self.apply(init_weights)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "UNetGenerator":
        """Build from a resolved ganzoo config."""
        return cls(int(config["channels"]), int(config["image_size"]), int(config["g_width"]), str(config["direction"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def translate(self, x: torch.Tensor, direction: str | None = None) -> torch.Tensor:
        """The output for input images ``x`` with dropout on, as the paper's test code runs it."""
        if direction not in (None, self.direction):
            raise GanzooError(f"This pix2pix generator was trained {self.direction}; it cannot translate {direction} "
                              f"(train another with --set direction={direction}).")
        modes = [(m, m.training) for m in self.modules() if isinstance(m, nn.Dropout)]
        for module, _ in modes:
            module.train()
        try:
            return self(x)
        finally:
            for module, mode in modes:
                module.train(mode)

    def picture_rows(self, a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
        """Rows of the per-epoch picture: input, output, target."""
        source, target = (a, b) if self.direction == "AtoB" else (b, a)
        return [source, self.translate(source), target]


class PatchDiscriminator(nn.Module):
    """The 70x70 PatchGAN (3 strided layers): one logit per overlapping 70x70 patch."""

    def __init__(self, in_channels: int, width: int, norm: str = "batch", layers: int = 3) -> None:
        super().__init__()

        def norm_layer(features: int) -> nn.Module:
            return nn.BatchNorm2d(features) if norm == "batch" else nn.InstanceNorm2d(features)

        bias = norm != "batch"
        parts: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        features = width
        for index in range(1, layers + 1):
            out = width * min(2**index, 8)
            stride = 2 if index < layers else 1
            parts += [nn.Conv2d(features, out, 4, stride, 1, bias=bias), norm_layer(out), nn.LeakyReLU(0.2, True)]
            features = out
        parts.append(nn.Conv2d(features, 1, 4, 1, 1))
        self.net = nn.Sequential(*parts)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def pix2pix_losses(generator: UNetGenerator, discriminator: PatchDiscriminator, batch: dict[str, torch.Tensor],
                   stage: str, config: dict[str, Any], state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The paper's terms: D on (input, target) vs (input, output), halved; G fools D plus λ·L1 to the target.

    The discriminator stage runs G once with gradients and keeps the output in ``state["_fake"]``
    for the generator stage of the same batch, so G runs forward once per step, as in the authors' code.
    """
    import torch.nn.functional as F

    source, target = (batch["a"], batch["b"]) if config["direction"] == "AtoB" else (batch["b"], batch["a"])
    cached = state.get("_fake")
    if cached is not None and cached[0] is source:
        fake = cached[1]
    else:
        fake = generator(source)
    state["_fake"] = None
    if stage == "discriminator":
        state["_fake"] = (source, fake)
        real_out = discriminator(torch.cat([source, target], 1))
        fake_out = discriminator(torch.cat([source, fake.detach()], 1))
        return {
            "d_real": 0.5 * F.binary_cross_entropy_with_logits(real_out, torch.ones_like(real_out)),
            "d_fake": 0.5 * F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out)),
        }
    fake_out = discriminator(torch.cat([source, fake], 1))
    return {
        "g_adv": F.binary_cross_entropy_with_logits(fake_out, torch.ones_like(fake_out)),
        "g_l1": float(config["lambda_l1"]) * F.l1_loss(fake, target),
    }
