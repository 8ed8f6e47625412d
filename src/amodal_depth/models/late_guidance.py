"""The per-layer part of `ade_late_guidance`: K layers for about the cost of one pass.

The other variants run the encoder and the DPT head once per (image, layer) pair, so K layers
cost K passes although most of the work - understanding the RGB image - is the same for all
of them. Here the image goes through the encoder and the head once (without guidance), and
each layer's guidance enters late, at three small levels:

* **tokens**: the last encoder output plus the layer's guidance patch embedding
  (`pretrained.guidance_embed`) goes through `LATE_BLOCKS` extra transformer blocks per
  layer, so the layer can carry depth context into the region of the objects it removes (the
  coarse, global part of amodal completion). Projected to `LATE_COARSE_WIDTH` channels, the K
  layers of an image then attend to each other at every token position
  (`CrossLayerExchange`, as ade_multibatch does at its decoder levels).
* **twice the token grid**: upsampled, plus the guidance pooled to that grid, through one
  residual conv unit of `LATE_COARSE_WIDTH` channels (the shape of the hidden parts, where
  convolutions cost little).
* **finest decoder level**: projected to `LATE_WIDTH` channels and upsampled, plus the shared
  finest features and the guidance at that resolution, through one residual conv unit
  (sharp outlines of the hidden parts); a zero-initialised 1x1 conv turns it into a
  one-channel correction of the head's output before its last ReLU, upsampled bilinearly to
  the input size (a per-layer tensor of 32 channels at the input size cost as much time as
  the convolutions saved).

Because that correction starts at zero, a fresh module leaves every layer equal to the
image-only prediction: a Depth Anything V2 checkpoint loaded into this variant computes the
official function at step 0, and training moves the layers apart. docs/variants.md has the
shapes and the cost per layer.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from amodal_depth.models.attention import CrossLayerExchange
from amodal_depth.models.dpt import ResidualConvUnit
from amodal_depth.models.vit import Block, init_linears_

LATE_BLOCKS = 2
"""Transformer blocks per layer on the last encoder tokens (each ~0.17 GFLOP per layer at the
cpu preset size)."""
LATE_COARSE_WIDTH = 64
"""Channels of the per-layer path at the token grid and at twice its resolution."""
LATE_WIDTH = 16
"""Channels of the per-layer path at the finest decoder level (its cost per layer scales
with it: that level has 64x the token grid's positions)."""


class LateGuidance(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        fine_channels: int,
        guidance_channels: int,
        num_layers: int,
        exchange_heads: int,
        ffn: str = "mlp",
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio, ffn) for _ in range(LATE_BLOCKS)
        )
        for block in self.blocks:
            init_linears_(block)
        self.to_coarse = nn.Conv2d(dim, LATE_COARSE_WIDTH, 1)
        self.exchange = CrossLayerExchange(LATE_COARSE_WIDTH, num_layers, exchange_heads)
        self.mid_guidance = nn.Conv2d(guidance_channels, LATE_COARSE_WIDTH, 3, padding=1)
        self.mid = ResidualConvUnit(LATE_COARSE_WIDTH)
        self.to_width = nn.Conv2d(LATE_COARSE_WIDTH, LATE_WIDTH, 1)
        self.fine_in = nn.Conv2d(fine_channels, LATE_WIDTH, 1)
        self.fine_guidance = nn.Conv2d(guidance_channels, LATE_WIDTH, 3, padding=1)
        self.refine = ResidualConvUnit(LATE_WIDTH)
        self.to_residual = nn.Conv2d(LATE_WIDTH, 1, 1)
        nn.init.zeros_(self.to_residual.weight)
        nn.init.zeros_(self.to_residual.bias)

    def forward(
        self,
        tokens: Tensor,
        guidance_tokens: Tensor,
        grid: tuple[int, int],
        fine: Tensor,
        guidance: Tensor,
        k: int,
    ) -> Tensor:
        """tokens [B, hw, D] (last encoder output, patch tokens), guidance_tokens [B*K, hw, D]
        (the guidance patch embedding), fine [B, C, h2, w2] (the head's finest features),
        guidance [B*K, G, H, W] -> [B*K, 1, h2, w2], the K layers of an image adjacent:
        each layer's correction of the head's output before its last ReLU."""
        b = tokens.shape[0]
        gh, gw = grid
        x = tokens.repeat_interleave(k, dim=0) + guidance_tokens
        for block in self.blocks:
            x = block(x)
        x = self.to_coarse(x.transpose(1, 2).reshape(b * k, -1, gh, gw))
        x = self.exchange(x, k)
        mid = (2 * gh, 2 * gw)
        x = F.interpolate(x, size=mid, mode="bilinear", align_corners=True)
        x = self.mid(x + self.mid_guidance(F.adaptive_avg_pool2d(guidance, mid)))
        size = fine.shape[-2:]
        x = F.interpolate(self.to_width(x), size=size, mode="bilinear", align_corners=True)
        x = x + self.fine_in(fine).repeat_interleave(k, dim=0)
        x = x + self.fine_guidance(F.adaptive_avg_pool2d(guidance, size))
        return self.to_residual(self.refine(x))
