"""Adversarial objectives on discriminator outputs, selectable with ``--loss NAME``.

A loss turns the discriminator's raw outputs on real and generated samples into the
discriminator's and the generator's terms (``discriminator`` / ``generator``). Optional parts,
looked up by :mod:`ganzoo.adversarial` and the built-in plugins:

- ``penalty(discriminator, real, fake)``: extra discriminator terms that need the inputs
  themselves (gradient penalties of WGAN-GP and DRAGAN);
- ``clip``: a bound on every critic weight, applied after each critic step (WGAN);
- ``bind(state)``: losses with a running state keep it in the run's checkpointed ``state``;
- ``metrics(real_out, fake_out)``: what to log besides the terms, called once per discriminator
  step (BEGAN advances its balance k_t there);
- ``log_density_ratio(output)``: log p_data(x)/p_G(x), up to a constant, read off an output of
  the loss's optimal discriminator, or ``None`` where that D does not encode it (hinge, WGAN,
  BEGAN); discriminator rejection sampling (:mod:`ganzoo.rejection`) needs it.

Discriminators output logits; sigmoids are folded into numerically stable forms.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ganzoo.errors import GanzooError

if TYPE_CHECKING:
    import torch

Terms = dict[str, "torch.Tensor"]


class AdversarialLoss:
    """Base class: subclasses define the two terms on discriminator outputs."""

    name = "base"
    #: Whether one-sided label smoothing (``label_smoothing``) means something for this loss.
    smooths_labels = False

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = config or {}

    def discriminator(self, real: "torch.Tensor", fake: "torch.Tensor") -> Terms:
        """Terms the discriminator minimises, given its outputs on real and (detached) fake samples."""
        raise NotImplementedError

    def generator(self, fake: "torch.Tensor") -> Terms:
        """Terms the generator minimises, given the discriminator's outputs on fresh fake samples."""
        raise NotImplementedError

    def metrics(self, real: "torch.Tensor", fake: "torch.Tensor") -> Terms:
        """Logged, not optimised: the discriminator's mean belief that real and fake samples are real."""
        import torch

        return {"D(x)": torch.sigmoid(real).mean(), "D(G(z))": torch.sigmoid(fake).mean()}

    def bind(self, state: dict[str, Any]) -> None:
        """Attach the run's checkpointed ``state``; stateless losses ignore it."""

    def log_density_ratio(self, output: "torch.Tensor") -> "torch.Tensor | None":
        """log p_data/p_G (up to an additive constant) as this loss's optimal D encodes it; ``None``: it does not."""
        return None

    def real_target(self) -> float:
        """Target for real samples: 1, or 1 - ``label_smoothing`` (one-sided, Salimans et al. 2016)."""
        return 1.0 - float(self.config.get("label_smoothing") or 0.0)


class NonSaturatingLoss(AdversarialLoss):
    """Goodfellow et al. 2014, the practical form: D maximises log D(x) + log(1 - D(G(z))), G maximises log D(G(z))."""

    name = "ns"
    smooths_labels = True

    def discriminator(self, real, fake):
        import torch.nn.functional as F

        return {
            "d_real": F.binary_cross_entropy_with_logits(real, real.new_full((), self.real_target()).expand_as(real)),
            "d_fake": F.binary_cross_entropy_with_logits(fake, fake.new_zeros(()).expand_as(fake)),
        }

    def generator(self, fake):
        import torch.nn.functional as F

        return {"g_adv": F.binary_cross_entropy_with_logits(fake, fake.new_ones(()).expand_as(fake))}

    def log_density_ratio(self, output):
        """The optimal D is sigmoid(v) = p_data/(p_data + p_G), so the logit v is the log ratio itself."""
        return output


class MinimaxLoss(NonSaturatingLoss):
    """Goodfellow et al. 2014 as written: G minimises log(1 - D(G(z))), which saturates when D wins."""

    name = "minimax"

    def generator(self, fake):
        import torch.nn.functional as F

        # log(1 - sigmoid(x)) = -softplus(x)
        return {"g_adv": -F.softplus(fake).mean()}


