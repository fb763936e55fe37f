"""Generator files: bit-exact round trip, metadata checks, refusal of pickles and damaged files (truncated or
with NaN/inf numbers), manifests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from ganzoo.safefile import WeightsError


@pytest.fixture
def trained(cli, tmp_path):
    run = tmp_path / "run"
    cli("train", "gan", "--data", "ring8", "--epochs", "1", "--out", run, "--no-progress")
    return run / "generator.safetensors"


def test_round_trip_is_bit_exact(trained):
    import torch

    from ganzoo.registry import get_model
    from ganzoo.weights import load_generator, save_network

    loaded = load_generator(trained, "gan")
    copy = trained.with_name("copy.safetensors")
    save_network(copy, get_model("gan"), loaded.config, loaded.module, "ring8", 1, 200)
    again = load_generator(copy, "gan")
    for (name, a), (_, b) in zip(loaded.module.state_dict().items(), again.module.state_dict().items()):
        assert torch.equal(a, b), name
    meta = loaded.metadata
    assert meta["model"] == "gan" and meta["family"] == "gan" and meta["dataset"] == "ring8"
    assert json.loads(meta["config"])["latent_dim"] == 8 and meta["ganzoo_version"]


def test_weights_of_another_model_are_refused_naming_the_command_that_was_run(cli, trained):
    import shutil

    spaced = trained.parent / "my run" / "generator.safetensors"  # a path the suggested command must quote
    spaced.parent.mkdir()
    shutil.copy(trained, spaced)
    for command, out in (("sample", ("--out", trained.with_name("x.png"))), ("eval", ("--data", "ring8"))):
        result = cli(command, "dcgan", "--weights", spaced, *out, ok=False)
        assert result.exit_code == 1 and " ".join(result.output.split()) == (
            f"Error: {spaced} holds weights of model 'gan', not 'dcgan'; use 'ganzoo {command} gan --weights "
            f"\"{spaced}\"' or pass a dcgan file.")
    result = cli("eval", "gan", "--pretrained", "dcgan-mnist", "--data", "mnist", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        "Error: Pretrained weights 'dcgan-mnist' are for model 'dcgan', not 'gan'; use 'ganzoo eval dcgan --pretrained "
        "dcgan-mnist'.")


def test_a_finite_number_changed_inside_the_weights_is_told_by_their_digest(cli, trained, tmp_path):
    """safetensors checks a file's structure, not its numbers: one weight overwritten with another finite value
    would load and draw noise without the SHA-256 saved beside the tensors."""
    import shutil
    import struct

    from ganzoo.safefile import read_header

    damaged = tmp_path / "damaged.safetensors"
    shutil.copy(trained, damaged)
    header = read_header(damaged)
    name = sorted(key for key in header if key != "__metadata__" and header[key]["dtype"] == "F32")[0]
    start = 8 + struct.unpack("<Q", damaged.read_bytes()[:8])[0] + header[name]["data_offsets"][0]
    with open(damaged, "r+b") as handle:
        handle.seek(start)
        handle.write(struct.pack("<f", 123.0))
    result = cli("sample", "gan", "--weights", damaged, "--out", tmp_path / "x.npz", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        f"Error: {damaged} is damaged: its numbers no longer match the SHA-256 saved with them; use an intact copy or "
        "an earlier checkpoint, or train again.")
    cli("sample", "gan", "--weights", trained, "--out", tmp_path / "x.npz")  # the intact file still loads


def test_weights_are_known_by_their_contents_not_their_name(cli, trained, tmp_path):
    """A safetensors file renamed .bin or .pt still loads; an .npz of samples or another zip given as weights is
    named for what it is, not called a PyTorch pickle."""
    import shutil
    import zipfile

    for suffix in (".bin", ".pt"):
        shutil.copy(trained, tmp_path / f"generator{suffix}")
        cli("sample", "gan", "--weights", tmp_path / f"generator{suffix}", "--num", "4", "--out", tmp_path / "x.npz")
    cli("sample", "gan", "--weights", trained, "--num", "4", "--out", tmp_path / "samples.npz")
    with zipfile.ZipFile(tmp_path / "notes.zip", "w") as archive:
        archive.writestr("notes.txt", "not weights")
    for name, sentence in (("samples.npz", "is an .npz of arrays (as 'ganzoo sample' writes), not weights; pass a "
                                           ".safetensors file written by ganzoo ('ganzoo eval --samples' scores an "
                                           ".npz)."),
                           ("notes.zip", "is a zip archive, not a safetensors file; pass a .safetensors file written "
                                         "by ganzoo.")):
        result = cli("sample", "gan", "--weights", tmp_path / name, "--out", tmp_path / "y.png", ok=False)
        assert result.exit_code == 1 and " ".join(result.output.split()) == f"Error: {tmp_path / name} {sentence}"


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_pickle_files_are_refused_without_loading(cli, tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"\x80\x04\x95 pickled bytes would run code")
    result = cli("sample", "gan", "--weights", path, "--out", tmp_path / "x.png", ok=False)
    assert "never loads" in result.output and "safetensors" in result.output


def test_truncated_file(trained):
    from ganzoo.weights import load_generator

    data = trained.read_bytes()
    trained.write_bytes(data[: len(data) - 100])
    with pytest.raises(WeightsError, match="truncated"):
        load_generator(trained, "gan")


def test_a_cut_short_file_whose_header_length_starts_like_a_pickle_is_called_truncated(trained):
    """A header length whose first byte is 0x80 (1 in 256 files) read from a file cut short does not fit the file,
    as a pickle's first bytes would not; the JSON header that follows it tells the two apart."""
    import struct

    from ganzoo.weights import load_generator

    data = trained.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    padded = length + (0x80 - length) % 256  # the spec pads a header with spaces
    trained.write_bytes(struct.pack("<Q", padded) + data[8:8 + length] + b" " * (padded - length) + data[8 + length:])
    assert load_generator(trained, "gan").module is not None and trained.read_bytes()[0] == 0x80
    trained.write_bytes(trained.read_bytes()[:padded // 2])
    with pytest.raises(WeightsError, match="truncated") as refused:
        load_generator(trained, "gan")
    assert "pickle" not in str(refused.value)


def test_not_safetensors(tmp_path):
    from ganzoo.weights import load_generator

    path = tmp_path / "notes.safetensors"
    path.write_bytes(b"hello world, this is text and not tensors")
    with pytest.raises(WeightsError, match="not a safetensors file"):
        load_generator(path, "gan")


def test_shape_mismatch_names_the_tensor(trained):
    from safetensors.torch import load_file, save_file

    from ganzoo.safefile import read_metadata
    from ganzoo.weights import load_generator

    meta = read_metadata(trained)
    config = json.loads(meta["config"])
    config["hidden_dims"] = [64, 64, 64]
    tensors = load_file(str(trained))
    save_file(tensors, str(trained), metadata={**meta, "config": json.dumps(config)})
    with pytest.raises(WeightsError, match="has shape .* in the file but"):
        load_generator(trained, "gan")


@pytest.mark.parametrize("config", [{"hidden_dims": [8]}, ["not", "a", "table"]], ids=["a-setting-missing", "a-list"])
def test_a_config_that_cannot_build_the_network_is_one_sentence(cli, trained, config):
    from safetensors.torch import load_file, save_file

    from ganzoo.safefile import read_metadata

    full = json.loads(read_metadata(trained)["config"])
    if isinstance(config, dict):
        config = {key: value for key, value in full.items() if key != "latent_dim"}
    save_file(load_file(str(trained)), str(trained), metadata={**read_metadata(trained), "config": json.dumps(config)})
    result = cli("sample", "gan", "--weights", trained, "--out", trained.with_name("x.png"), ok=False)
    expected = (f"{trained} lacks the setting 'latent_dim' that the gan network needs in the config of its metadata; "
                f"use a file written by 'ganzoo train'." if isinstance(config, dict) else
                f"{trained} has no readable config in its metadata; use a file written by ganzoo.")
    assert result.exit_code == 1 and " ".join(result.output.split()) == f"Error: {expected}"


def damage_first_weight(path: Path, value: bytes) -> str:
    """Overwrite the first 8 bytes of the data of ``path``'s first float32 tensor with ``value`` twice over
    (same size, intact header, as a bad disk sector or copy would); return the tensor's name."""
    import struct

    data = bytearray(path.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    name, entry = min(((n, e) for n, e in header.items() if n != "__metadata__" and e["dtype"] == "F32"),
                      key=lambda item: item[1]["data_offsets"][0])
    start = 8 + length + entry["data_offsets"][0]
    assert entry["data_offsets"][1] - entry["data_offsets"][0] >= 8
    data[start : start + 8] = value * 2
    path.write_bytes(bytes(data))
    return name


@pytest.mark.parametrize("network, value", [("generator", b"\xff\xff\xff\xff"),  # NaN
                                            ("discriminator", b"\x00\x00\x80\x7f")],  # +inf
                         ids=["nan-in-generator", "inf-in-discriminator"])
def test_damaged_numbers_are_refused_in_one_sentence(cli, trained, network, value):
    from safetensors import safe_open

    damaged = trained.with_name(f"{network}.safetensors")
    name = damage_first_weight(damaged, value)
    with safe_open(str(damaged), "pt") as handle:  # the file still reads: only its numbers are wrong
        assert not handle.get_tensor(name).isfinite().all()
    out = trained.with_name("x.npz")
    result = cli("sample", "gan", "--weights", trained, *(("--drs",) if network == "discriminator" else ()),
                 "--out", out, ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert " ".join(result.output.split()) == (f"Error: {damaged} is damaged: tensor {name!r} holds NaN or infinite "
                                               "values; use an intact copy or an earlier checkpoint, or train again.")
    assert not out.exists()


def test_checkpoint_is_not_a_generator_file(trained):
    from ganzoo.weights import load_generator

    state = next((trained.parent / "checkpoints").iterdir())
    with pytest.raises(WeightsError, match="not a ganzoo generator file"):
        load_generator(state, "gan")


def test_sample_from_pretrained_manifest(cli, tiny_plugin, tmp_path):
    run = tmp_path / "run"
    cli("train", "tinygan", "--epochs", "1", "--out", run, "--no-progress")
    weights = tiny_plugin / "tiny.safetensors"
    weights.write_bytes((run / "generator.safetensors").read_bytes())
    manifest = {"format": "ganzoo.manifest/1", "weights": [{
        "name": "tiny-blobs-v1", "model": "tinygan", "dataset": "tiny-blobs", "file": "tiny.safetensors",
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(), "trained_with": "ganzoo train tinygan --epochs 1",
        "metrics": {"note": "test"},
    }]}
    (tiny_plugin / "tiny_manifest.json").write_text(json.dumps(manifest))
    from ganzoo.plugin_manager import reset

    reset()
    assert "tiny-blobs-v1" in cli("info", "tinygan").output
    out = tmp_path / "p.npz"
    cli("sample", "tinygan", "--pretrained", "tiny-blobs-v1", "--num", "50", "--out", out)
    with np.load(out, allow_pickle=False) as data:
        assert data["samples"].shape == (50, 2)
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    result = cli("sample", "tinygan", "--pretrained", "tiny-blobs-v1", "--out", out, ok=False)
    assert "do not match their SHA-256" in " ".join(result.output.split())


def test_malformed_manifest_is_a_clear_error(tmp_path):
    from ganzoo.errors import GanzooError
    from ganzoo.manifest import read_manifest

    path = tmp_path / "m.json"
    path.write_text(json.dumps({"format": "ganzoo.manifest/1", "weights": [{"name": "x"}]}))
    with pytest.raises(GanzooError, match="lacks model, dataset, file, sha256"):
        read_manifest(path)


def test_shipped_manifest_is_valid():
    from importlib import resources

    from ganzoo.manifest import read_manifest, resolve

    with resources.as_file(resources.files("ganzoo.pretrained") / "manifest.json") as path:
        for spec in read_manifest(path):
            assert resolve(spec).is_file()
