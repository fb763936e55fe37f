"""Translation sets streamed from disk by DataLoader workers: chosen by size or forced, the same
``{"a", "b"}`` batches as in memory (same crop for both sides of a pair), and pix2pix trains on them."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.errors import GanzooError
from test_translation import TINY, one_thread, write_images  # noqa: F401  (one_thread: autouse, one torch thread)


@pytest.fixture
def twins(tmp_path) -> Path:
    """A paired set whose A and B halves are the same picture, so any shared crop gives a == b."""
    rng = np.random.default_rng(5)
    (tmp_path / "twins" / "train").mkdir(parents=True)
    for index in range(5):
        half = rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([half, half], 1)).save(tmp_path / "twins" / "train" / f"{index}.png")
    return tmp_path / "twins"


@pytest.fixture
def unpaired(tmp_path) -> Path:
    write_images(tmp_path / "u" / "trainA", 3, (40, 36), seed=1)
    write_images(tmp_path / "u" / "trainB", 5, (36, 36), seed=2)
    return tmp_path / "u"


def load(root: Path, kind: str, **config):
    from ganzoo.data.translation import load_translation

    return load_translation(root, kind, "set", 32, config).to("cpu")


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_pairs_share_the_crop_and_match_memory(twins, workers):
    from ganzoo.data.translation_stream import StreamedTranslationData

    streamed = load(twins, "paired", stream=True, data_workers=workers)
    memory = load(twins, "paired")
    assert isinstance(streamed, StreamedTranslationData) and len(streamed) == 5 and streamed.steps_per_epoch(2) == 2
    assert streamed.notes == ("streaming 5 image pairs from disk (would need 0.0 GB in memory; stream=True)",)
    crops = set()
    for seed in range(3):  # several epochs through the same persistent workers
        batches = list(streamed.batches(2, torch.Generator().manual_seed(seed)))
        expected = list(memory.batches(2, torch.Generator().manual_seed(seed)))
        assert len(batches) == 2
        for batch, same in zip(batches, expected):
            assert batch["a"].shape == batch["b"].shape == (2, 3, 32, 32) and batch["a"].dtype == torch.float32
            assert -1 <= batch["a"].min() and batch["a"].max() <= 1
            assert torch.equal(batch["a"], batch["b"])  # A and B cropped and flipped alike
            assert torch.equal(batch["a"], same["a"]) and torch.equal(batch["b"], same["b"])
            crops.add(tuple(batch["a"][0, 0, 0, :4].tolist()))
    assert len(crops) > 1  # the jitter moves
    assert all(torch.equal(streamed.preview()[k], memory.preview()[k]) for k in "ab")


def test_streamed_unpaired_epoch_is_the_larger_domain_with_b_at_random(unpaired):
    streamed = load(unpaired, "unpaired", stream=True, data_workers=1)
    memory = load(unpaired, "unpaired")
    assert streamed.sizes() == (3, 5) and len(streamed) == 5 and streamed.steps_per_epoch(1) == 5
    assert streamed.notes[0].startswith("streaming 8 images from disk")
    batches = list(streamed.batches(1, torch.Generator().manual_seed(0)))
    expected = list(memory.batches(1, torch.Generator().manual_seed(0)))
    assert len(batches) == 5
    for batch, same in zip(batches, expected):
        assert batch["a"].shape == batch["b"].shape == (1, 3, 32, 32)
        assert torch.equal(batch["a"], same["a"]) and torch.equal(batch["b"], same["b"])


def test_sets_over_the_memory_budget_stream_unless_told_not_to(twins):
    from ganzoo.data.translation import TranslationData
    from ganzoo.data.translation_stream import StreamedTranslationData

    assert isinstance(load(twins, "paired"), TranslationData)  # 5 pairs are far below the default 4 GB
    over = load(twins, "paired", max_memory_gb=1e-5)  # they need 5 * 2 * 3 * 36 * 36 bytes = 38.9 kB
    assert isinstance(over, StreamedTranslationData)
    assert over.notes == ("streaming 5 image pairs from disk (would need 0.0 GB in memory; over max_memory_gb=1e-05)",)
    assert isinstance(load(twins, "paired", max_memory_gb=1e-5, stream=False), TranslationData)
    for setting, message in [({"stream": "yes"}, "stream must be auto, True or False"),
                             ({"max_memory_gb": 0}, "max_memory_gb must be a positive number"),
                             ({"data_workers": -1}, "data_workers must be a whole number")]:
        with pytest.raises(GanzooError, match=message):
            load(twins, "paired", **setting)


def test_unreadable_files_are_skipped_with_a_warning(twins):
    from ganzoo.data.decoding import BadImageWarning

    (twins / "train" / "2.png").write_bytes(b"not a png")
    with pytest.warns(BadImageWarning, match="2.png"):
        assert load(twins, "paired").sizes() == (4, 4)  # in memory: left out
    streamed = load(twins, "paired", stream=True, data_workers=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(streamed.batches(1, torch.Generator().manual_seed(0)))
    assert len(batches) == 5 and all(torch.equal(b["a"], b["b"]) for b in batches)  # streamed: the next file stands in
    assert any(issubclass(w.category, BadImageWarning) and "2.png" in str(w.message) for w in caught)


def test_pix2pix_trains_one_step_through_the_stream(cli, twins, tmp_path):
    run = tmp_path / "run"
    result = cli("train", "pix2pix", "--data", twins, "--image-size", "32", "--epochs", "1", "--batch-size", "5",
                 "--out", run, "--set", "stream=True", "--set", "data_workers=1", *TINY, "--no-progress", "--device", "cpu")
    assert "streaming 5 image pairs from disk (would need 0.0 GB in memory; stream=True)" in result.output
    assert (run / "generator.safetensors").is_file() and (run / "samples" / "epoch_001.png").is_file()
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    log = [r for r in rows if r["event"] == "log"][-1]
    assert log["step"] == 1 and np.isfinite(log["g_l1"]) and np.isfinite(log["d_real"])
    assert json.loads((run / "run.json").read_text())["config"]["stream"] is True


def _ganzoo(*args, limit_bytes: int | None = None, env=None):
    """Run the real ``ganzoo`` command in a process of its own (a DataLoader worker's output is the terminal's,
    not click's runner's); ``limit_bytes`` caps its address space, so an allocation too large fails at once."""
    import os
    import resource
    import subprocess
    import sys

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "ganzoo", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})}, preexec_fn=cap if limit_bytes else None)


def test_a_streamed_set_whose_files_all_fail_in_a_worker_is_one_sentence(unpaired, tmp_path):
    for path in (unpaired / "trainA").iterdir():
        path.write_bytes(b"not an image")
    done = _ganzoo("train", "cyclegan", "--data", unpaired, "--image-size", "32", "--epochs", "1", "--set", "blocks=1",
                   "--set", "stream=True", "--set", "data_workers=1", *TINY, "--no-progress", "--device", "cpu",
                   "--out", tmp_path / "run")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Caught" not in done.stderr
    first, second = sorted(path.name for path in (unpaired / "trainA").iterdir())[:2]
    assert (f"Error: None of the 3 image files in {unpaired / 'trainA'} could be decoded ({first}: not a readable "
            f"image (cannot identify image file") in " ".join(done.stderr.split())
    assert f"; {second}: not a readable image" in done.stderr and "; check that they are images." in done.stderr
    skipped = [line for line in done.stderr.splitlines() if "Skipped" in line]  # as an in-memory set's, no source line
    assert skipped and all(line.startswith("warning: Skipped ") for line in skipped), done.stderr


def test_an_image_size_too_large_for_memory_is_said_so_not_blamed_on_the_files(unpaired, tmp_path):
    """Each 100,000 px image would take 30 GB and the generator's first layer far more: the run is refused before
    anything is decoded, measured against the room the process has (here ``ulimit -v`` 8 GiB), not the files'
    fault."""
    done = _ganzoo("train", "cyclegan", "--data", unpaired, "--image-size", "100000", "--epochs", "1", "--set",
                   "blocks=1", "--set", "stream=True", "--set", "data_workers=0", *TINY, "--no-progress",
                   "--device", "cpu", "--out", tmp_path / "run", limit_bytes=8 * 2**30)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    said = re.fullmatch(r"Error: --image-size 100000 with a batch of 1 needs at least [0-9.]+ GiB for the "
                        r"generator's largest layer alone, more than the ([0-9.]+) GiB free on cpu; use a smaller "
                        r"--image-size or --batch-size\.", " ".join(done.stderr.split()))
    assert said and float(said.group(1)) < 8, done.stderr
    assert "could be decoded" not in done.stderr and "not a readable image" not in done.stderr


class _Refusing:
    """A dataset whose every item raises a GanzooError subclass with a message of two lines (as a plugin's may)."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index):
        from ganzoo.download import DownloadError

        raise DownloadError("The archive could not be read.\nPut a good copy at data/set.zip.", "damaged")


@pytest.mark.parametrize("workers", [0, 1])
def test_an_error_raised_in_a_worker_comes_back_with_its_class_and_whole_message(workers):
    from torch.utils.data import DataLoader

    from ganzoo.data.translation_stream import worker_error
    from ganzoo.download import DownloadError

    with pytest.raises(DownloadError) as caught:
        next(iter(DataLoader(_Refusing(), num_workers=workers)))
    assert str(caught.value).startswith("Caught" if workers else "The archive")  # torch's wrapping in a worker
    error = worker_error(caught.value)
    assert type(error) is DownloadError
    assert str(error) == "The archive could not be read.\nPut a good copy at data/set.zip."
