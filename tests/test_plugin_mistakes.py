"""A third-party plugin's mistake at training time is one sentence naming the plugin, not a traceback.

Each test installs a real plugin distribution (the tiny MLP family of ``conftest.PLUGIN_TEMPLATE``
with one mistake in it) and trains it through the CLI for one epoch of 8 steps on the CPU.
"""

from __future__ import annotations

import sys

import pytest

from conftest import OWN_LOSSES_HOOK, PLUGIN_TEMPLATE, make_distribution

DIST, MODULE, ENTRY = "ganzoo-mistakes", "ganzoo_mistakes", "mistakes"
TINY_G = 'return _mlp(config["latent_dim"], config["width"], config["dim"])'
TINY_HYPERPARAMETERS = 'hyperparameters=(Hyperparameter("latent_dim", 4, "noise size"),'


@pytest.fixture
def install(tmp_path, monkeypatch):
    """``install(source)``: the plugin distribution ganzoo-mistakes (entry point 'mistakes') on sys.path."""
    from ganzoo.plugin_manager import reset

    def installed(source: str) -> None:
        make_distribution(tmp_path / "site", DIST, MODULE, source, ENTRY)
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        reset()

    yield installed
    sys.modules.pop(MODULE, None)


def _train(cli, tmp_path, *args):
    """Train for one epoch on the CPU; the failed run's output as one line, without the line saying what data it
    trains on when it failed in training."""
    result = cli("train", *args, "--epochs", "1", "--out", tmp_path / "run", "--no-progress", "--device", "cpu",
                 ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if not line.startswith(f"training {args[0]} on ")]
    return " ".join(" ".join(lines).split())


RAISING = {
    "build_generator": PLUGIN_TEMPLATE.replace(TINY_G, "raise RuntimeError('no generator today')"),
    "build_discriminator": PLUGIN_TEMPLATE.replace("from torch import nn\n        return nn.Sequential(",
                                                   "raise RuntimeError('no discriminator today')\n        return ("),
    "compute_losses": PLUGIN_TEMPLATE + (
        "\n@hookimpl\ndef compute_losses(model, config, generator, discriminator, batch, stage, state):\n"
        "    if model.family == 'tiny':\n        return {}['no losses today']\n"),
    "after_step": PLUGIN_TEMPLATE + (
        "\n@hookimpl\ndef after_step(model, stage):\n    raise RuntimeError('no step after today')\n"),
    "on_epoch_start": PLUGIN_TEMPLATE + (
        "\n@hookimpl\ndef on_epoch_start(model):\n    raise ValueError('no epoch today')\n"),
}
RAISED = {"build_generator": "RuntimeError: no generator today", "build_discriminator": "RuntimeError: no discriminator today",
          "compute_losses": "KeyError: 'no losses today'", "after_step": "RuntimeError: no step after today",
          "on_epoch_start": "ValueError: no epoch today"}


@pytest.mark.parametrize("hook", sorted(RAISING))
def test_a_hook_that_raises_is_one_sentence_naming_the_hook_model_and_plugin(hook, cli, install, tmp_path):
    install(RAISING[hook])
    assert _train(cli, tmp_path, "tinygan") == (
        f"Error: Plugin 'mistakes' from ganzoo-mistakes raised {RAISED[hook]} in {hook} for model 'tinygan'; fix the "
        "plugin or report it to its authors (GANZOO_DEBUG=1 shows the traceback).")


def test_a_hook_of_another_plugin_is_blamed_not_the_models(cli, install, tmp_path):
    install(RAISING["after_step"])  # runs for every model, ganzoo's own 'gan' too
    assert _train(cli, tmp_path, "gan", "--data", "ring8") == (
        "Error: Plugin 'mistakes' from ganzoo-mistakes raised RuntimeError: no step after today in after_step for "
        "model 'gan'; fix the plugin or report it to its authors (GANZOO_DEBUG=1 shows the traceback).")


def test_ganzoo_debug_shows_the_plugins_own_exception(cli, install, tmp_path, monkeypatch):
    install(RAISING["compute_losses"])
    monkeypatch.setenv("GANZOO_DEBUG", "1")
    with pytest.raises(KeyError, match="no losses today"):
        cli("train", "tinygan", "--epochs", "1", "--out", tmp_path / "run", "--no-progress", "--device", "cpu")


def test_the_machines_limits_inside_a_hook_are_not_blamed_on_the_plugin(cli, install, tmp_path):
    """A full disk or exhausted memory is no mistake of the plugin: shown as it is, not as 'fix the plugin'."""
    install(PLUGIN_TEMPLATE + ("\n@hookimpl\ndef after_step(model, stage):\n"
                               "    raise OSError(28, 'No space left on device')\n"))
    with pytest.raises(OSError, match="No space left on device"):
        cli("train", "tinygan", "--epochs", "1", "--out", tmp_path / "run", "--no-progress", "--device", "cpu")


def test_a_plugins_own_refusal_passes_unchanged(cli, install, tmp_path):
    install(PLUGIN_TEMPLATE.replace(TINY_G, "from ganzoo.errors import GanzooError\n"
                                            "        raise GanzooError('tinygan needs two dimensions; use tiny-blobs.')"))
    assert _train(cli, tmp_path, "tinygan") == "Error: tinygan needs two dimensions; use tiny-blobs."


def test_a_generator_of_another_shape_than_the_data_is_refused_before_training(cli, install, tmp_path, image_folder):
    images = PLUGIN_TEMPLATE.replace('data_kinds=("vectors",)', 'data_kinds=("images",)').replace(TINY_G, (
        "from torch import nn\n"
        "        return nn.Sequential(nn.Linear(config['latent_dim'], 16 * 16), nn.Unflatten(1, (1, 16, 16)))"))
    install(images.replace('_mlp(config["dim"], config["width"], 1)', "nn.Flatten(), nn.Linear(3 * 16 * 16, 1)"))
    assert _train(cli, tmp_path, "tinygan", "--data", image_folder) == (
        "Error: The generator of model 'tinygan' (plugin 'mistakes' from ganzoo-mistakes) gave 2 samples of shape "
        "1x16x16 where 2 samples of the data's shape 3x16x16 were asked for; its build_generator must follow config's "
        "dim, or channels and image_size.")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # refused while building, before any step


