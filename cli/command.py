"""The class of ganzoo's commands, and what each one says about the plugin settings before it runs."""

from __future__ import annotations

import os
from typing import Any

import click


class GanzooCommand(click.Command):
    """A ganzoo command that, once its arguments are parsed (so not for ``--help`` or a usage error), points out on
    stderr each name in ``GANZOO_DISABLE_PLUGINS`` that matched nothing (a mistyped name there disables nothing),
    and runs as :data:`ganzoo.errors.RUNNING_COMMAND`.

    Commands that list the registry report every plugin problem below their listing instead, and are plain
    :class:`click.Command`\\ s; the processes of ``ganzoo train --devices`` leave it to the launcher, which said it once.
    """

    def invoke(self, ctx: click.Context) -> Any:
        from ganzoo.errors import RUNNING_COMMAND
        from ganzoo.launcher import started_by_launcher

        if os.environ.get("GANZOO_DISABLE_PLUGINS") and not started_by_launcher():
            from rich.console import Console

            report_unmatched_disables(Console(stderr=True, highlight=False))
        running = RUNNING_COMMAND.set(ctx.info_name)  # its sentences name its own options
        try:
            return super().invoke(ctx)
        finally:
            RUNNING_COMMAND.reset(running)


def report_unmatched_disables(out: Any) -> None:
    """One line per name in ``GANZOO_DISABLE_PLUGINS`` that matched no installed plugin or distribution, with
    the installed names it is close to, so a typo there does not pass for a disabled plugin."""
    from ganzoo.errors import close_names
    from ganzoo.plugin_manager import get_plugins

    plugins = get_plugins()
    for name in plugins.unmatched_disabled:
        close = close_names(name, plugins.installed_names)
        hint = f" (did you mean {close}?)" if close else ""
        out.print(f"[yellow]GANZOO_DISABLE_PLUGINS names {name!r}, which no installed plugin or distribution "
                  f"has{hint}; see 'ganzoo plugins' for their names[/yellow]")
