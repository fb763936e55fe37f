"""``ganzoo info MODEL`` offers exactly the extensions ``ganzoo train MODEL --with NAME`` takes: every built-in model
and extension, each listed pair training for an epoch and each pair left out refused in one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_png_images

MODELS = ("gan", "dcgan", "lsgan", "wgan", "wgan-gp", "began", "cgan", "cdcgan", "acgan", "cyclegan", "pix2pix")
EXTENSIONS = ("ema", "spectral-norm", "unrolled", "pacgan", "minibatch-discrimination")

#: the cheapest settings of an extension that still run it
TINY_SETTINGS = {"unrolled": ("--set", "unroll_steps=1"),
                 "minibatch-discrimination": ("--set", "mbd_kernels=2", "--set", "mbd_kernel_dim=2")}


def _one_line(result) -> str:
    return " ".join(result.output.split())


def listed_extensions(cli, model: str) -> set[str]:
    """The extension names under 'extensions (--with NAME):' in ``ganzoo info MODEL``."""
    section = cli("info", model).output.split("extensions (--with", 1)[1].split("pretrained (", 1)[0]
    return {line[2:].split(":", 1)[0] for line in section.splitlines() if line.startswith("  ") and ":" in line
            and not line.startswith("   ")}


def tiny_data(model: str, root: Path) -> tuple[str, ...]:
    """The ``--data`` options and sizes for an epoch of one step of ``model``: the smallest image folder its task
    takes, at 8x8 where the model allows it (on ring8, an epoch of minibatch discrimination on an MLP takes half a
    minute, at a batch small enough for its distances between every two samples)."""
    from PIL import Image

    if model in ("cgan", "cdcgan", "acgan"):
        for index, name in enumerate(("cat", "dog")):
            write_png_images(root / "labelled" / name, 2, size=8, mode="L", seed=index)
        return ("--data", str(root / "labelled"), "--batch-size", "4", "--image-size", "8")
    if model == "cyclegan":
        for index, side in enumerate(("trainA", "trainB")):
            write_png_images(root / "unpaired" / side, 2, seed=index)
        return ("--data", str(root / "unpaired"), "--image-size", "24", "--set", "g_width=4", "--set", "d_width=4",
                "--set", "blocks=1")
    if model == "pix2pix":
        (root / "paired" / "train").mkdir(parents=True)
        for index in range(2):
            Image.new("RGB", (32, 16), (40 * index, 90, 200)).save(root / "paired" / "train" / f"pair_{index}.png")
        return ("--data", str(root / "paired"), "--image-size", "32", "--set", "g_width=4", "--set", "d_width=4")
    write_png_images(root / "images", 4, size=8)
    return ("--data", str(root / "images"), "--batch-size", "4", "--image-size", "8")


@pytest.mark.parametrize("extension", EXTENSIONS)
@pytest.mark.parametrize("model", MODELS)
def test_every_extension_info_lists_trains_and_every_other_is_refused_in_one_sentence(cli, tmp_path, model, extension):
    offered = extension in listed_extensions(cli, model)
    run = tmp_path / "run"
    tiny = TINY_SETTINGS.get(extension, ()) if offered else ()  # a refused extension's settings are refused first
    result = cli("train", model, *tiny_data(model, tmp_path), "--with", extension, *tiny,
                 "--epochs", "1", "--device", "cpu", "--no-progress", "--out", run, ok=False)
    if offered:
        assert result.exit_code == 0, result.output
        assert (run / "generator.safetensors").exists()
    else:
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert _one_line(result).startswith(f"Error: --with {extension} ") and _one_line(result).endswith(
            f"drop --with {extension}."), result.output
        assert not run.exists()


@pytest.mark.parametrize("extension", ["pacgan", "minibatch-discrimination"])
def test_began_refuses_the_extensions_that_change_a_classifier_and_info_leaves_them_and_their_settings_out(
        cli, tmp_path, extension):
    result = cli("train", "began", "--data", "ring8", "--with", extension, "--out", tmp_path / "run", "--no-progress",
                 ok=False)
    assert result.exit_code == 1 and _one_line(result) == (
        f"Error: --with {extension} cannot be added to the autoencoder discriminator of 'began' (it works only on a "
        f"classifier discriminator); drop --with {extension}.")
    assert not (tmp_path / "run").exists()
    info = cli("info", "began").output
    assert extension not in listed_extensions(cli, "began")
    assert not any(name in info for name in ("pack ", "mbd_kernels", "mbd_kernel_dim"))
    setting = "pack=3" if extension == "pacgan" else "mbd_kernels=8"
    result = cli("train", "began", "--data", "ring8", "--set", setting, "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and _one_line(result) == (
        f"Error: {setting.split('=')[0]} tunes --with {extension}, which model 'began' cannot use; drop --set "
        f"{setting.split('=')[0]} ('ganzoo info began' lists the extensions it can use).")


def test_a_third_party_extension_limited_to_a_kind_of_discriminator_is_left_out_of_the_others_info(
        cli, tmp_path, monkeypatch):
    """``ExtensionSpec.discriminators`` is declarative for plugins too: a model of another kind refuses the extension
    in one sentence, and ``ganzoo info`` leaves it out there and lists it where it applies."""
    from conftest import make_distribution
    from ganzoo.plugin_manager import reset

    source = ("from ganzoo import hookimpl\nfrom ganzoo.specs import ExtensionSpec\n\n@hookimpl\n"
              "def register_extensions(register):\n"
              "    register(ExtensionSpec('autoencoder-only', 'acts on an autoencoder D', "
              "discriminators=('autoencoder',)))\n")
    make_distribution(tmp_path / "site", "ganzoo-aeonly", "ganzoo_aeonly", source, "aeonly")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    assert "autoencoder-only" in listed_extensions(cli, "began")
    assert "autoencoder-only" not in listed_extensions(cli, "gan")
    result = cli("train", "gan", "--data", "ring8", "--with", "autoencoder-only", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and _one_line(result) == (
        "Error: --with autoencoder-only cannot be added to the classifier discriminator of 'gan' (it works only on "
        "an autoencoder discriminator); drop --with autoencoder-only.")
