"""Mode-collapse and stability remedies that work with any loss (torch imported inside each function).

- instance noise (Sønderby et al. 2016; Arjovsky & Bottou 2017): Gaussian noise on every
  discriminator input, its std annealed linearly from ``instance_noise`` to 0;
- a discriminator weight penalty: ``d_weight_penalty`` · Σ w² over D's weights;
- the R1 penalty (Mescheder et al. 2018): ``r1_gamma``/2 · E‖∇ₓD(x)‖² on real data;
- unrolled GAN (Metz et al. 2016): the generator is scored by a copy of D advanced k steps,
  differentiably, so G's gradient accounts for how D would react;
- PacGAN (Lin et al. 2018) and minibatch discrimination (Salimans et al. 2016): modules that let
  D see several samples at once (:class:`PackedDiscriminator`, :class:`MinibatchDiscrimination`);
- generator EMA (:class:`EMAGenerator`).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable

from ganzoo.errors import GanzooError, with_article

#: Name of the counter of discriminator steps kept in the run's state (JSON, checkpointed).
NOISE_STEP = "instance_noise_step"


def instance_noise_std(config: dict[str, Any], step: int) -> float:
    """The noise std at discriminator step ``step``: linear from ``instance_noise`` to 0 over ``instance_noise_steps``."""
    start = float(config.get("instance_noise") or 0.0)
    horizon = int(config.get("instance_noise_steps") or 1)
    return start * max(0.0, 1.0 - step / horizon)


def add_instance_noise(x: "torch.Tensor", std: float) -> "torch.Tensor":  # noqa: F821
    """``x`` plus N(0, std²) noise (``x`` itself when std is 0)."""
    import torch

    return x + std * torch.randn_like(x) if std > 0 else x


def weight_penalty(weights: Iterable[Any]) -> "torch.Tensor":  # noqa: F821
    """Σ w² over the trainable ``weights`` of a discriminator (an L2 penalty, as weight decay on the loss)."""
    return sum(p.pow(2).sum() for p in weights if p.requires_grad)


def r1_penalty(discriminator: Any, real: "torch.Tensor") -> "torch.Tensor":  # noqa: F821
    """E‖∇ₓD(x)‖² on real data (Mescheder et al. 2018): D flattens around the data, so training settles on it."""
    from ganzoo.losses import gradient_penalty

    return gradient_penalty(discriminator, real, target=0.0)


def penalty_batch_norm_warning(config: dict[str, Any], loss: Any, discriminator: Any) -> str | None:
    """A warning when a gradient penalty taken image by image (WGAN-GP's, DRAGAN's, R1) meets batch norm in D.

    Batch norm makes each image's score depend on the other images of its batch, so the penalty's gradients mix
    the batch and no longer hold D to the slope the paper asks of it at each image; ``None`` when nothing clashes.
    """
    from torch.nn.modules.batchnorm import _BatchNorm  # every batch norm: 1d to 3d, lazy, synchronised

    penalties = [name for name, on in ((f"--loss {config.get('loss')}", hasattr(loss, "penalty")),
                                       ("r1_gamma", bool(config.get("r1_gamma")))) if on]
    if not penalties or not any(isinstance(module, _BatchNorm) for module in discriminator.modules()):
        return None
    remedy = "--set d_norm=layer (or none)" if "d_norm" in config else "a discriminator without batch norm"
    return (f"warning: the gradient penalty of {' and '.join(penalties)} is taken image by image, but batch norm in "
            f"the discriminator makes each image's score depend on its whole batch; {remedy} keeps the images apart.")


def unrolled_parameters(discriminator: Any, objective: Callable[[Any, Any], Any], steps: int, optimizer: Any,
                        clip: float | None = None) -> dict[str, "torch.Tensor"]:  # noqa: F821
    """D's parameters after ``steps`` differentiable updates by its own ``optimizer`` on ``objective(score,
    weights)``: D's whole loss, computed with ``score`` (D with the unrolled parameters) and ``weights`` (those
    parameters), and with WGAN's weight ``clip`` after each update, as D's own steps have them.

    The objective's fake samples keep their graph to the generator, and every step is built with
    ``create_graph``, so a loss computed with the returned parameters backpropagates into the
    generator through the unrolled updates (Metz et al. 2016, eq. 12) and not only through the final D.
    Each update is the optimizer's own rule started from its current state, as in the paper, which
    unrolls Adam with its moment estimates: Adam and RMSprop are unrolled exactly (see
    :func:`_unrolled_update`), any other optimizer as gradient descent at its learning rate. The
    optimizer's state and the real discriminator are left untouched; buffers (batch-norm statistics)
    are copied.
    """
    import torch
    from torch.func import functional_call

    named = list(discriminator.named_parameters())
    params = {name: p.detach().requires_grad_(True) for name, p in named}
    buffers = {name: b.clone() for name, b in discriminator.named_buffers()}
    group = optimizer.param_groups[0]
    moments = {name: _optimizer_moments(optimizer, p) for name, p in named}
    for _ in range(steps):
        state = {**params, **buffers}
        total = objective(lambda x, state=state: functional_call(discriminator, state, (x,)), list(params.values()))
        grads = torch.autograd.grad(total, list(params.values()), create_graph=True)
        for (name, p), g in zip(list(params.items()), grads):
            params[name], moments[name] = _unrolled_update(optimizer, group, p, g, moments[name])
            if clip:
                params[name] = params[name].clamp(-clip, clip)
    return {**params, **buffers}


def _optimizer_moments(optimizer: Any, parameter: Any) -> dict[str, Any]:
    """The optimizer's running statistics for ``parameter`` (detached copies; empty before its first step)."""
    state = optimizer.state.get(parameter, {})
    return {key: (value.detach().clone() if hasattr(value, "detach") else value) for key, value in state.items()}


