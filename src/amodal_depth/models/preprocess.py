"""Image normalisation and the resize rule of predict_layers.

The model outputs relative inverse depth ("disparity", >= 0, larger = nearer), like Depth
Anything V2: it is defined only up to an unknown scale and shift. Metric depth needs those two
numbers, e.g. fitted on known points: depth = 1 / (scale * disp + shift), which
`metrics.depth_from_disparity` computes (and `metrics.inverse_depth_fit` fits).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from amodal_depth.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_image(rgb01: Tensor) -> Tensor:
    """[B,3,H,W] RGB in [0,1] -> ImageNet-normalised (what the encoder expects)."""
    if rgb01.dim() != 4 or rgb01.shape[1] != 3:
        raise UserError(f"image batch must be [B,3,H,W] RGB in [0,1], got {list(rgb01.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=rgb01.dtype, device=rgb01.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=rgb01.dtype, device=rgb01.device).view(1, 3, 1, 1)
    return (rgb01 - mean) / std


def network_size(
    height: int, width: int, input_size: int | tuple[int, int] | None, default: int, patch: int
) -> tuple[int, int]:
    """(H, W) the network runs at, multiples of `patch`.

    int s (or None -> `default`): keep the aspect ratio, short side ~ s, each side rounded to
    the nearest multiple of patch. tuple (width, height), as the CLI's WxH: that size, each side
    rounded to the nearest multiple of patch."""
    if input_size is None:
        input_size = default
    if isinstance(input_size, int | np.integer):
        if input_size < patch:
            raise UserError(f"input_size must be >= {patch} pixels, got {input_size}")
        scale = input_size / min(height, width)
        th, tw = height * scale, width * scale
    else:
        try:
            tw, th = (float(v) for v in input_size)
        except (TypeError, ValueError):
            raise UserError(
                f"input_size must be an int or (width, height), got {input_size!r}"
            ) from None
        if tw <= 0 or th <= 0:
            raise UserError(f"input_size must be positive, got {input_size!r}")

    def snap(v: float) -> int:
        return max(patch, int(round(v / patch)) * patch)

    return snap(th), snap(tw)
