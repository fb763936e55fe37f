"""Shared fixtures: an isolated cache/data folder, fresh plugin state, tiny datasets, plugin distributions."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch):
    """Every test gets its own cache and data folders and a freshly loaded plugin registry."""
    from ganzoo.plugin_manager import reset

    home = tmp_path_factory.mktemp("ganzoo-home")
    monkeypatch.setenv("GANZOO_CACHE", str(home / "cache"))
    monkeypatch.setenv("GANZOO_DATA", str(home / "data"))
    monkeypatch.delenv("GANZOO_DISABLE_PLUGINS", raising=False)
    reset()
    yield
    reset()


@pytest.fixture
def cli():
    """Invoke the real ``ganzoo`` click group in-process; returns the click Result."""
    from ganzoo.cli.main import cli as group

    def invoke(*args: str, ok: bool = True):
        result = CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def default_sigint() -> None:
    """``preexec_fn`` of a child the test interrupts: SIGINT back to its default, so that Python in the child raises
    KeyboardInterrupt even when the tests run as a shell's background job, which starts with SIGINT ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


#: The child's first words: take the pseudo-terminal on its standard input as its controlling terminal, as a command
#: typed in a terminal window has it, with Ctrl-C at Python's default (a background job's pytest ignores it) and
#: hang-ups at their default (``SIG_DFL``) or ignored as under nohup (``SIG_IGN``); then ganzoo's CLI.
_ON_OWN_TERMINAL = ("import fcntl, signal, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                    "signal.signal(signal.SIGINT, signal.default_int_handler); "
                    "signal.signal(signal.SIGHUP, signal.{}); from ganzoo.cli.main import cli; cli()")


