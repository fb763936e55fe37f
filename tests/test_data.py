"""Datasets: toy definitions, the IDX reader, CIFAR binary records, image folders of every mode."""

from __future__ import annotations

import gzip
import math
import struct
import warnings

import numpy as np
import pytest

from conftest import write_png_images
from ganzoo.errors import GanzooError


def test_ring8_means_are_distinct_and_on_the_circle():
    from ganzoo.data.toy import RING8

    means = np.array(RING8.means)
    assert len({tuple(np.round(m, 6)) for m in means}) == 8
    assert np.allclose(np.linalg.norm(means, axis=1), 2.0)
    assert np.allclose(means[1], [2 * math.cos(math.pi / 4), 2 * math.sin(math.pi / 4)])
    assert RING8.std == 0.02


def test_grid25_and_sampled_spread():
    from ganzoo.data.toy import GRID25

    means = np.array(GRID25.means)
    assert means.shape == (25, 2) and set(means[:, 0]) == {-4, -2, 0, 2, 4}
    points = GRID25.sample(5000).numpy()
    nearest = np.linalg.norm(points[:, None] - means[None], axis=2).min(1)
    assert np.std(points - means[np.linalg.norm(points[:, None] - means[None], axis=2).argmin(1)]) == pytest.approx(0.05, rel=0.1)
    assert nearest.max() < 0.5


def test_gaussian_and_line_sets():
    from ganzoo.data.toy import load_gaussian_1d, load_line_2d

    gauss = load_gaussian_1d().tensors["real"].numpy()
    assert gauss.mean() == pytest.approx(4.0, abs=0.02) and gauss.std() == pytest.approx(1.25, abs=0.02)
    line = load_line_2d().tensors["real"].numpy()
    assert np.allclose(line[:, 1], 2 * line[:, 0] + 0.5, atol=1e-6)


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_idx_files_in_torchvision_layout(tmp_path, compress):
    from ganzoo.registry import get_dataset

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (20, 28, 28)), rng.integers(0, 10, 20)
    raw = tmp_path / "MNIST" / "raw"
    suffix = ".gz" if compress else ""
    write_idx(raw / f"train-images-idx3-ubyte{suffix}", images, compress)
    write_idx(raw / f"train-labels-idx1-ubyte{suffix}", labels, compress)
    data = get_dataset("mnist").load(tmp_path, 28, 1)
    assert data.tensors["real"].shape == (20, 1, 28, 28)
    assert np.array_equal(data.tensors["real"][:, 0].numpy(), images)
    assert np.array_equal(data.tensors["label"].numpy(), labels)
    resized = get_dataset("mnist").load(tmp_path, 32, 3)
    assert resized.tensors["real"].shape == (20, 3, 32, 32)


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    from ganzoo.data.idx import read_idx

    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, np.zeros((4, 28, 28)))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(GanzooError, match="header promises"):
        read_idx(path)


def test_cifar_binary_records(tmp_path):
    from ganzoo.data import cifar

    folder = tmp_path / cifar.FOLDER
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = np.concatenate([rng.integers(0, 10, (3, 1)), rng.integers(0, 256, (3, 3072))], axis=1)
        records.astype(np.uint8).tofile(folder / name)
    assert cifar.ensure_extracted(tmp_path) == folder  # present: nothing downloaded
    images, labels = cifar.read_batches(folder)
    assert images.shape == (15, 3, 32, 32) and labels.shape == (15,)
    first = np.fromfile(folder / "data_batch_1.bin", dtype=np.uint8)[:3073]
    assert labels[0] == first[0] and np.array_equal(images[0].numpy().ravel(), first[1:])


@pytest.mark.parametrize("size", [64, 14])
def test_resize_matches_pillow_bilinear_within_one_level_in_any_chunking(size):
    import torch
    from PIL import Image

    from ganzoo.data.transforms import resize_uint8

    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    ours = resize_uint8(torch.from_numpy(images)[:, None], size)
    assert ours.dtype == torch.uint8 and ours.shape == (5, 1, size, size)
    pillow = np.stack([np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR)) for image in images])
    difference = np.abs(ours[:, 0].numpy().astype(int) - pillow.astype(int))
    assert difference.max() == 1 and (difference == 0).mean() > 0.7  # Pillow rounds in fixed point
    assert torch.equal(resize_uint8(torch.from_numpy(images)[:, None], size, chunk=2), ours)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "LA"])
