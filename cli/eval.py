"""``ganzoo eval``: score a generator (or an .npz of samples) against a dataset; table and optional JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import click

from ganzoo.cli.command import GanzooCommand
from ganzoo.cli.options import GivenPath, Seed, given_on_command_line, given_text

DEFAULT_NUM = {"images": 50_000, "vectors": 2_500}


@click.command("eval", cls=GanzooCommand, short_help="Score samples of MODEL (or an .npz) against a dataset: FID, KID, IS, PR, digits, toy, plugins' own.")
@click.argument("model", required=False)
@click.option("--weights", type=GivenPath(path_type=Path), help="a generator.safetensors file, or the run folder holding it")
@click.option("--pretrained", help="name of pretrained weights (see 'ganzoo info MODEL')")
@click.option("--samples", "samples_file", type=GivenPath(dir_okay=False, exists=True, path_type=Path),
              help="score an .npz from 'ganzoo sample' (images uint8 N,C,H,W or samples N,D) instead of a MODEL")
@click.option("--data", required=True, callback=given_text, help="the real dataset: a name from 'ganzoo datasets' or an image folder")
@click.option("--data-root", type=GivenPath(file_okay=False),
              help="where datasets live or are downloaded [default: $GANZOO_DATA, else ~/.cache/ganzoo/data]")
@click.option("--num", type=click.IntRange(min=2), help="samples to generate [default: 50000 images, 2500 points]")
@click.option("--metrics", "metric_names", metavar="LIST",
              help="comma-separated among fid,kid,is,pr,digits,toy and those plugins register [default: the metrics "
                   "registered for --data (toy on ring8 and grid25), else fid,kid,is,pr for images]")
@click.option("--real-num", type=click.IntRange(min=2), help="real images in the reference [default: the whole training split]")
@click.option("--inception-weights", type=GivenPath(dir_okay=False, path_type=Path),
              help="pt_inception-2015-12-05 weights (.pth or .safetensors) [default: $GANZOO_INCEPTION_WEIGHTS, the cache, or a download]")
@click.option("--classifier", type=GivenPath(dir_okay=False, exists=True, path_type=Path),
              help="digit classifier for --metrics digits [default: the shipped MNIST one]")
@click.option("--seed", type=Seed(), default=0, show_default=True, help="noise seed (same samples as 'ganzoo sample --seed')")
@click.option("--batch-size", type=click.IntRange(min=1), default=250, show_default=True, help="samples per forward pass, generating and scoring")
@click.option("--device", help="cpu, cuda, cuda:N, mps or auto [default: auto]")
@click.option("--json", "json_out", type=GivenPath(dir_okay=False, path_type=Path), help="also write the results here")
def eval_command(model: str | None, weights: Path | None, pretrained: str | None, samples_file: Path | None, data: str,
                 data_root: str | None, num: int | None, metric_names: str | None, real_num: int | None,
                 inception_weights: Path | None, classifier: Path | None, seed: int, batch_size: int,
                 device: str | None, json_out: Path | None) -> None:
    """Score MODEL's samples (or --samples FILE) against --data with FID, KID, IS, precision/recall,
    digit-classifier scores, toy mode scores, or the metrics plugins register.

    \b
    ganzoo eval dcgan --pretrained dcgan-mnist --data mnist --metrics digits
    ganzoo eval dcgan --weights W --data cifar10 --inception-weights pt_inception.pth --json scores.json
    ganzoo eval --samples points.npz --data ring8
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from ganzoo import evaluation
    from ganzoo.cli.main import console
    from ganzoo.device import pick_device
    from ganzoo.manifest import generator_file
    from ganzoo.output_guard import refuse_replacing
    from ganzoo.plugin_checks import scored
    from ganzoo.registry import get_dataset, get_registry
    from ganzoo.safefile import check_writable

    device_name = str(pick_device(device))
    dataset = get_dataset(data)
    if samples_file is not None and (model or weights or pretrained or num or given_on_command_line("seed")):
        raise click.UsageError("--samples scores an existing file; drop MODEL, --weights, --pretrained, --num and "
                               "--seed.")
    if json_out is not None:
        read = [samples_file, generator_file(weights) if weights is not None else None, inception_weights, classifier]
        refuse_replacing(json_out, "--json", ".json", read)
        check_writable(json_out, "--json", create=False)
    # Everything that can fail (the generator, the metrics, the feature extractors, the real data) is settled
    # before any sample is generated or featurised: those take minutes at the default --num.
    loaded = samples = None
    if samples_file is not None:
        samples = evaluation.read_samples(samples_file)
        kind, shape = samples.kind, _image_shape(samples.values.shape)
        source = str(samples_file)
    else:
        loaded = _load(model, weights, pretrained, device_name)
        kind, shape = loaded.config["data_kind"], _configured_shape(loaded.config)
        source = f"{model} {pretrained or weights} seed {seed}"
    registered = get_registry().metrics
    if metric_names is not None:
        metrics = evaluation.parse_metrics(metric_names, registered.names())
    else:
        metrics = evaluation.default_metrics(kind, dataset.name, [spec.name for spec in registered.items.values()
                                                                  if dataset.name in spec.datasets and kind in spec.kinds])
    plugin_metrics = [registered.get(name) for name in metrics if name not in evaluation.METRICS]
    _check_kinds([name for name in metrics if name in evaluation.METRICS], kind, dataset.info.kind)
    _check_plugin_metrics(plugin_metrics, kind, dataset.name)
    if real_num is not None and not set(metrics) & set(evaluation.REFERENCED_METRICS):
        *first, last = evaluation.REFERENCED_METRICS
        asked = f"--metrics {','.join(metrics)}" if metric_names is not None else f"the default --metrics {metrics[0]}"
        raise click.UsageError(f"--real-num sets how many real images the {', '.join(first)} and {last} references "
                               f"hold, but {asked} uses none; drop --real-num.")
    if samples is not None and samples.labels is not None and "digits" in metrics:
        evaluation.check_digit_labels(samples_file, samples.labels)
    out = console()
    real_images = _real_images(dataset, data_root, lambda text: out.print(text, style="yellow", markup=False,
                                                                           soft_wrap=True))
    from ganzoo.paths import data_root as data_root_folder
    from ganzoo.resume import recorded_data_name

    key = evaluation.dataset_key(data, data_root_folder(data_root))
    inception = [m for m in metrics if m in evaluation.INCEPTION_METRICS]
    inception_extractor = digits_extractor = None
    if inception:
        from ganzoo.metrics.inception import load_inception

        inception_extractor = load_inception(inception_weights, device_name)
    if "digits" in metrics:
        from ganzoo.metrics.digits import load_digit_features

        digits_extractor = load_digit_features(classifier, device_name)
    referenced = [digits_extractor] if digits_extractor is not None else []  # extractors compared with real data
    if inception_extractor is not None and inception != ["is"]:
        referenced.append(inception_extractor)
    if shape is not None and not all(evaluation.reference_cached(e.name, key, real_num) for e in referenced):
        real_images(*shape)  # a dataset that cannot be had fails here, not after generating every sample
    if any(metric.uses_real for metric in plugin_metrics):
        real_images(*(shape or (None, None)))
    if loaded is not None:
        samples = _generate(loaded, num, seed, batch_size)
    protocol: dict[str, Any] = {"samples": len(samples.values), "source": source, "dataset": data, "split": "train"}
    if samples.kind == "images":
        protocol["resolution"] = list(samples.values.shape[1:])

    def load_real() -> Any:
        return real_images(*_image_shape(samples.values.shape))

    results: dict[str, Any] = {}
    references: list[evaluation.Reference] = []  # their notes are shown with the scores
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=out, transient=True) as progress:
        if inception_extractor is not None:
            fake = evaluation.extract(inception_extractor, samples.values, batch_size, progress, "Inception features")
            real = None
            if inception != ["is"]:
                real = evaluation.reference(inception_extractor, key, load_real, batch_size, real_num, progress,
                                            say=lambda text: progress.console.print(text, markup=False))
                references.append(real)
                protocol.update(inception_reference=real.count, inception_reference_cached=real.cached)
            protocol["inception"] = inception_extractor.name
            results.update(evaluation.inception_scores(inception, fake, real))
        if digits_extractor is not None:
            fake = evaluation.extract(digits_extractor, samples.values, batch_size, progress, "digit features")
            real = evaluation.reference(digits_extractor, key, load_real, batch_size, real_num, progress,
                                        say=lambda text: progress.console.print(text, markup=False))
            references.append(real)
            protocol.update(digits_classifier=digits_extractor.name, digits_reference=real.count,
                            digits_reference_cached=real.cached)
            results.update(evaluation.digit_scores(fake, real, samples.labels, samples.class_names))
        for metric in plugin_metrics:  # ganzoo's own toy scores among them
            real = real_images(*(_image_shape(samples.values.shape) or (None, None))) if metric.uses_real else None
            results.update(scored(metric, samples, real, dataset.name, set(results)))
            protocol.setdefault("plugin_metrics", {})[metric.name] = _provenance(metric.plugin)
    notes = [real.note for real in references if real.note]
    classes_note = evaluation.digit_classes_note(samples) if digits_extractor is not None else None
    if classes_note:
        notes.append(classes_note)
    trained_on = loaded.metadata.get("dataset") if loaded is not None else None
    if trained_on and recorded_data_name(trained_on) != recorded_data_name(data):
        notes.append(f"the generator was trained on {trained_on}, not on {data}, which it is scored against")
    notes += [f"--real-num {real_num} is more than the {real.count} training images of {data}; the reference holds "
              f"all of them" for real in references if real_num is not None and real.count < real_num]
    for note in dict.fromkeys(notes):
        out.print(f"note: {note}", style="yellow", markup=False)
    _print(out, results, protocol)
    if json_out is not None:
        _write_json(json_out, {"metrics": results, "protocol": protocol})
        out.print(f"wrote {json_out}")


