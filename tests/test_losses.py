"""The loss zoo and the remedies: hand-computed values, gradient signs, penalties, clipping, unrolling, shapes, training."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from conftest import write_png_images
from ganzoo import losses, remedies
from ganzoo.errors import GanzooError


def _leaf(*values: float) -> torch.Tensor:
    return torch.tensor(values, requires_grad=True)


def _grad(value: torch.Tensor, wrt: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(value, wrt)
    return grad


# -- each loss on hand-computed inputs ---------------------------------------------------------

def test_non_saturating_and_minimax_values_and_gradient_signs():
    real, fake = _leaf(1.0), _leaf(-1.0)
    d = losses.NonSaturatingLoss().discriminator(real, fake)
    softplus_minus_1 = math.log1p(math.exp(-1))  # -log sigmoid(1) = -log(1 - sigmoid(-1))
    assert d["d_real"].item() == pytest.approx(softplus_minus_1)
    assert d["d_fake"].item() == pytest.approx(softplus_minus_1)
    assert _grad(d["d_real"], real) < 0 and _grad(d["d_fake"], fake) > 0  # D pushes real up, fake down
    g_ns = losses.NonSaturatingLoss().generator(fake)["g_adv"]
    assert g_ns.item() == pytest.approx(math.log1p(math.exp(1)))  # -log sigmoid(-1)
    g_mm = losses.MinimaxLoss().generator(fake)["g_adv"]
    assert g_mm.item() == pytest.approx(math.log(1 - 1 / (1 + math.exp(1))))  # log(1 - D(G(z)))
    assert _grad(g_ns, fake) < 0 and _grad(g_mm, fake) < 0  # both push D(G(z)) up
    # saturation: when D rejects fakes confidently, minimax's gradient vanishes, non-saturating's does not
    confident = _leaf(-8.0)
    assert abs(_grad(losses.MinimaxLoss().generator(confident)["g_adv"], confident)) < 1e-3
    assert abs(_grad(losses.NonSaturatingLoss().generator(confident)["g_adv"], confident)) > 0.99


def test_label_smoothing_moves_only_the_real_target():
    real, fake = torch.tensor([3.0]), torch.tensor([-1.0])
    smooth = losses.NonSaturatingLoss({"label_smoothing": 0.1}).discriminator(real, fake)
    p = 1 / (1 + math.exp(-3))
    assert smooth["d_real"].item() == pytest.approx(-(0.9 * math.log(p) + 0.1 * math.log(1 - p)))
    assert smooth["d_fake"].item() == pytest.approx(losses.NonSaturatingLoss().discriminator(real, fake)["d_fake"].item())
    assert losses.LeastSquaresLoss({"label_smoothing": 0.1}).discriminator(real, fake)["d_real"].item() == pytest.approx(0.5 * 2.1**2)


def test_lsgan_values_and_gradient_signs():
    real, fake = _leaf(1.0, 3.0), _leaf(-1.0)
    d = losses.LeastSquaresLoss().discriminator(real, fake)
    assert d["d_real"].item() == pytest.approx((0 + 0.5 * 4) / 2)
    assert d["d_fake"].item() == pytest.approx(0.5)
    assert _grad(d["d_real"], real).tolist() == pytest.approx([0.0, 1.0])  # at the target: no push; above: pulled down
    g = losses.LeastSquaresLoss().generator(fake)["g_adv"]
    assert g.item() == pytest.approx(2.0) and _grad(g, fake) < 0


def test_wgan_and_hinge_values_and_gradient_signs():
    real, fake = _leaf(1.0, 3.0), _leaf(-1.0)
    d = losses.WassersteinLoss().discriminator(real, fake)
    assert (d["d_real"].item(), d["d_fake"].item()) == (-2.0, -1.0)
    assert all(_grad(d["d_real"], real) < 0) and _grad(d["d_fake"], fake) > 0
    assert losses.WassersteinLoss().generator(fake)["g_adv"].item() == 1.0
    real, fake = _leaf(0.5, 2.0), _leaf(-0.5, 1.0)
    h = losses.HingeLoss().discriminator(real, fake)
    assert h["d_real"].item() == pytest.approx(0.25) and h["d_fake"].item() == pytest.approx(1.25)
    assert _grad(h["d_real"], real).tolist() == [-0.5, 0.0]  # beyond the margin: no gradient
    assert losses.HingeLoss().generator(fake)["g_adv"].item() == pytest.approx(-0.25)


def test_kl_wgan_reweights_fakes_by_their_normalised_exponential():
    fake = _leaf(0.0, math.log(3.0))  # r = e^D / mean(e^D) = [0.5, 1.5]
    d = losses.KLWassersteinLoss().discriminator(torch.tensor([2.0]), fake)
    weighted = [0.0, 1.5 * math.log(3.0)]
    assert d["d_fake"].item() == pytest.approx(sum(1 + w for w in weighted) / 2)
    assert losses.KLWassersteinLoss().generator(fake)["g_adv"].item() == pytest.approx(-sum(weighted) / 2)
    same = torch.tensor([0.3, 0.3])  # equal outputs: r = 1, the plain hinge loss
    assert losses.KLWassersteinLoss().discriminator(same, same)["d_fake"].item() == pytest.approx(1.3)


PAPER_CONJUGATES = {  # Nowozin et al. 2016, Table 6, f*(t) as written in the paper
    "kl": lambda t: math.exp(t - 1),
    "rkl": lambda t: -1 - math.log(-t),
    "js": lambda t: -math.log(2 - math.exp(t)),
    "pearson": lambda t: t * t / 4 + t,
    "hellinger": lambda t: t / (1 - t),
}
PAPER_ACTIVATIONS = {
    "kl": lambda v: v, "rkl": lambda v: -math.exp(-v), "js": lambda v: math.log(2) - math.log1p(math.exp(-v)),
    "pearson": lambda v: v, "hellinger": lambda v: 1 - math.exp(-v),
}


@pytest.mark.parametrize("divergence", losses.F_DIVERGENCES)
def test_f_gan_matches_the_papers_activation_and_conjugate(divergence):
    loss = losses.FDivergenceLoss(divergence)
    for v in (-1.5, 0.0, 0.7):
        t = PAPER_ACTIVATIONS[divergence](v)
        real, fake = _leaf(v), _leaf(v)
        d = loss.discriminator(real, fake)
        assert -d["d_real"].item() == pytest.approx(t)
        assert d["d_fake"].item() == pytest.approx(PAPER_CONJUGATES[divergence](t))
        assert _grad(d["d_real"], real) < 0 and _grad(d["d_fake"], fake) > 0  # T(real) up, f*(T(fake)) down
        assert _grad(loss.generator(fake)["g_adv"], fake) < 0


def test_f_gan_divergence_is_zero_when_distributions_match_at_the_optimum():
    # at T = f'(1) (the optimum for P = Q), E_P[T] - E_Q[f*(T)] = f(1) = 0 for every f
    optimum_v = {"kl": 1.0, "rkl": 0.0, "js": 0.0, "pearson": 0.0, "hellinger": 0.0}
    for divergence, v in optimum_v.items():
        terms = losses.FDivergenceLoss(divergence).discriminator(torch.tensor([v]), torch.tensor([v]))
        assert sum(terms.values()).item() == pytest.approx(0.0, abs=1e-6), divergence
    with pytest.raises(GanzooError, match="f-divergence"):
        losses.FDivergenceLoss("tv")


def test_began_balance_and_convergence_measure():
    state: dict = {}
    loss = losses.BEGANLoss({"gamma": 0.5, "lambda_k": 0.001})
    loss.bind(state)
    real, fake = torch.tensor([2.0]), _leaf(0.5)
    d = loss.discriminator(real, fake)
    assert d["d_real"].item() == 2.0 and d["d_fake"].item() == 0.0  # k_0 = 0
    metrics = loss.metrics(real, fake.detach())
    assert metrics["M"].item() == pytest.approx(2.0 + abs(0.5 * 2.0 - 0.5))
    assert state["began_k"].item() == pytest.approx(0.001 * 0.5)
    d = loss.discriminator(real, fake)
    assert d["d_fake"].item() == pytest.approx(-0.0005 * 0.5) and _grad(d["d_fake"], fake) < 0
    state["began_k"] = torch.tensor(0.9999)
    loss.metrics(torch.tensor([10.0]), torch.tensor([0.0]))
    assert state["began_k"].item() == 1.0  # clipped to [0, 1]
    loss.metrics(torch.tensor([float("nan")]), torch.tensor([0.0]))  # a step the guard undoes
    assert state["began_k"].item() == 1.0  # k_t keeps its value instead of turning NaN for good
    assert losses.EPOCH_M_KEY not in state  # M is summed over epochs only for the stall rule (lr_patience)


def test_began_sums_m_over_the_epoch_leaving_out_steps_the_guard_undoes():
    state: dict = {}
    loss = losses.BEGANLoss({"gamma": 0.5, "lambda_k": 0.001, "lr_patience": 1})
    loss.bind(state)
    loss.metrics(torch.tensor([2.0]), torch.tensor([0.5]))  # M = 2 + |1 - 0.5| = 2.5
    loss.metrics(torch.tensor([float("nan")]), torch.tensor([0.0]))  # neither counted nor summed
    loss.metrics(torch.tensor([1.0]), torch.tensor([1.0]))  # M = 1 + |0.5 - 1| = 1.5
    assert state[losses.EPOCH_M_KEY].tolist() == [4.0, 2.0]
    assert not losses.began_stalled(state, patience=1) and state[losses.BEST_M_KEY] == 2.0  # the first mean: a low
    assert losses.EPOCH_M_KEY not in state  # the next epoch starts a new sum
    loss.metrics(torch.tensor([2.0]), torch.tensor([0.5]))
    assert losses.began_stalled(state, patience=1)  # 2.5: no new low


def test_began_on_images_has_the_papers_networks_and_trains_and_samples(cli, image_folder, tmp_path):
    """The paper's G is built like D's decoder (weights of its own, no tanh); each resolution has two 3x3
    convolutions with ELU. Runs saved before keep their DCGAN generator and thinner autoencoder."""
    from ganzoo import build
    from ganzoo.plugins.began_networks import DecoderGenerator
    from ganzoo.plugins.dcgan.networks import DCGANGenerator
    from ganzoo.registry import get_model

    model = get_model("began")
    config = _config("began", data="mnist", image_size=16)
    generator, critic = build.build_generator(model, config), build.build_discriminator(model, config)
    assert isinstance(generator, DecoderGenerator) and generator.net is not critic.decoder
    assert [(type(m), getattr(m, "weight", torch.empty(0)).shape) for m in generator.net] == \
        [(type(m), getattr(m, "weight", torch.empty(0)).shape) for m in critic.decoder]
    assert not any(isinstance(m, (nn.Tanh, nn.BatchNorm2d)) for m in generator.modules())

    def same_size_convs(net):  # 3x3 convolutions that keep the size and width: the per-resolution ones
        return sum(isinstance(m, nn.Conv2d) and m.stride == (1, 1) and m.in_channels == m.out_channels for m in net)

    assert (same_size_convs(critic.encoder), same_size_convs(critic.decoder)) == (2 * 3, 2 * 3)  # 4, 8, 16 px
    saved_before = {k: v for k, v in config.items() if k != "convs_per_scale"}
    old_critic = build.build_discriminator(model, saved_before)
    assert isinstance(build.build_generator(model, saved_before), DCGANGenerator)
    assert (same_size_convs(old_critic.encoder), same_size_convs(old_critic.decoder)) == (0, 3)

    # the paper's z ~ U[-1, 1]: the decoder reads erf(z/sqrt 2) of the normal noise, uniform on [-1, 1]
    z = torch.randn(20_000, config["latent_dim"], generator=torch.Generator().manual_seed(0))
    read = []
    generator.net[0].register_forward_hook(lambda module, inputs, output: read.append(inputs[0]))
    generator(z)
    seen = read[0].flatten().sort().values
    assert seen.min() >= -1 and seen.max() <= 1
    uniform = torch.linspace(-1, 1, seen.numel())
    assert (seen - uniform).abs().max() < 0.01  # Kolmogorov-Smirnov distance to U[-1, 1], times 2
    saved_before_uniform = {k: v for k, v in config.items() if k != "uniform_noise"}
    assert not build.build_generator(model, saved_before_uniform).uniform_noise

    run = tmp_path / "run"
    cli("train", "began", "--data", image_folder, "--image-size", "16", "--epochs", "1", "--batch-size", "16",
        "--out", run, "--no-progress", "--device", "cpu")
    cli("sample", "began", "--weights", run, "--num", "8", "--out", tmp_path / "s.npz")
    import numpy as np

    assert np.load(tmp_path / "s.npz")["images"].shape == (8, 3, 16, 16)


def test_began_halves_its_learning_rates_when_m_stalls_and_a_resume_mid_epoch_keeps_that(cli, tmp_path):
    """The paper halves the rate when M stalls: here after each epoch whose mean M sets no new low (lr_patience=1).
    The rates expected are worked out from every step's logged M; a run resumed from inside an epoch ends the same."""
    import json
    import shutil

    from ganzoo.checkpoint import list_checkpoints

    common = ["began", "--data", "ring8", "--no-progress", "--device", "cpu", "--set", "hidden_dims=[32,32]",
              "--set", "lr_patience=1", "--set", "log_every=1"]
    cli("train", *common, "--epochs", "6", "--set", "checkpoint_every=150", "--set", "keep_checkpoints=20",
        "--out", tmp_path / "a")
    events = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    logged = [[row["M"] for row in events if row["event"] == "log" and row["epoch"] == e] for e in range(1, 7)]
    rates = [row["lr"] for row in events if row["event"] == "epoch"]
    scale, best, expected = 1.0, math.inf, []
    for steps in logged:
        expected.append({"generator": 1e-3 * scale, "discriminator": 1e-3 * scale})
        mean = sum(steps) / len(steps)
        best, scale = (mean, scale) if mean < best else (best, scale / 2)
    assert rates == expected
    assert 1e-3 / 2**4 <= rates[-1]["generator"] < 1e-3  # some epochs stalled, some did not

    shutil.copytree(tmp_path / "a", tmp_path / "b")
    names = [path.name for path in list_checkpoints(tmp_path / "b")]
    mid_epoch_4 = names.index("state-epoch-0003-batch-000150.safetensors")
    for path in list_checkpoints(tmp_path / "b")[mid_epoch_4 + 1:]:
        path.unlink()  # as if the run had died inside epoch 4, after that epoch's rate was set
    cli("train", "began", "--resume", tmp_path / "b", "--no-progress", "--device", "cpu")
    from ganzoo.checkpoint import load_checkpoint

    (straight_meta, straight), (resumed_meta, resumed) = (
        load_checkpoint(tmp_path / run / "checkpoints" / "state-epoch-0006.safetensors") for run in ("a", "b"))
    assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert resumed_meta["state"] == straight_meta["state"]  # the lowest M, the stalled epochs, lr_scale
    resumed_rates = [row["lr"] for row in map(json.loads, (tmp_path / "b" / "metrics.jsonl").read_text().splitlines())
                     if row["event"] == "epoch"]
    assert resumed_rates[-3:] == rates[-3:]


