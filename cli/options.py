"""Option types shared by the commands."""

from __future__ import annotations

from typing import Any

import click


def given_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback refusing an empty name or folder (``--data ""`` would quietly mean the model's default dataset)."""
    if value is not None and not value.strip():
        raise click.BadParameter("it is empty; give a dataset name or a folder.", ctx, param)
    return value


class Seed(click.ParamType):
    """A noise seed: a whole number torch's generators take (64 bits, signed). Checked here rather than by
    ``click.IntRange``, whose help would print the two 19-digit bounds."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from ganzoo.config import SEED_MAX, SEED_MIN

        seed = click.INT.convert(value, param, ctx)
        if not SEED_MIN <= seed <= SEED_MAX:
            self.fail(f"{seed} is out of range; a seed must be a whole number from {SEED_MIN} to {SEED_MAX}", param, ctx)
        return seed


class GivenPath(click.Path):
    """A ``click.Path`` that refuses an empty value, which pathlib reads as the current folder: ``--out ""`` (an
    unset shell variable, say) would otherwise train or write into wherever the command was run."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("it is empty; give a path (. for the current folder).", param, ctx)
        return super().convert(value, param, ctx)


def given_on_command_line(name: str) -> bool:
    """Whether the user set option ``name`` on the command line, rather than leaving its default.

    An option with a default cannot tell "left alone" from "given the default value" by its value.
    """
    from click.core import ParameterSource

    return click.get_current_context().get_parameter_source(name) is ParameterSource.COMMANDLINE
