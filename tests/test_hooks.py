"""Every hook is documented in its spec and in README, and implemented by at least one built-in plugin or the core."""

from __future__ import annotations

import inspect
from pathlib import Path

from ganzoo import hookspecs

HOOKS = [name for name, fn in vars(hookspecs).items() if inspect.isfunction(fn) and hasattr(fn, "ganzoo_spec")]


def test_hooks_are_found():
    assert {"register_models", "build_generator", "build_discriminator", "compute_losses"} <= set(HOOKS)


def test_every_hook_has_a_docstring_and_a_readme_entry():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in HOOKS:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name
        assert f"`{name}`" in readme, f"{name} is not documented in README.md"


def test_every_hook_has_an_implementation():
    from ganzoo.plugin_manager import get_manager

    manager = get_manager()
    for name in HOOKS:
        assert getattr(manager.hook, name).get_hookimpls(), name