def _write_json(path: Path, document: dict[str, Any]) -> None:
    """Write the --json results atomically; a failure after the early check (a full disk) is one sentence too."""
    from ganzoo.safefile import atomic_write_bytes, cannot_write

    try:
        atomic_write_bytes(path, json.dumps(document, indent=2).encode())
    except OSError as exc:
        raise cannot_write(path, exc, "--json") from None


def _load(model: str | None, weights: Path | None, pretrained: str | None, device: str) -> Any:
    """The generator to score, loaded but not yet run (:func:`_generate` runs it once the rest is settled)."""
    from ganzoo.cli.main import refuse_translator
    from ganzoo.manifest import weights_path
    from ganzoo.weights import load_generator

    if model is None:
        raise click.UsageError("Give a MODEL with --weights or --pretrained, or --samples FILE.")
    refuse_translator(model, "ganzoo eval", weights)
    return load_generator(weights_path(model, weights, pretrained), model, device)


def _generate(loaded: Any, num: int | None, seed: int, batch_size: int) -> Any:
    """Samples from the generator, ``batch_size`` at a time, as ``ganzoo sample --num N --seed S --out x.npz`` would
    write them."""
    from ganzoo import sampling
    from ganzoo.evaluation import Samples

    kind = loaded.config["data_kind"]
    total = num or DEFAULT_NUM.get(kind, DEFAULT_NUM["vectors"])
    labels = sampling.requested_labels(loaded.model, loaded.config, total)
    values = sampling.generate(loaded.model, loaded.config, loaded.module, total, seed=seed, batch_size=batch_size,
                               labels=labels)
    values = sampling.to_uint8(values).cpu() if kind == "images" else values.float().cpu()
    names = loaded.config.get("class_names")
    return Samples(kind, values, None if labels is None else labels.numpy(),
                   tuple(map(str, names)) if labels is not None and names else None)


