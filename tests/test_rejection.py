"""Discriminator rejection sampling: the density ratio each loss's D encodes, the sampler's maths, and the CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest

RATIO_LOSSES = ["ns", "minimax", "dragan", "lsgan", "f-gan-kl", "f-gan-rkl", "f-gan-js", "f-gan-pearson",
                "f-gan-hellinger"]


def _optimal_output(loss, p_data: float, p_model: float) -> float:
    """The D output minimising the loss's discriminator terms at one point where the densities are given."""
    import torch

    v = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([v], lr=0.5, max_iter=200, tolerance_grad=1e-12, line_search_fn="strong_wolfe")

    def objective():
        optimizer.zero_grad()
        terms = loss.discriminator(v, v)
        value = p_data * terms["d_real"] + p_model * terms["d_fake"]
        value.backward()
        return value

    optimizer.step(objective)
    return float(v.detach())


@pytest.mark.parametrize("name", RATIO_LOSSES)
def test_log_density_ratio_is_read_off_each_losses_optimal_discriminator(name):
    import torch

    from ganzoo.adversarial import make_loss

    loss = make_loss({"loss": name})
    ratios = [0.25, 1.0, 3.0]
    outputs = torch.tensor([_optimal_output(loss, r / (1 + r), 1 / (1 + r)) for r in ratios], dtype=torch.float64)
    log_ratio = loss.log_density_ratio(outputs)
    # up to one constant: differences against r = 1 are log r
    assert float(log_ratio[0] - log_ratio[1]) == pytest.approx(math.log(0.25), abs=1e-4)
    assert float(log_ratio[2] - log_ratio[1]) == pytest.approx(math.log(3.0), abs=1e-4)


@pytest.mark.parametrize("name", ["hinge", "wgan", "wgan-gp", "kl-wgan"])
def test_critics_that_are_no_density_ratio_say_so(name):
    import torch

    from ganzoo.adversarial import make_loss

    assert make_loss({"loss": name}).log_density_ratio(torch.zeros(3)) is None


