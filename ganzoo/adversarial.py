"""The standard adversarial step for unconditional families: D on real vs. fake, then G against D.

Families whose networks map noise to samples (``gan``, ``dcgan``, third-party ones) answer
``compute_losses`` with :func:`unconditional_losses`. The remedies that act on the losses
(instance noise, the discriminator weight penalty, gradient penalties, unrolling) live here so
they work with every loss; see :mod:`ganzoo.remedies`.
"""

from __future__ import annotations

from typing import Any

from ganzoo.errors import GanzooError, with_article
from ganzoo.specs import Losses

#: ``state`` key of the fake batch (with its graph) that D's stage leaves for G's under ``reuse_fake``; not checkpointed.
REUSED_FAKE = "_reused_fake"


def make_loss(config: dict[str, Any]) -> Any:
    """The :class:`ganzoo.losses.AdversarialLoss` named by ``config["loss"]``."""
    from ganzoo.plugin_checks import built_loss
    from ganzoo.registry import get_registry

    return built_loss(get_registry().losses.get(config["loss"]), config)


def run_loss(config: dict[str, Any], state: dict[str, Any], discriminator: Any) -> Any:
    """The run's loss object, built once and cached in ``state["_loss"]`` (not checkpointed)."""
    loss = state.get("_loss")
    if loss is None:
        loss = make_loss(config)
        if getattr(loss, "needs_autoencoder", False) and not getattr(discriminator, "reconstruction_error", False):
            raise GanzooError(f"--loss {config['loss']} needs an autoencoder discriminator; train the 'began' model instead.")
        if float(config.get("label_smoothing") or 0.0) and not loss.smooths_labels:
            raise GanzooError(f"label_smoothing has no meaning for --loss {config['loss']} (no real/fake labels); "
                              "use it with ns, minimax, lsgan or dragan, or drop it.")
        loss.bind(state)
        state["_loss"] = loss
    return loss


def _noise_std(config: dict[str, Any], state: dict[str, Any], advance: bool) -> float:
    from ganzoo.remedies import NOISE_STEP, instance_noise_std

    if not config.get("instance_noise"):
        return 0.0
    step = int(state.get(NOISE_STEP, 0))
    if advance:
        state[NOISE_STEP] = step + 1
    return instance_noise_std(config, step)


def unconditional_losses(generator: Any, discriminator: Any, batch: dict[str, Any], stage: str,
                         config: dict[str, Any], state: dict[str, Any]) -> Losses:
    """One step's terms: the discriminator on ``batch["real"]`` against fresh fakes, or the generator.

    With ``reuse_fake`` the discriminator's stage keeps its fake batch, with its graph, in ``state``
    and the generator's stage that follows backpropagates through it instead of drawing a new one.
    """
    import torch

    from ganzoo import remedies
    from ganzoo.distributed import batch_noise

    real = batch["real"]
    loss = run_loss(config, state, discriminator)
    std = _noise_std(config, state, advance=stage == "discriminator")

    def fresh_fake() -> Any:
        return generator(batch_noise(state, real.shape[0], int(config["latent_dim"]), real.device))  # shared across processes

    if stage == "discriminator":
        if config.get("reuse_fake"):
            state[REUSED_FAKE] = fresh_fake()
            fake = state[REUSED_FAKE].detach()
        else:
            with torch.no_grad():
                fake = fresh_fake()
        real_in, fake_in = remedies.add_instance_noise(real, std), remedies.add_instance_noise(fake, std)
        terms, real_out, fake_out = discriminator_terms(discriminator, discriminator.parameters(), loss, real_in,
                                                        fake_in, config)
        metrics = _named_terms(loss.metrics(real_out.detach(), fake_out.detach()), config, "metrics")
        if config.get("instance_noise"):
            metrics["instance_noise"] = real.new_tensor(std)
        return Losses(terms, metrics)
    reused = state.pop(REUSED_FAKE, None)
    fake_in = remedies.add_instance_noise(reused if reused is not None else fresh_fake(), std)
    if "unrolled" in config.get("with", []):
        real_in = remedies.add_instance_noise(real, std)
        optimizer = state["_optimizers"]["discriminator"]

        def objective(score: Any, weights: Any) -> Any:  # D's whole loss, penalties included, as its own step has it
            return sum(discriminator_terms(score, weights, loss, real_in, fake_in, config)[0].values())

        params = remedies.unrolled_parameters(discriminator, objective, int(config.get("unroll_steps", 5)), optimizer,
                                              getattr(loss, "clip", None))
        return Losses(loss.generator(remedies.discriminator_with(discriminator, params, fake_in)))
    return Losses(loss.generator(discriminator(fake_in)))


def discriminator_terms(score: Any, weights: Any, loss: Any, real_in: Any, fake_in: Any,
                        config: dict[str, Any]) -> tuple[dict[str, Any], Any, Any]:
    """D's loss terms on ``real_in`` and ``fake_in`` (the loss's own, its gradient penalty, R1 and the weight
    penalty), with D's outputs on both. ``score`` is D, or D with other ``weights`` (its trainable parameters),
    so that unrolled steps minimise exactly what D's own step does."""
    from ganzoo import remedies

    real_out, fake_out = score(real_in), score(fake_in)
    terms = _named_terms(loss.discriminator(real_out, fake_out), config, "discriminator")
    if hasattr(loss, "penalty"):
        terms.update(loss.penalty(score, real_in, fake_in))
    if config.get("r1_gamma"):
        terms["r1_penalty"] = float(config["r1_gamma"]) / 2 * remedies.r1_penalty(score, real_in)
    if config.get("d_weight_penalty"):
        terms["d_weight_penalty"] = float(config["d_weight_penalty"]) * remedies.weight_penalty(weights)
    return terms, real_out, fake_out


def _named_terms(returned: Any, config: dict[str, Any], method: str) -> dict[str, Any]:
    """A copy of what the loss's ``method`` returned, which must be a mapping of named terms; anything else (a bare
    tensor, say) is one sentence naming the loss, rather than a TypeError from ``dict()`` in the core."""
    if not isinstance(returned, dict):
        raise GanzooError(f"The {method}() of --loss {config['loss']} returned {with_article(type(returned).__name__)}, "
                          "not a dict of named terms; it must return {'name': tensor, ...}.")
    return dict(returned)