def _unrolled_update(optimizer: Any, group: dict[str, Any], p: Any, g: Any, moments: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """One differentiable update of ``p`` by gradient ``g`` under ``optimizer``'s rule (Adam, RMSprop, else SGD)."""
    import torch

    lr = float(group["lr"])
    if isinstance(optimizer, torch.optim.Adam):
        beta1, beta2 = group["betas"]
        step = float(moments.get("step", 0.0)) + 1.0
        m = beta1 * moments.get("exp_avg", torch.zeros_like(p)) + (1 - beta1) * g
        v = beta2 * moments.get("exp_avg_sq", torch.zeros_like(p)) + (1 - beta2) * g * g
        # 1e-16 under the root keeps its derivative finite where a coordinate's gradient is exactly 0
        update = (m / (1 - beta1 ** step)) / ((v / (1 - beta2 ** step) + 1e-16).sqrt() + group["eps"])
        return p - lr * update, {"step": step, "exp_avg": m, "exp_avg_sq": v}
    if isinstance(optimizer, torch.optim.RMSprop) and not group.get("centered") and not group.get("momentum"):
        alpha = group["alpha"]
        v = alpha * moments.get("square_avg", torch.zeros_like(p)) + (1 - alpha) * g * g
        # as in Adam's rule, 1e-16 under the root keeps its derivative finite at a gradient of exactly 0
        return p - lr * g / ((v + 1e-16).sqrt() + group["eps"]), {**moments, "square_avg": v}
    return p - lr * g, moments


def discriminator_with(discriminator: Any, parameters: dict[str, Any], x: "torch.Tensor") -> "torch.Tensor":  # noqa: F821
    """``discriminator(x)`` computed with ``parameters`` in place of its own."""
    from torch.func import functional_call

    return functional_call(discriminator, parameters, (x,))


def packed_config(config: dict[str, Any], pack: int) -> dict[str, Any]:
    """The config of an inner discriminator that sees ``pack`` samples stacked along channels (or features)."""
    if config["data_kind"] == "vectors":
        return {**config, "dim": int(config["dim"]) * pack}
    if config["data_kind"] == "images":
        return {**config, "channels": int(config["channels"]) * pack}
    raise GanzooError(f"PacGAN packing works on images and vectors, not {config['data_kind']} data; drop --with pacgan.")


def _torch_modules() -> tuple[Any, Any]:
    import torch
    from torch import nn

    return torch, nn


def make_packed_discriminator(inner: Any, pack: int) -> Any:
    """Wrap ``inner`` (built for ``pack`` times the channels/features) into a PacGAN discriminator."""
    torch, nn = _torch_modules()

    class PackedDiscriminator(nn.Module):
        """PacGAN: groups of ``pack`` samples (same source) are stacked along dim 1 and judged jointly.

        A batch of N samples gives N // pack outputs; a remainder of fewer than ``pack`` samples is dropped.
        """

        def __init__(self) -> None:
            super().__init__()
            self.inner, self.pack = inner, pack

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            groups = x.shape[0] // self.pack
            if groups == 0:
                raise GanzooError(f"PacGAN needs batches of at least pack={self.pack} samples; raise batch_size.")
            x = x[: groups * self.pack]
            return self.inner(x.reshape(groups, self.pack * x.shape[1], *x.shape[2:]))

    return PackedDiscriminator()


def make_minibatch_discrimination(in_features: int, kernels: int, kernel_dim: int) -> Any:
    """A minibatch-discrimination layer (Salimans et al. 2016, section 3.2)."""
    torch, nn = _torch_modules()

    class MinibatchDiscrimination(nn.Module):
        """f (N, A) -> [f, o] (N, A + B): M = f·T (N, B, C); o_b(x_i) = Σ_j exp(-‖M_i,b - M_j,b‖₁).

        Each sample gets B features saying how close it is to the rest of the batch, so D can spot
        a batch of near-identical samples (the self-distance contributes exp(0) = 1 to every o_b).
        """

        def __init__(self) -> None:
            super().__init__()
            self.kernels, self.kernel_dim = kernels, kernel_dim
            self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1)

        def forward(self, f: torch.Tensor) -> torch.Tensor:
            m = (f @ self.T).view(-1, self.kernels, self.kernel_dim).transpose(0, 1)  # (B, N, C)
            distances = torch.cdist(m, m, p=1)  # (B, N, N) L1 distances, without an (N, N, B, C) temporary
            return torch.cat([f, torch.exp(-distances).sum(2).t()], dim=1)

    return MinibatchDiscrimination()


