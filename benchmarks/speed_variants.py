"""Speed-option variants named on a benchmark's command line: ``defaults`` or ``+``-joined tokens.

``bf16+fused+graphs`` → ``{"precision": "bf16", "fused_adam": True, "cuda_graphs": True}``.
``off`` pins every option off, fused Adam included (its default is on for CUDA). ``fast`` is the
``--fast`` preset; a benchmark that sets the batch size keeps it (the preset scales only a batch left unset).
"""

from __future__ import annotations

from typing import Any

OPTION_TOKENS = {"bf16": ("precision", "bf16"), "fp16": ("precision", "fp16"), "cl": ("channels_last", True),
                 "compile": ("compile", True), "fused": ("fused_adam", True), "foreach": ("fused_adam", False),
                 "tf32": ("tf32", True), "graphs": ("cuda_graphs", True), "reuse": ("reuse_fake", True),
                 "fast": ("fast", True)}
ALL_OFF = {"precision": "fp32", "channels_last": False, "compile": False, "fused_adam": False, "tf32": False,
           "cuda_graphs": False, "reuse_fake": False}


def variant_options(variant: str) -> dict[str, Any]:
    """The training settings of one variant name."""
    if variant == "defaults":
        return {}
    if variant == "off":
        return dict(ALL_OFF)
    try:
        return dict(OPTION_TOKENS[token] for token in variant.split("+"))
    except KeyError as error:
        raise SystemExit(f"unknown speed option {error} in {variant!r}: use defaults, off or "
                         f"{'+'.join(OPTION_TOKENS)}") from None