def test_a_generator_of_another_vector_size_is_refused(cli, install, tmp_path):
    install(PLUGIN_TEMPLATE.replace(TINY_G, 'return _mlp(config["latent_dim"], config["width"], 3)'))
    assert _train(cli, tmp_path, "tinygan") == (
        "Error: The generator of model 'tinygan' (plugin 'mistakes' from ganzoo-mistakes) gave 2 samples of shape 3 "
        "where 2 samples of the data's shape 2 were asked for; its build_generator must follow config's dim, or "
        "channels and image_size.")


#: Generators whose forward gives what the engine cannot train on, and how the refusal names it.
ODD_OUTPUTS = {
    "a tuple": ("class Odd(nn.Linear):", "return super().forward(z), z",
                "Odd(config['latent_dim'], config['dim'])",
                "gave a tuple where 2 samples of the data's shape 2 were asked for; its build_generator must follow "
                "config's dim, or channels and image_size."),
    "float64": ("class Odd(nn.Linear):  # float32 weights, float64 samples", "return super().forward(z).double()",
                "Odd(config['latent_dim'], config['dim'])",
                "gave float64 samples where ganzoo trains in float32 (lower precision comes from --precision); build "
                "its layers in float32, without .double() or .half()."),
}


@pytest.mark.parametrize("output", list(ODD_OUTPUTS))
def test_a_generator_of_what_the_engine_cannot_train_on_is_refused_before_training(cli, install, tmp_path, output):
    """A tuple, or float64 samples (which the discriminator was blamed for), is the generator's own mistake."""
    declared, returned, built, said = ODD_OUTPUTS[output]
    install(PLUGIN_TEMPLATE.replace(TINY_G, f"from torch import nn\n        {declared}\n"
                                            f"            def forward(self, z):\n                {returned}\n"
                                            f"        return {built}"))
    assert _train(cli, tmp_path, "tinygan") == (
        f"Error: The generator of model 'tinygan' (plugin 'mistakes' from ganzoo-mistakes) {said}")


def test_a_generate_hook_of_the_wrong_count_at_training_names_the_hook(cli, install, tmp_path, monkeypatch):
    install(PLUGIN_TEMPLATE + GENERATE_HOOK.format(body="return generator(noise)[: num // 2]"))
    monkeypatch.setenv("BREAK_SAMPLING", "1")
    assert _train(cli, tmp_path, "tinygan") == (
        "Error: The generator of model 'tinygan' (plugin 'mistakes' from ganzoo-mistakes) gave 1 samples of shape 2 "
        "where 2 samples of the data's shape 2 were asked for; its generate hook must return one sample of the data's "
        "shape per noise row, and its build_generator follow config's dim, or channels and image_size.")


def test_a_generator_that_fails_on_noise_is_one_sentence(cli, install, tmp_path):
    install(PLUGIN_TEMPLATE.replace(TINY_G, 'return _mlp(8, config["width"], config["dim"])'))  # not latent_dim=4
    assert _train(cli, tmp_path, "tinygan") == (
        "Error: Plugin 'mistakes' from ganzoo-mistakes raised RuntimeError: mat1 and mat2 shapes cannot be multiplied "
        "(2x4 and 8x32) in the generator of model 'tinygan' given noise of latent_dim 4; fix the plugin or report it "
        "to its authors (GANZOO_DEBUG=1 shows the traceback).")


OWN_LOSSES = PLUGIN_TEMPLATE + OWN_LOSSES_HOOK
BAD_LOSSES = {
    "a float term": (OWN_LOSSES.replace('{"d": d.mean()}', '{"d": d.mean().item()}'),
                     "gave the discriminator term 'd' as a float, not a torch tensor; every term and metric must be a "
                     "scalar torch tensor."),
    "a per-sample term": (OWN_LOSSES.replace('{"g": g.mean()}', '{"g": g}'),
                          "gave the generator term 'g' as a tensor of shape 32, not a scalar (reduce it with .mean() or "
                          ".sum()); every term and metric must be a scalar torch tensor."),
    "a float metric": (OWN_LOSSES.replace(".mean().detach()}", ".mean().item()}"),
                       "gave the discriminator metric 'd_real' as a float, not a torch tensor; every term and metric "
                       "must be a scalar torch tensor."),
    "a dict": (OWN_LOSSES.replace('return Losses({"d": d.mean()}, ', 'return dict(d=d.mean(), metrics='),
               "returned a dict for the discriminator stage, not a ganzoo.specs.Losses; return Losses(terms, metrics) "
               "with scalar tensors."),
    "a detached term": (OWN_LOSSES.replace('{"g": g.mean()}', '{"g": g.mean().detach()}'),
                        "gave generator terms that do not depend on the networks' weights, so there is nothing to "
                        "backpropagate; compute them without .detach(), .item() or torch.no_grad()."),
}


@pytest.mark.parametrize("mistake", sorted(BAD_LOSSES))
def test_losses_the_engine_cannot_backpropagate_are_one_sentence(mistake, cli, install, tmp_path):
    source, why = BAD_LOSSES[mistake]
    install(source)
    assert _train(cli, tmp_path, "tinygan") == (
        f"Error: compute_losses for model 'tinygan' (plugin 'mistakes' from ganzoo-mistakes) {why}")


def test_the_right_losses_train(cli, install, tmp_path):  # the plugin the mistakes above are made in
    install(OWN_LOSSES)
    cli("train", "tinygan", "--epochs", "1", "--out", tmp_path / "run", "--no-progress", "--device", "cpu")
    assert (tmp_path / "run" / "generator.safetensors").is_file()


def test_a_model_without_latent_dim_is_refused_before_building(cli, install, tmp_path):
    source = PLUGIN_TEMPLATE.replace(TINY_HYPERPARAMETERS, "hyperparameters=(").replace(
        TINY_G, 'return _mlp(4, config["width"], config["dim"])')
    install(source)
    assert _train(cli, tmp_path, "tinygan") == (
        "Error: Model 'tinygan' of plugin 'mistakes' from ganzoo-mistakes draws its samples from noise but declares "
        "no latent_dim, the size of that noise; the plugin must add Hyperparameter('latent_dim', SIZE, 'noise size') "
        "to its ModelSpec's hyperparameters.")


