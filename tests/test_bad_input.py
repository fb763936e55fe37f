"""Bad input, one test each: one clear sentence, exit status 1, and nothing already written lost.

Unknown names, broken generator files and pickles passed as weights are covered in
tests/test_cli.py and tests/test_weights.py; this file adds what they do not.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys

import pytest

from conftest import write_png_images
from ganzoo.checkpoint import list_checkpoints, load_checkpoint

TINY_DCGAN = ("dcgan", "--image-size", "16", "--batch-size", "16", "--set", "g_width=8", "--set", "d_width=8",
              "--epochs", "1", "--no-progress", "--device", "cpu")


def _one_line(result) -> str:
    return " ".join(result.output.split())


# -- data folders -------------------------------------------------------------------------

def test_missing_data_folder(cli, tmp_path):
    result = cli("train", *TINY_DCGAN, "--data", tmp_path / "nowhere", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and "does not exist" in _one_line(result)
    assert not (tmp_path / "run").exists()


def test_a_file_passed_as_data_folder(cli, tmp_path):
    picture = write_png_images(tmp_path, 1)[0]
    result = cli("train", *TINY_DCGAN, "--data", picture, "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and _one_line(result) == (
        f"Error: --data '{picture}' is a file; pass the folder that holds the images, or a dataset name from "
        "'ganzoo datasets'.")


def test_an_output_folder_inside_the_data_folder_is_refused(cli, tmp_path, image_folder):
    for out in (image_folder / "run", image_folder):
        result = cli("train", *TINY_DCGAN, "--data", image_folder, "--out", out, ok=False)
        assert result.exit_code == 1 and _one_line(result) == (
            f"Error: --out {out} lies inside the data folder {image_folder}, so the run's pictures would become "
            "training images of the next run on it; choose an --out folder outside it.")
    assert sorted(p.name for p in image_folder.iterdir()) == [f"img_{i:03d}.png" for i in range(64)]


def test_resume_and_overwrite_together_are_refused(cli, tmp_path):
    result = cli("train", "gan", "--resume", tmp_path / "run", "--overwrite", ok=False)
    assert result.exit_code == 2 and result.output.strip().endswith(
        "Error: --resume continues the run in its folder and --overwrite replaces it with a new one; pass only one "
        "of them.")


def test_a_mistyped_setting_or_dataset_is_named_before_the_run_already_in_the_folder(cli, tmp_path):
    run = ("train", "gan", "--data", "ring8", "--epochs", "1", "--no-progress", "--device", "cpu", "--out", tmp_path)
    cli(*run)
    assert " ".join(cli(*run, "--set", "lr=abc", ok=False).output.split()) == (
        "Error: lr must be a number like its default 0.001, got 'abc'; set it as in --set lr=0.001.")
    d_norm = cli("train", "dcgan", "--data", "mnist", "--set", "d_norm=group", "--out", tmp_path, ok=False).output
    assert " ".join(d_norm.split()) == (
        "Error: d_norm must be batch, layer or none, got 'group'; set it as in --set d_norm=batch.")
    pix2pix = cli("train", "pix2pix", "--set", "direction=AtoC", "--out", tmp_path, ok=False).output
    assert " ".join(pix2pix.split()) == (
        "Error: direction must be AtoB or BtoA, got 'AtoC'; set it as in --set direction=AtoB.")
    mistyped_data = cli("train", "gan", "--data", "rign8", "--out", tmp_path, ok=False).output
    assert " ".join(mistyped_data.split()).startswith("Error: Unknown dataset 'rign8'. Did you mean 'ring8'?")
    assert "already holds a training run" in cli(*run, ok=False).output


def test_an_image_size_the_networks_cannot_take_is_named_before_the_run_already_in_the_folder(cli, tmp_path,
                                                                                                image_folder):
    cli("train", *TINY_DCGAN, "--data", image_folder, "--out", tmp_path / "run")
    result = cli("train", *TINY_DCGAN, "--data", image_folder, "--out", tmp_path / "run", "--image-size", "36", ok=False)
    assert result.exit_code == 1 and _one_line(result).startswith("Error: DCGAN cannot make 36x36 images")


def test_a_folders_own_image_size_the_networks_cannot_take_says_it_came_from_the_folder(cli, tmp_path):
    write_png_images(tmp_path / "photos", 4, size=100)
    result = cli("train", "dcgan", "--data", tmp_path / "photos", "--out", tmp_path / "run", "--device", "cpu",
                 ok=False)
    assert result.exit_code == 1 and _one_line(result) == (
        f"Error: DCGAN cannot make 100x100 images, the size of the images in {tmp_path / 'photos'}, which a run takes "
        "when no --image-size is given; pass --image-size with a side of 8 or more that is 4 to 7 times a power of "
        "two, such as 28, 32, 64 or 128.")


def test_a_conditional_model_on_a_folder_without_classes_names_why_and_what_to_do(cli, tmp_path):
    """A file lying beside the class folders is named; all images below one sub-folder, whose own sub-folders are
    classes, is one class (not "1 classes"), and that sub-folder is the --data to pass."""
    stray = tmp_path / "stray"
    write_png_images(stray / "cats", 2, seed=1)
    write_png_images(stray / "dogs", 2, seed=2)
    write_png_images(stray, 1, seed=3)
    nested = tmp_path / "nested"
    write_png_images(nested / "all" / "cats", 2, seed=1)
    write_png_images(nested / "all" / "dogs", 2, seed=2)
    needs = ("Error: Model 'cgan' is conditional and needs a dataset with class labels (mnist, fashion-mnist, "
             "cifar10, or an image folder whose images all lie in sub-folders, one per class, two or more), but this "
             "dataset has ")
    told = {name: _one_line(cli("train", "cgan", "--data", tmp_path / name, "--out", tmp_path / "run", ok=False))
            for name in ("stray", "nested")}
    assert told["stray"] == needs + (
        f"0 classes (images such as {stray / 'img_000.png'} lie beside its sub-folders, and a folder gives classes "
        f"only when every image lies in one of them; move such images into a class folder or out of {stray}).")
    assert told["nested"] == needs + (
        f"1 class (every image lies in {nested / 'all'}, whose sub-folders would be the classes; pass --data "
        f"{nested / 'all'}).")


def test_eval_tells_a_skipped_file_as_train_does(cli, tmp_path):
    """One plain line, not Python's warning with its source line."""
    import numpy as np
    import torch

    from ganzoo.metrics.classifier import DigitClassifier, save_classifier

    torch.manual_seed(0)
    save_classifier(tmp_path / "classifier.safetensors", DigitClassifier().eval(), test_accuracy=0.1)
    folder = tmp_path / "digits"
    write_png_images(folder, 12, size=28, mode="L")
    (folder / "zz_broken.png").write_bytes(b"not an image")
    np.savez(tmp_path / "fake.npz", images=np.zeros((12, 1, 28, 28), np.uint8))
    result = cli("eval", "--samples", tmp_path / "fake.npz", "--data", folder, "--metrics", "digits",
                 "--classifier", tmp_path / "classifier.safetensors")
    assert f"warning: Skipped {folder / 'zz_broken.png'}: not a readable image (" in _one_line(result)
    assert "BadImageWarning" not in result.output and "folder.py" not in result.output