# -- gradient penalties ------------------------------------------------------------------------

def test_gradient_penalty_on_known_functions():
    linear = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[3.0, 4.0]]))  # grad of D is w everywhere, |w| = 5
    critic = lambda x: linear(x).squeeze(1)  # noqa: E731
    penalty = losses.gradient_penalty(critic, torch.randn(6, 2))
    assert penalty.item() == pytest.approx(16.0)
    (grad,) = torch.autograd.grad(penalty, linear.weight)  # d/dw (|w| - 1)^2 = 2(|w| - 1) w / |w|
    assert grad.flatten().tolist() == pytest.approx([4.8, 6.4])
    half_square = lambda x: 0.5 * x.pow(2).sum(1)  # noqa: E731  grad = x
    points = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    assert losses.gradient_penalty(half_square, points).item() == pytest.approx((1 + 4) / 2)
    wgan_gp = losses.WassersteinGPLoss({"gp_weight": 10.0}).penalty(critic, torch.randn(4, 2), torch.randn(4, 2))
    assert wgan_gp["gradient_penalty"].item() == pytest.approx(160.0)
    dragan = losses.DraganLoss({"gp_weight": 10.0}).penalty(critic, torch.randn(4, 2), torch.randn(4, 2))
    assert dragan["gradient_penalty"].item() == pytest.approx(160.0)
    from ganzoo.remedies import r1_penalty  # zero-centred: |w|^2 for the linear critic, mean |x|^2 for the half square

    assert r1_penalty(critic, torch.randn(3, 2)).item() == pytest.approx(25.0)
    assert r1_penalty(half_square, points).item() == pytest.approx((4 + 9) / 2)


