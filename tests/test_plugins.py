"""Plugins are found through real distributions' entry points; broken ones are reported, never fatal."""

from __future__ import annotations

import re
import sys

import pytest

from conftest import OWN_LOSSES_HOOK, PLUGIN_TEMPLATE, make_distribution


def test_builtin_families_are_entry_point_plugins(cli):
    out = cli("plugins").output
    for name in ("gan", "dcgan", "datasets", "losses", "spectral-norm"):
        assert name in out
    assert "ganzoo" in out and "build_generator" in out


def test_external_plugin_is_listed_trained_and_sampled(cli, tiny_plugin, tmp_path):
    assert "tinygan" in cli("list").output
    assert "ganzoo-tinyplugin" in cli("plugins").output
    assert "tiny-blobs" in cli("datasets").output
    assert "width" in cli("info", "tinygan").output
    run = tmp_path / "run"
    cli("train", "tinygan", "--epochs", "2", "--out", run, "--no-progress", "--device", "cpu")
    assert (run / "generator.safetensors").is_file()
    out = tmp_path / "s.npz"
    cli("sample", "tinygan", "--weights", run / "generator.safetensors", "--num", "100", "--out", out)
    import numpy as np

    with np.load(out, allow_pickle=False) as data:
        assert data["samples"].shape == (100, 2)


_MODEL_PLUGIN = (
    "from ganzoo import hookimpl\nfrom ganzoo.specs import Hyperparameter, ModelSpec\n@hookimpl\n"
    "def register_models(register):\n"
    "    register(ModelSpec(name='{name}', family='other', task='{task}', summary='s', paper=None, "
    "default_dataset='ring8', hyperparameters=(Hyperparameter('latent_dim', 2, 'noise size'),), "
    "data_kinds=('vectors',)))\n")

BROKEN = {
    "import": ("ganzoo-broken-import", "broken_import", "raise ImportError('needs libfoo')\n"),
    "signature": ("ganzoo-bad-signature", "bad_signature",
                  "from ganzoo import hookimpl\n@hookimpl\ndef register_models(register, surprise):\n    pass\n"),
    "raises": ("ganzoo-raises", "raises_plugin",
               "from ganzoo import hookimpl\n@hookimpl\ndef register_models(register):\n    raise RuntimeError('boom')\n"),
    "unknown-hook": ("ganzoo-typo", "typo_plugin",
                     "from ganzoo import hookimpl\n@hookimpl\ndef build_genrator(model, config):\n    return None\n"),
    "name-clash": ("ganzoo-clash", "clash_plugin", _MODEL_PLUGIN.format(name="gan", task="unconditional")),
    "case-clash": ("ganzoo-case", "case_plugin", _MODEL_PLUGIN.format(name="GAN", task="unconditional")),
    "bad-task": ("ganzoo-bad-task", "bad_task_plugin", _MODEL_PLUGIN.format(name="toygan", task="toy")),
    "no-hooks": ("ganzoo-no-hooks", "no_hooks_plugin", "def register_models(register):\n    pass\n"),
    "twice": ("ganzoo-twice", "twice_plugin", _MODEL_PLUGIN.format(name="twicegan", task="unconditional")
              + "    register(ModelSpec(name='twicegan', family='other', task='unconditional', summary='t', paper=None, "
                "default_dataset='ring8', hyperparameters=(), data_kinds=('vectors',)))\n"),
    "metric-clash": ("ganzoo-metric-clash", "metric_clash_plugin",
                     "from ganzoo import hookimpl\nfrom ganzoo.specs import MetricSpec\n@hookimpl\n"
                     "def register_metrics(register):\n"
                     "    register(MetricSpec('FID', 'my own', lambda samples, real, dataset: {'x': 1.0}))\n"),
    "bad-checksum": ("ganzoo-bad-sha", "bad_sha_plugin",
                     "from ganzoo import hookimpl\nfrom ganzoo.specs import PretrainedSpec\n@hookimpl\n"
                     "def register_pretrained(register):\n"
                     "    register(PretrainedSpec('gan-x', 'gan', 'ring8', 'https://example.org/g.safetensors', 'abc'))\n"),
}
EXPECTED = {"import": "import failed",
            "signature": "its hook register_models takes 'surprise', which ganzoo does not give: register_models gives "
                         "register (an implementation may take fewer of them, by those names)",
            "raises": "boom", "unknown-hook": "unknown hook",
            "name-clash": "registers model 'gan', which plugin 'gan' of ganzoo already registers; give it another name",
            "case-clash": "registers model 'GAN', which differs only in case from 'gan' of plugin 'gan' (ganzoo); give "
                          "it a name of its own",
            "bad-task": "model 'toygan' has task 'toy'; use one of unconditional, conditional, image-to-image",
            "bad-checksum": "pretrained weights 'gan-x' have sha256 'abc', not 64 hexadecimal digits",
            "metric-clash": "registers metric 'FID', the name of a built-in one; give it a name of its own",
            "no-hooks": "implements no ganzoo hook; mark its hook functions with ganzoo.hookspecs.hookimpl",
            "twice": "registers model 'twicegan' twice; register each name once"}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_plugin_is_reported_and_others_still_work(kind, cli, tmp_path, monkeypatch):
    from ganzoo.plugin_manager import reset

    dist, module, source = BROKEN[kind]
    make_distribution(tmp_path / "site", dist, module, source)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    listing = cli("list").output
    assert "dcgan" in listing
    assert dist in listing and "skipped" in listing
    assert EXPECTED[kind] in " ".join(listing.split())
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", tmp_path / "run", "--no-progress",
        "--set", "log_every=100")
    sys.modules.pop(module, None)


