"""``ganzoo``: the click group, its error handling, and the registry-listing commands."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import click

from ganzoo.cli.command import GanzooCommand, report_unmatched_disables
from ganzoo.errors import GanzooError, user_sentence


def _one_sentence(sentence: str) -> click.ClickException | click.exceptions.Exit:
    """What ends a command on bad input: click's "Error: SENTENCE" and status 1, or, in a process of ``ganzoo train
    --devices``, the sentence left for the launcher, which prints it once (not once per process), and status 0."""
    from ganzoo.launcher import leave_error

    return click.exceptions.Exit(0) if leave_error(sentence) else click.ClickException(sentence)


def _plugin_failure(exc: Exception) -> str | None:
    """The sentence naming the third-party plugin whose code raised ``exc`` (sampling with its generate hook, say;
    training names them itself), or None: ganzoo's own exceptions keep their traceback."""
    from ganzoo.plugin_manager import get_plugins

    if not get_plugins.cache_info().currsize:  # no plugin was loaded, so none raised (click's --help exit, say)
        return None
    from ganzoo.plugin_checks import hook_failure

    failure = hook_failure(exc)
    return None if failure is None else str(failure)


class GanzooGroup(click.Group):
    """A click group that turns :class:`GanzooError`, and running out of memory, into one red line and exit status 1."""

    command_class = GanzooCommand

    def invoke(self, ctx: click.Context) -> Any:
        from ganzoo.launcher import mark_ready

        try:
            mark_ready()  # under ganzoo train --devices: from here on, a Ctrl-C ends this process in a few words
            return super().invoke(ctx)
        except Exception as exc:  # bad input, or running out of memory (torch's OutOfMemoryError is a RuntimeError)
            sentence = user_sentence(exc, ctx.invoked_subcommand) or _plugin_failure(exc)
            if sentence is None:
                raise
            raise _one_sentence(sentence) from None
        except KeyboardInterrupt:  # a Ctrl-C that no command handled: the shell's status 130, not click's 1
            from ganzoo.launcher import interrupted_by_user, started_by_launcher

            code = interrupted_by_user()
            if started_by_launcher():  # torch's threads left by an interrupted setup can hang or kill the teardown
                from ganzoo.distributed import end_worker

                end_worker(code)
            raise click.exceptions.Exit(code) from None

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command; a torchrun worker that joined a process group then ends without interpreter
        teardown (:func:`ganzoo.distributed.end_worker`), with the status it would have exited with."""
        from ganzoo import distributed

        def ends_here() -> bool:  # without standalone mode the caller handles errors and the exit itself
            return distributed.joined() and kwargs.get("standalone_mode", True)

        try:
            return super().main(*args, **kwargs)
        except SystemExit as exit_:
            if not ends_here():
                raise
            code = exit_.code
            if not isinstance(code, int):  # as sys.exit does: a message is printed, status 1
                if code is not None:
                    print(code, file=sys.stderr)
                code = 0 if code is None else 1
            distributed.end_worker(code)
        except BaseException:
            if not ends_here():
                raise
            from ganzoo.launcher import another_process_left

            # a collective broken by a process that left with a sentence, or ended outright (torch's distributed
            # errors are RuntimeErrors): the launcher, or torchrun, says that cause, once; any other failure is
            # this process's own
            if isinstance(sys.exc_info()[1], RuntimeError) and another_process_left():
                distributed.end_worker(0)
            traceback.print_exc()
            distributed.end_worker(1)


def refuse_translator(model: str, command: str, weights: Path | None) -> None:
    """Stop ``command`` (sample or eval, which draw from noise) for an image-to-image ``model``, pointing at
    ``ganzoo translate``; checked before the ``weights`` are loaded, so the model is named before a missing file
    (an unknown model whose file names the plugin distribution that made it is told to install that one)."""
    from ganzoo.weights import model_for_weights

    if model_for_weights(model, weights).task == "image-to-image":
        raise click.UsageError(f"Model {model!r} translates images rather than sampling noise, so '{command}' has "
                               f"nothing to draw from it; use 'ganzoo translate {model} --weights FILE --input IMAGES "
                               f"--out DIR'.")


WIDE_LIST_COLUMNS = 150  # narrower terminals get `ganzoo list`'s summaries below its table, not in a column


def console() -> Any:
    """A rich console on stdout (plain text when stdout is not a terminal). Written to a file or a pipe (a batch job's
    log, ``| grep``), a sentence stays on one line rather than being cut at rich's default 80 columns, unless
    ``COLUMNS`` asks for a width; tables keep theirs."""
    import os

    from rich.console import Console

    out = Console(highlight=False)
    out.soft_wrap = not out.is_terminal and "COLUMNS" not in os.environ
    return out


def report_plugin_failures(out: Any) -> None:
    """One line per plugin that could not be loaded, so a broken plugin is visible but harmless (with the traceback
    of its exception below it under ``GANZOO_DEBUG``, for its author), per name in
    ``GANZOO_DISABLE_PLUGINS`` that matched nothing, so a typo there does not pass for a disabled plugin, and per
    plugin whose import is slow, so the seconds every command loses are traced to it."""
    from ganzoo.registry import get_registry

    plugins = get_registry().plugins
    for failure in plugins.failures:
        out.print(f"plugin {failure.name!r} from {failure.distribution} skipped: {failure.reason}", style="yellow",
                  markup=False)  # reasons quote exceptions and TOML ("[project.entry-points.ganzoo]") verbatim
        if failure.traceback:  # GANZOO_DEBUG: where in the plugin it failed
            out.print(failure.traceback.rstrip(), markup=False, highlight=False, soft_wrap=True)
    report_unmatched_disables(out)
    for name, distribution, seconds in plugins.slow_imports:
        out.print(f"[yellow]plugin {name!r} from {distribution} took {seconds:.1f} s to import, which every ganzoo "
                  f"command waits for; GANZOO_DISABLE_PLUGINS={name} skips it when it is not needed, and its authors "
                  "should move heavy imports (torch, torchvision...) into its hook functions[/yellow]")


@click.group(cls=GanzooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ganzoo")
def cli() -> None:
    """ganzoo: a zoo of generative adversarial networks, one plugin per family.

    \b
    ganzoo list                        every model
    ganzoo info dcgan                  paper, defaults and meaning of every setting
    ganzoo train gan --data ring8      train (pictures, weights, checkpoints in --out)
    ganzoo sample dcgan --weights runs/x/generator.safetensors --out grid.png
    """


@cli.command("list", cls=click.Command, short_help="List registered models (a pattern such as 'dc*' narrows them).")
@click.argument("pattern", default="*")
def list_models(pattern: str) -> None:
    """List registered models whose name matches PATTERN (e.g. '*gan', 'dc*')."""
    from rich.markup import escape
    from rich.table import Table

    from ganzoo.registry import get_registry

    registry = get_registry()
    names = registry.models.names(pattern)
    out = console()
    if not names:
        report_plugin_failures(out)  # a broken or disabled plugin may be why nothing matches
        advice = "see 'ganzoo plugins' for what is installed" if pattern == "*" else "run 'ganzoo list' to see them all"
        if pattern == "*" and registry.plugins.disabled:  # nothing at all: the switch may have turned it all off
            shown = ", ".join(registry.plugins.disabled[:6]) + (", ..." if len(registry.plugins.disabled) > 6 else "")
            advice = (f"GANZOO_DISABLE_PLUGINS leaves out the plugins {shown}, which may be every one that registers "
                      "models; unset it or name fewer")
        raise GanzooError(f"No model matches {pattern!r}; {advice}.")
    specs = [registry.models.get(name) for name in names]
    wide = out.width >= WIDE_LIST_COLUMNS
    table = Table(title="ganzoo models")
    with_paper = out.width >= 80  # narrower still, the paper (in 'ganzoo info') gives way to the names
    longest = max(len(name) for name in names)
    table.add_column("model", no_wrap=True, min_width=longest)  # whole, to be copied; the paper gives way
    for column in ("family", "task", *(["paper"] if with_paper else []), "default data"):
        table.add_column(column, overflow="fold", no_wrap=column != "paper")
    if wide:
        table.add_column("summary", overflow="fold", ratio=1)
    for spec in specs:
        paper = (spec.paper.cite() if wide else f"{spec.paper.authors} {spec.paper.year}") if spec.paper else ""
        table.add_row(spec.name, spec.family, spec.task, *([paper] if with_paper else []), spec.default_dataset,
                      *([spec.summary] if wide else []))
    out.print(table)
    if not wide:  # a summary squeezed into what is left of a narrow terminal wraps a word per line
        for spec in specs:
            out.print(f"[bold]{spec.name}[/bold]: {escape(spec.summary)}")
    shown = set(names)
    weights = [item for item in registry.pretrained.items.values() if item.model in shown]
    if weights:  # what samples without training: 'ganzoo sample MODEL --pretrained NAME'
        listed = ", ".join(f"{escape(item.name)} ({escape(item.model)})" for item in weights)
        out.print(f"pretrained: {listed}; ganzoo sample MODEL --pretrained NAME, scores in 'ganzoo info MODEL'",
                  highlight=False)
    report_plugin_failures(out)


def _described(weights: Any) -> str:
    """``mnist; digits_frechet 113.45, ...``: the pretrained weights' dataset and the scores its manifest records."""
    scores = ", ".join(f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}"
                       for name, value in weights.metrics.items())
    return f"{weights.dataset}; {scores}" if scores else weights.dataset


