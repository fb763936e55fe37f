"""A third-party extension declares settings of its own (``ExtensionSpec.hyperparameters``).

Each test installs real plugin distributions found through their ``ganzoo`` entry points: the tiny MLP family of
``conftest.PLUGIN_TEMPLATE`` (``ganzoo-tinyplugin``) and, from another distribution, the extension ``my-noise``,
whose ``on_epoch_start`` hook writes the value of its setting it received to a file. Training goes through the
real CLI, one epoch of 8 steps on the CPU.
"""

from __future__ import annotations

import json
import sys

import pytest

from conftest import make_distribution

EXTENSION_PLUGIN = '''
"""--with my-noise --set my_noise_sigma=S: records each epoch's sigma, as a noise extension would read it."""
import json, os
from ganzoo import hookimpl
from ganzoo.specs import ExtensionSpec, Hyperparameter

@hookimpl
def register_extensions(register):
    register(ExtensionSpec("my-noise", "Gaussian noise on D's inputs",
                           hyperparameters=(Hyperparameter("my_noise_sigma", 0.1, "std of the noise"),)))

@hookimpl
def on_epoch_start(config, epoch, first_batch):
    if "my-noise" in config["with"]:
        with open(os.environ["MY_NOISE_LOG"], "a") as log:
            log.write(json.dumps({"epoch": epoch, "sigma": config["my_noise_sigma"]}) + "\\n")
'''

#: Extensions whose settings clash with the tiny model's ``width`` and with my-noise's ``my_noise_sigma``, and two
#: that declare ``pool_size``, which ganzoo checks by its name (a whole number of at least 0) wherever it is declared.
OTHER_EXTENSIONS = '''
from ganzoo import hookimpl
from ganzoo.specs import ExtensionSpec, Hyperparameter

@hookimpl
def register_extensions(register):
    register(ExtensionSpec("wide", "w", hyperparameters=(Hyperparameter("width", 64, "a width"),)))
    register(ExtensionSpec("loud-noise", "l", hyperparameters=(Hyperparameter("my_noise_sigma", 1.0, "std"),)))
    register(ExtensionSpec("pool", "p", hyperparameters=(Hyperparameter("pool_size", 0, "pool"),)))
    register(ExtensionSpec("bad-pool", "b", hyperparameters=(Hyperparameter("pool_size", -1, "pool"),)))
'''


@pytest.fixture
def my_noise(tiny_plugin, tmp_path, monkeypatch):
    """The ``ganzoo-mynoise`` distribution (extension ``my-noise``) on sys.path beside the tiny family; returns the
    file its hook writes to."""
    from ganzoo.plugin_manager import reset

    make_distribution(tmp_path / "noise-site", "ganzoo-mynoise", "ganzoo_mynoise", EXTENSION_PLUGIN, "mynoise")
    monkeypatch.syspath_prepend(str(tmp_path / "noise-site"))
    monkeypatch.setenv("MY_NOISE_LOG", str(tmp_path / "received.jsonl"))
    reset()
    yield tmp_path / "received.jsonl"
    sys.modules.pop("ganzoo_mynoise", None)


def _received(log) -> list[dict]:
    """What the extension's hook received, one entry per epoch started."""
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _config(run) -> dict:
    return json.loads((run / "run.json").read_text())["config"]


def _train(cli, run, *args, ok: bool = True):
    """``ganzoo train tinygan`` for one epoch on the CPU (or as ``args`` say) into ``run``; its output as one line."""
    result = cli("train", "tinygan", "--epochs", "1", "--out", run, "--no-progress", "--device", "cpu", *args, ok=ok)
    return " ".join(result.output.split())


def test_an_extensions_own_setting_reaches_its_hook_and_the_run_files_and_resume_keeps_it(cli, my_noise, tmp_path):
    run = tmp_path / "run"
    _train(cli, run, "--with", "my-noise", "--set", "my_noise_sigma=0.25")
    assert _received(my_noise) == [{"epoch": 0, "sigma": 0.25}]
    assert _config(run)["my_noise_sigma"] == 0.25 and _config(run)["with"] == ["my-noise"]
    from ganzoo.checkpoint import load_latest_checkpoint

    assert load_latest_checkpoint(run)[1]["config"]["my_noise_sigma"] == 0.25
    cli("train", "tinygan", "--resume", run, "--epochs", "2", "--no-progress", "--device", "cpu")
    assert _received(my_noise) == [{"epoch": 0, "sigma": 0.25}, {"epoch": 1, "sigma": 0.25}]
    assert _config(run)["my_noise_sigma"] == 0.25
    changed = cli("train", "tinygan", "--resume", run, "--epochs", "3", "--set", "my_noise_sigma=0.5", ok=False)
    assert changed.exit_code == 1 and f"Cannot resume {run} with my_noise_sigma=0.5: it was trained with " \
        "my_noise_sigma=0.25;" in " ".join(changed.output.split())


def test_an_extensions_setting_has_its_default_with_the_extension_and_no_place_without_it(cli, my_noise, tmp_path):
    _train(cli, tmp_path / "with", "--with", "my-noise")
    assert _received(my_noise) == [{"epoch": 0, "sigma": 0.1}]
    assert _config(tmp_path / "with")["my_noise_sigma"] == 0.1
    _train(cli, tmp_path / "without")
    assert "my_noise_sigma" not in _config(tmp_path / "without") and len(_received(my_noise)) == 1