def test_entry_point_names_taken_twice_keep_ganzoos_own_and_name_both_distributions(cli, tmp_path, monkeypatch):
    from ganzoo.plugin_manager import reset
    from ganzoo.registry import get_registry

    # "aaa-..." sorts before "ganzoo" and comes first on sys.path, yet the built-in 'datasets' plugin stays
    dataset_plugin = ("from ganzoo import hookimpl\nfrom ganzoo.specs import DatasetInfo, DatasetSpec\n@hookimpl\n"
                      "def register_datasets(register):\n"
                      "    register(DatasetSpec('{name}', 's', DatasetInfo('vectors', dim=2), load=None))\n")
    make_distribution(tmp_path / "one", "aaa-ganzoo-lines", "lines_one", dataset_plugin.format(name="line3"), "datasets")
    make_distribution(tmp_path / "two", "zzz-ganzoo-more", "more_two", dataset_plugin.format(name="line4"), "extra")
    make_distribution(tmp_path / "three", "yyy-ganzoo-most", "most_three", dataset_plugin.format(name="line5"), "extra")
    for site in ("one", "two", "three"):
        monkeypatch.syspath_prepend(str(tmp_path / site))
    reset()
    datasets = get_registry().datasets.items
    assert "ring8" in datasets and "mnist" in datasets and "line3" not in datasets
    assert "line5" in datasets and "line4" not in datasets  # yyy sorts before zzz, wherever each is on sys.path
    listing = " ".join(cli("plugins").output.split())
    assert ("plugin 'datasets' from aaa-ganzoo-lines skipped: its entry-point name 'datasets' is already taken by the "
            "plugin of ganzoo; rename the entry point in its distribution") in listing
    assert "plugin 'extra' from zzz-ganzoo-more skipped: its entry-point name 'extra' is already taken by the plugin of yyy-ganzoo-most" in listing
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", tmp_path / "run", "--no-progress")
    for module in ("lines_one", "more_two", "most_three"):
        sys.modules.pop(module, None)


OWN_LOSSES_PLUGIN = PLUGIN_TEMPLATE.replace('name="tinygan"', 'name="owngan"') + OWN_LOSSES_HOOK


def test_an_unconditional_model_with_its_own_losses_refuses_the_standard_steps_remedies(cli, tmp_path, monkeypatch):
    from ganzoo.plugin_manager import reset

    make_distribution(tmp_path / "site", "ganzoo-ownlosses", "own_losses_plugin", OWN_LOSSES_PLUGIN, "own")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    why = "works only in the standard step of unconditional models; 'owngan' (plugin 'own') computes its own losses"
    run = ("train", "owngan", "--epochs", "1", "--out", tmp_path / "run", "--no-progress", "--device", "cpu")
    for args, message in [(["--set", "r1_gamma=1"], f"r1_gamma {why} and would ignore it, so drop it."),
                          (["--set", "unroll_steps=3"], f"unroll_steps {why} and would ignore it, so drop --set unroll_steps."),
                          (["--with", "unrolled"], f"--with unrolled {why}, so drop --with unrolled.")]:
        result = cli(*run, *args, ok=False)
        assert result.exit_code == 1 and " ".join(result.output.split()) == f"Error: {message}"
    info = cli("info", "owngan").output
    assert "r1_gamma" not in info and "unrolled" not in info and "pack" in info and "pacgan" in info
    cli(*run, "--with", "pacgan", "--set", "pack=2", "--fast")  # D wrappers still apply; --fast leaves reuse_fake off
    assert '"reuse_fake": false' in (tmp_path / "run" / "run.json").read_text()
    drs = cli("sample", "owngan", "--weights", tmp_path / "run", "--drs", "--out", tmp_path / "s.npz", ok=False)
    assert " ".join(drs.output.split()) == ("Error: Rejection sampling (--drs) reads D through ganzoo's standard "
                                           "losses, but 'owngan' (plugin 'own') computes its own, so sample it without --drs.")
    sys.modules.pop("own_losses_plugin", None)


