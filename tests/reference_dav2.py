"""An independent, compact re-implementation of the official Depth Anything V2 network
(DINOv2 ViT + DPT head) in the official module/key layout, written for the tests only.

It deliberately shares no code with amodal_depth.models: attention is written out with an
explicit softmax, the position-embedding resize follows DINOv2's code path literally, and it
keeps the official tensors the package drops (mask_token, refinenet4.resConfUnit1), so a
checkpoint saved from it is a faithful stand-in for an official .pth file.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RefAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q = qkv[0] * (c // self.heads) ** -0.5
        a = (q @ qkv[1].transpose(-2, -1)).softmax(-1)
        return self.proj((a @ qkv[2]).transpose(1, 2).reshape(b, n, c))


class RefScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class RefMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class RefBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = RefAttention(dim, heads)
        self.ls1 = RefScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = RefMlp(dim, 4 * dim)
        self.ls2 = RefScale(dim)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class RefPatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, 14, 14)


class RefDINOv2(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, grid: int) -> None:
        super().__init__()
        self.patch_embed = RefPatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, grid * grid + 1, dim) * 0.02)
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.blocks = nn.ModuleList([RefBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def pos(self, x, w, h):  # DINOv2 naming: w is the height axis, h the width axis
        npatch, n = x.shape[1] - 1, self.pos_embed.shape[1] - 1
        if npatch == n and w == h:
            return self.pos_embed
        dim = x.shape[-1]
        w0, h0 = w // 14 + 0.1, h // 14 + 0.1
        s = math.sqrt(n)
        p = self.pos_embed[:, 1:].reshape(1, int(s), int(s), dim).permute(0, 3, 1, 2)
        p = F.interpolate(p, scale_factor=(w0 / s, h0 / s), mode="bicubic", antialias=False)
        p = p.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat([self.pos_embed[:, :1], p], 1)

    def layers(self, x, idx):
        _, _, w, h = x.shape
        t = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], 1)
        t = t + self.pos(t, w, h)
        outs = []
        for i, blk in enumerate(self.blocks):
            t = blk(t)
            if i in idx:
                outs.append(self.norm(t)[:, 1:])
        return outs


class RefRCU(nn.Module):
    def __init__(self, f: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(f, f, 3, 1, 1)
        self.conv2 = nn.Conv2d(f, f, 3, 1, 1)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(torch.relu(x)))) + x


class RefFusion(nn.Module):
    def __init__(self, f: int) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(f, f, 1)
        self.resConfUnit1 = RefRCU(f)
        self.resConfUnit2 = RefRCU(f)

    def forward(self, *xs, size=None):
        out = xs[0]
        if len(xs) == 2:
            out = out + self.resConfUnit1(xs[1])
        out = self.resConfUnit2(out)
        kw = {"scale_factor": 2} if size is None else {"size": size}
        out = F.interpolate(out, **kw, mode="bilinear", align_corners=True)
        return self.out_conv(out)


class RefDPT(nn.Module):
    def __init__(self, dim: int, f: int, oc: list[int]) -> None:
        super().__init__()
        self.projects = nn.ModuleList([nn.Conv2d(dim, c, 1) for c in oc])
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(oc[0], oc[0], 4, 4),
                nn.ConvTranspose2d(oc[1], oc[1], 2, 2),
                nn.Identity(),
                nn.Conv2d(oc[3], oc[3], 3, 2, 1),
            ]
        )
        self.scratch = nn.Module()
        for i in range(4):
            setattr(self.scratch, f"layer{i + 1}_rn", nn.Conv2d(oc[i], f, 3, 1, 1, bias=False))
            setattr(self.scratch, f"refinenet{i + 1}", RefFusion(f))
        self.scratch.output_conv1 = nn.Conv2d(f, f // 2, 3, 1, 1)
        self.scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(f // 2, 32, 3, 1, 1), nn.ReLU(True), nn.Conv2d(32, 1, 1), nn.ReLU(True),
            nn.Identity(),
        )  # fmt: skip

    def forward(self, feats, ph, pw):
        outs = []
        for i, x in enumerate(feats):
            x = x.permute(0, 2, 1).reshape(x.shape[0], x.shape[-1], ph, pw)
            outs.append(self.resize_layers[i](self.projects[i](x)))
        s = self.scratch
        r = [getattr(s, f"layer{i + 1}_rn")(o) for i, o in enumerate(outs)]
        p = s.refinenet4(r[3], size=r[2].shape[2:])
        p = s.refinenet3(p, r[2], size=r[1].shape[2:])
        p = s.refinenet2(p, r[1], size=r[0].shape[2:])
        p = s.refinenet1(p, r[0])
        out = s.output_conv1(p)
        out = F.interpolate(out, (ph * 14, pw * 14), mode="bilinear", align_corners=True)
        return s.output_conv2(out)


class RefDepthAnythingV2(nn.Module):
    def __init__(
        self, dim=64, depth=12, heads=1, grid=5, features=16, oc=(8, 16, 32, 64), layers=None
    ):
        super().__init__()
        self.layers = layers or {12: [2, 5, 8, 11], 24: [4, 11, 17, 23]}[depth]
        self.pretrained = RefDINOv2(dim, depth, heads, grid)
        self.depth_head = RefDPT(dim, features, list(oc))

    def forward(self, x):
        ph, pw = x.shape[-2] // 14, x.shape[-1] // 14
        feats = self.pretrained.layers(x, self.layers)
        return F.relu(self.depth_head(feats, ph, pw)).squeeze(1)