def test_wgan_gp_interpolates_per_sample_between_real_and_fake():
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return x.sum(1)

    real, fake = torch.zeros(64, 2), torch.ones(64, 2)
    losses.WassersteinGPLoss().penalty(critic, real, fake)
    eps = seen[0][:, 0]
    assert torch.equal(seen[0][:, 0], seen[0][:, 1])  # one coefficient per sample, shared by its coordinates
    assert eps.min() >= 0 and eps.max() <= 1 and eps.std() > 0.1  # drawn per sample in [0, 1]


# -- configuration: loss defaults, optimizers, clipping ----------------------------------------

def _config(model: str, data: str = "ring8", **overrides):
    from ganzoo.config import resolve_config
    from ganzoo.registry import get_dataset, get_model

    return resolve_config(get_model(model), get_dataset(data).info, overrides)


def test_loss_defaults_apply_unless_the_user_sets_them():
    wgan = _config("gan", loss="wgan")
    assert (wgan["d_steps"], wgan["optimizer"], wgan["lr"], wgan["clip_value"]) == (5, "rmsprop", 5e-5, 0.01)
    assert _config("gan", loss="wgan", lr=1e-3, d_steps=2)["lr"] == 1e-3
    gp = _config("gan", loss="wgan-gp", gp_weight=5.0)
    assert (gp["beta1"], gp["beta2"], gp["d_steps"], gp["gp_weight"]) == (0.5, 0.9, 5, 5.0)
    assert _config("gan")["d_steps"] == 1 and _config("gan")["optimizer"] == "adam"
    named = _config("wgan", data="mnist")
    assert (named["loss"], named["d_steps"], named["optimizer"]) == ("wgan", 5, "rmsprop")
    with pytest.raises(GanzooError, match="optimizer"):
        _config("gan", optimizer="sgd")
    with pytest.raises(GanzooError, match="gp_weight"):
        _config("gan", gp_weight=1.0)  # a setting of a loss that is not chosen is unknown


