"""ganzoo.pth: tensors read from torch.save files by decoding the pickle, never by running it."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from ganzoo.pth import LEGACY_MAGIC, LEGACY_PROTOCOL, PthError, read_pth_tensors

FORMATS = pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])


def _save(obj, path: Path, legacy: bool) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def _varied_tensors() -> dict[str, torch.Tensor]:
    """Every storage type a state dict holds, views with offsets and strides, shared storage, 0-d and empty."""
    torch.manual_seed(0)
    base = torch.randn(6, 5)
    return {"weight": torch.randn(3, 4), "transposed": base.t(), "slice": base[2:4, 1:], "whole": base,
            "double": torch.randn(2, dtype=torch.float64), "count": torch.tensor(7), "mask": torch.tensor([True, False]),
            "half": torch.randn(3).half(), "bfloat": torch.randn(3).bfloat16(), "empty": torch.empty(0, 3),
            "index": torch.arange(5, dtype=torch.int32), "small": torch.tensor([-3, 4], dtype=torch.int8),
            "bytes": torch.tensor([0, 255], dtype=torch.uint8), "short": torch.tensor([-300], dtype=torch.int16)}


@FORMATS
def test_state_dicts_saved_by_torch_read_back_exactly(tmp_path, legacy):
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(2, 2))
    for name, state in (("varied", _varied_tensors()), ("module", network.state_dict())):
        read = read_pth_tensors(_save(state, tmp_path / f"{name}.pth", legacy))
        assert list(read) == list(state)
        for key, tensor in state.items():
            assert read[key].dtype == tensor.dtype and read[key].shape == tensor.shape, key
            assert torch.equal(read[key], tensor), key


class _RunsCode:
    """What a crafted file holds: unpickling it would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _crafted(path: Path, payload: object, legacy: bool) -> Path:
    """A file in torch.save's layout whose pickle is ``payload``'s."""
    if legacy:
        system = {"protocol_version": LEGACY_PROTOCOL, "little_endian": True, "type_sizes": {}}
        path.write_bytes(b"".join(pickle.dumps(part, protocol=2) for part in (LEGACY_MAGIC, LEGACY_PROTOCOL, system,
                                                                               payload, [])))
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
            archive.writestr("archive/byteorder", "little")
    return path


@FORMATS
def test_a_file_that_names_any_other_callable_is_refused_and_nothing_runs(tmp_path, legacy):
    marker = tmp_path / "ran"
    crafted = _crafted(tmp_path / "crafted.pth", {"fc.weight": _RunsCode(marker)}, legacy)
    with pytest.raises(PthError, match=r"asks for a call of posix\.system, which no state dict of tensors needs, so "
                                       r"ganzoo does not read it .*; pass the weights as a \.safetensors file\."):
        read_pth_tensors(crafted)
    assert not marker.exists()
    other = _save({"fc.weight": torch.ones(2), "path": Path("/etc/passwd")}, tmp_path / "object.pth", legacy)
    with pytest.raises(PthError, match=r"asks for a call of pathlib\.PosixPath"):
        read_pth_tensors(other)


@FORMATS
def test_files_that_hold_no_state_dict_or_are_cut_short_end_in_one_sentence(tmp_path, legacy):
    listed = _save([torch.ones(2)], tmp_path / "list.pth", legacy)
    with pytest.raises(PthError, match=r"does not hold a state dict of tensors \(names to tensors\)"):
        read_pth_tensors(listed)
    whole = _save({"weight": torch.randn(100)}, tmp_path / "whole.pth", legacy).read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(whole[: len(whole) - 40])
    with pytest.raises(PthError, match=r"^Cannot read .*cut\.pth as tensors saved by torch\.save \(.*\); pass the "
                                       r"original file or a \.safetensors file of the same tensors\.$"):
        read_pth_tensors(cut)


class _Storage:
    """Pickled by persistent id, as torch.save writes a storage."""


class _Tensor:
    """Pickled as torch.save pickles a tensor: a view of a storage, here with a size of the test's choosing."""

    def __init__(self, storage: _Storage, size: tuple[int, ...]) -> None:
        self.storage, self.size = storage, size

    def __reduce__(self):
        from collections import OrderedDict

        return torch._utils._rebuild_tensor_v2, (self.storage, 0, self.size, (1,), False, OrderedDict())


def _zip_with_one_storage(path: Path, size: tuple[int, ...]) -> Path:
    """A zip-format file whose one tensor views a 4-float storage with ``size``."""
    import io

    storage, buffer = _Storage(), io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=2)
    pickler.persistent_id = lambda obj: ("storage", torch.FloatStorage, "0", "cpu", 4) if obj is storage else None
    pickler.dump({"weight": _Tensor(storage, size)})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/data/0", torch.arange(4.0).numpy().tobytes())
    return path


