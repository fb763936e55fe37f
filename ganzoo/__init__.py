"""ganzoo: a model zoo of generative adversarial networks built around a pluggy plugin registry.

Importing this package is cheap (no torch): the registry and CLI load torch only when a
network is built or trained.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ganzoo")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from ganzoo.hookspecs import hookimpl  # noqa: E402  (re-exported for plugin authors)

__all__ = ["__version__", "hookimpl"]