def test_wgan_gp_critics_use_layer_norm_so_each_score_depends_on_its_own_image_alone():
    """The WGAN-GP paper's critic has no batch norm: its gradient penalty is taken per image, and batch norm makes
    each score depend on the whole batch. Every DCGAN-based model trained with wgan-gp gets layer norm instead."""
    from ganzoo import build
    from ganzoo.registry import get_model

    for model, overrides in (("wgan-gp", {}), ("dcgan", {"loss": "wgan-gp"}), ("cdcgan", {"loss": "wgan-gp"}),
                             ("acgan", {"loss": "wgan-gp"})):
        config = _config(model, data="mnist", **overrides)
        critic = build.build_discriminator(get_model(model), config)
        kinds = {type(module) for module in critic.modules()}
        assert config["d_norm"] == "layer" and nn.GroupNorm in kinds and nn.BatchNorm2d not in kinds, model
    assert _config("dcgan", data="mnist")["d_norm"] == "batch"  # DCGAN's own critic keeps the paper's batch norm
    assert _config("dcgan", data="mnist", loss="wgan-gp", d_norm="batch")["d_norm"] == "batch"  # the user's wins
    assert "d_norm" not in _config("gan", loss="wgan-gp")  # an MLP critic has no normalisation to choose
    assert (_config("gan", data="mnist")["dropout"], _config("gan", data="mnist", loss="wgan-gp")["dropout"]) == (0.3, 0.0)
    saved_before = {k: v for k, v in _config("wgan-gp", data="mnist").items() if k != "d_norm"}  # an older run's
    assert nn.BatchNorm2d in {type(m) for m in build.build_discriminator(get_model("wgan-gp"), saved_before).modules()}
    images = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(0), requires_grad=True)
    for norm, mixes_images in (("batch", True), ("layer", False), ("none", False)):
        config = _config("dcgan", data="mnist", d_norm=norm)
        critic = build.build_discriminator(get_model("dcgan"), config).train()
        (others,) = torch.autograd.grad(critic(images)[0], images)
        assert others[0].abs().sum() > 0
        assert (others[1:].abs().sum() > 0) == mixes_images, norm  # does image 0's score move with images 1..5?
    with pytest.raises(GanzooError, match=r"^d_norm must be batch, layer or none, got 'group'; set it as in "
                                          r"--set d_norm=batch\.$"):
        _config("dcgan", data="mnist", d_norm="group")
    with pytest.raises(GanzooError, match=r"^d_norm must be batch, layer or none, got None; set it as in "
                                          r"--set d_norm=batch\.$"):
        _config("dcgan", data="mnist", d_norm=None)  # --set d_norm=None: not "the default"