def add_minibatch_discrimination(discriminator: Any, kernels: int, kernel_dim: int) -> Any:
    """Replace the last layer of ``discriminator.net`` with [flatten, minibatch discrimination, linear].

    Works for discriminators whose ``net`` is a Sequential ending in a Linear layer, or in a
    convolution whose kernel covers its whole input (DCGAN's last layer): both are linear maps
    of the flattened features.
    """
    torch, nn = _torch_modules()
    net = getattr(discriminator, "net", None)
    last = net[-1] if isinstance(net, nn.Sequential) and len(net) else None
    if isinstance(last, nn.Linear):
        features = last.in_features
    elif isinstance(last, nn.Conv2d) and last.padding == (0, 0) and last.stride == (1, 1):
        features = last.in_channels * last.kernel_size[0] * last.kernel_size[1]
    else:
        held = (f"{type(discriminator).__name__} has no 'net' attribute" if net is None else
                f"its 'net' is {with_article(type(net).__name__)}" if not isinstance(net, nn.Sequential) else
                f"its 'net' ends in {with_article(type(last).__name__)}")
        raise GanzooError(
            f"minibatch-discrimination needs a discriminator whose 'net' is an nn.Sequential ending in a Linear or a "
            f"full-size Conv2d layer, but {held}, so drop --with minibatch-discrimination for this model."
        )
    net[-1] = nn.Sequential(nn.Flatten(1), make_minibatch_discrimination(features, kernels, kernel_dim),
                            nn.Linear(features + kernels, last.out_channels if isinstance(last, nn.Conv2d) else last.out_features))
    return discriminator


def make_ema_generator(online: Any) -> Any:
    """Wrap ``online`` with an exponential moving average copy used whenever the module is in eval mode."""
    torch, nn = _torch_modules()

    class EMAGenerator(nn.Module):
        """``online`` trains; ``ema`` (no gradients) tracks it and generates in eval mode (pictures, sampling,
        translation).

        Both live in the state_dict, so the generator file holds the EMA weights used for sampling and
        a checkpoint resumes both exactly.
        """

        compile_units = ("online",)  # what trains; the average only samples

        def __init__(self) -> None:
            super().__init__()
            self.online = online
            self.ema = copy.deepcopy(online).requires_grad_(False)

        def forward(self, z: torch.Tensor, *args: Any) -> torch.Tensor:
            return (self.online if self.training else self.ema)(z, *args)

        def __getattr__(self, name: str) -> Any:
            """What else the family's generator offers (CycleGAN's ``ab``, ``translate``, ``picture_rows``),
            taken from the network ``forward`` would use, so its losses train ``online`` and its pictures
            and translations come from ``ema``."""
            try:
                return super().__getattr__(name)
            except AttributeError:
                networks = self.__dict__.get("_modules", {})  # not self.online: no recursion while half-built
                if "ema" not in networks:
                    raise
                return getattr(networks["online" if self.__dict__.get("training", True) else "ema"], name)

        @torch.no_grad()
        def update(self, decay: float, updates: int) -> None:
            """ema ← d·ema + (1 - d)·online with d = min(decay, (1 + t) / (10 + t)) at update t; buffers are copied.

            The warm-up (as in TensorFlow's ExponentialMovingAverage) keeps the average from holding
            on to the random initial weights for thousands of steps.
            """
            decay = min(decay, (1 + updates) / (10 + updates))
            for ema, online in zip(self.ema.parameters(), self.online.parameters()):
                ema.lerp_(online, 1.0 - decay)
            for ema, online in zip(self.ema.buffers(), self.online.buffers()):
                ema.copy_(online)

    return EMAGenerator()
