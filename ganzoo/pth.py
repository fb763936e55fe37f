"""Reading the tensors of a PyTorch ``.pth`` file without unpickling it.

A ``.pth`` written by ``torch.save`` is a pickle: loading it with ``pickle`` (or ``torch.load``) runs whatever
callables the file names, so a crafted file runs code. Some weights that ganzoo must read come only in this form
(torch-fidelity's TensorFlow Inception). Here the pickle is never executed: :func:`pickletools.genops` decodes
its opcodes, and a small stack machine follows only those a state dict of tensors needs, rebuilding containers,
numbers and strings itself and tensors as views of their raw storage bytes. Any other callable the file names
(``os.system``, a class of its own) stops the read in one sentence before anything is built. Nothing from the
file is hashed unless it is a string or a number, nor put in a message, so a crafted nesting cannot make the
read take exponential time; every length is checked against the bytes the file holds before it is read.

Both of ``torch.save``'s formats are read: the zip archive (torch 1.6 and later: ``data.pkl`` and one stored,
uncompressed entry per storage) and the legacy stream (magic number, protocol, system info, the pickle, its
storage keys, then each storage as an int64 element count and the raw bytes). Data is little-endian, as torch
writes it.
"""

from __future__ import annotations

import io
import pickletools
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

from ganzoo.errors import GanzooError, with_article
from ganzoo.file_kinds import TORCH_PICKLE, TORCH_ZIP, file_kind, in_words

#: The storage classes a tensor's persistent id names, and the dtype (torch attribute name) of each.
STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool",
}
#: The first object of a legacy-format file, and the protocol version that follows it (torch.serialization's).
LEGACY_MAGIC, LEGACY_PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
#: The values a dict key in the file may be: hashing anything else (a deeply nested tuple) can take forever.
_KEY_TYPES = (str, int, bytes, type(None))


class PthError(GanzooError):
    """A ``.pth`` that cannot be read as tensors: one sentence naming the file and what stood in the way."""


class _Refused(Exception):
    """The pickle asks for something a state dict of tensors never needs."""


@dataclass(frozen=True)
class _Global:
    """A module attribute the pickle names (GLOBAL / STACK_GLOBAL), kept as a name: nothing is imported."""

    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class _Storage:
    """A storage the pickle refers to by key; its bytes are read from the archive or the stream's tail."""

    key: str
    dtype: str
    numel: int
    flat: Any = None  # the bytes as a 1-d tensor of ``dtype``, shared by every tensor that views this storage


