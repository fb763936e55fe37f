"""``ganzoo train``: train a model on a dataset, resumable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import click

from ganzoo.cli.command import GanzooCommand
from ganzoo.cli.options import GivenPath, given_text
from ganzoo.errors import shell_word


@click.command(cls=GanzooCommand, short_help="Train MODEL on a dataset (pictures, weights, checkpoints in --out).")
@click.argument("model")
@click.option("--data", "data", callback=given_text, help="dataset name (see 'ganzoo datasets') or a folder of images; default: the model's")
@click.option("--data-a", callback=given_text, help="with --data-b: a folder of domain-A images (unpaired models such as cyclegan)")
@click.option("--data-b", callback=given_text, help="with --data-a: a folder of domain-B images")
@click.option("--data-root", type=GivenPath(file_okay=False), help="where datasets live or are downloaded [default: $GANZOO_DATA, else ~/.cache/ganzoo/data]")
@click.option("--out", type=GivenPath(file_okay=False, path_type=Path), help="run folder [default: runs/MODEL-DATA]")
@click.option("--epochs", type=int, help="passes over the data")
@click.option("--batch-size", type=int, help="samples per step")
@click.option("--lr", type=float, help="learning rate of both networks")
@click.option("--image-size", type=int, help="side of generated images (default: the model's, as 'ganzoo info MODEL' shows, else the dataset's)")
@click.option("--d-steps", type=int, help="discriminator steps per generator step")
@click.option("--loss", help="adversarial loss (see 'ganzoo info MODEL')")
@click.option("--with", "extensions", multiple=True, help="switch on an extension, e.g. --with spectral-norm (repeatable)")
@click.option("--seed", type=int, help="random seed (same seed, same result on CPU)")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="any hyperparameter from 'ganzoo info MODEL'")
@click.option("--device", help="cpu, cuda, cuda:N, mps or auto [default: auto]")
@click.option("--resume", "resume", type=GivenPath(file_okay=False, path_type=Path),
              help="continue the run in this folder from its last checkpoint")
@click.option("--overwrite", is_flag=True, help="replace an existing run in --out instead of refusing")
@click.option("--no-progress", is_flag=True, help="no progress bar or progress lines (logs still go to OUT/metrics.jsonl)")
@click.option("--strict-data", is_flag=True, help="stop at an unreadable image file instead of skipping it with a warning")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), help="autocast precision [default: fp32]")
@click.option("--channels-last", is_flag=True, default=None, help="channels-last memory layout for networks and batches")
@click.option("--compile", "compile_", is_flag=True, default=None, help="torch.compile the networks")
@click.option("--fused-adam/--no-fused-adam", default=None,
              help="fused Adam kernel, on by default on the CPU and CUDA; --no-fused-adam uses torch's foreach Adam")
@click.option("--tf32", is_flag=True, default=None, help="allow TF32 math on CUDA")
@click.option("--cuda-graphs", is_flag=True, default=None,
              help="replay each training stage as a CUDA graph (gan and dcgan with standard losses)")
@click.option("--fast", is_flag=True, default=None,
              help="bf16, fused Adam and TF32 (which only CUDA uses); on CUDA also torch.compile, CUDA graphs and a 4x "
                   "batch at 2x lr; on the CPU reuse_fake (options you set win)")
@click.option("--devices", type=click.IntRange(min=1),
              help="train on N processes (GPUs, or CPU processes) through torchrun; --batch-size stays the global batch")
@click.option("--sync-bn", is_flag=True, default=None, help="with several CUDA processes: SyncBatchNorm over the whole batch")
def train(model: str, data: str | None, data_a: str | None, data_b: str | None, data_root: str | None,
          out: Path | None, epochs: int | None,
          batch_size: int | None, lr: float | None, image_size: int | None, d_steps: int | None, loss: str | None,
          extensions: tuple[str, ...], seed: int | None, settings: tuple[str, ...], device: str | None,
          resume: Path | None, overwrite: bool, no_progress: bool, strict_data: bool, precision: str | None,
          channels_last: bool | None, compile_: bool | None, fused_adam: bool | None, tf32: bool | None,
          cuda_graphs: bool | None, fast: bool | None,
          devices: int | None, sync_bn: bool | None) -> None:
    """Train MODEL; pictures, metrics, weights and checkpoints go to --out after every epoch.

    Ctrl-C (or SIGTERM) saves the current position and exits with status 130; --resume OUT continues exactly.
    --devices N runs the same command as N processes under torchrun (or start it with torchrun yourself).
    """
    from ganzoo.cli.main import console
    from ganzoo.config import parse_overrides
    from ganzoo.distributed import is_main
    from ganzoo.engine import TrainingInterrupted, TrainRequest
    from ganzoo.engine import train as run_training
    from ganzoo.launcher import interrupted_status
    from ganzoo.registry import get_model, get_registry

    spec = get_model(model)
    registry = get_registry()
    if loss is not None:
        registry.losses.get(loss)
    for name in extensions:
        registry.extensions.get(name)
    overrides = parse_overrides(settings)
    named = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "image_size": image_size, "d_steps": d_steps,
             "loss": loss, "seed": seed, "with": list(extensions) or None, "precision": precision,
             "channels_last": channels_last, "compile": compile_, "fused_adam": fused_adam, "tf32": tf32,
             "cuda_graphs": cuda_graphs, "fast": fast, "sync_bn": sync_bn}
    given = {key: value for key, value in named.items() if value is not None}
    _refuse_set_twice(overrides, given)
    overrides.update(given)
    if resume is not None and out is not None and Path(out) != Path(resume):
        raise click.UsageError("--resume names the run folder to continue; drop --out or give the same folder.")
    if resume is not None and overwrite:
        raise click.UsageError("--resume continues the run in its folder and --overwrite replaces it with a new one; "
                               "pass only one of them.")
    if data_a is not None or data_b is not None:  # two folders: recorded as the dataset "A | B" (absolute paths)
        from ganzoo.data.translation import two_folder_data

        data = two_folder_data(spec, data, data_a, data_b)
        out = out or Path("runs") / f"{spec.name}-{_named(data_a or '')}2{_named(data_b or '')}"
    folder = resume or out or Path("runs") / f"{spec.name}-{_named(data or spec.default_dataset)}"
    if devices is not None and devices > 1:
        _check_before_launch(spec, data, overrides, devices, device, resume, folder)
        _relaunch(devices, lambda: _resume_advice(spec.name, folder, devices))
    out_console = console()
    request = TrainRequest(model=spec.name, out=folder, data=data, overrides=overrides, data_root=data_root,
                           device=device, resume=resume is not None, overwrite=overwrite, progress=not no_progress,
                           strict_data=strict_data)
    try:
        result = run_training(request, out_console)
    except TrainingInterrupted as stop:
        if is_main():  # under torchrun every process stops at the same step; process 0 says where
            out_console.print(f"{stop}; continue with: ganzoo train {spec.name} --resume {shell_word(str(folder))}"
                              f"{_as_many_processes()}", style="yellow", soft_wrap=True, markup=False)
        raise click.exceptions.Exit(interrupted_status()) from None  # 130, or 0 and the --devices launcher says 130
    if not is_main():  # under torchrun only process 0 reports
        return
    epochs = f"{result.epochs} epoch{'s' if result.epochs != 1 else ''}"
    from rich.markup import escape

    # soft_wrap: a path or command cut at the terminal's width would no longer paste whole
    steps = f"{result.steps} step{'s' if result.steps != 1 else ''}"
    out_console.print(f"[green]done[/green]: {epochs}, {steps}; files in {escape(str(result.out))}/",
                      soft_wrap=True)
    weights = shell_word(str(result.generator_path))  # pasted whole even with spaces in the path
    lines = [f"  generator: {result.generator_path}", f"  pictures:  {result.out}/samples/  losses: {result.out}/losses.png"]
    if spec.task == "image-to-image":
        lines.append(f"  translate: ganzoo translate {spec.name} --weights {weights} --input IMAGES --out DIR")
    else:
        lines.append(f"  sample:    ganzoo sample {spec.name} --weights {weights} --num 64 --out grid.png")
    for line in lines:
        out_console.print(line, soft_wrap=True, markup=False)


def _refuse_set_twice(settings: dict[str, Any], options: dict[str, Any]) -> None:
    """Refuse a hyperparameter given both as its own option and through ``--set`` with another value: one of
    them would be ignored without a word (``--batch-size 4 --set batch_size=8``)."""
    for key, value in options.items():
        if key in settings and settings[key] != value:
            option = f"--{key.replace('_', '-')}"
            if isinstance(value, list):
                option = " ".join(f"{option} {item}" for item in value)
            elif value is False:  # the off switch of a --x/--no-x pair (--no-fused-adam)
                option = f"--no-{key.replace('_', '-')}"
            elif not isinstance(value, bool):
                option = f"{option} {value}"
            written = settings[key]
            written = f"[{','.join(map(str, written))}]" if isinstance(written, list) else written
            raise click.UsageError(f"{option} and --set {key}={written} give {key} two values; give it once.")


def _check_before_launch(spec: Any, data: str | None, overrides: dict[str, Any], devices: int, device: str | None,
                         resume: Path | None, out: Path) -> None:
    """Refuse settings, data names, batch sizes, --sync-bn off CUDA, an --out inside the data and a run that cannot
    resume as the processes would, before torchrun starts them: one sentence here, rather than one per process
    inside torchrun's failure report. A run an interrupted --overwrite set aside is put back first."""
    from ganzoo.config import refuse_pack_over_batch, resolve_config
    from ganzoo.distributed import SYNC_BN_NEEDS_CUDA, split_batch, uses_cuda
    from ganzoo.run_data import dataset_for, refuse_out_inside_data
    from ganzoo.errors import GanzooError
    from ganzoo.resume import read_resume_point, recorded_data_name
    from ganzoo.run_folder import recover_replaced_run

    recovered = recover_replaced_run(out, "--resume" if resume is not None else "--out")  # before the processes look
    if recovered:
        from ganzoo.cli.main import console

        console().print(recovered, style="yellow", markup=False, soft_wrap=True)
    if resume is not None:
        point = read_resume_point(resume, spec.name, data, overrides)
        config, scaled_later = point.config, False  # the saved batch is the one the run trains with
    else:
        config = resolve_config(spec, dataset_for(spec, data or spec.default_dataset).info, overrides)
        refuse_out_inside_data(out, recorded_data_name(data or spec.default_dataset))
        # --fast on CUDA may scale a batch the user did not set (ganzoo.speed.expand_fast): the processes check that one
        scaled_later = bool(config.get("fast")) and "batch_size" not in overrides and uses_cuda(device)
    if not scaled_later:
        refuse_pack_over_batch(config, split_batch(int(config["batch_size"]), devices), devices)
    if config.get("sync_bn") and not uses_cuda(device):
        raise GanzooError(SYNC_BN_NEEDS_CUDA)


