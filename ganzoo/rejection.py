"""Discriminator rejection sampling (Azadi et al. 2019): keep the generated samples that D rates as likely real.

A loss whose optimal discriminator encodes d(x) = log p_data(x)/p_G(x) (up to a constant; see
``AdversarialLoss.log_density_ratio``) turns the generator into the proposal of a rejection
sampler: accept x with probability r(x)/M = exp(d(x) - d_max), where d_max, the largest log ratio,
is estimated on ``BURN_IN`` candidates and raised whenever a larger one appears. The paper's
practical rule accepts with sigmoid(F(x) - gamma), F = (d - d_max) - log(1 - exp(d - d_max - eps)),
which is the logit of exp(d - d_max): gamma = 0 is exact rejection sampling, and a gamma set to a
quantile of F over the burn-in keeps fewer samples, those D finds most real. Mode balance pays
for that when D is not exact, so the quantile is a setting (``--drs-quantile``). gamma is taken once,
over the burn-in's candidates, not afresh for each batch of candidates as implementations of the paper
tend to: the same quantile, estimated from ten times as many values, and when a larger ratio turns up
later the acceptance falls for every candidate, as exact rejection's does, instead of being held level.
With ``--with ema`` the candidates come from the averaged generator while D was trained against the
online one; near the end of a run with a decaying rate the two agree (the toy benchmark's recipe
samples so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganzoo.errors import GanzooError
from ganzoo.specs import ModelSpec

#: Candidates drawn first to estimate the largest log ratio and gamma (the paper's burn-in).
BURN_IN = 10_000
#: Keeps log(1 - exp(.)) finite at the candidate holding the largest ratio.
EPSILON = 1e-6
#: gamma is this quantile of F over the burn-in unless asked otherwise.
DEFAULT_QUANTILE = 0.5
#: Candidates drawn per requested sample before the sampler gives up.
MAX_CANDIDATES_PER_SAMPLE = 100
#: Remedies whose discriminator judges a group of samples, not one sample.
GROUP_REMEDIES = ("pacgan", "minibatch-discrimination")


@dataclass
class RejectionResult:
    """The samples asked for (on the generator's device), the candidates drawn and how many of those were accepted."""

    samples: Any
    candidates: int
    accepted: int

    @property
    def acceptance(self) -> float:
        """Share of the candidates accepted (the samples are the first of them)."""
        return self.accepted / self.candidates


def refusal_reason(model: ModelSpec, config: dict[str, Any]) -> str | None:
    """Why DRS cannot use ``model`` trained with ``config``, as one sentence saying what to do, or ``None`` when it can."""
    from ganzoo.adversarial import make_loss
    from ganzoo.registry import computes_own_losses

    if model.task != "unconditional":
        return (f"Rejection sampling (--drs) needs an unconditional model; {model.name!r} is {model.task}, "
                "so sample it without --drs.")
    if computes_own_losses(model):
        return (f"Rejection sampling (--drs) reads D through ganzoo's standard losses, but {model.name!r} (plugin "
                f"{model.plugin!r}) computes its own, so sample it without --drs.")
    if not encodes_density_ratio(make_loss(config)):
        return (f"Rejection sampling (--drs) reads D as a density ratio, which a {config['loss']} critic is not; "
                f"sample without --drs, or train with one of the losses {', '.join(ratio_losses(config))}.")
    if float(config.get("label_smoothing") or 0.0):
        return ("Rejection sampling (--drs) reads D as a density ratio, which one-sided label smoothing distorts; "
                "sample without --drs, or train without label_smoothing.")
    grouped = [name for name in GROUP_REMEDIES if name in config.get("with", [])]
    if grouped:
        return (f"Rejection sampling (--drs) scores one sample at a time, but with {grouped[0]} D judges groups of "
                f"samples; sample without --drs, or train without --with {grouped[0]}.")
    return None


def encodes_density_ratio(loss: Any) -> bool:
    """Whether ``loss``'s optimal discriminator encodes log p_data/p_G (``log_density_ratio`` gives one)."""
    import torch

    return loss.log_density_ratio(torch.zeros(1)) is not None


def ratio_losses(config: dict[str, Any]) -> list[str]:
    """The registered losses, built-in or from plugins, whose D DRS can read; one that ``config`` cannot build is left out."""
    from ganzoo.adversarial import make_loss
    from ganzoo.registry import get_registry

    usable = []
    for name in get_registry().losses.names():
        try:
            if encodes_density_ratio(make_loss({**config, "loss": name})):
                usable.append(name)
        except Exception:  # a plugin's loss that needs settings this run lacks: not one to suggest
            continue
    return usable


def drs_logit(log_ratio: "torch.Tensor", max_log_ratio: float) -> "torch.Tensor":  # noqa: F821
    """F = (d - d_max) - log(1 - exp(d - d_max - eps)): the logit of the exact acceptance probability exp(d - d_max)."""
    import torch

    shifted = (log_ratio - max_log_ratio).clamp(max=0.0)
    return shifted - torch.log1p(-torch.exp(shifted - EPSILON))


def acceptance_probability(log_ratio: "torch.Tensor", max_log_ratio: float, gamma: float) -> "torch.Tensor":  # noqa: F821
    """sigmoid(F - gamma): exp(d - d_max) itself when gamma = 0, fewer acceptances as gamma grows."""
    import torch

    return torch.sigmoid(drs_logit(log_ratio, max_log_ratio) - gamma)


def rejection_sample(model: ModelSpec, config: dict[str, Any], generator: Any, discriminator: Any, num: int,
                     seed: int = 0, batch_size: int = 1000, quantile: float | None = DEFAULT_QUANTILE,
                     burn_in: int = BURN_IN) -> RejectionResult:
    """``num`` samples of ``generator`` kept by DRS with ``discriminator``; ``quantile=None`` means gamma = 0 (exact).

    Candidates, their noise and the uniform draws all come from ``seed``, so a call is reproducible.
    """
    import torch

    from ganzoo.adversarial import make_loss
    from ganzoo.sampling import generate

    reason = refusal_reason(model, config)
    if reason:
        raise GanzooError(reason)
    if quantile is not None and not 0.0 <= quantile < 1.0:
        raise GanzooError(f"The DRS quantile must lie in [0, 1), got {quantile}.")
    loss, draws = make_loss(config), torch.Generator().manual_seed(seed)
    latent = int(config["latent_dim"])

    def candidates(count: int) -> tuple[Any, Any]:
        z = torch.randn(count, latent, generator=draws)
        x = generate(model, config, generator, count, batch_size=batch_size, z=z)
        with torch.inference_mode():
            outputs = torch.cat([discriminator(x[i : i + batch_size]).reshape(-1) for i in range(0, count, batch_size)])
        if len(outputs) != count:
            raise GanzooError(f"Rejection sampling needs one discriminator output per sample; the discriminator of "
                              f"model {model.name!r} gives {len(outputs) // count} per sample.")
        return x, loss.log_density_ratio(outputs.float()).cpu()

    x, log_ratio = candidates(burn_in)
    max_log_ratio = float(log_ratio.max())
    gamma = 0.0
    if quantile is not None:
        gamma = float(torch.quantile(drs_logit(log_ratio, max_log_ratio).double(), quantile))
    kept, accepted, seen = [], 0, 0
    limit = burn_in + MAX_CANDIDATES_PER_SAMPLE * num
    while True:
        max_log_ratio = max(max_log_ratio, float(log_ratio.max()))
        keep = torch.rand(len(x), generator=draws) < acceptance_probability(log_ratio, max_log_ratio, gamma)
        kept.append(x[keep.to(x.device)])
        accepted, seen = accepted + int(keep.sum()), seen + len(x)
        if accepted >= num:
            return RejectionResult(torch.cat(kept)[:num], seen, accepted)
        if seen >= limit:
            raise GanzooError(f"Rejection sampling kept only {accepted} of {seen} candidates; lower --drs-quantile "
                              "or train longer so that D and G agree better.")
        x, log_ratio = candidates(batch_size)