def test_running_out_of_memory_is_one_sentence_and_leaves_no_run_folder(cli, tmp_path, monkeypatch):
    huge = ("train", "gan", "--data", "ring8", "--epochs", "1", "--set", "hidden_dims=[20000000, 20000000]",
            "--device", "cpu", "--no-progress", "--out")  # a 2e7 x 2e7 layer: 1.42 PiB, refused by the allocator at once
    result = cli(*huge, tmp_path / "run", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert " ".join(result.output.split()) == (
        "Error: Ran out of memory (tried to allocate 1.42 PiB on the CPU); lower what sets the size (--batch-size, "
        "--image-size, or the networks' widths with --set) or use a device with more memory.")
    assert not (tmp_path / "run").exists()
    many = cli("sample", "cgan", "--pretrained", "cgan-mnist", "--num", "100000000000", "--out", tmp_path / "x.npz",
               ok=False)  # the sentence names what sets the size in this command: no --image-size or --set here
    assert many.exit_code == 1 and " ".join(many.output.split()).endswith(
        "on the CPU); lower what sets the size (--num, or --batch-size) or use a device with more memory.")
    monkeypatch.setenv("GANZOO_DEBUG", "1")
    with pytest.raises(RuntimeError, match="DefaultCPUAllocator"):
        cli(*huge, tmp_path / "debug")


def test_empty_data_folder(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("train", *TINY_DCGAN, "--data", tmp_path / "empty", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and "No images" in _one_line(result) and str(tmp_path / "empty") in _one_line(result)


def test_folder_with_only_undecodable_images(cli, tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    for i in range(3):
        (folder / f"x{i}.png").write_bytes(b"these are not image bytes %d" % i)
    result = cli("train", *TINY_DCGAN, "--data", folder, "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and _one_line(result) == (  # why, for the first two: the words of their warnings
        f"Error: None of the 3 image files in {folder} could be decoded (x0.png: not a readable image (cannot "
        f"identify image file '{folder / 'x0.png'}'); x1.png: not a readable image (cannot identify image file "
        f"'{folder / 'x1.png'}'); and 1 more); check that they are images.")


def test_links_to_missing_files_are_skipped_saying_so_and_a_folder_of_them_is_refused(cli, tmp_path):
    """A link whose target is gone (a drive unmounted, a file moved) is a file the user meant to train on: skipped with
    a line saying so, as a damaged image is, not dropped in silence; a folder holding nothing else is refused."""
    folder = tmp_path / "linked"
    write_png_images(folder, 16, size=16)
    (folder / "zz_gone.png").symlink_to(tmp_path / "unmounted" / "gone.png")
    result = cli("train", *TINY_DCGAN, "--data", folder, "--out", tmp_path / "run")
    assert (f"warning: Skipped {folder / 'zz_gone.png'}: a link to {tmp_path / 'unmounted' / 'gone.png'}, which is "
            "missing.") in _one_line(result)
    assert "training dcgan on" in result.output and ": 16 images, " in _one_line(result)
    only_links = tmp_path / "only-links"
    only_links.mkdir()
    for name in ("a", "b"):
        (only_links / f"{name}.png").symlink_to(tmp_path / "unmounted" / f"{name}.png")
    refused = cli("train", *TINY_DCGAN, "--data", only_links, "--out", tmp_path / "refused", ok=False)
    assert refused.exit_code == 1 and _one_line(refused) == (
        f"Error: None of the 2 image files in {only_links} could be decoded (a.png: a link to "
        f"{tmp_path / 'unmounted' / 'a.png'}, which is missing; b.png: a link to {tmp_path / 'unmounted' / 'b.png'}, "
        "which is missing); check that they are images.")


def test_mixed_sizes_and_modes_are_converted(tmp_path):
    from ganzoo.registry import get_dataset

    folder = tmp_path / "mixed"
    for mode, size in (("RGB", 16), ("L", 20), ("RGBA", 33), ("P", 12), ("I;16", 24), ("LA", 18)):
        write_png_images(folder / mode.replace(";", ""), 2, size=size, mode=mode, seed=size)
    spec = get_dataset(str(folder))
    assert spec.info.image_size == 64 and spec.info.channels == 3  # no common size: the folder default
    data = spec.load(None, 16, 3)
    assert tuple(data.tensors["real"].shape) == (12, 3, 16, 16) and len(set(data.tensors["label"].tolist())) == 6


@pytest.fixture
def folder_with_truncated_png(tmp_path):
    folder = tmp_path / "images"
    write_png_images(folder, 32)
    good = (folder / "img_000.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "notes.jpg").write_text("a text file with an image suffix")
    return folder


def test_truncated_and_non_image_files_are_skipped_with_a_warning(cli, tmp_path, folder_with_truncated_png):
    result = cli("train", *TINY_DCGAN, "--data", folder_with_truncated_png, "--out", tmp_path / "run")
    text = _one_line(result)
    assert "warning: Skipped" in text and "truncated.png" in text and "notes.jpg" in text
    assert (tmp_path / "run" / "generator.safetensors").is_file()


def test_strict_data_stops_at_the_first_bad_file(cli, tmp_path, folder_with_truncated_png):
    result = cli("train", *TINY_DCGAN, "--data", folder_with_truncated_png, "--strict-data", "--out", tmp_path / "run",
                 ok=False)
    text = _one_line(result)
    assert result.exit_code == 1 and "notes.jpg" in text and "--strict-data" in text
    assert not list_checkpoints(tmp_path / "run")


# -- weight and checkpoint files ----------------------------------------------------------

@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy-stream"])
def test_torch_save_file_disguised_as_safetensors_is_refused(cli, tmp_path, zipped):
    import torch

    buffer = io.BytesIO()  # writing a pickle is harmless; ganzoo must never read one
    torch.save({"weight": torch.zeros(2)}, buffer, _use_new_zipfile_serialization=zipped)
    path = tmp_path / "model.safetensors"
    path.write_bytes(buffer.getvalue())
    result = cli("sample", "gan", "--weights", path, "--out", tmp_path / "x.npz", ok=False)
    assert result.exit_code == 1 and "never loads" in _one_line(result) and "save_file" in _one_line(result)


def test_resume_of_a_folder_that_does_not_exist_says_so(cli, tmp_path):
    result = cli("train", "gan", "--resume", tmp_path / "nope", ok=False)
    assert result.exit_code == 1 and _one_line(result) == (
        f"Error: {tmp_path / 'nope'} does not exist; pass --resume the --out folder of the run to continue.")


def test_pt_file_passed_to_train_resume_is_not_a_run(cli, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.pt").write_bytes(b"\x80\x04 pickled")
    result = cli("train", "gan", "--resume", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and "No usable checkpoint" in _one_line(result)


def test_damaged_newest_checkpoint_is_skipped_on_resume(cli, tmp_path):
    run = tmp_path / "run"
    cli("train", "gan", "--data", "line-2d", "--epochs", "2", "--out", run, "--no-progress")
    newest = list_checkpoints(run)[-1]
    newest.write_bytes(newest.read_bytes()[:-50])  # as if the machine died while copying it
    result = cli("train", "gan", "--resume", run, "--epochs", "3", "--no-progress")
    assert "done: 3 epochs" in result.output
    meta, _ = load_checkpoint(list_checkpoints(run)[-1])
    assert meta["counters"]["epoch"] == 3
    for path in list_checkpoints(run):  # every one damaged: the run cannot go on, and the sentence says why
        path.write_bytes(path.read_bytes()[:-50])
    names = ", ".join(path.name for path in list_checkpoints(run))
    result = cli("train", "gan", "--resume", run, "--epochs", "4", "--no-progress", ok=False)
    assert _one_line(result) == (f"Error: No usable checkpoint in {run / 'checkpoints'}: all 3 there are damaged "
                                 f"({names}), so the run cannot go on; start it again with --overwrite in place of "
                                 "--resume.")


def test_newest_checkpoint_with_a_damaged_training_state_is_skipped_on_resume(cli, tmp_path):
    run = tmp_path / "run"
    cli("train", "gan", "--data", "line-2d", "--epochs", "2", "--out", run, "--no-progress")
    newest = list_checkpoints(run)[-1]
    data = newest.read_bytes()
    marker = b'\\"counters\\": {\\"epoch\\": 2'  # inside the JSON string of the safetensors header
    assert data.count(marker) == 1
    newest.write_bytes(data.replace(marker, marker[:-1] + b"x"))  # same size: the header itself still parses
    result = cli("train", "gan", "--resume", run, "--epochs", "3", "--no-progress")
    assert "done: 3 epochs" in result.output and "Traceback" not in result.output
    events = [line for line in (run / "metrics.jsonl").read_text().splitlines() if '"resume"' in line]
    assert '"epoch": 1' in events[0]  # it went back to the intact epoch-1 checkpoint


def _rewrite_json(checkpoint, change) -> None:
    """Rewrite ``checkpoint`` with ``change`` applied to its JSON, as an older ganzoo wrote it (no JSON checksum)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(checkpoint), "pt") as handle:
        metadata, tensors = handle.metadata(), {name: handle.get_tensor(name) for name in handle.keys()}
    meta = json.loads(metadata.pop("json"))
    change(meta)
    metadata.pop("json_sha256")
    save_file(tensors, str(checkpoint), metadata={**metadata, "json": json.dumps(meta)})


@pytest.mark.parametrize("damage", ["a sealed number changed", "state a list", "negative epoch", "no optimizer state"])
def test_newest_checkpoint_whose_json_is_wrong_is_skipped_and_named_on_resume(cli, tmp_path, damage):
    run = tmp_path / "run"
    cli("train", "gan", "--data", "line-2d", "--epochs", "2", "--out", run, "--no-progress")
    newest = list_checkpoints(run)[-1]
    if damage == "a sealed number changed":  # same size, still JSON of the right types: only the checksum tells
        data = newest.read_bytes()
        marker = b'\\"counters\\": {\\"epoch\\": 2'
        assert data.count(marker) == 1
        newest.write_bytes(data.replace(marker, marker[:-1] + b"3"))
    elif damage == "state a list":
        _rewrite_json(newest, lambda meta: meta.update(state=[]))
    elif damage == "negative epoch":
        _rewrite_json(newest, lambda meta: meta["counters"].update(epoch=-5))
    else:
        _rewrite_json(newest, lambda meta: meta["optimizers"]["generator"].pop("state"))
    result = cli("train", "gan", "--resume", run, "--epochs", "3", "--no-progress")
    assert "done: 3 epochs" in result.output and "Traceback" not in result.output
    assert ("note: 1 newer checkpoint(s) could not be read whole and were skipped (state-epoch-0002.safetensors); "
            "the run goes on from state-epoch-0001.safetensors") in _one_line(result)
    events = [line for line in (run / "metrics.jsonl").read_text().splitlines() if '"resume"' in line]
    assert '"epoch": 1' in events[0]


def test_newest_checkpoint_with_damaged_numbers_is_skipped_on_resume(cli, tmp_path):
    from safetensors import safe_open

    run = tmp_path / "run"
    cli("train", "gan", "--data", "line-2d", "--epochs", "2", "--out", run, "--no-progress", "--with", "ema")
    newest = list_checkpoints(run)[-1]
    with safe_open(str(newest), "pt") as handle:
        ema = handle.get_tensor("net.generator.ema.net.0.weight")  # the guard never checks the average
    data = newest.read_bytes()
    at = data.index(ema.numpy().tobytes())
    newest.write_bytes(data[:at] + b"\xff" * 64 + data[at + 64:])  # same size, valid header: NaNs in the numbers
    result = cli("train", "gan", "--resume", run, "--epochs", "3", "--no-progress")
    assert "done: 3 epochs" in result.output
    events = [line for line in (run / "metrics.jsonl").read_text().splitlines() if '"resume"' in line]
    assert '"epoch": 1' in events[0]  # it went back to the intact epoch-1 checkpoint
    with safe_open(str(run / "generator.safetensors"), "pt") as handle:
        assert all(handle.get_tensor(name).isfinite().all() for name in handle.keys())


def test_an_image_folder_run_resumes_from_another_working_folder(cli, tmp_path, monkeypatch):
    import json

    write_png_images(tmp_path / "here" / "faces", 16)
    write_png_images(tmp_path / "elsewhere" / "faces", 3)  # the same relative name there: other, fewer images
    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path / "here")
    cli("train", *TINY_DCGAN, "--data", "faces", "--out", run)
    assert json.loads((run / "run.json").read_text())["dataset"] == str(tmp_path / "here" / "faces")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert "done: 2 epochs" in cli("train", "dcgan", "--resume", run, "--epochs", "2", "--no-progress").output
    monkeypatch.chdir(tmp_path / "here")  # --data naming the run's folder relatively names the same data
    assert "done: 3 epochs" in cli("train", "dcgan", "--resume", run, "--data", "faces", "--epochs", "3",
                                   "--no-progress").output


def test_resume_on_a_folder_whose_images_changed_goes_on_with_them_and_says_so(cli, tmp_path):
    """Fewer, more, or other images under the same count: the run goes on with them and says so."""
    import json

    folder, run = tmp_path / "faces", tmp_path / "run"
    paths = write_png_images(folder, 32)
    cli("train", *TINY_DCGAN, "--data", folder, "--out", run, "--set", "checkpoint_every=1")  # 2 steps: mid, end
    [mid, end] = list_checkpoints(run)
    end.unlink()  # as if the run had been killed inside its only epoch
    for path in paths[16:]:
        path.unlink()
    result = cli("train", "dcgan", "--resume", run, "--no-progress")
    assert ("note: the data changed since the checkpoint (32 samples then, 16 now); the run goes on with it; epoch 1 "
            "starts over on it, not exactly as it would have") in _one_line(result)
    assert "done: 1 epoch, 2 steps" in _one_line(result)  # 1 step before, the new data's one step after
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(row["images_per_s"] > 0 for row in rows if row.get("event") == "epoch")
    write_png_images(folder, 24, seed=1)  # at an epoch end: the next epoch simply uses the new images
    result = cli("train", "dcgan", "--resume", run, "--epochs", "2", "--no-progress")
    assert "(16 samples then, 24 now); the run goes on with it, not exactly" in _one_line(result)
    write_png_images(folder, 24, seed=2)  # the same files, other pictures: only their digest tells
    result = cli("train", "dcgan", "--resume", run, "--epochs", "3", "--no-progress")
    assert "(the same 24 samples, other contents); the run goes on with it, not exactly" in _one_line(result)
    assert "data changed" not in _one_line(cli("train", "dcgan", "--resume", run, "--epochs", "4", "--no-progress"))


def test_began_judges_an_epoch_started_over_on_changed_data_by_its_new_steps_alone(cli, tmp_path):
    """A run stopped inside an epoch whose data then changed starts that epoch over: the M it summed on the old data
    before the stop must not count towards the epoch's mean, which decides whether the rate halves."""
    from ganzoo.checkpoint import load_checkpoint

    folder, run = tmp_path / "faces", tmp_path / "run"
    paths = write_png_images(folder, 48)
    cli("train", "began", "--data", folder, "--out", run, "--image-size", "8", "--batch-size", "16", "--epochs", "2",
        "--set", "g_width=4", "--set", "d_width=4", "--set", "embedding_dim=4", "--set", "lr_patience=1",
        "--set", "checkpoint_every=5", "--set", "keep_checkpoints=10", "--no-progress", "--device", "cpu")
    [first, mid, end] = list_checkpoints(run)  # 3 steps an epoch: the 5th is the 2nd of epoch 2
    assert mid.name == "state-epoch-0001-batch-000002.safetensors"
    meta, tensors = load_checkpoint(mid)
    assert meta["state"]["began_judged_epoch"] == 1 and float(tensors["state.began_epoch_M"][1]) == 2
    end.unlink()
    for path in paths[16:]:
        path.unlink()
    assert "epoch 2 starts over on it" in _one_line(cli("train", "began", "--resume", run, "--no-progress"))
    assert float(load_checkpoint(list_checkpoints(run)[-1])[1]["state.began_epoch_M"][1]) == 1  # not 2 + 1


def test_a_run_that_recorded_its_folder_relative_resumes_with_that_data(cli, tmp_path, monkeypatch):
    write_png_images(tmp_path / "faces", 16)
    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    cli("train", *TINY_DCGAN, "--data", "faces", "--out", run)
    _rewrite_json(list_checkpoints(run)[-1], lambda meta: meta.update(dataset="faces"))  # as older versions kept it
    result = cli("train", "dcgan", "--resume", run, "--data", "faces", "--epochs", "2", "--no-progress")
    assert "done: 2 epochs" in result.output


def test_empty_safetensors_file(cli, tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    result = cli("sample", "gan", "--weights", path, "--out", tmp_path / "x.npz", ok=False)
    assert result.exit_code == 1 and "not a safetensors file" in _one_line(result)


# -- where the run writes -----------------------------------------------------------------

def test_a_second_run_into_a_folder_being_trained_is_refused_and_a_killed_run_leaves_no_lock_or_temporaries(cli, tmp_path):
    import time

    run = tmp_path / "run"
    command = [sys.executable, "-c", "from ganzoo.cli.main import cli; cli()", "train", "gan", "--data", "ring8",
               "--epochs", "10000", "--out", str(run), "--no-progress"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (run / "run.json").exists():  # written once the first run holds the folder
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        result = cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress", "--overwrite",
                     ok=False)
        assert result.exit_code == 1 and _one_line(result) == (
            f"Error: Another 'ganzoo train' (process {first.pid}) is writing to {run}; wait for it to end, or choose "
            "another --out folder.")
        assert not (run / ".replaced-run").exists()  # the first run's files were not touched
    finally:
        first.kill()  # SIGKILL: no clean-up runs, and the kernel still drops the lock
        first.wait(timeout=60)
    (run / "checkpoints").mkdir(exist_ok=True)  # what a kill -9 inside a checkpoint write leaves, and a user's file
    leftovers = [run / "checkpoints" / ".state-epoch-0001.safetensors.k1ll3d_x.tmp", run / ".run.json.a2b4c6d8.tmp"]
    for path in [*leftovers, run / "notes.tmp"]:
        path.write_bytes(b"half")
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress", "--overwrite")
    assert (run / "generator.safetensors").is_file() and (run / "notes.tmp").is_file()
    assert not any(path.exists() for path in leftovers)


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no flock")
def test_a_filesystem_without_flock_trains_and_resumes_unlocked(cli, tmp_path, monkeypatch):
    """Lustre mounted ``noflock`` and some network mounts answer flock with ENOLCK: the run goes on unlocked
    rather than failing on a lock it cannot have."""
    import errno
    import fcntl

    def no_flock(descriptor, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    run = tmp_path / "run"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress")
    result = cli("train", "gan", "--resume", run, "--epochs", "2", "--no-progress")
    assert "done: 2 epochs" in result.output and (run / "generator.safetensors").is_file()


@pytest.mark.parametrize("resume", [False, True])
def test_a_run_written_while_another_set_up_unlocked_is_not_lost(cli, tmp_path, resume):
    """The lock is taken when a run starts writing; what another run wrote during this one's setup is checked
    again under it: a finished run is not set aside without --overwrite, and a resume never goes on from a
    checkpoint that is no longer the newest."""
    from ganzoo.engine import Trainer, TrainRequest
    from ganzoo.errors import GanzooError

    run = tmp_path / "run"
    quick = ("--data", "ring8", "--out", run, "--no-progress")
    if resume:
        cli("train", "gan", *quick, "--epochs", "1")
    setting_up = Trainer(TrainRequest("gan", run, None if resume else "ring8", {"epochs": 2}, resume=resume,
                                      progress=False))
    cli("train", "gan", *quick, "--epochs", "2", *(("--resume", run) if resume else ()))  # finishes meanwhile
    before = {path: path.read_bytes() for path in sorted(run.rglob("*")) if path.is_file()}
    expected = ("Another run wrote checkpoints to .* while this one was setting up; resume again" if resume else
                "already holds a training run; continue it with --resume")
    with pytest.raises(GanzooError, match=expected):
        setting_up.run()
    assert {path: path.read_bytes() for path in sorted(run.rglob("*")) if path.is_file()} == before


def test_output_folder_under_a_file(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli("train", "gan", "--data", "line-2d", "--epochs", "1", "--out", blocker / "run", ok=False)
    assert result.exit_code == 1 and "Cannot write to" in _one_line(result) and "writable --out" in _one_line(result)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to read-only folders")
def test_read_only_output_folder(cli, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        result = cli("train", "gan", "--data", "line-2d", "--epochs", "1", "--out", folder / "run", ok=False)
    finally:
        folder.chmod(0o700)
    assert result.exit_code == 1 and "Cannot write to" in _one_line(result)


def test_an_unwritable_run_folder_to_resume_is_told_to_copy_it():
    """--resume cannot be given another folder (--out is refused with it), so the way out is a writable copy."""
    import errno

    from ganzoo.safefile import cannot_write

    error = cannot_write("runs/r", OSError(errno.EROFS, os.strerror(errno.EROFS)), "--resume", folder=True)
    assert str(error) == ("Cannot write to runs/r (Read-only file system); copy the run folder to a writable place "
                          "and resume it there.")


def test_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(cli, tmp_path):
    run = tmp_path / "run"
    cli("train", "gan", "--data", "line-2d", "--epochs", "1", "--out", run, "--no-progress")
    previous = list_checkpoints(run)[-1]
    before = previous.read_bytes()
    limit = (run / "generator.safetensors").stat().st_size + 4096  # the checkpoint is several times larger

    def limit_file_size() -> None:  # in the child: writes past `limit` bytes fail with EFBIG instead of killing it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    command = [sys.executable, "-c", "from ganzoo.cli.main import cli; cli()", "train", "gan", "--resume", str(run),
               "--epochs", "2", "--no-progress"]
    child = subprocess.run(command, capture_output=True, text=True, preexec_fn=limit_file_size, timeout=300)
    text = " ".join(child.stderr.split())
    assert child.returncode == 1 and "Could not write" in text and "free disk space" in text, child.stderr
    assert list_checkpoints(run) == [previous] and previous.read_bytes() == before
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    result = cli("train", "gan", "--resume", run, "--epochs", "2", "--no-progress")  # disk freed: it goes on
    assert "done: 2 epochs" in result.output


def test_a_killed_overwrite_run_gives_the_run_it_was_replacing_back(cli, tmp_path):
    """An --overwrite run killed (kill -9) before its first checkpoint cannot put the earlier run back itself: the
    next command there does, so a new run without --overwrite is still refused and --resume goes on with it."""
    import time

    run = tmp_path / "run"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress")
    before = (run / "generator.safetensors").read_bytes()
    child = subprocess.Popen([sys.executable, "-m", "ganzoo", "train", "gan", "--data", "ring8", "--batch-size", "8",
                              "--epochs", "1", "--out", str(run), "--overwrite", "--no-progress"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (run / ".replaced-run").is_dir() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    child.kill()
    child.wait()
    assert (run / ".replaced-run").is_dir() and not (run / "generator.safetensors").exists()  # 6,400 steps to go
    (run / "generator.safetensors").write_bytes(b"weights")  # as if killed between its weights and its checkpoint
    (run / "generator.safetensors").rename(tmp_path / "new-weights")
    sampled = cli("sample", "gan", "--weights", run, "--out", tmp_path / "s.png", ok=False)
    assert f"left the run it was to replace in {run / '.replaced-run'}; 'ganzoo train gan --resume {run}' puts" in (
        _one_line(sampled))
    (tmp_path / "new-weights").rename(run / "generator.safetensors")
    refused = cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress", ok=False)
    assert (f"note: a run started with --overwrite was stopped before its first checkpoint, so the files of the run "
            f"it was to replace are back in {run}") in _one_line(refused)
    assert f"Error: {run} already holds a training run; continue it with --resume" in _one_line(refused)
    assert (run / "generator.safetensors").read_bytes() == before and not (run / ".replaced-run").exists()
    assert "done: 2 epochs" in cli("train", "gan", "--resume", run, "--epochs", "2", "--no-progress").output


@pytest.mark.parametrize("suffix", [".npz", ".png"])
def test_full_disk_while_writing_samples_keeps_the_file_that_was_there(cli, tmp_path, suffix):
    """``sample --out`` over an earlier result on a disk that fills up: the earlier file stays whole and no partial
    file is left beside it (the write goes through a temporary file)."""
    run = tmp_path / "run"
    cli("train", "gan", "--data", "line-2d", "--epochs", "1", "--out", run, "--no-progress")
    out = tmp_path / "samples" / f"points{suffix}"
    cli("sample", "gan", "--weights", run, "--num", "20", "--out", out)
    before = out.read_bytes()
    limit = len(before) + 2048  # 20,000 points need far more

    def limit_file_size() -> None:  # in the child: writes past `limit` bytes fail with EFBIG instead of killing it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    command = [sys.executable, "-m", "ganzoo", "sample", "gan", "--weights", str(run), "--num", "20000", "--out",
               str(out)]
    child = subprocess.run(command, capture_output=True, text=True, preexec_fn=limit_file_size, timeout=300)
    assert child.returncode == 1 and f"Cannot write to {out}" in " ".join(child.stderr.split()), child.stderr
    assert out.read_bytes() == before and sorted(p.name for p in out.parent.iterdir()) == [out.name]


# -- numbers ------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (("gan", "--data", "line-2d", "--epochs", "-1"), "epochs must be a whole number of at least 1"),
    (("gan", "--data", "line-2d", "--batch-size", "0"), "batch_size must be a whole number of at least 1"),
    (("gan", "--data", "line-2d", "--lr", "-0.1"), "lr must be a positive finite number"),
    (("gan", "--data", "line-2d", "--lr", "nan"), "lr must be a positive finite number, got nan"),
    (("gan", "--data", "line-2d", "--set", "lr_d=1e999"), "lr_d must be a positive finite number, got inf"),
    (("gan", "--data", "line-2d", "--set", "lr=inf"), "lr must be a positive finite number, got inf"),
    (("gan", "--data", "line-2d", "--set", "r1_gamma=nan"), "r1_gamma must be a finite number, got nan"),
    (("gan", "--data", "line-2d", "--loss", "wgan-gp", "--set", "gp_weight=1e999"),
     "gp_weight must be a finite number of at least 0, got inf"),
    (("gan", "--data", "line-2d", "--set", "lr=--inf"), "lr must be a number like its default 0.001, got '--inf'"),
    (("gan", "--data", "line-2d", "--seed", str(2**64)), f"seed must be a whole number from {-2**63} to {2**63 - 1}"),
    (("gan", "--data", "line-2d", "--set", "checkpoint_every=-5"), "checkpoint_every must be a whole number"),
    (("gan", "--data", "line-2d", "--set", "max_bad_steps=0"), "max_bad_steps must be a whole number of at least 1"),
    (("gan", "--data", "line-2d", "--set", "r1_gamma=-1"), "r1_gamma must be a number of at least 0"),
    (("gan", "--data", "line-2d", "--epochs", "3", "--set", "decay_epochs=5"), "decay_epochs must be a whole number from 0 to epochs (3)"),
    (("gan", "--data", "line-2d", "--loss", "wgan", "--set", "reuse_fake=True"),
     "reuse_fake needs one discriminator step per generator step, but d_steps is 5"),
    (("gan", "--data", "line-2d", "--set", "reuse_fake=1"), "reuse_fake must be True or False like its default False, got 1"),
    (("gan", "--data", "line-2d", "--set", "warmup_d_steps=-1"),
     "warmup_d_steps must be a whole number of at least 0 (0 = off), got -1"),
    (("gan", "--data", "line-2d", "--set", "warmup_d_steps=100", "--set", "reuse_fake=True"),
     "reuse_fake needs one discriminator step per generator step, but warmup_d_steps is 100; set warmup_d_steps=0"),
    (("gan", "--data", "line-2d", "--loss", "wgan", "--set", "warmup_d_steps=3"),
     "warmup_d_steps (3) would give the first generator steps fewer discriminator steps than d_steps (5) gives"),
    (("dcgan", "--data", "IMAGES", "--image-size", "36"), "DCGAN cannot make 36x36 images"),
    # the models' own settings: the type of their default, and the range of the shared ones
    (("gan", "--data", "line-2d", "--set", "dim=3"), "dim comes from the dataset and cannot be set; drop --set dim"),
    (("cgan", "--data", "mnist", "--set", "num_classes=5"), "num_classes comes from the dataset and cannot be set"),
    (("gan", "--data", "line-2d", "--set", "latent_dim=0"), "latent_dim must be a whole number of at least 1, got 0"),
    (("gan", "--data", "line-2d", "--set", "dropout=2"), "dropout must be a number from 0 up to (not including) 1"),
    (("gan", "--data", "line-2d", "--set", "beta1=2"), "beta1 must be a number from 0 up to (not including) 1, got 2"),
    (("gan", "--data", "line-2d", "--set", "hidden_dims=[8,0]"), "hidden_dims must be a non-empty list of whole numbers"),
    (("gan", "--data", "line-2d", "--set", "hidden_dims=8"), "hidden_dims must be a list like its default [128,128,128]"),
    (("dcgan", "--data", "IMAGES", "--set", "g_width=8.5"),
     "g_width must be a whole number like its default 64, got 8.5; set it as in --set g_width=64."),
    (("gan", "--data", "line-2d", "--set", "loss=1"), "loss must be text like its default ns, got 1; set it as in --set loss=ns."),
    (("gan", "--data", "line-2d", "--loss", "wgan-gp", "--set", "gp_weight=[1]"),
     "gp_weight must be a number like its default 10.0, got [1]"),
    (("gan", "--data", "line-2d", "--set", "with=3"), "with must be a list of extension names, got 3; switch one on with --with NAME."),
    (("gan", "--data", "line-2d", "--set", "loss=True"), "loss must be the name of a loss, such as ns or wgan-gp, got True"),
    (("cyclegan", "--set", "pool_size=-1"), "pool_size must be a whole number of at least 0, got -1"),
    (("began", "--data", "line-2d", "--set", "lr_patience=-1"), "lr_patience must be a whole number of at least 0, got -1"),
    (("began", "--data", "line-2d", "--set", "uniform_noise=3"),
     "uniform_noise must be True or False like its default True, got 3"),
    # settings that would switch their own remedy off, or weigh it the wrong way round
    (("gan", "--data", "line-2d", "--loss", "wgan", "--set", "clip_value=0"),
     "clip_value must be a positive finite number, got 0"),
    (("gan", "--data", "line-2d", "--loss", "wgan", "--set", "clip_value=-0.01"),
     "clip_value must be a positive finite number, got -0.01"),
    (("gan", "--data", "line-2d", "--loss", "wgan-gp", "--set", "gp_weight=-1"),
     "gp_weight must be a finite number of at least 0, got -1"),
    (("began", "--data", "line-2d", "--set", "gamma=0"), "gamma must be a positive finite number, got 0"),
    (("gan", "--data", "line-2d", "--with", "unrolled", "--set", "unroll_steps=0"),
     "unroll_steps must be a whole number of at least 1, got 0"),
    (("gan", "--data", "line-2d", "--with", "pacgan", "--set", "pack=1"), "pack must be a whole number of at least 2"),
    (("gan", "--data", "line-2d", "--with", "pacgan", "--set", "pack=300", "--batch-size", "64"),
     "--with pacgan packs pack=300 samples into each discriminator input, more than a batch of 64 holds; lower --set "
     "pack or raise --batch-size."),
    # settings that tune an extension or remedy the run leaves off
    (("gan", "--data", "line-2d", "--set", "pack=3"),
     "pack tunes --with pacgan, which this run does not switch on; add --with pacgan, or drop --set pack."),
    (("gan", "--data", "line-2d", "--set", "unroll_steps=10"), "unroll_steps tunes --with unrolled, which this run"),
    (("gan", "--data", "line-2d", "--set", "mbd_kernels=8"),
     "mbd_kernels tunes --with minibatch-discrimination, which this run does not switch on"),
    (("dcgan", "--data", "IMAGES", "--set", "ema_decay=0.9"), "ema_decay tunes --with ema, which this run"),
    (("gan", "--data", "line-2d", "--set", "instance_noise_steps=100"),
     "instance_noise_steps tunes instance noise, which is off in this run (instance_noise 0); set instance_noise=STD "
     "too, or drop --set instance_noise_steps."),
])
def test_invalid_numbers(cli, tmp_path, image_folder, args, message):
    args = tuple(str(image_folder) if a == "IMAGES" else a for a in args)
    result = cli("train", *args, "--out", tmp_path / "run", "--no-progress", ok=False)
    assert result.exit_code == 1 and message in _one_line(result)
    assert not list_checkpoints(tmp_path / "run")


def test_a_model_named_after_its_loss_says_so_when_given_another_and_extensions_count_once(cli, tmp_path,
                                                                                          image_folder):
    tiny = ("--data", image_folder, "--image-size", "16", "--epochs", "1", "--set", "g_width=4", "--set", "d_width=4",
            "--no-progress", "--device", "cpu")
    other = cli("train", "lsgan", *tiny, "--loss", "ns", "--with", "ema", "--with", "ema", "--out", tmp_path / "ns")
    assert ("note: model 'lsgan' is dcgan networks trained with the lsgan loss and its settings; with --loss ns it "
            "trains as 'ganzoo train dcgan --loss ns' would") in _one_line(other)
    assert json.loads((tmp_path / "ns" / "run.json").read_text())["config"]["with"] == ["ema"]
    own = cli("train", "lsgan", *tiny, "--out", tmp_path / "own")
    assert "note: model" not in own.output


@pytest.mark.parametrize("args, message", [
    (("--batch-size", "4", "--set", "batch_size=8"), "--batch-size 4 and --set batch_size=8 give batch_size two values"),
    (("--set", "loss=lsgan", "--loss", "wgan"), "--loss wgan and --set loss=lsgan give loss two values"),
    (("--channels-last", "--set", "channels_last=False"),
     "--channels-last and --set channels_last=False give channels_last two values"),
    (("--no-fused-adam", "--set", "fused_adam=True"), "--no-fused-adam and --set fused_adam=True give fused_adam two values"),
])
def test_a_setting_given_twice_with_two_values_is_refused(cli, tmp_path, args, message):
    """An option and ``--set`` naming one hyperparameter with different values: one would be ignored unsaid."""
    result = cli("train", "gan", "--data", "line-2d", *args, "--out", tmp_path / "run", "--no-progress", ok=False)
    assert result.exit_code == 2 and f"Error: {message}; give it once." in _one_line(result)
    assert not (tmp_path / "run").exists()


def test_a_setting_given_twice_with_one_value_is_taken(cli, tmp_path):
    cli("train", "gan", "--data", "line-2d", "--batch-size", "512", "--set", "batch_size=512", "--epochs", "1",
        "--out", tmp_path / "run", "--no-progress")
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["batch_size"] == 512


@pytest.mark.parametrize("command", ["sample", "eval"])
def test_a_seed_beyond_64_bits_is_refused_and_help_does_not_print_the_bounds(cli, tmp_path, command):
    where = ["--out", tmp_path / "x.npz"] if command == "sample" else ["--data", "ring8"]
    result = cli(command, "gan", "--weights", tmp_path / "g.safetensors", "--seed", str(2**63), *where, ok=False)
    assert result.exit_code == 2 and (f"Invalid value for '--seed': {2**63} is out of range; a seed must be a whole "
                                      f"number from {-2**63} to {2**63 - 1}") in _one_line(result)
    assert str(2**63 - 1) not in cli(command, "--help").output


def test_batch_larger_than_the_data(cli, tmp_path):
    folder = tmp_path / "few"
    write_png_images(folder, 5)
    result = cli("train", *TINY_DCGAN, "--data", folder, "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and "fewer than the batch size 16" in _one_line(result)


# -- settings and remedies a model cannot use ----------------------------------------------

def test_unknown_setting_points_at_the_models_settings(cli):
    result = cli("train", "gan", "--data", "ring8", "--set", "foo=1", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert _one_line(result) == "Error: Unknown setting 'foo'; see 'ganzoo info gan' for the settings."
    result = cli("train", "gan", "--data", "ring8", "--set", "hiden_dims=[8]", ok=False)
    assert result.exit_code == 1 and _one_line(result).startswith("Error: Unknown setting 'hiden_dims'. Did you mean")
    assert _one_line(result).endswith("? See 'ganzoo info gan' for the settings.")


def test_a_setting_of_another_loss_or_model_names_where_it_belongs(cli, tmp_path):
    """A setting the run does not have but a loss or other models do is not matched to a look-alike name."""
    result = cli("train", "gan", "--data", "ring8", "--set", "clip_value=0.1", ok=False)
    assert _one_line(result) == ("Error: clip_value is a setting of the wgan loss, which this run does not use; pass "
                                 "--loss wgan with it, or see 'ganzoo info gan' for the settings of 'gan'.")
    result = cli("train", "gan", "--data", "ring8", "--set", "gp_weight=5", ok=False)
    assert "setting of the wgan-gp and dragan losses" in _one_line(result)
    assert cli("train", "gan", "--data", "ring8", "--loss", "wgan-gp", "--set", "gp_weight=5", "--epochs", "1",
               "--out", tmp_path / "run", "--no-progress").exit_code == 0
    result = cli("train", "gan", "--data", "ring8", "--set", "g_width=8", ok=False)
    assert result.exit_code == 1 and _one_line(result).startswith("Error: Model 'gan' has no setting 'g_width' (a "
                                                                  "setting of ")
    assert "dcgan" in _one_line(result) and "Did you mean" not in result.output
    result = cli("train", "cyclegan", "--set", "gp_weight=5", ok=False)  # its loss is the paper's: no --loss advice
    assert _one_line(result) == ("Error: gp_weight is a setting of the wgan-gp and dragan losses, and 'cyclegan' trains "
                                 "with its paper's loss alone; drop it (see 'ganzoo info cyclegan' for its settings).")


def test_image_size_on_points_is_refused(cli):
    result = cli("train", "gan", "--data", "ring8", "--image-size", "30", ok=False)
    assert result.exit_code == 1 and _one_line(result) == (
        "Error: --image-size sets the side of generated images, but this dataset holds 2-D points; drop it, or pick "
        "an image dataset.")


def test_malformed_set_suggests_a_setting_that_exists(cli):
    from ganzoo.config import all_hyperparameters, parse_overrides, resolve_config
    from ganzoo.registry import get_dataset, get_model, get_registry

    result = cli("train", "gan", "--data", "ring8", "--set", "lr", ok=False)
    assert result.exit_code == 1
    assert _one_line(result) == "Error: Cannot read --set 'lr'; write it as KEY=VALUE, e.g. --set lr=0.0002."
    example = _one_line(result).split("e.g. --set ")[1].rstrip(".")
    models = get_registry().models
    assert all(example.split("=")[0] in {hp.name for hp in all_hyperparameters(models.get(name))} for name in models.names())
    assert resolve_config(get_model("gan"), get_dataset("ring8").info, parse_overrides([example]))["lr"] == 0.0002


@pytest.fixture
def family_data(tmp_path):
    """The smallest folder each non-unconditional family accepts: labelled classes, unpaired or A|B paired images."""
    from PIL import Image

    for index, name in enumerate(("cat", "dog")):
        write_png_images(tmp_path / "labelled" / name, 2, mode="L", seed=index)
    for index, side in enumerate(("trainA", "trainB")):
        write_png_images(tmp_path / "unpaired" / side, 2, seed=index)
    (tmp_path / "paired" / "train").mkdir(parents=True)
    for index in range(2):
        Image.new("RGB", (32, 16), (40 * index, 90, 200)).save(tmp_path / "paired" / "train" / f"pair_{index}.png")
    return {"cgan": tmp_path / "labelled", "cdcgan": tmp_path / "labelled", "acgan": tmp_path / "labelled",
            "cyclegan": tmp_path / "unpaired", "pix2pix": tmp_path / "paired"}


@pytest.mark.parametrize("extension", ["pacgan", "unrolled", "minibatch-discrimination"])
@pytest.mark.parametrize("model, task", [("cgan", "conditional"), ("cdcgan", "conditional"), ("acgan", "conditional"),
                                         ("cyclegan", "image-to-image"), ("pix2pix", "image-to-image")])
def test_unconditional_only_extensions_are_refused(cli, tmp_path, family_data, model, task, extension):
    result = cli("train", model, "--data", family_data[model], "--with", extension, "--batch-size", "2",
                 "--epochs", "1", "--out", tmp_path / "run", "--no-progress", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert _one_line(result) == (f"Error: --with {extension} works only with unconditional models; '{model}' is "
                                 f"{task} and cannot use it, so drop --with {extension}.")
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_began_and_its_loss_train_only_together(cli, tmp_path):
    """BEGAN's discriminator scores by reconstruction error, never negative: read as logits by --loss ns it could
    never call a sample fake. Both directions are refused before anything is written, and 'info' lists only the
    losses each model takes."""
    result = cli("train", "began", "--data", "ring8", "--loss", "ns", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and _one_line(result) == (
        "Error: Model 'began' trains with the began loss alone (its networks read no other); drop --loss ns.")
    result = cli("train", "gan", "--data", "ring8", "--loss", "began", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1 and _one_line(result) == (
        "Error: --loss began works only with the began model; train that model, or pick another loss ('ganzoo info "
        "gan' lists them).")
    assert not (tmp_path / "run").exists()

    def listed(model: str) -> set[str]:
        table = cli("info", model).output.split("losses (--loss NAME", 1)[1].split("extensions", 1)[0]
        return {line.split("│")[1].strip() for line in table.splitlines()
                if line.startswith("│") and line.split("│")[1].strip()}

    assert listed("began") == {"began"}
    gan = listed("gan")
    assert "began" not in gan and {"ns", "wgan-gp", "kl-wgan"} <= gan


@pytest.mark.parametrize("model", ["cyclegan", "pix2pix"])
def test_ema_trains_translation_models_and_translates_with_the_average(cli, tmp_path, family_data, model):
    import torch

    from ganzoo.weights import load_generator

    run = tmp_path / "run"
    tiny = ("--set", "blocks=1") if model == "cyclegan" else ()
    cli("train", model, "--data", family_data[model], "--with", "ema", "--image-size", "32", "--epochs", "1", *tiny,
        "--set", "g_width=4", "--set", "d_width=4", "--out", run, "--no-progress", "--device", "cpu")
    generator = load_generator(run / "generator.safetensors", model).module  # in eval mode, as translate uses it
    assert any(not torch.equal(a, e) for a, e in zip(generator.online.parameters(), generator.ema.parameters()))
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    outputs = {}
    for name, network in (("wrapper", generator), ("ema", generator.ema), ("online", generator.online)):
        torch.manual_seed(0)  # pix2pix translates with dropout on
        outputs[name] = network.translate(image)
    assert torch.equal(outputs["wrapper"], outputs["ema"]) and not torch.equal(outputs["wrapper"], outputs["online"])
    out = tmp_path / "translated"
    source = family_data[model] / ("trainA" if model == "cyclegan" else "train")
    cli("translate", model, "--weights", run / "generator.safetensors", "--input", source, "--out", out)
    assert len(list(out.iterdir())) == 2


def test_ganzoo_data_naming_a_file_is_one_sentence(cli, tmp_path, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    monkeypatch.setenv("GANZOO_DATA", str(afile))
    result = cli("train", "dcgan", "--data", "mnist", "--out", tmp_path / "run", "--no-progress", ok=False)
    assert result.exit_code == 1 and _one_line(result) == (
        f"Error: GANZOO_DATA is {afile}, which is a file; point it at the folder that holds the datasets, or unset it.")
    assert afile.read_text() == "not a folder"
