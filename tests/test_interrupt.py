"""Stopping a run: Ctrl-C or SIGTERM saves its position, SIGKILL loses only what came after the last checkpoint.

Both resume to the same weights as a run that was never stopped, including from inside an epoch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ganzoo.checkpoint import list_checkpoints, load_checkpoint

RUN = ["gan", "--data", "ring8", "--epochs", "2", "--no-progress", "--device", "cpu", "--set", "checkpoint_every=20"]
START_TIMEOUT = 120.0


def _tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def _assert_same_state(a, b):
    a, b = _tensors(a), _tensors(b)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The final checkpoint of the run never stopped (run once for the whole module)."""
    from click.testing import CliRunner

    from ganzoo.cli.main import cli

    out = tmp_path_factory.mktemp("straight") / "run"
    result = CliRunner().invoke(cli, ["train", *RUN, "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out / "checkpoints" / "state-epoch-0002.safetensors"


def _start(out):
    """``ganzoo train`` in a real subprocess; returns once it has written its first checkpoint."""
    command = [sys.executable, "-c", "from ganzoo.cli.main import cli; cli()", "train", *RUN, "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + START_TIMEOUT
    while not list_checkpoints(out):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"training never wrote a checkpoint: {process.communicate()[0]}")
        time.sleep(0.01)
    return process


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_saves_the_position_and_resume_finishes_exactly(stop, cli, tmp_path, straight):
    out = tmp_path / "run"
    process = _start(out)
    process.send_signal(stop)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    lines = [line for line in output.splitlines() if "--resume" in line]
    assert len(lines) == 1 and f"ganzoo train gan --resume {out}" in lines[0], output
    saved = lines[0].split("state saved in ")[1].split(";")[0]
    assert os.path.isfile(saved) and list_checkpoints(out)[-1] == type(out)(saved)
    epochs, batches = (int(part) for part in re.fullmatch(r"state-epoch-(\d+)-batch-(\d+)\.safetensors",
                                                           os.path.basename(saved)).groups())
    plural, batch_plural = "" if epochs == 1 else "s", "" if batches == 1 else "es"  # what the checkpoint's name counts
    assert f"({epochs} epoch{plural} and {batches} batch{batch_plural} of epoch {epochs + 1} done)" in lines[0], lines[0]
    assert not (out / "checkpoints" / "state-epoch-0002.safetensors").exists()  # it really stopped early
    resumed = cli("train", "gan", "--resume", out, "--no-progress", "--device", "cpu").output
    assert f"resuming from {saved} (step " in resumed and ") up to epoch 2" in resumed
    _assert_same_state(straight, out / "checkpoints" / "state-epoch-0002.safetensors")
    # the log has the uninterrupted run's rows, and one at the stop for the steps since the row before it
    stopped_at = int(re.search(r"interrupted after step (\d+)", lines[0]).group(1))
    assert _log_steps(out) == sorted({*_log_steps(straight.parent.parent), stopped_at})


def _log_steps(run) -> list[int]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [row["step"] for row in rows if row["event"] == "log"]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="this system has no hang-up signal")
@pytest.mark.parametrize("progress, ctrl_c_first", [(False, False), (True, False), (False, True)],
                         ids=["plain", "progress-bar", "ctrl-c-with-hang-up"])
def test_a_closed_terminal_saves_the_position_and_resume_finishes_exactly(progress, ctrl_c_first, cli, tmp_path,
                                                                          straight):
    """Closing the terminal (or losing the ssh session) stops the run as Ctrl-C does, with its position saved,
    although every later write to that terminal fails; a Ctrl-C that comes with it is no second Ctrl-C."""
    from conftest import hang_up_once

    out = tmp_path / "run"
    args = [arg for arg in RUN if not (progress and arg == "--no-progress")]

    def started(process) -> bool:
        if not list_checkpoints(out):
            return False
        if ctrl_c_first:
            os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C, as it closes
        return True

    process = hang_up_once(started, "train", *args, "--out", out)
    assert process.wait(timeout=60) == 130  # -SIGHUP (-1) when the hang-up killed it unsaved
    assert re.fullmatch(r"state-epoch-000[01]-batch-\d+\.safetensors", list_checkpoints(out)[-1].name)
    assert not (out / "checkpoints" / "state-epoch-0002.safetensors").exists()  # it really stopped early
    cli("train", "gan", "--resume", out, "--no-progress", "--device", "cpu")
    _assert_same_state(straight, out / "checkpoints" / "state-epoch-0002.safetensors")


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="this system has no hang-up signal")
def test_a_ctrl_c_after_a_hang_up_does_not_cut_the_save_short(tmp_path):
    """After a hang-up no one is at the keyboard: a Ctrl-C that follows it (sent with it by a closing terminal) is
    not a second Ctrl-C that stops at once, unsaved. Both come during one long step, so the order is certain."""
    import time

    from conftest import hang_up_once, slow_steps

    out = tmp_path / "run"
    env, slow, sleeping = slow_steps(tmp_path, seconds=3.0)

    def started(process) -> bool:
        if not list_checkpoints(out):
            return False
        slow.touch()
        deadline = time.monotonic() + 60
        while not sleeping.exists():  # until a slow step has begun
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.01)
        return True  # the terminal closes: the hang-up, inside that step

    with open(tmp_path / "output.txt", "w") as output:  # a file keeps the run's last words
        process = hang_up_once(started, "train", *RUN, "--out", out, output=output, env=env)
        time.sleep(0.3)
        os.kill(process.pid, signal.SIGINT)  # during the same step
        assert process.wait(timeout=60) == 130
    words = (tmp_path / "output.txt").read_text()
    assert "state saved in " in words and "Interrupted." not in words, words
    saved = words.split("state saved in ")[1].split(";")[0]
    assert list_checkpoints(out)[-1].name == os.path.basename(saved)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="this system has no hang-up signal")
