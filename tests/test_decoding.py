"""Image folders decoded by worker processes: the same images, labels and order as one process
decodes, unreadable files reported by the caller in file order (a stop at the first under
``--strict-data``, with no worker left behind), a bar counting the files, and the cores shared
among torchrun's processes."""

from __future__ import annotations

import io
import multiprocessing
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import default_sigint, write_png_images
from ganzoo.data.decoding import BadImageWarning


def process_id(path: Path) -> np.ndarray:
    """A reader for :func:`decode_files` that records which process read the file."""
    return np.array([os.getpid() % 251], dtype=np.uint8)


def break_file(path: Path) -> Path:
    path.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return path


def bad_image_messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, BadImageWarning)]


@pytest.fixture
def classes(tmp_path) -> Path:
    """Two class folders of 16 px images, 55 readable files and an unreadable one in the middle of ``cats``."""
    write_png_images(tmp_path / "cats", 30, seed=1)
    write_png_images(tmp_path / "dogs", 25, seed=2)
    break_file(tmp_path / "cats" / "img_014b.png")
    return tmp_path


def test_worker_processes_decode_what_one_process_decodes_in_file_order(classes):
    from ganzoo.data.folder import load_folder

    results = {}
    for workers in (0, 2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results[workers] = load_folder(classes, 16, 3, workers=workers)[:2]
        messages = bad_image_messages(caught)
        assert len(messages) == 1 and messages[0].startswith(f"Skipped {classes / 'cats' / 'img_014b.png'}: not a readable image (")
    (one_images, one_labels), (pool_images, pool_labels) = results[0], results[2]
    assert pool_images.shape == (55, 3, 16, 16) and pool_images.dtype == torch.uint8 and pool_images.is_contiguous()
    assert torch.equal(pool_images, one_images) and torch.equal(pool_labels, one_labels)
    assert pool_labels.tolist() == [0] * 30 + [1] * 25
    first_dog = np.array(Image.open(classes / "dogs" / "img_000.png").convert("RGB")).transpose(2, 0, 1)
    assert torch.equal(pool_images[30], torch.from_numpy(first_dog))


def test_the_pool_really_decodes_in_other_processes(tmp_path):
    from ganzoo.data.decoding import decode_files

    files = write_png_images(tmp_path, 40)
    pooled, reasons = decode_files(process_id, files, (1,), workers=2)
    alone, _ = decode_files(process_id, files, (1,), workers=0)
    assert reasons == [None] * 40 and pooled.shape == (40, 1)
    assert set(alone.ravel().tolist()) == {os.getpid() % 251}
    assert os.getpid() % 251 not in set(pooled.ravel().tolist())


def marking_clean_exit(folder: Path, path: Path) -> np.ndarray:
    """A reader whose worker process, on its first file, arranges to leave a file in ``folder`` when it ends
    normally (multiprocessing's exit finalizers run then, not when the process is terminated)."""
    from multiprocessing import util

    if not getattr(marking_clean_exit, "armed", False):
        marking_clean_exit.armed = True
        util.Finalize(None, (folder / str(os.getpid() % 251)).touch, exitpriority=0)
    return np.array([os.getpid() % 251], dtype=np.uint8)


def test_a_pool_that_decoded_everything_ends_its_workers_calmly(tmp_path):
    """Workers are told to stop and exit on their own once every file is decoded: terminating them then printed
    their tracebacks ("EOFError: Ran out of input") over a run that had gone well."""
    from functools import partial

    from ganzoo.data.decoding import decode_files

    (tmp_path / "exits").mkdir()
    files = write_png_images(tmp_path / "images", 40)
    decoded, reasons = decode_files(partial(marking_clean_exit, tmp_path / "exits"), files, (1,), workers=2)
    assert reasons == [None] * 40 and multiprocessing.active_children() == []
    readers = {str(pid) for pid in decoded.ravel().tolist()}
    assert readers and sorted(p.name for p in (tmp_path / "exits").iterdir()) == sorted(readers)  # each ended normally


def test_data_workers_of_a_run_reach_decoding_its_loader_starts_and_bad_values_are_one_sentence(tmp_path, cli):
    from ganzoo.data.decoding import decode_files, decoding_settings
    from ganzoo.errors import GanzooError

    files = write_png_images(tmp_path / "few", 40)
    with decoding_settings(workers=2):
        pooled, _ = decode_files(process_id, files, (1,))  # 40 files: in this process unless told otherwise
        alone, _ = decode_files(process_id, files, (1,), workers=0)  # the caller's own number wins
    assert os.getpid() % 251 not in set(pooled.ravel().tolist())
    assert set(alone.ravel().tolist()) == {os.getpid() % 251}
    for bad in (-1, 1.5, True, "two"):
        with pytest.raises(GanzooError, match=r"^data_workers must be a whole number of at least 0"):
            with decoding_settings(workers=bad):
                pass
    refused = cli("train", "dcgan", "--data", tmp_path / "few", "--set", "data_workers=-1", "--epochs", "1",
                  "--out", tmp_path / "run", ok=False)
    assert refused.exit_code == 1 and "data_workers must be a whole number of at least 0" in refused.output


def test_strict_data_stops_at_the_first_bad_file_and_leaves_no_worker_running(tmp_path):
    from ganzoo.data.folder import load_folder

    write_png_images(tmp_path, 120)
    break_file(tmp_path / "img_010b.png")
    break_file(tmp_path / "img_100b.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadImageWarning)
        with pytest.raises(BadImageWarning, match="img_010b.png"):
            load_folder(tmp_path, 16, 3, workers=2)
    assert multiprocessing.active_children() == []


def test_translation_sets_decoded_by_workers_match_one_process(tmp_path):
    from ganzoo.data.translation import load_translation

    rng = np.random.default_rng(3)
    (tmp_path / "pairs" / "train").mkdir(parents=True)
    for index in range(12):
        Image.fromarray(rng.integers(0, 256, (20, 40, 3), dtype=np.uint8)).save(tmp_path / "pairs" / "train" / f"{index:02d}.png")
    write_png_images(tmp_path / "u" / "trainA", 9, size=20, seed=1)
    write_png_images(tmp_path / "u" / "trainB", 14, size=20, seed=2)
    for root, kind in ((tmp_path / "pairs", "paired"), (tmp_path / "u", "unpaired")):
        one = load_translation(root, kind, "set", 16, {"data_workers": 0}).tensors
        pooled = load_translation(root, kind, "set", 16, {"data_workers": 2}).tensors
        assert one.keys() == pooled.keys() == {"a", "b"}
        for side in ("a", "b"):
            assert pooled[side].is_contiguous() and torch.equal(pooled[side], one[side])
    assert pooled["a"].shape == (9, 3, 18, 18) and pooled["b"].shape == (14, 3, 18, 18)


def test_a_console_shows_a_bar_counting_the_files(tmp_path):
    from rich.console import Console

    from ganzoo.data.decoding import decoding_settings
    from ganzoo.data.folder import load_folder

    write_png_images(tmp_path, 40)
    screen = io.StringIO()
    with decoding_settings(Console(file=screen, force_terminal=True, width=120)):
        load_folder(tmp_path, 16, 3, workers=2)
    shown = screen.getvalue()
    assert "decoding 40 images" in shown and "40/40" in shown
    load_folder(tmp_path, 16, 3, workers=2)  # outside the block: no console, no bar
    assert screen.getvalue() == shown


def test_torchrun_processes_on_one_node_share_its_cores(monkeypatch):
    from ganzoo.data.decoding import MAX_WORKERS, default_workers

    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_workers() == min(MAX_WORKERS, cores)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(cores))
    assert default_workers() == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(4 * cores))
    assert default_workers() == 1


