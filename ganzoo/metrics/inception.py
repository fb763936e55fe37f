"""The TensorFlow Inception v3 (``pt_inception-2015-12-05``) as torch-fidelity ports it, loaded without pickle.

FID, KID, IS and precision/recall are only comparable to published numbers with these exact
weights and TensorFlow's bilinear resize to 299x299, which torch-fidelity reproduces (optional
extra ``pip install ganzoo[eval]``). torch-fidelity's own loader calls ``torch.load(...,
weights_only=False)``; ganzoo never lets it unpickle a file: the weights are read here (a
``.safetensors`` file as is, the original ``.pth`` with ``torch.load(weights_only=True)``, the
restricted tensor-only unpickler, only on torch 2.6 or newer) and handed over while ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` is set.

Where the weights come from, first found wins: ``--inception-weights PATH``, the environment
variable ``GANZOO_INCEPTION_WEIGHTS``, ``cache_dir()/inception/`` (a ``.safetensors`` or the
``.pth``), else a download of the ``.pth`` from torch-fidelity's release, whose SHA-256 must start
with ``6726825d`` (the hash prefix torch hub pins in the file name).
"""

from __future__ import annotations

import contextlib
import io
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


def read_state_dict(path: Path) -> dict[str, Any]:
    """The weights as tensors: safetensors directly, a ``.pth`` through torch's tensor-only unpickler."""
    import torch
    from safetensors.torch import load_file

    if path.suffix != ".safetensors":
        refuse_unsafe_torch_load(path)
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged or foreign file: say which one
        raise GanzooError(f"Cannot read Inception weights from {path} ({type(exc).__name__}); pass {PTH_NAME} "
                          f"or a .safetensors file of the same tensors.") from None
    if not isinstance(state, dict):
        raise GanzooError(f"{path} does not hold a state dict of tensors; pass {PTH_NAME}.")
    return state


#: The first torch whose ``weights_only=True`` loader is not open to code execution (CVE-2025-32434).
SAFE_TORCH_LOAD = (2, 6)


def refuse_unsafe_torch_load(path: Path) -> None:
    """Stop before a ``.pth`` reaches the tensor-only unpickler of a torch older than :data:`SAFE_TORCH_LOAD`, whose
    restrictions a crafted file can escape; pyproject asks for that torch, but ``pip install --no-deps`` can skip it."""
    import torch

    if torch.__version__ < SAFE_TORCH_LOAD:
        raise GanzooError(f"Reading {path} needs torch 2.6 or newer (older torch can run code hidden in a .pth "
                          f"file, CVE-2025-32434), and this is torch {torch.__version__}; upgrade torch, or pass "
                          f"the weights as a .safetensors file.")


@contextlib.contextmanager
def _tensor_only_loads() -> Iterator[None]:
    """Force every ``torch.load`` in this block to the restricted, tensor-only unpickler."""
    key = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
    before = os.environ.get(key)
    os.environ[key] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _torch_fidelity_inception() -> Any:
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise GanzooError("FID, KID, IS and precision/recall need torch-fidelity; install it with "
                          "'pip install ganzoo[eval]' (or 'pip install torch-fidelity').") from None
    return FeatureExtractorInceptionV3


class InceptionFeatures:
    """Callable: uint8 images (N, C, H, W), C = 1 or 3, to ``features`` (N, 2048) and ``logits`` (N, 1008)."""

    def __init__(self, state_dict: dict[str, Any], identity: str, device: str = "cpu") -> None:
        import torch

        network_class = _torch_fidelity_inception()
        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        buffer.seek(0)
        try:
            with _tensor_only_loads():
                network = network_class("inception-v3-compat", list(FEATURE_LAYERS), feature_extractor_weights_path=buffer)
        except RuntimeError as exc:
            raise GanzooError(f"The Inception weights do not fit torch-fidelity's network ({str(exc).splitlines()[0]}); "
                              f"pass {PTH_NAME}.") from None
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


def load_inception(explicit: str | os.PathLike[str] | None = None, device: str = "cpu") -> InceptionFeatures:
    """The Inception feature extractor from the first weights found (see the module docstring)."""
    from ganzoo.download import file_digest

    path = resolve_weights(explicit)
    return InceptionFeatures(read_state_dict(path), file_digest(path, "sha256")[:12], device)