@dataclass(eq=False)
class _TensorRecipe:
    """How ``torch._utils._rebuild_tensor_v2`` would view its storage: built once the storage bytes are in."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def build(self) -> Any:
        """A view of the storage, as ``torch.load`` gives (tensors that share a storage share it here too)."""
        return self.storage.flat.as_strided(self.size, self.stride, self.offset)


def _ordered_dict(*args: Any) -> OrderedDict:
    if args:  # torch.save writes OrderedDict() and then its items
        raise _Refused("an OrderedDict built from arguments")
    return OrderedDict()


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> _TensorRecipe:
    """``_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`` and v1's first four;
    metadata (a negative or conjugate view) would change the values, so it is refused rather than dropped."""
    if len(rest) > 3 or (len(rest) == 3 and rest[2] not in (None, {})):
        raise _Refused("a tensor with metadata (a negative or conjugate view)")
    if not (isinstance(storage, _Storage) and _whole(offset) and _shape(size) and _shape(stride)
            and len(size) == len(stride)):
        raise ValueError("a tensor whose storage, offset, size or stride is not what torch writes")
    return _TensorRecipe(storage, offset, size, stride)


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    """``_rebuild_parameter(data, requires_grad, hooks)``: the tensor (a state dict needs no Parameter)."""
    if not isinstance(data, _TensorRecipe):
        raise ValueError("a parameter that holds no tensor")
    return data


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _shape(values: Any) -> bool:
    return isinstance(values, tuple) and all(map(_whole, values))


#: The only callables a file may name: what ``torch.save`` writes for a state dict of tensors.
_CALLABLES: dict[str, Callable[..., Any]] = {
    "collections.OrderedDict": _ordered_dict,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
}
#: Opcodes whose decoded argument is the value they push.
_PUSH_ARG = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG", "BINFLOAT", "FLOAT", "BINUNICODE",
             "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BINSTRING",
             "SHORT_BINSTRING", "STRING"}
#: Opcodes that push a constant.
_PUSH_CONSTANT = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False, "EMPTY_TUPLE": ()}
#: Opcodes that only frame the stream or declare its protocol.
_IGNORED = {"PROTO", "FRAME"}


class _Machine:
    """Follows one pickle's opcodes (decoded by pickletools, never executed) to the object it describes.

    ``pid_fields`` is the length of a storage's persistent id: 5 in the zip format, 6 (with a view) in the legacy.
    """

    def __init__(self, storages: dict[str, _Storage], pid_fields: int = 5) -> None:
        self.storages, self.pid_fields = storages, pid_fields
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}

    def run(self, stream: IO[bytes]) -> Any:
        """The object the pickle at ``stream``'s position describes; the stream is left after its STOP."""
        for opcode, arg, _ in pickletools.genops(stream):  # raises ValueError on a pickle cut short
            name = opcode.name
            if name == "STOP":
                return self._pop(1)[0]
            if name in _IGNORED:
                continue
            handler = getattr(self, f"op_{name}", None)
            if handler is not None:
                handler()
            elif name in _PUSH_ARG:
                self.stack.append(arg)
            elif name in _PUSH_CONSTANT:
                self.stack.append(_PUSH_CONSTANT[name])
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                self.memo[int(arg)] = self._top()
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                self.stack.append(self.memo[int(arg)])
            elif name == "GLOBAL":
                self.stack.append(_Global(*str(arg).split(" ", 1)))
            else:
                raise _Refused(f"the pickle opcode {name}")
        raise ValueError("the pickle ends without STOP")

    def _pop(self, count: int) -> list[Any]:
        if len(self.stack) < count:
            raise ValueError("the pickle takes more values than it pushed")
        items = self.stack[len(self.stack) - count:]
        del self.stack[len(self.stack) - count:]
        return items

    def _top(self) -> Any:
        if not self.stack:
            raise ValueError("the pickle refers to a value it never pushed")
        return self.stack[-1]

    def _pop_mark(self) -> list[Any]:
        if not self.marks:
            raise ValueError("the pickle closes a mark it never set")
        items, self.stack = self.stack, self.marks.pop()
        return items

    def _set(self, target: Any, key: Any, value: Any) -> None:
        if not isinstance(target, dict) or not isinstance(key, _KEY_TYPES):
            raise _Refused(f"an item keyed by {with_article(type(key).__name__)} in {with_article(type(target).__name__)}")
        target[key] = value

    def op_MARK(self) -> None:
        self.marks.append(self.stack)
        self.stack = []

    def op_MEMOIZE(self) -> None:
        self.memo[len(self.memo)] = self._top()

    def op_POP(self) -> None:
        if self.stack:
            self.stack.pop()
        else:  # as CPython's unpickler does
            self._pop_mark()

    def op_POP_MARK(self) -> None:
        self._pop_mark()

    def op_DUP(self) -> None:
        self.stack.append(self._top())

    def op_STACK_GLOBAL(self) -> None:
        module, name = self._pop(2)
        if not (isinstance(module, str) and isinstance(name, str)):
            raise ValueError("a global named by something other than strings")
        self.stack.append(_Global(module, name))

    def op_EMPTY_DICT(self) -> None:
        self.stack.append({})

    def op_EMPTY_LIST(self) -> None:
        self.stack.append([])

    def op_TUPLE(self) -> None:
        items = self._pop_mark()  # first: it puts the stack below the mark back
        self.stack.append(tuple(items))

    def op_TUPLE1(self) -> None:
        self.stack.append(tuple(self._pop(1)))

    def op_TUPLE2(self) -> None:
        self.stack.append(tuple(self._pop(2)))

    def op_TUPLE3(self) -> None:
        self.stack.append(tuple(self._pop(3)))

    def op_LIST(self) -> None:
        items = self._pop_mark()
        self.stack.append(items)

    def op_DICT(self) -> None:
        items, built = self._pop_mark(), {}
        for key, value in zip(items[::2], items[1::2]):
            self._set(built, key, value)
        self.stack.append(built)

    def op_APPEND(self) -> None:
        (value,) = self._pop(1)
        self._append(self._top(), [value])

    def op_APPENDS(self) -> None:
        items = self._pop_mark()
        self._append(self._top(), items)

    @staticmethod
    def _append(target: Any, items: list[Any]) -> None:
        if not isinstance(target, list):
            raise _Refused(f"appending to {with_article(type(target).__name__)}")
        target.extend(items)

    def op_SETITEM(self) -> None:
        key, value = self._pop(2)
        self._set(self._top(), key, value)

    def op_SETITEMS(self) -> None:
        items = self._pop_mark()
        target = self._top()
        for key, value in zip(items[::2], items[1::2]):
            self._set(target, key, value)

    def op_BINPERSID(self) -> None:
        (pid,) = self._pop(1)
        self.stack.append(self._storage(pid))

    def op_REDUCE(self) -> None:
        function, args = self._pop(2)
        call = _CALLABLES.get(str(function)) if isinstance(function, _Global) else None
        if call is None:
            named = str(function) if isinstance(function, _Global) else f"{with_article(type(function).__name__)}"
            raise _Refused(f"a call of {named}")
        if not isinstance(args, tuple):
            raise ValueError(f"a call of {function} without an argument tuple")
        self.stack.append(call(*args))

    def op_BUILD(self) -> None:
        (state,) = self._pop(1)
        target = self._top()  # a state dict's OrderedDict carries its modules' versions as _metadata: not needed
        if not (isinstance(target, OrderedDict) and isinstance(state, dict) and set(state) <= {"_metadata"}):
            raise _Refused(f"setting the state of {with_article(type(target).__name__)}")

    def _storage(self, pid: Any) -> _Storage:
        """A persistent id: ('storage', type, key, location, numel), and in the legacy format a view (None)."""
        if not (isinstance(pid, tuple) and len(pid) == self.pid_fields and pid[0] == "storage"
                and isinstance(pid[1], _Global) and isinstance(pid[2], str) and _whole(pid[4])):
            raise _Refused(f"a persistent object other than a storage ({with_article(type(pid).__name__)})")
        kind, key = pid[1], pid[2]
        if kind.module != "torch" or kind.name not in STORAGE_DTYPES:
            raise _Refused(f"a storage of type {kind}")
        if self.pid_fields == 6 and pid[5] is not None:
            raise _Refused("a storage that views another (written by torch before 1.0)")
        if key not in self.storages:
            self.storages[key] = _Storage(key, STORAGE_DTYPES[kind.name], pid[4])
        elif (self.storages[key].dtype, self.storages[key].numel) != (STORAGE_DTYPES[kind.name], pid[4]):
            raise ValueError(f"storage {key} is given two types or sizes")
        return self.storages[key]


