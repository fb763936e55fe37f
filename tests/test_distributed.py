"""Multi-process training on the CPU (gloo, 2 processes through torchrun): real subprocesses, real files.

Tolerance: a 2-process run and a 1-process run with the same global batch differ only in the order
of floating-point sums (gradients averaged over processes versus summed over one batch). On ring8
at batch 2048 the weights stay within 1e-7 for 20 steps; then an activation that sits within
rounding of LeakyReLU's kink for one sample takes the other branch, and after 25 steps the largest
difference measured was 7.7e-6 (1.8e-3 after 50, as such events compound). ATOL = 1e-4 at 25 steps
leaves a margin while those steps move the weights by more than 20 times that. Both processes of a
run end with bit-identical weights (SHA-256 of every tensor), and resuming is bit-exact.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ATOL = 1e-4
#: ring8 (51,200 points) at a global batch of 2048: 25 steps per epoch.
RUN = ["gan", "--data", "ring8", "--batch-size", "2048", "--device", "cpu", "--no-progress"]


def _tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def _events(run, kind):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if row["event"] == kind]


def _max_difference(a, b, prefixes=("net.", "optim.")):
    keys = [k for k in a if k.startswith(prefixes) and a[k].is_floating_point()]
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in keys)


def _check_processes_identical(run, epoch):
    """Both processes logged the digest of their weights; they are equal, and equal to what process 0 saved."""
    from ganzoo.safefile import tensor_digest

    saved = _tensors(run / "checkpoints" / f"state-epoch-{epoch:04d}.safetensors")
    digests = next(e["sha256"] for e in _events(run, "process_weights") if e["epoch"] == epoch)
    assert len(digests) == 2 and digests[0] == digests[1]
    assert digests[0] == tensor_digest({k: v for k, v in saved.items() if k.startswith("net.")})
    return saved


def test_two_processes_agree_resume_exactly_and_match_one_process(cli, tmp_path, monkeypatch):
    import tempfile

    import torch

    from ganzoo.engine import Trainer, TrainRequest

    two, one = tmp_path / "two", tmp_path / "one"
    saves = ["--set", "checkpoint_every=40", "--set", "keep_checkpoints=5"]  # steps 25 (epoch 1), 40, 50 (epoch 2)
    system_temporary = tmp_path / "system-temporary"
    system_temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_temporary))  # for torchrun and its processes
    monkeypatch.setattr(tempfile, "tempdir", str(system_temporary))  # for the launcher, in this process
    # ganzoo starts torchrun itself, passing every option on, an explicit "off" (--no-fused-adam) included
    cli("train", *RUN, "--epochs", "2", *saves, "--out", two, "--devices", "2", "--no-fused-adam")
    left = [entry.name for entry in system_temporary.iterdir() if not entry.name.startswith("torchinductor_")]
    assert left == []  # torchrun's logs went with the launcher's own folder (torch's compile cache is meant to stay)
    monkeypatch.undo()
    info = json.loads((two / "run.json").read_text())
    assert info["processes"] == 2 and info["config"]["fused_adam"] is False
    epoch1, epoch2 = _check_processes_identical(two, 1), _check_processes_identical(two, 2)
    assert {"rng.noise", "rng.torch.rank0", "rng.torch.rank1"} <= epoch1.keys()
    assert not torch.equal(epoch1["rng.torch.rank0"], epoch1["rng.torch.rank1"])  # each process has its own stream

    # resume from inside epoch 2 with torchrun started by hand, as on a cluster: every process reads the checkpoint
    (two / "checkpoints" / "state-epoch-0002.safetensors").unlink()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "ganzoo",
               "train", "gan", "--resume", str(two), "--device", "cpu", "--no-progress"]
    subprocess.run(command, check=True, timeout=300)
    assert _events(two, "resume")[0]["step"] == 40
    resumed = _check_processes_identical(two, 2)
    assert resumed.keys() == epoch2.keys()
    assert all(torch.equal(resumed[k], epoch2[k]) for k in epoch2)

    cli("train", *RUN, "--epochs", "1", "--out", one, "--no-fused-adam")
    reference = _tensors(one / "checkpoints" / "state-epoch-0001.safetensors")
    assert reference.keys() <= epoch1.keys()
    assert _max_difference(reference, epoch1) < ATOL
    start = Trainer(TrainRequest(model="gan", out=tmp_path / "init", data="ring8", overrides={"batch_size": 2048},
                                 device="cpu", progress=False))
    initial = {f"net.generator.{k}": v for k, v in start.generator.state_dict().items()}
    assert _max_difference(initial, epoch1, ("net.generator.",)) > 20 * ATOL  # the 25 steps went somewhere


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_nodes_train_what_one_node_with_as_many_processes_does(cli, tmp_path):
    """Two torchrun agents meeting through c10d on 127.0.0.1, as two machines would: each process is rank 0 or 1
    of the run and local rank 0 of its node, and the weights are bit-identical to one node's two processes."""
    from ganzoo.safefile import tensor_digest

    nodes = tmp_path / "nodes"
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d",
               f"--rdzv-endpoint=127.0.0.1:{_free_port()}", f"--rdzv-id=ganzoo-test-{os.getpid()}", "-m", "ganzoo",
               "train", *RUN, "--epochs", "1", "--out", str(nodes)]
    agents = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [agent.communicate(timeout=300)[0] for agent in agents]
    assert [agent.returncode for agent in agents] == [0, 0], outputs
    assert sum("done: 1 epoch" in output for output in outputs) == 1  # process 0 alone reports, on its node
    one_node = tmp_path / "one-node"
    cli("train", *RUN, "--epochs", "1", "--out", one_node, "--devices", "2")
    assert json.loads((nodes / "run.json").read_text())["processes"] == 2
    digests = [tensor_digest(_tensors(run / "generator.safetensors")) for run in (nodes, one_node)]
    assert digests[0] == digests[1]
    _check_processes_identical(nodes, 1)