@cli.command(short_help="Show MODEL's paper, data and every setting it accepts.")
@click.argument("model")
def info(model: str) -> None:
    """Show MODEL's paper, task and data, and the hyperparameters, losses and extensions its task accepts."""
    from rich.table import Table

    from ganzoo.config import (SHARED_LOSS_SETTINGS, accepts_loss, all_hyperparameters, loss_defaults,
                               loss_network_defaults, refused_settings, unusable_tuning)
    from ganzoo.extension_settings import applies
    from ganzoo.registry import get_model, get_registry

    spec = get_model(model)
    registry = get_registry()
    out = console()
    out.print(f"[bold]{spec.name}[/bold]  ({spec.family} family, {spec.task}, plugin {spec.plugin})")
    out.print(spec.summary)
    if spec.paper:
        out.print(f"paper: {spec.paper.title}, {spec.paper.cite()}")
    out.print(f"trains on: {', '.join(spec.data_kinds)} data; default dataset: {spec.default_dataset}")
    table = Table(title="hyperparameters (set with --set NAME=VALUE or the named options)")
    for column in ("name", "default", "meaning"):
        table.add_column(column, overflow="fold")
    hidden = (*(name for names in refused_settings(spec) for name in names), *unusable_tuning(spec))  # refused when set
    if spec.task == "image-to-image":
        hidden = (*hidden, *SHARED_LOSS_SETTINGS)
    model_settings = {hp.name: hp.default for hp in all_hyperparameters(spec)}
    defaults = {**model_settings, **spec.defaults()}
    loss = defaults.get("loss")  # its paper's settings apply unless set (wgan-gp: lr 1e-4, 5 critic steps...)
    if isinstance(loss, str) and loss in registry.losses.names():
        defaults.update(loss_defaults(loss))
        defaults.update(loss_network_defaults(loss, model_settings))
    for hp in all_hyperparameters(spec):
        if hp.name not in hidden:
            table.add_row(hp.name, repr(defaults[hp.name]), hp.help)
    out.print(table)
    for kind, overrides in spec.defaults_by_data.items():
        out.print(f"defaults on {kind} data: " + ", ".join(f"{k}={v!r}" for k, v in overrides.items()))
    from rich.markup import escape

    if spec.task == "image-to-image":
        out.print(f"loss: the paper's ({spec.defaults().get('loss')}), the only one this model trains with")
    else:
        losses = Table(title="losses (--loss NAME; the paper's settings apply unless you set them)")
        for column in ("loss", "paper", "objective", "settings"):
            losses.add_column(column, overflow="fold")
        for name in registry.losses.names():
            loss = registry.losses.get(name)
            if not accepts_loss(spec, loss):
                continue
            networks = {k: v for k, v in loss.network_defaults.items() if k in model_settings}
            settings = ", ".join(f"{k}={v!r}" for k, v in {**loss.defaults, **networks}.items())
            losses.add_row(name, loss.paper.cite() if loss.paper else "", escape(loss.summary), settings)
        out.print(losses)
    extensions = [registry.extensions.get(name) for name in registry.extensions.names()
                  if applies(registry.extensions.get(name), spec)]
    out.print("extensions (--with NAME):" if extensions else "extensions (--with): none for this model")
    for extension in extensions:
        out.print(f"  {extension.name}: " + escape(extension.summary))
        for hp in extension.hyperparameters:  # its own settings, which --set takes with --with NAME
            out.print(escape(f"    {hp.name} (default {hp.default!r}): {hp.help}"))
    weights = [p for p in registry.pretrained.items.values() if p.model == spec.name]
    if weights:
        out.print("pretrained (--pretrained NAME), with the command that trained each (and how long it took):")
    for pretrained in weights:
        trained = f"; {escape(pretrained.trained_with)}" if pretrained.trained_with else ""
        out.print(f"  {pretrained.name} ({_described(pretrained)}){trained}")