def read_pth_tensors(path: Path) -> dict[str, Any]:
    """The tensors of the state dict that ``torch.save`` wrote to ``path``, on the CPU; :class:`PthError` (one
    sentence) for a file that is not one (told by its first bytes, and named: an image, a text file...), names a callable a state dict never needs, or is cut short."""
    try:
        kind = file_kind(path)  # by its first bytes: a PNG or a text file is no pickle to decode
        if kind not in (TORCH_ZIP, TORCH_PICKLE):
            raise PthError(f"{path} is {in_words(kind)}, not a file torch.save writes; pass the original .pth file "
                           "or a .safetensors file of the same tensors.")
        state = _read_zip(path) if kind == TORCH_ZIP else _read_legacy(path)
        if not (isinstance(state, dict) and all(isinstance(key, str) and isinstance(value, _TensorRecipe)
                                                for key, value in state.items())):
            raise PthError(f"{path} does not hold a state dict of tensors (names to tensors); pass the weights "
                           f"file itself.")
        return {name: recipe.build() for name, recipe in state.items()}
    except _Refused as refused:
        raise PthError(f"{path} asks for {refused}, which no state dict of tensors needs, so ganzoo does not read "
                       f"it (it never runs code from a file); pass the weights as a .safetensors file.") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, RuntimeError, MemoryError,
            OverflowError, struct.error, zipfile.BadZipFile) as exc:  # RuntimeError: a view past its storage
        detail = str(exc).splitlines()[0][:200] if str(exc) else "no details"
        raise PthError(f"Cannot read {path} as tensors saved by torch.save ({type(exc).__name__}: {detail}); "
                       f"pass the original file or a .safetensors file of the same tensors.") from None


