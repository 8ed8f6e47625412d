"""The extra attention modules of two variants (docs/variants.md has the shape walk-through).

Both are residual, pre-norm, and zero-initialise only their output projection: a fresh
module is the identity (so a variant starts as `ade`, and as Depth Anything V2 when loaded
from it), while the gradient still reaches the output projection at once and everything
upstream of it as soon as that projection moves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ResidualAttention(nn.Module):
    """x + proj(MHA(LN(x) + pos)) over the sequence axis of x [N, L, dim]."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, pos: Tensor | None = None) -> Tensor:
        n, length, dim = x.shape
        h = self.norm(x)
        if pos is not None:
            h = h + pos
        q, k, v = self.qkv(h).reshape(n, length, 3, self.heads, dim // self.heads).unbind(2)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )
        return x + self.proj(out.transpose(1, 2).reshape(n, length, dim))


class LayerMHA(nn.Module):
    """ade_mha: spatial self-attention over the coarsest DPT level of ONE item.

    Where: on `layer4_rn` (stride 2*patch, the fewest tokens, so global attention is cheap).
    What attends to what: every position of that map attends to every other position of the
    same (image, guidance_k) item; the guidance, average-pooled to that grid, is embedded and
    added to the queries and keys, so attention can single out the target's visible part and
    carry its depth cues into its hidden part. Nothing crosses between the K layers: the
    variant stays iterative.
    """

    def __init__(self, features: int, guidance_channels: int, heads: int) -> None:
        super().__init__()
        self.mask_embed = nn.Linear(guidance_channels, features)
        self.attn = ResidualAttention(features, heads)

    def forward(self, x: Tensor, guidance: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = F.adaptive_avg_pool2d(guidance.to(x.dtype), (h, w)).flatten(2).transpose(1, 2)
        tokens = self.attn(x.flatten(2).transpose(1, 2), self.mask_embed(g))
        return tokens.transpose(1, 2).reshape(n, c, h, w)


class CrossLayerExchange(nn.Module):
    """ade_multibatch: at one DPT level, the K feature vectors of one image at one position
    attend to each other (sequence length K), with a learned layer-index embedding added to
    queries and keys so layer k knows which of its siblings is in front of it."""

    def __init__(self, features: int, num_layers: int, heads: int) -> None:
        super().__init__()
        self.layer_embed = nn.Parameter(torch.zeros(num_layers, features))
        nn.init.trunc_normal_(self.layer_embed, std=0.02)
        self.attn = ResidualAttention(features, heads)

    def forward(self, x: Tensor, k: int) -> Tensor:
        """x [B*K, F, h, w] with the K layers of an image adjacent -> same shape."""
        nk, c, h, w = x.shape
        b = nk // k
        seq = x.reshape(b, k, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, k, c)
        seq = self.attn(seq, self.layer_embed[:k])
        return seq.reshape(b, h * w, k, c).permute(0, 2, 3, 1).reshape(nk, c, h, w)
