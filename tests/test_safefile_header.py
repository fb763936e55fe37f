"""A real safetensors file is never mistaken for a pickle because of its header length's first bytes."""

from __future__ import annotations

import struct

import pytest
import torch


@pytest.mark.parametrize("length", [0x180, 0x4B50])  # little-endian, these start with b"\x80" and b"PK"
def test_header_length_that_starts_like_a_pickle_still_loads(tmp_path, length):
    from safetensors.torch import save

    from ganzoo.safefile import load_tensors, read_metadata, save_tensors

    tensors = {"w": torch.arange(3.0)}
    base = struct.unpack("<Q", save(tensors, metadata={"note": ""})[:8])[0]
    pad = next(p for p in range(length - base - 8, length - base + 8)  # headers are padded to 8 bytes
               if struct.unpack("<Q", save(tensors, metadata={"note": "x" * p})[:8])[0] == length)
    path = tmp_path / "weights.safetensors"
    save_tensors(path, tensors, {"note": "x" * pad})
    assert path.read_bytes()[:8] == struct.pack("<Q", length)
    assert read_metadata(path)["note"] == "x" * pad
    assert torch.equal(load_tensors(path)["w"], torch.arange(3.0))
