"""``ganzoo train cyclegan --data-a DIR --data-b DIR``: two plain image folders as an unpaired set,
recorded so ``--resume`` finds them, and one clear sentence for each misuse."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from test_translation import TINY, one_thread, write_images  # noqa: F401  (one_thread: autouse, one torch thread)

TRAIN = ("--image-size", "32", "--set", "blocks=1", *TINY, "--no-progress", "--device", "cpu")


@pytest.fixture
def domains(tmp_path) -> tuple[Path, Path]:
    write_images(tmp_path / "horses", 3, (40, 36), seed=1)
    write_images(tmp_path / "zebras", 4, (36, 36), seed=2)
    return tmp_path / "horses", tmp_path / "zebras"


def test_cyclegan_trains_on_two_folders_and_resumes_from_elsewhere(cli, domains, tmp_path, monkeypatch):
    from ganzoo.safefile import read_metadata

    horses, zebras = domains
    monkeypatch.chdir(tmp_path)
    cli("train", "cyclegan", "--data-a", "horses", "--data-b", "zebras", "--epochs", "1", *TRAIN)
    run = tmp_path / "runs" / "cyclegan-horses2zebras"  # the default --out names both domains
    assert (run / "generator.safetensors").is_file()
    recorded = f"{horses.resolve()} | {zebras.resolve()}"
    assert json.loads((run / "run.json").read_text())["dataset"] == recorded
    assert read_metadata(run / "generator.safetensors")["dataset"] == recorded
    steps = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if r["event"] == "epoch"] == [4]  # max(3, 4) steps per epoch

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the folders were recorded as absolute paths
    cli("train", "cyclegan", "--resume", run, "--epochs", "2", "--set", "data_workers=0", "--no-progress")
    assert read_metadata(run / "generator.safetensors")["epoch"] == "2"

    next(horses.iterdir()).unlink()  # the smaller domain: the epoch length (4 zebras) stays, the data changed
    result = cli("train", "cyclegan", "--resume", run, "--epochs", "3", "--set", "data_workers=0", "--no-progress")
    assert ("note: the data changed since the checkpoint (7 samples then, 6 now); the run goes on with it, not "
            "exactly as it would have") in " ".join(result.output.split())

    shutil.move(horses, tmp_path / "moved")
    result = cli("train", "cyclegan", "--resume", run, "--epochs", "4", "--no-progress", ok=False)
    assert (f"Error: {run} was trained on the domain-A folder {horses.resolve()}, which is gone; put it back there, or "
            f"give both folders, as they are now, with --data-a and --data-b to resume it.") in " ".join(result.output.split())
    cli("train", "cyclegan", "--resume", run, "--data-a", tmp_path / "moved", "--data-b", zebras, "--epochs", "4",
        "--set", "data_workers=0", "--no-progress")
    assert read_metadata(run / "generator.safetensors")["epoch"] == "4"
    assert read_metadata(run / "generator.safetensors")["dataset"] == f"{(tmp_path / 'moved').resolve()} | {zebras.resolve()}"


@pytest.mark.parametrize("model, args, message", [
    ("cyclegan", ("--data-a", "{a}"), "--data-a needs --data-b too"),
    ("cyclegan", ("--data-b", "{b}"), "--data-b needs --data-a too"),
    ("cyclegan", ("--data", "{a}", "--data-a", "{a}", "--data-b", "{b}"), "either --data or the two folders"),
    ("cyclegan", ("--data-a", "{a}/missing", "--data-b", "{b}"), "domain-A folder {a}/missing does not exist"),
    ("cyclegan", ("--data-a", "{a}", "--data-b", "{empty}"), "domain-B folder {empty} holds no images"),
    ("cyclegan", ("--data-a", "{a}/photo_00.png", "--data-b", "{b}"),
     "Error: The domain-A folder {a}/photo_00.png is a file, not a folder; give the folder holding domain A's images "
     "(this file lies in {a})."),
    ("cyclegan", ("--data-a", "{a}", "--data-b", "{a}/", "--epochs", "1", *TRAIN),  # a quick run if not refused
     "Error: --data-a and --data-b name the same folder {a}; give one folder per domain."),
    ("cyclegan", ("--data-a", "{a}", "--data-b", "{foals}", "--epochs", "1", *TRAIN),
     "Error: The domain-B folder {foals} lies inside the domain-A folder {a}, which is read with its subfolders, so "
     "domain A would hold domain B's images too; give two separate folders."),
    ("pix2pix", ("--data-a", "{a}", "--data-b", "{b}"), "pix2pix trains on paired images"),
    ("dcgan", ("--data-a", "{a}", "--data-b", "{b}"), "dcgan takes --data"),
    ("cyclegan", ("--data-a", "{a}", "--data-b", "{b}", "--image-size", "20"),
     "CycleGAN needs an image side divisible by 4 and at least 24 (64, 128, 256), got 20; choose such a side with --image-size."),
])
def test_two_folder_misuse_is_one_clear_sentence(cli, domains, tmp_path, model, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    write_images(domains[0] / "foals", 2, (36, 36), seed=3)  # a sub-folder of domain A's images
    names = {"a": domains[0].resolve(), "b": domains[1].resolve(), "empty": (tmp_path / "empty").resolve(),
             "foals": (domains[0] / "foals").resolve()}
    result = cli("train", model, *(a.format(**names) for a in args), "--out", tmp_path / "run", ok=False)
    output = " ".join(result.output.split())
    assert result.exit_code == 1 and message.format(**names) in output, output
    assert output.startswith("Error:") and output.count(". ") == 0  # one sentence, no traceback
    assert not (tmp_path / "run").exists()


def test_an_image_size_whose_largest_layer_cannot_fit_is_refused_before_training(cli, domains, tmp_path):
    """On the CPU the system kills a process that outgrows the memory rather than torch raising, so a side far
    too large is measured on the meta device and refused before any network or image takes memory."""
    horses, zebras = domains
    result = cli("train", "cyclegan", "--data-a", horses, "--data-b", zebras, "--image-size", 65536, "--out",
                 tmp_path / "run", *TRAIN[2:], ok=False)  # TRAIN less its --image-size
    message = " ".join(result.output.split())
    assert result.exit_code == 1 and re.fullmatch(
        r"Error: --image-size 65536 with a batch of 1 needs at least [0-9.]+ GiB for the generator's largest layer "
        r"alone, more than the [0-9.]+ GiB free on cpu; use a smaller --image-size or --batch-size\.", message), message
    assert not (tmp_path / "run").exists()


def test_the_progress_lines_show_every_cyclegan_term(cli, domains, tmp_path):
    """The cycle and identity terms, CycleGAN's largest, come last of its ten: they were cut from the lines."""
    horses, zebras = domains
    result = cli("train", "cyclegan", "--data-a", horses, "--data-b", zebras, "--epochs", "1", "--out", tmp_path / "run",
                 *(arg for arg in TRAIN if arg != "--no-progress"), "--set", "log_every=1")
    for term in ("d_a_real", "g_ab_adv", "cycle_a", "cycle_b", "identity_ab", "identity_ba"):
        assert f"{term} " in result.output, term


