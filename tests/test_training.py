"""Training runs end to end on CPU: learning on ring8, DCGAN on images, resume, determinism."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest


def _tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_gan_learns_ring8(cli, tmp_path):
    run = tmp_path / "ring8"
    cli("train", "gan", "--data", "ring8", "--epochs", "4", "--out", run, "--no-progress", "--device", "cpu")
    out = tmp_path / "ring.npz"
    cli("sample", "gan", "--weights", run / "generator.safetensors", "--num", "2500", "--out", out)
    with np.load(out, allow_pickle=False) as data:
        samples = data["samples"]
    radius = np.linalg.norm(samples, axis=1)
    assert np.mean(np.abs(radius - 2.0) < 0.3) > 0.7  # most samples lie on the ring, not at the origin
    from ganzoo.data.toy import RING8
    from ganzoo.metrics.toy import mode_scores

    assert mode_scores(samples, RING8).modes >= 4
    for name in ("metrics.jsonl", "losses.png", "run.json", "samples/epoch_004.png"):
        assert (run / name).is_file()


def test_progress_into_a_file_is_a_plain_line_per_epoch_and_the_summary_pastes_whole(cli, tmp_path):
    run = tmp_path / ("a-run-folder-whose-path-is-long-enough-to-pass-eighty-columns" * 2)
    out = cli("train", "gan", "--data", "gaussian-1d", "--epochs", "2", "--out", run).output  # not a terminal
    lines = out.splitlines()
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert [line.split("  ")[:2] for line in epoch_lines] == [["epoch 1/2", "step 200/200"], ["epoch 2/2", "step 200/200"]]
    assert all("d_real" in line and "img/s" in line for line in epoch_lines)
    assert "…" not in out  # a live bar written to a file leaves its last frame cut at 80 columns
    command = f"  sample:    ganzoo sample gan --weights {run / 'generator.safetensors'} --num 64 --out grid.png"
    assert command in lines  # one line, as long as it is, so that it pastes as one command


def test_plain_progress_prints_within_an_epoch_only_once_its_interval_has_passed(monkeypatch):
    import io

    from rich.console import Console

    from ganzoo import progress

    def lines_printed(every_seconds: float) -> list[str]:
        monkeypatch.setattr(progress, "PLAIN_EVERY_SECONDS", every_seconds)
        console = Console(file=io.StringIO(), width=80)  # not a terminal
        with progress.TrainingProgress(console, epochs=1, steps_per_epoch=30) as bar:
            for step in (10, 20, 30):
                bar.update(0, step, {"d_real": 0.5, "images_per_s": 1000.0})
        return console.file.getvalue().splitlines()

    assert [line.split("  ")[1] for line in lines_printed(0.0)] == ["step 10/30", "step 20/30", "step 30/30"]
    assert [line.split("  ")[1] for line in lines_printed(3600.0)] == ["step 30/30"]  # the epoch's end always


def test_the_bar_on_a_narrow_terminal_keeps_its_epoch_count_and_losses_whole():
    import io
    import re

    from rich.console import Console

    from ganzoo.progress import TrainingProgress

    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    stats = {"d_real": 0.5, "d_fake": 0.25, "D(x)": 0.75, "D(G(z))": 0.125, "g_adv": 2.0, "images_per_s": 27326.0}
    with TrainingProgress(console, epochs=5, steps_per_epoch=937) as bar:
        bar.step(0, 10)
        bar.update(0, 50, stats)
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", console.file.getvalue())  # each redraw on lines of its own
    assert "epoch 1/5" in frames and "50/4685" in frames  # steps of the whole run; before, the losses squeezed the bar to "epo…"
    assert "d_real 0.500  d_fake 0.250  D(x) 0.750  D(G(z)) 0.125  g_adv 2.000  27,326 img/s" in frames


def test_metrics_log_losses_and_discriminator_outputs(cli, tmp_path):
    run = tmp_path / "m"
    cli("train", "gan", "--data", "gaussian-1d", "--epochs", "1", "--out", run, "--no-progress", "--set", "log_every=20")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logs = [r for r in rows if r["event"] == "log"]
    assert len(logs) == 10  # 200 steps / 20
    assert {"d_real", "d_fake", "g_adv", "D(x)", "D(G(z))", "images_per_s"} <= set(logs[0])
    assert all(0.0 <= r["D(x)"] <= 1.0 for r in logs)
    assert rows[-1]["event"] == "epoch" and rows[-1]["images_per_s"] > 0
    setup = rows[0]  # where the time before the first step went
    assert setup["event"] == "setup"
    parts = [setup[f"{part}_seconds"] for part in ("networks", "data", "optimizers")]
    assert min(parts) >= 0 and sum(parts) <= setup["total_seconds"] + 0.002 < 60  # each rounded to 1 ms


def test_dcgan_trains_on_an_image_folder(cli, image_folder, tmp_path):
    run = tmp_path / "dc"
    result = cli("train", "dcgan", "--data", image_folder, "--image-size", "16", "--epochs", "2", "--batch-size", "16",
                 "--set", "g_width=8", "--set", "d_width=8", "--out", run, "--no-progress")
    assert "done" in result.output
    assert (run / "samples" / "epoch_002.png").is_file()
    grid = tmp_path / "grid.png"
    cli("sample", "dcgan", "--weights", run / "generator.safetensors", "--num", "9", "--out", grid)
    from PIL import Image

    with Image.open(grid) as image:
        assert image.size == (3 * 16 + 4 * 2, 3 * 16 + 4 * 2)  # 3x3 grid with 2-pixel padding
    npz = tmp_path / "s.npz"
    cli("sample", "dcgan", "--weights", run / "generator.safetensors", "--num", "10", "--out", npz)
    with np.load(npz, allow_pickle=False) as data:
        assert data["images"].shape == (10, 3, 16, 16) and data["images"].dtype == np.uint8


def test_same_seed_same_weights(cli, tmp_path):
    for name in ("a", "b"):
        cli("train", "gan", "--data", "line-2d", "--epochs", "1", "--seed", "3", "--out", tmp_path / name, "--no-progress")
    a, b = _tensors(tmp_path / "a" / "generator.safetensors"), _tensors(tmp_path / "b" / "generator.safetensors")
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


@pytest.mark.parametrize("model_args", [
    ("gan", "--data", "ring8"),
    ("dcgan", "--image-size", "16", "--batch-size", "16", "--set", "g_width=8", "--set", "d_width=8"),
])
def test_resume_is_bit_exact(cli, tmp_path, image_folder, model_args):
    model, *extra = model_args
    if model == "dcgan":
        extra = ["--data", str(image_folder), *extra]
    common = ["train", model, *extra, "--no-progress", "--device", "cpu"]
    cli(*common, "--epochs", "4", "--out", tmp_path / "straight")
    cli(*common, "--epochs", "2", "--out", tmp_path / "split")
    cli("train", model, "--resume", tmp_path / "split", "--epochs", "4", "--no-progress", "--device", "cpu")
    straight = _tensors(tmp_path / "straight" / "checkpoints" / "state-epoch-0004.safetensors")
    split = _tensors(tmp_path / "split" / "checkpoints" / "state-epoch-0004.safetensors")
    assert straight.keys() == split.keys()
    for key in straight:
        assert np.array_equal(straight[key].numpy(), split[key].numpy()), key


def test_resume_finds_the_data_of_the_data_root_the_run_started_with_or_ganzoo_data_once_it_moved(cli, tmp_path,
                                                                                                    monkeypatch):
    from conftest import write_tiny_mnist

    write_tiny_mnist(tmp_path / "elsewhere")
    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    cli("train", "gan", "--data", "mnist", "--data-root", "elsewhere", "--epochs", "1", "--batch-size", "32",
        "--no-progress", "--device", "cpu", "--out", run)
    assert json.loads((run / "run.json").read_text())["data_root"] == str(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path / "elsewhere")  # from another folder, with GANZOO_DATA on an empty one
    cli("train", "gan", "--resume", run, "--epochs", "2", "--no-progress", "--device", "cpu")
    assert (run / "checkpoints" / "state-epoch-0002.safetensors").is_file()

    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").rename(tmp_path / "moved")  # the data moved: GANZOO_DATA says where to now
    monkeypatch.setenv("GANZOO_DATA", str(tmp_path / "moved"))
    output = cli("train", "gan", "--resume", run, "--epochs", "3", "--no-progress", "--device", "cpu").output
    assert (f"note: the data root the run started with, {tmp_path / 'elsewhere'}, is gone; the data is looked for in "
            f"{tmp_path / 'moved'} (--data-root or GANZOO_DATA names another)") in " ".join(output.split())
    assert (run / "checkpoints" / "state-epoch-0003.safetensors").is_file()

    # a run given its data root through GANZOO_DATA keeps it too: a new shell without the variable resumes it
    from_env = tmp_path / "from-env"
    cli("train", "gan", "--data", "mnist", "--epochs", "1", "--batch-size", "32", "--no-progress", "--device", "cpu",
        "--out", from_env)
    assert json.loads((from_env / "run.json").read_text())["data_root"] == str(tmp_path / "moved")
    monkeypatch.delenv("GANZOO_DATA")
    cli("train", "gan", "--resume", from_env, "--epochs", "2", "--no-progress", "--device", "cpu")
    assert (from_env / "checkpoints" / "state-epoch-0002.safetensors").is_file()


def test_a_run_whose_image_folder_moved_resumes_from_the_new_place_given_with_data(cli, tmp_path, image_folder):
    """Without --data the resume names the folder that is gone; with --data at its new place it goes on, exactly as
    it would have (the same images)."""
    tiny = ("--image-size", "16", "--batch-size", "16", "--set", "g_width=8", "--set", "d_width=8", "--no-progress",
            "--device", "cpu")
    cli("train", "dcgan", "--data", image_folder, *tiny, "--epochs", "2", "--out", tmp_path / "straight")
    run = tmp_path / "run"
    cli("train", "dcgan", "--data", image_folder, *tiny, "--epochs", "1", "--out", run)
    moved = image_folder.rename(tmp_path / "moved")
    refused = cli("train", "dcgan", "--resume", run, "--epochs", "2", "--no-progress", "--device", "cpu", ok=False)
    assert refused.exit_code == 1 and " ".join(refused.output.split()) == (
        f"Error: {run} was trained on the folder {image_folder}, which is gone; put it back there, or give its new "
        "place with --data to resume it.")
    output = cli("train", "dcgan", "--resume", run, "--data", moved, "--epochs", "2", "--no-progress",
                 "--device", "cpu").output
    assert "data changed" not in output
    straight = _tensors(tmp_path / "straight" / "checkpoints" / "state-epoch-0002.safetensors")
    resumed = _tensors(run / "checkpoints" / "state-epoch-0002.safetensors")
    assert all(np.array_equal(straight[key].numpy(), resumed[key].numpy()) for key in straight)
    assert json.loads((run / "run.json").read_text())["dataset"] == str(moved)  # the next resume finds it there
    from conftest import write_png_images

    other = tmp_path / "other"
    write_png_images(other, 64, seed=3)  # a folder that exists is not replaced by another
    result = cli("train", "dcgan", "--resume", run, "--data", other, "--epochs", "3", "--no-progress", ok=False)
    assert f"was trained on '{moved}', not '{other}'; drop --data to resume it." in " ".join(result.output.split())
    run.rename(tmp_path / "moved" / "run")  # the run folder now lies inside the data it would resume on
    moved.rename(tmp_path / "again")
    inside = tmp_path / "again" / "run"
    result = cli("train", "dcgan", "--resume", inside, "--data", tmp_path / "again", "--epochs", "3", "--no-progress",
                 ok=False)
    assert " ".join(result.output.split()) == (
        f"Error: --resume {inside} lies inside the data folder {tmp_path / 'again'}, so the run's pictures would "
        "become training images of the next run on it; move the run folder out of it, or the data elsewhere, first.")


def test_decay_epochs_lowers_every_learning_rate_linearly(tmp_path):
    from ganzoo.engine import Trainer, TrainRequest

    rates = {}
    for decay in (0, 2):
        overrides = {"epochs": 2, "decay_epochs": decay, "lr_g": 4e-4, "lr_d": 1e-3}
        trainer = Trainer(TrainRequest(model="gan", data="line-2d", out=tmp_path / str(decay), overrides=overrides,
                                       device="cpu", progress=False))
        trainer.run()
        rates[decay] = {stage: opt.param_groups[0]["lr"] for stage, opt in trainer.optimizers.items()}
    assert rates[0] == {"generator": 4e-4, "discriminator": 1e-3}
    # the second (last) epoch of a 2-epoch decay runs at half the rate
    assert rates[2] == pytest.approx({"generator": 2e-4, "discriminator": 5e-4})


def test_resume_mid_schedule_continues_the_decay_exactly(cli, tmp_path):
    import shutil

    common = ["--no-progress", "--device", "cpu"]
    cli("train", "gan", "--data", "ring8", "--epochs", "4", "--set", "decay_epochs=3", "--out", tmp_path / "straight", *common)
    shutil.copytree(tmp_path / "straight", tmp_path / "split")
    for epoch in (3, 4):  # as if the run had stopped after epoch 2
        (tmp_path / "split" / "checkpoints" / f"state-epoch-000{epoch}.safetensors").unlink()
    cli("train", "gan", "--resume", tmp_path / "split", *common)
    straight = _tensors(tmp_path / "straight" / "checkpoints" / "state-epoch-0004.safetensors")
    split = _tensors(tmp_path / "split" / "checkpoints" / "state-epoch-0004.safetensors")
    for key in straight:
        assert np.array_equal(straight[key].numpy(), split[key].numpy()), key


def _epoch_rates(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {row["epoch"]: row["lr"]["generator"] for row in rows if row["event"] == "epoch"}


def test_more_epochs_on_resume_keep_the_decaying_rate_continuous(cli, tmp_path):
    import shutil

    common = ["--no-progress", "--device", "cpu", "--lr", "0.001", "--batch-size", "4096"]
    run = tmp_path / "run"
    cli("train", "gan", "--data", "ring8", "--epochs", "4", "--set", "decay_epochs=2", "--out", run, *common)
    assert _epoch_rates(run) == pytest.approx({1: 1e-3, 2: 1e-3, 3: 1e-3, 4: 5e-4})  # epoch 4 = the one after 3 done
    # stopped after 3 epochs (rate 0.5 by then), resumed for 6: it falls on from 0.5 to 0 at epoch 6, no jump back to 1
    shutil.copytree(run, tmp_path / "longer")
    (tmp_path / "longer" / "checkpoints" / "state-epoch-0004.safetensors").unlink()
    cli("train", "gan", "--resume", tmp_path / "longer", "--epochs", "6", *common[:3])
    assert _epoch_rates(tmp_path / "longer") == pytest.approx(
        {1: 1e-3, 2: 1e-3, 3: 1e-3, 4: 5e-4, 5: 5e-4 * 2 / 3, 6: 5e-4 / 3})
    # a finished decay (rate 0 after epoch 4) starts again at the full rate over the new epochs, and says so
    restarted = cli("train", "gan", "--resume", run, "--epochs", "6", *common[:3])
    assert "start again at the full rate" in " ".join(restarted.output.split())
    assert _epoch_rates(run) == pytest.approx({1: 1e-3, 2: 1e-3, 3: 1e-3, 4: 5e-4, 5: 1e-3, 6: 5e-4})
    # fewer epochs than decay_epochs: still constant after epoch 1, it now falls over the 2 epochs left
    short = tmp_path / "short"
    cli("train", "gan", "--data", "ring8", "--epochs", "6", "--set", "decay_epochs=5", "--set", "keep_checkpoints=6",
        "--out", short, *common)
    for epoch in range(2, 7):
        (short / "checkpoints" / f"state-epoch-000{epoch}.safetensors").unlink()
    cli("train", "gan", "--resume", short, "--epochs", "3", *common[:3])
    rates = _epoch_rates(short)  # the first run's rows of epochs 4-6 stay in the log before the resumed ones
    assert [rates[epoch] for epoch in (1, 2, 3)] == pytest.approx([1e-3, 1e-3, 5e-4])
    assert "already trained 3 epochs" in " ".join(cli("train", "gan", "--resume", short, "--epochs", "2",
                                                      ok=False).output.split())


def test_resume_refuses_other_model_and_changed_settings(cli, tmp_path):
    run = tmp_path / "r"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress")
    other = cli("train", "dcgan", "--resume", run, ok=False)
    assert "holds a run of model 'gan', not 'dcgan'" in " ".join(other.output.split())
    changed = cli("train", "gan", "--resume", run, "--lr", "0.1", ok=False)
    assert "Cannot resume" in changed.output and "lr" in changed.output
    unset = cli("train", "gan", "--resume", run, "--fused-adam", ok=False)
    assert (f"Cannot resume {run} with fused_adam=True: it was trained with fused_adam unset (its default, decided "
            "when the run started); only epochs,") in " ".join(unset.output.split())
    sized = cli("train", "gan", "--resume", run, "--image-size", "32", ok=False)
    assert (f"Cannot resume {run} with image_size=32: it was trained with points, which have no image size;") in (
        " ".join(sized.output.split()))


def test_a_run_whose_saved_settings_a_later_version_refuses_still_resumes(cli, tmp_path):
    """pack=1 (no --with pacgan) was accepted before pack had to be at least 2: such a run trained, and since pack
    cannot change on resume, the stricter check must judge only what the resume changes."""
    from ganzoo.errors import GanzooError
    from ganzoo.resume import resumed_config

    run = tmp_path / "r"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress")
    saved = {**json.loads((run / "run.json").read_text())["config"], "pack": 1}
    assert resumed_config(run, saved, {"epochs": 2})["epochs"] == 2
    with pytest.raises(GanzooError, match="log_every must be a whole number of at least 1, got 0"):
        resumed_config(run, saved, {"epochs": 2, "log_every": 0})  # what the resume changes is still checked


def test_existing_run_is_not_overwritten(cli, tmp_path):
    run = tmp_path / "r"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress")
    before = (run / "generator.safetensors").read_bytes()
    result = cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, ok=False)
    assert f"{run} already holds a training run; continue it with --resume, pass --overwrite" in " ".join(
        result.output.split())
    assert (run / "generator.safetensors").read_bytes() == before
    shutil.rmtree(run / "checkpoints")  # weights alone: nothing to resume from, so --resume is not offered
    result = cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, ok=False)
    assert " ".join(result.output.split()) == (
        f"Error: {run} already holds a training run; pass --overwrite to replace it, or choose another --out folder.")
    # a run on other data (two folders of one name give one default --out): named, and not offered to --resume
    result = cli("train", "gan", "--data", "grid25", "--epochs", "1", "--out", run, ok=False)
    assert " ".join(result.output.split()) == (
        f"Error: {run} already holds a training run of gan on ring8, not of this one; choose another --out folder, or "
        "pass --overwrite to replace it.")


def test_overwrite_replaces_the_old_run_but_not_other_files(cli, tmp_path):
    run = tmp_path / "r"
    cli("train", "gan", "--data", "ring8", "--epochs", "3", "--out", run, "--no-progress")
    (run / "notes.txt").write_text("mine")
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress", "--overwrite")
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["state-epoch-0001.safetensors"]
    assert [p.name for p in (run / "samples").iterdir()] == ["epoch_001.png"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1]
    assert (run / "notes.txt").read_text() == "mine" and not (run / ".replaced-run").exists()
    cli("train", "gan", "--resume", run, "--epochs", "2", "--no-progress")  # goes on from the new run, not the old
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert next(r for r in rows if r["event"] == "resume")["epoch"] == 1


def test_an_overwrite_that_fails_before_its_first_checkpoint_gives_the_old_run_back(cli, tmp_path):
    run = tmp_path / "r"
    cli("train", "gan", "--data", "ring8", "--epochs", "2", "--out", run, "--no-progress")

    def files() -> dict[str, bytes]:
        return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}

    before = files()
    diverged = cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress", "--overwrite",
                   "--lr", "1e30", "--set", "max_bad_steps=1", ok=False)  # stopped long before its first checkpoint
    assert diverged.exit_code == 1 and "no checkpoint had been written yet" in " ".join(diverged.output.split())
    assert files() == before and not (run / ".replaced-run").exists()
    cli("train", "gan", "--resume", run, "--epochs", "3", "--no-progress")  # the old run goes on


def test_a_folder_holding_only_a_generator_is_not_overwritten(cli, tmp_path):
    run, kept = tmp_path / "r", tmp_path / "kept"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress")
    kept.mkdir()
    (kept / "generator.safetensors").write_bytes((run / "generator.safetensors").read_bytes())
    result = cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", kept, "--no-progress", ok=False)
    assert result.exit_code == 1 and "already holds a training run" in " ".join(result.output.split())
    assert (kept / "generator.safetensors").read_bytes() == (run / "generator.safetensors").read_bytes()


def test_a_run_that_died_before_its_first_checkpoint_can_simply_be_started_again(cli, tmp_path):
    run = tmp_path / "r"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress")
    for path in [*(run / "checkpoints").iterdir(), run / "generator.safetensors", run / "discriminator.safetensors"]:
        path.unlink()  # what a run killed in its first epoch leaves: run.json and the setup row of metrics.jsonl
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress")  # no --overwrite needed
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["event"] for r in rows].count("setup") == 1  # the stale log went with the dead run


def test_a_second_run_that_fails_early_leaves_its_own_logs_not_the_first_ones(cli, tmp_path):
    run = tmp_path / "r"
    failing = ["train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress", "--lr", "1e30",
               "--set", "max_bad_steps=1"]  # stops long before its first checkpoint
    cli(*failing, ok=False)
    second = cli(*failing, "--seed", "7", ok=False)  # no --overwrite needed: logs alone protect nothing
    assert second.exit_code == 1 and "back in" not in second.output  # nothing was being replaced
    assert json.loads((run / "run.json").read_text())["config"]["seed"] == 7
    assert not (run / ".replaced-run").exists()


def test_resuming_a_finished_run_asks_for_more_epochs(cli, tmp_path):
    run = tmp_path / "r"
    cli("train", "gan", "--data", "ring8", "--epochs", "2", "--out", run, "--no-progress")
    same = cli("train", "gan", "--resume", run, "--no-progress", ok=False)
    assert same.exit_code == 1 and " ".join(same.output.split()) == (
        f"Error: {run} has already trained 2 epochs, all it was asked for; pass --epochs with a number above 2 "
        "to train further.")
    fewer = cli("train", "gan", "--resume", run, "--epochs", "1", "--no-progress", ok=False)
    assert "already trained 2 epochs, more than --epochs 1;" in " ".join(fewer.output.split())
    assert json.loads((run / "run.json").read_text())["config"]["epochs"] == 2  # the refusal changed nothing


def test_keeps_only_the_last_checkpoints(cli, tmp_path):
    run = tmp_path / "k"
    cli("train", "gan", "--data", "line-2d", "--epochs", "4", "--set", "keep_checkpoints=2", "--out", run, "--no-progress")
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["state-epoch-0003.safetensors", "state-epoch-0004.safetensors"]


def test_weights_and_checkpoints_get_the_same_permissions_as_the_runs_other_files(cli, tmp_path):
    import os
    import stat

    run = tmp_path / "r"
    mask = os.umask(0o022)
    try:
        cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress")
    finally:
        os.umask(mask)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in
             (run / "generator.safetensors", run / "checkpoints" / "state-epoch-0001.safetensors", run / "run.json")}
    assert set(modes.values()) == {0o644}, modes  # mkstemp alone would leave the safetensors files at 0600
