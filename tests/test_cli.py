"""The command line as a user types it: listing, info, errors, and no torch import for quick commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

NO_TORCH = """
import sys
from click.testing import CliRunner
from ganzoo.cli.main import cli
for args in (["--help"], ["list"], ["datasets"], ["plugins"], ["info", "dcgan"]):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
print(sorted(m for m in ("torch", "torchvision", "timm", "numpy", "matplotlib") if m in sys.modules))
"""


def test_quick_commands_do_not_import_torch():
    out = subprocess.run([sys.executable, "-c", NO_TORCH], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_console_script_lists_models():
    out = subprocess.run(["ganzoo", "list"], capture_output=True, text=True, check=True)
    assert "dcgan" in out.stdout and "Radford" in out.stdout


def test_list_pattern(cli):
    out = cli("list", "dc*").output
    assert "dcgan" in out and "│ gan " not in out
    assert cli("list", "DC*").output == out  # a pattern matches whatever the case, as names are suggested
    # the pretrained weights of the models shown, and how to use them
    assert "pretrained: dcgan-mnist (dcgan); ganzoo sample MODEL --pretrained NAME" in " ".join(out.split())
    assert "acgan-mnist" not in out and "pretrained:" not in cli("list", "wgan*").output


@pytest.mark.parametrize("columns", [60, 80, 200])
def test_list_keeps_each_summary_readable_at_any_terminal_width(columns):
    env = {**os.environ, "COLUMNS": str(columns)}
    out = subprocess.run(["ganzoo", "list"], capture_output=True, text=True, check=True, env=env).stdout
    assert max(len(line) for line in out.splitlines()) <= columns
    assert out.count("ganzoo models") == 1 and sum(line.startswith("│ dcgan ") for line in out.splitlines()) == 1
    # a summary column squeezed into a narrow terminal folds a word or two per line; there it goes below
    assert "strided convolutions, batch norm, ReLU in G" in out
    assert ("Radford et al. 2015" in out) == (columns >= 80) and ("arXiv:1511.06434" in out) == (columns == 200)
    assert "│ dcgan    │ dcgan " in out and "…" not in out  # names whole at any width


def test_a_sentence_written_to_a_pipe_stays_on_one_line_for_grep():
    """Without a terminal (a batch job's log), rich would cut lines at 80 columns, mid-sentence; only COLUMNS sets a
    width there (see the test above)."""
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    out = subprocess.run(["ganzoo", "list"], capture_output=True, text=True, check=True, env=env).stdout
    sentence = [line for line in out.splitlines() if line.startswith("pretrained: ")]
    assert len(sentence) == 1 and sentence[0].endswith("scores in 'ganzoo info MODEL'") and len(sentence[0]) > 80
    assert max(len(line) for line in out.splitlines() if line.startswith(("│", "┃", "┏", "└"))) <= 80  # the table


def test_list_keeps_a_plugins_model_name_whole_beside_a_long_family_at_80_columns(cli, tmp_path, monkeypatch):
    """The other columns squeeze the model column at 80; the name, which the user copies, stays whole and the
    paper folds instead."""
    from conftest import PLUGIN_TEMPLATE, make_distribution
    from ganzoo.plugin_manager import reset

    source = PLUGIN_TEMPLATE.replace('family="tiny"', 'family="walkingpoints"').replace(
        'model.family == "tiny"', 'model.family == "walkingpoints"').replace('name="tinygan"', 'name="pointgan"')
    make_distribution(tmp_path / "site", "ganzoo-widecolumns", "wide_columns_plugin", source, "wide")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    monkeypatch.setenv("COLUMNS", "80")
    out = cli("list").output
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "│ pointgan │ walkingpoints │" in out and "│ cyclegan │" in out
    import sys

    sys.modules.pop("wide_columns_plugin", None)


def test_datasets_keeps_every_name_whole_at_80_columns(cli, monkeypatch):
    """A name is what the user copies into --data: the summaries fold, the names do not."""
    from ganzoo.registry import get_registry

    monkeypatch.setenv("COLUMNS", "80")
    out = cli("datasets").output
    assert max(len(line) for line in out.splitlines()) <= 80
    for name in get_registry().datasets.names():
        assert f"│ {name} " in out, name


def test_info_shows_paper_and_every_hyperparameter(cli, monkeypatch):
    out = cli("info", "dcgan").output
    assert "1511.06434" in out
    for name in ("latent_dim", "g_width", "d_width", "batch_size", "beta1", "d_steps", "seed"):
        assert name in out
    assert "the paper used 128" in " ".join(out.split())
    assert "dcgan-mnist (mnist; digits_frechet 113.45," in " ".join(out.split())  # the scores its manifest records
    assert "123 s on one H100" in " ".join(out.split())  # and how long its training took
    monkeypatch.setenv("COLUMNS", "250")  # the losses table's rows unfolded
    unwrapped = {model: "".join(cli("info", model).output.split()) for model in ("dcgan", "gan", "wgan-gp", "wgan")}
    for row in ("│lr│0.0001│", "│beta2│0.9│", "│d_steps│5│", "│d_norm│'layer'│"):  # the loss's paper settings shown
        assert row in unwrapped["wgan-gp"], row
    assert "│optimizer│'rmsprop'│" in unwrapped["wgan"] and "│d_norm│'batch'│" in unwrapped["dcgan"]
    # WGAN-GP's critic, where the model has the setting: layer norm for DCGAN's, no dropout for the MLP
    assert "d_norm='layer'" in unwrapped["dcgan"] and "dropout=0.0" not in unwrapped["dcgan"]
    assert "dropout=0.0" in unwrapped["gan"] and "d_norm" not in unwrapped["gan"]


def test_info_lists_only_what_the_model_accepts(cli):
    standard = " ".join(cli("info", "gan").output.split())
    assert all(name in standard for name in ("r1_gamma", "unroll_steps", "unrolled:", "pacgan:", "wgan-gp"))
    for model, loss_line in (("cyclegan", "loss: the paper's (lsgan), the only one this model trains with"),
                             ("cgan", "losses (--loss NAME")):
        shown = " ".join(cli("info", model).output.split())
        assert loss_line in shown
        assert not any(name in shown for name in ("r1_gamma", "unroll_steps", "instance_noise", "mbd_kernels",
                                                  "unrolled:", "pacgan:", "minibatch-discrimination:"))
        assert "ema:" in shown  # what these models do accept stays
    assert "label_smoothing" in " ".join(cli("info", "cgan").output.split())
    assert "label_smoothing" not in " ".join(cli("info", "pix2pix").output.split())


@pytest.mark.parametrize("model", ["cyclegan", "pix2pix"])
def test_label_smoothing_is_refused_by_models_with_their_papers_own_loss(cli, tmp_path, model):
    from PIL import Image

    from conftest import write_png_images

    if model == "cyclegan":
        write_png_images(tmp_path / "a", 4, size=32, seed=1)
        write_png_images(tmp_path / "b", 4, size=32, seed=2)
        data = ["--data-a", tmp_path / "a", "--data-b", tmp_path / "b"]
    else:  # pix2pix: A and B side by side in each file
        (tmp_path / "pairs").mkdir()
        for index in range(4):
            Image.new("RGB", (64, 32), (index * 40, 0, 0)).save(tmp_path / "pairs" / f"{index}.png")
        data = ["--data", tmp_path / "pairs"]
    small = ["--epochs", "1", "--image-size", "32", "--set", "g_width=4", "--set", "d_width=4"]  # quick if it trains
    result = cli("train", model, *data, *small, "--set", "label_smoothing=0.1", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1
    assert (f"label_smoothing has no effect on {model!r}, which trains with its paper's own loss, so drop --set "
            "label_smoothing.") in " ".join(result.output.split())
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "dcgna"], "Unknown model 'dcgna'. Did you mean 'dcgan'"),
        (["info", "DCGAN"], "Unknown model 'DCGAN'. Did you mean 'dcgan'"),
        (["train", "gan", "--data", "ring8", "--loss", "WGAN-GP"], "Unknown loss 'WGAN-GP'. Did you mean 'wgan-gp'"),
        (["info", "dcgan-mnist"], "'dcgan-mnist' names pretrained weights of the model 'dcgan', not a model; give the "
                                  "model and the weights, as in 'ganzoo sample dcgan --pretrained dcgan-mnist' "
                                  "('ganzoo info dcgan' describes both)."),
        (["list", "zzz*"], "No model matches 'zzz*'; run 'ganzoo list' to see them all."),
        (["info", "mnist"], "'mnist' is a dataset, not a model; train a model on it, as in 'ganzoo train gan --data "
                            "mnist' ('ganzoo list' shows the models)."),
        (["train", "horse2zebra"], "'horse2zebra' is a dataset, not a model; train a model on it, as in 'ganzoo train "
                                   "cyclegan --data horse2zebra'"),
        (["train", "dcgan", "--data", "mnsit"], "Unknown dataset 'mnsit'. Did you mean 'mnist'"),
        (["train", "gan", "--data", "ring8", "--loss", "nss"], "Unknown loss 'nss'. Did you mean 'ns'? Known losses: began,"),
        (["sample", "dcgan", "--pretrained", "dcgan-mnst", "--out", "x.png"], "Known pretrained weights: acgan-mnist,"),
        (["train", "gan", "--data", "ring8", "--epochs", "-1"], "epochs must be a whole number of at least 1"),
        (["train", "gan", "--data", "ring8", "--batch-size", "0"], "batch_size must be a whole number of at least 1"),
        (["train", "gan", "--data", "ring8", "--set", "hiden_dims=[8]"], "Unknown setting 'hiden_dims'. Did you mean 'hidden_dims'"),
        (["train", "gan", "--data", "ring8", "--set", "nonsense"], "write it as KEY=VALUE"),
        (["train", "dcgan", "--data", "ring8"], "trains on images data, but this dataset holds vectors"),
        (["train", "gan", "--data", "./no/such/folder"], "Data folder './no/such/folder' does not exist"),
    ],
)
def test_bad_input_is_one_clear_sentence(cli, args, message):
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [["train", "gan", "--data", "ring8", "--out", ""],
                                  ["sample", "gan", "--pretrained", "gan-ring8", "--out", " "],
                                  ["translate", "cyclegan", "--weights", ".", "--input", ".", "--out", ""],
                                  ["eval", "--samples", "x.npz", "--data", "ring8", "--json", ""],
                                  ["train", "gan", "--data", ""], ["train", "cyclegan", "--data-a", "", "--data-b", "b"]])
def test_an_empty_path_is_refused_not_read_as_the_current_folder(cli, args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where an empty --out would otherwise have written
    (tmp_path / "x.npz").write_bytes(b"")
    result = cli(*args, ok=False)
    option = args[args.index("") - 1] if "" in args else "--out"
    what = "a dataset name or a folder" if option.startswith("--data") else "a path (. for the current folder)"
    assert result.exit_code == 2 and result.output.strip().endswith(
        f"Error: Invalid value for '{option}': it is empty; give {what}.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]


def test_dcgan_refuses_an_image_size_it_cannot_make(cli, image_folder, tmp_path):
    result = cli("train", "dcgan", "--data", image_folder, "--image-size", "30", "--out", tmp_path / "r", ok=False)
    assert result.exit_code == 1
    assert "DCGAN cannot make 30x30 images" in result.output


def test_unwritable_output_folder(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = cli("train", "gan", "--data", "ring8", "--out", blocker / "run", ok=False)
    assert result.exit_code == 1
    assert "choose a writable --out folder" in result.output


def test_a_run_that_fails_before_training_leaves_no_folder(cli, tmp_path):
    from conftest import write_png_images

    write_png_images(tmp_path / "images", 4)
    (tmp_path / "images" / "notes.jpg").write_text("not an image")
    result = cli("train", "dcgan", "--data", tmp_path / "images", "--strict-data", "--out", tmp_path / "runs" / "x",
                 ok=False)
    assert result.exit_code == 1 and "notes.jpg: not a readable image" in " ".join(result.output.split())
    assert not (tmp_path / "runs").exists()


def test_sample_and_eval_take_a_run_folder_for_its_generator_file(cli, tmp_path):
    import numpy as np

    run = tmp_path / "run"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress", "--device", "cpu")
    assert "total_modes" in cli("eval", "gan", "--weights", run, "--data", "ring8", "--num", "100").output
    for weights, out in ((run, tmp_path / "from-folder.npz"), (run / "generator.safetensors", tmp_path / "from-file.npz")):
        cli("sample", "gan", "--weights", weights, "--num", "16", "--out", out)
    with np.load(tmp_path / "from-folder.npz") as folder, np.load(tmp_path / "from-file.npz") as file:
        assert np.array_equal(folder["samples"], file["samples"])
    (tmp_path / "empty").mkdir()
    result = cli("sample", "gan", "--weights", tmp_path / "empty", "--out", tmp_path / "x.npz", ok=False)
    assert f"{tmp_path / 'empty'} is a folder without generator.safetensors; pass the --out folder" in " ".join(
        result.output.split())
    stopped = tmp_path / "stopped"  # as a run stopped before its first epoch ended: checkpoints, no generator yet
    shutil.copytree(run / "checkpoints", stopped / "checkpoints")
    result = cli("sample", "gan", "--weights", stopped, "--out", tmp_path / "y.npz", ok=False)
    assert (f"Error: {stopped} holds a run stopped before its first epoch ended, so it has checkpoints but no "
            f"generator.safetensors yet; finish an epoch with 'ganzoo train gan --resume {stopped}' and pass the folder "
            "again.") == " ".join(result.output.split())
    cli("train", "gan", "--resume", stopped, "--epochs", "2", "--no-progress", "--device", "cpu")
    cli("sample", "gan", "--weights", stopped, "--num", "16", "--out", tmp_path / "y.npz")


def test_sample_out_a_folder_writes_one_picture_per_sample(cli, tmp_path):
    """For programs that read a folder of pictures (FID tools): the pixels of each file are those of the .npz the
    same draw writes, named in drawing order (with the class for a conditional model); points are refused."""
    import numpy as np
    from PIL import Image

    cli("sample", "gan", "--pretrained", "gan-mnist", "--num", "12", "--out", tmp_path / "digits")
    cli("sample", "gan", "--pretrained", "gan-mnist", "--num", "12", "--out", tmp_path / "digits.npz")
    names = sorted(path.name for path in (tmp_path / "digits").iterdir())
    assert names == [f"{index:06d}.png" for index in range(12)]
    with np.load(tmp_path / "digits.npz", allow_pickle=False) as arrays:
        images = arrays["images"]
    for index, name in enumerate(names):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "digits" / name)), images[index, 0])
    per_class = cli("sample", "cdcgan", "--pretrained", "cdcgan-mnist", "--per-class", "1", "--out", tmp_path / "rows")
    assert sorted(path.name for path in (tmp_path / "rows").iterdir())[:2] == ["000000-0.png", "000001-1.png"]
    assert f"to {tmp_path / 'rows'}/ (one PNG each)" in " ".join(per_class.output.split())
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--batch-size", "2048", "--out", tmp_path / "ring",
        "--no-progress")
    points = cli("sample", "gan", "--weights", tmp_path / "ring", "--out", tmp_path / "points", ok=False)
    assert points.exit_code == 1 and "makes points, not pictures" in points.output and not (tmp_path / "points").exists()
    cli("sample", "gan", "--pretrained", "gan-mnist", "--num", "3", "--out", tmp_path / "digits")  # a smaller draw
    assert sorted(path.name for path in (tmp_path / "digits").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    (tmp_path / "digits" / "notes.txt").write_text("mine")
    mixed = cli("sample", "gan", "--pretrained", "gan-mnist", "--out", tmp_path / "digits", ok=False)
    assert "holds other files than pictures 'ganzoo sample' wrote (first: notes.txt)" in " ".join(mixed.output.split())
    assert len(list((tmp_path / "digits").iterdir())) == 4
    run = cli("sample", "gan", "--pretrained", "gan-mnist", "--out", tmp_path / "ring", ok=False)
    assert " ".join(run.output.split()) == (f"Error: --out {tmp_path / 'ring'} holds a training run; give the samples "
                                            "a folder of their own.")


def test_a_sample_file_name_takes_a_class_name_only_where_any_system_takes_it():
    import torch

    from ganzoo.sampling import sample_file_names

    names = ["T-shirt/top", "dog", "\u00e9" * 80, "..", "a:b", "z\u00fcrich"]
    assert sample_file_names(6, torch.arange(6), names) == [
        "000000-0.png", "000001-dog.png", "000002-2.png", "000003-3.png", "000004-4.png", "000005-z\u00fcrich.png"]
    assert sample_file_names(1_000_001, None)[-1] == "1000000.png"


@pytest.mark.parametrize("out, message", [
    (".png", "--out '.png' is an ending without a file name; give a name before it, as in --out samples.png."),
    ("grids/.NPZ", "--out '.NPZ' is an ending without a file name; give a name before it, as in --out samples.npz."),
    ("grid.jpg", "--out must end in .png or .npz, or be a folder name without an ending (one picture per sample), "
                 "got 'grid.jpg'."),
])
def test_sample_out_needs_a_file_name_and_a_known_ending(cli, tmp_path, monkeypatch, out, message):
    monkeypatch.chdir(tmp_path)
    result = cli("sample", "gan", "--pretrained", "gan-mnist", "--out", out, ok=False)
    assert result.exit_code == 2 and f"Error: {message}" in " ".join(result.output.split())
    assert list(tmp_path.iterdir()) == []


def test_sample_out_replaces_earlier_samples_but_never_its_weights_nor_another_kind_of_file(cli, tmp_path):
    import shutil

    run = tmp_path / "run"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress", "--device", "cpu")
    generator = run / "generator.safetensors"
    for name in ("weights.npz", "weights.png"):  # weights renamed, read and written in one command
        shutil.copy(generator, tmp_path / name)
        result = cli("sample", "gan", "--weights", tmp_path / name, "--out", tmp_path / name, ok=False)
        assert result.exit_code == 1 and " ".join(result.output.split()) == (
            f"Error: --out {tmp_path / name} is a file this command reads, and its output would replace it; choose "
            "another --out file.")
    shutil.copy(run / "discriminator.safetensors", tmp_path / "critic.npz")
    result = cli("sample", "gan", "--weights", run, "--drs", "--discriminator", tmp_path / "critic.npz", "--out",
                 tmp_path / "critic.npz", ok=False)
    assert result.exit_code == 1 and "is a file this command reads" in result.output
    shutil.copy(generator, tmp_path / "old.npz")  # not read by this command, but no .npz either
    result = cli("sample", "gan", "--weights", run, "--out", tmp_path / "old.npz", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        f"Error: --out {tmp_path / 'old.npz'} already exists and is not a .npz file, so writing there would destroy "
        "it; choose another --out file, or remove that one first if it is not needed.")
    for name in ("weights.npz", "weights.png", "critic.npz", "old.npz"):
        assert (tmp_path / name).read_bytes()[8:9] == b"{"  # still safetensors: an 8-byte length, then the header
    for seed in ("1", "2"):  # earlier samples are replaced
        cli("sample", "gan", "--weights", run, "--num", "8", "--seed", seed, "--out", tmp_path / "points.npz")
        cli("sample", "gan", "--weights", run, "--num", "8", "--seed", seed, "--out", tmp_path / "points.png")


def test_commands_the_run_suggests_paste_whole_and_the_current_folder_names_the_default_run(cli, tmp_path,
                                                                                          monkeypatch):
    from conftest import write_png_images

    run = tmp_path / "my run"
    done = cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress", "--device", "cpu")
    assert f'ganzoo sample gan --weights "{run / "generator.safetensors"}" --num 64' in done.output
    write_png_images(tmp_path / "pics", 4)
    monkeypatch.chdir(tmp_path / "pics")  # --data . names the default run folder after this folder, not ""
    result = cli("train", "dcgan", "--data", ".", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()).startswith(
        "Error: --out runs/dcgan-pics lies inside the data folder")


def test_a_picture_of_sampled_points_shows_the_toy_set_they_were_trained_on(cli, tmp_path):
    """As the pictures of training do: generated points over the real ones of a generated set, which is at hand
    without a download; a set that is not generated gives no real layer."""
    import numpy as np
    from PIL import Image

    from ganzoo import sampling

    real = sampling.generated_reference("ring8", 300)
    assert real.shape == (300, 2) and sampling.generated_reference("mnist", 300) is None
    assert sampling.generated_reference("/some/folder", 300) is None
    run = tmp_path / "run"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--batch-size", "2048", "--out", run, "--no-progress")
    cli("sample", "gan", "--weights", run, "--num", "300", "--out", tmp_path / "over.png")
    samples = sampling.generate(*_loaded(run), 300)
    sampling.write_samples(tmp_path / "alone.png", samples, "vectors", title="300 samples of gan on ring8")
    over, alone = (np.asarray(Image.open(tmp_path / name).convert("L")) for name in ("over.png", "alone.png"))
    assert over.shape == alone.shape and (over < 80).sum() > (alone < 80).sum()  # the real points' dark layer


CIRCLE_PLUGIN = '''
from ganzoo import hookimpl
from ganzoo.specs import DatasetInfo, DatasetSpec

CIRCLE = DatasetInfo("vectors", dim=2)

@hookimpl
def register_datasets(register):
    def load(root, image_size, channels):  # as README's example: always these three, no defaults
        import torch
        from ganzoo.data import InMemoryData
        angle = torch.rand(4096, generator=torch.Generator().manual_seed(0)) * 6.2832
        return InMemoryData("circle", CIRCLE, {"real": torch.stack([angle.cos(), angle.sin()], 1)})
    register(DatasetSpec("circle", "4096 points on the unit circle", CIRCLE, load))
'''


def test_a_picture_of_sampled_points_shows_a_plugins_set_of_points_too(tmp_path, monkeypatch):
    """README's plugin dataset (its load takes root, image_size, channels, and it names no source) is drawn under
    the samples too, as training's pictures draw it."""
    from conftest import make_distribution
    from ganzoo import sampling
    from ganzoo.plugin_manager import reset

    make_distribution(tmp_path / "site", "ganzoo-circle", "ganzoo_circle", CIRCLE_PLUGIN, "circle")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset()
    real = sampling.generated_reference("circle", 100)
    assert real.shape == (100, 2) and abs(float(real.norm(dim=1).mean()) - 1) < 1e-5
    sys.modules.pop("ganzoo_circle", None)


def _loaded(run):
    from ganzoo.weights import load_generator

    loaded = load_generator(run / "generator.safetensors")
    return loaded.model, loaded.config, loaded.module


def test_more_samples_from_one_seed_begin_with_the_fewer_ones(cli, tmp_path):
    """torch's CPU sampler redraws its last partial block of 16 values, so a plain draw of 10 x 8 noise values
    ends otherwise than the first 80 of a draw of 20 x 8."""
    import numpy as np

    run = tmp_path / "run"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress", "--device", "cpu")
    drawn = {}
    for num in (1, 3, 10, 20):
        cli("sample", "gan", "--weights", run, "--num", str(num), "--seed", "7", "--out", tmp_path / f"{num}.npz")
        with np.load(tmp_path / f"{num}.npz") as archive:
            drawn[num] = archive["samples"]
    for num in (1, 3, 10):  # the same noise; the network's sums may round otherwise for another batch's shape
        assert np.allclose(drawn[num], drawn[20][:num], rtol=0, atol=1e-5), num


def test_training_starts_by_saying_what_data_it_found_and_how_it_goes_through_it(cli, tmp_path):
    """A class folder shows its classes with their counts and the size the images were brought to, so a split
    folder or a stray class is seen at once; points show their count and length; a resume says it again."""
    from conftest import write_png_images

    for name, count in (("cat", 5), ("dog", 7)):
        write_png_images(tmp_path / "pets" / name, count, size=40, seed=count)
    tiny = ("--set", "g_width=8", "--set", "d_width=8", "--no-progress")
    trained = cli("train", "cdcgan", "--data", tmp_path / "pets", "--image-size", "32", "--batch-size", "4",
                  "--epochs", "1", *tiny, "--out", tmp_path / "pets-run")
    said = f"training cdcgan on {tmp_path / 'pets'}: 12 images, 3x32x32, 2 classes (cat 5, dog 7); batch 4, 3 steps " \
           "an epoch, 1 epoch, on cpu"
    assert said in " ".join(trained.output.split())
    resumed = cli("train", "cdcgan", "--resume", tmp_path / "pets-run", "--epochs", "2", "--no-progress")
    assert said.replace("1 epoch,", "2 epochs,") in " ".join(resumed.output.split())
    points = cli("train", "gan", "--data", "ring8", "--batch-size", "512", "--epochs", "1", "--no-progress", "--out",
                 tmp_path / "ring")
    assert "training gan on ring8: 51,200 vectors of 2 values; batch 512, 100 steps an epoch, 1 epoch, on cpu" \
        in points.output


def test_the_data_line_never_stops_a_run_over_what_it_cannot_count():
    """Labels outside the classes (-1 for unlabelled samples, as semi-supervised sets mark them) give the number of
    classes alone; data of a plugin's own make is counted."""
    import torch

    from ganzoo.data import InMemoryData
    from ganzoo.run_summary import describe_data
    from ganzoo.specs import DatasetInfo

    info = DatasetInfo("vectors", dim=2, num_classes=3)
    data = InMemoryData("semi", info, {"real": torch.zeros(4, 2), "label": torch.tensor([-1, 0, 1, 2])})
    assert describe_data(data, {"num_classes": 3}) == "4 vectors of 2 values, 3 classes"

    class Rows:
        tensors = {"real": "not a tensor"}
        info = DatasetInfo("images", channels=1, image_size=8)

        def __len__(self):
            return 7

    assert describe_data(Rows(), {}) == "7 samples"


def test_a_folder_named_like_a_registered_dataset_is_pointed_out_and_taken_when_given_as_a_path(cli, tmp_path,
                                                                                                   monkeypatch):
    from conftest import write_png_images

    write_png_images(tmp_path / "ring8", 4, size=16)
    monkeypatch.chdir(tmp_path)
    named = cli("train", "gan", "--data", "ring8", "--batch-size", "512", "--epochs", "1", "--no-progress", "--out",
                tmp_path / "named")
    said = " ".join(named.output.split())
    assert ("note: --data ring8 is the registered dataset 'ring8', not the folder ./ring8 here; to train on that "
            "folder, give --data ./ring8") in said and "training gan on ring8: 51,200 vectors" in said
    folder = cli("train", "gan", "--data", "./ring8", "--batch-size", "2", "--epochs", "1", "--no-progress", "--out",
                 tmp_path / "folder")
    assert "note: --data" not in folder.output and ": 4 images, 3x16x16;" in folder.output


def test_help_lists_every_command_with_a_whole_summary(cli):
    out = cli("--help").output
    commands = out.split("Commands:")[1]
    assert "..." not in commands  # click cuts a long docstring's first sentence with "..."
    for name in ("datasets", "eval", "info", "list", "plugins", "sample", "train", "translate"):
        assert f"\n  {name} " in commands