def test_image_folder_converts_every_mode(tmp_path, mode):
    from ganzoo.registry import get_dataset

    folder = tmp_path / mode.replace(";", "")
    write_png_images(folder, 6, size=20, mode=mode)
    spec = get_dataset(str(folder))
    data = spec.load(None, 16, 3)
    assert data.tensors["real"].shape == (6, 3, 16, 16)
    assert data.tensors["real"].dtype.is_floating_point is False
    gray = spec.load(None, 8, 1)
    assert gray.tensors["real"].shape == (6, 1, 8, 8)


def test_a_dark_16_bit_picture_stays_dark(tmp_path):
    """16-bit values run to 65535: a frame whose brightest pixel is 255 (0.4 %) is near black, as in a viewer,
    not stretched to full white beside the other pictures of its set."""
    from PIL import Image

    from ganzoo.registry import get_dataset

    folder = tmp_path / "frames"
    folder.mkdir()
    for name, top in (("dark", 255), ("bright", 65535)):
        Image.fromarray(np.linspace(0, top, 16 * 16).reshape(16, 16).astype(np.uint16)).save(folder / f"{name}.png")
    bright, dark = get_dataset(str(folder)).load(None, 16, 1).tensors["real"]  # sorted: bright.png first
    assert int(dark.max()) == 1 and int(bright.max()) == 255
    tiff = tmp_path / "tiff"  # 32-bit integers (mode I) have no 16-bit range: values of 0..255 keep theirs
    tiff.mkdir()
    Image.fromarray(np.full((16, 16), 200, dtype=np.int32)).save(tiff / "gray.tif")
    (gray,) = get_dataset(str(tiff)).load(None, 16, 1).tensors["real"]
    assert int(gray.max()) == 200


def test_32_bit_pictures_are_read_over_their_range_or_skipped_saying_why(tmp_path):
    """Floating-point pixels (mode F) are fractions of 0..1 (or 0..255 when some exceed 1), not black; 32-bit
    values with no known black and white (negative ones) are skipped with the usual warning, not made black."""
    from PIL import Image

    from ganzoo.data.decoding import BadImageWarning
    from ganzoo.registry import get_dataset

    folder = tmp_path / "tiff"
    folder.mkdir()
    ramp = np.linspace(0, 1, 16 * 16).reshape(16, 16)
    Image.fromarray(ramp.astype(np.float32)).save(folder / "a_fractions.tif")
    Image.fromarray((ramp * 200).astype(np.float32)).save(folder / "b_levels.tif")
    Image.fromarray((ramp * 2 - 1).astype(np.float32)).save(folder / "c_signed_float.tif")
    Image.fromarray((ramp * 2000 - 1000).astype(np.int32)).save(folder / "d_signed_integer.tif")
    spec = get_dataset(str(folder))
    assert spec.info.channels == 1  # gray, as their mode says
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fractions, levels = spec.load(None, 16, 1).tensors["real"]
    assert int(fractions.min()) == 0 and int(fractions.max()) == 255
    assert int(levels.max()) == 200
    assert [str(w.message) for w in caught if issubclass(w.category, BadImageWarning)] == [
        f"Skipped {folder / 'c_signed_float.tif'}: its 32-bit floating-point pixels (mode F) run from -1 to 1, and "
        "only values of 0..1 or 0..255 have a known black and white; save it with 8- or 16-bit pixels.",
        f"Skipped {folder / 'd_signed_integer.tif'}: its 32-bit integer pixels (mode I) run from -1000 to 1000, and "
        "only values of 0 or more have a known black and white; save it with 8- or 16-bit pixels."]


def test_image_folder_native_size_and_channels(image_folder):
    from ganzoo.data.folder import probe

    info = probe(image_folder)
    assert (info.channels, info.image_size, info.num_classes) == (3, 16, 0)