def hang_up_once(started, *args, nohup: bool = False, output=None, env=None, timeout: float = 120.0):
    """Run ``ganzoo ARGS`` on a pseudo-terminal of its own until ``started(process)``, then close the terminal, as a
    window or an ssh session closes: the system hangs the process up. Its output goes to the terminal (read
    meanwhile, so that it never waits on it) or to the open file ``output``. Returns the process, still running or
    not."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    master, terminal = pty.openpty()
    child = _ON_OWN_TERMINAL.format("SIG_IGN" if nohup else "SIG_DFL")
    process = subprocess.Popen([sys.executable, "-c", child, *map(str, args)], stdin=terminal,
                               stdout=output or terminal, stderr=output or terminal, start_new_session=True, env=env)
    os.close(terminal)
    deadline = time.monotonic() + timeout
    while not started(process):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the command never got under way (status {process.poll()})")
        if select.select([master], [], [], 0.01)[0]:
            try:
                os.read(master, 65536)
            except OSError:  # nothing more to read
                pass
    os.close(master)
    return process


SLOW_STEPS_PLUGIN = '''
import os, time
from ganzoo import hookimpl

@hookimpl
def after_step(stage):
    if stage == "generator" and os.path.exists(os.environ["SLOW_STEPS"]):
        open(os.environ["SLOW_STEPS"] + "-sleeping", "w").close()
        time.sleep(float(os.environ["SLOW_STEP_SECONDS"]))
'''


def slow_steps(tmp_path: Path, seconds: float) -> tuple[dict[str, str], Path, Path]:
    """The environment of a ganzoo command with a plugin installed that makes every generator step take ``seconds``
    longer once the returned switch file exists, so that signals can be sent inside one step, in a known order;
    and the file the plugin writes as a slow step begins."""
    site = make_distribution(tmp_path / "slow-site", "ganzoo-slowsteps", "ganzoo_slowsteps", SLOW_STEPS_PLUGIN)
    switch = tmp_path / "slow-steps-on"
    env = {**os.environ, "SLOW_STEPS": str(switch), "SLOW_STEP_SECONDS": str(seconds),
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return env, switch, tmp_path / "slow-steps-on-sleeping"


def write_png_images(folder: Path, count: int, size: int = 16, mode: str = "RGB", seed: int = 0) -> list[Path]:
    """Write ``count`` simple images (a bright square on a dark background, random position) to ``folder``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        array = np.zeros((size, size, 3), dtype=np.uint8)
        x, y = rng.integers(0, size // 2, size=2)
        array[y : y + size // 2, x : x + size // 2] = rng.integers(128, 256, size=3)
        image = Image.fromarray(array, "RGB")
        if mode != "RGB":
            image = image.convert(mode)
        path = folder / f"img_{i:03d}.png"
        image.save(path)
        paths.append(path)
    return paths


def write_tiny_mnist(root: Path, count: int = 64) -> None:
    """``count`` random 28x28 digits and labels as MNIST's gzipped IDX training files under ``root/MNIST/raw``."""
    import gzip
    import struct

    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    digits = np.random.default_rng(0).integers(0, 256, size=(count, 28, 28))
    for name, array in (("train-images-idx3-ubyte", digits), ("train-labels-idx1-ubyte", np.arange(count) % 10)):
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
        (raw / f"{name}.gz").write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """64 RGB 16x16 images in one folder."""
    folder = tmp_path / "images"
    write_png_images(folder, 64)
    return folder


PLUGIN_TEMPLATE = '''
"""A third-party ganzoo plugin used by the tests: a tiny MLP family and a dataset."""
import json, pathlib
from ganzoo import hookimpl
from ganzoo.specs import DatasetInfo, DatasetSpec, Hyperparameter, ModelSpec, PretrainedSpec

@hookimpl
def register_models(register):
    register(ModelSpec(name="tinygan", family="tiny", task="unconditional", summary="two-layer MLP GAN for tests",
                       paper=None, default_dataset="tiny-blobs", data_kinds=("vectors",),
                       hyperparameters=(Hyperparameter("latent_dim", 4, "noise size"),
                                        Hyperparameter("width", 32, "hidden width"),
                                        Hyperparameter("batch_size", 32, "batch"))))

@hookimpl
def register_datasets(register):
    def load(root=None, image_size=None, channels=None):
        import torch
        from ganzoo.data import InMemoryData
        gen = torch.Generator().manual_seed(0)
        points = torch.randn(256, 2, generator=gen) * 0.1 + torch.tensor([1.0, -1.0])
        return InMemoryData("tiny-blobs", DatasetInfo("vectors", dim=2), {"real": points})
    register(DatasetSpec("tiny-blobs", "one 2-D blob", DatasetInfo("vectors", dim=2), load))

@hookimpl
def register_pretrained(register):
    manifest = pathlib.Path(__file__).with_name("tiny_manifest.json")
    if manifest.exists():
        from ganzoo.manifest import read_manifest
        for spec in read_manifest(manifest):
            register(spec)

def _mlp(inp, width, out):
    from torch import nn
    return nn.Sequential(nn.Linear(inp, width), nn.LeakyReLU(0.2), nn.Linear(width, out))

@hookimpl
def build_generator(model, config):
    if model.family == "tiny":
        return _mlp(config["latent_dim"], config["width"], config["dim"])

@hookimpl
def build_discriminator(model, config):
    if model.family == "tiny":
        from torch import nn
        return nn.Sequential(_mlp(config["dim"], config["width"], 1), nn.Flatten(0))
'''


#: A ``compute_losses`` hook for the tiny family of :data:`PLUGIN_TEMPLATE` (the non-saturating loss, and D(x) as a
#: metric), appended to it by the tests of models whose plugin computes its own losses.
OWN_LOSSES_HOOK = '''
@hookimpl
def compute_losses(model, config, generator, discriminator, batch, stage, state):
    if model.family != "tiny":
        return None
    import torch
    from ganzoo.specs import Losses
    real = batch["real"]
    fake = generator(torch.randn(real.shape[0], config["latent_dim"], device=real.device))
    if stage == "discriminator":
        d = torch.nn.functional.softplus(-discriminator(real)) + torch.nn.functional.softplus(discriminator(fake.detach()))
        return Losses({"d": d.mean()}, {"d_real": discriminator(real).mean().detach()})
    g = torch.nn.functional.softplus(-discriminator(fake))
    return Losses({"g": g.mean()})
'''


def make_distribution(site: Path, dist: str, module: str, source: str, entry_name: str | None = None) -> Path:
    """Install a real plugin distribution by hand: a module plus a ``.dist-info`` with ``entry_points.txt``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"  # wheel naming: no dashes in the name part
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[ganzoo]\n{entry_name or dist} = {module}\n")
    return site


@pytest.fixture
def tiny_plugin(tmp_path, monkeypatch) -> Path:
    """The ``ganzoo-tinyplugin`` distribution on ``sys.path``; returns its site folder."""
    from ganzoo.plugin_manager import reset

    site = make_distribution(tmp_path / "site", "ganzoo-tinyplugin", "ganzoo_tinyplugin", PLUGIN_TEMPLATE, "tiny")
    monkeypatch.syspath_prepend(str(site))
    reset()
    yield site
    import sys

    sys.modules.pop("ganzoo_tinyplugin", None)