def test_each_logged_mean_is_over_the_steps_that_gave_it(cli, tmp_path, monkeypatch):
    """With 3 discriminator steps per generator step, G's terms come from fewer steps than D's: a metric that is
    always 1 must be logged as 1, not as its sum over the log window's batches. 8 batches of tiny-blobs, logs after
    batches 4 and 8, G steps after batches 3, 6 and 8 (the epoch's end)."""
    from ganzoo.plugin_manager import reset

    source = OWN_LOSSES_PLUGIN.replace('return Losses({"g": g.mean()})',
                                       'return Losses({"g": g.mean()}, {"always_one": torch.tensor(1.0)})')
    make_distribution(tmp_path / "site", "ganzoo-constants", "constants_plugin", source, "own")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    run = tmp_path / "run"
    cli("train", "owngan", "--epochs", "1", "--d-steps", "3", "--out", run, "--no-progress", "--device", "cpu",
        "--set", "log_every=4")
    import json

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"log"' in line]
    assert [(row["step"], row["always_one"]) for row in rows] == [(4, 1.0), (8, 1.0)]
    sys.modules.pop("constants_plugin", None)


@pytest.mark.parametrize("key", ["seen", "_seen"])
def test_state_a_checkpoint_cannot_keep_is_refused_at_the_first_step(cli, tmp_path, monkeypatch, key):
    from ganzoo.plugin_manager import reset

    source = OWN_LOSSES_PLUGIN.replace("    real = batch", f"    state[{key!r}] = {{stage}}\n    real = batch")
    module = f"set_state_plugin{key}"
    make_distribution(tmp_path / "site", "ganzoo-setstate", module, source, "own")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    run = tmp_path / "run"
    result = cli("train", "owngan", "--epochs", "1", "--out", run, "--no-progress", "--device", "cpu",
                 "--set", "log_every=1", ok=key.startswith("_"))  # "_" keys stay out of checkpoints
    if key == "seen":
        assert result.exit_code == 1 and " ".join(result.output.split()).endswith(
            "Error: Training state['seen'] holds a set, which a checkpoint cannot keep; the plugin that sets it must "
            "store a tensor or JSON values (numbers, strings, lists, dicts), or name it '_seen' to keep it out of "
            "checkpoints.")
        rows = [row for row in (run / "metrics.jsonl").read_text().splitlines() if '"log"' in row]
        assert rows == []  # stopped at the first step (log_every=1), not when the epoch's checkpoint was written
    else:
        assert (run / "checkpoints").is_dir()
    sys.modules.pop(module, None)


def test_a_build_hook_that_returns_no_network_is_one_sentence(cli, tmp_path, monkeypatch):
    from ganzoo.plugin_manager import reset

    source = _MODEL_PLUGIN.format(name="lambdagan", task="unconditional") + (
        "@hookimpl\ndef build_generator(model, config):\n    if model.name == 'lambdagan':\n        return lambda z: z\n")
    make_distribution(tmp_path / "site", "ganzoo-lambda", "lambda_plugin", source)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    result = cli("train", "lambdagan", "--data", "ring8", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        "Error: build_generator for model 'lambdagan' (declared by plugin 'ganzoo-lambda') returned a function, "
        "not a torch.nn.Module; the plugin must return the network itself.")
    sys.modules.pop("lambda_plugin", None)


def test_a_plugins_own_setting_named_like_a_builtin_losses_is_not_held_to_that_losses_range(cli, tmp_path,
                                                                                              monkeypatch):
    """BEGAN's gamma must be above 0, but only when BEGAN's loss trains: a plugin model's own ``gamma`` (a decay,
    say) of 0 trains, and the same value under --loss began is still refused."""
    from ganzoo.plugin_manager import reset

    source = PLUGIN_TEMPLATE.replace('Hyperparameter("width", 32, "hidden width"),',
                                     'Hyperparameter("width", 32, "hidden width"), Hyperparameter("gamma", 0.9, "decay"),')
    make_distribution(tmp_path / "site", "ganzoo-gamma", "gamma_plugin", source, "tiny")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    run = cli("train", "tinygan", "--set", "gamma=0", "--epochs", "1", "--out", tmp_path / "run", "--no-progress")
    assert run.exit_code == 0 and (tmp_path / "run" / "generator.safetensors").is_file()
    refused = cli("train", "began", "--data", "line-2d", "--set", "gamma=0", "--out", tmp_path / "began", ok=False)
    assert "gamma must be a positive finite number, got 0" in refused.output
    sys.modules.pop("gamma_plugin", None)


