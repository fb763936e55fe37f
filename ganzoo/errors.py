"""The one exception type users see: a sentence that says what was wrong and what to do."""

import os

#: Set to 1 to see the traceback of what the CLI would otherwise say in one sentence (a plugin's exception,
#: running out of memory).
DEBUG_ENV = "GANZOO_DEBUG"


def debugging() -> bool:
    """Whether ``GANZOO_DEBUG`` asks for exceptions as they are, with their tracebacks."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


class GanzooError(Exception):
    """A problem caused by input (a name, a file, a number) that the user can fix.

    The CLI prints the message alone, without a traceback, so every message must be one
    clear sentence naming what was wrong and what to do about it.
    """


def user_sentence(exc: BaseException) -> str | None:
    """The one sentence the CLI prints for ``exc`` (a :class:`GanzooError`'s message, or what running out of memory
    asked for and what to lower); None for an exception that keeps its traceback."""
    from ganzoo.out_of_memory import out_of_memory_sentence

    return str(exc) if isinstance(exc, GanzooError) else out_of_memory_sentence(exc)


class UnknownNameError(GanzooError, KeyError):
    """An unknown model, dataset, loss or extension name; the message suggests close names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _plural(kind: str) -> str:
    """``model`` -> ``models``, ``loss`` -> ``losses``; ``pretrained weights`` stays as it is."""
    if kind.endswith("ss"):
        return f"{kind}es"
    return kind if kind.endswith("s") else f"{kind}s"


def close_names(name: str, known: list[str]) -> str:
    """Up to three of ``known`` that look like ``name``, quoted (``'dcgan', 'cgan'``), or "" when none does."""
    import difflib

    return ", ".join(repr(close) for close in difflib.get_close_matches(name, known, n=3, cutoff=0.5))


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