def test_a_per_image_gradient_penalty_on_a_batch_norm_critic_is_warned_of(cli, image_folder, tmp_path):
    """DRAGAN's and R1's penalties are taken image by image too; batch norm (kept by default outside WGAN-GP) mixes
    the batch, so training says so once, with the setting that avoids it, and says nothing when nothing mixes."""
    tiny = ["--data", image_folder, "--image-size", "16", "--epochs", "1", "--batch-size", "16", "--set", "g_width=8",
            "--set", "d_width=8", "--no-progress", "--device", "cpu"]
    warning = ("warning: the gradient penalty of {} is taken image by image, but batch norm in the discriminator makes "
               "each image's score depend on its whole batch; --set d_norm=layer (or none) keeps the images apart.")
    warned = ((["--loss", "dragan"], "--loss dragan"), (["--set", "r1_gamma=1"], "r1_gamma"),
              (["--loss", "dragan", "--set", "r1_gamma=1"], "--loss dragan and r1_gamma"),
              (["--loss", "wgan-gp", "--set", "d_norm=batch"], "--loss wgan-gp"))
    for run, (extra, penalties) in enumerate(warned):
        out = cli("train", "dcgan", *tiny, *extra, "--out", tmp_path / f"warned{run}").output
        assert "".join(out.split()).count("".join(warning.format(penalties).split())) == 1, extra
    quiet = (["--loss", "dragan", "--set", "d_norm=layer"], ["--loss", "wgan-gp"], ["--loss", "hinge"])
    for run, extra in enumerate(quiet):
        assert "batch norm" not in cli("train", "dcgan", *tiny, *extra, "--out", tmp_path / f"quiet{run}").output
    for seed, name in enumerate(("a", "b")):  # conditional models take the loss's penalty on (sample, label) pairs
        write_png_images(tmp_path / "classes" / name, 8, seed=seed)
    conditional = cli("train", "cdcgan", "--data", tmp_path / "classes", *tiny[2:], "--loss", "dragan",
                      "--out", tmp_path / "conditional").output
    assert " ".join(conditional.split()).count("warning: the gradient penalty of --loss dragan is taken image by "
                                               "image, but batch norm in the discriminator") == 1


def test_wgan_gets_rmsprop_and_others_adam():
    from ganzoo import build
    from ganzoo.registry import get_model

    model = get_model("gan")
    for loss, kind in (("wgan", torch.optim.RMSprop), ("wgan-gp", torch.optim.Adam)):
        config = _config("gan", loss=loss)
        g, d = build.build_generator(model, config), build.build_discriminator(model, config)
        optimizers = build.build_optimizers(model, config, g, d)
        assert all(type(o) is kind for o in optimizers.values())
        assert optimizers["discriminator"].param_groups[0]["lr"] == config["lr"]


# -- remedies: unrolling, packing, minibatch discrimination, EMA --------------------------------

def _mlp(inputs: int, outputs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(inputs, 16), nn.LeakyReLU(0.2), nn.Linear(16, outputs))


def _adam(module: nn.Module) -> torch.optim.Adam:
    return torch.optim.Adam(module.parameters(), lr=1e-3, betas=(0.5, 0.999))


def _objective(loss, real: torch.Tensor, fake: torch.Tensor):
    """D's loss as unrolled_parameters takes it: computed with D under other weights (``score``)."""
    return lambda score, weights: sum(loss.discriminator(score(real).squeeze(1), score(fake).squeeze(1)).values())


def _generator_grad(unroll_steps: int | None) -> torch.Tensor:
    generator, discriminator = _mlp(4, 2, 0), _mlp(2, 1, 1)
    loss = losses.NonSaturatingLoss()
    z, real = torch.randn(32, 4, generator=torch.Generator().manual_seed(2)), torch.randn(32, 2, generator=torch.Generator().manual_seed(3))
    fake = generator(z)
    if unroll_steps is None:
        g_loss = loss.generator(discriminator(fake).squeeze(1))["g_adv"]
    else:
        params = remedies.unrolled_parameters(discriminator, _objective(loss, real, fake), unroll_steps,
                                              _adam(discriminator))
        g_loss = loss.generator(remedies.discriminator_with(discriminator, params, fake).squeeze(1))["g_adv"]
    return torch.cat([g.flatten() for g in torch.autograd.grad(g_loss, list(generator.parameters()))])


def test_unrolling_changes_the_generators_gradient():
    plain, zero, unrolled = _generator_grad(None), _generator_grad(0), _generator_grad(5)
    assert torch.allclose(plain, zero)  # k = 0 is the ordinary generator step
    assert not torch.allclose(plain, unrolled, atol=1e-4)
    # the difference is not only D's new weights: gradients flow through the unrolled updates into G
    generator, discriminator = _mlp(4, 2, 0), _mlp(2, 1, 1)
    fake = generator(torch.randn(8, 4))
    params = remedies.unrolled_parameters(discriminator, _objective(losses.NonSaturatingLoss(), torch.randn(8, 2), fake),
                                          2, _adam(discriminator))
    weight = params["2.weight"]
    assert weight.grad_fn is not None
    (through_d,) = torch.autograd.grad(weight.sum(), generator[2].weight, allow_unused=True)
    assert through_d is not None and through_d.abs().sum() > 0
    assert discriminator[2].weight.grad is None  # the real discriminator is untouched


