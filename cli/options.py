"""Option types shared by the commands."""

from __future__ import annotations

from typing import Any

import click


def given_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback refusing an empty name or folder (``--data ""`` would quietly mean the model's default dataset)."""
    if value is not None and not value.strip():
        raise click.BadParameter("is empty; give a dataset name or a folder", ctx, param)
    return value


class GivenPath(click.Path):
    """A ``click.Path`` that refuses an empty value, which pathlib reads as the current folder: ``--out ""`` (an
    unset shell variable, say) would otherwise train or write into wherever the command was run."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("is empty; give a path (. for the current folder)", param, ctx)
        return super().convert(value, param, ctx)
