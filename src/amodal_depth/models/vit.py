"""DINOv2-style ViT encoder (the `pretrained.*` part of Depth Anything V2), plus the guidance
input and an optional convolutional stem.

Module and parameter names follow DINOv2 (`patch_embed.proj`, `cls_token`, `pos_embed`,
`blocks.N.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,mlp.fc2,ls2.gamma}`, `norm`) so an
official checkpoint loads by key. DINOv2's `mask_token` is left out: Depth Anything V2 never
uses it, and a parameter without a gradient has no place in a model we train.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Attention(nn.Module):
    """Multi-head self-attention with a qkv bias (DINOv2 layout)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, t, c = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(n, t, c))


class LayerScale(nn.Module):
    """Per-channel residual scale; Depth Anything V2 builds DINOv2 with init 1.0."""

    def __init__(self, dim: int, init: float = 1.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLU(nn.Module):
    """The feed-forward of the official vitg: one fused input projection, SiLU gate."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        # DINOv2's SwiGLUFFNFused shrinks the hidden width to 2/3 and rounds up to 8.
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale on both residual branches."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, ffn: str = "mlp") -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = SwiGLU(dim, hidden) if ffn == "swiglu" else Mlp(dim, hidden)
        self.ls2 = LayerScale(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


def init_linears_(module: nn.Module) -> None:
    """DINOv2's initialisation of the transformer blocks' linear layers (truncated normal,
    std 0.02; zero bias)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)


class PatchEmbed(nn.Module):
    """Non-overlapping conv from pixels (or stem features) to tokens: [N,C,H,W] -> [N,hw,D]."""

    def __init__(self, in_ch: int, dim: int, patch: int, bias: bool = True) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, kernel_size=patch, stride=patch, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class ConvStem(nn.Module):
    """Two 3x3 convs at half resolution in front of a (patch/2)-stride token conv.

    Why: learned from scratch on a CPU, a plain 14x14 patch projection learns slowly; a
    small conv stem gives local edges early, and its half-resolution features are skipped
    into the finest DPT stage, so thin object boundaries need not pass through 14-px tokens.
    The guidance (and an observed depth, models/observation.py) enters here too, through
    zero-initialised convs (same idea as the token level guidance embedding: a trained model
    starts unchanged)."""

    def __init__(self, channels: int, guidance_channels: int, observation_channels: int = 0):
        super().__init__()
        self.conv1 = nn.Conv2d(3, channels, 3, stride=2, padding=1)
        self.guidance = None  # guidance_channels=0: an image-only stem (ade_late_guidance)
        if guidance_channels:
            self.guidance = nn.Conv2d(
                guidance_channels, channels, 3, stride=2, padding=1, bias=False
            )
            nn.init.zeros_(self.guidance.weight)
        self.observation = None
        if observation_channels:
            self.observation = nn.Conv2d(
                observation_channels, channels, 3, stride=2, padding=1, bias=False
            )
            nn.init.zeros_(self.observation.weight)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.GELU()

    def forward(
        self, x: Tensor, guidance: Tensor | None, observation: Tensor | None = None
    ) -> Tensor:
        h = self.conv1(x)
        if guidance is not None and self.guidance is not None:
            h = h + self.guidance(guidance)
        if observation is not None and self.observation is not None:
            h = h + self.observation(observation)
        return self.act(self.conv2(self.act(h)))


