"""``ganzoo translate``: run an image-to-image generator (pix2pix, CycleGAN) over an image or a folder."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from ganzoo.cli.command import GanzooCommand
from ganzoo.cli.options import GivenPath


def read_picture(source: Path) -> Any:
    """``source`` decoded as an RGB PIL image; an unreadable file raises whatever PIL raises, which the caller
    skips."""
    from PIL import Image

    from ganzoo.data.folder import upright_in_mode

    with Image.open(source) as image:
        image.load()
        return upright_in_mode(image, 3)


def translate_picture(module: Any, rgb: Any, target: Path, size: int, direction: str | None,
                      device: str, pair_side: str | None = None) -> tuple[int, int]:
    """Translate one RGB picture: resized to ``size`` x ``size``, translated, resized back to its own size, which
    it returns as ``(width, height)``, and written to ``target``. With ``pair_side`` ("A" or "B") the picture is an
    A|B pair: that half is translated, and the written picture is that half, its translation and the other half
    side by side (input | output | target).

    A generator that cannot take ``size`` (its error a RuntimeError or ValueError), or a ``target`` that cannot be
    written, raises :class:`GanzooError`, since every later image would fail the same way.
    """
    from PIL import Image

    from ganzoo.data.translation import pair_halves
    from ganzoo.safefile import atomic_target, cannot_write

    size_of_input = rgb.size
    if pair_side is not None:
        source, other = pair_halves(rgb)[::1 if pair_side == "A" else -1]
        picture = Image.new("RGB", (3 * source.width, source.height))
        for index, part in enumerate((source, _translated(module, source, size, direction, device), other)):
            picture.paste(part.resize(source.size, Image.Resampling.BICUBIC), (index * source.width, 0))
    else:
        picture = _translated(module, rgb, size, direction, device)
    try:  # through a temporary file, so a file replaced with --overwrite is never left half-written
        with atomic_target(target) as temporary:
            file_format = Image.registered_extensions().get(target.suffix.lower())
            quality = {"quality": 95} if file_format == "JPEG" else {}  # PIL's default 75 blurs fine texture
            picture.save(temporary, format=file_format, **quality)
    except OSError as exc:
        raise cannot_write(target, exc, "--out", folder=True) from None
    return size_of_input


def _translated(module: Any, rgb: Any, size: int, direction: str | None, device: str) -> Any:
    """``rgb`` resized to ``size`` x ``size``, translated, and resized back to its own size (a PIL image)."""
    import numpy as np
    import torch
    from PIL import Image

    from ganzoo.errors import GanzooError
    from ganzoo.out_of_memory import is_out_of_memory

    width, height = rgb.size
    array = np.asarray(rgb.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    x = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).div(127.5).sub(1).to(device)
    try:
        with torch.inference_mode():
            y = module.translate(x, direction)
    except (RuntimeError, ValueError) as exc:  # a side the network's down/up-sampling cannot take back to itself
        if is_out_of_memory(exc):  # too large for the device: the CLI says so in its own sentence
            raise
        raise GanzooError(f"The generator cannot translate {size}x{size} images ({str(exc).splitlines()[0]}); "
                          f"drop --image-size or use its training size.") from None
    out = y[0].add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(out, "RGB").resize((width, height), Image.Resampling.BICUBIC)


@contextmanager
def translation_progress(total: int) -> Iterator[tuple[Any, Callable[[], None]]]:
    """A bar over the ``total`` images (shown on a terminal, gone when done) and the call that advances it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from ganzoo.cli.main import console

    out = console()
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=out, transient=True, disable=not out.is_terminal) as progress:
        task = progress.add_task("translating", total=total)
        yield progress, lambda: progress.advance(task)


def input_side(config: dict[str, Any], direction: str | None) -> str:
    """The side ("A" or "B") a generator translates from: ``direction``, else the one it was trained in."""
    return "B" if (direction or config.get("direction")) == "BtoA" else "A"


def pair_note(config: dict[str, Any], sizes: list[tuple[int, int]]) -> str | None:
    """A note when a model trained on A|B pairs was given such pairs to translate whole: it takes one side's
    pictures alone, so a whole pair, squeezed into its square input, comes out as nothing useful (and nothing
    failed)."""
    from ganzoo.data.translation import is_pair_shaped

    pairs = sum(is_pair_shaped(width, height) for width, height in sizes)
    if config.get("data_kind") != "paired" or not pairs:
        return None
    side = input_side(config, None)
    return (f"note: {pairs} of the {len(sizes)} translated image(s) look like A|B pairs (twice as wide as high, as "
            f"pix2pix trains on); translate takes {side} pictures alone, so each was translated whole: pass "
            f"--from-pairs to translate their {side} halves (written beside the translation and the other half), or "
            f"give it the {side} halves.")


