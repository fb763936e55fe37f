"""Outputs that cannot be written end in one sentence (path, reason, what to do) and exit 1, before the work.

A file standing where a folder should be makes an unwritable path on every system and for every user (root
included), so the tests use that rather than /proc or permissions. The same file fixes the option checks of
``ganzoo sample`` (``--drs-quantile`` without ``--drs``; no "rows" for an .npz) and ``ganzoo translate``'s
split between unreadable inputs (skipped) and unwritable outputs (stop).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from ganzoo.errors import GanzooError


def last_line(result: Result) -> str:
    """The command's last output line, after checking it printed no traceback."""
    assert "Traceback" not in result.output
    return result.output.strip().splitlines()[-1]


def write_images(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` random 36x36 RGB PNGs in ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo_{index}.png" for index in range(count)]
    for path in paths:
        Image.fromarray(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(path)
    return paths


@pytest.fixture
def a_file(tmp_path) -> Path:
    """A plain file: any path below it cannot be created."""
    path = tmp_path / "afile"
    path.write_text("not a folder")
    return path


@pytest.fixture
def no_generating(monkeypatch):
    """Make generating samples fail loudly, so a test sees that a refusal came before it."""
    from ganzoo import sampling

    def refuse(*args, **kwargs):
        raise AssertionError("samples were generated before the output path was checked")

    monkeypatch.setattr(sampling, "generate", refuse)


# -- ganzoo sample ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".npz"])
def test_sample_below_a_file_stops_in_one_sentence_before_generating(cli, a_file, no_generating, suffix):
    out = a_file / "sub" / f"x{suffix}"
    result = cli("sample", "dcgan", "--pretrained", "dcgan-mnist", "--num", "10", "--out", out, ok=False)
    assert result.exit_code == 1
    assert last_line(result) == f"Error: Cannot write to {out} (Not a directory); point --out at a file in a writable folder."


@pytest.mark.parametrize("suffix", [".png", ".npz"])
def test_a_write_that_fails_after_the_check_is_one_sentence_too(a_file, suffix):
    import torch

    from ganzoo.sampling import write_samples

    out = a_file / f"x{suffix}"
    with pytest.raises(GanzooError, match=r"^Cannot write to .*afile/x\.\w+ \(Not a directory\); point --out at a file"):
        write_samples(out, torch.zeros(4, 2), "vectors")


def test_rejection_sampling_checks_the_output_before_sampling(cli, tmp_path, a_file, monkeypatch):
    from ganzoo import rejection

    run = tmp_path / "run"
    cli("train", "gan", "--data", "line-2d", "--epochs", "1", "--set", "hidden_dims=[8]", "--out", run,
        "--no-progress", "--device", "cpu")
    monkeypatch.setattr(rejection, "rejection_sample", lambda *a, **k: pytest.fail("sampled before checking --out"))
    out = a_file / "kept.npz"
    result = cli("sample", "gan", "--weights", run / "generator.safetensors", "--drs", "--out", out, ok=False)
    assert result.exit_code == 1
    assert last_line(result) == f"Error: Cannot write to {out} (Not a directory); point --out at a file in a writable folder."


@pytest.mark.parametrize("quantile", ["0.8", "0.5"])  # 0.5, the default value, given on purpose is refused too
def test_drs_quantile_without_drs_is_refused_in_one_sentence(cli, tmp_path, quantile):
    result = cli("sample", "gan", "--weights", tmp_path / "missing.safetensors", "--drs-quantile", quantile,
                 "--out", tmp_path / "x.npz", ok=False)
    assert result.exit_code == 2
    assert last_line(result) == "Error: --drs-quantile is read only for rejection sampling; add --drs or drop it."


def test_drs_on_pretrained_weights_is_refused_with_or_without_a_discriminator(cli, tmp_path):
    (tmp_path / "d.safetensors").write_bytes(b"a discriminator of another run")
    for extra in ((), ("--discriminator", tmp_path / "d.safetensors")):  # none could match the shipped generator
        result = cli("sample", "dcgan", "--pretrained", "dcgan-mnist", "--drs", *extra, "--out", tmp_path / "x.npz",
                     ok=False)
        assert result.exit_code == 2 and last_line(result) == (
            "Error: Pretrained weights ship the generator only, and --drs needs the discriminator trained with it; "
            "drop --drs, or use --weights of a 'ganzoo train' run, whose folder holds both.")


@pytest.mark.parametrize("suffix, rows", [(".npz", False), (".png", True)])
def test_per_class_mentions_rows_only_for_a_picture(cli, tmp_path, suffix, rows):
    out = tmp_path / f"grid{suffix}"
    result = cli("sample", "cgan", "--pretrained", "cgan-mnist", "--per-class", "1", "--device", "cpu", "--out", out)
    assert out.is_file() and "(1 per class" in result.output
    assert ("one row per class" in result.output) is rows


# -- ganzoo eval --------------------------------------------------------------------------------------


def test_eval_json_below_a_file_stops_in_one_sentence(cli, tmp_path, a_file):
    points = tmp_path / "points.npz"
    np.savez(points, samples=np.zeros((10, 2), dtype=np.float32))
    out = a_file / "scores.json"
    result = cli("eval", "--samples", points, "--data", "ring8", "--json", out, ok=False)
    assert result.exit_code == 1
    assert last_line(result) == f"Error: Cannot write to {out} (Not a directory); point --json at a file in a writable folder."
    assert "modes" not in result.output  # refused before scoring


def test_a_command_that_fails_after_the_check_leaves_no_new_folder(cli, tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not an npz")
    result = cli("eval", "--samples", broken, "--data", "ring8", "--json", tmp_path / "new" / "scores.json", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert not (tmp_path / "new").exists()  # the check probed the nearest existing folder and made nothing


def test_eval_checks_the_json_path_before_generating(cli, a_file, no_generating):
    out = a_file / "scores.json"
    result = cli("eval", "dcgan", "--pretrained", "dcgan-mnist", "--data", "mnist", "--json", out, ok=False)
    assert result.exit_code == 1 and "Cannot write to" in last_line(result)


# -- ganzoo translate ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cyclegan(tmp_path_factory) -> Path:
    """The smallest CycleGAN generator file: 32 px, width 4, one residual block, one epoch of 3 images."""
    from ganzoo.cli.main import cli as group

    root = tmp_path_factory.mktemp("cyclegan")
    write_images(root / "A", 3, seed=1)
    write_images(root / "B", 3, seed=2)
    env = {"GANZOO_CACHE": str(root / "cache"), "GANZOO_DATA": str(root / "data")}
    args = ["train", "cyclegan", "--data-a", root / "A", "--data-b", root / "B", "--image-size", "32", "--epochs", "1",
            "--set", "g_width=4", "--set", "d_width=4", "--set", "blocks=1", "--no-progress", "--device", "cpu",
            "--out", root / "run"]
    result = CliRunner().invoke(group, [str(a) for a in args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root / "run" / "generator.safetensors"


def translate(cli, weights: Path, source: Path, out: Path) -> Result:
    return cli("translate", "cyclegan", "--weights", weights, "--input", source, "--out", out, "--device", "cpu", ok=False)


def test_translate_into_a_folder_below_a_file_stops_in_one_sentence(cli, tmp_path, a_file, cyclegan):
    write_images(tmp_path / "photos", 2, seed=3)
    result = translate(cli, cyclegan, tmp_path / "photos", a_file / "z")
    assert result.exit_code == 1
    assert last_line(result) == f"Error: Cannot write to {a_file / 'z'} (Not a directory); choose a writable --out folder."
    assert "skipped" not in result.output


def test_a_result_that_cannot_be_written_stops_rather_than_skips(cli, tmp_path, cyclegan):
    write_images(tmp_path / "photos", 2, seed=3)
    out = tmp_path / "out"
    (out / "photo_0.png").mkdir(parents=True)  # a folder where the first result goes
    result = translate(cli, cyclegan, tmp_path / "photos", out)
    assert result.exit_code == 1
    assert last_line(result) == f"Error: Cannot write to {out / 'photo_0.png'} (Is a directory); choose a writable --out folder."
    assert "skipped" not in result.output and not (out / "photo_1.png").exists()


def test_unreadable_inputs_are_skipped_and_all_unreadable_fails(cli, tmp_path, cyclegan):
    photos = tmp_path / "photos"
    write_images(photos, 1, seed=3)
    (photos / "broken.png").write_bytes(b"not a png")
    result = translate(cli, cyclegan, photos, tmp_path / "out")
    text = " ".join(result.output.split())
    assert result.exit_code == 0 and f"skipped {photos / 'broken.png'}" in text and "not a readable image" in text
    assert "translated 1 image(s)" in text and (tmp_path / "out" / "photo_0.png").is_file()

    (photos / "photo_0.png").write_bytes(b"damaged")
    result = translate(cli, cyclegan, photos, tmp_path / "out2")
    assert result.exit_code == 1 and result.output.count("not a readable image") == 2
    assert last_line(result) == (f"Error: Translated nothing: no image in {photos} could be read (see the skipped lines "
                                 "above); pass readable image files.")
