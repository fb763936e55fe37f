"""Running out of memory, said in one sentence instead of a torch traceback.

A batch size, a sample count or a network width too large for the machine ends in torch's allocator:
``torch.OutOfMemoryError`` on a GPU, a ``RuntimeError`` from ``DefaultCPUAllocator`` on the CPU, or
Python's ``MemoryError``. That is the user's input meeting the machine's limits, so the CLI says how much
was asked for and which settings to lower (``GANZOO_DEBUG=1`` keeps the traceback). Nothing here imports
torch: the exception is recognised by its type's name and its message.
"""

from __future__ import annotations

import re

from ganzoo.errors import debugging

#: The CPU allocator's words: "you tried to allocate 1600000000000000 bytes".
_CPU_BYTES = re.compile(r"tried to allocate (\d+) bytes")
#: The CUDA caching allocator's words: "Tried to allocate 2.00 GiB".
_GPU_AMOUNT = re.compile(r"Tried to allocate ([\d.]+ [KMGTPE]?i?B)")


def _in_units(count: int) -> str:
    """``1600000000000000`` -> ``1.42 PiB``."""
    amount, units = float(count), ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    while amount >= 1024 and len(units) > 1:
        amount, units = amount / 1024, units[1:]
    return f"{amount:.0f} {units[0]}" if units[0] == "bytes" else f"{amount:.2f} {units[0]}"


def _asked_for(exc: BaseException) -> str | None:
    """What the failed allocation asked for (``tried to allocate 2.00 GiB on the GPU``), ``""`` when the
    exception reports running out without an amount, None when it is not about memory at all."""
    text = str(exc)
    if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (torch.cuda's, and other accelerators')
        found = _GPU_AMOUNT.search(text)
        return f"tried to allocate {found.group(1)} on the GPU" if found else ""
    if isinstance(exc, RuntimeError) and "DefaultCPUAllocator: can't allocate memory" in text:
        found = _CPU_BYTES.search(text)
        return f"tried to allocate {_in_units(int(found.group(1)))} on the CPU" if found else ""
    if isinstance(exc, MemoryError):
        return ""
    return None


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` reports memory running out, so that no other reading of it (a plugin's mistake, an image
    size the network cannot take) hides that from the user."""
    return _asked_for(exc) is not None


#: What sets the size of the work in each command, which a sentence about running out of memory says to lower.
SIZE_OPTIONS = {
    "train": "--batch-size, --image-size, or the networks' widths with --set",
    "sample": "--num, or --batch-size",
    "eval": "--num, or --batch-size",
    "translate": "--image-size",
}
#: The same, when the command is not known.
ANY_SIZE_OPTIONS = "--batch-size, --num, --image-size, or the networks' widths with --set"


def out_of_memory_sentence(exc: BaseException, command: str | None = None) -> str | None:
    """The sentence the CLI prints for ``exc`` when it reports memory running out, naming the options of
    ``command`` that set the size; None for any other exception (or when ``GANZOO_DEBUG`` asks for tracebacks)."""
    asked = _asked_for(exc)
    if asked is None or debugging():
        return None
    detail = f" ({asked})" if asked else ""
    return (f"Ran out of memory{detail}; lower what sets the size ({SIZE_OPTIONS.get(command or '', ANY_SIZE_OPTIONS)}) "
            "or use a device with more memory.")
