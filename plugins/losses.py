"""Built-in adversarial losses."""

from __future__ import annotations

from typing import Callable

from ganzoo.hookspecs import hookimpl
from ganzoo.specs import LossSpec, Paper

GOODFELLOW = Paper("Generative Adversarial Nets", "Goodfellow et al.", 2014, "1406.2661")


@hookimpl
def register_losses(register: Callable[[LossSpec], None]) -> None:
    """The two forms of the original GAN objective."""
    from ganzoo import losses

    register(LossSpec("ns", "non-saturating: D uses binary cross-entropy on real=1 / fake=0, G maximises log D(G(z))",
                      lambda config: losses.NonSaturatingLoss(), GOODFELLOW))
    register(LossSpec("minimax", "saturating minimax: G minimises log(1 - D(G(z))) exactly as in the paper's value function",
                      lambda config: losses.MinimaxLoss(), GOODFELLOW))