def test_a_tensor_that_reaches_past_its_storage_is_refused(tmp_path):
    """A hand-made file whose tensor claims more elements than its storage holds: never read out of bounds."""
    assert torch.equal(read_pth_tensors(_zip_with_one_storage(tmp_path / "fits.pth", (4,)))["weight"], torch.arange(4.0))
    with pytest.raises(PthError, match=r"^Cannot read .*past\.pth as tensors saved by torch\.save \(RuntimeError"):
        read_pth_tensors(_zip_with_one_storage(tmp_path / "past.pth", (9,)))


@FORMATS
def test_parameters_and_tensors_named_twice_read_as_torch_load_gives_them(tmp_path, legacy):
    weight = torch.randn(3, 2)
    state = {"parameter": torch.nn.Parameter(torch.ones(2)), "first": weight, "again": weight, "row": weight[1]}
    read = read_pth_tensors(_save(state, tmp_path / "shared.pth", legacy))
    assert torch.equal(read["parameter"], torch.ones(2)) and not isinstance(read["parameter"], torch.nn.Parameter)
    assert torch.equal(read["again"], weight) and torch.equal(read["row"], weight[1])
    assert read["first"].data_ptr() == read["again"].data_ptr()  # one storage, as torch.load shares it


@FORMATS
def test_what_a_state_dict_of_real_tensors_never_holds_is_refused(tmp_path, legacy):
    """Values a view's metadata would change (a negative view), and storage types this reader does not rebuild."""
    negative = _save({"weight": torch.ones(2)._neg_view()}, tmp_path / "negative.pth", legacy)
    with pytest.raises(PthError, match=r"asks for a tensor with metadata \(a negative or conjugate view\)"):
        read_pth_tensors(negative)
    complex_ = _save({"weight": torch.ones(2, dtype=torch.complex64)}, tmp_path / "complex.pth", legacy)
    with pytest.raises(PthError, match=r"asks for a storage of type torch\.ComplexFloatStorage"):
        read_pth_tensors(complex_)


def test_crafted_structures_end_quickly_in_one_sentence(tmp_path):
    """A tuple nested 64 deep by DUP (hashing or printing it takes 2**64 steps), a tuple of more values than the
    stack holds, and a compressed archive entry (a zip bomb) are refused at once."""
    import time

    text = b"X\x01\x00\x00\x00a"  # BINUNICODE 'a'
    doubled = b"\x85" + b"2\x86" * 64  # TUPLE1, then 64 times DUP and TUPLE2: ((t, t), (t, t))... 64 deep
    payloads = {
        "value": (b"\x80\x02}" + text + text + doubled + b"s.", r"does not hold a state dict of tensors"),
        "key": (b"\x80\x02}" + text + doubled + b"Ns.", r"asks for an item keyed by a tuple in a dict"),
        "call": (b"\x80\x02" + text + doubled + b")R.", r"asks for a call of a tuple"),
        "short": (b"\x80\x02}" + text + b"\x87.", r"\(ValueError: the pickle takes more values than it pushed\)"),
    }
    started = time.monotonic()
    for name, (payload, message) in payloads.items():
        with zipfile.ZipFile(tmp_path / f"{name}.pth", "w") as archive:
            archive.writestr("archive/data.pkl", payload)
        with pytest.raises(PthError, match=message):
            read_pth_tensors(tmp_path / f"{name}.pth")
    assert time.monotonic() - started < 10
    good = _save({"weight": torch.zeros(1000)}, tmp_path / "good.pth", legacy=False)
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(tmp_path / "deflated.pth", "w") as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info), compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(PthError, match=r"is compressed or larger than torch writes it"):
        read_pth_tensors(tmp_path / "deflated.pth")


def test_a_file_torch_save_never_writes_is_named_for_what_it_is_before_any_opcode_is_read(tmp_path):
    """A PNG's first byte decodes as the opcode PERSID and a text's as others: told by their first bytes, such files
    are named for what they are rather than refused as if they asked for something hostile."""
    import numpy as np

    (tmp_path / "digits.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (tmp_path / "w.txt").write_text("weights\n")
    np.savez(tmp_path / "arrays.npz", weights=np.ones(3))
    for name, what in (("digits.png", "a PNG image"), ("w.txt", "a text file"),
                       ("arrays.npz", r"a NumPy \.npz archive of arrays")):
        with pytest.raises(PthError, match=rf"{name} is {what}, not a file torch\.save writes; pass the original "
                                           r"\.pth file or a \.safetensors file of the same tensors\.$"):
            read_pth_tensors(tmp_path / name)
