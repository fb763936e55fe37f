"""The TensorFlow Inception v3 (``pt_inception-2015-12-05``) as torch-fidelity ports it, loaded without pickle.

FID, KID, IS and precision/recall are only comparable to published numbers with these exact
weights and TensorFlow's bilinear resize to 299x299, which torch-fidelity reproduces (optional
extra ``pip install ganzoo[eval]``). torch-fidelity's own loader calls ``torch.load(...,
weights_only=False)``, which would unpickle the file; ganzoo reads the weights itself (a
``.safetensors`` file as is, the original ``.pth`` by :mod:`ganzoo.pth`, which decodes the pickle's
opcodes without running it) and hands the tensors to torch-fidelity's constructor in place of its
``torch.load``, so nothing is unpickled.

Where the weights come from, first found wins: ``--inception-weights PATH``, the environment
variable ``GANZOO_INCEPTION_WEIGHTS``, ``cache_dir()/inception/`` (a ``.safetensors`` or the
``.pth``), else a download of the ``.pth`` from torch-fidelity's release, whose SHA-256 must start
with ``6726825d`` (the hash prefix torch hub pins in the file name).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator

from ganzoo.errors import GanzooError
from ganzoo.paths import cache_dir

WEIGHTS_ENV = "GANZOO_INCEPTION_WEIGHTS"
WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
SHA256_PREFIX = "6726825d"
PTH_NAME = "weights-inception-2015-12-05-6726825d.pth"
SAFETENSORS_NAME = "pt_inception-2015-12-05.safetensors"
#: Pool features (FID, KID, precision/recall) and the 1008 logits without bias (IS), as torch-fidelity names them.
FEATURE_LAYERS = ("2048", "logits_unbiased")


def weights_folder() -> Path:
    """Where ganzoo looks for (and downloads) the Inception weights when no path is given."""
    return cache_dir() / "inception"


def missing_weights_message(reason: str) -> str:
    """One sentence saying how to make the Inception weights available offline."""
    return (f"The Inception weights pt_inception-2015-12-05 are not available ({reason}): download {WEIGHTS_URL} "
            f"and pass it with --inception-weights PATH, set {WEIGHTS_ENV}=PATH, or put it in {weights_folder()}/.")


def resolve_weights(explicit: str | os.PathLike[str] | None = None, allow_download: bool = True) -> Path:
    """The Inception weights file: option, environment, cache folder, else a checked download."""
    from ganzoo.download import DownloadError, download, file_digest

    given = explicit or os.environ.get(WEIGHTS_ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            source = "--inception-weights" if explicit else WEIGHTS_ENV
            raise GanzooError(f"The Inception weights file {path} (from {source}) does not exist; pass the path of "
                              f"{PTH_NAME} or its .safetensors conversion.")
        return path
    folder = weights_folder()
    for name in (SAFETENSORS_NAME, PTH_NAME):
        if (folder / name).is_file():
            return folder / name
    if not allow_download:
        raise GanzooError(missing_weights_message("no file given and downloads are off"))
    try:
        path = download(WEIGHTS_URL, folder / PTH_NAME)
    except DownloadError:
        raise GanzooError(missing_weights_message("the download failed, probably no internet")) from None
    if not file_digest(path, "sha256").startswith(SHA256_PREFIX):
        path.unlink()
        raise GanzooError(missing_weights_message(f"the downloaded file's SHA-256 does not start with {SHA256_PREFIX}"))
    return path


#: What to pass instead of a file that holds no Inception weights: the end of every sentence refusing one.
PASS_INSTEAD = (f"pass the pt_inception-2015-12-05 weights ({PTH_NAME}, or their .safetensors conversion "
                f"{SAFETENSORS_NAME}) instead")


def read_state_dict(path: Path) -> dict[str, Any]:
    """The weights as tensors: safetensors directly, a ``.pth`` through :mod:`ganzoo.pth`, which never unpickles.
    The kind is told by the file's first bytes, not its name, so that an image, a text file, an .npz or ganzoo's
    own weights are refused in one sentence saying what they are rather than failing inside a parser."""
    from safetensors.torch import load_file

    from ganzoo.file_kinds import SAFETENSORS, TORCH_PICKLE, TORCH_ZIP, file_kind, in_words
    from ganzoo.pth import read_pth_tensors

    kind = file_kind(path)
    if kind in (TORCH_ZIP, TORCH_PICKLE):
        return read_pth_tensors(path)
    if kind != SAFETENSORS:
        raise GanzooError(f"{path} is {in_words(kind)}, not Inception weights; {PASS_INSTEAD}.")
    refuse_ganzoos_own(path)
    try:
        return load_file(str(path))
    except Exception as exc:  # a damaged or foreign file: say which one
        raise GanzooError(f"Cannot read Inception weights from {path} ({type(exc).__name__}); {PASS_INSTEAD}.") from None


def refuse_ganzoos_own(path: Path) -> None:
    """Refuse a safetensors file that ganzoo wrote (a generator, a discriminator, a training state), named by the
    format in its metadata: it can hold no Inception weights."""
    from ganzoo.safefile import WeightsError, read_metadata

    try:
        written = read_metadata(path).get("format", "")
    except WeightsError:  # damaged: load_file says so
        return
    if written.startswith("ganzoo."):
        raise GanzooError(f"{path} is a file ganzoo wrote ({written}: {written[7:].split('/')[0]} weights of a run), "
                          f"not Inception weights; {PASS_INSTEAD}.")


#: What torch-fidelity's constructor is told to load: a path that cannot exist (the null device is no folder), so
#: that a loader of its own that bypassed :class:`_TorchHandingOver` would find no file to unpickle.
NO_FILE = Path(os.devnull) / PTH_NAME


class _TorchHandingOver:
    """Stands in for the ``torch`` module inside torch-fidelity's constructor, whose ``torch.load(NO_FILE,
    weights_only=False)`` it answers with the tensors ganzoo already read: nothing is unpickled. A load of anything
    else fails as a missing file would."""

    def __init__(self, torch: Any, state_dict: dict[str, Any]) -> None:
        self._torch, self._state_dict = torch, state_dict
        self.handed_over = False

    def load(self, source: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if str(source) != str(NO_FILE):
            raise FileNotFoundError(f"ganzoo hands over only the weights it read, not {source}")
        self.handed_over = True
        return self._state_dict

    def __getattr__(self, name: str) -> Any:
        return getattr(self._torch, name)


@contextlib.contextmanager
def weights_handed_over(module: Any, state_dict: dict[str, Any]) -> Iterator[_TorchHandingOver]:
    """While building torch-fidelity's network (pass it ``NO_FILE`` as its weights path), its module's ``torch.load``
    returns ``state_dict``. It swaps a global of that module: build one network at a time."""
    real = module.torch
    module.torch = _TorchHandingOver(real, state_dict)
    try:
        yield module.torch
    finally:
        module.torch = real


def _torch_fidelity_inception() -> Any:
    """torch-fidelity's module that defines its Inception network (``FeatureExtractorInceptionV3``)."""
    try:
        from torch_fidelity import feature_extractor_inceptionv3
    except ImportError:
        raise GanzooError("FID, KID, IS and precision/recall need torch-fidelity; install it with "
                          "'pip install ganzoo[eval]' (or 'pip install torch-fidelity').") from None
    return feature_extractor_inceptionv3