def _relaunch(devices: int, after_failure: Callable[[], str | None]) -> None:
    """Run this same ``ganzoo train`` command, without --devices, as ``devices`` torchrun processes; exit with its
    status (``after_failure``: what to print when a process failed)."""
    from ganzoo.distributed import launched
    from ganzoo.launcher import launch

    if launched():
        raise click.UsageError("--devices starts torchrun itself; drop it when the command already runs under torchrun.")
    ctx = click.get_current_context()
    args = [str(ctx.info_name)]
    for param in ctx.command.params:
        value = ctx.params[param.name]
        if value is False and getattr(param, "secondary_opts", None):  # --no-fused-adam: an explicit "off"
            args.append(param.secondary_opts[0])
            continue
        if param.name == "devices" or value is None or value is False or value == ():
            continue
        if isinstance(param, click.Argument):
            args.append(str(value))
        elif getattr(param, "is_flag", False):
            args.append(param.opts[0])
        else:
            args += [item for entry in (value if param.multiple else (value,)) for item in (param.opts[0], str(entry))]
    raise click.exceptions.Exit(launch(devices, args, after_failure))


def _resume_advice(model: str, folder: Path, devices: int) -> str | None:
    """How a --devices run whose process failed goes on: from its last checkpoint, when it saved one."""
    from ganzoo.checkpoint import list_checkpoints

    if not list_checkpoints(folder):
        return None
    return (f"The run keeps its last checkpoint; continue with: ganzoo train {model} --resume "
            f"{shell_word(str(folder))} --devices {devices}")


def _as_many_processes() -> str:
    """What the resume command needs to go on with the processes this run had: ``--devices N`` for a run that
    --devices started, a word on torchrun for one started under it; nothing for one process. A resume on
    another number of processes is not bit-exact."""
    from ganzoo.launcher import started_by_launcher

    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if processes < 2:
        return ""
    if started_by_launcher():
        return f" --devices {processes}"
    return f" (under torchrun with {processes} processes, as this run was)"


def _named(data: str) -> str:
    """The name a dataset or folder gives the default run folder: ``mnist``, or the folder's own name (``.`` is the
    current folder's)."""
    return Path(os.path.abspath(os.path.expanduser(data))).name or "data"
