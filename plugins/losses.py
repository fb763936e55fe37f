"""Built-in adversarial losses, the RMSprop optimizers WGAN asks for, WGAN's weight clipping and BEGAN's halving of
the learning rate when its convergence measure stalls.

Each loss is registered with its paper, its formula in words (shown by ``ganzoo info``) and the
paper's training settings (``defaults``), which apply when the loss is picked unless the user
sets them.
"""

from __future__ import annotations

from typing import Any, Callable

from ganzoo.hookspecs import hookimpl
from ganzoo.specs import LossSpec, ModelSpec, Paper

GOODFELLOW = Paper("Generative Adversarial Nets", "Goodfellow et al.", 2014, "1406.2661")
LSGAN = Paper("Least Squares Generative Adversarial Networks", "Mao et al.", 2017, "1611.04076")
WGAN = Paper("Wasserstein GAN", "Arjovsky et al.", 2017, "1701.07875")
WGAN_GP = Paper("Improved Training of Wasserstein GANs", "Gulrajani et al.", 2017, "1704.00028")
DRAGAN = Paper("On Convergence and Stability of GANs", "Kodali et al.", 2017, "1705.07215")
HINGE = Paper("Geometric GAN", "Lim & Ye", 2017, "1705.02894")
FGAN = Paper("f-GAN: Training Generative Neural Samplers using Variational Divergence Minimization",
             "Nowozin et al.", 2016, "1606.00709")
KL_WGAN = Paper("Bridging the Gap Between f-GANs and Wasserstein GANs", "Song & Ermon", 2020, "1910.09779")
BEGAN = Paper("BEGAN: Boundary Equilibrium Generative Adversarial Networks", "Berthelot et al.", 2017, "1703.10717")

#: The paper's critic settings: 5 critic steps per generator step.
WGAN_DEFAULTS = {"d_steps": 5, "optimizer": "rmsprop", "lr": 5e-5, "clip_value": 0.01}
#: WGAN-GP's critic, in the models that have these settings: layer norm instead of batch norm (which mixes the
#: images whose gradients the penalty takes one by one), and no dropout.
WGAN_GP_NETWORKS = {"d_norm": "layer", "dropout": 0.0}
#: WGAN-GP's settings: Adam betas (0.5, 0.9) as in the authors' MNIST and toy scripts; the paper's Algorithm 1 has
#: beta1 = 0, which did worse here (benchmarks/results/wgan_gp_critic.md).
WGAN_GP_DEFAULTS = {"d_steps": 5, "optimizer": "adam", "lr": 1e-4, "beta1": 0.5, "beta2": 0.9, "gp_weight": 10.0}

F_GAN_SUMMARIES = {
    "kl": "KL(P||Q): T = v, f*(t) = exp(t - 1); the course's KL-GAN",
    "rkl": "reverse KL(Q||P): T = -exp(-v), f*(t) = -1 - log(-t)",
    "js": "Jensen-Shannon: T = log 2 - log(1 + exp(-v)), f*(t) = -log(2 - exp(t))",
    "pearson": "Pearson chi-squared: T = v, f*(t) = t^2/4 + t",
    "hellinger": "squared Hellinger: T = 1 - exp(-v), f*(t) = t / (1 - t)",
}


def _fgan_factory(divergence: str) -> Callable[[dict[str, Any]], Any]:
    def factory(config: dict[str, Any]) -> Any:
        from ganzoo.losses import FDivergenceLoss

        return FDivergenceLoss(divergence, config)

    return factory


def _factory(class_name: str) -> Callable[[dict[str, Any]], Any]:
    def factory(config: dict[str, Any]) -> Any:
        from ganzoo import losses

        return getattr(losses, class_name)(config)

    return factory