@pytest.mark.parametrize("declared, said", [
    ('Hyperparameter("latent_dim", "4", "noise size"),', "latent_dim must be a whole number of at least 1, got '4'"),
    ('Hyperparameter("latent_dim", 4, "noise size"), Hyperparameter("lr", -1, "rate"),',
     "lr must be a positive finite number, got -1"),
])
def test_a_default_the_checks_refuse_is_the_plugins_mistake_not_the_users(cli, install, tmp_path, declared, said):
    install(PLUGIN_TEMPLATE.replace('Hyperparameter("latent_dim", 4, "noise size"),', declared))
    assert _train(cli, tmp_path, "tinygan") == (
        "Error: Model 'tinygan' (plugin 'mistakes' from ganzoo-mistakes) declares a default that ganzoo refuses: "
        f"{said}; fix the plugin's Hyperparameter or report it to its authors.")


def test_a_whole_number_default_of_a_setting_read_as_a_real_number_takes_a_fraction(cli, install, tmp_path):
    """``Hyperparameter("lr", 1)``: the core reads lr as a real number, so --lr 0.001 is no type mistake."""
    import json

    install(PLUGIN_TEMPLATE.replace(TINY_HYPERPARAMETERS, TINY_HYPERPARAMETERS + (
        ' Hyperparameter("lr", 1, "rate"), Hyperparameter("beta2", 0, "beta"),')))
    run = tmp_path / "run"
    cli("train", "tinygan", "--lr", "0.001", "--set", "beta2=0.9", "--epochs", "1", "--out", run, "--no-progress",
        "--device", "cpu")
    config = json.loads((run / "run.json").read_text())["config"]
    assert (config["lr"], config["beta2"]) == (0.001, 0.9)


def test_a_default_of_none_is_a_setting_the_user_gives_not_a_mistake(cli, install, tmp_path):
    """``Hyperparameter("epochs", None, ...)``: a setting the plugin wants given; given, the model trains."""
    install(PLUGIN_TEMPLATE.replace(TINY_HYPERPARAMETERS, TINY_HYPERPARAMETERS + (
        ' Hyperparameter("epochs", None, "give it"),')))
    assert cli("train", "tinygan", "--epochs", "1", "--out", tmp_path / "run", "--no-progress").exit_code == 0


def test_a_dataset_whose_load_returns_something_else_is_one_sentence(cli, install, tmp_path):
    install(PLUGIN_TEMPLATE.replace('return InMemoryData("tiny-blobs", DatasetInfo("vectors", dim=2), {"real": points})',
                                    'return {"real": points}'))
    assert _train(cli, tmp_path, "gan", "--data", "tiny-blobs") == (
        "Error: The load function of dataset 'tiny-blobs' of plugin 'mistakes' from ganzoo-mistakes returned a dict, "
        "not a ganzoo.data.InMemoryData; it must return InMemoryData(name, info, {'real': tensor}).")


def test_a_dataset_whose_load_raises_is_one_sentence(cli, install, tmp_path, monkeypatch):
    install(PLUGIN_TEMPLATE.replace("gen = torch.Generator().manual_seed(0)", "raise ValueError('no blobs today')"))
    assert _train(cli, tmp_path, "gan", "--data", "tiny-blobs") == (
        "Error: Plugin 'mistakes' from ganzoo-mistakes raised ValueError: no blobs today in the load function of "
        "dataset 'tiny-blobs'; fix the plugin or report it to its authors (GANZOO_DEBUG=1 shows the traceback).")
    monkeypatch.setenv("GANZOO_DEBUG", "1")
    with pytest.raises(ValueError, match="no blobs today"):
        cli("train", "gan", "--data", "tiny-blobs", "--epochs", "1", "--out", tmp_path / "debug", "--device", "cpu")


def test_a_dataset_whose_load_misses_a_file_names_the_file_in_one_sentence(cli, install, tmp_path):
    """A missing file is not the machine's limit (those keep their traceback): the sentence names the path."""
    install(PLUGIN_TEMPLATE.replace("gen = torch.Generator().manual_seed(0)",
                                    f"open({str(tmp_path / 'blobs.csv')!r})"))
    assert _train(cli, tmp_path, "gan", "--data", "tiny-blobs") == (
        "Error: Plugin 'mistakes' from ganzoo-mistakes met FileNotFoundError: [Errno 2] No such file or directory: "
        f"'{tmp_path / 'blobs.csv'}' in the load function of dataset 'tiny-blobs'; check the path it names, or report "
        "it to the plugin's authors (GANZOO_DEBUG=1 shows the traceback).")


def test_settings_too_large_for_memory_in_a_plugins_network_are_not_blamed_on_the_plugin(cli, install, tmp_path):
    install(PLUGIN_TEMPLATE.replace(TINY_G, 'return _mlp(config["width"], config["width"], config["dim"])'))
    assert _train(cli, tmp_path, "tinygan", "--set", "width=20000000") == (  # a 2e7 x 2e7 layer: 1.42 PiB
        "Error: Ran out of memory (tried to allocate 1.42 PiB on the CPU); lower what sets the size (--batch-size, "
        "--image-size, or the networks' widths with --set) or use a device with more memory.")


def test_an_exception_in_ganzoos_own_plugins_and_core_keeps_its_traceback():
    from ganzoo.plugin_checks import hook_failure
    from ganzoo.plugin_manager import get_manager
    from ganzoo.registry import get_model

    hooks, gan = get_manager().hook, get_model("gan")
    with pytest.raises(KeyError) as raised:  # the built-in 'gan' plugin, given a config without its settings
        hooks.build_generator(model=gan, config={})
    assert hook_failure(raised.value, "gan") is None

    def broken(noise):
        raise ValueError("a bug of ours")

    with pytest.raises(ValueError) as raised:  # ganzoo's core answers generate with generator(noise)
        hooks.generate(model=gan, config={}, generator=broken, num=1, noise=None, labels=None)
    assert hook_failure(raised.value, "gan") is None