def test_class_subfolders_become_labels(tmp_path):
    from ganzoo.registry import get_dataset

    write_png_images(tmp_path / "cats", 3, seed=1)
    write_png_images(tmp_path / "dogs", 2, seed=2)
    spec = get_dataset(str(tmp_path))
    assert spec.info.class_names == ("cats", "dogs")
    data = spec.load(None, 16, 3)
    assert data.tensors["label"].tolist() == [0, 0, 0, 1, 1]


def test_a_folder_laid_out_as_a_split_trains_on_its_train_folder_alone(cli, tmp_path, monkeypatch):
    """train/ beside val/ and test/: the classes are train/'s sub-folders, the held-out images are left out and the
    load says so; the cache holds train/'s images and a resume reads the same ones. Another sub-folder beside them
    makes no split: the sub-folders are the classes, as before."""
    from ganzoo.data import decoded_cache
    from ganzoo.evaluation import dataset_key
    from ganzoo.registry import get_dataset

    split = tmp_path / "pets"
    write_png_images(split / "train" / "cats", 5, seed=1)
    write_png_images(split / "train" / "dogs", 3, seed=2)
    write_png_images(split / "val" / "cats", 2, seed=3)
    write_png_images(split / "test" / "dogs", 2, seed=4)
    spec = get_dataset(str(split))
    assert spec.name == str(split) and spec.info.class_names == ("cats", "dogs")
    data = spec.load(None, 16, 3)
    assert data.tensors["label"].tolist() == [0] * 5 + [1] * 3
    assert data.notes == (f"using {split / 'train'} (the training split of {split}; {split / 'test'} and "
                          f"{split / 'val'} are left out)",)
    key = dataset_key(str(split), tmp_path)  # eval's reference features: of train/'s images alone
    write_png_images(split / "val" / "birds", 1, seed=8)
    assert dataset_key(str(split), tmp_path) == key
    write_png_images(tmp_path / "other" / "train", 2, seed=5)
    write_png_images(tmp_path / "other" / "val", 2, seed=6)
    write_png_images(tmp_path / "other" / "extra", 2, seed=7)
    assert get_dataset(str(tmp_path / "other")).info.class_names == ("extra", "train", "val")

    monkeypatch.setattr(decoded_cache, "MIN_CACHED_FILES", 4)
    common = ("--epochs", "1", "--batch-size", "4", "--set", "hidden_dims=[16]", "--no-progress", "--device", "cpu")
    first = " ".join(cli("train", "cgan", "--data", split, "--out", tmp_path / "run", *common).output.split())
    assert f"using {split / 'train'} (the training split of {split};" in first
    assert "cached the decoded images in" in first
    resumed = cli("train", "cgan", "--resume", tmp_path / "run", "--epochs", "2", "--no-progress").output
    resumed = " ".join(resumed.split())
    assert "loaded 8 decoded images from the cache" in resumed and "changed" not in resumed
    assert "done: 2 epochs" in resumed


def test_a_class_folder_none_of_whose_files_decodes_is_refused_naming_it(tmp_path, monkeypatch):
    """Kept, it would be a class with no images that samples could still be asked for; from the cache too."""
    from ganzoo.data import decoded_cache
    from ganzoo.registry import get_dataset

    write_png_images(tmp_path / "pets" / "cats", 3, seed=1)
    write_png_images(tmp_path / "pets" / "dogs", 2, seed=2)
    (tmp_path / "pets" / "zzbroken").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "pets" / "zzbroken" / name).write_bytes(b"not an image")
    broken = tmp_path / "pets" / "zzbroken"
    sentence = (f"None of the 2 image files of the class folder {broken} could be decoded (a.png: not a readable "
                f"image (cannot identify image file '{broken / 'a.png'}'); and 1 more), so that class would have no "
                "images; fix or remove its files.")
    for cached in (False, True, True):  # decoded, decoded into the cache, read from it
        monkeypatch.setattr(decoded_cache, "MIN_CACHED_FILES", 4 if cached else 512)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(GanzooError) as refused:
                get_dataset(str(tmp_path / "pets")).load(None, 16, 3)
        assert str(refused.value) == sentence
        assert decoded_cache.entry_path(tmp_path / "pets", 16, 3).is_file() == cached