def _image_shape(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """(channels, size) of samples of ``shape`` (N, C, H, W), the resolution the real images are loaded at."""
    return (int(shape[1]), int(shape[-1])) if len(shape) == 4 else None


def _configured_shape(config: dict[str, Any]) -> tuple[int, int] | None:
    """(channels, size) the generator of ``config`` makes, known before it runs; ``None`` for points."""
    if config.get("data_kind") != "images" or "channels" not in config or "image_size" not in config:
        return None
    return int(config["channels"]), int(config["image_size"])


def _real_images(dataset: Any, data_root: str | None, say: Callable[[str], None]) -> Any:
    """``load(channels, size)``: the dataset's training images at that resolution (a set of points: its points, with
    ``None, None``), loaded once and kept, so the early check that the data can be had (before generating) is also
    the load the reference uses. Skipped files and the load's notes (a folder's training split, its cache) are told
    through ``say``, as training tells them."""
    from functools import lru_cache

    from ganzoo.data.decoding import skipped_files_told
    from ganzoo.paths import data_root as root
    from ganzoo.plugin_checks import loaded

    @lru_cache(maxsize=1)
    def load(channels: int | None, size: int | None) -> Any:
        asked = {"data_kind": dataset.info.kind, "image_size": size, "channels": channels}
        with skipped_files_told(say):
            data = loaded(dataset, root(data_root), asked)
        for note in getattr(data, "notes", ()):
            say(note)
        return data.tensors["real"]

    return load


def _check_plugin_metrics(metrics: list[Any], samples_kind: str, dataset: str) -> None:
    """Refuse a plugin's metric asked for samples it does not score, or against a dataset it does not know."""
    for metric in metrics:
        if samples_kind not in metric.kinds:
            raise click.UsageError(f"--metrics {metric.name} (of plugin {metric.plugin!r}) scores "
                                   f"{' and '.join(metric.kinds)}, not {samples_kind}; choose another metric.")
        if metric.datasets and dataset not in metric.datasets:
            raise click.UsageError(f"--metrics {metric.name} (of plugin {metric.plugin!r}) scores samples against "
                                   f"{', '.join(metric.datasets)} only, not {dataset}; give one of those as --data.")


def _provenance(plugin: str) -> str:
    """``ganzoo-spiral 1.2 (plugin 'spiral')``: what computed a plugin's scores, for ``--json`` to record."""
    from ganzoo.plugin_manager import get_plugins

    record = next((r for r in get_plugins().records if r.name == plugin), None)
    return f"{record.distribution} {record.version} (plugin {plugin!r})" if record else f"plugin {plugin!r}"


def _check_kinds(metrics: list[str], samples_kind: str, data_kind: str) -> None:
    """Refuse samples of another kind than the data, and points asked for any of eval's own ``metrics``, which score
    images (the toy scores, for points, are a plugin's metric, checked by :func:`_check_plugin_metrics`)."""
    if samples_kind != data_kind:
        raise click.UsageError(f"The samples are {samples_kind} but --data is a dataset of {data_kind}; compare like with like.")
    if samples_kind == "vectors" and metrics:
        raise click.UsageError("Point samples take only --metrics toy (on ring8 or grid25) or a plugin's metric for "
                               "points; fid, kid, is, pr and digits need images.")


def _print(out: Any, results: dict[str, Any], protocol: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"ganzoo eval: {protocol['samples']} samples vs {protocol['dataset']} ({protocol['split']})")
    table.add_column("metric")
    table.add_column("value", overflow="fold")
    for name, value in results.items():
        if isinstance(value, float):
            text = f"{value:.4f}"
        elif isinstance(value, list):
            text = " ".join(f"{v:.3f}" for v in value)
        else:
            text = str(value)
        table.add_row(name, text)
    out.print(table)