def test_the_shape_check_keeps_the_random_streams_and_leaves_lazy_layers_trainable():
    """A generator that draws its own noise in ``forward`` and has a lazy layer: the check runs its forward once
    without moving the run's random stream, and the layer it materialises is an ordinary trainable parameter."""
    import torch
    from torch import nn

    from ganzoo.config import resolve_config
    from ganzoo.plugin_checks import check_generator
    from ganzoo.registry import get_dataset, get_model

    class NoisyLazy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.LazyLinear(2)

        def forward(self, noise: torch.Tensor) -> torch.Tensor:
            return self.net(noise + torch.randn_like(noise))

    gan = get_model("gan")
    config = resolve_config(gan, get_dataset("ring8").info, {})
    generator = NoisyLazy()
    torch.manual_seed(0)
    before = torch.get_rng_state()
    check_generator(gan, config, generator)
    assert torch.equal(torch.get_rng_state(), before) and generator.training
    weight = generator.net.weight
    assert weight.shape == (2, config["latent_dim"]) and not weight.is_inference() and weight.requires_grad
    generator(torch.randn(4, config["latent_dim"])).sum().backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0


DEEPER = PLUGIN_TEMPLATE.replace("nn.LeakyReLU(0.2), nn.Linear(width, out))",
                                 "nn.LeakyReLU(0.2), nn.Linear(width, width), nn.Linear(width, out))")