def test_training_on_a_large_folder_decodes_it_in_workers_and_names_a_bad_file(cli, tmp_path, monkeypatch):
    from ganzoo.data.decoding import MIN_POOL_FILES

    monkeypatch.setenv("GANZOO_DECODE_CACHE", "0")  # both runs decode (tests/test_decoded_cache.py covers the cache)
    folder = tmp_path / "faces"
    write_png_images(folder, MIN_POOL_FILES)
    bad = break_file(folder / "img_200b.png")
    result = cli("train", "dcgan", "--data", str(folder), "--epochs", "1", "--batch-size", "128", "--out",
                 str(tmp_path / "run"), "--no-progress", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert f"warning: Skipped {bad}: not a readable image" in result.output
    assert (tmp_path / "run" / "generator.safetensors").is_file()
    strict = cli("train", "dcgan", "--data", str(folder), "--epochs", "1", "--out", str(tmp_path / "strict"),
                 "--no-progress", "--device", "cpu", "--strict-data", ok=False)
    assert strict.exit_code != 0
    assert f"{bad}: not a readable image" in strict.output and "drop --strict-data" in strict.output
    assert multiprocessing.active_children() == []


def reader_that_warns(path: Path) -> np.ndarray:
    """A reader for :func:`decode_files` that warns about every file, as PIL does about huge images."""
    warnings.warn(f"odd file {path.name}", RuntimeWarning)
    return np.zeros(1, dtype=np.uint8)


def reader_that_dies(path: Path) -> np.ndarray:
    """A reader whose process dies on one file, as one killed for memory would."""
    if path.name == "img_030.png":
        os._exit(1)
    return np.zeros(1, dtype=np.uint8)


def test_warnings_raised_in_workers_reach_the_caller_in_file_order(tmp_path):
    from ganzoo.data.decoding import decode_files

    files = write_png_images(tmp_path, 40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decode_files(reader_that_warns, files, (1,), workers=2)
    assert [str(w.message) for w in caught if w.category is RuntimeWarning] == [f"odd file {f.name}" for f in files]


def test_a_worker_that_dies_is_one_sentence_and_leaves_no_worker(tmp_path):
    from ganzoo.data.decoding import decode_files
    from ganzoo.errors import GanzooError

    files = write_png_images(tmp_path, 40)
    with pytest.raises(GanzooError, match=r"^A worker process decoding the images died \(out of memory"):
        decode_files(reader_that_dies, files, (1,), workers=2)
    assert multiprocessing.active_children() == []


def _load_in_a_daemon(folder: Path, queue) -> None:
    from ganzoo.data.folder import load_folder

    queue.put(load_folder(folder, 16, 3, workers=2)[0].shape[0])


def test_a_daemon_process_decodes_in_itself_since_it_may_not_start_workers(tmp_path):
    write_png_images(tmp_path, 40)
    queue = multiprocessing.Queue()
    daemon = multiprocessing.Process(target=_load_in_a_daemon, args=(tmp_path, queue), daemon=True)
    daemon.start()
    assert queue.get(timeout=60) == 40
    daemon.join(timeout=60)
    assert daemon.exitcode == 0


CTRL_C_CHILD = """
import multiprocessing, sys, time
from pathlib import Path
import numpy as np
from ganzoo.data.decoding import decode_files

def slow_read(path):
    time.sleep(0.02)
    return np.zeros(1, dtype=np.uint8)

if __name__ == "__main__":
    print("decoding", flush=True)
    try:
        decode_files(slow_read, [Path(f"file_{i}") for i in range(400)], (1,), workers=2)
    except KeyboardInterrupt:
        print("interrupted; workers left:", len(multiprocessing.active_children()), flush=True)
"""


def test_ctrl_c_twice_during_decoding_stops_the_workers_at_once(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "decode_and_wait.py"
    script.write_text(CTRL_C_CHILD)
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True,
                             preexec_fn=default_sigint)
    assert child.stdout.readline().strip() == "decoding"
    time.sleep(1.0)  # the pool is up and each worker is inside a one-second chunk
    for _ in range(2):  # a terminal's Ctrl-C reaches the whole process group
        os.killpg(child.pid, signal.SIGINT)
        time.sleep(0.3)
    try:
        output, _ = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert "interrupted; workers left: 0" in output
    left = subprocess.run(["ps", "-o", "pid=", "-g", str(child.pid)], capture_output=True, text=True).stdout.split()
    assert left == []