@hookimpl
def register_losses(register: Callable[[LossSpec], None]) -> None:
    """Every built-in objective with its paper, formula in words and the paper's settings."""
    register(LossSpec("ns", "non-saturating: D minimises BCE on real=1 / fake=0, G maximises log D(G(z))",
                      _factory("NonSaturatingLoss"), GOODFELLOW))
    register(LossSpec("minimax", "saturating minimax: G minimises log(1 - D(G(z))) exactly as in the paper's value function",
                      _factory("MinimaxLoss"), GOODFELLOW))
    register(LossSpec("lsgan", "least squares: D minimises (D(x) - 1)^2/2 + D(G(z))^2/2, G minimises (D(G(z)) - 1)^2/2",
                      _factory("LeastSquaresLoss"), LSGAN))
    register(LossSpec("wgan", "Wasserstein: critic maximises mean D(x) - mean D(G(z)), G maximises mean D(G(z)); "
                      "critic weights clipped to [-clip_value, clip_value]; RMSprop lr 5e-5, 5 critic steps",
                      _factory("WassersteinLoss"), WGAN, defaults=dict(WGAN_DEFAULTS)))
    register(LossSpec("wgan-gp", "Wasserstein with gradient penalty: the WGAN critic plus gp_weight * (|grad D(x_hat)| - 1)^2 "
                      "at x_hat = e x + (1 - e) G(z), e ~ U[0,1] per sample; Adam lr 1e-4, betas (0.5, 0.9), 5 critic steps",
                      _factory("WassersteinGPLoss"), WGAN_GP, defaults=dict(WGAN_GP_DEFAULTS),
                      network_defaults=dict(WGAN_GP_NETWORKS)))
    register(LossSpec("dragan", "non-saturating GAN plus gp_weight * (|grad D(x_hat)| - 1)^2 at x_hat = x + a d, "
                      "d ~ 0.5 std(x) U[0,1], a ~ U[0,1]: a penalty around the real data",
                      _factory("DraganLoss"), DRAGAN, defaults={"gp_weight": 10.0}))
    register(LossSpec("hinge", "hinge: D minimises max(0, 1 - D(x)) + max(0, 1 + D(G(z))), G minimises -D(G(z))",
                      _factory("HingeLoss"), HINGE))
    for divergence, summary in F_GAN_SUMMARIES.items():
        register(LossSpec(f"f-gan-{divergence}", f"f-GAN, D maximises E_P[T(x)] - E_Q[f*(T(G(z)))], G maximises "
                          f"E_Q[T(G(z))]; {summary}", _fgan_factory(divergence), FGAN))
    register(LossSpec("kl-wgan", "KL-WGAN (hinge form): fake outputs reweighted by r = exp(D) / mean(exp(D)); "
                      "D minimises max(0, 1 - D(x)) + max(0, 1 + r D(G(z))), G minimises -r D(G(z))",
                      _factory("KLWassersteinLoss"), KL_WGAN))
    register(LossSpec("began", "boundary equilibrium: D is an autoencoder, L = L1 reconstruction error; D minimises "
                      "L(x) - k L(G(z)), G minimises L(G(z)), k += lambda_k (gamma L(x) - L(G(z))); logs M and k_t "
                      "(model 'began' only)",
                      _factory("BEGANLoss"), BEGAN, models=("began",)))


@hookimpl(tryfirst=True)
def build_optimizers(model: ModelSpec, config: dict[str, Any], generator: Any, discriminator: Any) -> Any:
    """RMSprop on both networks when ``optimizer`` is ``rmsprop`` (WGAN's choice); otherwise let the core answer."""
    if config.get("optimizer") != "rmsprop":
        return None
    import torch

    from ganzoo.defaults import stage_lr

    return {
        stage: torch.optim.RMSprop(net.parameters(), lr=stage_lr(config, stage), foreach=True)
        for stage, net in (("generator", generator), ("discriminator", discriminator))
    }


@hookimpl
def after_step(config: dict[str, Any], stage: str, discriminator: Any, state: dict[str, Any]) -> None:
    """WGAN's Lipschitz constraint: after each critic step, clamp every critic weight to [-clip, clip]."""
    clip = getattr(state.get("_loss"), "clip", None)
    if stage != "discriminator" or not clip:
        return
    import torch

    with torch.no_grad():
        for parameter in discriminator.parameters():
            parameter.clamp_(-clip, clip)


#: The last epoch whose end BEGAN's stall rule judged (a resume mid-epoch must not judge the part it continues).
JUDGED_EPOCH_KEY = "began_judged_epoch"


@hookimpl(tryfirst=True)
def on_epoch_start(config: dict[str, Any], epoch: int, state: dict[str, Any], first_batch: int) -> None:
    """BEGAN's paper halves the learning rate when its convergence measure M stalls: after ``lr_patience`` epochs
    whose mean M set no new low, halve the schedule's ``lr_scale`` (which the schedule applies after this). Each
    epoch is judged once, at the next one's start; an epoch a resume starts over (``first_batch`` 0 again) drops
    the M it summed before the stop."""
    patience = int(config.get("lr_patience") or 0)
    if config.get("loss") != "began" or patience <= 0:
        return
    from ganzoo.losses import EPOCH_M_KEY, began_stalled
    from ganzoo.schedule import LR_SCALE_KEY

    if epoch <= int(state.get(JUDGED_EPOCH_KEY, 0)):  # the first epoch, or one a resume goes on with
        if first_batch == 0:  # from its start (the data changed): its M so far was taken on the old data
            state.pop(EPOCH_M_KEY, None)
        return

    state[JUDGED_EPOCH_KEY] = epoch
    if began_stalled(state, patience):
        state[LR_SCALE_KEY] = float(state.get(LR_SCALE_KEY, 1.0)) / 2