def test_a_folder_of_two_sub_folders_says_which_is_domain_a(cli, domains, tmp_path):
    horses, zebras = domains
    both = tmp_path / "both"
    shutil.copytree(zebras, both / "zebras")
    shutil.copytree(horses, both / "horses")
    shutil.copy(next(horses.iterdir()), both / "stray.png")  # beside the domains, in neither: left out, said so
    result = cli("train", "cyclegan", "--data", both, "--epochs", "1", "--out", tmp_path / "run", *TRAIN)
    assert ("domain A is horses/ (3 images) and domain B is zebras/ (4 images), in name order: AtoB turns horses into "
            "zebras") in " ".join(result.output.split())
    assert (f"1 image lies directly in {both} (stray.png), in neither domain's folder, and is left out"
            in " ".join(result.output.split()))
    named = cli("train", "cyclegan", "--data-a", horses, "--data-b", zebras, "--epochs", "1", "--out",
                tmp_path / "named", *TRAIN)
    assert "domain A is" not in named.output  # given by name, nothing to tell


def test_a_folder_of_three_sub_folders_names_them_and_the_options_for_two(cli, domains, tmp_path):
    horses, zebras = domains
    three = tmp_path / "three"
    for name, source in (("horses", horses), ("zebras", zebras), ("donkeys", horses)):
        shutil.copytree(source, three / name)
    result = cli("train", "cyclegan", "--data", three, "--epochs", "1", "--out", tmp_path / "run", *TRAIN, ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        f"Error: {three} is not an unpaired dataset: give a folder with trainA/ and trainB/ (CycleGAN layout) or with "
        "exactly two image sub-folders, one per domain; it has 3 (donkeys, horses, zebras), or give the two with "
        "--data-a DIR --data-b DIR.")


def test_images_beside_a_paired_sets_train_folder_are_left_out_saying_so(tmp_path):
    import numpy as np
    from PIL import Image

    from ganzoo.data.translation import load_translation

    root = tmp_path / "pairs"
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for path in (root / "train" / "0.png", root / "train" / "1.png", root / "cover.png", root / "notes.png"):
        Image.fromarray(rng.integers(0, 256, (8, 16, 3), dtype=np.uint8)).save(path)
    data = load_translation(root, "paired", "pairs", 16)
    assert len(data) == 2
    assert data.notes == (f"2 images lie directly in {root} (cover.png, notes.png), outside train/, and are left out",)