def test_a_run_under_nohup_trains_on_when_its_terminal_closes(tmp_path, straight):
    """``nohup ganzoo train ...`` asks for a run that outlives its terminal: the hang-up is ignored, as asked."""
    from conftest import hang_up_once

    out = tmp_path / "run"
    with open(tmp_path / "nohup.out", "w") as output:
        process = hang_up_once(lambda process: list_checkpoints(out), "train", *RUN, "--out", out, nohup=True,
                               output=output)
        assert process.wait(timeout=120) == 0
    assert "done: 2 epochs" in (tmp_path / "nohup.out").read_text()
    _assert_same_state(straight, out / "checkpoints" / "state-epoch-0002.safetensors")


def test_sigkill_mid_run_resumes_from_the_last_checkpoint(cli, tmp_path, straight):
    out = tmp_path / "run"
    process = _start(out)
    process.kill()  # SIGKILL: no handler runs, maybe even in the middle of writing a checkpoint
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (out / "checkpoints" / "state-epoch-0002.safetensors").exists()
    with open(out / "metrics.jsonl", "a") as log:  # zeros a crash can leave in a file's last block, and a row cut short
        log.write("\x00" * 16 + "\n" + '{"event": "log", "epoch": 2, "step": 10')
    cli("train", "gan", "--resume", out, "--no-progress", "--device", "cpu")
    assert (out / "losses.png").stat().st_mtime >= (out / "metrics.jsonl").stat().st_mtime - 1  # drawn at the end
    _assert_same_state(straight, out / "checkpoints" / "state-epoch-0002.safetensors")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for event in ("log", "epoch"):  # each step's row once, in order
        steps = [row["step"] for row in rows if row["event"] == event]
        assert steps == sorted(set(steps)), event
    (resume,) = [row for row in rows if row["event"] == "resume"]
    assert resume["dropped_rows"] >= 2  # the zeros, the cut-short row, and any of steps the resumed run trained again


def test_resume_from_inside_an_epoch_is_bit_exact(cli, tmp_path):
    common = ["gan", "--data", "ring8", "--epochs", "2", "--d-steps", "2", "--no-progress", "--device", "cpu",
              "--set", "checkpoint_every=75", "--set", "keep_checkpoints=20"]
    cli("train", *common, "--out", tmp_path / "a")
    names = [p.name for p in list_checkpoints(tmp_path / "a")]
    assert names == ["state-epoch-0000-batch-000075.safetensors", "state-epoch-0000-batch-000150.safetensors",
                     "state-epoch-0001.safetensors", "state-epoch-0001-batch-000025.safetensors",
                     "state-epoch-0001-batch-000100.safetensors", "state-epoch-0001-batch-000175.safetensors",
                     "state-epoch-0002.safetensors"]
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for path in list_checkpoints(tmp_path / "b")[4:]:
        path.unlink()  # as if the run had died right after 1 epoch and 25 batches (an odd batch: d_steps=2)
    cli("train", "gan", "--resume", tmp_path / "b", "--no-progress", "--device", "cpu")
    _assert_same_state(tmp_path / "a" / "checkpoints" / "state-epoch-0002.safetensors",
                       tmp_path / "b" / "checkpoints" / "state-epoch-0002.safetensors")
    import json

    events = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert {"event": "resume", "epoch": 1, "batch": 25, "step": 225}.items() <= next(
        e for e in events if e["event"] == "resume").items()