def test_unrolled_adam_matches_the_optimizers_own_steps():
    """Unrolled updates follow D's optimizer (Adam with its moments, RMSprop, SGD) step for step."""
    real, fake = torch.randn(16, 2, generator=torch.Generator().manual_seed(4)), torch.randn(16, 2)
    loss = losses.NonSaturatingLoss()
    for make in (_adam, lambda m: torch.optim.RMSprop(m.parameters(), lr=5e-3), lambda m: torch.optim.SGD(m.parameters(), lr=0.1)):
        discriminator = _mlp(2, 1, 1)
        optimizer = make(discriminator)
        for _ in range(2):  # give the optimizer running moments to start from
            optimizer.zero_grad()
            sum(loss.discriminator(discriminator(real).squeeze(1), discriminator(fake).squeeze(1)).values()).backward()
            optimizer.step()
        params = remedies.unrolled_parameters(discriminator, _objective(loss, real, fake), 3, optimizer)
        before = {name: p.detach().clone() for name, p in discriminator.named_parameters()}
        for _ in range(3):
            optimizer.zero_grad()
            sum(loss.discriminator(discriminator(real).squeeze(1), discriminator(fake).squeeze(1)).values()).backward()
            optimizer.step()
        for name, p in discriminator.named_parameters():
            assert torch.allclose(params[name], p, atol=1e-6), (type(optimizer).__name__, name)
            assert not torch.equal(before[name], p)


def test_unrolled_steps_minimise_ds_whole_loss_with_its_penalties_and_clipping():
    """The look-ahead D is the D that D's own steps would make: R1 and the weight penalty in its loss, WGAN's clipping
    after each update, and RMSprop's rule where a gradient is exactly 0 (WGAN's output bias) stays finite."""
    from ganzoo.adversarial import discriminator_terms

    real, fake = torch.randn(16, 2, generator=torch.Generator().manual_seed(4)), torch.randn(16, 2)
    penalties = {"r1_gamma": 1.0, "d_weight_penalty": 0.05}
    for loss, clip, config in ((losses.NonSaturatingLoss(), None, penalties),
                               (losses.WassersteinLoss({"clip_value": 0.05}), 0.05, {})):
        discriminator = _mlp(2, 1, 1)
        optimizer = torch.optim.RMSprop(discriminator.parameters(), lr=5e-3)

        def objective(score, weights):
            return sum(discriminator_terms(lambda x: score(x).squeeze(1), weights, loss, real, fake, config)[0].values())

        params = remedies.unrolled_parameters(discriminator, objective, 3, optimizer, clip)
        for _ in range(3):
            optimizer.zero_grad()
            objective(discriminator, discriminator.parameters()).backward()
            optimizer.step()
            if clip:
                with torch.no_grad():
                    for p in discriminator.parameters():
                        p.clamp_(-clip, clip)
        for name, p in discriminator.named_parameters():
            assert torch.allclose(params[name], p, atol=1e-6), (loss.name, name)
        if clip:
            assert max(float(p.detach().abs().max()) for p in params.values()) <= torch.tensor(clip).item()  # float32
            g_loss = loss.generator(remedies.discriminator_with(discriminator, params, fake.requires_grad_()).squeeze(1))
            (grad,) = torch.autograd.grad(g_loss["g_adv"], fake)
            assert torch.isfinite(grad).all()


def test_the_standard_steps_unrolled_critic_is_clipped_as_the_run_clips_it():
    """Through the standard step itself: WGAN's clip_value reaches the unrolled updates, so the generator's loss
    against the look-ahead critic changes with it (the critic's own weights and the batch being the same)."""
    from ganzoo import build
    from ganzoo.adversarial import unconditional_losses
    from ganzoo.registry import get_model

    model = get_model("gan")
    g_losses = {}
    for clip in (0.5, 1e-4):
        config = _config("gan", loss="wgan", clip_value=clip, unroll_steps=3, **{"with": ["unrolled"]})
        torch.manual_seed(0)
        generator, critic = build.build_generator(model, config), build.build_discriminator(model, config)
        state = {"_optimizers": build.build_optimizers(model, config, generator, critic)}
        torch.manual_seed(1)
        batch = {"real": torch.randn(64, 2)}
        terms = unconditional_losses(generator, critic, batch, "generator", config, state).terms
        g_losses[clip] = float(terms["g_adv"].detach())
    assert g_losses[0.5] != g_losses[1e-4]
    assert abs(g_losses[1e-4]) < 0.01  # a critic clipped to ±1e-4 can only score near 0


def test_wgan_with_unrolled_steps_trains_without_nan(cli, tmp_path):
    cli("train", "gan", "--data", "ring8", "--loss", "wgan", "--with", "unrolled", "--batch-size", "2048",
        "--epochs", "1", "--out", tmp_path / "run", "--no-progress", "--device", "cpu")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert not [row for row in rows if row["event"] in ("bad_step", "diverged")]
    assert all(math.isfinite(row["g_adv"]) for row in rows if row["event"] == "log")


def test_packed_discriminator_shapes():
    from ganzoo import build
    from ganzoo.registry import get_model

    config = _config("gan", hidden_dims=[16, 16], pack=3, **{"with": ["pacgan"]})
    discriminator = build.build_discriminator(get_model("gan"), config)
    assert discriminator.inner.net[0].in_features == 2 * 3
    assert discriminator(torch.randn(10, 2)).shape == (3,)  # 10 samples -> 3 packs of 3, one left over
    images = remedies.make_packed_discriminator(nn.Sequential(nn.Conv2d(1 * 4, 2, 3), nn.Flatten(1)), 4)
    assert images(torch.randn(8, 1, 5, 5)).shape == (2, 2 * 3 * 3)
    with pytest.raises(GanzooError, match="pack"):
        discriminator(torch.randn(2, 2))


