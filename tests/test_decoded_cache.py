"""The cache of decoded image folders: a second load reads it instead of decoding, a changed file
(even one whose modification time was set back) or a damaged entry means decoding again, unreadable files are named again from it, small folders
and ``GANZOO_DECODE_CACHE=0`` bypass it, and a training run says where the images came from."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import write_png_images
from ganzoo.data.decoded_cache import MIN_CACHED_FILES
from ganzoo.data.decoding import BadImageWarning


@pytest.fixture
def big_folder(tmp_path) -> Path:
    """Just enough 16 px images, in two class sub-folders, to be cached."""
    write_png_images(tmp_path / "faces" / "a", MIN_CACHED_FILES // 2, seed=1)
    write_png_images(tmp_path / "faces" / "b", MIN_CACHED_FILES - MIN_CACHED_FILES // 2, seed=2)
    return tmp_path / "faces"


def cache_entries() -> list[Path]:
    return sorted((Path(os.environ["GANZOO_CACHE"]) / "decoded").glob("*"))


def refuse_decoding(monkeypatch) -> None:
    """Make any decoding fail, so a load that succeeds can only have read the cache."""
    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded instead of reading the cache")

    monkeypatch.setattr("ganzoo.data.folder.decode_files", no_decoding)


def test_a_second_load_reads_the_cache_and_matches_the_decoded_images(big_folder, monkeypatch):
    from ganzoo.data.folder import load_folder

    images, labels, notes = load_folder(big_folder, 16, 3)
    (entry,) = cache_entries()
    assert notes == (f"cached the decoded images in {entry} (0.0 GB); later runs on this folder load them from there",)
    refuse_decoding(monkeypatch)
    again, again_labels, again_notes = load_folder(big_folder, 16, 3)
    assert torch.equal(again, images) and torch.equal(again_labels, labels) and again.dtype == torch.uint8
    assert labels.bincount().tolist() == [MIN_CACHED_FILES // 2, MIN_CACHED_FILES - MIN_CACHED_FILES // 2]
    assert again_notes == (f"loaded {MIN_CACHED_FILES:,} decoded images from the cache {entry}",)
    with pytest.raises(AssertionError, match="decoded instead"):
        load_folder(big_folder, 32, 3)  # another size is another entry


def test_a_changed_file_means_decoding_again_and_replacing_the_entry(big_folder):
    from ganzoo.data.folder import load_folder

    images, _, _ = load_folder(big_folder, 16, 3)
    first = big_folder / "a" / "img_000.png"
    Image.new("RGB", (16, 16), (255, 0, 0)).save(first)
    changed, _, notes = load_folder(big_folder, 16, 3)
    assert notes[0].startswith("cached the decoded images in")
    assert changed[0, :, 5, 5].tolist() == [255, 0, 0] and not torch.equal(changed[0], images[0])
    assert torch.equal(changed[1:], images[1:])
    (big_folder / "b" / "img_000.png").unlink()
    assert len(load_folder(big_folder, 16, 3)[0]) == MIN_CACHED_FILES - 1
    assert len(cache_entries()) == 1


def test_bytes_replaced_under_a_restored_modification_time_mean_decoding_again(big_folder):
    from ganzoo.data.folder import load_folder

    first = big_folder / "a" / "img_000.png"
    Image.new("RGB", (16, 16), (255, 0, 0)).save(first, compress_level=0)  # stored: the size depends on nothing else
    load_folder(big_folder, 16, 3)
    before = first.stat()
    Image.new("RGB", (16, 16), (0, 0, 255)).save(first, compress_level=0)  # as `cp -p` or `touch -r` would leave it
    os.utime(first, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (first.stat().st_size, first.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    images, _, notes = load_folder(big_folder, 16, 3)
    assert notes[0].startswith("cached the decoded images in") and images[0, :, 5, 5].tolist() == [0, 0, 255]


def test_a_damaged_entry_is_decoded_again_and_replaced(big_folder):
    from ganzoo.data.folder import load_folder

    images = load_folder(big_folder, 16, 3)[0].clone()  # the entry is about to be damaged in place
    (entry,) = cache_entries()
    data = bytearray(entry.read_bytes())
    entry.write_bytes(bytes(data[: len(data) // 2]))
    again, _, notes = load_folder(big_folder, 16, 3)
    assert torch.equal(again, images) and notes[0].startswith("cached the decoded images in")
    assert entry.stat().st_size == len(data)


def test_unreadable_files_are_named_again_from_the_cache_and_strict_data_still_stops(big_folder, monkeypatch):
    from ganzoo.data.folder import load_folder

    bad = big_folder / "a" / "img_100b.png"
    bad.write_bytes(b"not an image")
    with pytest.warns(BadImageWarning, match="img_100b.png"):
        images, _, _ = load_folder(big_folder, 16, 3)
    refuse_decoding(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again, _, notes = load_folder(big_folder, 16, 3)
    assert notes[0].startswith("loaded") and torch.equal(again, images) and len(again) == MIN_CACHED_FILES
    assert [str(w.message).split(":")[0] for w in caught if issubclass(w.category, BadImageWarning)] == [f"Skipped {bad}"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadImageWarning)
        with pytest.raises(BadImageWarning, match="img_100b.png"):
            load_folder(big_folder, 16, 3)


def test_small_folders_and_a_switched_off_cache_are_not_cached(tmp_path, big_folder, monkeypatch):
    from ganzoo.data.folder import load_folder

    write_png_images(tmp_path / "small", MIN_CACHED_FILES - 1)
    assert load_folder(tmp_path / "small", 16, 3)[2] == ()
    for off in ("0", "false", "No", "off"):  # the words a switch is turned off with, in any case
        monkeypatch.setenv("GANZOO_DECODE_CACHE", off)
        assert load_folder(big_folder, 16, 3)[2] == ()
    assert cache_entries() == []


def test_an_unwritable_cache_costs_only_the_cache(big_folder, tmp_path, monkeypatch):
    from ganzoo.data.folder import load_folder

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("GANZOO_CACHE", str(blocker))
    images, _, notes = load_folder(big_folder, 16, 3)
    assert len(images) == MIN_CACHED_FILES
    assert notes[0].startswith(f"could not cache the decoded images in {blocker}") and "decodes them again" in notes[0]


def test_training_says_the_images_came_from_the_cache(cli, big_folder, tmp_path):
    common = ("--data", str(big_folder), "--epochs", "1", "--batch-size", "256", "--no-progress", "--device", "cpu")
    first = cli("train", "dcgan", *common, "--out", str(tmp_path / "one"))
    assert "cached the decoded images in" in first.output
    second = cli("train", "dcgan", *common, "--out", str(tmp_path / "two"))
    assert f"loaded {MIN_CACHED_FILES:,} decoded images from the cache" in second.output


def test_an_entry_with_labels_or_images_training_cannot_use_is_decoded_again(big_folder):
    from safetensors.torch import save_file

    from ganzoo.data.folder import load_folder
    from ganzoo.safefile import read_metadata

    images, labels = (tensor.clone() for tensor in load_folder(big_folder, 16, 3)[:2])  # the entry is rewritten in place
    (entry,) = cache_entries()
    metadata = read_metadata(entry)
    wrong_label = labels.clone()
    wrong_label[0] = 1 << 30  # a flipped bit: a class that does not exist
    for damaged in ({"images": images.clone(), "labels": wrong_label},
                    {"images": images[:, :, :8, :8].contiguous(), "labels": labels.clone()},  # another image size
                    {"images": images.clone(), "labels": labels.to(torch.int32)}):
        save_file(damaged, str(entry), metadata)
        again, again_labels, notes = load_folder(big_folder, 16, 3)
        assert notes[0].startswith("cached the decoded images in")
        assert torch.equal(again, images) and torch.equal(again_labels, labels)


def test_a_write_clears_what_a_killed_earlier_write_left_but_not_a_write_in_progress(big_folder):
    from ganzoo.data.decoded_cache import STALE_SECONDS
    from ganzoo.data.folder import load_folder

    load_folder(big_folder, 16, 3)
    (entry,) = cache_entries()
    killed, in_progress = entry.parent / f".{entry.name}.killed.tmp", entry.parent / f".{entry.name}.running.tmp"
    for leftover in (killed, in_progress):
        leftover.write_bytes(b"\0" * 1024)
    old = entry.stat().st_mtime - STALE_SECONDS - 60
    os.utime(killed, (old, old))
    Image.new("RGB", (16, 16)).save(big_folder / "a" / "img_000.png")  # a change, so the entry is written again
    load_folder(big_folder, 16, 3)
    assert not killed.exists() and in_progress.exists()


ANON_MEMORY_SCRIPT = """
import hashlib, json, sys
from pathlib import Path

