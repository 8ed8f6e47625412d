"""How the four model variants of the paper differ, as data rather than copied code.

The network code (encoder, guidance, DPT head) is shared; a variant only switches modules
and loss terms on or off. docs/variants.md walks through each with shapes. `VARIANTS` is the
one registry of variant names: the CLI, the presets, reproduction and the reports read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from amodal_depth.errors import UserError


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
    label: str
    """Display name in reports, tables and figures (the paper's name of the model)."""
    summary: str
    """What the variant does, in one line, for docs and --help."""
    late_guidance: bool = False
    """The image goes through the encoder and the head once; each layer's guidance enters late
    and cheaply (models/late_guidance.py), so K layers cost about one pass."""


VARIANTS: dict[str, VariantSpec] = {
    v.name: v
    for v in (
        VariantSpec("ade", True, False, False, False, False, label="ADE",
                    summary="one pass per layer from the image and that layer's masks; "
                    "nothing is shared between layers"),
        VariantSpec("ade_consistency", True, False, False, True, False,
                    label="ADE + Consistency Loss",
                    summary="ADE trained with a consistency term between consecutive layers "
                    "on static pixels"),
        VariantSpec("ade_mha", True, True, False, False, False, label="ADE + MHA",
                    summary="ADE with a multi-head self-attention module at the decoder's "
                    "coarsest level"),
        VariantSpec("ade_multibatch", False, False, True, False, True,
                    label="ADE + Multi-Batch",
                    summary="the K layers decoded together (attention across layers at every "
                    "decoder level), one scale and shift per image in the loss"),
        VariantSpec("ade_late_guidance", False, False, False, False, False,
                    label="ADE + Late Guidance (ours)",
                    summary="the image encoded and decoded once; each layer's masks enter "
                    "late (two token blocks, small per-layer decoder units), the K layers attend "
                    "to each other there: K layers for about the cost of one pass",
                    late_guidance=True),
    )
}  # fmt: skip


def get_variant(name: str) -> VariantSpec:
    """The registry entry of `name`: the one check of a variant name, wherever it enters
    (CLI, presets, configs, weights files); a UserError naming the choices otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise UserError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}") from None