def test_minibatch_discrimination_shapes_and_features():
    torch.manual_seed(0)  # unseeded, 4% of random states put two of the spread samples close in some kernel
    layer = remedies.make_minibatch_discrimination(in_features=6, kernels=5, kernel_dim=3)
    same = torch.ones(4, 6)
    out = layer(same)
    assert out.shape == (4, 6 + 5)
    assert torch.allclose(out[:, 6:], torch.full((4, 5), 4.0))  # identical samples: every o_b = N
    spread = layer(torch.randn(4, 6) * 100)
    assert torch.allclose(spread[:, 6:], torch.ones(4, 5), atol=1e-3)  # far apart: only the self term
    from ganzoo import build
    from ganzoo.registry import get_model

    for model, data, x in (("gan", "ring8", torch.randn(7, 2)), ("dcgan", "mnist", torch.randn(3, 1, 28, 28))):
        config = _config(model, data, **{"with": ["minibatch-discrimination"]}, mbd_kernels=5, mbd_kernel_dim=3)
        if model == "dcgan":
            config.update(d_width=4)
        assert build.build_discriminator(get_model(model), config)(x).shape == (len(x),)


def _train_steps(tmp_path, model: str, steps: int = 12, **overrides):
    """Build a real run (config, hooks, optimizers) and take ``steps`` batches of the engine's own loop body."""
    from ganzoo.engine import Trainer, TrainRequest

    settings = {"hidden_dims": [16, 16], "batch_size": 64, **overrides}
    trainer = Trainer(TrainRequest(model=model, data="ring8", out=tmp_path / "run", overrides=settings,
                                   progress=False, device="cpu"))
    rows = []
    for index, batch in zip(range(steps), trainer.data.batches(64, trainer.data_order)):
        rows.append(trainer._optimize("discriminator", batch))
        if (index + 1) % int(trainer.config["d_steps"]) == 0:
            rows.append(trainer._optimize("generator", batch))
    for losses_ in rows:
        for name, value in {**losses_.terms, **losses_.metrics}.items():
            assert torch.isfinite(value).all(), (name, value)
    for net in (trainer.generator, trainer.discriminator):
        assert all(torch.isfinite(p).all() for p in net.parameters())
    return trainer, rows


ALL_LOSSES = ["ns", "minimax", "lsgan", "wgan", "wgan-gp", "dragan", "hinge", "kl-wgan",
              "f-gan-kl", "f-gan-rkl", "f-gan-js", "f-gan-pearson", "f-gan-hellinger"]


def test_logged_outputs_are_beliefs_only_where_the_loss_makes_them_beliefs():
    """ns reads D's outputs as logits, LSGAN's D aims at 1 and 0 itself, hinge and KL-WGAN critics score with
    margins at ±1: each logs what its outputs mean, under a name that says so."""
    real, fake = torch.tensor([0.9, 0.7]), torch.tensor([-1.6, 0.2])
    logged = {name: {k: round(float(v), 4) for k, v in loss.metrics(real, fake).items()}
              for name, loss in (("ns", losses.NonSaturatingLoss()), ("lsgan", losses.LeastSquaresLoss()),
                                 ("hinge", losses.HingeLoss()), ("kl-wgan", losses.KLWassersteinLoss()))}
    assert logged["ns"] == {"D(x)": round((torch.sigmoid(real).mean()).item(), 4),
                            "D(G(z))": round((torch.sigmoid(fake).mean()).item(), 4)}
    assert logged["lsgan"] == {"D(x)": 0.8, "D(G(z))": -0.7}
    assert logged["hinge"] == logged["kl-wgan"] == {"critic(x)": 0.8, "critic(G(z))": -0.7}


def test_every_registered_loss_trains_without_nan(tmp_path):
    from ganzoo.registry import get_registry

    assert set(get_registry().losses.names()) == {*ALL_LOSSES, "began"}
    for loss in ALL_LOSSES:
        trainer, rows = _train_steps(tmp_path / loss, "gan", loss=loss, lr=1e-3)
        assert sum("g_adv" in r.terms for r in rows) == 12 // int(trainer.config["d_steps"]), loss
    trainer, rows = _train_steps(tmp_path / "began", "began", steps=20)
    assert {"M", "k_t"} <= set(rows[-2].metrics) and 0 < trainer.state["began_k"].item() <= 1


def test_the_critic_warmup_follows_the_wgan_authors_schedule():
    from ganzoo.critic_schedule import d_steps_before

    config = {"d_steps": 5, "warmup_d_steps": 100}  # their code: 100 before G steps 0-24 and every 500th
    assert [d_steps_before(done, config) for done in (0, 24, 25, 499, 500, 501, 1000)] == [100, 100, 5, 5, 100, 5, 100]
    assert {d_steps_before(done, {"d_steps": 5, "warmup_d_steps": 0}) for done in (0, 500)} == {5}


def _optimizer_steps(cli, out, *options) -> dict[str, set[int]]:
    """Train on ring8 (200 batches an epoch) and read each optimizer's own step count from the last checkpoint."""
    from ganzoo.checkpoint import list_checkpoints, load_checkpoint

    cli("train", "gan", "--data", "ring8", "--out", out, "--no-progress", "--device", "cpu", *options)
    _, tensors = load_checkpoint(list_checkpoints(out)[-1])
    return {stage: {int(t.item()) for name, t in tensors.items()
                    if name.startswith(f"optim.{stage}.") and name.endswith(".step")}
            for stage in ("generator", "discriminator")}


def test_warmup_d_steps_gives_the_first_generator_steps_more_critic_steps(cli, tmp_path):
    """One epoch of ring8 is 200 batches, one G update each with ns's single critic step. With warmup_d_steps=3
    the first 25 G updates come after 3 critic steps each (75 batches), the other 125 batches give 125 more."""
    common = ("--loss", "ns", "--epochs", "1")
    assert _optimizer_steps(cli, tmp_path / "plain", *common) == {"generator": {200}, "discriminator": {200}}
    assert _optimizer_steps(cli, tmp_path / "warm", *common, "--set", "warmup_d_steps=3") == {
        "generator": {150}, "discriminator": {200}}


