"""``--with spectral-norm``: spectral normalisation (Miyato et al. 2018) around any discriminator.

A pluggy wrapper: whichever plugin builds the discriminator, this one receives the module and
re-parametrises every convolution and linear layer so its largest singular value is 1.
"""

from __future__ import annotations

from typing import Any, Callable

from ganzoo.hookspecs import hookimpl
from ganzoo.specs import ExtensionSpec, ModelSpec

NAME = "spectral-norm"


@hookimpl
def register_extensions(register: Callable[[ExtensionSpec], None]) -> None:
    """Declare the option."""
    register(ExtensionSpec(NAME, "spectral normalisation of every conv/linear layer of the discriminator (Miyato et al. 2018)"))


def apply_spectral_norm(module: Any) -> int:
    """Re-parametrise each Conv/Linear weight of ``module`` in place; return how many layers changed."""
    from torch import nn
    from torch.nn.utils.parametrizations import spectral_norm

    layers = [m for m in module.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    for layer in layers:
        spectral_norm(layer)
    return len(layers)


@hookimpl(wrapper=True)
def build_discriminator(model: ModelSpec, config: dict[str, Any]):
    """Wrap the discriminator built by the family's plugin when ``spectral-norm`` is switched on."""
    discriminator = yield
    if discriminator is not None and NAME in config.get("with", []):
        apply_spectral_norm(discriminator)
    return discriminator