def test_a_model_whose_family_no_plugin_builds_says_which_hook_to_write(cli, tmp_path, monkeypatch):
    from ganzoo.plugin_manager import reset

    make_distribution(tmp_path / "site", "ganzoo-nobuild", "nobuild_plugin",
                      _MODEL_PLUGIN.format(name="nobuildgan", task="unconditional"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    result = cli("train", "nobuildgan", "--data", "ring8", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        "Error: No installed plugin answers build_generator for model 'nobuildgan' (family 'other', declared by plugin "
        "'ganzoo-nobuild'); the plugin of that family must implement build_generator and return the network when "
        "model.family is 'other' ('ganzoo plugins' shows the hooks each plugin has, and any skipped or disabled).")
    sys.modules.pop("nobuild_plugin", None)


def test_a_plugin_that_is_slow_to_import_is_pointed_out(cli, tiny_plugin, tmp_path, monkeypatch):
    from ganzoo.plugin_manager import reset

    assert "to import" not in cli("plugins").output  # the tiny plugin imports in milliseconds
    site = make_distribution(tmp_path / "slow-site", "ganzoo-slow", "ganzoo_slow", "import time\ntime.sleep(1.2)\n"
                             + PLUGIN_TEMPLATE.replace("tinygan", "slowgan").replace("tiny-blobs", "slow-blobs"), "slow")
    monkeypatch.syspath_prepend(str(site))
    reset()
    try:
        for command in ("plugins", "list"):
            said = " ".join(cli(command).output.split())
            assert re.search(r"plugin 'slow' from ganzoo-slow took 1\.\d s to import, which every ganzoo command waits "
                             r"for; GANZOO_DISABLE_PLUGINS=slow skips it when it is not needed, and its authors should "
                             r"move heavy imports \(torch, torchvision\.\.\.\) into its hook "
                             r"functions", said), said
            assert "plugin 'tiny' from ganzoo-tinyplugin took" not in said
    finally:
        sys.modules.pop("ganzoo_slow", None)


def test_disable_plugins_by_name(cli, tiny_plugin, monkeypatch):
    from ganzoo.plugin_manager import reset

    monkeypatch.setenv("GANZOO_DISABLE_PLUGINS", "tiny, dcgan, dcgna")
    reset()
    from ganzoo.registry import list_models

    names = list_models()
    assert "tinygan" not in names and "dcgan" not in names and "gan" in names
    output = " ".join(cli("plugins").output.split())
    assert "plugin 'tiny' disabled by GANZOO_DISABLE_PLUGINS" in output
    typo = ("GANZOO_DISABLE_PLUGINS names 'dcgna', which no installed plugin or distribution has (did you mean "
            "'dcgan'")
    assert typo in output and "'tiny', which" not in output
    # the other commands say it too, on stderr, and a name the setting hides says why it is unknown
    info = cli("info", "gan")
    assert typo in " ".join(info.stderr.split()) and typo not in " ".join(info.stdout.split())
    refused = cli("info", "dcgan", ok=False)
    assert refused.exit_code == 1
    assert ("Plugins 'dcgan' and 'tiny' are disabled by GANZOO_DISABLE_PLUGINS and may be what registers it; take "
            "them out of that variable to use it.") in " ".join(refused.stderr.split())
    # the shipped weights of the disabled family are left out quietly; the others stay
    assert "skipped" not in output
    cli("sample", "gan", "--pretrained", "gan-mnist", "--num", "4", "--out", tiny_plugin / "digits.png")
    assert (tiny_plugin / "digits.png").is_file()
    monkeypatch.setenv("GANZOO_DISABLE_PLUGINS", "ganzoo,tiny")  # the distribution: every built-in plugin, and tiny
    reset()
    nothing = cli("list", ok=False)
    assert nothing.exit_code == 1 and "Error: No model matches '*'; GANZOO_DISABLE_PLUGINS leaves out the plugins " in (
        " ".join(nothing.output.split()))


def test_help_neither_loads_the_plugins_nor_repeats_the_disable_list_typo(cli, monkeypatch):
    from ganzoo.plugin_manager import get_plugins

    monkeypatch.setenv("GANZOO_DISABLE_PLUGINS", "dcgna")
    for command in ("train", "sample", "translate", "eval", "info"):
        result = cli(command, "--help")
        usage = result.output.splitlines()[0]  # "Usage: cli COMMAND [OPTIONS]...": the runner calls the group "cli"
        assert usage.startswith("Usage: ") and f" {command} [OPTIONS]" in usage and "dcgna" not in result.output
        assert get_plugins.cache_info().currsize == 0, f"'ganzoo {command} --help' loaded the plugins"


def test_the_processes_of_a_devices_run_leave_the_disable_list_typo_to_the_launcher(tmp_path):
    """The launcher said it once; its processes (marked by the launcher's variable) say nothing of it."""
    import os
    import subprocess

    from ganzoo.launcher import LAUNCHED_ENV

    def info_stderr(**extra: str) -> str:
        env = {**os.environ, "GANZOO_DISABLE_PLUGINS": "dcgna", **extra}
        done = subprocess.run([sys.executable, "-m", "ganzoo", "info", "gan"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0 and "plugin gan" in done.stdout, done.stderr
        return done.stderr

    assert "GANZOO_DISABLE_PLUGINS names 'dcgna'" in " ".join(info_stderr().split())
    launched = tmp_path / "launch"
    launched.mkdir()
    assert "dcgna" not in info_stderr(**{LAUNCHED_ENV: str(launched)})


def test_spectral_norm_wraps_any_discriminator(tiny_plugin):
    from ganzoo.build import build_discriminator
    from ganzoo.config import resolve_config
    from ganzoo.registry import get_dataset, get_model

    for model_name, data in (("dcgan", "mnist"), ("tinygan", "tiny-blobs")):
        model = get_model(model_name)
        config = resolve_config(model, get_dataset(data).info, {"with": ["spectral-norm"]})
        plain = build_discriminator(model, {**config, "with": []})
        wrapped = build_discriminator(model, config)
        assert not any("parametrizations" in k for k in plain.state_dict())
        assert any("parametrizations.weight.original" in k for k in wrapped.state_dict())


def test_minibatch_discrimination_on_a_discriminator_without_net_says_what_it_lacks(cli, tiny_plugin, tmp_path):
    result = cli("train", "tinygan", "--with", "minibatch-discrimination", "--epochs", "1", "--out", tmp_path / "run",
                 "--no-progress", "--device", "cpu", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        "Error: minibatch-discrimination needs a discriminator whose 'net' is an nn.Sequential ending in a Linear or "
        "a full-size Conv2d layer, but Sequential has no 'net' attribute, so drop --with minibatch-discrimination "
        "for this model.")


def test_spectral_norm_also_covers_the_layers_minibatch_discrimination_adds():
    """Minibatch discrimination's wrapper is the innermost, so spectral norm (and PacGAN's rebuild) see its layers."""
    from torch import nn
    from torch.nn.utils import parametrize

    from ganzoo.build import build_discriminator
    from ganzoo.config import resolve_config
    from ganzoo.registry import get_dataset, get_model

    for extensions in (["minibatch-discrimination", "spectral-norm"],
                       ["pacgan", "minibatch-discrimination", "spectral-norm"]):
        for model_name, data in (("dcgan", "mnist"), ("gan", "ring8")):
            model = get_model(model_name)
            discriminator = build_discriminator(model, resolve_config(model, get_dataset(data).info, {"with": extensions}))
            modules = list(discriminator.modules())
            layers = [m for m in modules if isinstance(m, (nn.Conv2d, nn.Linear))]
            assert sum(type(m).__name__ == "MinibatchDiscrimination" for m in modules) == 1, (model_name, extensions)
            assert all(parametrize.is_parametrized(layer, "weight") for layer in layers), (model_name, extensions)


def test_spectral_norm_bounds_the_largest_singular_value():
    import torch
    from torch import nn

    from ganzoo.plugins.spectral_norm import apply_spectral_norm

    net = nn.Sequential(nn.Linear(8, 8))
    with torch.no_grad():
        net[0].weight.mul_(10)
    assert apply_spectral_norm(net) == 1
    net.train()
    for _ in range(30):  # power iteration converges over forward passes
        net(torch.randn(4, 8))
    top = torch.linalg.matrix_norm(net[0].weight.detach(), ord=2)
    assert top == pytest.approx(1.0, abs=0.05)


def test_training_with_spectral_norm(cli, tmp_path):
    run = tmp_path / "sn"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--with", "spectral-norm", "--out", run, "--no-progress")
    from ganzoo.safefile import read_metadata

    import json

    meta = json.loads(read_metadata(next((run / "checkpoints").iterdir()))["json"])
    assert meta["config"]["with"] == ["spectral-norm"]


def test_unknown_extension_is_one_clear_sentence(cli):
    result = cli("train", "gan", "--data", "ring8", "--with", "spectral-nrom", ok=False)
    assert result.exit_code != 0
    assert "Unknown extension 'spectral-nrom'" in result.output and "spectral-norm" in result.output


def test_a_missing_shipped_weights_file_names_the_package_to_reinstall(cli, tmp_path, monkeypatch):
    """A plugin's name (ganzoo's own is 'pretrained') means nothing to pip: the sentence names the distribution."""
    from ganzoo.plugin_manager import reset

    source = ("from ganzoo import hookimpl\nfrom ganzoo.specs import PretrainedSpec\n@hookimpl\n"
              "def register_pretrained(register):\n"
              f"    register(PretrainedSpec('gan-lost', 'gan', 'ring8', 'lost.safetensors', '{'0' * 64}', "
              f"base_dir={str(tmp_path)!r}))\n")
    make_distribution(tmp_path / "site", "ganzoo-lost-weights", "lost_weights", source, "lost")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    result = cli("sample", "gan", "--pretrained", "gan-lost", "--out", tmp_path / "s.npz", ok=False)
    assert result.exit_code == 1 and (
        f"Error: Pretrained weights 'gan-lost' should be at {tmp_path / 'lost.safetensors'} but that file is missing; "
        "reinstall the package 'ganzoo-lost-weights' that ships it (in a source checkout, restore the file from "
        "there).") in " ".join(result.output.split())
    (tmp_path / "lost.safetensors").write_bytes(b"other bytes")
    result = cli("sample", "gan", "--pretrained", "gan-lost", "--out", tmp_path / "s.npz", ok=False)
    import hashlib

    assert ("do not match their SHA-256; the file is damaged or was replaced; reinstall the package "
            "'ganzoo-lost-weights' that ships it (in a source checkout, restore the file from there) (if you wrote the "
            f"plugin and the file is right, register the file's SHA-256, {hashlib.sha256(b'other bytes').hexdigest()})."
            ) in " ".join(result.output.split())
    sys.modules.pop("lost_weights", None)


def test_a_plugins_relative_weights_file_lies_beside_its_module_and_weights_of_no_model_are_refused(cli, tmp_path,
                                                                                                monkeypatch):
    """A PretrainedSpec's relative file is found next to the plugin's module wherever the command runs, not in the
    working folder; weights registered for a model no plugin registers skip the plugin in one line."""
    import hashlib

    from ganzoo.plugin_manager import reset

    run = tmp_path / "run"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress", "--device", "cpu")
    site = tmp_path / "site"
    site.mkdir()
    (site / "ring.safetensors").write_bytes((run / "generator.safetensors").read_bytes())
    digest = hashlib.sha256((site / "ring.safetensors").read_bytes()).hexdigest()
    source = ("from ganzoo import hookimpl\nfrom ganzoo.specs import PretrainedSpec\n@hookimpl\n"
              "def register_pretrained(register):\n"
              f"    register(PretrainedSpec('gan-ring', 'gan', 'ring8', 'ring.safetensors', '{digest}'))\n"
              "    register(PretrainedSpec('lost-ring', '{model}', 'ring8', 'ring.safetensors', "
              f"'{digest}'))\n")
    make_distribution(site, "ganzoo-ring-weights", "ring_weights", source.replace("{model}", "gan"), "ring")
    monkeypatch.syspath_prepend(str(site))
    reset()
    monkeypatch.chdir(tmp_path)  # not the plugin's folder
    cli("sample", "gan", "--pretrained", "gan-ring", "--num", "8", "--out", tmp_path / "s.npz")
    assert (tmp_path / "s.npz").is_file()
    (site / "ring_weights.py").write_text(source.replace("{model}", "nosuchgan"))
    sys.modules.pop("ring_weights", None)
    reset()
    listing = " ".join(cli("plugins").output.split())
    assert ("plugin 'ring' from ganzoo-ring-weights skipped: registers pretrained weights 'lost-ring' for model "
            "'nosuchgan', which no plugin registers; give the name of the model they were trained with") in listing
    sys.modules.pop("ring_weights", None)


def test_an_entry_point_in_another_group_than_ganzoo_is_pointed_out(cli, tmp_path, monkeypatch):
    """``[project.entry-points."ganzoo.plugins"]`` is a group ganzoo never reads: the plugin would be missing
    without a word, so its line says where the entry point belongs."""
    from ganzoo.plugin_manager import reset

    site = make_distribution(tmp_path / "site", "ganzoo-grouped", "grouped_plugin",
                             _MODEL_PLUGIN.format(name="groupedgan", task="unconditional"))
    entry_points = next(site.glob("*.dist-info")) / "entry_points.txt"
    entry_points.write_text(entry_points.read_text().replace("[ganzoo]", "[ganzoo.plugins]"))
    monkeypatch.syspath_prepend(str(site))
    reset()
    result = cli("train", "groupedgan", "--data", "ring8", "--out", tmp_path / "run", ok=False)
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "Unknown model 'groupedgan'" in said and "'ganzoo-grouped' from ganzoo-grouped" \
        in said
    assert ("plugin 'ganzoo-grouped' from ganzoo-grouped skipped: its entry point is in the group 'ganzoo.plugins', "
            "which ganzoo does not read; declare it under [project.entry-points.ganzoo]") in " ".join(
        cli("plugins").output.split())


HINGE_PLUGIN = PLUGIN_TEMPLATE.replace('name="tinygan"', 'name="hingegan"')


def test_weights_of_a_model_whose_plugin_is_not_installed_name_the_distribution_to_install(cli, tmp_path,
                                                                                           monkeypatch):
    """Someone given a third-party model's weights without its plugin is told which distribution to install, not
    offered models with close names; a file written before the distribution was kept still samples."""
    from ganzoo.plugin_manager import reset
    from ganzoo.safefile import load_tensors, read_metadata, save_tensors

    site = make_distribution(tmp_path / "site", "ganzoo-hinge", "hinge_plugin", HINGE_PLUGIN, "hinge")
    monkeypatch.syspath_prepend(str(site))
    reset()
    run, old = tmp_path / "run", tmp_path / "old.safetensors"
    cli("train", "hingegan", "--epochs", "1", "--out", run, "--no-progress", "--device", "cpu")
    weights = run / "generator.safetensors"
    metadata = read_metadata(weights)
    assert (metadata["plugin_distribution"], metadata["plugin_version"]) == ("ganzoo-hinge", "0.1")
    del metadata["plugin_distribution"], metadata["plugin_version"]
    save_tensors(old, load_tensors(weights), metadata, with_digest=True)  # as written before the fields
    cli("sample", "hingegan", "--weights", old, "--num", "4", "--out", tmp_path / "old.npz")
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry != str(site)])
    sys.modules.pop("hinge_plugin", None)
    reset()
    for command, args in (("sample", ("--out", tmp_path / "s.png")), ("eval", ("--data", "ring8")),
                          ("translate", ("--input", tmp_path, "--out", tmp_path / "translated"))):
        result = cli(command, "hingegan", "--weights", run, *args, ok=False)
        assert result.exit_code == 1 and " ".join(result.output.split()) == (
            f"Error: {weights} holds weights of model 'hingegan' from the plugin distribution 'ganzoo-hinge' 0.1, "
            "which is not installed; pip install ganzoo-hinge (or put it on the Python path) and run again."), command
    result = cli("sample", "hingegan", "--weights", old, "--out", tmp_path / "s.png", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()).startswith("Error: Unknown model 'hingegan'.")


def test_ganzoo_debug_shows_the_traceback_of_a_plugin_that_fails_to_import_or_register(cli, tmp_path, monkeypatch):
    """One line each for their users; under GANZOO_DEBUG their authors also get the line of the plugin that failed."""
    from ganzoo.plugin_manager import reset

    make_distribution(tmp_path / "site", "ganzoo-needs-foo", "needs_foo", "import foo_that_is_not_installed\n")
    make_distribution(tmp_path / "site", *BROKEN["raises"])
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("GANZOO_DEBUG", "1")
    reset()
    listing = " ".join(cli("list").output.split())
    assert ("plugin 'ganzoo-needs-foo' from ganzoo-needs-foo skipped: import failed (ModuleNotFoundError: No module "
            "named 'foo_that_is_not_installed')") in listing
    assert f'{tmp_path / "site" / "needs_foo.py"}", line 1, in <module>' in listing
    assert "plugin 'ganzoo-raises' from ganzoo-raises skipped: register_models raised RuntimeError: boom" in listing
    assert f'{tmp_path / "site" / "raises_plugin.py"}", line 4, in register_models' in listing
    assert "raise RuntimeError('boom')" in listing
    monkeypatch.delenv("GANZOO_DEBUG")
    reset()
    assert "Traceback" not in cli("list").output
    for module in ("needs_foo", "raises_plugin"):
        sys.modules.pop(module, None)


def test_a_wrapper_that_does_not_yield_is_skipped_with_pluggys_reason(cli, tmp_path, monkeypatch):
    from ganzoo.plugin_manager import reset

    make_distribution(tmp_path / "site", "ganzoo-wrapper", "wrapper_plugin", (
        "from ganzoo import hookimpl\n@hookimpl(wrapper=True)\ndef build_generator(model, config):\n    return None\n"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    assert ("plugin 'ganzoo-wrapper' from ganzoo-wrapper skipped: invalid hook implementation (PluginValidationError: "
            "Plugin 'ganzoo-wrapper' for hook 'build_generator'; Declared as wrapper=True or hookwrapper=True but "
            "function is not a generator function)") in " ".join(cli("list").output.split())
    sys.modules.pop("wrapper_plugin", None)


BLOB_SCORE_PLUGIN = '''
"""A third party's score for its own dataset: how far the samples' mean lies from the real points' mean."""
from ganzoo import hookimpl
from ganzoo.specs import MetricSpec

def offset(samples, real, dataset):
    if samples.values.dtype.is_floating_point is False or real is None:
        raise ValueError("wanted float points and the real ones")
    return {"blob_offset": float((samples.values.mean(0) - real.mean(0)).norm()), "blob_count": len(samples.values)}

def broken(samples, real, dataset):
    return {"blob_spread": "wide"}

@hookimpl
def register_metrics(register):
    register(MetricSpec("blob-offset", "distance between the means", offset, kinds=("vectors",),
                        datasets=("tiny-blobs",)))
    register(MetricSpec("blob-spread", "a score that answers a word", broken, uses_real=False))
'''


def test_a_plugins_metric_scores_its_own_dataset_by_default_and_its_mistakes_are_one_sentence(cli, tiny_plugin,
                                                                                              tmp_path, monkeypatch):
    """A plugin's dataset of points that the built-in toy scores do not know is scored by the metric a plugin
    registers for it (by default, or asked by name in any case); a metric asked for samples or data it does not
    score is refused, and a score that answers something eval cannot show is named as its plugin's mistake."""
    import json

    import numpy as np
    import torch

    from ganzoo.plugin_manager import reset
    from ganzoo.registry import get_dataset

    make_distribution(tiny_plugin, "ganzoo-blobscore", "ganzoo_blobscore", BLOB_SCORE_PLUGIN, "blobscore")
    reset()
    points = np.random.default_rng(0).normal([1.2, -1.0], 0.1, (300, 2)).astype(np.float32)
    np.savez(tmp_path / "points.npz", samples=points)
    real = get_dataset("tiny-blobs").load(None, None, None).tensors["real"]
    expected = float((torch.from_numpy(points).mean(0) - real.mean(0)).norm())

    listed = " ".join(cli("datasets").output.split())
    assert ("plugins' metrics for ganzoo eval --metrics NAME (the default on the datasets named): toy (ring8, grid25); "
            "blob-offset (tiny-blobs); blob-spread (any images or vectors)") in listed
    scored = cli("eval", "--samples", tmp_path / "points.npz", "--data", "tiny-blobs", "--json", tmp_path / "s.json")
    document = json.loads((tmp_path / "s.json").read_text())
    assert document["metrics"] == {"blob_offset": pytest.approx(expected, abs=1e-6), "blob_count": 300.0}
    assert expected > 0.15  # the samples sit 0.2 off the blob: a score of 0 would be wrong
    assert document["protocol"]["plugin_metrics"] == {"blob-offset": "ganzoo-blobscore 0.1 (plugin 'blobscore')"}
    assert "blob_offset" in scored.output and f"{expected:.4f}" in scored.output
    by_name = cli("eval", "--samples", tmp_path / "points.npz", "--data", "tiny-blobs", "--metrics", "Blob-Offset")
    assert f"{expected:.4f}" in by_name.output

    typo = cli("eval", "--samples", tmp_path / "points.npz", "--data", "tiny-blobs", "--metrics", "blob-ofset", ok=False)
    assert typo.exit_code == 1 and "Unknown metric 'blob-ofset'. Did you mean 'blob-offset'" in typo.output
    elsewhere = cli("eval", "--samples", tmp_path / "points.npz", "--data", "ring8", "--metrics", "blob-offset", ok=False)
    assert elsewhere.exit_code == 2 and ("--metrics blob-offset (of plugin 'blobscore') scores samples against "
                                         "tiny-blobs only, not ring8; give one of those as --data.") in " ".join(
                                             elsewhere.output.split())
    np.savez(tmp_path / "images.npz", images=np.zeros((4, 1, 8, 8), np.uint8))
    folder = tmp_path / "digits"
    from conftest import write_png_images

    write_png_images(folder, 4, size=8, mode="L")
    pictures = cli("eval", "--samples", tmp_path / "images.npz", "--data", folder, "--metrics", "blob-offset", ok=False)
    assert pictures.exit_code == 2 and ("--metrics blob-offset (of plugin 'blobscore') scores vectors, not images; "
                                        "choose another metric.") in " ".join(pictures.output.split())
    word = cli("eval", "--samples", tmp_path / "points.npz", "--data", "tiny-blobs", "--metrics", "blob-spread",
               ok=False)
    assert word.exit_code == 1 and " ".join(word.output.split()) == (
        "Error: The score function of metric 'blob-spread' (plugin 'blobscore' from ganzoo-blobscore) returned "
        "'blob_spread': a str; each score must be a number (a float, an int) or a list of numbers, under a name "
        "(a str).")
    sys.modules.pop("ganzoo_blobscore", None)