def _read_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") or name == "data.pkl"]
        if len(pickles) != 1:
            raise ValueError("no single data.pkl in the archive")
        prefix, size = pickles[0][: -len("data.pkl")], path.stat().st_size
        storages: dict[str, _Storage] = {}
        state = _Machine(storages).run(io.BytesIO(_stored(archive, pickles[0], size)))
        for storage in storages.values():
            expected = storage.numel * _element_size(storage.dtype)
            _fill(storage, _stored(archive, f"{prefix}data/{storage.key}", min(expected, size)))
    return state


def _stored(archive: zipfile.ZipFile, name: str, most: int) -> bytes:
    """Entry ``name``, read only when stored uncompressed (as torch writes) and no larger than ``most`` bytes."""
    info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED or info.file_size > most:
        raise ValueError(f"{name} is compressed or larger than torch writes it")
    return archive.read(info)


def _read_legacy(path: Path) -> Any:
    stream = io.BytesIO(path.read_bytes())  # no length in the file can make a read ask for more than it holds
    header = [_Machine({}).run(stream) for _ in range(3)]  # magic number, protocol version, system info
    if not (header[0] == LEGACY_MAGIC and header[1] == LEGACY_PROTOCOL):
        raise ValueError("neither a zip archive nor torch's legacy format")
    storages: dict[str, _Storage] = {}
    state = _Machine(storages, pid_fields=6).run(stream)
    keys = _Machine({}).run(stream)
    if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys) and set(keys) == set(storages)):
        raise ValueError("the storage keys do not match the tensors")
    for key in keys:
        storage = storages[key]
        (numel,) = struct.unpack("<q", _exactly(stream, 8))
        if numel != storage.numel:
            raise ValueError(f"storage {key} holds {numel} elements, not the {storage.numel} its tensors name")
        _fill(storage, _exactly(stream, numel * _element_size(storage.dtype)))
    return state


def _exactly(stream: IO[bytes], count: int) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise ValueError(f"the file ends {count - len(data)} bytes early")
    return data


def _element_size(dtype: str) -> int:
    import torch

    return getattr(torch, dtype).itemsize


def _fill(storage: _Storage, data: bytes) -> None:
    """Give ``storage`` its bytes, which must be exactly its element count's worth."""
    import torch

    expected = storage.numel * _element_size(storage.dtype)
    if len(data) != expected:
        raise ValueError(f"storage {storage.key} holds {len(data)} bytes, not {expected}")
    dtype = getattr(torch, storage.dtype)
    storage.flat = torch.frombuffer(bytearray(data), dtype=dtype) if data else torch.empty(0, dtype=dtype)