class ViTEncoder(nn.Module):
    """DINOv2 ViT with a zero-initialised guidance patch embedding.

    Tokens = patch_embed(rgb) + guidance_embed(guidance), then the cls token, then the
    (interpolated) position embedding: the guidance is added before the position embedding,
    and because `guidance_embed` starts at zero (and has no bias) a pretrained encoder computes
    exactly its old function until training moves it.
    """

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        patch_size: int = 14,
        pos_grid: int = 37,
        ffn: str = "mlp",
        guidance_channels: int = 2,
        conv_stem: bool = False,
        stem_channels: int = 32,
        observation_channels: int = 0,
        stem_guidance: bool = True,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.n_blocks = depth
        # DINOv2's offset that keeps bicubic resizing from landing one token short.
        self.interpolate_offset = 0.1
        self.stem = (
            ConvStem(stem_channels, guidance_channels if stem_guidance else 0, observation_channels)
            if conv_stem
            else None
        )
        if conv_stem:
            self.patch_embed = PatchEmbed(stem_channels, embed_dim, patch_size // 2)
        else:
            self.patch_embed = PatchEmbed(3, embed_dim, patch_size)
        self.guidance_embed = PatchEmbed(guidance_channels, embed_dim, patch_size, bias=False)
        # The observed depth (models/observation.py) enters like the guidance: zero-initialised,
        # so an RGB-only model or an official checkpoint loads and computes as before.
        self.observation_embed = (
            PatchEmbed(observation_channels, embed_dim, patch_size, bias=False)
            if observation_channels
            else None
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_grid * pos_grid + 1, embed_dim))
        self.blocks = nn.ModuleList(
            [Block(embed_dim, num_heads, mlp_ratio, ffn) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        init_linears_(self.blocks)
        nn.init.zeros_(self.guidance_embed.proj.weight)
        if self.observation_embed is not None:
            nn.init.zeros_(self.observation_embed.proj.weight)

    def interpolate_pos_encoding(self, n_tokens: int, height: int, width: int) -> Tensor:
        """Position embedding for a height x width input, exactly as DINOv2 resizes it
        (bicubic, scale factor (h + 0.1)/grid, no antialias; untouched when it fits)."""
        n_grid = self.pos_embed.shape[1] - 1
        if n_tokens == n_grid and height == width:
            return self.pos_embed
        pos = self.pos_embed.float()
        dim = pos.shape[-1]
        side = math.sqrt(n_grid)
        gh = height // self.patch_size + self.interpolate_offset
        gw = width // self.patch_size + self.interpolate_offset
        grid = pos[:, 1:].reshape(1, int(side), int(side), dim).permute(0, 3, 1, 2)
        grid = F.interpolate(
            grid, scale_factor=(gh / side, gw / side), mode="bicubic", antialias=False
        )
        if grid.shape[-2:] != (int(gh), int(gw)):
            raise RuntimeError(f"position grid resized to {tuple(grid.shape[-2:])}")
        grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat([pos[:, :1], grid], dim=1).to(self.pos_embed.dtype)

    def prepare_tokens(
        self, x: Tensor, guidance: Tensor | None = None, observation: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """[N,3,H,W] (+ [N,C,H,W] guidance, + [N,2,H,W] observation) -> tokens [N,1+hw,D]
        and the stem features."""
        _, _, height, width = x.shape
        stem = None
        if self.stem is not None:
            stem = self.stem(x, guidance, observation)
            tokens = self.patch_embed(stem)
        else:
            tokens = self.patch_embed(x)
        if guidance is not None:
            tokens = tokens + self.guidance_embed(guidance.to(tokens.dtype))
        if observation is not None and self.observation_embed is not None:
            tokens = tokens + self.observation_embed(observation.to(tokens.dtype))
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens = tokens + self.interpolate_pos_encoding(tokens.shape[1] - 1, height, width)
        return tokens, stem

    def encode(
        self,
        x: Tensor,
        layers: list[int],
        guidance: Tensor | None = None,
        norm: bool = True,
        observation: Tensor | None = None,
    ) -> tuple[list[Tensor], Tensor | None]:
        """Outputs (with cls token) of the blocks in `layers`, and the stem features."""
        tokens, stem = self.prepare_tokens(x, guidance, observation)
        wanted = set(layers)
        outs: dict[int, Tensor] = {}
        for i, blk in enumerate(self.blocks[: max(layers) + 1]):
            tokens = blk(tokens)
            if i in wanted:
                outs[i] = self.norm(tokens) if norm else tokens
        return [outs[i] for i in layers], stem

    def get_intermediate_layers(
        self,
        x: Tensor,
        n: int | list[int] = 1,
        reshape: bool = False,
        return_class_token: bool = False,
        norm: bool = True,
        guidance: Tensor | None = None,
    ) -> tuple:
        """DINOv2's encoder -> head interface: the outputs of the last `n` blocks, or of the
        blocks listed in `n`; patch tokens [N,hw,D] (or [N,D,h,w] with reshape), optionally
        paired with the class token."""
        layers = list(range(self.n_blocks - n, self.n_blocks)) if isinstance(n, int) else list(n)
        outs, _ = self.encode(x, layers, guidance, norm)
        cls = [o[:, 0] for o in outs]
        patches = [o[:, 1:] for o in outs]
        if reshape:
            h, w = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
            patches = [p.reshape(p.shape[0], h, w, -1).permute(0, 3, 1, 2) for p in patches]
        if return_class_token:
            return tuple(zip(patches, cls))
        return tuple(patches)