def anonymous_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024

from ganzoo.data.folder import load_folder
import torch  # imported before the baseline, as training has it
before = anonymous_bytes()
images, labels, notes = load_folder(Path(sys.argv[1]), 64, 3, workers=0)
grown = anonymous_bytes() - before
maps = open("/proc/self/maps").read()
print(json.dumps({"grown": grown, "size": images.numel(), "notes": notes,
                  "digest": hashlib.sha256(images.numpy().tobytes()).hexdigest(),
                  "mapped": [line.split()[-1] for line in maps.splitlines() if "decoded" in line]}))
"""


def test_a_large_folder_is_decoded_straight_into_its_cache_entry_not_held_in_memory_as_well(tmp_path):
    """The first load of a large folder writes the images into the entry on disk and maps them from
    there: the process's anonymous memory grows by about the whole set less than when it decodes
    into memory (the cache off). A set larger than memory therefore decodes."""
    import json
    import subprocess
    import sys

    write_png_images(tmp_path / "faces", 2048, size=64, seed=3)  # 25 MB decoded
    runs = {}
    for name, switch in (("cached", "1"), ("in memory", "0")):
        env = {**os.environ, "GANZOO_DECODE_CACHE": switch}
        done = subprocess.run([sys.executable, "-c", ANON_MEMORY_SCRIPT, str(tmp_path / "faces")], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        runs[name] = json.loads(done.stdout)
    cached, in_memory = runs["cached"], runs["in memory"]
    (entry,) = cache_entries()
    assert cached["notes"][0].startswith(f"cached the decoded images in {entry}")
    assert cached["digest"] == in_memory["digest"] and cached["size"] == 2048 * 3 * 64 * 64
    assert str(entry) in cached["mapped"]
    assert in_memory["grown"] > 0.9 * in_memory["size"]  # the measure sees a set held in memory
    # both also keep what the decoding loop's allocator holds on to (about 10 MB here, not growing with the set)
    assert in_memory["grown"] - cached["grown"] > 0.75 * cached["size"], (in_memory["grown"], cached["grown"])


def test_an_entry_with_unreadable_files_keeps_their_rows_out_and_reads_back(big_folder, monkeypatch):
    """Rows left unused by unreadable files sit between the images and the labels of the entry."""
    from ganzoo.data.folder import load_folder

    for name in ("img_050b.png", "img_150b.png"):
        (big_folder / "a" / name).write_bytes(b"not an image")
    with pytest.warns(BadImageWarning):
        images, labels, notes = load_folder(big_folder, 16, 3)
    assert notes[0].startswith("cached") and len(images) == len(labels) == MIN_CACHED_FILES
    refuse_decoding(monkeypatch)
    with pytest.warns(BadImageWarning) as caught:
        again, again_labels, notes = load_folder(big_folder, 16, 3)
    assert notes[0].startswith("loaded") and torch.equal(again, images) and torch.equal(again_labels, labels)
    assert [w.message.path.name for w in caught if issubclass(w.category, BadImageWarning)] == ["img_050b.png", "img_150b.png"]


SLOW_DECODE_SCRIPT = """
import sys, time
from pathlib import Path
import ganzoo.data.folder as folder

original = folder.read_fitted

def slow(*args, **kwargs):
    time.sleep(0.01)
    return original(*args, **kwargs)

folder.read_fitted = slow
folder.load_folder(Path(sys.argv[1]), 16, 3, workers=0)
"""


def test_sigterm_while_decoding_into_the_cache_leaves_no_temporary_file(big_folder):
    """torchrun stops a failed run's processes with SIGTERM: the set-sized temporary entry goes with them."""
    import signal
    import subprocess
    import sys
    import time

    decoded = Path(os.environ["GANZOO_CACHE"]) / "decoded"
    process = subprocess.Popen([sys.executable, "-c", SLOW_DECODE_SCRIPT, str(big_folder)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(decoded.glob(".*.tmp")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not list(decoded.glob(".*.tmp")):  # what the process said, should this ever fail again (it failed once)
        process.kill()
        pytest.fail(f"the decoding never started its temporary entry (status {process.poll()}): "
                    f"{process.communicate(timeout=60)[1]}")
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, f"status {process.returncode}: {errors}"
    assert list(decoded.iterdir()) == [], f"left {sorted(p.name for p in decoded.iterdir())}; {errors}"
