"""Reading the tensors of a PyTorch ``.pth`` file without unpickling it.

A ``.pth`` written by ``torch.save`` is a pickle: loading it with ``pickle`` (or ``torch.load``) runs whatever
callables the file names, so a crafted file runs code. Some weights that ganzoo must read come only in this form
(torch-fidelity's TensorFlow Inception). Here the pickle is never executed: :func:`pickletools.genops` decodes
its opcodes, and a small stack machine follows only those a state dict of tensors needs, rebuilding containers,
numbers and strings itself and tensors from their raw storage bytes. Any other callable the file names
(``os.system``, a class of its own) stops the read in one sentence before anything is built.

Both of ``torch.save``'s formats are read: the zip archive (torch 1.6 and later: ``data.pkl`` and one entry
per storage) and the legacy stream (magic number, protocol, system info, the pickle, its storage keys, then
each storage as an int64 element count and the raw bytes), in little-endian byte order.
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

from ganzoo.errors import GanzooError

#: The storage classes a tensor's persistent id names, and the dtype (torch attribute name) of each.
STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool",
}
#: The first object of a legacy-format file, and the protocol version that follows it (torch.serialization's).
LEGACY_MAGIC, LEGACY_PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
#: Opcodes that only frame the stream or declare its protocol.
_IGNORED = {"PROTO", "FRAME"}


class PthError(GanzooError):
    """A ``.pth`` that cannot be read as tensors: one sentence naming the file and what stood in the way."""


@dataclass(frozen=True)
class _Global:
    """A module attribute the pickle names (GLOBAL / STACK_GLOBAL), kept as a name: nothing is imported."""

    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass
class _Storage:
    """A storage the pickle refers to by key; its bytes are read from the archive or the stream's tail."""

    key: str
    dtype: str
    numel: int
    data: bytes | None = None


@dataclass
class _TensorRecipe:
    """How ``torch._utils._rebuild_tensor_v2`` would view its storage: built once the storage bytes are in."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def build(self) -> Any:
        import torch

        dtype = getattr(torch, self.storage.dtype)
        data = self.storage.data or b""
        flat = torch.frombuffer(bytearray(data), dtype=dtype) if data else torch.empty(0, dtype=dtype)
        return flat.as_strided(self.size, self.stride, self.offset).clone()


def _ordered_dict(*args: Any) -> OrderedDict:
    return OrderedDict(*args)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *ignored: Any) -> _TensorRecipe:
    """``_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`` (and v1's first four)."""
    if not (isinstance(storage, _Storage) and isinstance(offset, int) and _ints(size) and _ints(stride)
            and len(size) == len(stride)):
        raise ValueError("a tensor whose storage, offset, size or stride is not what torch writes")
    return _TensorRecipe(storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(data: Any, *ignored: Any) -> Any:
    """``_rebuild_parameter(data, requires_grad, hooks)``: the tensor (a state dict needs no Parameter)."""
    return data


def _ints(values: Any) -> bool:
    return isinstance(values, tuple) and all(isinstance(value, int) for value in values)


#: The only callables a file may name: what ``torch.save`` writes for a state dict of tensors.
_CALLABLES: dict[str, Callable[..., Any]] = {
    "collections.OrderedDict": _ordered_dict,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
}


class _Refused(Exception):
    """The pickle asks for something a state dict of tensors never needs."""


class _Machine:
    """Follows one pickle's opcodes (decoded by pickletools, never executed) to the object it describes."""

    def __init__(self, storages: dict[str, _Storage]) -> None:
        self.storages = storages
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}

    def run(self, stream: IO[bytes]) -> Any:
        for opcode, arg, _ in pickletools.genops(stream):
            name = opcode.name
            if name == "STOP":
                return self.stack.pop()
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
                self.memo[int(arg)] = self.stack[-1]
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                self.stack.append(self.memo[int(arg)])
            elif name == "GLOBAL":
                self.stack.append(_Global(*str(arg).split(" ", 1)))
            else:
                raise _Refused(f"the pickle opcode {name}")
        raise ValueError("the pickle ends without STOP")

    def _pop_mark(self) -> list[Any]:
        items, self.stack = self.stack, self.marks.pop()
        return items

    def op_MARK(self) -> None:
        self.marks.append(self.stack)
        self.stack = []

    def op_MEMOIZE(self) -> None:
        self.memo[len(self.memo)] = self.stack[-1]

    def op_POP(self) -> None:
        self.stack.pop()

    def op_POP_MARK(self) -> None:
        self._pop_mark()

    def op_DUP(self) -> None:
        self.stack.append(self.stack[-1])

    def op_STACK_GLOBAL(self) -> None:
        name, module = self.stack.pop(), self.stack.pop()
        self.stack.append(_Global(str(module), str(name)))

    def op_EMPTY_DICT(self) -> None:
        self.stack.append({})

    def op_EMPTY_LIST(self) -> None:
        self.stack.append([])

    def op_TUPLE(self) -> None:
        items = self._pop_mark()  # first: it puts the stack below the mark back
        self.stack.append(tuple(items))

    def op_TUPLE1(self) -> None:
        self.stack[-1:] = [tuple(self.stack[-1:])]

    def op_TUPLE2(self) -> None:
        self.stack[-2:] = [tuple(self.stack[-2:])]

    def op_TUPLE3(self) -> None:
        self.stack[-3:] = [tuple(self.stack[-3:])]

    def op_LIST(self) -> None:
        items = self._pop_mark()
        self.stack.append(items)

    def op_DICT(self) -> None:
        items = self._pop_mark()
        self.stack.append(dict(zip(items[::2], items[1::2])))

    def op_APPEND(self) -> None:
        value = self.stack.pop()
        self.stack[-1].append(value)

    def op_APPENDS(self) -> None:
        items = self._pop_mark()
        self.stack[-1].extend(items)

    def op_SETITEM(self) -> None:
        value, key = self.stack.pop(), self.stack.pop()
        self.stack[-1][key] = value

    def op_SETITEMS(self) -> None:
        items = self._pop_mark()
        for key, value in zip(items[::2], items[1::2]):
            self.stack[-1][key] = value

    def op_BINPERSID(self) -> None:
        self.stack.append(self._storage(self.stack.pop()))

    def op_REDUCE(self) -> None:
        args, function = self.stack.pop(), self.stack.pop()
        call = _CALLABLES.get(str(function)) if isinstance(function, _Global) else None
        if call is None or not isinstance(args, tuple):
            raise _Refused(f"a call of {function}")
        self.stack.append(call(*args))

    def op_BUILD(self) -> None:
        state = self.stack.pop()
        target = self.stack[-1]  # a state dict's OrderedDict carries its modules' versions as _metadata: not needed
        if not (isinstance(target, OrderedDict) and isinstance(state, dict) and set(state) <= {"_metadata"}):
            raise _Refused(f"setting the state of a {type(target).__name__}")

    def _storage(self, pid: Any) -> _Storage:
        """A persistent id: ('storage', type, key, location, numel) in the zip format, plus a view in the legacy."""
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _Global) and isinstance(pid[4], int)):
            raise _Refused(f"the persistent object {pid!r}")
        kind, key = pid[1], str(pid[2])
        if kind.module != "torch" or kind.name not in STORAGE_DTYPES:
            raise _Refused(f"a storage of type {kind}")
        if len(pid) == 6 and pid[5] is not None:
            raise _Refused("a storage that views another (written by torch before 1.0)")
        if key not in self.storages:
            self.storages[key] = _Storage(key, STORAGE_DTYPES[kind.name], pid[4])
        return self.storages[key]


