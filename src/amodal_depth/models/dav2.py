"""Official Depth Anything V2 checkpoints (`pretrained.*` / `depth_head.*` keys).

Our module names equal the official ones, so loading is by key. Two official tensors are
dropped because the official forward never uses them (DINOv2's `mask_token`, and the skip
unit `resConfUnit1` of refinenet4, which has no skip input). Our extra modules (guidance
embedding, variant modules) keep their zero-initialised output layers, so the loaded model
computes the official function.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from amodal_depth.config import ModelConfig
from amodal_depth.errors import UserError
from amodal_depth.models.model import AmodalDepthModel, build_model
from amodal_depth.models.sizes import ENCODER_SIZES, default_layers

UNUSED_OFFICIAL = ("pretrained.mask_token", "depth_head.scratch.refinenet4.resConfUnit1.")
# Our parameters that official checkpoints do not have; they stay at their initialisation.
EXTRA_PREFIXES = (
    "pretrained.guidance_embed.",
    "pretrained.stem.",
    "depth_head.stem_skip.",
    "depth_head.layer_mha.",
    "depth_head.cross_layer.",
    "late_guidance.",
)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]


def read_official_state_dict(path_or_state_dict: str | os.PathLike | dict) -> dict[str, Tensor]:
    """The tensors of an official checkpoint: a .pth read with weights_only=True (never
    unpickling code), a safetensors file with the same keys, or a state dict."""
    if isinstance(path_or_state_dict, dict):
        sd = path_or_state_dict
        where = "the state dict"
    else:
        path = Path(path_or_state_dict)
        where = str(path)
        if not path.is_file():
            raise UserError(f"checkpoint {path} does not exist")
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
            try:
                sd = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
                raise UserError(
                    f"cannot read {path} as a PyTorch checkpoint with weights_only=True "
                    f"(truncated, or it pickles code?): {_first_line(e)}"
                ) from None
        else:
            from safetensors import safe_open
            from safetensors.torch import load_file

            try:
                with safe_open(str(path), framework="pt") as f:
                    ours = (f.metadata() or {}).get("format") == "amodal-depth-model"
                sd = load_file(str(path))
            except Exception as e:  # noqa: BLE001
                raise UserError(
                    f"{path} is neither a PyTorch checkpoint nor a readable safetensors file "
                    f"(truncated?): {_first_line(e)}"
                ) from None
            if ours:
                raise UserError(
                    f"{path} is an amodal-depth weights file, not a Depth Anything V2 "
                    "checkpoint; load it with load_model (or --weights)"
                )
    for wrapper in ("model", "state_dict"):
        if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict) and len(sd) <= 4:
            sd = sd[wrapper]
    if not isinstance(sd, dict) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise UserError(f"{where} is not a state dict of tensors")
    sd = {str(k).removeprefix("module."): v for k, v in sd.items()}
    if "pretrained.cls_token" not in sd or "depth_head.scratch.layer1_rn.weight" not in sd:
        raise UserError(
            f"{where} is not a Depth Anything V2 checkpoint (no pretrained.cls_token / "
            "depth_head.scratch.layer1_rn.weight keys)"
        )
    return sd


def config_from_official(
    sd: dict[str, Tensor],
    num_heads: int | None = None,
    intermediate_layers: list[int] | None = None,
    **overrides: Any,
) -> ModelConfig:
    """Architecture read from the tensors (heads cannot be: default embed_dim // 64)."""
    for bad, what in (
        ("depth_head.readout_projects.0.0.weight", "use_clstoken=True"),
        ("depth_head.scratch.refinenet1.resConfUnit1.bn1.weight", "use_bn=True"),
        ("pretrained.register_tokens", "register tokens"),
    ):
        if bad in sd:
            raise UserError(f"checkpoints with {what} are not supported (no official DAv2 has it)")
    dim = sd["pretrained.cls_token"].shape[-1]
    depth = 1 + max(
        int(m.group(1)) for k in sd if (m := re.match(r"pretrained\.blocks\.(\d+)\.", k))
    )
    patch = sd["pretrained.patch_embed.proj.weight"].shape[-1]
    n_pos = sd["pretrained.pos_embed"].shape[1] - 1
    grid = math.isqrt(n_pos)
    if grid * grid != n_pos:
        raise UserError(f"pos_embed holds {n_pos} patch positions, not a square grid")
    if "pretrained.blocks.0.mlp.w12.weight" in sd:
        ffn, hidden = "swiglu", sd["pretrained.blocks.0.mlp.w12.weight"].shape[0] // 2
        mlp_ratio = 4.0  # the only ratio DINOv2 uses; checked against the tensors below
    else:
        ffn, hidden = "mlp", sd["pretrained.blocks.0.mlp.fc1.weight"].shape[0]
        mlp_ratio = hidden / dim
    heads = num_heads if num_heads is not None else dim // 64
    if heads < 1 or dim % heads:
        raise UserError(f"embed_dim {dim} does not split into {heads} heads; pass num_heads")
    name = next(
        (n for n, s in ENCODER_SIZES.items() if (s.embed_dim, s.depth) == (dim, depth)), "custom"
    )
    return ModelConfig(
        **{
            "variant": "ade",
            "encoder": name,
            "embed_dim": int(dim),
            "depth": depth,
            "num_heads": int(heads),
            "mlp_ratio": float(mlp_ratio),
            "patch_size": int(patch),
            "pos_grid": grid,
            "conv_stem": False,
            "ffn": ffn,
            "intermediate_layers": list(intermediate_layers or default_layers(depth)),
            "features": int(sd["depth_head.scratch.layer1_rn.weight"].shape[0]),
            "out_channels": [int(sd[f"depth_head.projects.{i}.weight"].shape[0]) for i in range(4)],
            **overrides,
        }
    )


def _copy_into(model: AmodalDepthModel, sd: dict[str, Tensor], where: str) -> dict[str, Any]:
    own = model.state_dict()
    ignored = [k for k in sd if k.startswith(UNUSED_OFFICIAL)]
    used = {k: v for k, v in sd.items() if not k.startswith(UNUSED_OFFICIAL)}
    unexpected = sorted(set(used) - set(own))
    if unexpected:
        raise UserError(f"{where} has keys this architecture lacks, e.g. {unexpected[:3]}")
    for k, v in used.items():
        if v.shape != own[k].shape:
            raise UserError(
                f"{where}: {k} has shape {list(v.shape)} but the model needs "
                f"{list(own[k].shape)} (another encoder size?)"
            )
    kept = sorted(k for k in own if k not in used)
    lacking = [k for k in kept if not k.startswith(EXTRA_PREFIXES)]
    if lacking:
        raise UserError(f"{where} lacks tensors, e.g. {lacking[:3]} (truncated or edited?)")
    model.load_state_dict(used, strict=False)
    return {"source": where, "loaded": len(used), "kept_init": kept, "ignored": ignored}


def load_depth_anything_v2(
    path_or_state_dict: str | os.PathLike | dict,
    num_heads: int | None = None,
    intermediate_layers: list[int] | None = None,
) -> AmodalDepthModel:
    """Our model holding an official Depth Anything V2 checkpoint.

    model(x) with an ImageNet-normalised [B,3,H,W] tensor (H, W multiples of 14) returns
    [B,H,W] exactly as the official model; with guidance it is an `ade` model whose guidance
    embedding is still zero."""
    sd = read_official_state_dict(path_or_state_dict)
    cfg = config_from_official(sd, num_heads, intermediate_layers)
    model = build_model(cfg)
    where = "the state dict" if isinstance(path_or_state_dict, dict) else str(path_or_state_dict)
    _copy_into(model, sd, where)
    return model.eval()


def init_from_depth_anything_v2(
    model: AmodalDepthModel, path: str | os.PathLike | dict, *, source: str | None = None
) -> dict[str, Any]:
    """Copy an official checkpoint into an existing guided model (train --init PATH).

    Needs conv_stem=False and the checkpoint's sizes; the guidance embedding and the
    variant's modules keep their (zero-output) initialisation, so the model starts as the
    official function. `path` may be the state dict already read (`read_official_state_dict`),
    then `source` names its file in messages. Returns {"source", "loaded", "kept_init": [...],
    "ignored": [...]}."""
    where = source or (str(path) if not isinstance(path, dict) else "the state dict")
    c = model.config
    if c.conv_stem:
        raise UserError(
            "--init needs a model without conv_stem (official checkpoints have a plain patch "
            "embedding); use a preset with conv_stem=False, e.g. gpu"
        )
    sd = read_official_state_dict(path)
    found = config_from_official(sd, c.num_heads, c.intermediate_layers)
    fields = ("embed_dim", "depth", "mlp_ratio", "patch_size", "pos_grid", "ffn", "features",
              "out_channels")  # fmt: skip
    diffs = [
        f"{f} {getattr(found, f)!r} (model has {getattr(c, f)!r})"
        for f in fields
        if getattr(found, f) != getattr(c, f)
    ]
    if diffs:
        raise UserError(
            f"checkpoint {where} does not fit the model (encoder {c.encoder}): " + "; ".join(diffs)
        )
    return _copy_into(model, sd, where)