def test_every_epoch_ends_with_a_generator_step_as_in_the_wgan_authors_loop(cli, tmp_path):
    """A warm-up longer than an epoch (500 critic steps, 200 batches) still trains G once per epoch, at its end;
    and 7 critic steps per G step over 200 batches give 28 G steps, then a 29th after the last 4 batches."""
    warm = ("--loss", "wgan", "--epochs", "2", "--set", "warmup_d_steps=500")
    assert _optimizer_steps(cli, tmp_path / "warm", *warm) == {"generator": {2}, "discriminator": {400}}
    odd = ("--loss", "wgan", "--epochs", "1", "--set", "d_steps=7")
    assert _optimizer_steps(cli, tmp_path / "odd", *odd) == {"generator": {29}, "discriminator": {200}}


def test_wgan_clipping_keeps_critic_weights_in_bounds(tmp_path):
    trainer, _ = _train_steps(tmp_path, "gan", steps=30, loss="wgan", lr=5e-3, clip_value=0.02)
    weights = torch.cat([p.detach().flatten() for p in trainer.discriminator.parameters()])
    assert weights.abs().max().item() <= 0.02
    assert (weights.abs() == 0.02).float().mean() > 0.1  # with this large lr, many weights sit on the bound


@pytest.mark.parametrize("remedy", [
    {"with": ["unrolled"], "unroll_steps": 3},
    {"with": ["pacgan"], "pack": 4},
    {"with": ["minibatch-discrimination"]},
    {"with": ["ema"]},
    {"with": ["pacgan", "minibatch-discrimination", "spectral-norm"], "loss": "wgan-gp"},
    {"instance_noise": 0.3, "instance_noise_steps": 8, "label_smoothing": 0.1, "d_weight_penalty": 1e-4, "lr_d": 4e-4,
     "r1_gamma": 1.0},
], ids=["unrolled", "pacgan", "mbd", "ema", "combined", "scalar-remedies"])
def test_every_remedy_trains_without_nan(tmp_path, remedy):
    trainer, rows = _train_steps(tmp_path, "gan", **remedy)
    if "instance_noise" in remedy:
        d_rows = [r for r in rows if "d_real" in r.terms]
        assert "d_weight_penalty" in d_rows[0].terms and d_rows[0].terms["r1_penalty"].item() > 0
        noise = [r.metrics["instance_noise"].item() for r in d_rows]
        assert noise[0] == pytest.approx(0.3) and noise[4] == pytest.approx(0.15) and noise[-1] == 0.0
        assert trainer.optimizers["discriminator"].param_groups[0]["lr"] == 4e-4


def test_label_smoothing_and_began_are_refused_where_they_mean_nothing(tmp_path):
    with pytest.raises(GanzooError, match="label_smoothing"):
        _train_steps(tmp_path / "a", "gan", loss="hinge", label_smoothing=0.1)
    with pytest.raises(GanzooError, match="began"):
        _train_steps(tmp_path / "b", "gan", loss="began")


def test_instance_noise_anneals_linearly_to_zero():
    config = {"instance_noise": 0.2, "instance_noise_steps": 100}
    assert [remedies.instance_noise_std(config, s) for s in (0, 50, 100, 500)] == pytest.approx([0.2, 0.1, 0.0, 0.0])


def test_ema_generator_file_holds_the_average_and_resume_is_exact(cli, tmp_path):
    common = ["train", "gan", "--data", "ring8", "--no-progress", "--device", "cpu", "--set", "hidden_dims=[16,16]",
              "--batch-size", "1024", "--with", "ema", "--set", "ema_decay=0.9"]
    cli(*common, "--epochs", "2", "--out", tmp_path / "straight")
    cli(*common, "--epochs", "1", "--out", tmp_path / "split")
    cli("train", "gan", "--resume", tmp_path / "split", "--epochs", "2", "--no-progress", "--device", "cpu")
    from safetensors.torch import load_file

    straight = load_file(str(tmp_path / "straight" / "generator.safetensors"))
    split = load_file(str(tmp_path / "split" / "generator.safetensors"))
    assert straight.keys() == split.keys() and all(torch.equal(straight[k], split[k]) for k in straight)
    online, ema = straight["online.net.0.weight"], straight["ema.net.0.weight"]
    assert not torch.equal(online, ema)
    from ganzoo.weights import load_generator

    loaded = load_generator(tmp_path / "straight" / "generator.safetensors", "gan")
    z = torch.randn(5, int(loaded.config["latent_dim"]))
    with torch.no_grad():
        assert torch.equal(loaded.module(z), loaded.module.ema(z))  # sampling uses the EMA weights


def test_ema_update_warms_up_then_uses_the_configured_decay():
    online = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        online.weight.fill_(0.0)
    generator = remedies.make_ema_generator(online)
    with torch.no_grad():
        online.weight.fill_(1.0)
    generator.update(0.999, updates=0)  # warm-up: d = min(0.999, 1/10)
    assert generator.ema.weight.item() == pytest.approx(0.9)
    generator.update(0.5, updates=10_000)  # later: the configured decay
    assert generator.ema.weight.item() == pytest.approx(0.95)
    generator.eval()
    assert generator(torch.ones(1, 1)).item() == pytest.approx(0.95)  # eval mode generates with the average
    generator.train()
    assert generator(torch.ones(1, 1)).item() == pytest.approx(1.0)
