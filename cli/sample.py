"""``ganzoo sample``: draw samples from trained or pretrained weights into a PNG or an .npz file."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("model")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), help="a generator.safetensors file")
@click.option("--pretrained", help="name of pretrained weights (see 'ganzoo info MODEL')")
@click.option("--num", type=click.IntRange(min=1), default=64, show_default=True, help="how many samples")
@click.option("--seed", type=int, default=0, show_default=True, help="noise seed")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True, help="samples per forward pass")
@click.option("--device", help="cpu, cuda, cuda:N, mps or auto [default: auto]")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=".png for a picture, .npz for arrays (images uint8 N,C,H,W or samples float N,D)")
def sample(model: str, weights: Path | None, pretrained: str | None, num: int, seed: int, batch_size: int,
           device: str | None, out: Path) -> None:
    """Generate NUM samples from MODEL's generator and write them to OUT."""
    from ganzoo import sampling
    from ganzoo.cli.main import console
    from ganzoo.device import pick_device
    from ganzoo.manifest import resolve
    from ganzoo.registry import get_model, get_registry
    from ganzoo.weights import load_generator

    get_model(model)
    if (weights is None) == (pretrained is None):
        raise click.UsageError("Give exactly one of --weights FILE or --pretrained NAME.")
    if out.suffix.lower() not in sampling.SAMPLE_SUFFIXES:
        raise click.UsageError(f"--out must end in .png or .npz, got {out.name!r}.")
    if pretrained is not None:
        entry = get_registry().pretrained.get(pretrained)
        if entry.model != model:
            raise click.UsageError(f"Pretrained weights {pretrained!r} are for model {entry.model!r}, not {model!r}.")
        weights = resolve(entry)
    loaded = load_generator(weights, model, str(pick_device(device)))
    samples = sampling.generate(loaded.model, loaded.config, loaded.module, num, seed=seed, batch_size=batch_size)
    sampling.write_samples(out, samples, loaded.config["data_kind"])
    console().print(f"wrote {num} samples of {model} to {out}")