#: Opcodes whose decoded argument is the value they push.
_PUSH_ARG = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG", "BINFLOAT", "FLOAT", "BINUNICODE",
             "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BINSTRING",
             "SHORT_BINSTRING", "STRING"}
#: Opcodes that push a constant.
_PUSH_CONSTANT = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False, "EMPTY_TUPLE": ()}


def read_pth_tensors(path: Path) -> dict[str, Any]:
    """The tensors of the state dict that ``torch.save`` wrote to ``path``, on the CPU; :class:`PthError` (one
    sentence) for a file that is not one, names a callable a state dict never needs, or is cut short."""
    try:
        if zipfile.is_zipfile(path):
            state = _read_zip(path)
        else:
            with open(path, "rb") as stream:
                state = _read_legacy(stream)
        if not (isinstance(state, dict) and all(isinstance(key, str) and isinstance(value, _TensorRecipe)
                                                for key, value in state.items())):
            raise PthError(f"{path} does not hold a state dict of tensors (names to tensors); pass the weights "
                           f"file itself.")
        return {name: recipe.build() for name, recipe in state.items()}
    except _Refused as refused:
        raise PthError(f"{path} asks for {refused}, which no state dict of tensors needs, so ganzoo does not read "
                       f"it (it never runs code from a file); pass the weights as a .safetensors file.") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, RuntimeError, struct.error,
            zipfile.BadZipFile) as exc:  # RuntimeError: a tensor that reaches past its storage
        raise PthError(f"Cannot read {path} as tensors saved by torch.save ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else 'no details'}); pass the original file or a "
                       f".safetensors file of the same tensors.") from None


def _read_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith("/data.pkl") or name == "data.pkl"]
        if len(pickles) != 1:
            raise ValueError("no single data.pkl in the archive")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() != b"little":
            raise ValueError("tensors saved in big-endian byte order")
        storages: dict[str, _Storage] = {}
        state = _Machine(storages).run(io.BytesIO(archive.read(pickles[0])))
        for key, storage in storages.items():
            storage.data = _checked(storage, archive.read(f"{prefix}data/{key}"))
    return state


def _read_legacy(stream: IO[bytes]) -> Any:
    header = [_Machine({}).run(stream) for _ in range(3)]  # magic number, protocol version, system info
    if header[0] != LEGACY_MAGIC:
        raise ValueError("neither a zip archive nor torch's legacy format")
    if header[1] != LEGACY_PROTOCOL:
        raise ValueError(f"legacy protocol {header[1]}, not {LEGACY_PROTOCOL}")
    if not (isinstance(header[2], dict) and header[2].get("little_endian", True)):
        raise ValueError("tensors saved in big-endian byte order")
    storages: dict[str, _Storage] = {}
    state = _Machine(storages).run(stream)
    keys = _Machine({}).run(stream)
    if not (isinstance(keys, list) and set(map(str, keys)) == set(storages)):
        raise ValueError("the storage keys do not match the tensors")
    for key in keys:
        storage = storages[str(key)]
        (numel,) = struct.unpack("<q", _exactly(stream, 8))
        storage.data = _checked(storage, _exactly(stream, numel * _element_size(storage.dtype)), numel)
    return state


def _exactly(stream: IO[bytes], count: int) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise ValueError(f"the file ends {count - len(data)} bytes early")
    return data


def _element_size(dtype: str) -> int:
    import torch

    return getattr(torch, dtype).itemsize


def _checked(storage: _Storage, data: bytes, numel: int | None = None) -> bytes:
    """``data`` when it holds the storage's element count (the zip format's count in elements, not bytes)."""
    expected = (storage.numel if numel is None else numel) * _element_size(storage.dtype)
    if len(data) != expected or (numel is not None and numel != storage.numel):
        raise ValueError(f"storage {storage.key} holds {len(data)} bytes, not {expected}")
    return data