class LeastSquaresLoss(AdversarialLoss):
    """Mao et al. 2017 (a=0, b=1, c=1): D minimises ½(D(x)-1)² + ½D(G(z))², G minimises ½(D(G(z))-1)²."""

    name = "lsgan"
    smooths_labels = True

    def discriminator(self, real, fake):
        return {"d_real": 0.5 * (real - self.real_target()).pow(2).mean(), "d_fake": 0.5 * fake.pow(2).mean()}

    def generator(self, fake):
        return {"g_adv": 0.5 * (fake - 1).pow(2).mean()}

    def metrics(self, real, fake):
        """D's outputs as they are: its targets are 1 and 0, so they read as its belief (not logits)."""
        return {"D(x)": real.mean(), "D(G(z))": fake.mean()}

    def log_density_ratio(self, output):
        """The optimal D (targets 0 and 1) is p_data/(p_data + p_G): log(D/(1-D)), D kept inside (0, 1)."""
        clamped = output.clamp(1e-6, 1 - 1e-6)
        return clamped.log() - (-clamped).log1p()


class HingeLoss(AdversarialLoss):
    """Lim & Ye 2017 / Miyato et al. 2018: D minimises max(0, 1-D(x)) + max(0, 1+D(G(z))), G minimises -D(G(z))."""

    name = "hinge"

    def discriminator(self, real, fake):
        import torch.nn.functional as F

        return {"d_real": F.relu(1 - real).mean(), "d_fake": F.relu(1 + fake).mean()}

    def generator(self, fake):
        return {"g_adv": -fake.mean()}

    def metrics(self, real, fake):
        """The critic's raw scores (margins at ±1, not beliefs in [0, 1]), named as WGAN's are."""
        return {"critic(x)": real.mean(), "critic(G(z))": fake.mean()}


class WassersteinLoss(AdversarialLoss):
    """Arjovsky et al. 2017: the critic maximises E[D(x)] - E[D(G(z))]; G maximises E[D(G(z))].

    The critic must stay Lipschitz: weights are clipped to [-``clip``, ``clip``] after every step.
    """

    name = "wgan"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.clip = float(self.config.get("clip_value", 0.01))

    def discriminator(self, real, fake):
        return {"d_real": -real.mean(), "d_fake": fake.mean()}

    def generator(self, fake):
        return {"g_adv": -fake.mean()}

    def metrics(self, real, fake):
        return {"critic(x)": real.mean(), "critic(G(z))": fake.mean(), "W_estimate": real.mean() - fake.mean()}


def gradient_penalty(discriminator: Any, points: "torch.Tensor", target: float = 1.0) -> "torch.Tensor":
    """Mean over samples of (‖∇ₓD(x)‖₂ - ``target``)² at ``points``, differentiable in D's weights."""
    import torch

    points = points.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(points).sum(), points, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - target).pow(2).mean()


def per_sample(weights: "torch.Tensor", like: "torch.Tensor") -> "torch.Tensor":
    """Reshape one weight per sample so it broadcasts over a sample's other dimensions."""
    return weights.view(-1, *([1] * (like.dim() - 1)))


class WassersteinGPLoss(WassersteinLoss):
    """Gulrajani et al. 2017: the WGAN critic plus λ·E[(‖∇D(x̂)‖ - 1)²] at x̂ = εx + (1-ε)G(z), ε ~ U[0,1] per sample."""

    name = "wgan-gp"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        AdversarialLoss.__init__(self, config)
        self.clip = None
        self.weight = float(self.config.get("gp_weight", 10.0))

    def penalty(self, discriminator: Any, real: "torch.Tensor", fake: "torch.Tensor") -> Terms:
        """The gradient penalty on random interpolates between real and fake samples."""
        import torch

        count = min(len(real), len(fake))
        real, fake = real[:count], fake[:count]
        eps = per_sample(torch.rand(count, device=real.device, dtype=real.dtype), real)
        return {"gradient_penalty": self.weight * gradient_penalty(discriminator, eps * real + (1 - eps) * fake)}


