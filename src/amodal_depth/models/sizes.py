"""Encoder sizes by name, and the resolution of a ModelConfig into explicit numbers.

A config may leave dims as None ("take them from the encoder name"); every model is built
from, and every weights file stores, the resolved config, so a file rebuilds exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from amodal_depth.config import ModelConfig
from amodal_depth.errors import UserError
from amodal_depth.models.late_guidance import LATE_WIDTH
from amodal_depth.models.variants import get_variant


@dataclass(frozen=True)
class EncoderSize:
    embed_dim: int
    depth: int
    num_heads: int
    features: int
    out_channels: tuple[int, int, int, int]
    ffn: str = "mlp"


ENCODER_SIZES: dict[str, EncoderSize] = {
    # Test size: whole-model forward on a handful of tiny items in well under a second.
    "vitq": EncoderSize(48, 4, 2, 32, (24, 48, 96, 96)),
    # Our CPU size, trained from scratch on 2 cores (with conv_stem).
    "vitt": EncoderSize(192, 6, 3, 64, (48, 96, 192, 192)),
    # The official Depth Anything V2 sizes (dpt.py model_configs).
    "vits": EncoderSize(384, 12, 6, 64, (48, 96, 192, 384)),
    "vitb": EncoderSize(768, 12, 12, 128, (96, 192, 384, 768)),
    "vitl": EncoderSize(1024, 24, 16, 256, (256, 512, 1024, 1024)),
    "vitg": EncoderSize(1536, 40, 24, 384, (1536, 1536, 1536, 1536), ffn="swiglu"),
}

# Official intermediate layers by block count; other depths use evenly spaced blocks.
OFFICIAL_LAYERS: dict[int, list[int]] = {
    12: [2, 5, 8, 11],
    24: [4, 11, 17, 23],
    40: [9, 19, 29, 39],
}


def default_layers(depth: int) -> list[int]:
    """The four blocks the DPT head reads for an encoder of `depth` blocks."""
    if depth in OFFICIAL_LAYERS:
        return list(OFFICIAL_LAYERS[depth])
    return [max(0, round((i + 1) * depth / 4) - 1) for i in range(4)]


def resolve_config(cfg: ModelConfig) -> ModelConfig:
    """A copy of `cfg` with every None filled in and every field checked (UserError if bad)."""
    get_variant(cfg.variant)
    size = ENCODER_SIZES.get(cfg.encoder)
    if size is None and None in (cfg.embed_dim, cfg.depth, cfg.num_heads):
        raise UserError(
            f"unknown encoder {cfg.encoder!r}; choose one of {', '.join(ENCODER_SIZES)} "
            "or give embed_dim, depth and num_heads explicitly"
        )

    def pick(value, attr, fallback=None):
        if value is not None:
            return value
        return getattr(size, attr) if size is not None else fallback

    embed_dim = int(pick(cfg.embed_dim, "embed_dim"))
    depth = int(pick(cfg.depth, "depth"))
    num_heads = int(pick(cfg.num_heads, "num_heads"))
    features = int(pick(cfg.features, "features", 64))
    out_channels = list(pick(cfg.out_channels, "out_channels", (embed_dim,) * 4))
    ffn = pick(cfg.ffn, "ffn", "mlp")
    layers = list(cfg.intermediate_layers or default_layers(depth))
    out = dataclasses.replace(
        cfg,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        features=features,
        out_channels=[int(c) for c in out_channels],
        ffn=ffn,
        intermediate_layers=[int(i) for i in layers],
    )
    _check(out)
    return out


def _check(c: ModelConfig) -> None:
    def bad(msg: str) -> None:
        raise UserError(f"bad model config: {msg}")

    if c.num_heads < 1 or c.embed_dim <= 0 or c.embed_dim % c.num_heads:
        bad(f"embed_dim {c.embed_dim} must be a positive multiple of num_heads {c.num_heads}")
    if c.depth < 1:
        bad(f"depth must be >= 1, got {c.depth}")
    if len(c.intermediate_layers) != 4 or not all(0 <= i < c.depth for i in c.intermediate_layers):
        bad(f"intermediate_layers must be 4 block indices in [0, {c.depth}), "
            f"got {c.intermediate_layers}")  # fmt: skip
    if len(c.out_channels) != 4 or min(c.out_channels) <= 0:
        bad(f"out_channels must be 4 positive widths, got {c.out_channels}")
    if c.features < 2 or c.features % 2:
        bad(f"features must be an even number >= 2, got {c.features}")
    if c.ffn not in ("mlp", "swiglu"):
        bad(f"ffn must be 'mlp' or 'swiglu', got {c.ffn!r}")
    if c.patch_size < 2 or (c.conv_stem and c.patch_size % 2):
        bad(f"patch_size {c.patch_size} must be >= 2 (and even with conv_stem)")
    if c.pos_grid < 1 or c.guidance_channels < 1 or c.num_layers < 1:
        bad("pos_grid, guidance_channels and num_layers must be >= 1")
    v = get_variant(c.variant)
    if (v.layer_mha or v.cross_layer) and (c.mha_heads < 1 or c.features % c.mha_heads):
        bad(f"features {c.features} must be a multiple of mha_heads {c.mha_heads}")
    if v.late_guidance and (c.mha_heads < 1 or LATE_WIDTH % c.mha_heads):
        bad(f"mha_heads {c.mha_heads} must divide the late-guidance width {LATE_WIDTH}")