@cli.command(cls=click.Command, short_help="List installed plugins, their distributions and hooks.")
def plugins() -> None:
    """List installed plugins, the distribution that ships each one, and the hooks it implements."""
    from rich.table import Table

    from ganzoo.registry import get_registry

    loaded = get_registry().plugins
    table = Table(title="ganzoo plugins (entry-point group 'ganzoo')")
    for column in ("plugin", "distribution", "version", "hooks"):
        table.add_column(column, overflow="fold")
    for record in loaded.records:
        table.add_row(record.name, record.distribution, record.version, ", ".join(record.hooks))
    out = console()
    out.print(table)
    for name in loaded.disabled:
        out.print(f"plugin {name!r} disabled by GANZOO_DISABLE_PLUGINS")
    report_plugin_failures(out)


@cli.command(cls=click.Command, short_help="List registered datasets (any folder of images works as --data too).")
def datasets() -> None:
    """List registered datasets (any folder of images works too: --data path/to/images)."""
    from rich.table import Table

    from ganzoo.registry import get_registry

    registry = get_registry()
    table = Table(title="ganzoo datasets")
    longest = max((len(name) for name in registry.datasets.names()), default=0)
    table.add_column("dataset", no_wrap=True, min_width=longest)  # whole, to be copied; the summary gives way
    for column in ("kind", "shape", "classes", "summary"):
        table.add_column(column, overflow="fold")
    for name in registry.datasets.names():
        spec = registry.datasets.get(name)
        info = spec.info
        shape = f"{info.channels}x{info.image_size}x{info.image_size}" if info.kind != "vectors" else f"{info.dim}-d"
        table.add_row(name, info.kind, shape, str(info.num_classes or "-"), spec.summary)
    out = console()
    out.print(table)
    metrics = [f"{metric.name} ({', '.join(metric.datasets) or 'any ' + ' or '.join(metric.kinds)})"
               for metric in registry.metrics.items.values()]
    if metrics:  # the scores plugins register, ganzoo's toy scores among them: eval's default on the sets they name
        out.print(f"plugins' metrics for ganzoo eval --metrics NAME (the default on the datasets named): "
                  f"{'; '.join(metrics)}", markup=False)
    report_plugin_failures(out)


def _register_commands() -> None:
    from ganzoo.cli.eval import eval_command
    from ganzoo.cli.sample import sample
    from ganzoo.cli.train import train

    cli.add_command(train)
    cli.add_command(sample)
    from ganzoo.cli.translate import translate

    cli.add_command(translate)
    cli.add_command(eval_command)


_register_commands()