def test_a_worker_that_fails_after_joining_exits_with_its_status_and_its_one_sentence(tmp_path):
    """Workers end through distributed.end_worker (no interpreter teardown): the status and message must survive."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "ganzoo",
               "train", *RUN, "--batch-size", "2047", "--epochs", "1", "--out", str(tmp_path / "run")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("Error: --batch-size 2047 does not split evenly over 2 processes") == 2
    assert "exitcode  : 1 " in done.stderr and "exitcode  : -6" not in done.stderr  # not SIGABRT on the way out


_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_run_left_behind():
    """Kill what a failed test left running: each launcher's torchrun and its processes (sessions of their own)."""
    import signal

    from ganzoo.launcher import children

    yield
    while _started:
        launcher = _started.pop()
        if launcher.poll() is None:
            for torchrun in children(launcher.pid):
                for pid in [*children(torchrun), torchrun]:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            launcher.kill()
            launcher.communicate()


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is no zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _launch(run, *settings, until="log"):
    """``ganzoo train ... --devices 2`` in a terminal of its own (the test's signals reach no one else), once its
    metrics hold an ``until`` row; returns (launcher, torchrun's processes)."""
    import time

    from conftest import default_sigint
    from ganzoo.launcher import children

    launcher = subprocess.Popen([sys.executable, "-m", "ganzoo", "train", *RUN, "--epochs", "40", *settings,
                                 "--devices", "2", "--out", str(run)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                preexec_fn=default_sigint)  # a background job's pytest ignores SIGINT: not the launcher
    _started.append(launcher)
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").is_file() or not _events(run, until):
        if launcher.poll() is not None or time.monotonic() > deadline:
            launcher.kill()
            pytest.fail(f"the run never logged: {launcher.communicate()[0]}")
        time.sleep(0.05)
    (torchrun,) = children(launcher.pid)
    return launcher, children(torchrun)


def _interrupted_step(run, launcher):
    """The step the stopped run names in its one line (with its checkpoint and the --resume command)."""
    import re

    output = launcher.communicate(timeout=120)[0]
    assert launcher.returncode == 130 and "Traceback" not in output and "SignalException" not in output, output
    (line,) = [line for line in output.splitlines() if "--resume" in line]
    assert f"continue with: ganzoo train gan --resume {run} --devices 2" in line  # as many processes: bit-exact
    assert os.path.isfile(line.split("state saved in ")[1].split(";")[0])
    return int(re.search(r"interrupted after step (\d+) ", line).group(1))


def test_ctrl_c_under_devices_stops_every_process_at_one_step_with_a_checkpoint_and_resume_goes_on(tmp_path):
    """The launcher alone gets the terminal's Ctrl-C (torchrun runs in a session of its own) and passes it on once;
    the processes agree on a step at the next log point, save there, and the launcher ends with 130, quietly."""
    import signal

    run = tmp_path / "run"
    launcher, _ = _launch(run, "--set", "log_every=5")
    os.killpg(launcher.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    step = _interrupted_step(run, launcher)
    assert step % 5 == 0 and step < 40 * 25  # at a log point, long before the end

    epochs = step // 25 + 1  # up to the end of the epoch it stopped in
    subprocess.run([sys.executable, "-m", "ganzoo", "train", "gan", "--resume", str(run), "--epochs", str(epochs),
                    "--devices", "2", "--device", "cpu", "--no-progress"], check=True, timeout=300)
    assert _events(run, "resume")[0]["step"] == step
    _check_processes_identical(run, epochs)


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGHUP"), reason="this system has no hang-up signal")
@pytest.mark.parametrize("ctrl_c_first", [False, True], ids=["hang-up", "ctrl-c-then-hang-up"])
def test_a_closed_terminal_under_devices_stops_every_process_at_one_step_and_resume_goes_on(tmp_path, ctrl_c_first):
    """The launcher alone gets the hang-up (torchrun runs in a session of its own) and passes it on as a hang-up,
    also after a Ctrl-C it passed on, so that every process stops writing to the closed terminal, agrees on a step
    and saves there."""
    import re
    import signal
    import time

    from conftest import hang_up_once
    from ganzoo.checkpoint import list_checkpoints
    from ganzoo.launcher import children

    run, workers = tmp_path / "run", []

    def started(launcher) -> bool:  # once training logs, with the ids of torchrun's processes
        if not (run / "metrics.jsonl").is_file() or not _events(run, "log"):
            return False
        workers.extend(worker for torchrun in children(launcher.pid) for worker in children(torchrun))
        if ctrl_c_first:
            os.killpg(launcher.pid, signal.SIGINT)  # what the terminal does on Ctrl-C, just before it closes:
            time.sleep(0.05)  # after the launcher passed it on, before the processes reach their next log point
        return True

    launcher = hang_up_once(started, "train", *RUN, "--epochs", "40", "--set", "log_every=5", "--devices", "2",
                            "--out", run)
    assert launcher.wait(timeout=120) == 130
    newest = list_checkpoints(run)[-1].name
    epoch, batch = re.fullmatch(r"state-epoch-(\d+)(?:-batch-(\d+))?\.safetensors", newest).groups()
    assert int(epoch) < 40 and int(batch or 0) % 5 == 0  # at a log point, long before the end
    deadline = time.monotonic() + 10
    while any(map(_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers) == 2 and not any(map(_running, workers))
    epochs = int(epoch) + 1
    subprocess.run([sys.executable, "-m", "ganzoo", "train", "gan", "--resume", str(run), "--epochs", str(epochs),
                    "--devices", "2", "--device", "cpu", "--no-progress"], check=True, timeout=300)
    _check_processes_identical(run, epochs)


def test_sigterm_to_one_process_stops_all_and_a_second_ctrl_c_kills_them_at_once(tmp_path):
    import signal
    import time

    launcher, workers = _launch(tmp_path / "one", "--set", "log_every=5")
    os.kill(workers[-1], signal.SIGTERM)  # a scheduler that signals one process: the launcher still says 130
    assert _interrupted_step(tmp_path / "one", launcher) % 5 == 0

    # no log point before the epoch's end (1,600 steps): the processes still train when the second Ctrl-C comes
    launcher, workers = _launch(tmp_path / "two", "--set", "log_every=10000", "--batch-size", "32", until="setup")
    time.sleep(1)  # into the first epoch
    os.killpg(launcher.pid, signal.SIGINT)
    time.sleep(0.2)
    os.killpg(launcher.pid, signal.SIGINT)
    launcher.communicate(timeout=60)
    assert launcher.returncode == 130  # as a single process's second Ctrl-C

    deadline = time.monotonic() + 10
    while any(map(_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_running, workers))
    assert not list((tmp_path / "two" / "checkpoints").glob("*batch*"))  # killed, not stopped at a step


def test_a_process_killed_under_devices_is_one_sentence_and_the_run_resumes_from_its_checkpoint(tmp_path):
    """A process killed outright (the kernel's out-of-memory killer) and a launcher killed outright each end in one
    sentence rather than torchrun's traceback and report; the first names how to resume, and the resume goes on."""
    import signal
    import time

    from ganzoo.checkpoint import list_checkpoints

    def first_checkpoint(run):
        deadline = time.monotonic() + 120
        while not list_checkpoints(run) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list_checkpoints(run)

    run = tmp_path / "worker"
    launcher, workers = _launch(run)
    first_checkpoint(run)
    os.kill(workers[-1], signal.SIGKILL)
    output = launcher.communicate(timeout=120)[0]
    assert launcher.returncode == 1 and "Traceback" not in output and "FAILED" not in output, output
    said = " ".join(output.split())
    assert "Error: training process 1 of 2 was killed by SIGKILL (the kernel's out-of-memory killer" in said, output
    assert f"The run keeps its last checkpoint; continue with: ganzoo train gan --resume {run} --devices 2" in said
    epochs = int(re.fullmatch(r"state-epoch-(\d+).*", list_checkpoints(run)[-1].name).group(1)) + 1
    subprocess.run([sys.executable, "-m", "ganzoo", "train", "gan", "--resume", str(run), "--epochs", str(epochs),
                    "--devices", "2", "--device", "cpu", "--no-progress"], check=True, timeout=300)
    _check_processes_identical(run, epochs)

    launcher, workers = _launch(tmp_path / "launcher", "--set", "log_every=5")
    os.kill(launcher.pid, signal.SIGKILL)  # Linux sends torchrun SIGTERM; it stops its processes, which save
    output = launcher.communicate(timeout=120)[0]
    assert "Traceback" not in output and "SignalException" not in output, output
    assert "Error: torchrun got SIGTERM (its --devices launcher ended, or it came from outside)" in " ".join(
        output.split()), output


NODE_FOLDERS_PLUGIN = '''
import os
from pathlib import Path
from ganzoo import hookimpl
from ganzoo.specs import DatasetInfo, DatasetSpec

@hookimpl
def register_datasets(register):
    def load(root=None, image_size=None, channels=None):
        from ganzoo.data.folder import folder_dataset
        return folder_dataset(Path(os.environ["NODE_FOLDERS"], os.environ["RANK"])).load(root, image_size, channels)
    register(DatasetSpec("node-pictures", "each process's own folder, as on nodes whose copies differ",
                         DatasetInfo("images", channels=3, image_size=16), load))
'''


def test_processes_that_read_another_count_are_refused_and_other_pictures_noted(tmp_path):
    """Nodes whose copies of the data differ: with another count a process would wait forever in an epoch of another
    length, so the run is refused in one sentence, printed once; other pictures under the same count (a copy, or an
    image decoder, that differs) are trained on with a note."""
    import shutil

    from conftest import make_distribution, write_png_images

    site = make_distribution(tmp_path / "site", "ganzoo-nodefolders", "ganzoo_nodefolders", NODE_FOLDERS_PLUGIN)
    nodes = tmp_path / "nodes"
    write_png_images(nodes / "0", 8, seed=0)
    write_png_images(nodes / "1", 12, seed=0)
    env = {**os.environ, "NODE_FOLDERS": str(nodes),
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    def train(out, *more):
        return subprocess.run([sys.executable, "-m", "ganzoo", "train", "dcgan", "--data", "node-pictures", "--epochs",
                               "2", "--batch-size", "4", "--set", "g_width=4", "--set", "d_width=4", "--devices", "2",
                               "--device", "cpu", "--no-progress", "--out", str(tmp_path / out), *more],
                              capture_output=True, text=True, env=env, timeout=300)

    refused = train("refused")
    sentence = ("Error: Process 1 reads other data than process 0 (12 samples against 8); every node must hold the "
                "same --data: copy the same files to each node, or point --data-root at a folder they share.")
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1 and "".join(output.split()).count("".join(sentence.split())) == 1, output
    assert "Traceback" not in output and "FAILED" not in output  # the launcher says it once; torchrun reports nothing

    shutil.rmtree(nodes / "1")
    write_png_images(nodes / "1", 8, seed=1)
    noted = train("noted", "--set", "checkpoint_every=1", "--set", "keep_checkpoints=10")  # 2 steps an epoch
    note = ("note: process 1 reads other pictures than process 0 (the same 8 samples): its node's copy of the data or "
            "its image decoder differs; each process trains on what it reads.")
    output = noted.stdout + noted.stderr
    assert noted.returncode == 0 and "".join(output.split()).count("".join(note.split())) == 1, output
    # resumed inside epoch 2, every process follows process 0's verdict on its data (unchanged), so none starts the
    # epoch over alone, which would leave the others waiting for it
    from ganzoo.checkpoint import list_checkpoints

    checkpoints = list_checkpoints(tmp_path / "noted")
    for path in checkpoints[[c.name for c in checkpoints].index("state-epoch-0001-batch-000001.safetensors") + 1:]:
        path.unlink()
    resumed = subprocess.run([*noted.args[:noted.args.index("dcgan") + 1], "--resume", str(tmp_path / "noted"),
                              "--devices", "2", "--device", "cpu", "--no-progress"],
                             capture_output=True, text=True, env=env, timeout=120)  # a deadlock fails at once
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert {"epoch": 1, "batch": 1}.items() <= _events(tmp_path / "noted", "resume")[0].items()
    _check_processes_identical(tmp_path / "noted", 2)

    shutil.rmtree(nodes / "1")
    shutil.copytree(nodes / "0", nodes / "1")
    same = train("same")
    assert same.returncode == 0 and "note:" not in same.stdout + same.stderr  # the same copies: nothing to say


ONE_PROCESS_FAILS_PLUGIN = '''
import os
from ganzoo import hookimpl
from ganzoo.errors import GanzooError

@hookimpl
def after_step(stage, state):
    if stage == "generator" and os.environ["RANK"] == os.environ["FAILING_RANK"]:
        state["generator_steps"] = state.get("generator_steps", 0) + 1
        if state["generator_steps"] == 3:  # as out of memory on one GPU: the others wait for it in a collective
            raise GanzooError("Process " + os.environ["RANK"] + " ran out of memory; lower --batch-size.")
'''


@pytest.mark.parametrize("rank", ["0", "1"])
def test_an_error_in_one_process_alone_ends_the_run_with_its_sentence_once(tmp_path, rank):
    """The others, left waiting in a collective ("Connection closed by peer"), end quietly: no traceback and no
    torchrun failure report bury the one sentence that says what went wrong."""
    from conftest import make_distribution

    site = make_distribution(tmp_path / "site", "ganzoo-onefails", "ganzoo_onefails", ONE_PROCESS_FAILS_PLUGIN)
    env = {**os.environ, "FAILING_RANK": rank, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "ganzoo", "train", "gan", "--data", "ring8", "--epochs", "2",
                           "--devices", "2", "--device", "cpu", "--no-progress", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert output.count("Error:") == 1 and f"Error: Process {rank} ran out of memory; lower --batch-size." in output
    assert "Traceback" not in output and "FAILED" not in output, output


def test_cpu_processes_under_devices_each_count_on_their_share_of_the_memory(tmp_path, image_folder):
    """Two CPU processes on one machine (torchrun's LOCAL_WORLD_SIZE=2) share its memory: a batch whose largest
    generator layer fits in the free memory once, but not twice, is refused before any network is built."""
    import torch

    from ganzoo.config import resolve_config
    from ganzoo.memory_floor import free_bytes, generator_floor
    from ganzoo.registry import get_dataset, get_model

    model = get_model("dcgan")
    config = resolve_config(model, get_dataset(str(image_folder)).info, {"image_size": 256})
    one = generator_floor(model, config, 1)
    free = free_bytes(torch.device("cpu"))
    batch = int(0.75 * free / one)  # each process's batch: its largest layer takes 3/4 of the free memory
    assert free / 2 < generator_floor(model, config, batch) < free  # fits one process, not two
    done = subprocess.run([sys.executable, "-m", "ganzoo", "train", "dcgan", "--data", str(image_folder),
                           "--image-size", "256", "--batch-size", str(2 * batch), "--epochs", "1", "--devices", "2",
                           "--device", "cpu", "--no-progress", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120)
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, output
    assert output.count("Error:") == 1 and re.search(
        rf"Error: --image-size 256 with a batch of {batch} needs at least [0-9.]+ GiB for the generator's largest "
        r"layer alone, more than the [0-9.]+ GiB free on cpu for each of the 2 processes sharing it; use a smaller "
        r"--image-size or --batch-size\.", output), output
    assert not (tmp_path / "run" / "checkpoints").exists()


SLOW_SETUP_PLUGIN = '''
import os, pathlib, time
from ganzoo import hookimpl
from ganzoo.specs import DatasetInfo, DatasetSpec

@hookimpl
def register_datasets(register):
    def load(root=None, image_size=None, channels=None):
        pathlib.Path(os.environ["SLOW_SETUP_MARKS"], os.environ["RANK"]).touch()
        time.sleep(120)  # a long download or decoding, which the Ctrl-C cuts short
        raise AssertionError("the Ctrl-C did not stop the setup")
    register(DatasetSpec("slow-points", "points that take minutes to load", DatasetInfo("vectors", dim=2), load))
'''


def _slow_setup(tmp_path):
    """The environment that installs SLOW_SETUP_PLUGIN, and the folder where each process marks its loading."""
    from conftest import make_distribution

    site = make_distribution(tmp_path / "site", "ganzoo-slowsetup", "ganzoo_slowsetup", SLOW_SETUP_PLUGIN)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "SLOW_SETUP_MARKS": str(marks),
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return env, marks


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGHUP"), reason="this system has no hang-up signal")
def test_a_closed_terminal_before_training_under_devices_ends_every_process_with_130(tmp_path):
    """A hang-up passed on while the processes still load the data (before training's own handler) ends them as a
    Ctrl-C then does, not by the signal's default, which torchrun would report as a failed run."""
    from conftest import hang_up_once

    env, marks = _slow_setup(tmp_path)
    run = tmp_path / "run"
    launcher = hang_up_once(lambda process: (marks / "0").exists(), "train", "gan", "--data", "slow-points",
                            "--devices", "2", "--device", "cpu", "--no-progress", "--out", run, env=env)
    assert launcher.wait(timeout=60) == 130  # 1, torchrun's failure, when the hang-up killed them


@pytest.mark.parametrize("moment, stop", [("torchrun-starting", "SIGINT"), ("data-loading", "SIGINT"),
                                         ("data-loading", "SIGTERM")])
def test_ctrl_c_before_training_under_devices_ends_with_one_word_and_130(tmp_path, moment, stop):
    """Before training there is nothing to save: a Ctrl-C while torchrun starts its processes (passed on once each
    runs its command) or while process 0 loads the data (process 1 waits for it) ends every process at once with
    "Interrupted.", as one process does, not with tracebacks and torchrun's failure report; a SIGTERM to the
    launcher does the same."""
    import signal
    import time

    from conftest import default_sigint
    from ganzoo.launcher import children

    env, marks = _slow_setup(tmp_path)
    run = tmp_path / "run"
    launcher = subprocess.Popen([sys.executable, "-m", "ganzoo", "train", "gan", "--data", "slow-points",
                                 "--devices", "2", "--device", "cpu", "--no-progress", "--out", str(run)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True, preexec_fn=default_sigint)
    _started.append(launcher)

    def reached() -> bool:
        if moment == "torchrun-starting":
            return bool(children(launcher.pid))  # torchrun is there; its processes are not, or still start up
        return (marks / "0").exists()

    deadline = time.monotonic() + 120
    while not reached():
        if launcher.poll() is not None or time.monotonic() > deadline:
            launcher.kill()
            pytest.fail(f"the run never got there: {launcher.communicate()[0]}")
        time.sleep(0.01)
    if stop == "SIGINT":
        os.killpg(launcher.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    else:
        os.kill(launcher.pid, signal.SIGTERM)
    output = launcher.communicate(timeout=60)[0]
    assert launcher.returncode == 130, output
    assert output.count("Interrupted.") == 1 and "Traceback" not in output and "FAILED" not in output, output
    assert not (run / "checkpoints").exists()
    if moment == "torchrun-starting":
        assert not any(marks.iterdir())  # stopped as soon as their command ran, before any data was loaded


STAND_IN_WORKER = '''
import os, signal, sys, time
from pathlib import Path
from ganzoo.launcher import interrupted_status, mark_ready
if sys.argv[1] == "stuck":  # waits, deaf to the Ctrl-C, for a process that has left (a group that never formed)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    Path(os.environ["STUCK_PID"]).write_text(str(os.getpid()))
mark_ready()
try:
    time.sleep(120)
except KeyboardInterrupt:
    sys.exit(interrupted_status())
'''
STAND_IN_TORCHRUN = '''
import subprocess, sys
workers = [subprocess.Popen([sys.executable, "-c", sys.argv[1], kind]) for kind in ("stops", "stuck")]
sys.exit(max(worker.wait() for worker in workers))
'''


def test_the_launcher_kills_a_process_still_running_after_another_stopped(tmp_path):
    """Once a process said it stopped (its position saved), one stuck waiting for it is killed after a grace."""
    import signal
    import time

    from conftest import default_sigint

    driver = (f"import sys, ganzoo.launcher as launcher\n"
              f"launcher.STRAGGLER_SECONDS = 1.0\n"
              f"launcher.launch_command = lambda devices, args, log_dir: [sys.executable, '-c', {STAND_IN_TORCHRUN!r}, "
              f"{STAND_IN_WORKER!r}]\n"
              f"sys.exit(launcher.launch(2, []))\n")
    stuck = tmp_path / "stuck.pid"
    launcher = subprocess.Popen([sys.executable, "-c", driver], env={**os.environ, "STUCK_PID": str(stuck)},
                                start_new_session=True, preexec_fn=default_sigint)
    _started.append(launcher)
    deadline = time.monotonic() + 60
    while not stuck.is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # both have marked themselves ready
    os.killpg(launcher.pid, signal.SIGINT)
    started = time.monotonic()
    assert launcher.wait(timeout=30) == 130
    assert time.monotonic() - started < 10  # the grace, then the kill: not the stuck one's two minutes
    pid = int(stuck.read_text())
    deadline = time.monotonic() + 5
    while _running(pid):
        assert time.monotonic() < deadline, "the stuck process still runs"
        time.sleep(0.05)


def test_state_each_process_keeps_for_itself_resumes_exactly(cli, tmp_path):
    """CycleGAN's image pools hold each process's own fakes: every process gets its own pools back on resume."""
    import torch

    from conftest import write_png_images

    write_png_images(tmp_path / "a", 8, size=24, seed=1)
    write_png_images(tmp_path / "b", 8, size=24, seed=2)
    run = tmp_path / "run"
    # 4 steps per epoch of 1 image per process; pools of 2 are full after 2 steps, then swap at random
    options = ["--image-size", "24", "--batch-size", "2", "--set", "g_width=4", "--set", "d_width=4", "--set", "blocks=1",
               "--set", "pool_size=2", "--device", "cpu", "--no-progress"]
    cli("train", "cyclegan", "--data-a", tmp_path / "a", "--data-b", tmp_path / "b", "--epochs", "2", *options,
        "--set", "checkpoint_every=6", "--set", "keep_checkpoints=5", "--out", run, "--devices", "2")
    straight = _check_processes_identical(run, 2)
    assert not torch.equal(straight["process_state.rank1.pool_a"], straight["state.pool_a"])  # each its own fakes

    (run / "checkpoints" / "state-epoch-0002.safetensors").unlink()  # go on from step 6, inside epoch 2
    cli("train", "cyclegan", "--resume", run, "--device", "cpu", "--no-progress", "--devices", "2")
    assert _events(run, "resume")[0]["step"] == 6
    resumed = _check_processes_identical(run, 2)
    assert resumed.keys() == straight.keys()
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)


def test_began_balance_and_stall_rule_are_the_whole_batchs_on_every_process(cli, tmp_path):
    """k_t and M follow the losses of the whole global batch: both processes hold the k_t one process would, and
    halve their rates when M stalls at the same epochs, so their weights stay identical."""
    two, one = tmp_path / "two", tmp_path / "one"
    cli("train", "began", *RUN[1:], "--epochs", "6", "--set", "lr_patience=1", "--set", "keep_checkpoints=6", "--out", two,
        "--devices", "2")
    cli("train", "began", *RUN[1:], "--epochs", "1", "--set", "lr_patience=1", "--out", one)
    first_two, first_one = (_tensors(run / "checkpoints" / "state-epoch-0001.safetensors") for run in (two, one))
    assert float(first_one["state.began_k"]) > 1e-3
    assert float(first_two["state.began_k"]) == pytest.approx(float(first_one["state.began_k"]), rel=1e-3)
    last = _check_processes_identical(two, 6)
    assert not [key for key in last if key.startswith("process_state.")]  # equal on both processes, saved once
    rates = [row["lr"]["generator"] for row in _events(two, "epoch")]
    assert min(rates) < max(rates)  # M stalled at least once


PROCESS_STATES_SCRIPT = """
import json, os, sys
import torch
from ganzoo import distributed
from ganzoo.errors import GanzooError

world = distributed.start("cpu")
rank = world.rank
state = {"k": torch.tensor(0.5), "pool": torch.full((rank + 1, 2), rank + 0.25, dtype=torch.bfloat16),
         "flags": torch.tensor([rank == 1, True])}
entries = world.process_states(state)
report = {"entries": {key: value.float().tolist() for key, value in entries.items()},
          "shapes": {key: list(value.shape) for key, value in entries.items()},
          "dtypes": {key: str(value.dtype) for key, value in entries.items()}}
try:  # one process's tensor is refused: every process hears it, none waits forever
    world.process_states({"deep": torch.zeros([1] * (9 if rank == 1 else 2))})
except GanzooError as error:
    report["refused"] = str(error)
try:  # a plugin that keeps other state keys on one process
    world.process_states({"k": torch.tensor(0.5), **({"extra": torch.tensor(1.0)} if rank == 1 else {})})
except GanzooError as error:
    report["other_keys"] = str(error)
with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as handle:
    json.dump(report, handle)
distributed.stop(world)
"""


def test_process_states_carry_each_processs_own_tensors_and_refuse_together(tmp_path):
    script = tmp_path / "states.py"
    script.write_text(PROCESS_STATES_SCRIPT)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(script),
                    str(tmp_path)], check=True, timeout=120)
    reports = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert reports[0]["entries"] == reports[1]["entries"]  # every process builds the same entries
    entries = reports[0]
    assert set(entries["entries"]) == {"rank1.pool", "rank1.flags"}  # k is equal everywhere: saved once
    assert entries["shapes"]["rank1.pool"] == [2, 2] and entries["entries"]["rank1.pool"] == [[1.25, 1.25]] * 2
    assert entries["dtypes"] == {"rank1.pool": "torch.bfloat16", "rank1.flags": "torch.bool"}
    assert entries["entries"]["rank1.flags"] == [1.0, 1.0]
    assert all("cannot be checkpointed per process" in report["refused"] for report in reports)
    assert all("keep the same state keys on every process" in report["other_keys"] for report in reports)


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "rign8"], "Unknown dataset 'rign8'. Did you mean 'ring8'?"),
    (["--data", "ring8", "--batch-size", "255"], "--batch-size 255 does not split evenly over 2 processes"),
    (["--data", "ring8", "--batch-size", "255", "--fast"], "--batch-size 255 does not split evenly over 2 processes"),
    (["--data", "ring8", "--set", "r1_gama=1"], "Unknown setting 'r1_gama'. Did you mean 'r1_gamma'"),
    (["--data", "ring8", "--sync-bn"], "--sync-bn needs CUDA devices"),
    (["--data", "ring8", "--batch-size", "4", "--with", "pacgan", "--set", "pack=3"],  # each process gets 2
     "--with pacgan packs pack=3 samples into each discriminator input, more than the 2 samples of each process's "
     "share of the batch (4 over 2 processes) hold"),
])
def test_devices_refuses_what_its_processes_would_before_starting_them(cli, tmp_path, args, message):
    result = cli("train", "gan", *args, "--device", "cpu", "--devices", "2", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {message}") and result.output.count("Error:") == 1, result.output
    assert not (tmp_path / "run").exists()


def test_devices_refuses_an_out_inside_the_data_before_starting_processes(cli, image_folder):
    out = image_folder / "run"
    result = cli("train", "dcgan", "--data", image_folder, "--device", "cpu", "--devices", "2", "--out", out, ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        f"Error: --out {out} lies inside the data folder {image_folder}, so the run's pictures would become training "
        "images of the next run on it; choose an --out folder outside it.")


def test_devices_refuses_a_run_that_cannot_resume_before_starting_processes(cli, tmp_path):
    run = tmp_path / "run"
    cli("train", *RUN, "--epochs", "1", "--out", run)
    (tmp_path / "empty").mkdir()
    cases = [(["--resume", run], f"{run} has already trained 1 epoch, all it was asked for"),
             (["--resume", run, "--epochs", "2", "--lr", "0.1"], f"Cannot resume {run} with lr=0.1"),
             (["--resume", run, "--epochs", "2", "--data", "grid25"], f"{run} was trained on 'ring8', not 'grid25'"),
             (["--resume", run, "--epochs", "2", "--batch-size", "2047"], f"Cannot resume {run} with batch_size=2047"),
             (["--resume", tmp_path / "empty"], "No usable checkpoint in")]
    before = sorted(p.name for p in run.rglob("*"))
    for args, message in cases:
        result = cli("train", "gan", *args, "--device", "cpu", "--devices", "2", ok=False)
        assert result.exit_code == 1
        assert result.output.startswith(f"Error: {message}") and result.output.count("Error:") == 1, result.output
    assert sorted(p.name for p in run.rglob("*")) == before  # nothing was trained or written


def test_devices_is_refused_under_torchrun(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = cli("train", *RUN, "--out", tmp_path / "r", "--devices", "2", ok=False)
    assert result.exit_code == 2 and "--devices starts torchrun itself" in result.output


def test_in_memory_parts_tile_each_global_batch():
    import torch

    from ganzoo.data import InMemoryData
    from ganzoo.specs import DatasetInfo

    data = InMemoryData("v", DatasetInfo("vectors", dim=1), {"real": torch.arange(20.0).reshape(20, 1)})
    whole = [b["real"] for b in data.batches(8, torch.Generator().manual_seed(1))]
    parts = [[b["real"] for b in data.batches(8, torch.Generator().manual_seed(1), part=(rank, 4))] for rank in range(4)]
    assert len(whole) == 2 and all(len(p) == 2 for p in parts)
    for step, batch in enumerate(whole):
        assert torch.equal(torch.cat([p[step] for p in parts]), batch)


def test_sync_bn_on_one_process_is_refused_rather_than_ignored(cli, tmp_path):
    result = cli("train", "gan", "--data", "ring8", "--sync-bn", "--out", tmp_path / "run", "--no-progress", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        "Error: --sync-bn shares batch-norm statistics among several processes, and this run has one; drop it, or "
        "train on several GPUs with --devices N.")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_world_refuses_uneven_batches_and_sync_bn_on_the_cpu():
    import torch

    from ganzoo.distributed import World
    from ganzoo.errors import GanzooError

    world = World(rank=1, size=4, local_rank=1, device=torch.device("cpu"))
    assert world.part(64) == 16
    assert torch.equal(world.local({"real": torch.arange(8)})["real"], torch.tensor([2, 3]))
    with pytest.raises(GanzooError, match="does not split evenly over 4 processes"):
        world.part(30)
    with pytest.raises(GanzooError, match="--sync-bn needs CUDA"):
        world.setup_networks({"sync_bn": True}, torch.nn.BatchNorm1d(3))


def test_random_streams_split_and_come_back_from_checkpoint_entries(tmp_path):
    import torch
    import torch.distributed as dist

    from ganzoo.distributed import World

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        world = World(rank=0, size=1, local_rank=0, device=torch.device("cpu"))
        torch.manual_seed(5)
        one_process = torch.randn(4)
        torch.manual_seed(5)
        world.split_random_streams(seed=5)
        saved = {f"rng.{name}": state for name, state in world.random_states().items()}
        noise, own = torch.randn(4, generator=world.noise), torch.randn(4)
        assert torch.equal(noise, one_process) and not torch.equal(own, one_process)  # shared noise goes on, own differs
        torch.manual_seed(99)
        world.restore_random_states(saved, seed=5, step=0)
        assert torch.equal(torch.randn(4, generator=world.noise), noise) and torch.equal(torch.randn(4), own)
        torch.manual_seed(5)
        world.restore_random_states({}, seed=5, step=7)  # a one-process checkpoint: noise goes on from its stream
        assert torch.equal(torch.randn(4, generator=world.noise), one_process)
        assert not torch.equal(torch.randn(4), one_process) and not torch.equal(torch.randn(4), own)
    finally:
        dist.destroy_process_group()


def test_shared_noise_and_labels_tile_one_process_draws():
    """Each process's rows of the shared draws, put together, are what one process draws for the whole batch."""
    import torch

    from ganzoo.distributed import WORLD_KEY, World, batch_labels, batch_noise

    def draws(world: World | None, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        state = {} if world is None else {WORLD_KEY: world}
        return batch_noise(state, rows, 3, torch.device("cpu")), batch_labels(state, rows, 10, torch.device("cpu"))

    worlds = [World(rank=r, size=2, local_rank=r, device=torch.device("cpu"), noise=torch.Generator().manual_seed(7))
              for r in range(2)]
    parts = [draws(world, 4) for world in worlds]
    whole = World(rank=0, size=1, local_rank=0, device=torch.device("cpu"), noise=torch.Generator().manual_seed(7))
    noise, labels = draws(whole, 8)
    assert torch.equal(torch.cat([p[0] for p in parts]), noise) and torch.equal(torch.cat([p[1] for p in parts]), labels)
    assert not torch.equal(parts[0][1], parts[1][1])  # the ranks take different rows
    torch.manual_seed(3)
    alone = draws(None, 8)  # outside torchrun: the global stream, as before
    torch.manual_seed(3)
    assert torch.equal(alone[0], torch.randn(8, 3)) and torch.equal(alone[1], torch.randint(0, 10, (8,)))


FIRST_PROCESS_DECODES_SCRIPT = """
import os, sys
if os.environ["LOCAL_RANK"] != "0":  # any decoding here fails: this process must read what process 0 cached
    import ganzoo.data.folder as folder

    def refuse(*args, **kwargs):
        raise RuntimeError(f"process {os.environ['RANK']} decoded the folder instead of reading the cache")

    folder.decode_files = refuse
from ganzoo.cli.main import cli
cli(sys.argv[1:])
"""


def test_each_nodes_first_process_decodes_a_large_folder_and_the_others_read_its_cache(tmp_path):
    from conftest import write_png_images
    from ganzoo.data.decoded_cache import MIN_CACHED_FILES

    write_png_images(tmp_path / "faces", MIN_CACHED_FILES, seed=4)
    script = tmp_path / "first_decodes.py"
    script.write_text(FIRST_PROCESS_DECODES_SCRIPT)
    env = {**os.environ, "GANZOO_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(script), "train", "dcgan", "--data", str(tmp_path / "faces"), "--image-size", "16",
                           "--batch-size", "256", "--epochs", "1", "--device", "cpu", "--no-progress",
                           "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cached the decoded images in" in done.stdout and "decoded the folder instead" not in done.stderr
    assert (tmp_path / "run" / "generator.safetensors").is_file()
