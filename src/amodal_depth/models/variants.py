"""How the four model variants of the paper differ, as data rather than copied code.

The network code (encoder, guidance, DPT head) is shared; a variant only switches modules
and loss terms on or off. docs/variants.md walks through each with shapes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VariantSpec:
    name: str
    iterative: bool
    """One independent pass per layer: no information crosses between the K layers."""
    layer_mha: bool
    """ade_mha's extra multi-head attention module (inside one pass)."""
    cross_layer: bool
    """ade_multibatch: the K feature maps of one image exchange information in the decoder."""
    consistency_loss: bool
    """Training adds the cross-layer consistency term on static pixels."""
    group_alignment: bool
    """The loss aligns the K predictions of one image with one shared scale and shift."""


VARIANTS: dict[str, VariantSpec] = {
    v.name: v
    for v in (
        VariantSpec("ade", True, False, False, False, False),
        VariantSpec("ade_consistency", True, False, False, True, False),
        VariantSpec("ade_mha", True, True, False, False, False),
        VariantSpec("ade_multibatch", False, False, True, False, True),
    )
}


def get_variant(name: str) -> VariantSpec:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}") from None
