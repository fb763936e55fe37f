"""Adversarial objectives on discriminator outputs (logits), selectable with ``--loss NAME``.

A loss turns the discriminator's raw outputs on real and generated samples into the
discriminator's and the generator's terms. Discriminators output logits; the sigmoid is
folded into the numerically stable ``*_with_logits`` functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class AdversarialLoss:
    """Base class: subclasses define the two terms on discriminator logits."""

    name = "base"

    def discriminator(self, real: "torch.Tensor", fake: "torch.Tensor") -> dict[str, "torch.Tensor"]:
        """Terms the discriminator minimises, given its outputs on real and (detached) fake samples."""
        raise NotImplementedError

    def generator(self, fake: "torch.Tensor") -> dict[str, "torch.Tensor"]:
        """Terms the generator minimises, given the discriminator's outputs on fresh fake samples."""
        raise NotImplementedError


class NonSaturatingLoss(AdversarialLoss):
    """Goodfellow et al. 2014, the practical form: D maximises log D(x) + log(1 - D(G(z))), G maximises log D(G(z))."""

    name = "ns"

    def discriminator(self, real, fake):
        import torch.nn.functional as F

        return {
            "d_real": F.binary_cross_entropy_with_logits(real, real.new_ones(()).expand_as(real)),
            "d_fake": F.binary_cross_entropy_with_logits(fake, fake.new_zeros(()).expand_as(fake)),
        }

    def generator(self, fake):
        import torch.nn.functional as F

        return {"g_adv": F.binary_cross_entropy_with_logits(fake, fake.new_ones(()).expand_as(fake))}


class MinimaxLoss(NonSaturatingLoss):
    """Goodfellow et al. 2014 as written: G minimises log(1 - D(G(z))), which saturates when D wins."""

    name = "minimax"

    def generator(self, fake):
        import torch.nn.functional as F

        # log(1 - sigmoid(x)) = -softplus(x)
        return {"g_adv": -F.softplus(fake).mean()}
