"""The one exception type users see: a sentence that says what was wrong and what to do."""

import os
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

#: The ganzoo command running in this process ("train", "sample", "eval"...), set by the CLI, so that a sentence
#: names that command's own options and commands; None outside the CLI.
RUNNING_COMMAND: ContextVar[str | None] = ContextVar("ganzoo_running_command", default=None)

#: While a new run's networks are first built with the image side its data gave, no --image-size having chosen one:
#: the data (``"the images in DIR"``), so that a network refusing that side says where it came from; None otherwise.
IMAGE_SIZE_FROM: ContextVar[str | None] = ContextVar("ganzoo_image_size_from", default=None)

#: Set to 1 to see the traceback of what the CLI would otherwise say in one sentence (a plugin's exception,
#: running out of memory).
DEBUG_ENV = "GANZOO_DEBUG"


#: How an on/off environment variable may say "off" (anything else says "on").
OFF_WORDS = ("0", "false", "no", "off")


def env_switch(name: str, default: bool) -> bool:
    """Whether the environment variable ``name`` is on: unset or empty means ``default``; ``0``, ``false``, ``no``
    and ``off`` (any case) mean off; another value means on."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value not in OFF_WORDS


def debugging() -> bool:
    """Whether ``GANZOO_DEBUG`` asks for exceptions as they are, with their tracebacks."""
    return env_switch(DEBUG_ENV, False)


def command_for(task: str) -> str:
    """The command a sentence should suggest for a generator of ``task``: 'translate' for image-to-image models,
    else the running command when it draws samples ('sample' or 'eval'), else 'sample'."""
    if task == "image-to-image":
        return "translate"
    running = RUNNING_COMMAND.get()
    return running if running in ("sample", "eval") else "sample"


def image_size_origin() -> str:
    """``", the size of the images in DIR, which a run takes when no --image-size is given"``: where the image side
    a network refuses came from (see :data:`IMAGE_SIZE_FROM`), to follow its ``NxN images``; empty when the user or
    the model chose it."""
    data = IMAGE_SIZE_FROM.get()
    return f", the size of {data}, which a run takes when no --image-size is given" if data else ""


@contextmanager
def image_size_taken_from(data: str | None) -> Iterator[None]:
    """Within this block, :data:`IMAGE_SIZE_FROM` is ``data`` (None: the side was chosen, not taken from data)."""
    token = IMAGE_SIZE_FROM.set(data)
    try:
        yield
    finally:
        IMAGE_SIZE_FROM.reset(token)


def shell_word(text: str) -> str:
    """``text`` as one word of a shell command a sentence suggests inside its single quotes: as it is when the shell
    would take it so, else in double quotes (``$``, backquote, ``"`` and backslash escaped), e.g. a path with spaces."""
    import shlex

    if shlex.quote(text) == text:
        return text
    escaped = "".join("\\" + char if char in '$`"\\' else char for char in text)
    return f'"{escaped}"'


class GanzooError(Exception):
    """A problem caused by input (a name, a file, a number) that the user can fix.

    The CLI prints the message alone, without a traceback, so every message must be one
    clear sentence naming what was wrong and what to do about it.
    """


def user_sentence(exc: BaseException, command: str | None = None) -> str | None:
    """The one sentence the CLI prints for ``exc`` (a :class:`GanzooError`'s message, or what running out of memory
    asked for and which of ``command``'s options to lower; the running command by default); None for an exception
    that keeps its traceback."""
    from ganzoo.out_of_memory import out_of_memory_sentence

    return str(exc) if isinstance(exc, GanzooError) else out_of_memory_sentence(exc, command or RUNNING_COMMAND.get())


class UnknownNameError(GanzooError, KeyError):
    """An unknown model, dataset, loss or extension name; the message suggests close names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _plural(kind: str) -> str:
    """``model`` -> ``models``, ``loss`` -> ``losses``; ``pretrained weights`` stays as it is."""
    if kind.endswith("ss"):
        return f"{kind}es"
    return kind if kind.endswith("s") else f"{kind}s"


def with_article(noun: str) -> str:
    """``noun`` after "a" or "an" as it is spoken: "a dict", "an object", "an int"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def close_names(name: str, known: list[str]) -> str:
    """Up to three of ``known`` that look like ``name`` whatever its case (``DCGAN`` is ``dcgan`` first), quoted
    (``'dcgan', 'cgan'``), or "" when none does."""
    import difflib

    by_lower: dict[str, str] = {}
    for each in known:
        by_lower.setdefault(each.lower(), each)
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.5)
    return ", ".join(repr(by_lower[each]) for each in close)


def unknown_name(kind: str, name: str, known: list[str], see: str = "") -> UnknownNameError:
    """Build the error for an unknown ``kind`` called ``name``, suggesting the closest known names.

    ``see`` names where to look them all up (e.g. ``'ganzoo info gan'``) when there are too many to list.
    """
    close = close_names(name, known)
    hint = f" Did you mean {close}?" if close else ""
    listing = f" Known {_plural(kind)}: {', '.join(sorted(known))}." if len(known) <= 30 else ""
    if see and not hint and not listing:  # one sentence
        return UnknownNameError(f"Unknown {kind} {name!r}; see {see} for the {_plural(kind)}.")
    where = f" See {see} for the {_plural(kind)}." if see else ""
    return UnknownNameError(f"Unknown {kind} {name!r}.{hint}{listing}{where}")
