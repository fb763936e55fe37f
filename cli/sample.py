"""``ganzoo sample``: draw samples from trained or pretrained weights into a PNG or an .npz file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ganzoo.cli.command import GanzooCommand
from ganzoo.cli.options import GivenPath, Seed, given_on_command_line
from ganzoo.rejection import BURN_IN, DEFAULT_QUANTILE

DEFAULT_NUM = 64


@click.command(cls=GanzooCommand, short_help="Generate samples from MODEL's generator into a PNG grid or an .npz.")
@click.argument("model")
@click.option("--weights", type=GivenPath(path_type=Path), help="a generator.safetensors file, or the run folder holding it")
@click.option("--pretrained", help="name of pretrained weights (see 'ganzoo info MODEL')")
@click.option("--num", type=click.IntRange(min=1), help=f"how many samples [default: {DEFAULT_NUM}]")
@click.option("--class", "wanted", metavar="CLASS",
              help="conditional models: generate only this class, by index or name (e.g. 7, or sneaker)")
@click.option("--per-class", type=click.IntRange(min=1), metavar="N",
              help="conditional models: N samples of every class, one grid row per class, named at its left")
@click.option("--seed", type=Seed(), default=0, show_default=True, help="noise seed")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True, help="samples per forward pass")
@click.option("--device", help="cpu, cuda, cuda:N, mps or auto [default: auto]")
@click.option("--drs", is_flag=True,
              help="discriminator rejection sampling (Azadi et al. 2019): keep the samples D rates as likely real")
@click.option("--drs-quantile", type=click.FloatRange(0.0, 1.0, max_open=True), default=DEFAULT_QUANTILE,
              show_default=True, help=f"with --drs: gamma is this quantile of the acceptance logits over {BURN_IN:,} candidates; "
                   "higher keeps fewer, more typical samples")
@click.option("--discriminator", type=GivenPath(dir_okay=False, path_type=Path),
              help="with --drs: the discriminator file [default: discriminator.safetensors beside --weights]")
@click.option("--out", type=GivenPath(path_type=Path), required=True,
              help=".png for a picture, .npz for arrays (images uint8 N,C,H,W or samples float N,D; "
                   "labels int64 N and their class_names for conditional models), or a folder name without an "
                   "ending for one PNG per sample (000000.png..., as FID tools read)")
def sample(model: str, weights: Path | None, pretrained: str | None, num: int | None, wanted: str | None,
           per_class: int | None, seed: int, batch_size: int, device: str | None, drs: bool, drs_quantile: float,
           discriminator: Path | None, out: Path) -> None:
    """Generate NUM samples from MODEL's generator and write them to OUT.

    \b
    ganzoo sample cgan --weights W --class 7 --num 64 --out sevens.png
    ganzoo sample acgan --weights W --per-class 10 --out grid.png
    ganzoo sample gan --weights RUN/generator.safetensors --drs --num 2500 --out kept.npz
    """
    from ganzoo import sampling
    from ganzoo.cli.main import console, refuse_translator
    from ganzoo.device import pick_device
    from ganzoo.manifest import weights_path
    from ganzoo.output_guard import refuse_replacing
    from ganzoo.registry import get_model
    from ganzoo.safefile import check_writable
    from ganzoo.weights import DISCRIMINATOR_FILE, load_generator

    refuse_translator(model, "ganzoo sample", weights)
    spec = get_model(model)
    if out.name.lower() in sampling.SAMPLE_SUFFIXES:  # Path(".png").suffix is "": a hidden file with no ending
        raise click.UsageError(f"--out {out.name!r} is an ending without a file name; give a name before it, as in "
                               f"--out samples{out.name.lower()}.")
    if out.suffix and out.suffix.lower() not in sampling.SAMPLE_SUFFIXES:
        raise click.UsageError(f"--out must end in .png or .npz, or be a folder name without an ending (one picture "
                               f"per sample), got {out.name!r}.")
    if not out.suffix and out.is_file():
        raise click.UsageError(f"--out {out} is a file without an ending; give a .png or .npz name, or a folder for "
                               "one picture per sample.")
    if (wanted is not None or per_class is not None) and not sampling.is_conditional(spec):
        raise click.UsageError(f"Model {model!r} is unconditional; --class and --per-class need a conditional model such as cgan or acgan.")
    if wanted is not None and per_class is not None:
        raise click.UsageError("Give --class or --per-class, not both.")
    if per_class is not None and num is not None:
        raise click.UsageError("--per-class N sets the number of samples (N per class); drop --num.")
    if discriminator is not None and not drs:
        raise click.UsageError("--discriminator is read only for rejection sampling; add --drs or drop it.")
    if given_on_command_line("drs_quantile") and not drs:
        raise click.UsageError("--drs-quantile is read only for rejection sampling; add --drs or drop it.")
    if drs and pretrained:  # a discriminator from elsewhere was not trained with this generator: load refuses it
        raise click.UsageError("Pretrained weights ship the generator only, and --drs needs the discriminator trained "
                               "with it; drop --drs, or use --weights of a 'ganzoo train' run, whose folder holds both.")
    path = weights_path(model, weights, pretrained)
    critic_file = (discriminator or path.parent / DISCRIMINATOR_FILE) if drs else None
    if out.suffix:
        refuse_replacing(out, "--out", out.suffix.lower(), [path, critic_file])
    loaded = load_generator(path, model, str(pick_device(device)))
    if not out.suffix:
        _check_picture_folder(out, loaded, path)
    if critic_file is not None:
        _sample_with_rejection(loaded, critic_file, num or DEFAULT_NUM, seed, batch_size, drs_quantile, out)
        return
    labels = sampling.requested_labels(loaded.model, loaded.config, num or DEFAULT_NUM, wanted, per_class)
    total = len(labels) if labels is not None else num or DEFAULT_NUM
    check_writable(out, "--out", folder=not out.suffix, create=False)
    samples = sampling.generate(loaded.model, loaded.config, loaded.module, total, seed=seed, batch_size=batch_size,
                                labels=labels)
    names = sampling.class_names(loaded.config) if labels is not None else None
    rows = sampling.legend_names(loaded.config) if per_class is not None else None  # a .png grid names its rows
    sampling.write_samples(out, samples, loaded.config["data_kind"], labels=labels, nrow=per_class, names=names,
                           row_names=rows, **_points_picture(loaded, out, total))
    what = ""
    if wanted is not None:
        what = f" of class {sampling.class_names(loaded.config)[int(labels[0])]}"
    elif per_class is not None:
        rows = ", one row per class" if out.suffix.lower() == ".png" else ""  # an .npz has no rows
        what = f" ({per_class} per class{rows})"
    console().print(f"wrote {total} sample{'s' if total != 1 else ''} of {model}{what} to {_written_to(out)}")


def _written_to(out: Path) -> str:
    """Where the samples went, as the closing line says it: the file, or the folder of one picture each."""
    return str(out) if out.suffix else f"{out}/ (one PNG each)"


def _check_picture_folder(out: Path, loaded: Any, weights: Path) -> None:
    """Refuse a folder ``out`` for one picture per sample that cannot take them: a model of points, or a run folder
    (whose files are no samples), or one holding other files than an earlier draw's pictures, which are replaced
    as a .png or .npz of samples is (all of them: a smaller draw leaves none of a larger one's behind)."""
    from ganzoo.errors import GanzooError
    from ganzoo.run_folder import run_results
    from ganzoo.sampling import earlier_sample_files

    if loaded.config["data_kind"] != "images":
        raise GanzooError(f"Model {loaded.model.name!r} makes points, not pictures, so --out {out} (a folder of one "
                          "picture per sample) cannot hold them; write them to a .npz file or a .png plot.")
    if run_results(out) or out.resolve() == weights.parent.resolve():
        raise GanzooError(f"--out {out} holds a training run; give the samples a folder of their own.")
    others = sorted(set(out.iterdir()) - set(earlier_sample_files(out))) if out.is_dir() else []
    if others:
        raise GanzooError(f"--out {out} holds other files than pictures 'ganzoo sample' wrote (first: {others[0].name}), "
                          "which the samples must not mix with; give them an empty or new folder.")


def _points_picture(loaded: Any, out: Path, num: int) -> dict[str, Any]:
    """For a picture of points: the real points of the generated set the generator learned (as the pictures of its
    training show them, up to as many as the samples), and a title naming model and set; nothing otherwise."""
    from ganzoo import sampling

    if loaded.config["data_kind"] != "vectors" or out.suffix.lower() != ".png":
        return {}
    dataset = loaded.metadata.get("dataset")
    real = sampling.generated_reference(dataset, num)
    title = f"{num} samples of {loaded.model.name}" + (f" on {dataset}" if real is not None else "")
    return {"real": real, "title": title}


def _sample_with_rejection(loaded: Any, discriminator: Path, num: int, seed: int, batch_size: int, quantile: float,
                           out: Path) -> None:
    """``ganzoo sample --drs``: NUM samples kept by discriminator rejection sampling, and the share it kept."""
    from ganzoo import rejection, sampling
    from ganzoo.cli.main import console
    from ganzoo.errors import GanzooError
    from ganzoo.safefile import check_writable
    from ganzoo.weights import load_discriminator

    reason = rejection.refusal_reason(loaded.model, loaded.config)
    if reason:
        raise GanzooError(reason)
    device = next(loaded.module.parameters()).device
    critic = load_discriminator(discriminator, loaded, str(device))
    check_writable(out, "--out", folder=not out.suffix, create=False)
    result = rejection.rejection_sample(loaded.model, loaded.config, loaded.module, critic, num, seed=seed,
                                        batch_size=batch_size, quantile=quantile)
    sampling.write_samples(out, result.samples, loaded.config["data_kind"], **_points_picture(loaded, out, num))
    console().print(f"wrote {num} sample{'s' if num != 1 else ''} of {loaded.model.name} to {_written_to(out)}: rejection sampling kept "
                    f"{100 * result.acceptance:.1f} % of {result.candidates} candidates (quantile {quantile})")
