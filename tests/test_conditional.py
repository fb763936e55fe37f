"""Conditional families (cgan, cdcgan, acgan): shapes, label plumbing, training steps, class-conditioned sampling."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import write_png_images

CLASSES = ("cat", "dog", "owl")
SIDE = 16
CONDITIONAL = ("cgan", "cdcgan", "acgan")
SMALL = {"cgan": "hidden_dims=[32,64]", "cdcgan": "g_width=8", "acgan": "d_width=8"}
#: The widest a grid's legend column may be: 64 px of letters (a longer name is cut short) and 3 px either side.
NARROW = 70


def _write_labelled(folder, names=CLASSES):
    """One sub-folder of 16 grayscale 16x16 images per class in ``names`` (in sorted order): the i-th class has the
    same images whatever its name, so the same run on other names trains the same networks."""
    for index, name in enumerate(names):
        write_png_images(folder / name, 16, size=SIDE, mode="L", seed=index)
    return folder


@pytest.fixture
def labelled_folder(tmp_path):
    """Three classes (sub-folders) of 16 grayscale 16x16 images each."""
    return _write_labelled(tmp_path / "labelled")


def _train(cli, data, out, model_name: str = "cdcgan"):
    """``out``: a run of ``model_name`` trained on the CPU for one epoch (3 steps) on the class folders of ``data``."""
    cli("train", model_name, "--data", data, "--epochs", "1", "--out", out, "--no-progress", "--device", "cpu",
        "--set", "batch_size=16", "--set", SMALL[model_name])
    return out


def _samples(weights, model_name: str, per_class: int, seed: int = 0, device: str = "cpu"):
    """``per_class`` samples of every class (class 0's first) from the generator file ``weights``, drawn as
    'ganzoo sample --per-class' and the per-epoch picture draw them."""
    from ganzoo import sampling
    from ganzoo.weights import load_generator

    loaded = load_generator(weights, model_name, device)
    labels = sampling.per_class_labels(int(loaded.config["num_classes"]), per_class)
    return sampling.generate(loaded.model, loaded.config, loaded.module, len(labels), seed=seed, labels=labels).cpu()


def _plain_grid(samples, per_class: int) -> np.ndarray:
    """The grid of ``samples`` with one row per class as torchvision draws it, without a legend: the pixels the
    sample area of a grid with named rows must keep."""
    from torchvision.utils import save_image

    buffer = io.BytesIO()
    save_image(samples, buffer, format="png", nrow=per_class, normalize=True, value_range=(-1, 1), padding=2)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _legend_width(picture: np.ndarray, plain: np.ndarray) -> int:
    """How much wider ``picture`` is than ``plain``, the same grid without a legend: a narrow column at the left,
    right of which the grid's pixels are all unchanged."""
    width = picture.shape[1] - plain.shape[1]
    assert picture.shape[0] == plain.shape[0] and 0 < width <= NARROW
    assert np.array_equal(picture[:, width:], plain)
    return width


def _legend_cells(picture: np.ndarray, width: int) -> list[np.ndarray]:
    """The legend column beside each grid row (of 16 px images, 2 px apart), each with dark letters on white."""
    rows = (picture.shape[0] - 2) // (SIDE + 2)
    cells = [picture[2 + row * (SIDE + 2) : 2 + row * (SIDE + 2) + SIDE, :width] for row in range(rows)]
    for cell in cells:
        assert (cell.max(axis=2) < 100).any() and (cell.min(axis=2) == 255).mean() > 0.5
    return cells


def _picture(path) -> np.ndarray:
    """The RGB pixels of the picture at ``path``."""
    return np.asarray(Image.open(path).convert("RGB"))


def _config(model_name: str, names=CLASSES, **overrides):
    from ganzoo.config import resolve_config
    from ganzoo.registry import get_model
    from ganzoo.specs import DatasetInfo

    info = DatasetInfo("images", channels=1, image_size=SIDE, num_classes=len(CLASSES), class_names=names)
    model = get_model(model_name)
    return model, resolve_config(model, info, overrides)


@pytest.fixture
def generator_file(tmp_path):
    """Write an untrained generator file of ``model_name`` with the class ``names`` (weights are random, the same
    whatever the names, but the plumbing is real)."""
    import torch

    from ganzoo.build import build_generator
    from ganzoo.weights import save_network

    def write(model_name: str, names=CLASSES):
        torch.manual_seed(0)
        model, config = _config(model_name, names)
        path = tmp_path / f"{model_name}-{len(names)}-names.safetensors"
        save_network(path, model, config, build_generator(model, config), "labelled", 1, 1)
        return path

    return write


@pytest.mark.parametrize("model_name", CONDITIONAL)
def test_networks_take_labels(model_name):
    import torch

    from ganzoo.build import build_discriminator, build_generator

    model, config = _config(model_name)
    assert config["num_classes"] == 3 and config["class_names"] == list(CLASSES)
    generator, discriminator = build_generator(model, config), build_discriminator(model, config)
    z, labels = torch.randn(5, config["latent_dim"]), torch.tensor([0, 1, 2, 1, 0])
    fake = generator(z, labels)
    assert fake.shape == (5, 1, SIDE, SIDE) and fake.abs().max() <= 1
    assert not torch.allclose(generator(z, labels), generator(z, (labels + 1) % 3))  # the label changes the image
    if model_name == "acgan":
        validity, classes = discriminator(fake)
        assert validity.shape == (5,) and classes.shape == (5, 3)
    else:
        assert discriminator(fake, labels).shape == (5,)


@pytest.mark.parametrize("model_name", CONDITIONAL)
def test_a_few_training_steps_write_one_row_per_class(cli, labelled_folder, tmp_path, model_name):
    import json

    out = tmp_path / model_name
    extra = ["--set", "classify_fakes=True"] if model_name == "acgan" else []  # the paper's D term on fakes, off by default
    cli("train", model_name, "--data", labelled_folder, "--epochs", "1", "--out", out, "--no-progress",
        "--set", "batch_size=16", "--set", "log_every=1", "--set", SMALL[model_name], *extra)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [row for row in rows if row["event"] == "log"]
    assert len(logged) == 3 and all(np.isfinite(v) for row in logged for v in row.values() if isinstance(v, float))
    if model_name == "acgan":
        assert {"d_class_real", "d_class_fake", "g_class", "acc_real"} <= set(logged[0])
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["class_names"] == list(CLASSES)
    # 3 rows (one per class) of 8 images, 16 px + 2 px padding each, beside a legend column naming each row's class
    plain = _plain_grid(_samples(out / "generator.safetensors", model_name, 8, run["config"]["seed"], run["device"]), 8)
    assert plain.shape[:2] == (3 * 18 + 2, 8 * 18 + 2)
    picture = _picture(out / "samples" / "epoch_001.png")
    cat, dog, owl = _legend_cells(picture, _legend_width(picture, plain))
    assert not np.array_equal(cat, dog) and not np.array_equal(dog, owl) and not np.array_equal(cat, owl)


@pytest.mark.parametrize(("model_name", "loss"), [("cgan", "wgan-gp"), ("acgan", "dragan"), ("cdcgan", "hinge")])
def test_other_losses_and_their_penalties_work(cli, labelled_folder, tmp_path, model_name, loss):
    import json

    out = tmp_path / model_name
    cli("train", model_name, "--data", labelled_folder, "--epochs", "1", "--out", out, "--no-progress", "--loss", loss,
        "--set", "batch_size=16", "--set", "log_every=1", "--set", SMALL[model_name])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = next(row for row in rows if row["event"] == "log")
    if loss != "hinge":
        assert np.isfinite(logged["gradient_penalty"])


def test_the_fast_preset_leaves_reuse_fake_off_for_conditional_models(cli, labelled_folder, tmp_path):
    import json

    out = tmp_path / "fast"
    cli("train", "cgan", "--data", labelled_folder, "--epochs", "1", "--out", out, "--no-progress", "--fast",
        "--device", "cpu", "--set", "batch_size=16", "--set", SMALL["cgan"])
    config = json.loads((out / "run.json").read_text())["config"]
    assert (config["precision"], config["reuse_fake"]) == ("bf16", False)
    assert [row for row in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if row["event"] == "epoch"]


@pytest.mark.parametrize("key, value", [("r1_gamma", "0.1"), ("instance_noise", "0.1"), ("d_weight_penalty", "0.1"),
                                        ("reuse_fake", "True"), ("unroll_steps", "3"), ("pack", "3")])
def test_remedies_a_conditional_model_would_ignore_are_refused(cli, labelled_folder, tmp_path, key, value):
    run = tmp_path / "run"
    result = cli("train", "cgan", "--data", labelled_folder, "--set", f"{key}={value}", "--out", run, "--no-progress", ok=False)
    assert result.exit_code == 1
    drop = "it" if key in ("r1_gamma", "instance_noise", "d_weight_penalty", "reuse_fake") else f"--set {key}"
    assert (f"{key} works only in the standard step of unconditional models; 'cgan' (conditional) computes its own "
            f"losses and would ignore it, so drop {drop}.") in " ".join(result.output.split())
    assert not (run / "checkpoints").exists()


def test_datasets_without_labels_are_refused(cli, image_folder, tmp_path):
    result = cli("train", "cgan", "--data", image_folder, "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1
    assert "needs a dataset with class labels" in " ".join(result.output.split())


@pytest.mark.parametrize("model_name", ["cgan", "acgan"])
def test_sampling_a_class_feeds_that_class_to_the_generator(generator_file, model_name):
    import torch

    from ganzoo import sampling
    from ganzoo.weights import load_generator

    loaded = load_generator(generator_file(model_name), model_name)
    seen = []
    if model_name == "acgan":  # the embedding is looked up with the requested class
        loaded.module.embed.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    else:  # the MLP's input ends with the one-hot code of the requested class
        loaded.module.inner.register_forward_pre_hook(lambda module, args: seen.append(args[0][:, -3:].argmax(1)))
    labels = sampling.requested_labels(loaded.model, loaded.config, 6, "owl")
    sampling.generate(loaded.model, loaded.config, loaded.module, 6, labels=labels)
    assert torch.equal(torch.cat(seen), torch.full((6,), 2))


def test_cli_class_by_name_and_index_match_the_generator(cli, generator_file, tmp_path):
    import torch

    from ganzoo import sampling
    from ganzoo.weights import load_generator

    path = generator_file("cgan")
    cli("sample", "cgan", "--weights", path, "--class", "dog", "--num", "5", "--out", tmp_path / "dogs.npz")
    cli("sample", "cgan", "--weights", path, "--class", "1", "--num", "5", "--out", tmp_path / "ones.npz")
    dogs, ones = np.load(tmp_path / "dogs.npz", allow_pickle=False), np.load(tmp_path / "ones.npz", allow_pickle=False)
    assert dogs["labels"].tolist() == [1] * 5 and np.array_equal(dogs["images"], ones["images"])
    loaded = load_generator(path, "cgan")
    with torch.inference_mode():
        z = sampling.noise(5, loaded.config["latent_dim"], 0)
        expected = sampling.to_uint8(loaded.module(z, torch.ones(5, dtype=torch.int64))).numpy()
        other = sampling.to_uint8(loaded.module(z, torch.zeros(5, dtype=torch.int64))).numpy()
    assert np.array_equal(dogs["images"], expected) and not np.array_equal(dogs["images"], other)


@pytest.mark.parametrize("wanted", ["3", "horse", "-1", "\u00b2"])  # "²" is a digit to str.isdigit, not to int()
def test_bad_class_lists_the_valid_ones(cli, generator_file, tmp_path, wanted):
    result = cli("sample", "cgan", "--weights", generator_file("cgan"), "--class", wanted, "--out", tmp_path / "x.png",
                 ok=False)
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert f"Unknown class '{wanted}'" in message and "0=cat, 1=dog, 2=owl" in message
    assert len(result.output.strip().splitlines()) <= 3


def test_per_class_grid_and_npz_labels(cli, generator_file, tmp_path):
    path = generator_file("acgan")
    cli("sample", "acgan", "--weights", path, "--per-class", "4", "--device", "cpu", "--out", tmp_path / "grid.png")
    _legend_width(_picture(tmp_path / "grid.png"), _plain_grid(_samples(path, "acgan", 4), 4))
    cli("sample", "acgan", "--weights", path, "--per-class", "2", "--out", tmp_path / "grid.npz")
    arrays = np.load(tmp_path / "grid.npz", allow_pickle=False)
    assert arrays["labels"].tolist() == [0, 0, 1, 1, 2, 2] and arrays["images"].shape == (6, 1, SIDE, SIDE)
    cli("sample", "acgan", "--weights", path, "--num", "7", "--out", tmp_path / "mixed.npz")
    assert np.load(tmp_path / "mixed.npz", allow_pickle=False)["labels"].tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_per_class_grid_names_each_row_beside_the_samples_and_only_the_png_changes(cli, labelled_folder, tmp_path):
    run = _train(cli, labelled_folder, tmp_path / "run")
    for out in ("grid.png", "grid.npz", "pictures"):
        cli("sample", "cdcgan", "--weights", run, "--per-class", "4", "--device", "cpu", "--out", tmp_path / out)
    samples = _samples(run / "generator.safetensors", "cdcgan", 4)
    picture = _picture(tmp_path / "grid.png")
    cat, dog, owl = _legend_cells(picture, _legend_width(picture, _plain_grid(samples, 4)))
    assert not np.array_equal(cat, dog) and not np.array_equal(dog, owl) and not np.array_equal(cat, owl)
    from ganzoo.sampling import to_uint8

    arrays = np.load(tmp_path / "grid.npz", allow_pickle=False)
    assert np.array_equal(arrays["images"], to_uint8(samples).numpy())  # the arrays, as they were: no legend
    pictures = sorted((tmp_path / "pictures").iterdir())
    assert [path.name for path in pictures[:5]] == ["000000-cat.png", "000001-cat.png", "000002-cat.png",
                                                    "000003-cat.png", "000004-dog.png"]
    assert np.array_equal(np.stack([np.asarray(Image.open(path))[None] for path in pictures]), arrays["images"])


@pytest.mark.parametrize("names", [("ant", "bee", "cow"), ("a-very-long-name-for-the-first-class", "dog", "owl")])
def test_other_class_names_give_other_legends_beside_the_same_samples(cli, labelled_folder, tmp_path, names):
    """The legend gives the names the data's folders give the classes; a long one is cut short (``_legend_width``
    holds every column to the narrow width), with the other classes' still whole."""
    grids = []
    for folder in (labelled_folder, _write_labelled(tmp_path / "renamed", names)):
        run = _train(cli, folder, tmp_path / f"run-{folder.name}")
        cli("sample", "cdcgan", "--weights", run, "--per-class", "4", "--device", "cpu",
            "--out", tmp_path / f"{folder.name}.png")
        grids.append(_picture(tmp_path / f"{folder.name}.png"))
    plain = _plain_grid(_samples(tmp_path / "run-labelled" / "generator.safetensors", "cdcgan", 4), 4)
    first, other = (_legend_cells(grid, _legend_width(grid, plain)) for grid in grids)
    assert not np.array_equal(first[0], other[0])
    if names[1:] == CLASSES[1:]:  # dog and owl: the same letters, on their rows of a wider column
        assert np.array_equal(first[1], other[1][:, : first[1].shape[1]]) and (other[1][:, first[1].shape[1]:] == 255).all()
    else:
        assert not np.array_equal(first[1], other[1]) and not np.array_equal(first[2], other[2])


@pytest.mark.parametrize(("names", "drawn_as"), [(("café", "dog", "owl"), ("cafe", "dog", "owl")),
                                                 (("犬", "狐", "猫"), ("0", "1", "2"))])
def test_names_the_built_in_font_lacks_are_drawn_without_accents_or_by_index(cli, tmp_path, names, drawn_as):
    """Pillow's built-in font draws printable ASCII in every version: "café" is drawn "cafe", and a name of which no
    letter is left ("猫") is drawn as its class index, as 'ganzoo sample --class' takes it."""
    grids = []
    for folder in (_write_labelled(tmp_path / "named", names), _write_labelled(tmp_path / "drawn", drawn_as)):
        run = _train(cli, folder, tmp_path / f"run-{folder.name}")
        cli("sample", "cdcgan", "--weights", run, "--per-class", "4", "--device", "cpu",
            "--out", tmp_path / f"{folder.name}.png")
        grids.append(_picture(tmp_path / f"{folder.name}.png"))
    plain = _plain_grid(_samples(tmp_path / "run-named" / "generator.safetensors", "cdcgan", 4), 4)
    _legend_cells(grids[0], _legend_width(grids[0], plain))
    assert np.array_equal(grids[0], grids[1])


def test_a_generator_that_recorded_no_class_names_names_its_rows_by_index(cli, generator_file, tmp_path):
    """A plugin's dataset may declare its classes by number alone (``DatasetInfo(num_classes=3)``)."""
    unnamed, numbered = generator_file("cgan", ()), generator_file("cgan", ("0", "1", "2"))
    for weights in (unnamed, numbered):
        cli("sample", "cgan", "--weights", weights, "--per-class", "3", "--device", "cpu", "--out", weights.with_suffix(".png"))
    picture = _picture(unnamed.with_suffix(".png"))
    _legend_cells(picture, _legend_width(picture, _plain_grid(_samples(unnamed, "cgan", 3), 3)))
    assert np.array_equal(picture, _picture(numbered.with_suffix(".png")))


def test_class_options_are_refused_for_unconditional_models_and_together(cli, generator_file, tmp_path):
    result = cli("sample", "gan", "--weights", tmp_path / "none.safetensors", "--class", "1", "--out", tmp_path / "x.png",
                 ok=False)
    assert result.exit_code == 2 and "unconditional" in result.output
    result = cli("sample", "cgan", "--weights", generator_file("cgan"), "--class", "1", "--per-class", "2",
                 "--out", tmp_path / "x.png", ok=False)
    assert result.exit_code == 2 and "not both" in result.output


def test_shipped_digit_classifier_and_conditional_accuracy():
    import torch

    from ganzoo.metrics.classifier import (conditional_accuracy, conditional_scores, load_classifier, predict,
                                           shipped_classifier_path)
    from ganzoo.safefile import read_metadata

    path = shipped_classifier_path()
    assert path.stat().st_size < 1_000_000 and float(read_metadata(path)["test_accuracy"]) >= 0.99
    classifier = load_classifier()
    images = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    predicted = predict(classifier, images)
    assert conditional_accuracy(images, predicted, classifier) == 1.0
    wrong = conditional_scores(images, (predicted + 1) % 10, classifier)
    assert wrong.accuracy == 0.0 and not any(wrong.present) and not wrong.all_present


@pytest.mark.parametrize("change", ["added", "renamed"])
def test_resuming_a_conditional_run_whose_class_folders_changed_is_one_sentence(cli, labelled_folder, tmp_path, change):
    """A class added would crash the networks (an index they have no row for); a class renamed would go on teaching
    one name another's pictures, since indices follow the sorted folder names."""
    run = tmp_path / "run"
    cli("train", "cgan", "--data", labelled_folder, "--epochs", "1", "--batch-size", "16", "--set", SMALL["cgan"],
        "--out", run, "--no-progress", "--device", "cpu")
    if change == "added":
        write_png_images(labelled_folder / "ant", 16, size=SIDE, mode="L", seed=9)
        now = "4 classes (ant, cat, dog, owl)"
    else:
        (labelled_folder / "cat").rename(labelled_folder / "zebra")  # cat's pictures are index 2 now, dog's 0
        now = "3 classes (dog, owl, zebra)"
    before = sorted(path.name for path in (run / "checkpoints").iterdir())
    result = cli("train", "cgan", "--resume", run, "--epochs", "2", "--no-progress", "--device", "cpu", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert " ".join(result.output.split()) == (
        f"Error: The classes of {labelled_folder} changed since this run began: it was trained on 3 classes (cat, dog, "
        f"owl), and the data now has {now}; put the class folders back as they were to resume, or start a new run on "
        "the data as it is.")
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == before
