"""Speed options (precision, channels-last, compile, fused Adam, TF32, reuse_fake): each trains without NaN on the CPU."""

from __future__ import annotations

import json

import pytest


def _fp16_runs_on_cpu() -> bool:
    import torch

    try:
        with torch.autocast("cpu", dtype=torch.float16):
            torch.nn.Conv2d(1, 2, 3)(torch.randn(1, 1, 5, 5)).sum().backward()
        return True
    except RuntimeError:
        return False


OPTIONS = [
    pytest.param(["--precision", "bf16"], id="bf16"),
    pytest.param(["--precision", "fp16"], id="fp16"),
    pytest.param(["--channels-last"], id="channels-last"),
    pytest.param(["--fused-adam"], id="fused-adam"),
    pytest.param(["--tf32"], id="tf32"),
    pytest.param(["--compile"], id="compile"),
    pytest.param(["--set", "reuse_fake=True"], id="reuse-fake"),
    pytest.param(["--precision", "bf16", "--channels-last", "--fused-adam"], id="bf16+channels-last+fused"),
]


@pytest.mark.parametrize("options", OPTIONS)
def test_option_trains_dcgan_without_nan(cli, image_folder, tmp_path, options):
    import torch
    from safetensors.torch import load_file

    if "fp16" in options and not _fp16_runs_on_cpu():
        pytest.skip("this torch has no fp16 convolution backward on the CPU")
    run = tmp_path / "run"
    cli("train", "dcgan", "--data", image_folder, "--image-size", "16", "--epochs", "1", "--batch-size", "16",
        "--set", "g_width=8", "--set", "d_width=8", "--set", "log_every=1", "--out", run, "--no-progress",
        "--device", "cpu", *options)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logs = [r for r in rows if r["event"] == "log"]
    assert len(logs) == 4 and not [r for r in rows if r["event"] == "bad_step"]
    assert all(isinstance(r[k], float) for r in logs for k in ("d_real", "d_fake", "g_adv"))
    weights = load_file(str(run / "generator.safetensors"))
    assert weights and all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())
    assert not any("_orig_mod" in key for key in weights)  # compiled in place: names unchanged
    config = json.loads((run / "run.json").read_text())["config"]
    assert {k: config[k] for k in ("precision", "channels_last", "compile", "fused_adam", "tf32", "reuse_fake")} != {
        "precision": "fp32", "channels_last": False, "compile": False, "fused_adam": False, "tf32": False,
        "reuse_fake": False}


def test_no_fused_adam_turns_the_default_fused_kernel_off(cli, tmp_path):
    from ganzoo import build
    from ganzoo.registry import get_model

    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", tmp_path / "run", "--no-progress", "--device", "cpu",
        "--no-fused-adam")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    config = info["config"]
    assert config["fused_adam"] is False
    assert info["optimizers"] == {"generator": "Adam (foreach)", "discriminator": "Adam (foreach)"}
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", tmp_path / "default", "--no-progress",
        "--device", "cpu", "--loss", "wgan")
    default = json.loads((tmp_path / "default" / "run.json").read_text())  # WGAN's RMSprop: fused_adam does not apply
    assert default["config"]["fused_adam"] is None and default["optimizers"] == {"generator": "RMSprop (foreach)",
        "discriminator": "RMSprop (foreach)"}
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", tmp_path / "adam", "--no-progress",
        "--device", "cpu")
    adam = json.loads((tmp_path / "adam" / "run.json").read_text())  # the setting's None, decided on the CPU
    assert adam["config"]["fused_adam"] is None and adam["optimizers"]["generator"] == "Adam (fused)"
    model = get_model("gan")
    for run_config, fused in ((config, False), ({**config, "fused_adam": None}, True)):  # the run's; the CPU default
        nets = build.build_generator(model, run_config), build.build_discriminator(model, run_config)
        optimizers = build.build_optimizers(model, run_config, *nets)
        assert all(bool(o.param_groups[0]["fused"]) == fused for o in optimizers.values())


