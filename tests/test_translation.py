"""pix2pix and CycleGAN: networks, paired/unpaired data and jitter, image pool, lr schedule, training,
``ganzoo translate``, and the dataset download against an HTTP server on 127.0.0.1."""

from __future__ import annotations

import io
import socket
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.errors import GanzooError
from test_download import server  # noqa: F401  (the HTTP server on 127.0.0.1 that tests/test_download.py uses)

TINY = ("--set", "g_width=4", "--set", "d_width=4")


def write_images(folder: Path, count: int, size: tuple[int, int], seed: int) -> list[Path]:
    """``count`` random RGB images of ``size`` (width, height) in ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"photo_{index:02d}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks run faster on one thread than on two shared, busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def unpaired(tmp_path) -> Path:
    write_images(tmp_path / "u" / "trainA", 3, (40, 36), seed=1)
    write_images(tmp_path / "u" / "trainB", 5, (36, 36), seed=2)
    return tmp_path / "u"


@pytest.fixture
def paired(tmp_path) -> Path:
    write_images(tmp_path / "p" / "train", 3, (72, 36), seed=3)
    return tmp_path / "p"


# -- networks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size, dropouts, patches, blocks", [(64, 1, 6, 6), (128, 2, 14, 6), (256, 3, 30, 9)])
def test_architectures_keep_the_image_size(size, dropouts, patches, blocks):
    from ganzoo.plugins.cyclegan.networks import CycleDiscriminators, CycleGenerators, ResidualBlock
    from ganzoo.plugins.pix2pix.networks import PatchDiscriminator, UNetGenerator

    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        unet = UNetGenerator(3, size, 4)
        y = unet(x)
        assert y.shape == x.shape and y.abs().max() <= 1
        assert sum(isinstance(m, torch.nn.Dropout) for m in unet.modules()) == dropouts
        assert PatchDiscriminator(6, 4)(torch.cat([x, y], 1)).shape == (1, 1, patches, patches)
        cycle = CycleGenerators(3, size, 4)
        assert cycle.translate(x, "AtoB").shape == x.shape and cycle.translate(x, "BtoA").shape == x.shape
        assert sum(isinstance(m, ResidualBlock) for m in cycle.ab.modules()) == blocks
        assert CycleDiscriminators(3, 4).a(x).shape == (1, 1, patches, patches)


def test_cyclegan_networks_give_each_image_what_it_gets_alone_in_one_call():
    """The losses stack two inputs per network call; that is sound only while the networks treat each image alone."""
    from ganzoo.plugins.cyclegan.networks import CycleDiscriminators, CycleGenerators

    torch.manual_seed(0)
    first, second = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    for network in (CycleGenerators(3, 32, 8).ab, CycleDiscriminators(3, 8).a):
        network.train()
        together = network(torch.cat([first, second]))
        torch.testing.assert_close(together, torch.cat([network(first), network(second)]), rtol=1e-4, atol=1e-5)
        assert not torch.allclose(network(first), network(second))  # the inputs do lead to different outputs


def test_unet_skips_reach_the_output_and_bad_sizes_are_refused():
    from ganzoo.plugins.pix2pix.networks import UNetGenerator

    unet = UNetGenerator(3, 32, 4).eval()
    x = torch.zeros(1, 3, 32, 32)
    x2 = x.clone()
    x2[..., 5, 7] = 1.0
    with torch.no_grad():
        assert not torch.equal(unet(x), unet(x2))
    with pytest.raises(GanzooError, match="power-of-two"):
        UNetGenerator(3, 48, 4)


# -- data ----------------------------------------------------------------------------------------


def test_paired_data_loads_at_286_over_256_and_crops_at_random(tmp_path):
    from ganzoo.data.translation import load_size, load_translation

    rng = np.random.default_rng(0)
    (tmp_path / "train").mkdir()
    for index in range(4):
        Image.fromarray(rng.integers(0, 256, (36, 72, 3), dtype=np.uint8)).save(tmp_path / "train" / f"{index}.png")
    data = load_translation(tmp_path, "paired", "pairs", 32)
    assert data.tensors["a"].shape == (4, 3, load_size(32), load_size(32)) == (4, 3, 36, 36)
    batches = list(data.batches(2, torch.Generator().manual_seed(0)))
    assert len(batches) == 2
    for batch in batches:
        assert batch["a"].shape == (2, 3, 32, 32) and batch["a"].min() >= -1 and batch["a"].max() <= 1
    crops = {tuple(batch["a"][0, 0, 0, :4].tolist()) for seed in range(6)
             for batch in data.batches(1, torch.Generator().manual_seed(seed))}
    assert len(crops) > 1  # the crops move


def test_plain_photos_are_not_taken_for_pairs(cli, tmp_path):
    from conftest import write_png_images

    rng = np.random.default_rng(0)
    photos = write_png_images(tmp_path / "photos", 3, size=32)  # square: no A|B pair
    result = cli("train", "pix2pix", "--data", tmp_path / "photos", "--image-size", "32", "--out", tmp_path / "run",
                 ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        f"Error: None of the first 3 images in {photos[0].parent} is an A|B pair (two pictures side by side, twice as "
        f"wide as high; {photos[0].name} is 32x32), which paired training needs; for unpaired photos in two folders "
        "use cyclegan.")
    mixed = tmp_path / "mixed"  # pairs with one stray photo: the photo is skipped with a warning, the pairs load
    mixed.mkdir()
    for index in range(3):
        Image.fromarray(rng.integers(0, 256, (36, 72, 3), dtype=np.uint8)).save(mixed / f"{index}.png")
    Image.fromarray(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(mixed / "0-cover.png")  # sorts first
    from ganzoo.data.decoding import BadImageWarning
    from ganzoo.data.translation import load_translation

    with pytest.warns(BadImageWarning, match=r"36x36 is not an A\|B pair") as caught:
        data = load_translation(mixed, "paired", "pairs", 32)
    assert len(data.tensors["a"]) == 3
    assert [str(w.message) for w in caught if issubclass(w.category, BadImageWarning)] == [
        f"Skipped {mixed / '0-cover.png'}: 36x36 is not an A|B pair, which is about twice as wide as high."]


def test_pix2pix_on_an_unpaired_set_names_the_folder_searched_and_the_layout(cli, unpaired, tmp_path):
    refused = (f"Error: {unpaired} has trainA/ and trainB/, the layout of an unpaired (CycleGAN) set, while paired "
               "training needs files with A and B side by side; train cyclegan on it.")
    result = cli("train", "pix2pix", "--data", unpaired, "--image-size", "32", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == refused
    wide = tmp_path / "wide"  # an unpaired set of photos as wide as pairs: refused all the same, not trained half to half
    write_images(wide / "trainA", 3, (64, 32), seed=2)
    write_images(wide / "trainB", 3, (64, 32), seed=3)
    result = cli("train", "pix2pix", "--data", wide, "--image-size", "32", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == refused.replace(str(unpaired), str(wide))
    nested = tmp_path / "nested"  # photos in subfolders of another layout: the folder searched, the usual advice
    write_images(nested / "day", 2, (36, 36), seed=4)
    write_images(nested / "night", 2, (36, 36), seed=5)
    result = cli("train", "pix2pix", "--data", nested, "--image-size", "32", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        f"Error: None of the first 4 images in {nested} and its subfolders is an A|B pair (two pictures side by side, "
        "twice as wide as high; day/photo_00.png is 36x36), which paired training needs; for unpaired photos in two "
        "folders use cyclegan.")
    assert not (tmp_path / "run").exists()


def test_a_paired_set_of_undecodable_files_names_the_folder_that_holds_them(cli, tmp_path):
    for part in ("x", "y"):
        (tmp_path / "data" / part).mkdir(parents=True)
        (tmp_path / "data" / part / "pair.png").write_bytes(b"not an image")
    result = cli("train", "pix2pix", "--data", tmp_path / "data", "--image-size", "32", "--epochs", "1",
                 "--out", tmp_path / "run", "--no-progress", "--device", "cpu", ok=False)
    assert result.exit_code == 1 and (f"None of the 2 image files in {tmp_path / 'data'} and its subfolders could be "
                                      "decoded (x/pair.png: not a readable image") in " ".join(result.output.split())
    assert "; check that they are images." in result.output


def test_undecodable_files_mostly_at_the_top_still_name_the_subfolders_that_hold_the_rest(tmp_path):
    from ganzoo.data.translation import PAIR_PROBE, undecodable

    files = (*(tmp_path / f"{index}.png" for index in range(PAIR_PROBE + 5)), tmp_path / "deeper" / "last.png")
    assert str(undecodable(files)) == (f"None of the {PAIR_PROBE + 6} image files in {tmp_path} and its subfolders "
                                       "could be decoded; check that they are images.")
    assert f"in {tmp_path} could" in str(undecodable(files[:-1]))


def test_paired_sides_share_the_crop(tmp_path):
    from ganzoo.data.translation import load_translation

    (tmp_path / "train").mkdir()
    rng = np.random.default_rng(1)
    for index in range(3):
        half = rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([half, half], 1)).save(tmp_path / "train" / f"{index}.png")
    data = load_translation(tmp_path, "paired", "same", 32)
    for seed in range(4):
        for batch in data.batches(1, torch.Generator().manual_seed(seed)):
            assert torch.equal(batch["a"], batch["b"])


def test_unpaired_epoch_covers_the_larger_domain_and_draws_b_independently(unpaired):
    from ganzoo.data.translation import load_translation

    data = load_translation(unpaired, "unpaired", "u", 32)
    assert data.tensors["a"].shape[0] == 3 and data.tensors["b"].shape[0] == 5 and len(data) == 5
    assert data.steps_per_epoch(1) == 5 and data.steps_per_epoch(2) == 2
    batches = list(data.batches(1, torch.Generator().manual_seed(0)))
    assert len(batches) == 5 and all(b["a"].shape == b["b"].shape == (1, 3, 32, 32) for b in batches)
    with pytest.raises(GanzooError, match="trainA"):
        load_translation(unpaired / "trainA", "unpaired", "x", 32)


def test_two_folders_make_an_unpaired_set(tmp_path):
    from ganzoo.data.translation import unpaired_folders

    write_images(tmp_path / "horses", 1, (8, 8), 0)
    write_images(tmp_path / "zebras", 1, (8, 8), 1)
    assert unpaired_folders(tmp_path) == (tmp_path / "horses", tmp_path / "zebras")


# -- image pool and schedule ---------------------------------------------------------------------


def test_image_pool_fills_then_swaps_half_the_time():
    from ganzoo.plugins.cyclegan.networks import query_pool

    torch.manual_seed(0)
    images = [torch.full((1, 1, 2, 2), float(i)) for i in range(200)]
    pool = None
    for i in range(3):
        out, pool = query_pool(pool, images[i], 3)
        assert torch.equal(out, images[i])  # filling: the new image itself
    assert pool.shape[0] == 3
    returned_old = 0
    for i in range(3, 200):
        out, pool = query_pool(pool, images[i], 3)
        assert pool.shape[0] == 3
        value = out.flatten()[0].item()
        assert value <= i
        returned_old += value < i
        if value < i:  # the old image left the pool and the new one took its place
            assert value not in pool[:, 0, 0, 0].tolist() and float(i) in pool[:, 0, 0, 0].tolist()
    assert 70 < returned_old < 130  # about half of 197
    fresh = images[0].clone().requires_grad_()  # a fake still attached to G's graph
    same, untouched = query_pool(pool, fresh, 0)
    assert torch.equal(same, fresh) and not same.requires_grad and untouched is pool  # off: the new image, detached


def test_lr_schedule_constant_then_linear_to_zero():
    from ganzoo.registry import get_model
    from ganzoo.schedule import lr_factor, on_epoch_start

    assert [lr_factor(e, 200, 100) for e in (0, 99, 100, 150, 199, 200)] == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.01, 0.0])
    model = get_model("cyclegan")
    config = {"epochs": 200, "decay_epochs": None, "lr": 2e-4, "lr_g": None, "lr_d": 1e-4}
    optimizers = {stage: torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0) for stage in ("generator", "discriminator")}
    seen = {}
    for epoch in (0, 100, 150, 200):
        on_epoch_start(model=model, config=config, epoch=epoch, optimizers=optimizers, state={})
        seen[epoch] = [optimizers[s].param_groups[0]["lr"] for s in ("generator", "discriminator")]
    assert seen[0] == seen[100] == [2e-4, 1e-4]
    assert seen[150] == pytest.approx([1e-4, 5e-5]) and seen[200] == [0.0, 0.0]


# -- training and translating ---------------------------------------------------------------------


def test_cyclegan_trains_with_the_pool_off(cli, unpaired, tmp_path):
    run = tmp_path / "run"
    trained = cli("train", "cyclegan", "--data", unpaired, "--image-size", "32", "--epochs", "1", "--out", run,
                  "--set", "blocks=1", "--set", "pool_size=0", *TINY, "--no-progress", "--device", "cpu")
    assert (run / "generator.safetensors").is_file()
    assert f"training cyclegan on {unpaired}: 3 images in domain A and 5 in domain B at 32 px; batch 1, 5 steps an " \
           "epoch" in " ".join(trained.output.split())


def test_cyclegan_trains_and_translate_keeps_file_names(cli, unpaired, tmp_path):
    from safetensors import safe_open

    run = tmp_path / "run"
    cli("train", "cyclegan", "--data", unpaired, "--image-size", "32", "--epochs", "2", "--out", run,
        "--set", "blocks=1", "--set", "decay_epochs=1", *TINY, "--no-progress", "--device", "cpu")
    with safe_open(run / "generator.safetensors", "pt") as weights:
        names = list(weights.keys())
    assert any(n.startswith("ab.") for n in names) and any(n.startswith("ba.") for n in names)
    with safe_open(run / "checkpoints" / "state-epoch-0002.safetensors", "pt") as state:
        assert state.get_tensor("state.pool_a").shape == (10, 3, 32, 32)  # 2 epochs of 5 steps, one fake each
    picture = Image.open(run / "samples" / "epoch_002.png")
    assert picture.size[1] > picture.size[0]  # six rows: real A, fake B, rec A, real B, fake A, rec B
    rows = [r for r in (run / "metrics.jsonl").read_text().splitlines() if '"log"' in r]
    assert all(key in rows[-1] for key in ("cycle_a", "identity_ba", "d_b_fake"))

    out = tmp_path / "translated"
    cli("translate", "cyclegan", "--weights", run / "generator.safetensors", "--input", unpaired / "trainA",
        "--out", out, "--direction", "BtoA")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (unpaired / "trainA").iterdir())
    assert Image.open(out / "photo_00.png").size == (40, 36)  # back to the input's own size
    one = tmp_path / "one" / "zebra.jpg"  # one picture: --out may be the result's own file name
    cli("translate", "cyclegan", "--weights", run, "--input", unpaired / "trainA" / "photo_00.png", "--out", one)
    with Image.open(one) as written:
        assert written.format == "JPEG" and written.size == (40, 36) and not one.with_suffix("").exists()
    typo = cli("translate", "cyclegan", "--weights", run, "--input", unpaired / "trainA" / "photo_01.png", "--out",
               tmp_path / "one" / "zebra.jgp", ok=False)  # a mistyped ending: no folder called zebra.jgp
    assert typo.exit_code == 1 and "ends in .jgp, which names no picture format" in " ".join(typo.output.split())
    assert not (tmp_path / "one" / "zebra.jgp").exists()
    again = cli("translate", "cyclegan", "--weights", run, "--input", unpaired / "trainA" / "photo_01.png", "--out", one,
                ok=False)
    assert again.exit_code == 1 and "already holds 1 file(s)" in " ".join(again.output.split())
    result = cli("translate", "dcgan", "--weights", run / "generator.safetensors", "--input", unpaired, "--out", out, ok=False)
    assert result.exit_code != 0 and "does not translate" in result.output
    sampled = cli("sample", "cyclegan", "--weights", run / "generator.safetensors", "--out", tmp_path / "x.png", ok=False)
    assert sampled.exit_code != 0 and "ganzoo translate cyclegan" in " ".join(sampled.output.split())
    other = cli("translate", "pix2pix", "--weights", run, "--input", unpaired / "trainA", "--out", tmp_path / "p", ok=False)
    assert other.exit_code == 1 and f"use 'ganzoo translate cyclegan --weights {run / 'generator.safetensors'}'" in (
        " ".join(other.output.split()))  # the command that takes these weights, not 'ganzoo sample'


def test_pix2pix_trains_one_step_and_refuses_the_other_direction(cli, paired, tmp_path):
    run = tmp_path / "run"
    cli("train", "pix2pix", "--data", paired, "--image-size", "32", "--epochs", "1", "--out", run,
        "--set", "direction=BtoA", *TINY, "--no-progress", "--device", "cpu")
    row = [r for r in (run / "metrics.jsonl").read_text().splitlines() if '"log"' in r][-1]
    assert "g_l1" in row and "d_real" in row
    image = paired / "train" / "photo_00.png"
    done = cli("translate", "pix2pix", "--weights", run, "--input", image, "--out", tmp_path / "o")  # the run folder
    assert Image.open(tmp_path / "o" / "photo_00.png").size == (72, 36)
    assert ("note: 1 of the 1 translated image(s) look like A|B pairs (twice as wide as high, as pix2pix trains on); "
            "translate takes B pictures alone, so each was translated whole: pass --from-pairs to translate their B "
            "halves (written beside the translation and the other half), or give it the B halves.") in " ".join(
        done.output.split())
    compared = cli("translate", "pix2pix", "--weights", run, "--input", image, "--out", tmp_path / "c", "--from-pairs")
    with Image.open(tmp_path / "c" / "photo_00.png") as written:  # B | its translation | A, each at the half's size
        triptych = np.asarray(written.convert("RGB")).astype(int)
    original = np.asarray(Image.open(image).convert("RGB")).astype(int)
    assert triptych.shape == (36, 108, 3) and "note" not in compared.output
    assert np.abs(triptych[:, :36] - original[:, 36:]).mean() < 3  # the B half, first (resized to itself: as it was)
    assert np.abs(triptych[:, 72:] - original[:, :36]).mean() < 3  # the A half, the target, last
    Image.open(image).crop((36, 0, 72, 36)).save(tmp_path / "square.png")
    refused = cli("translate", "pix2pix", "--weights", run, "--input", tmp_path / "square.png", "--out",
                  tmp_path / "s", "--from-pairs", ok=False)
    assert refused.exit_code == 1 and "is not an A|B pair" in refused.output and "drop --from-pairs" in " ".join(
        refused.output.split())
    Image.open(image).crop((36, 0, 72, 36)).save(tmp_path / "b_half.png")
    done = cli("translate", "pix2pix", "--weights", run, "--input", tmp_path / "b_half.png", "--out", tmp_path / "h")
    assert Image.open(tmp_path / "h" / "b_half.png").size == (36, 36) and "note" not in done.output
    result = cli("translate", "pix2pix", "--weights", run / "generator.safetensors", "--input", image,
                 "--out", tmp_path / "o", "--overwrite", "--direction", "AtoB", ok=False)  # the same result file again
    assert result.exit_code == 1 and "trained BtoA" in result.output
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "broken.png").write_bytes(b"not a picture")
    result = cli("translate", "pix2pix", "--weights", run, "--input", tmp_path / "mixed", "--out", tmp_path / "m",
                 "--direction", "AtoB", ok=False)  # refused before any image is read
    assert result.exit_code == 1 and "skipped" not in result.output and "trained BtoA" in result.output
    (tmp_path / "notes.txt").write_text("not a picture")
    result = cli("translate", "pix2pix", "--weights", run, "--input", tmp_path / "notes.txt", "--out", tmp_path / "m",
                 ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()).startswith(
        f"Error: --input {tmp_path / 'notes.txt'} is not a picture (.png,")


def test_translate_refuses_an_image_size_training_would_refuse(cli, paired, tiny_cyclegan, tmp_path):
    run = tmp_path / "run"
    cli("train", "pix2pix", "--data", paired, "--image-size", "32", "--epochs", "1", "--out", run, *TINY,
        "--no-progress", "--device", "cpu")
    args = ("--input", paired / "train", "--out", tmp_path / "out", "--device", "cpu")
    result = cli("translate", "pix2pix", "--weights", run, *args, "--image-size", "48", ok=False)
    assert result.exit_code == 1 and result.output.strip() == (  # the sentence training gives, not torch's text
        "Error: The pix2pix U-Net needs a power-of-two image side of at least 32 (64, 128, 256), got 48; choose "
        "such a side with --image-size.")
    result = cli("translate", "cyclegan", "--weights", tiny_cyclegan, *args, "--image-size", "30", ok=False)
    assert result.exit_code == 1 and result.output.strip() == (
        "Error: CycleGAN needs an image side divisible by 4 and at least 24 (64, 128, 256), got 30; choose such a side with --image-size.")
    assert not (tmp_path / "out").exists()  # refused before any image was read or written
    cli("translate", "pix2pix", "--weights", run, *args, "--image-size", "64")  # a side the U-Net takes still works
    assert len(list((tmp_path / "out").iterdir())) == 3


def test_translate_refuses_an_image_size_whose_largest_layer_alone_exceeds_the_free_memory(cli, tiny_cyclegan,
                                                                                             tmp_path):
    """A million-pixel side needs terabytes for one layer: refused before any image is read, where translating would
    have the system kill the process (CPU memory is overcommitted) rather than raise."""
    import re

    write_images(tmp_path / "in", 1, (36, 36), seed=3)
    args = ("--weights", tiny_cyclegan, "--input", tmp_path / "in", "--out", tmp_path / "out", "--device", "cpu")
    result = cli("translate", "cyclegan", *args, "--image-size", "1000000", ok=False)
    sentence = " ".join(result.output.split())
    assert result.exit_code == 1 and re.fullmatch(
        r"Error: --image-size 1000000 needs at least [\d.]+ GiB for the generator's largest layer alone, more than the "
        r"[\d.]+ GiB free on cpu; use a smaller --image-size \(it was trained at 32\)\.", sentence), sentence
    needed = float(sentence.split("needs at least ")[1].split()[0])
    assert needed > 10_000  # (3 + 4) channels x 10^12 pixels x 4 bytes, about 26,000 GiB
    assert not (tmp_path / "out").exists()
    cli("translate", "cyclegan", *args, "--image-size", "64")  # a side that fits still translates
    assert (tmp_path / "out" / "photo_00.png").is_file()


@pytest.fixture(scope="module")
def tiny_cyclegan(tmp_path_factory) -> Path:
    """The smallest CycleGAN generator file (32 px, width 4, one residual block, one epoch), trained once here."""
    from click.testing import CliRunner

    from ganzoo.cli.main import cli as group

    root = tmp_path_factory.mktemp("tiny-cyclegan")
    write_images(root / "data" / "trainA", 3, (40, 36), seed=1)
    write_images(root / "data" / "trainB", 3, (36, 36), seed=2)
    args = ["train", "cyclegan", "--data", root / "data", "--image-size", "32", "--epochs", "1", "--set", "blocks=1",
            *TINY, "--no-progress", "--device", "cpu", "--out", root / "run"]
    env = {"GANZOO_CACHE": str(root / "cache"), "GANZOO_DATA": str(root / "ganzoo-data")}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(group, [str(a) for a in args], env=env, catch_exceptions=False)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    return root / "run" / "generator.safetensors"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


FIXED_SIZE_TRANSLATOR = '''
"""A third-party image-to-image model whose generator takes 32x32 images only, and says so with a ValueError."""
from ganzoo import hookimpl
from ganzoo.specs import ModelSpec

@hookimpl
def register_models(register):
    register(ModelSpec(name="fixed32", family="fixed32", task="image-to-image", summary="32 px only, for tests",
                       paper=None, default_dataset="facades", data_kinds=("unpaired",), hyperparameters=()))

@hookimpl
def build_generator(model, config):
    if model.family != "fixed32":
        return None
    from torch import nn

    class Fixed(nn.Conv2d):
        def translate(self, x, direction=None):
            if x.shape[-1] != 32:
                raise ValueError(f"this generator takes 32x32 images, not {x.shape[-1]}x{x.shape[-2]}")
            return self(x).tanh()

    return Fixed(3, 3, 3, padding=1)
'''


#: The same translator, built only from real tensors (as a build that reads a tensor's value is): the check of
#: --image-size on the meta device cannot run it, so translating is what reports the side, here with a RuntimeError.
REAL_TENSORS_TRANSLATOR = FIXED_SIZE_TRANSLATOR.replace("raise ValueError", "raise RuntimeError").replace(
    "    from torch import nn\n", "    import torch\n    from torch import nn\n\n    torch.zeros(1).item()\n")


@pytest.mark.parametrize("source", [FIXED_SIZE_TRANSLATOR, REAL_TENSORS_TRANSLATOR], ids=["value-error", "no-meta-build"])
def test_a_generator_refusing_the_size_is_one_sentence_not_unreadable_images(cli, tmp_path, monkeypatch, source):
    """A ValueError (or RuntimeError) from the network is about the size asked, not the pictures: one sentence,
    not every file skipped as unreadable; also when the network could not be built on the meta device first."""
    import sys

    from conftest import make_distribution
    from ganzoo.build import build_generator
    from ganzoo.plugin_manager import reset
    from ganzoo.registry import get_model
    from ganzoo.weights import save_network

    make_distribution(tmp_path / "site", "ganzoo-fixed32", "fixed32_plugin", source, "fixed32")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    try:
        model = get_model("fixed32")
        config = {"image_size": 32, "channels": 3, "data_kind": "unpaired"}
        if source is REAL_TENSORS_TRANSLATOR:  # the fallback this case is for: no network on the meta device
            with pytest.raises(Exception), torch.device("meta"):
                build_generator(model, config)
        save_network(tmp_path / "g.safetensors", model, config, build_generator(model, config), "facades", 1, 1)
        (tmp_path / "in").mkdir()
        for name in ("a.png", "b.png"):
            Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(tmp_path / "in" / name)
        common = ("translate", "fixed32", "--weights", tmp_path / "g.safetensors", "--input", tmp_path / "in")
        result = cli(*common, "--out", tmp_path / "o64", "--image-size", "64", "--device", "cpu", ok=False)
        assert result.exit_code == 1 and "skipped" not in result.output
        assert " ".join(result.output.split()) == (
            "Error: The generator cannot translate 64x64 images (this generator takes 32x32 images, not 64x64); drop "
            "--image-size or use its training size.")
        cli(*common, "--out", tmp_path / "o32", "--device", "cpu")  # its own size translates both
        assert sorted(path.name for path in (tmp_path / "o32").iterdir()) == ["a.png", "b.png"]
    finally:
        sys.modules.pop("fixed32_plugin", None)


@pytest.mark.parametrize("case", ["same", "dot", "link", "overwrite", "file", "subfolder", "new-subfolder"])
def test_translate_refuses_to_write_over_its_input_images(cli, tiny_cyclegan, tmp_path, monkeypatch, case):
    from conftest import write_png_images

    monkeypatch.chdir(tmp_path)
    photos = tmp_path / "photos"
    write_png_images(photos, 2)
    write_png_images(photos / "sub", 1)  # photos/sub/img_000.png, what photos/img_000.png becomes with --out photos/sub
    (tmp_path / "link").symlink_to(photos, target_is_directory=True)
    source, out, extra = {
        "same": ("photos", "photos", ()), "dot": ("photos", "./photos/sub/..", ()), "link": ("photos", "link", ()),
        "overwrite": ("photos", "photos", ("--overwrite",)), "file": ("photos/img_001.png", "photos", ("--overwrite",)),
        "subfolder": ("photos", "photos/sub", ("--overwrite",)), "new-subfolder": ("photos", "photos/zebras", ()),
    }[case]
    out = Path(out)  # as the message shows it: './photos/sub/..' reads 'photos/sub/..'
    before = snapshot(photos)
    result = cli("translate", "cyclegan", "--weights", tiny_cyclegan, "--input", source, "--out", out,
                 "--device", "cpu", *extra, ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    if case == "file":
        expected = (f"Error: --out {out} would overwrite the input image photos/img_001.png with its translation; "
                    "choose another --out folder.")
    elif case in ("subfolder", "new-subfolder"):
        expected = (f"Error: --out {out} lies inside the --input folder, so translating that folder again would "
                    "translate the translations too; choose an --out folder outside it.")
    else:
        expected = (f"Error: --out {out} is the --input folder, so the translations would overwrite the input images; "
                    "choose another --out folder.")
    assert result.output.strip() == expected  # one line, one sentence
    assert snapshot(photos) == before  # every input byte for byte, and nothing new beside them


def test_translate_keeps_existing_results_unless_overwrite(cli, tiny_cyclegan, tmp_path):
    from conftest import write_png_images

    photos, out = tmp_path / "photos", tmp_path / "out"
    write_png_images(photos, 3)
    earlier = write_png_images(out, 2, seed=7)  # img_000.png and img_001.png: results of an earlier run, say
    inputs, results = snapshot(photos), snapshot(out)
    args = ("translate", "cyclegan", "--weights", tiny_cyclegan, "--input", photos, "--out", out, "--device", "cpu")
    result = cli(*args, ok=False)
    assert result.exit_code == 1 and result.output.strip() == (
        f"Error: --out {out} already holds 2 file(s) the translations would replace (first: {earlier[0]}); "
        "pass --skip-existing to keep them and translate the rest (an interrupted run goes on so), --overwrite to "
        "replace them, or choose another --out folder.")
    assert snapshot(out) == results and snapshot(photos) == inputs  # refused before translating anything

    kept = cli(*args, "--skip-existing")  # as an interrupted run goes on: only the third image is translated
    assert "translated 1 image(s) with cyclegan into" in kept.output and "(kept the 2 already in --out)" in kept.output
    assert {name: snapshot(out)[name] for name in results} == results and "img_002.png" in snapshot(out)
    both = cli(*args, "--skip-existing", "--overwrite", ok=False)
    assert both.exit_code == 2 and "pass only one of them" in both.output
    (out / "img_002.png").unlink()

    assert "translated 3 image(s)" in " ".join(cli(*args, "--overwrite").output.split())
    assert snapshot(photos) == inputs and sorted(snapshot(out)) == ["img_000.png", "img_001.png", "img_002.png"]
    for path in earlier:
        assert path.read_bytes() != results[path.name]
        with Image.open(path) as image:
            assert image.size == (16, 16)  # a complete translation of the 16x16 input
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left behind

    linked = tmp_path / "linked"  # a link in --out to an input: --overwrite replaces the link, not the photo
    linked.mkdir()
    (linked / "img_000.png").symlink_to(photos / "img_000.png")
    cli("translate", "cyclegan", "--weights", tiny_cyclegan, "--input", photos, "--out", linked, "--device", "cpu",
        "--overwrite")
    assert snapshot(photos) == inputs and not (linked / "img_000.png").is_symlink()


def test_wrong_loss_and_wrong_data_kind_are_refused(cli, paired, unpaired, tmp_path):
    result = cli("train", "cyclegan", "--data", unpaired, "--loss", "hinge", "--out", tmp_path / "r", ok=False)
    assert result.exit_code == 1 and "least-squares" in result.output
    result = cli("train", "cyclegan", "--data", paired / "train", "--out", tmp_path / "r", ok=False)
    assert result.exit_code == 1 and "trainA" in result.output


# -- downloads -----------------------------------------------------------------------------------


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


def cyclegan_zip(name: str, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for folder in ("trainA", "trainB", "testA", "testB"):
            for index in range(2):
                archive.writestr(f"{name}/{folder}/{index}.png", _png())
        for member, payload in (extra or {}).items():
            archive.writestr(member, payload)
    return buffer.getvalue()


def tiny_archive(url: str, name: str = "tiny", paper: str = "cyclegan"):
    from ganzoo.plugins.translation_datasets import Archive

    suffix = ".zip" if paper == "cyclegan" else ".tar.gz"
    folders = ("trainA", "trainB") if paper == "cyclegan" else ("train",)
    return Archive(paper, name, f"{url}/{name}{suffix}", folders)


def test_good_zip_is_extracted_checked_and_removed(server, tmp_path):
    from ganzoo.plugins.translation_datasets import ensure_dataset

    url, handler = server
    handler.files["/tiny.zip"] = cyclegan_zip("tiny", {"__MACOSX/tiny/._0.png": b"junk"})
    folder = ensure_dataset(tiny_archive(url), tmp_path, progress=False)
    assert folder == tmp_path / "cyclegan" / "tiny" and len(list((folder / "trainB").iterdir())) == 2
    assert sorted(p.name for p in (tmp_path / "cyclegan").iterdir()) == ["tiny"]  # no archive, no staging, no __MACOSX
    handler.files.clear()  # a second use needs no server
    assert ensure_dataset(tiny_archive(url), tmp_path, progress=False) == folder


def test_good_tar_is_extracted(server, tmp_path):
    from ganzoo.plugins.translation_datasets import ensure_dataset

    url, handler = server
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        payload = _png()
        info = tarfile.TarInfo("pairs/train/0.png")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    handler.files["/pairs.tar.gz"] = buffer.getvalue()
    folder = ensure_dataset(tiny_archive(url, "pairs", "pix2pix"), tmp_path, progress=False)
    assert (folder / "train" / "0.png").is_file() and not (tmp_path / "pix2pix" / "pairs.tar.gz").exists()


def test_truncated_archive_is_redone_then_refused_and_never_used(server, tmp_path):
    from ganzoo.plugins.translation_datasets import ensure_dataset

    url, handler = server
    good = cyclegan_zip("tiny")
    handler.files["/tiny.zip"] = good[: len(good) * 2 // 3]  # served complete, but the archive itself is cut
    with pytest.raises(GanzooError) as info:
        ensure_dataset(tiny_archive(url), tmp_path, progress=False)
    assert str(info.value).startswith(f"The archive downloaded from {url}/tiny.zip cannot be used (it is damaged (")
    assert str(info.value).endswith(f"so it was deleted; download {url}/tiny.zip by hand and place tiny.zip in "
                                    f"{tmp_path / 'cyclegan'}.")
    assert list((tmp_path / "cyclegan").iterdir()) == []
    handler.truncate.add("/tiny.zip")  # a transfer cut short is caught by the download itself
    with pytest.raises(GanzooError, match="place it at"):
        ensure_dataset(tiny_archive(url), tmp_path, progress=False)
    assert list((tmp_path / "cyclegan").iterdir()) == []
    handler.truncate.clear()
    # an archive placed by hand that cannot be used is set aside, never deleted, while no good copy can be had
    placed = tmp_path / "cyclegan" / "tiny.zip"
    placed.write_bytes(good[:100])
    del handler.files["/tiny.zip"]
    with pytest.raises(GanzooError) as info:
        ensure_dataset(tiny_archive(url), tmp_path, progress=False)
    assert str(info.value).startswith(f"The archive {placed} could not be used (it is damaged (")
    assert f"so it was moved to {placed}.unusable, and a fresh copy could not be downloaded (" in str(info.value)
    assert (tmp_path / "cyclegan" / "tiny.zip.unusable").read_bytes() == good[:100] and not placed.exists()
    # ... and replaced by a fresh download when one can be had
    placed.write_bytes(good[:100])
    handler.files["/tiny.zip"] = good
    assert (ensure_dataset(tiny_archive(url), tmp_path, progress=False) / "trainA" / "0.png").is_file()
    assert sorted(p.name for p in (tmp_path / "cyclegan").iterdir()) == ["tiny"]


def test_an_archive_short_of_images_says_how_many_it_holds(server, tmp_path):
    from ganzoo.plugins.translation_datasets import Archive, ensure_dataset

    url, handler = server
    handler.files["/tiny.zip"] = cyclegan_zip("tiny")
    spec = tiny_archive(url)
    short = Archive(spec.paper, spec.name, spec.url, spec.folders, {"trainA": 3})
    with pytest.raises(GanzooError) as info:
        ensure_dataset(short, tmp_path, progress=False)
    assert ("cannot be used (it is incomplete: its tiny/trainA holds 2 images, expected 3), so it was deleted"
            in str(info.value))


def test_archive_with_unsafe_paths_is_not_extracted(server, tmp_path):
    from ganzoo.plugins.translation_datasets import ensure_dataset

    url, handler = server
    handler.files["/tiny.zip"] = cyclegan_zip("tiny", {"tiny/../../evil.txt": b"x"})
    with pytest.raises(GanzooError, match="unsafe path"):
        ensure_dataset(tiny_archive(url), tmp_path, progress=False)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_server_down_names_url_and_folder(tmp_path):
    from ganzoo.plugins.translation_datasets import ensure_dataset

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(GanzooError) as info:
        ensure_dataset(tiny_archive(f"http://127.0.0.1:{port}"), tmp_path, progress=False)
    message = str(info.value)
    assert f"127.0.0.1:{port}/tiny.zip" in message and str(tmp_path / "cyclegan") in message


def test_named_sets_are_registered_with_the_authors_urls():
    from ganzoo.data.translation import get_dataset
    from ganzoo.registry import get_registry

    datasets = get_registry().datasets
    assert datasets.get("horse2zebra").source == "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"
    assert datasets.get("edges2shoes").source == "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/edges2shoes.tar.gz"
    assert get_dataset("facades", ("paired",)).info.kind == "paired"
    assert get_dataset("facades", ("unpaired",)).info.kind == "unpaired"


def test_pix2pix_on_facades_trains_labels_to_photo_as_the_paper_unless_told_otherwise(cli, tmp_path):
    """The facades pairs hold photo | labels and the paper learns labels -> photo (BtoA): the named set brings that
    direction, a run says what it turns into what, and --set direction=AtoB still wins."""
    from ganzoo.weights import load_generator

    rng = np.random.default_rng(0)
    facades = tmp_path / "data" / "pix2pix" / "facades"
    for split, count in (("train", 400), ("val", 100), ("test", 106)):  # the counts a complete copy has
        (facades / split).mkdir(parents=True)
        for index in range(count):
            Image.fromarray(rng.integers(0, 256, (8, 16, 3), dtype=np.uint8)).save(facades / split / f"{index}.png")
    common = ("--data", "facades", "--data-root", tmp_path / "data", "--image-size", "32", "--epochs", "1",
              "--batch-size", "100", *TINY, "--no-progress", "--device", "cpu")
    paper = cli("train", "pix2pix", *common, "--out", tmp_path / "paper")
    assert ("facades pairs hold the photo (A) | the labels (B): this run turns labels into photo (BtoA, as in the "
            "paper; a new run with --set direction=AtoB trains the other way)") in " ".join(paper.output.split())
    assert load_generator(tmp_path / "paper" / "generator.safetensors").config["direction"] == "BtoA"
    assert "training pix2pix on facades: 400 image pairs at 32 px; batch 100, 4 steps an epoch" in paper.output
    other = cli("train", "pix2pix", *common, "--set", "direction=AtoB", "--out", tmp_path / "other")
    assert "this run turns photo into labels (AtoB, the paper trains BtoA;" in " ".join(other.output.split())
    assert load_generator(tmp_path / "other" / "generator.safetensors").config["direction"] == "AtoB"