class InceptionFeatures:
    """Callable: uint8 images (N, C, H, W), C = 1 or 3, to ``features`` (N, 2048) and ``logits`` (N, 1008)."""

    def __init__(self, state_dict: dict[str, Any], identity: str, device: str = "cpu") -> None:
        module = _torch_fidelity_inception()
        changed = GanzooError("This torch-fidelity loads its Inception weights in a way ganzoo does not know, so it "
                              "cannot be given them without unpickling; install the version ganzoo supports with "
                              "pip install 'torch-fidelity>=0.4,<0.5'.")
        try:
            with weights_handed_over(module, state_dict) as handing_over:
                network = module.FeatureExtractorInceptionV3("inception-v3-compat", list(FEATURE_LAYERS),
                                                             feature_extractor_weights_path=str(NO_FILE))
        except OSError:  # it looked for the file itself
            raise changed from None
        except RuntimeError as exc:
            raise GanzooError(f"The Inception weights do not fit torch-fidelity's network ({misfit(str(exc))}); "
                              f"{PASS_INSTEAD}.") from None
        if not handing_over.handed_over:
            raise changed
        self.network = network.to(device)
        self.device = device
        #: Names the weights in cache keys, so statistics of other weights are never mixed up.
        self.name = f"inception-{identity}"

    def __call__(self, images: Any) -> dict[str, Any]:
        import torch

        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        with torch.inference_mode():
            pool, logits = self.network(images.to(self.device))
        return {"features": pool.float(), "logits": logits.float()}


#: How ``load_state_dict`` names the tensors that do not fit, group by group: ``Missing key(s) in state_dict: "a",
#: "b".`` and ``size mismatch for a: ...``.
MISFIT_GROUPS = (("missing", r'Missing key\(s\) in state_dict: ((?:"[^"]*"(?:, )?)+)'),
                 ("of no use to it", r'Unexpected key\(s\) in state_dict: ((?:"[^"]*"(?:, )?)+)'),
                 ("of another shape", r"size mismatch for ([^:\s]+):"))


def misfit(message: str, shown: int = 3) -> str:
    """The tensors ``load_state_dict``'s ``message`` says do not fit, as a count and the first ``shown`` whole names
    of each group: "120 missing (a, b, c and 117 more)"; its first line when it names none."""
    import re

    parts = []
    for what, pattern in MISFIT_GROUPS:
        names = [name for found in re.findall(pattern, message) for name in re.findall(r'"([^"]*)"', found) or [found]]
        if names:
            more = f" and {len(names) - shown} more" if len(names) > shown else ""
            parts.append(f"{len(names)} {what} ({', '.join(names[:shown])}{more})")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return "; ".join(parts) if parts else (lines[0] if lines else "no details")


def load_inception(explicit: str | os.PathLike[str] | None = None, device: str = "cpu") -> InceptionFeatures:
    """The Inception feature extractor from the first weights found (see the module docstring)."""
    from ganzoo.download import file_digest

    path = resolve_weights(explicit)
    return InceptionFeatures(read_state_dict(path), file_digest(path, "sha256")[:12], device)