def test_fp16_overflow_is_undone_without_counting_as_a_bad_step():
    import torch

    from ganzoo.guard import StepGuard

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1, foreach=True)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**100)
    before = [p.detach().clone() for p in net.parameters()]
    guard = StepGuard()
    x = torch.randn(8, 3)
    guard.step(optimizer, {"fit": net(x).square().mean() * 1e30}, 1, "discriminator", scaler)  # scaled: inf
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert scaler.get_scale() < 2.0**100 and guard.flush() == []
    optimizer.zero_grad(set_to_none=True)
    guard.step(optimizer, {"fit": net(x).square().mean()}, 2, "discriminator", scaler)  # a normal step applies
    assert not all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert guard.flush() == []


def test_unknown_precision_is_refused(cli, tmp_path):
    result = cli("train", "gan", "--data", "ring8", "--set", "precision=fp8", "--out", tmp_path / "r", ok=False)
    assert "precision must be one of fp32, bf16, fp16" in result.output


def test_compiled_batchnorm_matches_eager_in_train_and_eval_mode():
    import copy

    import torch

    from ganzoo.build import build_generator
    from ganzoo.config import resolve_config
    from ganzoo.registry import get_model
    from ganzoo.specs import DatasetInfo

    model = get_model("dcgan")
    config = resolve_config(model, DatasetInfo("images", channels=1, image_size=16), {"g_width": 8})
    torch.manual_seed(0)
    eager = build_generator(model, config)
    compiled = copy.deepcopy(eager)
    compiled.compile()
    z = torch.randn(8, int(config["latent_dim"]))
    torch.testing.assert_close(compiled(z), eager(z), rtol=1e-4, atol=1e-5)  # batch statistics
    for ours, theirs in zip(compiled.buffers(), eager.buffers()):  # running statistics updated alike
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
    compiled.eval()
    eager.eval()
    torch.testing.assert_close(compiled(z), eager(z), rtol=1e-4, atol=1e-5)


def test_compile_reaches_the_networks_a_family_calls_and_instance_norm_matches_eager():
    """CycleGAN's losses call ``generator.ab`` and ``discriminator.a``, never the holders' forward: those are compiled."""
    import copy

    import torch

    from ganzoo import speed
    from ganzoo.errors import GanzooError
    from ganzoo.build import build_discriminator, build_generator
    from ganzoo.config import resolve_config
    from ganzoo.registry import get_model
    from ganzoo.specs import DatasetInfo

    model = get_model("cyclegan")
    config = resolve_config(model, DatasetInfo("unpaired", channels=3, image_size=24),
                            {"g_width": 4, "d_width": 4, "blocks": 1, "with": ["ema"], "compile": True})
    torch.manual_seed(0)
    generator, discriminator = build_generator(model, config), build_discriminator(model, config)
    eager = copy.deepcopy(generator)
    speed.prepare_networks(config, torch.device("cpu"), generator, discriminator)
    compiled = {name for net, prefix in ((generator, "G."), (discriminator, "D."))
                for name, module in net.named_modules(prefix=prefix[:-1]) if module._compiled_call_impl is not None}
    assert compiled == {"G.online.ab", "G.online.ba", "D.a", "D.b"}

    x = torch.rand(2, 3, 24, 24) * 2 - 1  # instance norm: per-image statistics, under compile as eagerly
    ours, theirs = generator.ab(x), eager.ab(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    ours.square().mean().backward()
    theirs.square().mean().backward()
    for mine, reference in zip(generator.online.ab.parameters(), eager.online.ab.parameters()):
        torch.testing.assert_close(mine.grad, reference.grad, rtol=1e-3, atol=1e-6)

    class Misnamed(torch.nn.Module):
        compile_units = ("gen",)

    with pytest.raises(GanzooError, match="Misnamed names 'gen' in compile_units but has no such part"):
        speed.compile_targets(Misnamed())


def test_fast_preset_on_the_cpu_turns_its_options_on_and_keeps_batch_and_lr(cli, tmp_path):
    run = tmp_path / "fast"
    result = cli("train", "gan", "--data", "ring8", "--epochs", "1", "--fast", "--out", run, "--no-progress", "--device",
                 "cpu")
    assert "note: --fast sets reuse_fake=True, precision=bf16, fused_adam=True, tf32=True\n" in result.output  # said
    config = json.loads((run / "run.json").read_text())["config"]
    assert {k: config[k] for k in ("precision", "channels_last", "fused_adam", "tf32", "compile", "reuse_fake")} == {
        "precision": "bf16", "channels_last": False, "fused_adam": True, "tf32": True, "compile": False,  # no compile on CPU
        "reuse_fake": True}  # on the CPU: one generator forward fewer per step
    assert config["batch_size"] == 256 and config["lr"] == pytest.approx(1e-3)  # a 4x batch raised no images/s on the CPU
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in rows if r["event"] == "epoch"] and not [r for r in rows if r["event"] == "bad_step"]