def check_image_size(loaded: Any, size: int, direction: str | None, device: str) -> None:
    """Refuse an ``--image-size`` that training this generator would refuse, in the plugin's own sentence, or one
    whose translation cannot fit in ``device``'s free memory (known for the CPU and CUDA), before any image is read: a side the network cannot
    take back to itself (a U-Net's 48) otherwise fails deep in torch, and a side far too large (25600 for 256) gets
    the process killed by the system rather than an error.

    The rule lives in the plugin's build hook (pix2pix: a power-of-two side; CycleGAN: a multiple of 4), so the
    network is built again for ``size`` on the meta device (no memory, no weights) rather than the rule copied here,
    and run there on a ``size`` x ``size`` image to find the memory its largest layer needs. A network whose build
    or pass cannot run on the meta device is left to translating, which reports a failing side too (a RuntimeError
    or ValueError from the network, in one sentence).
    """
    import torch

    from ganzoo.errors import GanzooError
    from ganzoo.memory_floor import free_bytes, generator_floor

    needed = generator_floor(loaded.model, {**loaded.config, "image_size": size}, 1, direction)
    free = free_bytes(torch.device(device)) if needed is not None else None
    if needed is not None and free is not None and needed > free:
        raise GanzooError(f"--image-size {size} needs at least {needed / 2**30:.1f} GiB for the generator's largest "
                          f"layer alone, more than the {free / 2**30:.1f} GiB free on {device}; use a smaller "
                          f"--image-size (it was trained at {loaded.config['image_size']}).")


def check_targets(files: list[tuple[Path, Path]], source: Path, out: Path, overwrite: bool,
                  skip_existing: bool = False) -> None:
    """Refuse, before anything is translated, a run that would overwrite an input image or, without
    ``overwrite`` or ``skip_existing``, a file already in ``out``: a translation written over its source loses the
    photo for good.

    ``files`` pairs each input with its result path. Paths are compared resolved (and existing files by
    identity), so ``--out photos/`` for ``--input ./photos``, or a link to the input folder, is caught too.
    A link where a result goes counts as a file (the write replaces the link); a folder there is left to the
    write, which reports it in its own sentence.
    """
    from ganzoo.errors import GanzooError

    if source.is_dir() and out.resolve() == source.resolve():
        raise GanzooError(f"--out {out} is the --input folder, so the translations would overwrite the input images; "
                          "choose another --out folder.")
    if source.is_dir() and out.resolve().is_relative_to(source.resolve()):
        raise GanzooError(f"--out {out} lies inside the --input folder, so translating that folder again would "
                          "translate the translations too; choose an --out folder outside it.")
    existing = [target for _, target in files if target.is_symlink() or (target.exists() and not target.is_dir())]
    if existing:
        inputs = {path.resolve() for path, _ in files}
        identities = {(status.st_dev, status.st_ino) for status in (path.stat() for path, _ in files)}
        for target in existing:
            status = None if target.is_symlink() else target.stat()  # the write replaces a link, not what it points at
            if target.parent.resolve() / target.name in inputs or (status is not None and (status.st_dev, status.st_ino) in identities):
                raise GanzooError(f"--out {out} would overwrite the input image {target} with its translation; "
                                  "choose another --out folder.")
    if existing and not overwrite and not skip_existing:
        raise GanzooError(f"--out {out} already holds {len(existing)} file(s) the translations would replace "
                          f"(first: {existing[0]}); pass --skip-existing to keep them and translate the rest (an "
                          "interrupted run goes on so), --overwrite to replace them, or choose another --out folder.")


@click.command(cls=GanzooCommand, short_help="Translate images with MODEL's generator into --out (cyclegan, pix2pix).")
@click.argument("model")
@click.option("--weights", type=GivenPath(exists=True, path_type=Path), required=True,
              help="a generator.safetensors file of MODEL, or the run folder holding it (for cyclegan it holds both "
                   "directions)")
@click.option("--input", "source", type=GivenPath(exists=True, path_type=Path), required=True,
              help="an image file, or a folder of images (sub-folders kept)")
@click.option("--out", type=GivenPath(path_type=Path), required=True,
              help="folder for the results, which take the inputs' file names (so not the --input folder); for one "
                   "input picture also a file name such as zebra.jpg")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]),
              help="cyclegan: AtoB (default) or BtoA; pix2pix: only the direction it was trained in")
@click.option("--image-size", type=click.IntRange(min=4),
              help="side the generator sees, one its training accepts [default: its training size]")
@click.option("--device", help="cpu, cuda, cuda:N, mps or auto [default: auto]")
@click.option("--overwrite", is_flag=True,
              help="replace files already in --out instead of refusing (never the input images)")
@click.option("--skip-existing", is_flag=True,
              help="keep files already in --out and translate only the other images (to finish an interrupted run)")
@click.option("--from-pairs", is_flag=True,
              help="the inputs are A|B pairs (pix2pix's test sets): translate each one's input half and write "
                   "input | translation | target side by side")
