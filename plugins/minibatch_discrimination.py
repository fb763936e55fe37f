"""``--with minibatch-discrimination`` (Salimans et al. 2016): D's last layer also sees how close each sample is
to the rest of the batch.

The innermost wrapper of ``build_discriminator`` (``trylast``): it changes the family's network before any other
wrapper sees it, so spectral normalisation (``--with spectral-norm``) covers the linear layer it adds (not its
tensor T, which is no layer), and with PacGAN (the outermost wrapper, :mod:`ganzoo.plugins.remedies`) it acts
once, on the network PacGAN rebuilds to pack.
"""

from __future__ import annotations

from typing import Any, Callable

from ganzoo.hookspecs import hookimpl
from ganzoo.plugins.remedies import PACGAN
from ganzoo.specs import ExtensionSpec, ModelSpec

MBD = "minibatch-discrimination"


@hookimpl
def register_extensions(register: Callable[[ExtensionSpec], None]) -> None:
    """Declare the option, for unconditional models (a conditional or paired D cannot take the batch's labels) whose
    discriminator is a classifier (it adds a layer before the verdict, which BEGAN's autoencoder never gives)."""
    register(ExtensionSpec(MBD, "minibatch discrimination (Salimans et al. 2016, arXiv:1606.03498): D's last layer sees "
                                "how close each sample is to the rest of the batch (mbd_kernels x mbd_kernel_dim)",
                           tasks=("unconditional",), discriminators=("classifier",)))


@hookimpl(wrapper=True, trylast=True)
def build_discriminator(model: ModelSpec, config: dict[str, Any]):
    """Replace the last layer of the family's discriminator by minibatch discrimination and a wider last layer."""
    discriminator = yield
    extensions = config.get("with", [])
    # with PacGAN this D is thrown away: the rebuild without pacgan gets the layers (and draws their weights)
    if discriminator is not None and MBD in extensions and PACGAN not in extensions:
        from ganzoo.remedies import add_minibatch_discrimination

        add_minibatch_discrimination(discriminator, int(config.get("mbd_kernels", 16)), int(config.get("mbd_kernel_dim", 4)))
    return discriminator