@pytest.mark.parametrize("args, said", [
    (["--set", "my_noise_sigma=0.2"],
     "my_noise_sigma is a setting of the extension 'my-noise', which this run does not switch on; add --with "
     "my-noise, or drop --set my_noise_sigma."),
    (["--with", "my-noise", "--set", "my_noise_sigma=loud"],
     "my_noise_sigma must be a number like its default 0.1, got 'loud'; set it as in --set my_noise_sigma=0.1."),
    (["--with", "my-noise", "--set", "my_noise_sigma=[0.1]"],
     "my_noise_sigma must be a number like its default 0.1, got [0.1]; set it as in --set my_noise_sigma=0.1."),
    (["--with", "my-noise", "--set", "my_noise_sigma=inf"], "my_noise_sigma must be a finite number, got inf."),
])
def test_an_extensions_setting_set_without_it_or_of_the_wrong_type_is_one_sentence(cli, my_noise, tmp_path, args,
                                                                                    said):
    run = tmp_path / "run"
    assert _train(cli, run, *args, ok=False) == f"Error: {said}"
    assert not run.exists() and _received(my_noise) == []


def test_ganzoo_info_lists_an_extensions_settings_with_their_defaults(cli, my_noise):
    said = " ".join(cli("info", "tinygan").output.split())
    assert "my-noise: Gaussian noise on D's inputs my_noise_sigma (default 0.1): std of the noise" in said


@pytest.fixture
def other_extensions(my_noise, tmp_path, monkeypatch):
    """The ``ganzoo-others`` distribution (:data:`OTHER_EXTENSIONS`) on sys.path beside my-noise and the tiny family."""
    from ganzoo.plugin_manager import reset

    make_distribution(tmp_path / "others-site", "ganzoo-others", "ganzoo_others", OTHER_EXTENSIONS, "others")
    monkeypatch.syspath_prepend(str(tmp_path / "others-site"))
    reset()
    yield
    sys.modules.pop("ganzoo_others", None)


def test_a_setting_an_extension_shares_with_the_model_or_another_extension_is_refused_when_both_are_used(
        cli, other_extensions, my_noise, tmp_path):
    assert "skipped" not in cli("plugins").output  # a clash is no mistake while the two are not used together
    assert _train(cli, tmp_path / "wide", "--with", "wide", ok=False) == (
        "Error: The setting 'width' of the extension 'wide' (plugin 'others' from ganzoo-others) is also a setting of "
        "model 'tinygan' (plugin 'tiny' from ganzoo-tinyplugin), and one run cannot give it two values; drop --with "
        "wide, or ask the authors of either plugin to rename theirs.")
    assert _train(cli, tmp_path / "both", "--with", "my-noise", "--with", "loud-noise", ok=False) == (
        "Error: The setting 'my_noise_sigma' of the extension 'loud-noise' (plugin 'others' from ganzoo-others) is "
        "also a setting of the extension 'my-noise' (plugin 'mynoise' from ganzoo-mynoise), and one run cannot give "
        "it two values; drop --with loud-noise, or ask the authors of either plugin to rename theirs.")
    _train(cli, tmp_path / "loud", "--with", "loud-noise")
    assert _config(tmp_path / "loud")["my_noise_sigma"] == 1.0 and _received(my_noise) == []


def test_the_checks_by_name_hold_an_extensions_settings_and_its_defaults_as_a_models(cli, other_extensions, tmp_path):
    assert _train(cli, tmp_path / "run", "--with", "pool", "--set", "pool_size=-1", ok=False) == (
        "Error: pool_size must be a whole number of at least 0, got -1.")
    assert _train(cli, tmp_path / "run", "--with", "bad-pool", ok=False) == (
        "Error: Extension 'bad-pool' (plugin 'others' from ganzoo-others) declares a default that ganzoo refuses: "
        "pool_size must be a whole number of at least 0, got -1; fix the plugin's Hyperparameter or report it to its "
        "authors.")


@pytest.mark.parametrize("hyperparameters, said", [
    ('(Hyperparameter("lr", 0.1, "its own rate"),)',
     "extension 'fast' declares the setting 'lr', which is one of ganzoo's own that every run has; give it a name of "
     "its own"),
    ('(Hyperparameter("fast_rate", 0.1, "a"), Hyperparameter("fast_rate", 0.2, "b"))',
     "extension 'fast' declares hyperparameter 'fast_rate' twice; declare each setting once"),
    ('(Hyperparameter("fast_rate", 0.1, "a"))',
     "extension 'fast' gives hyperparameters=Hyperparameter(...), not a tuple of them; add the trailing comma: "
     "hyperparameters=(Hyperparameter(...),)"),
])
def test_an_extension_whose_settings_cannot_be_read_or_take_ganzoos_own_name_is_skipped_at_registration(
        cli, tmp_path, monkeypatch, hyperparameters, said):
    from ganzoo.plugin_manager import reset

    source = ("from ganzoo import hookimpl\nfrom ganzoo.specs import ExtensionSpec, Hyperparameter\n@hookimpl\n"
              "def register_extensions(register):\n"
              f"    register(ExtensionSpec('fast', 'f', hyperparameters={hyperparameters}))\n")
    make_distribution(tmp_path / "site", "ganzoo-fast", "ganzoo_fast", source, "fast")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    try:
        assert f"plugin 'fast' from ganzoo-fast skipped: {said}" in " ".join(cli("plugins").output.split())
        from ganzoo.registry import get_registry

        assert "fast" not in get_registry().extensions
    finally:
        sys.modules.pop("ganzoo_fast", None)
