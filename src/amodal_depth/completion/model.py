"""The completion UNet and its weights files.

A plain UNet (two 3x3 conv + BatchNorm + ReLU per level, max-pool down, bilinear up with
skip connections) on one object-centred crop. Inputs (crops.crop_planes): RGB (when
`use_rgb`), the visible mask, the eraser and the inside-the-image share; output: one logit per
crop pixel, "this pixel belongs to the object's amodal mask". The mask-only model
(`use_rgb=False`) is the PCNet-M-style baseline: the same network without the image.

Weights are safetensors with the CompletionConfig as JSON in the metadata (format tag
`amodal-depth-completion`), so `load_completion(path)` rebuilds the exact network.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import Tensor, nn

from amodal_depth.errors import UserError

FORMAT_TAG = "amodal-depth-completion"
FORMAT_VERSION = "1"


@dataclass
class CompletionConfig:
    """Everything needed to rebuild a completion network from its weights file."""

    use_rgb: bool = True
    """Feed the crop's RGB (True) or only the masks (False: the mask-only baseline)."""
    crop: int = 64
    """Side of the network input in pixels; every object crop is resized to it."""
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 192])
    """Widths of the UNet levels, finest first (len - 1 poolings: crop must divide by it)."""
    threshold: float = 0.5
    """Probability above which an eraser pixel is taken as part of the object."""
    flip_tta: bool = False
    """At inference, average the predictions of the crop and of its mirror image."""

    @property
    def in_channels(self) -> int:
        return (3 if self.use_rgb else 0) + 3


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class CompletionUNet(nn.Module):
    """[B, C, S, S] crops -> [B, S, S] logits of the amodal mask."""

    def __init__(self, config: CompletionConfig) -> None:
        super().__init__()
        self.config = config
        chs = list(config.channels)
        self.down = nn.ModuleList()
        cin = config.in_channels
        for c in chs:
            self.down.append(_block(cin, c))
            cin = c
        self.up = nn.ModuleList(
            _block(chs[i] + chs[i - 1], chs[i - 1]) for i in range(len(chs) - 1, 0, -1)
        )
        self.head = nn.Conv2d(chs[0], 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, skips[-2::-1]):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)[:, 0]


def check_config(cfg: CompletionConfig) -> None:
    levels = len(cfg.channels)
    if levels < 2 or any(c < 1 for c in cfg.channels):
        raise UserError(f"completion channels {cfg.channels}: need >= 2 positive widths")
    if cfg.crop < 8 or cfg.crop % (2 ** (levels - 1)):
        raise UserError(
            f"completion crop {cfg.crop} must be >= 8 and divisible by 2^{levels - 1} "
            f"for {levels} UNet levels"
        )


def build_completion(cfg: CompletionConfig) -> CompletionUNet:
    check_config(cfg)
    return CompletionUNet(cfg)


def config_from_dict(d: dict[str, Any]) -> CompletionConfig:
    names = {f.name for f in dataclasses.fields(CompletionConfig)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown completion config keys {unknown}")
    return CompletionConfig(**d)


def save_completion(
    model: CompletionUNet,
    path: str | os.PathLike,
    dtype: torch.dtype | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """Write the network to `path` (safetensors, atomic); dtype e.g. torch.float16 casts
    the floating tensors (BatchNorm statistics included)."""
    from amodal_depth.models.checkpoints import write_state

    meta = {
        "format": FORMAT_TAG,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(dataclasses.asdict(model.config)),
    }
    return write_state(model, path, meta, dtype, extra_metadata)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a completion weights file; one-line UserError for anything else."""
    if not path.is_file():
        raise UserError(f"completion weights {path} do not exist; train them with "
                        "'amodal-depth completion train' or pass another --weights")  # fmt: skip
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for bad files
        raise UserError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {_first_line(e)}"
        ) from None
    if meta.get("format") != FORMAT_TAG or "config" not in meta:
        raise UserError(
            f"{path} is not a completion weights file (format tag {meta.get('format')!r}, "
            f"expected {FORMAT_TAG!r}); pass the file written by 'amodal-depth completion train'"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{path} is completion format version {meta.get('format_version')!r}; this code "
            f"reads version {FORMAT_VERSION}"
        )
    return meta


def load_completion(path: str | os.PathLike, device: str | torch.device = "cpu") -> CompletionUNet:
    """Rebuild the network stored by save_completion, in eval mode (fp16 files load into
    an fp32 network)."""
    path = Path(path)
    meta = read_metadata(path)
    try:
        cfg = config_from_dict(json.loads(meta["config"]))
        model = build_completion(cfg)
    except (TypeError, ValueError) as e:
        raise UserError(f"{path} has an unreadable completion config: {_first_line(e)}") from None
    from amodal_depth.models.checkpoints import read_tensors

    state = read_tensors(path)
    own = model.state_dict()
    if set(own) != set(state) or any(state[k].shape != own[k].shape for k in own):
        raise UserError(f"{path}: tensors do not match the config stored in the file "
                        "(edited or written by other code?)")  # fmt: skip
    model.load_state_dict(state)
    return model.to(device).eval()


def export_completion(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    fp16: bool = True,
    flip_tta: bool | None = None,
) -> Path:
    """Copy a weights file (e.g. RUN/model.safetensors) to `dst`, as fp16 by default, with
    `flip_tta` switched on or off in its config (None keeps it); metadata carries over."""
    src, dst = Path(src), Path(dst)
    meta = read_metadata(src)
    model = load_completion(src)
    if flip_tta is not None:
        model.config = dataclasses.replace(model.config, flip_tta=flip_tta)
    extra = {k: v for k, v in meta.items() if k not in ("format", "format_version", "config")}
    extra["exported_from"] = str(src)
    return save_completion(model, dst, dtype=torch.float16 if fp16 else None, extra_metadata=extra)
