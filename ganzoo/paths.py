"""Where ganzoo keeps downloaded data and weights when the user does not say."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "GANZOO_DATA"
CACHE_ENV = "GANZOO_CACHE"


def cache_dir() -> Path:
    """``$GANZOO_CACHE``, else ``$XDG_CACHE_HOME/ganzoo``, else ``~/.cache/ganzoo``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ganzoo"


def given_data_root() -> str | None:
    """``$GANZOO_DATA`` when it names a folder: a data root the user gave, which a run keeps as it keeps
    ``--data-root`` (the default root, given by no one, is not kept; a folder still to be made, or a file, which
    :func:`data_root` refuses, neither)."""
    value = os.environ.get(DATA_ENV)
    return value if value and Path(value).expanduser().is_dir() else None


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The dataset root: ``--data-root``, else ``$GANZOO_DATA``, else ``cache_dir()/data``."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(DATA_ENV):
        root = Path(os.environ[DATA_ENV]).expanduser()
        if root.exists() and not root.is_dir():
            from ganzoo.errors import GanzooError

            raise GanzooError(f"{DATA_ENV} is {root}, which is a file; point it at the folder that holds the datasets, "
                              "or unset it.")
        return root
    return cache_dir() / "data"