class DraganLoss(NonSaturatingLoss):
    """Kodali et al. 2017: the GAN loss plus λ·E[(‖∇D(x̂)‖ - 1)²] around real data, x̂ = x + α·δ, δ ~ 0.5·std(x)·U[0,1]."""

    name = "dragan"

    def penalty(self, discriminator: Any, real: "torch.Tensor", fake: "torch.Tensor") -> Terms:
        """The gradient penalty on points perturbed around the real batch."""
        import torch

        perturbed = real + 0.5 * real.std() * torch.rand_like(real)
        alpha = per_sample(torch.rand(len(real), device=real.device, dtype=real.dtype), real)
        points = real + alpha * (perturbed - real)
        return {"gradient_penalty": float(self.config.get("gp_weight", 10.0)) * gradient_penalty(discriminator, points)}


class KLWassersteinLoss(HingeLoss):
    """Song & Ermon 2020 (KL-WGAN, hinge form of the authors' code): fake outputs reweighted by r = e^D / mean(e^D).

    D minimises max(0, 1-D(x)) + max(0, 1+r·D(G(z))); G minimises -r·D(G(z)).
    """

    name = "kl-wgan"

    @staticmethod
    def reweighted(fake: "torch.Tensor") -> "torch.Tensor":
        """``fake * exp(fake) / mean(exp(fake))``, computed as ``N * softmax`` to avoid overflow."""
        import torch

        return fake * torch.softmax(fake.flatten(), 0).view_as(fake) * fake.numel()

    def discriminator(self, real, fake):
        return super().discriminator(real, self.reweighted(fake))

    def generator(self, fake):
        return {"g_adv": -self.reweighted(fake).mean()}


#: f-divergences of Nowozin et al. 2016 (Table 6), with their output activation g_f and conjugate f*;
#: f*(g_f(v)) is written directly in v so it stays finite (e.g. JS: f*(g_f(v)) = softplus(v) - log 2).
F_DIVERGENCES = ("kl", "rkl", "js", "pearson", "hellinger")