class _Doubling:
    """G(z) = 2z: a proposal N(0, 4) for the target N(0, 1)."""

    @staticmethod
    def build():
        import torch

        class Doubling(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the sampler a device to read

            def forward(self, z):
                return 2 * z + 0 * self.anchor

        class ExactLogit(torch.nn.Module):
            """The optimal ns logit log N(x; 0, 1) - log N(x; 0, 4) = log 2 - 3x²/8."""

            def forward(self, x):
                return math.log(2.0) - 3 * x.pow(2).sum(1, keepdim=True) / 8

        return Doubling().eval(), ExactLogit().eval()


def _drs(quantile, num=20_000, seed=0):
    from ganzoo.rejection import rejection_sample
    from ganzoo.registry import get_model

    generator, discriminator = _Doubling.build()
    config = {"loss": "ns", "latent_dim": 1, "with": [], "data_kind": "vectors", "dim": 1}
    return rejection_sample(get_model("gan"), config, generator, discriminator, num, seed=seed, quantile=quantile)


def test_exact_rejection_turns_the_proposal_into_the_target():
    result = _drs(quantile=None)
    x = result.samples.reshape(-1).numpy()
    assert len(x) == 20_000
    assert abs(x.std() - 1.0) < 0.03  # N(0, 1), not the proposal's std of 2
    assert abs(np.mean(np.abs(x) < 1) - 0.6827) < 0.015
    assert 0.45 < result.acceptance < 0.55  # 1/M with M = max p/q = 2


def test_a_higher_quantile_keeps_fewer_more_central_samples_and_a_seed_repeats():
    # here the median of F is about 0 (gamma = 0, the exact rule), so compare the exact rule with higher quantiles
    exact, high, higher = _drs(None, 5000), _drs(0.8, 5000), _drs(0.95, 5000)
    assert higher.acceptance < high.acceptance < exact.acceptance - 0.1
    assert higher.samples.std() < high.samples.std() < exact.samples.std()
    assert bool((_drs(0.8, 5000).samples == high.samples).all())
    assert not bool((_drs(0.8, 5000, seed=1).samples == high.samples).all())


def test_acceptance_probability_is_the_exact_ratio_at_gamma_zero():
    import torch

    from ganzoo.rejection import acceptance_probability

    log_ratio = torch.tensor([0.0, -1.0, -5.0])
    exact = acceptance_probability(log_ratio, 0.0, 0.0)
    assert torch.allclose(exact, torch.exp(log_ratio), atol=1e-5)
    assert (acceptance_probability(log_ratio, 0.0, 1.0) < exact).all()


def _train(cli, run, *extra):
    cli("train", "gan", "--data", "line-2d", "--epochs", "1", "--out", run, "--no-progress", "--device", "cpu", *extra)


def test_sample_drs_keeps_the_samples_asked_for_and_repeats_with_its_seed(cli, tmp_path):
    run = tmp_path / "run"
    _train(cli, run)
    assert (run / "discriminator.safetensors").is_file()
    outs = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for out in outs:
        result = cli("sample", "gan", "--weights", run / "generator.safetensors", "--drs", "--num", "300", "--out", out)
        assert "rejection sampling kept" in _one_line(result) and "of 10000 candidates" in _one_line(result)
    with np.load(outs[0], allow_pickle=False) as a, np.load(outs[1], allow_pickle=False) as b:
        assert a["samples"].shape == (300, 2) and np.array_equal(a["samples"], b["samples"])


def _one_line(result) -> str:
    return " ".join(result.output.split())


def test_sample_drs_refuses_what_it_cannot_use_in_one_sentence(cli, tmp_path):
    hinge = tmp_path / "hinge"
    _train(cli, hinge, "--loss", "hinge")
    result = cli("sample", "gan", "--weights", hinge / "generator.safetensors", "--drs", "--out", tmp_path / "x.npz",
                 ok=False)
    assert result.exit_code == 1 and ("reads D as a density ratio, which a hinge critic is not; sample without --drs, "
                                      "or train with one of the losses dragan, f-gan-hellinger, f-gan-js, f-gan-kl, "
                                      "f-gan-pearson, f-gan-rkl, lsgan, minimax, ns.") in _one_line(result)

    one, two = tmp_path / "one", tmp_path / "two"
    _train(cli, one)
    cli("train", "gan", "--data", "line-2d", "--epochs", "2", "--out", two, "--no-progress", "--device", "cpu")
    result = cli("sample", "gan", "--weights", one / "generator.safetensors", "--drs", "--discriminator",
                 two / "discriminator.safetensors", "--out", tmp_path / "x.npz", ok=False)
    assert result.exit_code == 1 and "pass the discriminator.safetensors written with that generator" in _one_line(result)

    (one / "discriminator.safetensors").unlink()
    result = cli("sample", "gan", "--weights", one / "generator.safetensors", "--drs", "--out", tmp_path / "x.npz",
                 ok=False)
    assert result.exit_code == 1 and "No discriminator file at" in _one_line(result)

    result = cli("sample", "gan", "--weights", two / "generator.safetensors", "--discriminator",
                 two / "discriminator.safetensors", "--out", tmp_path / "x.npz", ok=False)
    assert result.exit_code == 2 and "add --drs" in _one_line(result)
    assert not (tmp_path / "x.npz").exists()


def test_refusals_name_what_stands_in_the_way():
    from ganzoo.rejection import refusal_reason
    from ganzoo.registry import get_model

    gan, plain = get_model("gan"), {"loss": "ns", "with": []}
    assert refusal_reason(gan, plain) is None
    assert "needs an unconditional model; 'cgan' is conditional, so sample it without --drs." in refusal_reason(
        get_model("cgan"), plain)
    assert "one-sided label smoothing distorts; sample without --drs, or train without label_smoothing." in \
        refusal_reason(gan, {**plain, "label_smoothing": 0.1})
    assert "with pacgan D judges groups of samples; sample without --drs, or train without --with pacgan." in \
        refusal_reason(gan, {**plain, "with": ["pacgan"]})
    assert "train without --with minibatch-discrimination." in refusal_reason(
        gan, {**plain, "with": ["minibatch-discrimination"]})


def test_a_sampler_that_keeps_almost_nothing_gives_up_in_one_sentence():
    import torch

    from ganzoo.errors import GanzooError
    from ganzoo.rejection import rejection_sample
    from ganzoo.registry import get_model

    generator, _ = _Doubling.build()

    class RareFavourite(torch.nn.Module):
        """Rates only x > 5.8 (about 0.2 % of the proposal) as far more real than the rest."""

        def forward(self, x):
            return 50.0 * (x[:, :1] > 5.8).float()

    config = {"loss": "ns", "latent_dim": 1, "with": [], "data_kind": "vectors", "dim": 1}
    with pytest.raises(GanzooError, match=r"kept only \d+ of \d+ candidates; lower --drs-quantile or train longer"):
        rejection_sample(get_model("gan"), config, generator, RareFavourite().eval(), 200, quantile=None)