def translate(model: str, weights: Path, source: Path, out: Path, direction: str | None, image_size: int | None,
              device: str | None, overwrite: bool, skip_existing: bool, from_pairs: bool) -> None:
    """Translate images with MODEL's generator, writing each result under the same file name in --out (one input
    picture may also be written to a file name of its own, --out zebra.jpg).

    --out must not be the --input folder, and a file already in --out stops the run before anything
    is translated unless --overwrite replaces such files or --skip-existing keeps them (and translates the rest).

    Any input size works: each image is resized to the generator's size (its training --image-size,
    or --image-size here), translated, and resized back to its own width and height.

    \b
    ganzoo translate cyclegan --weights runs/h2z/generator.safetensors --input horses/ --out zebras/
    ganzoo translate cyclegan --weights W --input zebra.jpg --out horses/ --direction BtoA
    ganzoo translate pix2pix --weights W --input facades/test/ --out compared/ --from-pairs
    """
    from rich.markup import escape

    from ganzoo.cli.main import console
    from ganzoo.data.decoding import unreadable_reason
    from ganzoo.data.folder import IMAGE_EXTENSIONS, list_images
    from ganzoo.data.translation import is_pair_shaped
    from ganzoo.device import pick_device
    from ganzoo.errors import GanzooError
    from ganzoo.manifest import weights_path
    from ganzoo.safefile import check_writable
    from ganzoo.weights import load_generator, model_for_weights

    if overwrite and skip_existing:
        raise click.UsageError("--overwrite replaces the files already in --out and --skip-existing keeps them; "
                               "pass only one of them.")
    if model_for_weights(model, weights).task != "image-to-image":
        raise click.UsageError(f"Model {model!r} does not translate images; use 'ganzoo sample' for it, or pix2pix/cyclegan.")
    target_device = str(pick_device(device))
    loaded = load_generator(weights_path(model, weights, None), model, target_device)
    size = image_size or int(loaded.config["image_size"])
    check_image_size(loaded, size, direction, target_device)  # also a --direction the generator refuses, up front
    names_a_file = not source.is_dir() and out.suffix.lower() in IMAGE_EXTENSIONS and not out.is_dir()
    if not source.is_dir() and out.suffix and not names_a_file and not out.is_dir():
        raise GanzooError(f"--out {out} ends in {out.suffix}, which names no picture format ({', '.join(IMAGE_EXTENSIONS)}); "
                          "give the result a picture's name such as zebra.jpg, or a folder for it.")
    if out.is_file() and not names_a_file:
        raise GanzooError(f"--out {out} is a file; give the folder the translations go into (for one input picture, "
                          "a picture's file name such as zebra.jpg).")
    if source.is_dir():
        files = [(path, out / path.relative_to(source)) for path in list_images(source)]
    else:  # one picture: --out is the result's own name when it ends like a picture (zebra.jpg), else its folder
        files = [(source, out if names_a_file else out / source.name)]
    if not source.is_dir() and source.suffix.lower() not in IMAGE_EXTENSIONS:
        raise GanzooError(f"--input {source} is not a picture ({', '.join(IMAGE_EXTENSIONS)}); pass an image file or a "
                          "folder of them.")
    if not files:
        raise GanzooError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in {source}; pass an image file or a folder of them.")
    check_targets(files, source, out, overwrite, skip_existing)
    check_writable(out, "--out", folder=not names_a_file, create=False)
    done = {target for _, target in files if skip_existing and target.is_file()}
    todo = [(path, target) for path, target in files if target not in done]
    skipped, not_pairs, sizes = 0, 0, []
    with translation_progress(len(todo)) as (progress, advance):
        for path, target in todo:
            try:
                picture = read_picture(path)
            except Exception as exc:  # PIL raises OSError, SyntaxError, EOFError, struct.error... on damaged files
                picture, reason = None, unreadable_reason(exc)
            if picture is not None and from_pairs and not is_pair_shaped(*picture.size):
                picture, reason = None, f"{picture.width}x{picture.height} is not an A|B pair, about twice as wide as high"
                not_pairs += 1
            if picture is None:
                skipped += 1
                progress.console.print(f"[yellow]skipped {path}: {escape(reason)}[/yellow]")
                advance()
                continue
            sizes.append(translate_picture(loaded.module, picture, target, size, direction, target_device,
                                           input_side(loaded.config, direction) if from_pairs else None))
            advance()
    if todo and skipped == len(todo) and not_pairs:
        raise GanzooError(f"Translated nothing: no image in {source} is an A|B pair or could be read (see the skipped "
                          "lines above); drop --from-pairs to translate whole pictures.")
    if todo and skipped == len(todo):
        raise GanzooError(f"Translated nothing: no image in {source} could be read (see the skipped lines above); "
                          "pass readable image files.")
    kept = f" (kept the {len(done)} already in --out)" if done else ""
    into = escape(str(out)) if names_a_file else f"{escape(str(out))}/"
    console().print(f"translated {len(todo) - skipped} image(s) with {model} into {into}{kept}", soft_wrap=True)
    note = None if from_pairs else pair_note(loaded.config, sizes)
    if note:
        console().print(f"[yellow]{note}[/yellow]", soft_wrap=True)
