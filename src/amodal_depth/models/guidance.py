"""The guidance: the per-layer input beside the RGB image that says which layer is asked for.

Channels, for layer k of an image with objects o_1..o_K ordered front to back:
  0: amodal mask of o_k (the object whose full surface layer k must show);
  1: union of the amodal masks of o_1..o_{k-1}, the objects removed in layer k ("what to see
     through"; all zeros for k = 1). Since only earlier targets hide a target, inside the
     image this equals the union of their visible masks wherever it matters, and it needs
     amodal masks only, so prediction needs no visible masks.
A model with guidance_channels=1 uses channel 0 alone.
"""

from __future__ import annotations

import torch
from torch import Tensor

from amodal_depth.errors import UserError

GUIDANCE_CHANNELS = (
    "amodal mask of o_k",
    "union of the amodal masks of o_1..o_{k-1} (zeros for k=1)",
)


def build_guidance(amodal: Tensor, channels: int = 2) -> Tensor:
    """amodal [B,K,H,W] (bool, or 0/1 numbers), front to back -> [B,K,channels,H,W] float."""
    if amodal.dim() != 4:
        raise UserError(
            f"amodal masks must have shape [B,K,H,W], got {list(amodal.shape)}; "
            "add a batch axis for one image"
        )
    if channels not in (1, 2):
        raise UserError(f"guidance has 1 or 2 channels ({GUIDANCE_CHANNELS}), not {channels}")
    masks = amodal > 0.5 if amodal.dtype != torch.bool else amodal
    target = masks.float()
    if channels == 1:
        return target.unsqueeze(2)
    return torch.stack([target, removed_before(masks).float()], dim=2)


def removed_before(amodal: Tensor) -> Tensor:
    """amodal [B,K,H,W] bool, front to back -> [B,K,H,W] bool: for layer k the union of the
    amodal masks of o_1..o_{k-1} (all False for k = 1), the region where layer k differs
    from the visible scene."""
    removed = torch.cumsum(amodal.float(), dim=1) > 0
    return torch.cat([torch.zeros_like(removed[:, :1]), removed[:, :-1]], dim=1)