def test_linked_class_folders_are_followed_and_hidden_or_tool_folders_left_out(tmp_path):
    """Links to folders count like folders (once, even when one links back up); hidden entries and a Mac archive's
    __MACOSX folder are no classes and no images."""
    from ganzoo.registry import get_dataset

    root = tmp_path / "pets"
    write_png_images(root / "cats", 3, seed=1)
    write_png_images(tmp_path / "elsewhere" / "dogs", 2, seed=2)
    (root / "dogs").symlink_to(tmp_path / "elsewhere" / "dogs", target_is_directory=True)
    (root / "cats" / "loop").symlink_to(root, target_is_directory=True)  # a link back up is not walked again
    write_png_images(root / ".ipynb_checkpoints", 1, seed=3)
    write_png_images(root / "__MACOSX" / "cats", 2, seed=4)
    (root / "cats" / "._img_000.png").write_bytes(b"\x00\x05\x16\x07 a resource fork, no image")
    spec = get_dataset(str(root))
    assert spec.info.class_names == ("cats", "dogs") and spec.info.num_classes == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no file was skipped as unreadable: the resource fork was never read
        data = spec.load(None, 16, 3)
    assert data.tensors["label"].tolist() == [0, 0, 0, 1, 1]


def test_an_empty_sub_folder_is_no_domain_of_an_unpaired_set(tmp_path):
    from ganzoo.data.translation import unpaired_folders

    write_png_images(tmp_path / "set" / "x", 2, seed=1)
    write_png_images(tmp_path / "set" / "y", 2, seed=2)
    (tmp_path / "set" / "z").mkdir()
    (tmp_path / "set" / "__MACOSX").mkdir()
    assert unpaired_folders(tmp_path / "set") == (tmp_path / "set" / "x", tmp_path / "set" / "y")


def test_a_photo_stored_sideways_is_decoded_as_a_viewer_shows_it(tmp_path):
    """A phone stores a portrait photo sideways with EXIF orientation 6 (turn 90 degrees clockwise to view): the
    folder dataset and the translation sets both turn it upright."""
    from PIL import Image

    from ganzoo.data.folder import read_fitted
    from ganzoo.data.translation import read_parts

    stored = np.zeros((16, 32, 3), np.uint8)
    stored[:, :16] = 255  # white on the left as stored, so on top as viewed
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "portrait.jpg", exif=exif, quality=95)
    for image in (read_fitted(tmp_path / "portrait.jpg", 16, 3), read_parts(tmp_path / "portrait.jpg", 16, False)[0]):
        assert image.shape == (3, 16, 16)
        top, bottom = image[:, :6].mean(), image[:, -6:].mean()
        assert top > 200 and bottom < 50, (top, bottom)


def test_colour_images_after_hundreds_of_gray_ones_make_a_colour_set(tmp_path):
    """The probe looks across the whole folder: colour pictures sorted after 300 gray ones are not made gray."""
    from ganzoo.registry import get_dataset

    gray = write_png_images(tmp_path / "set", 300, mode="L", seed=1)
    for index, path in enumerate(write_png_images(tmp_path / "tmp", 20, seed=2)):
        path.rename(tmp_path / "set" / f"z_colour_{index:02d}.png")
    assert gray[0].name < "z_colour_00.png"
    assert get_dataset(str(tmp_path / "set")).info.channels == 3


@pytest.mark.parametrize("count", [256, 257, 511, 5000])
def test_the_probe_opens_at_most_probe_files_spread_over_the_whole_folder(tmp_path, count):
    from ganzoo.data.folder import PROBE_FILES, _probed

    files = [tmp_path / "faces" / f"{index:04d}.png" for index in range(count)]
    chosen = _probed(tmp_path, files, ("faces",))
    assert PROBE_FILES // 2 <= len(chosen) <= PROBE_FILES and chosen[0] == files[0]
    assert files.index(chosen[-1]) >= count - count // PROBE_FILES - 2  # the end of the list too