class FDivergenceLoss(AdversarialLoss):
    """Nowozin et al. 2016: D maximises E_P[g_f(D(x))] - E_Q[f*(g_f(D(G(z))))]; G maximises E_Q[g_f(D(G(z)))].

    The generator uses the paper's practical form (its section 3.2), as the GAN's non-saturating loss.
    """

    name = "f-gan"

    def __init__(self, divergence: str, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        if divergence not in F_DIVERGENCES:
            raise GanzooError(f"Unknown f-divergence {divergence!r}; use one of {', '.join(F_DIVERGENCES)}.")
        self.divergence = divergence

    def activation(self, v: "torch.Tensor") -> "torch.Tensor":
        """g_f: maps a raw output to the divergence's domain."""
        import torch.nn.functional as F

        d = self.divergence
        if d in ("kl", "pearson"):
            return v
        if d == "rkl":
            return -(-v).exp()
        if d == "js":
            return math.log(2.0) - F.softplus(-v)
        return 1 - (-v).exp()

    def conjugate(self, v: "torch.Tensor") -> "torch.Tensor":
        """f*(g_f(v)), the Fenchel conjugate at the activated output."""
        import torch.nn.functional as F

        d = self.divergence
        if d == "kl":
            return (v - 1).exp()
        if d == "rkl":
            return v - 1
        if d == "js":
            return F.softplus(v) - math.log(2.0)
        if d == "pearson":
            return v.pow(2) / 4 + v
        return v.exp() - 1

    def discriminator(self, real, fake):
        return {"d_real": -self.activation(real).mean(), "d_fake": self.conjugate(fake).mean()}

    def generator(self, fake):
        return {"g_adv": -self.activation(fake).mean()}

    def metrics(self, real, fake):
        return {"T(x)": self.activation(real).mean(), "T(G(z))": self.activation(fake).mean()}

    def log_density_ratio(self, output):
        """The optimal T = g_f(v) is f'(p_data/p_G) (Nowozin et al. 2016); solved for the ratio r with these g_f:
        KL 1 + log r = v, reverse KL and JS log r = v, Pearson 2(r - 1) = v, squared Hellinger log r = 2v."""
        d = self.divergence
        if d == "kl":
            return output - 1
        if d == "pearson":
            return (1 + output / 2).clamp_min(1e-6).log()
        if d == "hellinger":
            return 2 * output
        return output


#: BEGAN's keys in the checkpointed state: this epoch's [sum of M, steps] (a tensor), the lowest epoch mean of M so
#: far, and the epochs since it.
EPOCH_M_KEY, BEST_M_KEY, STALLED_EPOCHS_KEY = "began_epoch_M", "began_best_M", "began_stalled_epochs"


class BEGANLoss(AdversarialLoss):
    """Berthelot et al. 2017: the discriminator is an autoencoder whose output is each sample's L1 reconstruction error L.

    D minimises L(x) - k_t·L(G(z)); G minimises L(G(z)); k_{t+1} = clip(k_t + λ_k(γL(x) - L(G(z))), 0, 1).
    The convergence measure M = L(x) + |γL(x) - L(G(z))| is logged and, with ``lr_patience``, summed over each
    epoch on the device, so that :func:`began_stalled` can tell when it stops falling (the paper then halves the
    learning rate).
    """

    name = "began"
    needs_autoencoder = True

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.gamma = float(self.config.get("gamma", 0.5))
        self.lambda_k = float(self.config.get("lambda_k", 0.001))
        self.lr_patience = int(self.config.get("lr_patience") or 0)
        self.state: dict[str, Any] = {}

    def bind(self, state: dict[str, Any]) -> None:
        """Keep k_t in the checkpointed ``state`` (a tensor, so a resumed run continues exactly)."""
        self.state = state

    def k(self, like: "torch.Tensor") -> "torch.Tensor":
        """The current balance k_t (0 at the start)."""
        if "began_k" not in self.state:
            self.state["began_k"] = like.new_zeros(())
        return self.state["began_k"]

    def discriminator(self, real, fake):
        return {"d_real": real.mean(), "d_fake": -self.k(real) * fake.mean()}

    def generator(self, fake):
        return {"g_adv": fake.mean()}

    def metrics(self, real, fake):
        import torch

        from ganzoo.distributed import WORLD_KEY

        with torch.no_grad():
            real_error = real.mean()
            balance = self.gamma * real_error - fake.mean()
            world = self.state.get(WORLD_KEY)
            if world is not None:  # the whole batch's: k_t and M stay the same on every process
                world.average([real_error, balance])
            k = self.k(real)
            new_k = (k + self.lambda_k * balance).clamp(0.0, 1.0)
            # a step the guard will undo (non-finite D outputs) must not poison k_t for every later step
            self.state["began_k"] = torch.where(torch.isfinite(new_k), new_k, k)
            measure = real_error + balance.abs()
            if self.lr_patience:  # for began_stalled, at the epoch's end; a step the guard undoes does not count
                finite = torch.isfinite(measure)
                step = torch.stack([torch.where(finite, measure, 0.0), finite.to(measure.dtype)])
                epoch_sum = self.state.get(EPOCH_M_KEY)
                self.state[EPOCH_M_KEY] = step if epoch_sum is None else epoch_sum + step
            return {"M": measure, "k_t": k.clone()}


def began_stalled(state: dict[str, Any], patience: int) -> bool:
    """At an epoch's end: whether BEGAN's M, averaged over the epoch, has set no new low for ``patience`` epochs in a
    row (the count then starts again). Reads the device once per epoch; M is the whole batch's on every process, so
    every process judges alike."""
    epoch_sum = state.pop(EPOCH_M_KEY, None)
    if epoch_sum is None:
        return False
    total, steps = epoch_sum.double().tolist()
    if steps == 0:
        return False
    mean, best = total / steps, state.get(BEST_M_KEY)
    if best is None or mean < best:
        state[BEST_M_KEY], state[STALLED_EPOCHS_KEY] = mean, 0
        return False
    stalled = int(state.get(STALLED_EPOCHS_KEY, 0)) + 1
    state[STALLED_EPOCHS_KEY] = 0 if stalled >= patience else stalled
    return stalled >= patience
