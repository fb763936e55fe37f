"""Registers the pretrained files listed in ganzoo's own ``weights/manifest.json``."""

from __future__ import annotations

from importlib import resources
from typing import Callable

from ganzoo.hookspecs import hookimpl
from ganzoo.specs import PretrainedSpec


@hookimpl
def register_pretrained(register: Callable[[PretrainedSpec], None]) -> None:
    """Every entry of the shipped manifest."""
    from ganzoo.manifest import read_manifest

    with resources.as_file(resources.files("ganzoo.pretrained") / "manifest.json") as manifest:
        for spec in read_manifest(manifest):
            register(spec)
