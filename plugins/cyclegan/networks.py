"""CycleGAN networks, image pool, losses and learning-rate schedule, as in the authors' code.

Generator: reflection pad + 7x7 conv, two stride-2 convs, ``blocks`` residual blocks (9 at 256,
6 below), two transposed convs, 7x7 conv, tanh; instance norm throughout. Discriminator: the
70x70 PatchGAN with instance norm. :class:`CycleGenerators` holds G_AB and G_BA, so the
generator file has both; :class:`CycleDiscriminators` holds D_A and D_B.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import GanzooError
from ganzoo.plugins.pix2pix.networks import PatchDiscriminator, init_weights

DIRECTIONS = ("AtoB", "BtoA")


def default_blocks(image_size: int) -> int:
    """Residual blocks of the paper: 9 for 256x256 images, 6 for 128x128 and smaller."""
    return 9 if image_size >= 256 else 6


class ResidualBlock(nn.Module):
    """x + [pad, conv3, IN, ReLU, pad, conv3, IN](x)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(features, features, 3), nn.InstanceNorm2d(features), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(features, features, 3), nn.InstanceNorm2d(features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """The CycleGAN generator for one direction; any side divisible by 4."""

    def __init__(self, channels: int, width: int, blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(channels, width, 7), nn.InstanceNorm2d(width), nn.ReLU(True)]
        features = width
        for _ in range(2):
            layers += [nn.Conv2d(features, features * 2, 3, 2, 1), nn.InstanceNorm2d(features * 2), nn.ReLU(True)]
            features *= 2
        layers += [ResidualBlock(features) for _ in range(blocks)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(features, features // 2, 3, 2, 1, output_padding=1),
                       nn.InstanceNorm2d(features // 2), nn.ReLU(True)]
            features //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(features, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


#: The smallest side whose PatchGAN output still has more than one position per channel for instance norm.
MIN_SIDE = 24


class CycleGenerators(nn.Module):
    """G_AB (``ab``) and G_BA (``ba``) in one module; ``forward`` is G_AB."""

    compile_units = ("ab", "ba")  # the losses call each generator, never forward: --compile compiles these

    def __init__(self, channels: int, image_size: int, width: int, blocks: int | None = None) -> None:
        super().__init__()
        if image_size % 4 or image_size < MIN_SIDE:
            raise GanzooError(f"CycleGAN needs an image side divisible by 4 and at least {MIN_SIDE} (64, 128, 256), "
                              f"got {image_size}; choose such a side with --image-size.")
        blocks = default_blocks(image_size) if blocks is None else blocks
        self.ab = ResnetGenerator(channels, width, blocks)
        self.ba = ResnetGenerator(channels, width, blocks)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "CycleGenerators":
        """Build from a resolved ganzoo config."""
        blocks = config.get("blocks")
        return cls(int(config["channels"]), int(config["image_size"]), int(config["g_width"]),
                   None if blocks is None else int(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ab(x)

    def translate(self, x: torch.Tensor, direction: str | None = None) -> torch.Tensor:
        """A -> B with ``AtoB`` (the default), B -> A with ``BtoA``."""
        if direction not in (None, *DIRECTIONS):
            raise GanzooError(f"direction must be AtoB or BtoA, got {direction!r}.")
        return self.ba(x) if direction == "BtoA" else self.ab(x)

    def picture_rows(self, a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
        """Rows of the per-epoch picture: real A, fake B, reconstructed A, real B, fake A, reconstructed B."""
        fake_b, fake_a = self.ab(a), self.ba(b)
        return [a, fake_b, self.ba(fake_b), b, fake_a, self.ab(fake_a)]


class CycleDiscriminators(nn.Module):
    """D_A (real A vs G_BA's output) and D_B (real B vs G_AB's output), 70x70 PatchGANs with instance norm."""

    compile_units = ("a", "b")

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.a = PatchDiscriminator(channels, width, norm="instance")
        self.b = PatchDiscriminator(channels, width, norm="instance")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(x)


def query_pool(pool: torch.Tensor | None, images: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Shrivastava et al.'s history buffer: ``(images for D, updated pool)``.

    While the pool holds fewer than ``size`` images each new image is stored and returned. Then,
    per image, with probability ½ a random stored image is returned and replaced by the new one,
    else the new image is returned. Decisions are drawn on the CPU (torch's seeded generator), so
    no device sync is needed; ``size`` 0 turns the pool off.
    """
    images = images.detach()  # D's update must not reach G's graph, pool or no pool
    if size <= 0:
        return images, pool
    if pool is not None:
        pool = pool.to(images.device)
    out = []
    for image in images.split(1):
        if pool is None or pool.shape[0] < size:
            pool = image.clone() if pool is None else torch.cat([pool, image])
            out.append(image)
        elif torch.rand(()) < 0.5:
            slot = int(torch.randint(size, ()))
            out.append(pool[slot : slot + 1].clone())
            pool[slot : slot + 1] = image
        else:
            out.append(image)
    return torch.cat(out), pool


def _mse_to(outputs: torch.Tensor, target: float) -> torch.Tensor:
    return F.mse_loss(outputs, torch.full_like(outputs, target))


def _in_one_call(network: nn.Module, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``network(first)`` and ``network(second)`` from one call on both.

    CycleGAN's networks treat each image alone (instance norm, no batch statistics, no dropout),
    so stacking changes no number beyond rounding; one call launches half the kernels, which is
    what bounds a batch-1 step on a GPU.
    """
    both = network(torch.cat([first, second]))
    return both[: first.shape[0]], both[first.shape[0]:]


def cycle_losses(generator: CycleGenerators, discriminator: CycleDiscriminators, batch: dict[str, torch.Tensor],
                 stage: str, config: dict[str, Any], state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """All CycleGAN terms for ``stage``.

    Discriminators: least squares, halved, on real images vs pooled fakes (``state["pool_a"]``,
    ``state["pool_b"]``: tensors, so checkpoints keep them). Generators: least squares against both
    discriminators, cycle L1 ·λ, identity L1 ·λ·``lambda_identity``. The discriminator stage runs
    both generators with gradients and keeps the fakes in ``state["_fakes"]`` for the generator
    stage of the same batch, so each generator runs forward once per step for the fakes. Each
    network's two inputs of a stage (D_A's real and pooled fake images, G_BA's fake B for the cycle
    and real A for the identity term) go through it in one call.
    """
    real_a, real_b = batch["a"], batch["b"]
    cached = state.get("_fakes")
    if cached is not None and cached[0] is real_a:
        fake_b, fake_a = cached[1], cached[2]
    else:
        fake_b, fake_a = generator.ab(real_a), generator.ba(real_b)
    state["_fakes"] = None
    if stage == "discriminator":
        state["_fakes"] = (real_a, fake_b, fake_a)
        size = int(config["pool_size"])
        pooled_b, state["pool_b"] = query_pool(state.get("pool_b"), fake_b, size)
        pooled_a, state["pool_a"] = query_pool(state.get("pool_a"), fake_a, size)
        on_real_a, on_fake_a = _in_one_call(discriminator.a, real_a, pooled_a)
        on_real_b, on_fake_b = _in_one_call(discriminator.b, real_b, pooled_b)
        return {
            "d_a_real": 0.5 * _mse_to(on_real_a, 1.0),
            "d_a_fake": 0.5 * _mse_to(on_fake_a, 0.0),
            "d_b_real": 0.5 * _mse_to(on_real_b, 1.0),
            "d_b_fake": 0.5 * _mse_to(on_fake_b, 0.0),
        }
    lam, identity = float(config["lambda_cycle"]), float(config["lambda_identity"])
    if identity > 0:
        rec_a, same_a = _in_one_call(generator.ba, fake_b, real_a)
        rec_b, same_b = _in_one_call(generator.ab, fake_a, real_b)
    else:
        rec_a, rec_b = generator.ba(fake_b), generator.ab(fake_a)
    terms = {
        "g_ab_adv": _mse_to(discriminator.b(fake_b), 1.0),
        "g_ba_adv": _mse_to(discriminator.a(fake_a), 1.0),
        "cycle_a": lam * F.l1_loss(rec_a, real_a),
        "cycle_b": lam * F.l1_loss(rec_b, real_b),
    }
    if identity > 0:
        terms["identity_ab"] = lam * identity * F.l1_loss(same_b, real_b)
        terms["identity_ba"] = lam * identity * F.l1_loss(same_a, real_a)
    return terms