def test_fast_preset_on_cuda_compiles_captures_and_scales_batch_and_lr():
    from ganzoo.config import resolve_config
    from ganzoo.registry import get_model
    from ganzoo.specs import DatasetInfo
    from ganzoo.speed import expand_fast

    overrides = {"fast": True}
    config = resolve_config(get_model("dcgan"), DatasetInfo("images", channels=1, image_size=28), overrides)
    expand_fast(config, overrides, "cuda", "dcgan", standard_step=True)
    assert {k: config[k] for k in ("precision", "compile", "cuda_graphs", "reuse_fake", "batch_size")} == {
        "precision": "bf16", "compile": True, "cuda_graphs": True, "reuse_fake": False, "batch_size": 4 * 64}
    assert config["lr"] == pytest.approx(2 * 2e-4)


def test_fast_preset_reuses_the_fake_only_with_one_critic_step_per_generator_step(cli, tmp_path):
    run = tmp_path / "fast-wgan"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--loss", "wgan", "--fast", "--out", run, "--no-progress",
        "--device", "cpu")
    config = json.loads((run / "run.json").read_text())["config"]
    assert (config["d_steps"], config["reuse_fake"]) == (5, False)


def test_fast_preset_keeps_what_the_user_set(cli, image_folder, tmp_path):
    run = tmp_path / "fast"
    cli("train", "dcgan", "--data", image_folder, "--image-size", "16", "--epochs", "1", "--batch-size", "16",
        "--precision", "fp32", "--set", "g_width=8", "--set", "d_width=8", "--set", "reuse_fake=False", "--fast",
        "--out", run, "--no-progress", "--device", "cpu")
    config = json.loads((run / "run.json").read_text())["config"]
    assert (config["batch_size"], config["lr"], config["precision"], config["reuse_fake"]) == (16, 2e-4, "fp32", False)
    assert config["fused_adam"] and config["tf32"]


def _generator_forwards(tmp_path, reuse: bool) -> tuple[int, int]:
    """(training-mode generator forwards, steps) of a one-epoch gan run on line-2d."""
    from ganzoo.engine import Trainer, TrainRequest

    overrides = {"epochs": 1, "reuse_fake": reuse, "log_every": 1000}
    trainer = Trainer(TrainRequest(model="gan", data="line-2d", out=tmp_path / f"reuse-{reuse}", overrides=overrides,
                                   device="cpu", progress=False))
    calls = []
    trainer.generator.register_forward_hook(lambda module, args, out: calls.append(module.training))
    trainer.run()
    return sum(calls), trainer.step


def test_reuse_fake_runs_the_generator_once_per_step(tmp_path):
    plain, steps = _generator_forwards(tmp_path, reuse=False)
    reused, same_steps = _generator_forwards(tmp_path, reuse=True)
    assert steps == same_steps > 0
    assert (plain, reused) == (2 * steps, steps)


@pytest.mark.parametrize("reuse", [False, True])
def test_the_generator_stage_backpropagates_through_the_fake_d_just_saw_only_with_reuse_fake(reuse):
    import torch

    from ganzoo.adversarial import REUSED_FAKE, make_loss, unconditional_losses

    torch.manual_seed(0)
    generator, discriminator = torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)
    config = {"loss": "ns", "latent_dim": 3, "reuse_fake": reuse}
    state: dict = {}
    real = {"real": torch.randn(8, 2)}
    unconditional_losses(generator, discriminator, real, "discriminator", config, state)
    seen = state[REUSED_FAKE].detach().clone() if reuse else None
    g_loss = unconditional_losses(generator, discriminator, real, "generator", config, state).terms["g_adv"]
    assert REUSED_FAKE not in state
    if reuse:
        assert torch.equal(g_loss, make_loss(config).generator(discriminator(seen))["g_adv"])
    g_loss.backward()
    assert generator.weight.grad is not None and generator.weight.grad.abs().sum() > 0