def _upgrade(tmp_path, version: str) -> None:
    """Replace the installed plugin by its next ``version``, whose networks have one more layer."""
    from ganzoo.plugin_manager import reset

    assert DEEPER != PLUGIN_TEMPLATE
    (tmp_path / "site" / f"{MODULE}.py").write_text(DEEPER)
    (tmp_path / "site" / f"{DIST.replace('-', '_')}-0.1.dist-info" / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {version}\n")
    sys.modules.pop(MODULE, None)
    reset()


def test_resuming_a_run_whose_plugin_now_builds_other_networks_is_one_sentence(cli, install, tmp_path):
    """A plugin upgraded between a run and its resume may build networks the checkpoint does not fit."""
    install(PLUGIN_TEMPLATE)
    cli("train", "tinygan", "--epochs", "1", "--out", tmp_path / "run", "--no-progress", "--device", "cpu")
    _upgrade(tmp_path, "0.2")
    result = cli("train", "tinygan", "--resume", tmp_path / "run", "--epochs", "2", "--no-progress", ok=False)
    output = " ".join(result.output.split())
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "state-epoch-0001.safetensors does not fit this network: it lacks" in output, output
    assert output.endswith("the plugin of 'tinygan' (ganzoo-mistakes 0.2; 0.1 when it was saved) now builds other "
                           "networks than the one that saved it; resume it with ganzoo-mistakes 0.1, or start a new "
                           "run.")


@pytest.mark.parametrize("version, said", [
    ("0.2", "(ganzoo-mistakes 0.2; 0.1 when it was saved) now builds other networks than the one that saved it; use "
            "the file with ganzoo-mistakes 0.1, or train the model again."),
    ("0.1", "(ganzoo-mistakes 0.1, as when it was saved) now builds other networks than the one that saved it; use "
            "the file with the plugin's code as it was then, or train the model again."),
])
def test_sampling_weights_whose_plugin_now_builds_other_networks_names_its_versions(cli, install, tmp_path, version,
                                                                                    said):
    """Not 'was it written by another ganzoo version?': the third-party plugin changed, and the file says from
    which version."""
    install(PLUGIN_TEMPLATE)
    cli("train", "tinygan", "--epochs", "1", "--out", tmp_path / "run", "--no-progress", "--device", "cpu")
    _upgrade(tmp_path, version)
    result = cli("sample", "tinygan", "--weights", tmp_path / "run", "--out", tmp_path / "s.png", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        f"Error: {tmp_path / 'run' / 'generator.safetensors'} does not fit this network: it lacks 2 tensor(s) the "
        f"model needs (first: '3.bias'); the plugin of 'tinygan' {said}")


# Networks, data or a loss that do not fit the run.

LOSS_PLUGIN = PLUGIN_TEMPLATE + '''
@hookimpl
def register_losses(register):
    from ganzoo.specs import LossSpec

    class NotALoss:
        pass

    def raising(config):
        return {}["no loss today"]

    register(LossSpec("not-a-loss", "returns an object of its own", lambda config: NotALoss()))
    register(LossSpec("raising-loss", "raises in its factory", raising))
'''

CONDITIONAL_PLUGIN = PLUGIN_TEMPLATE.replace('task="unconditional"', 'task="conditional"').replace(
    'DatasetInfo("vectors", dim=2), {"real": points})',
    'DatasetInfo("vectors", dim=2, num_classes=2), {"real": points, "label": torch.arange(256) % 2})').replace(
    'DatasetInfo("vectors", dim=2), load))', 'DatasetInfo("vectors", dim=2, num_classes=2), load))') + '''
@hookimpl
def generate(model, generator, noise, labels):
    if model.family == "tiny":
        return generator(noise)
'''


def test_a_discriminator_built_for_other_data_is_refused_before_training(cli, install, tmp_path):
    install(PLUGIN_TEMPLATE.replace('_mlp(config["dim"], config["width"], 1)', '_mlp(5, config["width"], 1)'))
    said = _train(cli, tmp_path, "tinygan")
    assert said.startswith("Error: Plugin 'mistakes' from ganzoo-mistakes raised RuntimeError: ") and said.endswith(
        "in the discriminator of model 'tinygan' given samples of shape 2; fix the plugin or report it to its authors "
        "(GANZOO_DEBUG=1 shows the traceback)."), said
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # refused while building, before any step


BATCH_MEAN = PLUGIN_TEMPLATE.replace("nn.Flatten(0))", "nn.Flatten(0), _batch_mean())") + '''
def _batch_mean():
    from torch import nn

    class BatchMean(nn.Module):  # BCE on the batch's mean score: trains, but not as a GAN
        def forward(self, scores):
            return scores.mean()
    return BatchMean()
'''


@pytest.mark.parametrize("source, gave", [
    (BATCH_MEAN, "a single number"),
    (PLUGIN_TEMPLATE.replace("nn.Flatten(0))", "nn.Flatten(0), nn.Unflatten(0, (1, -1)))"), "scores of shape 1x3"),
])
def test_a_discriminator_whose_scores_are_not_one_per_sample_is_refused_before_training(cli, install, tmp_path,
                                                                                       source, gave):
    """A discriminator whose first dimension is not the batch (a batch mean, scores transposed) would train on the
    wrong numbers without a word."""
    install(source)
    assert _train(cli, tmp_path, "tinygan") == (
        f"Error: The discriminator of model 'tinygan' (plugin 'mistakes' from ganzoo-mistakes) gave {gave} for 3 "
        "samples, where one score per sample was expected (shape 3, or 3x... for several per sample, as a PatchGAN "
        "gives); its forward must keep the batch as the first dimension, without averaging or summing over it.")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.parametrize("scores", ["nn.Unflatten(1, (1, 1, 1))", "nn.Linear(1, 3)"])
def test_a_discriminator_with_several_scores_per_sample_trains(cli, install, tmp_path, scores):
    """A PatchGAN's N x 1 x H x W map, or N x K scores, keep the batch first: they train, packed too."""
    install(PLUGIN_TEMPLATE.replace("nn.Flatten(0))", f"{scores})"))
    cli("train", "tinygan", "--epochs", "1", "--out", tmp_path / "run", "--no-progress", "--device", "cpu")
    cli("train", "tinygan", "--epochs", "1", "--out", tmp_path / "packed", "--no-progress", "--device", "cpu",
        "--with", "pacgan")


def test_a_dataset_whose_samples_are_not_the_declared_shape_is_one_sentence(cli, install, tmp_path):
    install(PLUGIN_TEMPLATE.replace("torch.randn(256, 2, generator=gen) * 0.1 + torch.tensor([1.0, -1.0])",
                                    "torch.randn(256, 5, generator=gen)"))
    assert _train(cli, tmp_path, "tinygan") == (
        "Error: The load function of dataset 'tiny-blobs' of plugin 'mistakes' from ganzoo-mistakes returned data "
        "the run cannot train on: its samples have shape 5, but it declares 2-D points; return samples of the "
        "declared shape, or declare the shape they have.")


@pytest.mark.parametrize("points, said", [
    ("points.double()", "its points are float64, but points are kept as float32 (the networks' type); return them as "
                        "float32 (tensor.float())."),
    ("points.round().long()", "its points are int64, but points are kept as float32 (the networks' type); return "
                              "them as float32 (tensor.float())."),
    ("points[:0]", "it holds no samples; return the samples it should hold, or refuse in a sentence of its own."),
    ("points.sum()", "its 'real' tensor is a single number, not a batch of samples; return samples of the declared "
                     "shape, or declare the shape they have."),
])
def test_a_dataset_whose_points_are_not_float32_or_none_is_one_sentence(cli, install, tmp_path, points, said):
    install(PLUGIN_TEMPLATE.replace('{"real": points}', '{"real": %s}' % points))
    assert _train(cli, tmp_path, "tinygan") == (
        "Error: The load function of dataset 'tiny-blobs' of plugin 'mistakes' from ganzoo-mistakes returned data "
        f"the run cannot train on: {said}")


def test_a_dataset_without_a_real_entry_is_one_sentence(cli, install, tmp_path):
    install(PLUGIN_TEMPLATE.replace('{"real": points}', '{"points": points}'))
    assert _train(cli, tmp_path, "tinygan") == (
        "Error: The load function of dataset 'tiny-blobs' of plugin 'mistakes' from ganzoo-mistakes returned data "
        "the run cannot train on: it has no 'real' entry; put the samples under 'real'.")


IMAGE_DATASET = '''
from ganzoo import hookimpl
from ganzoo.specs import DatasetInfo, DatasetSpec

@hookimpl
def register_datasets(register):
    def load(root=None, image_size=None, channels=None):  # 16 px grey images, whatever it is asked for
        import torch
        from ganzoo.data import InMemoryData
        images = torch.randint(0, 256, (64, 1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        return InMemoryData("tiny-digits", DatasetInfo("images", channels=1, image_size=16), {"real": IMAGES})
    register(DatasetSpec("tiny-digits", "16 px noise", DatasetInfo("images", channels=1, image_size=16), load))
'''


@pytest.mark.parametrize("mistake", ["another size than asked", "floats", None])
def test_a_dataset_whose_images_are_not_what_the_run_asked_for_is_one_sentence(cli, install, tmp_path, mistake):
    """Images must come as uint8 at the size and channels load is given: the networks are built for those. The
    same images at the size asked (their own) train."""
    images, options, said = {
        "another size than asked": ("images", ("--image-size", "32"),
                                    "its images are 1x16x16, but load was asked for 1x32x32; resize and convert them "
                                    "to the image_size and channels load is given (InMemoryData.fit_images does both)."),
        "floats": ("images.float() / 127.5 - 1", (),
                   "its images are float32, but images are kept as uint8 (0 to 255); return them as uint8."),
        None: ("images", (), ""),
    }[mistake]
    install(IMAGE_DATASET.replace("IMAGES", images))
    if mistake is None:
        cli("train", "dcgan", "--data", "tiny-digits", "--batch-size", "16", "--epochs", "1", "--out", tmp_path / "ok",
            "--no-progress", "--device", "cpu")
        return
    assert _train(cli, tmp_path, "dcgan", "--data", "tiny-digits", "--batch-size", "16", *options) == (
        "Error: The load function of dataset 'tiny-digits' of plugin 'mistakes' from ganzoo-mistakes returned data "
        f"the run cannot train on: {said}")


def test_a_loss_factory_that_returns_something_else_or_raises_is_one_sentence(cli, install, tmp_path):
    install(LOSS_PLUGIN)
    assert _train(cli, tmp_path, "tinygan", "--loss", "not-a-loss") == (
        "Error: The factory of --loss not-a-loss (plugin 'mistakes' from ganzoo-mistakes) returned a NotALoss, not a "
        "ganzoo.losses.AdversarialLoss; it must return an instance of a subclass of AdversarialLoss.")
    assert _train(cli, tmp_path, "tinygan", "--loss", "raising-loss", "--overwrite") == (
        "Error: Plugin 'mistakes' from ganzoo-mistakes raised KeyError: 'no loss today' in the factory of --loss "
        "raising-loss; fix the plugin or report it to its authors (GANZOO_DEBUG=1 shows the traceback).")


def test_a_conditional_model_whose_plugin_computes_no_losses_is_told_to(cli, install, tmp_path):
    install(CONDITIONAL_PLUGIN)
    assert _train(cli, tmp_path, "tinygan") == (
        "Error: No plugin computes the losses of the conditional model 'tinygan' (plugin 'mistakes' from "
        "ganzoo-mistakes): ganzoo's standard step trains unconditional models only, so the plugin must implement "
        "compute_losses for it.")


def test_a_compute_losses_that_forgets_to_return_is_refused_not_replaced_by_the_standard_step(cli, install, tmp_path):
    """An unconditional model's plugin computes its losses: a stage it answers with None is its mistake, which the
    standard step used to cover up by training the model with ganzoo's own loss instead of the plugin's."""
    forgot = OWN_LOSSES_HOOK.replace('    return Losses({"g": g.mean()})', '    Losses({"g": g.mean()})')
    assert forgot != OWN_LOSSES_HOOK
    install(PLUGIN_TEMPLATE + forgot)
    assert _train(cli, tmp_path, "tinygan") == (
        "Error: compute_losses of plugin 'mistakes' from ganzoo-mistakes returned None for its model 'tinygan' at the "
        "generator stage; a plugin that implements compute_losses computes its models' losses at every stage, so "
        "return Losses(terms, metrics) there (or leave compute_losses out of the plugin for ganzoo's standard step to "
        "train its unconditional models).")


FAMILY_REUSED = '''
from ganzoo import hookimpl
from ganzoo.specs import Hyperparameter, ModelSpec

@hookimpl
def register_models(register):
    register(ModelSpec(name="lsdcgan", family="dcgan", task="unconditional", summary="DCGAN networks, LSGAN loss",
                       paper=None, default_dataset="mnist", hyperparameters=HYPERPARAMETERS))
'''


def test_a_model_of_another_plugins_family_must_declare_the_settings_its_networks_are_built_from(cli, install,
                                                                                                  tmp_path, image_folder):
    """A third party's model of family dcgan is built by ganzoo's dcgan plugin, which reads g_width, d_width...: one
    that does not declare them is one sentence naming them, not a KeyError traceback in ganzoo's plugin."""
    install(FAMILY_REUSED.replace("HYPERPARAMETERS", '(Hyperparameter("latent_dim", 100, "noise size"),)'))
    said = _train(cli, tmp_path, "lsdcgan", "--data", image_folder, "--image-size", "32")
    assert said.startswith("Error: Model 'lsdcgan' (plugin 'mistakes' from ganzoo-mistakes) is of family 'dcgan', "
                           "whose networks are built from settings it does not declare (g_width, d_width"), said
    assert said.endswith("); declare them in its hyperparameters, as model 'dcgan' does ('ganzoo info dcgan' lists "
                         "them with their defaults)."), said


def test_the_model_of_a_plugin_that_builds_its_family_is_not_held_to_another_plugins_settings(cli, install,
                                                                                              tmp_path):
    """Another plugin's model of the tiny family declares one more setting: the family's own plugin, which builds
    its networks, still trains its model (the settings come from the family's builders, not from its reusers)."""
    from conftest import make_distribution

    reuser = FAMILY_REUSED.replace('name="lsdcgan", family="dcgan"', 'name="tinyplus", family="tiny"').replace(
        "HYPERPARAMETERS", '(Hyperparameter("latent_dim", 4, "n"), Hyperparameter("width", 8, "w"), '
                           'Hyperparameter("extra", 1, "e"))')
    make_distribution(tmp_path / "site", "ganzoo-reuser", "ganzoo_reuser", reuser, "reuser")
    install(PLUGIN_TEMPLATE)
    trained = cli("train", "tinygan", "--epochs", "1", "--no-progress", "--out", tmp_path / "own")
    assert trained.exit_code == 0, trained.output
    sys.modules.pop("ganzoo_reuser", None)


def test_a_model_of_another_plugins_family_that_takes_its_settings_trains(cli, install, tmp_path, image_folder):
    install("from ganzoo.plugins.dcgan import HYPERPARAMETERS\n" + FAMILY_REUSED)
    trained = cli("train", "lsdcgan", "--data", image_folder, "--image-size", "32", "--batch-size", "4", "--epochs",
                  "1", "--set", "g_width=8", "--set", "d_width=8", "--no-progress", "--out", tmp_path / "reused")
    assert trained.exit_code == 0 and (tmp_path / "reused" / "generator.safetensors").is_file()


def test_a_conditional_plugin_model_on_data_without_classes_is_refused_before_building(cli, install, tmp_path):
    """A plugin's conditional model on a dataset with no labels: the core refuses it, as for ganzoo's own, rather
    than sampling dividing by zero classes and the plugin being blamed for it."""
    install(CONDITIONAL_PLUGIN)
    assert _train(cli, tmp_path, "tinygan", "--data", "ring8") == (
        "Error: Model 'tinygan' is conditional and needs a dataset with class labels (mnist, fashion-mnist, cifar10, "
        "or an image folder whose images all lie in sub-folders, one per class, two or more), but this dataset has 0 "
        "classes (a folder gives none when images lie beside its sub-folders or it has only one; a plugin's dataset "
        "declares its classes as DatasetInfo(..., num_classes=N)).")


# Mistakes a plugin makes in how it registers itself: the plugin is skipped with one line, the others keep working.

def _listing(cli) -> str:
    """``ganzoo list``'s output as one line; ganzoo's own models must still be there."""
    output = " ".join(cli("list").output.split())
    assert "dcgan" in output
    return output


def test_a_plugin_that_exits_at_import_is_skipped_like_one_that_raises(cli, install):
    install("import sys\nsys.exit('needs libfoo, which is not installed')\n")
    assert ("plugin 'mistakes' from ganzoo-mistakes skipped: import failed (SystemExit: needs libfoo, which is not "
            "installed)") in _listing(cli)
    assert "plugin gan" in cli("info", "gan").output


def test_an_unknown_name_says_which_plugins_were_skipped(cli, install, tmp_path):
    install(PLUGIN_TEMPLATE + "\nraise ImportError('needs libbar')\n")  # it would register tinygan and tiny-blobs
    note = "Plugin 'mistakes' from ganzoo-mistakes was skipped and may be what registers it; see 'ganzoo plugins' for why."
    info = cli("info", "tinygan", ok=False)
    assert info.exit_code == 1 and " ".join(info.output.split()).startswith("Error: Unknown model 'tinygan'.")
    assert " ".join(info.output.split()).endswith(note)
    assert _train(cli, tmp_path, "tinygan").endswith(note)
    data = _train(cli, tmp_path, "gan", "--data", "tiny-blobs")
    assert data.startswith("Error: Unknown dataset 'tiny-blobs'.") and data.endswith(note)


def test_an_unknown_name_says_nothing_of_plugins_when_none_was_skipped(cli):
    info = cli("info", "tinygan", ok=False)
    assert info.exit_code == 1 and "skipped" not in info.output and "ganzoo plugins" not in info.output


_SPEC = ("ModelSpec(name='retgan', family='other', task='unconditional', summary='s', paper=None, "
         "default_dataset='ring8', hyperparameters=(Hyperparameter('latent_dim', 2, 'noise size'),), "
         "data_kinds=('vectors',))")
_REGISTERING = ("from ganzoo import hookimpl\nfrom ganzoo.specs import DatasetInfo, DatasetSpec, Hyperparameter, "
                "ModelSpec\n@hookimpl\ndef {hook}(register):\n    {body}\n")


def test_a_registration_hook_that_returns_its_specs_is_skipped_saying_to_call_register(cli, install):
    install(_REGISTERING.format(hook="register_models", body=f"return [{_SPEC}]"))
    assert ("plugin 'mistakes' from ganzoo-mistakes skipped: register_models returned a list instead of calling "
            "register(spec) for each spec; call register(spec) once per spec and return nothing") in _listing(cli)


@pytest.mark.parametrize(("hook", "given", "wanted", "got"), [
    ("register_models", "{'name': 'dictgan'}", "ModelSpec", "dict"),
    ("register_datasets", _SPEC, "DatasetSpec", "ModelSpec"),
])
def test_register_given_something_else_than_the_hooks_spec_names_both(hook, given, wanted, got, cli, install):
    install(_REGISTERING.format(hook=hook, body=f"register({given})"))
    assert (f"plugin 'mistakes' from ganzoo-mistakes skipped: {hook} called register() with a {got}; register() "
            f"takes a ganzoo.specs.{wanted}") in _listing(cli)


def test_a_registration_hook_may_take_fewer_arguments_than_the_spec(cli, install):
    install(PLUGIN_TEMPLATE + "\n@hookimpl\ndef register_extensions():\n    pass\n")
    plugins = " ".join(cli("plugins").output.split())
    assert "skipped" not in plugins and "register_extensions" in plugins
    assert "tinygan" in _listing(cli)


def test_a_misspelled_hook_is_one_sentence_suggesting_the_hook(cli, install):
    install("from ganzoo import hookimpl\n@hookimpl\ndef register_model(register):\n    pass\n")
    listing = _listing(cli)
    assert ("plugin 'mistakes' from ganzoo-mistakes skipped: implements an unknown hook 'register_model'; did you "
            "mean 'register_models'?") in listing
    assert "<module" not in listing


_UNKNOWN_HOOK = "@hookimpl\ndef make_everything():\n    pass\n"
_MISSPELLED_HOOK = "@hookimpl\ndef register_model(register):\n    pass\n"


@pytest.mark.parametrize(("hooks", "reason"), [
    (_UNKNOWN_HOOK, "implements an unknown hook 'make_everything'; rename it to a hook of ganzoo.hookspecs"),
    (_MISSPELLED_HOOK + _UNKNOWN_HOOK, "implements unknown hooks 'make_everything', 'register_model' (did you mean "
                                       "'register_models'?); rename each to a hook of ganzoo.hookspecs"),
])
def test_a_hook_with_no_close_name_and_several_unknown_hooks_are_each_told_what_to_rename(hooks, reason, cli, install):
    install("from ganzoo import hookimpl\n" + hooks)
    assert f"plugin 'mistakes' from ganzoo-mistakes skipped: {reason}" in _listing(cli)


def test_a_model_declaring_a_hyperparameter_twice_is_refused_at_registration(cli, install):
    install(PLUGIN_TEMPLATE.replace('Hyperparameter("width", 32, "hidden width")',
                                    'Hyperparameter("latent_dim", 8, "noise size again")'))
    listing = _listing(cli)
    assert ("plugin 'mistakes' from ganzoo-mistakes skipped: model 'tinygan' declares hyperparameter 'latent_dim' "
            "twice; declare each setting once") in listing
    assert "tinygan" not in listing.split("skipped")[0]


_GOOD_FIELDS = {"hyperparameters": "(Hyperparameter('latent_dim', 2, 'noise size'),)", "data_kinds": "('vectors',)"}


@pytest.mark.parametrize(("field", "written", "said"), [
    ("hyperparameters", "(Hyperparameter('latent_dim', 2, 'noise size'))",
     "model 'retgan' gives hyperparameters=Hyperparameter(...), not a tuple of them; add the trailing comma: "
     "hyperparameters=(Hyperparameter(...),)"),
    ("hyperparameters", "(('latent_dim', 2, 'noise size'),)",
     "model 'retgan' lists a tuple among its hyperparameters; write each as ganzoo.specs.Hyperparameter(name, "
     "default, help)"),
    ("data_kinds", "('vectors')",
     "model 'retgan' gives data_kinds='vectors', a string, not a tuple; add the trailing comma: "
     "data_kinds=('vectors',)"),
    ("data_kinds", "('points',)", "model 'retgan' has data kind 'points'; use kinds among images, vectors, paired, "
                                  "unpaired"),
])
def test_a_model_whose_tuples_lost_their_trailing_comma_is_refused_at_registration(cli, install, field, written, said):
    """A one-item tuple without its comma is the item itself: refused when the plugin registers, in one line, rather
    than a traceback in every command that reads the model."""
    fields = {**_GOOD_FIELDS, field: written}
    spec = ("ModelSpec(name='retgan', family='other', task='unconditional', summary='s', paper=None, "
            f"default_dataset='ring8', hyperparameters={fields['hyperparameters']}, "
            f"data_kinds={fields['data_kinds']})")
    install(_REGISTERING.format(hook="register_models", body=f"register({spec})"))
    assert f"plugin 'mistakes' from ganzoo-mistakes skipped: {said}" in _listing(cli)
    info = cli("info", "retgan", ok=False)
    assert info.exit_code == 1 and "Traceback" not in info.output


def test_a_build_hook_that_answers_for_every_family_is_refused_for_the_built_in_models_too(cli, install, tmp_path):
    """A build hook that forgets to check ``model.family`` used to answer first for every model: ``train gan``
    trained the plugin's network in place of ganzoo's, and ``sample gan --pretrained`` blamed the shipped file."""
    install(PLUGIN_TEMPLATE.replace('    if model.family == "tiny":\n        return _mlp(config["latent_dim"], config["width"]',
                                    '    if True:\n        return _mlp(config["latent_dim"], 8'))
    said = _train(cli, tmp_path, "gan", "--data", "ring8")
    assert ("Error: Plugins 'mistakes' (ganzoo-mistakes) and 'gan' (ganzoo) both answer build_generator for model "
            "'gan' (family 'gan'), so which network it gets would depend on their order; a build hook must return "
            "None for models of other families (compare model.family with its own), and a new family needs a name "
            "of its own.") == said
    assert not (tmp_path / "run").exists()
    sampled = cli("sample", "gan", "--pretrained", "gan-mnist", "--out", tmp_path / "s.png", ok=False)
    assert "both answer build_generator for model 'gan'" in " ".join(sampled.output.split())
    cli("train", "tinygan", "--epochs", "1", "--out", tmp_path / "tiny", "--no-progress", "--device", "cpu")


def test_a_plugin_loss_whose_method_raises_is_one_sentence_naming_it(cli, install, tmp_path):
    """Not only hooks: a function of the plugin's modules (here its loss's ``discriminator`` method, called by
    ganzoo's standard step) that raises is named with its plugin, not shown as a traceback through the core."""
    install(PLUGIN_TEMPLATE + (
        "\nfrom ganzoo.losses import AdversarialLoss\n"
        "class Grumpy(AdversarialLoss):\n"
        "    def discriminator(self, real_out, fake_out):\n        raise ValueError('no scores today')\n"
        "    def generator(self, fake_out):\n        return {'g_adv': fake_out.mean()}\n"
        "@hookimpl\ndef register_losses(register):\n"
        "    from ganzoo.specs import LossSpec\n"
        "    register(LossSpec('grumpy', 'raises', lambda config: Grumpy()))\n"))
    assert _train(cli, tmp_path, "tinygan", "--loss", "grumpy") == (
        "Error: Plugin 'mistakes' from ganzoo-mistakes raised ValueError: no scores today in discriminator() of its "
        "module ganzoo_mistakes for model 'tinygan'; fix the plugin or report it to its authors (GANZOO_DEBUG=1 "
        "shows the traceback).")


def test_a_plugin_loss_that_returns_a_bare_tensor_is_one_sentence_naming_it(cli, install, tmp_path):
    install(PLUGIN_TEMPLATE + (
        "\nfrom ganzoo.losses import AdversarialLoss\n"
        "class Bare(AdversarialLoss):\n"
        "    def discriminator(self, real_out, fake_out):\n        return (fake_out - real_out).mean()\n"
        "    def generator(self, fake_out):\n        return {'g_adv': -fake_out.mean()}\n"
        "@hookimpl\ndef register_losses(register):\n"
        "    from ganzoo.specs import LossSpec\n"
        "    register(LossSpec('bare', 'a tensor, not a dict', lambda config: Bare()))\n"))
    assert _train(cli, tmp_path, "tinygan", "--loss", "bare") == (
        "Error: The discriminator() of --loss bare returned a Tensor, not a dict of named terms; it must return "
        "{'name': tensor, ...}.")


GENERATE_HOOK = ("\n@hookimpl\ndef generate(model, config, generator, num, noise, labels):\n"
                 "    import os\n"
                 "    if model.family == 'tiny' and os.environ.get('BREAK_SAMPLING'):  # trains, then samples so\n"
                 "        {body}\n")


@pytest.mark.parametrize("body, said", [
    ("raise RuntimeError('no samples today')",
     "Error: Plugin 'mistakes' from ganzoo-mistakes raised RuntimeError: no samples today in generate; fix the plugin "
     "or report it to its authors (GANZOO_DEBUG=1 shows the traceback)."),
    ("return generator(noise)[:, :1]",
     "Error: The generator of model 'tinygan' (plugin 'mistakes') gave 16 samples of shape 1 where 16 samples of "
     "shape 2 were asked for; its generate hook must return one sample of the data's shape per noise row."),
    ("return generator(noise)[: num // 2]",
     "Error: The generator of model 'tinygan' (plugin 'mistakes') gave 8 samples of shape 2 where 16 samples of "
     "shape 2 were asked for; its generate hook must return one sample of the data's shape per noise row."),
])
def test_a_generate_hook_that_fails_at_sampling_is_one_sentence_and_writes_nothing(cli, install, tmp_path, monkeypatch,
                                                                                 body, said):
    """Training checks the generator once; sampling goes through the plugin's generate hook on its own, which
    must neither end in a traceback nor write a file of the wrong count or shape."""
    install(PLUGIN_TEMPLATE + GENERATE_HOOK.format(body=body))
    run = tmp_path / "run"
    cli("train", "tinygan", "--epochs", "1", "--out", run, "--no-progress", "--device", "cpu")
    monkeypatch.setenv("BREAK_SAMPLING", "1")
    result = cli("sample", "tinygan", "--weights", run, "--num", "16", "--out", tmp_path / "s.npz", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == said
    assert not (tmp_path / "s.npz").exists()


def test_an_extension_of_one_family_is_refused_by_models_of_others_and_left_out_of_their_info(cli, install, tmp_path):
    install(PLUGIN_TEMPLATE + (
        "\n@hookimpl\ndef register_extensions(register):\n"
        "    from ganzoo.specs import ExtensionSpec\n"
        "    register(ExtensionSpec('tiny-noise', 'noise for tiny models', families=('tiny',)))\n"))
    assert _train(cli, tmp_path, "gan", "--data", "ring8", "--with", "tiny-noise") == (
        "Error: --with tiny-noise works only with models of the tiny family; 'gan' is of the gan family and cannot "
        "use it, so drop --with tiny-noise.")
    assert "tiny-noise" not in cli("info", "gan").output and "tiny-noise" in cli("info", "tinygan").output
