"""Fuzzing the readers of untrusted files: any bytes give our own clear error, never a crash.

The safetensors header/metadata reader gets arbitrary bytes and near-valid files (a length
prefix with arbitrary JSON and arbitrary tensor bytes); the image-folder loader gets arbitrary
bytes and damaged PNGs saved as ``.png`` files.
"""

from __future__ import annotations

import json
import struct
import tempfile
import warnings
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ganzoo.errors import GanzooError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
tensor_entries = st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "F16", "I64", "U8", "BOOL", "X9", ""]),
    "shape": st.lists(st.integers(-2, 5), max_size=3),
    "data_offsets": st.lists(st.integers(-4, 80), min_size=0, max_size=3),
})
headers = st.dictionaries(
    st.text(max_size=6) | st.just("__metadata__"),
    tensor_entries | json_values | st.dictionaries(st.text(max_size=4), st.text(max_size=4) | json_values, max_size=3),
    max_size=4,
)


@st.composite
def safetensors_like(draw) -> bytes:
    """A length-prefixed JSON header (its length sometimes wrong) followed by arbitrary tensor bytes."""
    header = json.dumps(draw(headers)).encode()
    length = len(header) + draw(st.sampled_from([0, 0, 0, -1, 1, 7]))
    return struct.pack("<Q", max(length, 0)) + header + draw(st.binary(max_size=96))


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


DEEP = b"[" * 100_000 + b"]" * 100_000  # nested past Python's recursion limit


@FUZZ
@given(data=st.binary(max_size=200) | safetensors_like())
@example(data=struct.pack("<Q", len(DEEP)) + DEEP)
def test_safetensors_readers_raise_only_our_error(data):
    from ganzoo.safefile import load_tensors, read_header, read_metadata

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.safetensors"
        path.write_bytes(data)
        for reader in (read_header, read_metadata, load_tensors):
            try:
                reader(path)
            except GanzooError as exc:
                assert str(exc) and "\n" not in str(exc)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@st.composite
def png_like(draw) -> bytes:
    """A PNG signature and IHDR with arbitrary numbers, then arbitrary bytes (or arbitrary bytes alone)."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=120))
    width, height = draw(st.integers(0, 4096)), draw(st.integers(0, 4096))
    ihdr = struct.pack(">IIBBBBB", width, height, draw(st.sampled_from([1, 2, 4, 8, 16, 3])),
                       draw(st.sampled_from([0, 2, 3, 4, 6, 5])), 0, 0, draw(st.integers(0, 1)))
    return PNG_MAGIC + _png_chunk(b"IHDR", ihdr) + draw(st.binary(max_size=80))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(png_like(), min_size=1, max_size=3), valid=st.booleans())
def test_image_folder_loader_raises_only_our_error(files, valid):
    from conftest import write_png_images
    from ganzoo.data.decoding import BadImageWarning
    from ganzoo.registry import get_dataset

    with tempfile.TemporaryDirectory() as folder:
        if valid:
            write_png_images(Path(folder), 2, size=8)
        for i, data in enumerate(files):
            (Path(folder) / f"fuzz_{i}.png").write_bytes(data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                data = get_dataset(folder).load(None, 8, 3)
            except GanzooError as exc:
                assert str(exc) and not valid
            else:
                assert tuple(data.tensors["real"].shape[1:]) == (3, 8, 8)
        assert all(issubclass(w.category, BadImageWarning) for w in caught), [str(w.message) for w in caught]