def test_bad_image_is_skipped_with_a_warning_naming_it(image_folder):
    from ganzoo.data.decoding import BadImageWarning
    from ganzoo.registry import get_dataset

    broken = image_folder / "zz_broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = get_dataset(str(image_folder)).load(None, 16, 3)
    assert len(data) == 64
    assert any(issubclass(w.category, BadImageWarning) and "zz_broken.png" in str(w.message) for w in caught)


def test_empty_folder_is_a_clear_error(tmp_path):
    from ganzoo.registry import get_dataset

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(GanzooError, match="No images"):
        get_dataset(str(tmp_path / "empty"))


def test_batches_are_scaled_shuffled_and_full(image_folder):
    import torch

    from ganzoo.registry import get_dataset

    data = get_dataset(str(image_folder)).load(None, 16, 3)
    batches = list(data.batches(10, torch.Generator().manual_seed(0)))
    assert len(batches) == 6 and all(b["real"].shape == (10, 3, 16, 16) for b in batches)
    assert batches[0]["real"].min() >= -1 and batches[0]["real"].max() <= 1
    with pytest.raises(GanzooError, match="fewer than the batch size"):
        data.steps_per_epoch(100)


def _image_set(count: int = 40) -> "InMemoryData":
    import torch

    from ganzoo.data import InMemoryData
    from ganzoo.specs import DatasetInfo

    generator = torch.Generator().manual_seed(7)
    images = torch.randint(0, 256, (count, 3, 8, 8), dtype=torch.uint8, generator=generator)
    labels = torch.arange(count) % 4
    return InMemoryData("set", DatasetInfo(kind="images", channels=3, image_size=8, num_classes=4),
                        {"real": images, "label": labels})


def test_images_over_the_budget_stay_on_the_host_and_give_the_same_batches():
    """Over ``max_bytes`` the rows of each batch are gathered on the host and copied: same order, same values."""
    import torch

    data = _image_set()
    held = data.to("cpu", max_bytes=data.nbytes())
    host = data.to("cpu", max_bytes=data.nbytes() - 1)
    assert held.target is None and host.target == torch.device("cpu")
    assert host.tensors["real"] is data.tensors["real"]  # not copied
    for part in ((0, 1), (0, 2), (1, 2)):
        batches = [list(d.batches(8, torch.Generator().manual_seed(3), part=part)) for d in (held, host)]
        assert len(batches[0]) == len(batches[1]) == 5
        for one, other in zip(*batches):
            assert one.keys() == other.keys() == {"real", "label"}
            assert all(torch.equal(one[key], other[key]) for key in one)
            assert one["real"].dtype == torch.float32 and one["real"].shape == (8 // part[1], 3, 8, 8)


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")
def test_on_cuda_images_over_the_budget_are_copied_batch_by_batch_through_pinned_memory():
    import torch

    data = _image_set()
    held, host = data.to("cuda"), data.to("cuda", max_bytes=1)
    assert host.target.type == "cuda" and host.tensors["real"].device.type == "cpu"
    for one, other in zip(held.batches(8, torch.Generator().manual_seed(3)), host.batches(8, torch.Generator().manual_seed(3))):
        assert other["real"].device.type == "cuda" and torch.equal(one["real"], other["real"])
        assert torch.equal(one["label"], other["label"])


def test_a_memory_budget_that_is_not_a_positive_number_is_one_sentence(cli, tmp_path):
    write_png_images(tmp_path / "few", 8)
    for bad, message in (("0", "a positive number of gigabytes"), ("-2", "a positive number of gigabytes"),
                         ("lots", "a number like its default 4.0, got 'lots'"), ("1e999", "a positive number of gigabytes")):
        refused = cli("train", "dcgan", "--data", tmp_path / "few", "--set", f"max_memory_gb={bad}", "--epochs", "1",
                      "--out", tmp_path / "run", "--device", "cpu", ok=False)
        assert refused.exit_code == 1 and f"max_memory_gb must be {message}" in " ".join(refused.output.split())