def test_resume_inside_the_critic_warmup_is_bit_exact(cli, tmp_path):
    common = ["gan", "--data", "ring8", "--epochs", "1", "--loss", "wgan", "--no-progress", "--device", "cpu",
              "--set", "warmup_d_steps=7", "--set", "checkpoint_every=40", "--set", "keep_checkpoints=20"]
    cli("train", *common, "--out", tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for path in list_checkpoints(tmp_path / "b")[1:]:
        path.unlink()  # as if the run had died after 40 batches: 5 G steps of the warm-up, 5 critic steps since
    cli("train", "gan", "--resume", tmp_path / "b", "--no-progress", "--device", "cpu")
    _assert_same_state(tmp_path / "a" / "checkpoints" / "state-epoch-0001.safetensors",
                       tmp_path / "b" / "checkpoints" / "state-epoch-0001.safetensors")


def test_a_checkpoint_from_before_the_generator_step_counters_resumes_with_the_count_it_had(cli, tmp_path):
    """Such a checkpoint's run took floor(200 / 7) = 28 G steps in each ring8 epoch of 200 batches (the last 4
    without one): at epoch 1, batch 25, 28 + 3 G steps and 4 critic steps since; the resume then takes 26 more
    (at batch 28, 24 at every 7th batch after, and the epoch-end one). Counting G steps as step // 7 would give
    32 + 26."""
    from test_bad_input import _rewrite_json

    common = ["gan", "--data", "ring8", "--epochs", "2", "--loss", "wgan", "--set", "d_steps=7", "--no-progress",
              "--device", "cpu", "--set", "checkpoint_every=75", "--set", "keep_checkpoints=20"]
    cli("train", *common, "--out", tmp_path / "run")
    for path in list_checkpoints(tmp_path / "run")[4:]:
        path.unlink()  # the run died after epoch 1, batch 25
    old = list_checkpoints(tmp_path / "run")[-1]
    assert old.name == "state-epoch-0001-batch-000025.safetensors"
    _rewrite_json(old, lambda meta: [meta["counters"].pop(key) for key in ("g_steps", "d_steps_since_g")])
    cli("train", "gan", "--resume", tmp_path / "run", "--no-progress", "--device", "cpu")
    meta, _ = load_checkpoint(list_checkpoints(tmp_path / "run")[-1])
    assert (meta["counters"]["g_steps"], meta["counters"]["d_steps_since_g"]) == (31 + 26, 0)


def test_a_run_saved_with_a_warmup_shorter_than_d_steps_still_resumes(cli, tmp_path):
    """New runs refuse warmup_d_steps below d_steps; one saved with it before that rule goes on as it was."""
    from test_bad_input import _rewrite_json

    common = ["gan", "--data", "ring8", "--epochs", "2", "--loss", "wgan", "--no-progress", "--device", "cpu"]
    refused = cli("train", *common, "--set", "warmup_d_steps=3", "--out", tmp_path / "new", ok=False)
    assert refused.exit_code == 1 and "warmup_d_steps (3) would give" in refused.output
    cli("train", *common, "--out", tmp_path / "run")
    for path in list_checkpoints(tmp_path / "run")[1:]:
        path.unlink()  # the run stopped after its first epoch
    _rewrite_json(list_checkpoints(tmp_path / "run")[-1], lambda meta: meta["config"].update(warmup_d_steps=3))
    cli("train", "gan", "--resume", tmp_path / "run", "--no-progress", "--device", "cpu")
    meta, _ = load_checkpoint(list_checkpoints(tmp_path / "run")[-1])
    assert meta["counters"]["epoch"] == 2 and meta["config"]["warmup_d_steps"] == 3


INTERRUPTING_PLUGIN = '''
import os, signal
from ganzoo import hookimpl
from ganzoo.specs import DatasetInfo, DatasetSpec

@hookimpl
def register_datasets(register):
    def load(root=None, image_size=None, channels=None):
        os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, while the data loads
        raise AssertionError("SIGINT did not stop the run")
    register(DatasetSpec("slow-points", "points that take long to load", DatasetInfo("vectors", dim=2), load))
'''


def test_ctrl_c_during_setup_exits_130_and_writes_nothing(tmp_path):
    from conftest import default_sigint, make_distribution

    site = make_distribution(tmp_path / "site", "ganzoo-slowdata", "ganzoo_slowdata", INTERRUPTING_PLUGIN)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.run([sys.executable, "-m", "ganzoo", "train", "gan", "--data", "slow-points", "--out", str(out),
                            "--no-progress"], capture_output=True, text=True, env=env, timeout=300,
                           preexec_fn=default_sigint)
    assert child.returncode == 130, child.stderr
    assert child.stderr.strip() == "Interrupted." and not out.exists()  # not click's "Aborted!" and status 1


def test_a_stop_signal_is_taken_once_alone_and_every_time_together_then_the_old_handler_is_back():
    """Alone, the first SIGTERM sets the flag and the second reaches the handler from before (a scheduler's second
    notice, or the system's default, kills); together (torchrun) every signal only sets the flag."""
    from ganzoo.stop_signals import deferred_stop

    reached = []

    def before(number, frame):
        reached.append(number)

    previous = signal.signal(signal.SIGTERM, before)
    try:
        with deferred_stop() as alone:
            os.kill(os.getpid(), signal.SIGTERM)
            assert alone.requested and reached == []
            os.kill(os.getpid(), signal.SIGTERM)
            assert reached == [signal.SIGTERM]
        with deferred_stop(together=True) as together:
            for _ in range(3):
                os.kill(os.getpid(), signal.SIGTERM)
            assert together.requested and reached == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        signal.signal(signal.SIGTERM, previous)
