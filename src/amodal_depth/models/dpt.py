"""DPT head with Depth Anything V2's module names (`depth_head.*` keys of its checkpoints).

projects (1x1) -> resize_layers (deconv x4, deconv x2, identity, conv s2) ->
scratch.layerN_rn (3x3, no bias) -> scratch.refinenet4..1 (fusion blocks of two residual conv
units) -> scratch.output_conv1 -> bilinear to the input size -> scratch.output_conv2
(3x3 -> 32, ReLU, 1x1 -> 1, ReLU). Interpolations use align_corners=True as the official
code does. The official refinenet4 owns a `resConfUnit1` it never calls (it has no skip
input); ours leaves it out and the checkpoint loader drops those keys.

Optional parts (absent from official checkpoints, all switched by the config):
`stem_skip` adds the conv stem's half-resolution features to the finest stage (after
output_conv1); `layer_mha` (ade_mha) and `cross_layer` (ade_multibatch) are models/attention.py.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from amodal_depth.models.attention import CrossLayerExchange, LayerMHA


class ResidualConvUnit(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FeatureFusionBlock(nn.Module):
    """(coarser path [+ RCU(skip)]) -> RCU -> bilinear resize -> 1x1 out_conv."""

    def __init__(self, features: int, has_skip: bool = True) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1)
        if has_skip:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: Tensor, skip: Tensor | None = None, size=None) -> Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class DPTHead(nn.Module):
    def __init__(
        self,
        in_channels: int,
        features: int,
        out_channels: list[int],
        stem_channels: int | None = None,
        layer_mha: bool = False,
        cross_layer: bool = False,
        guidance_channels: int = 2,
        num_layers: int = 3,
        heads: int = 4,
    ) -> None:
        super().__init__()
        oc = out_channels
        self.projects = nn.ModuleList([nn.Conv2d(in_channels, c, 1) for c in oc])
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(oc[0], oc[0], 4, stride=4),
                nn.ConvTranspose2d(oc[1], oc[1], 2, stride=2),
                nn.Identity(),
                nn.Conv2d(oc[3], oc[3], 3, stride=2, padding=1),
            ]
        )
        s = nn.Module()
        for i, c in enumerate(oc, start=1):
            setattr(s, f"layer{i}_rn", nn.Conv2d(c, features, 3, padding=1, bias=False))
        s.refinenet1 = FeatureFusionBlock(features)
        s.refinenet2 = FeatureFusionBlock(features)
        s.refinenet3 = FeatureFusionBlock(features)
        s.refinenet4 = FeatureFusionBlock(features, has_skip=False)
        s.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        s.output_conv2 = nn.Sequential(
            nn.Conv2d(features // 2, 32, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(32, 1, 1),
            nn.ReLU(True),
        )
        # Why a positive bias: the head ends in ReLU, and a fresh head whose last conv is
        # negative everywhere would pass no gradient at all when training from scratch.
        nn.init.constant_(s.output_conv2[2].bias, 1.0)
        self.scratch = s
        if stem_channels is not None:
            # Joins after output_conv1 (features/2 channels): a skip there costs one 1x1 conv,
            # where a residual unit at the finest fusion stage doubled the head's time on CPU.
            self.stem_skip = nn.Conv2d(stem_channels, features // 2, 1)
        self.layer_mha = LayerMHA(features, guidance_channels, heads) if layer_mha else None
        self.cross_layer = (
            nn.ModuleList([CrossLayerExchange(features, num_layers, heads) for _ in range(4)])
            if cross_layer
            else None
        )

    def forward(
        self,
        tokens: list[Tensor],
        grid: tuple[int, int],
        out_size: tuple[int, int],
        stem: Tensor | None = None,
        guidance: Tensor | None = None,
        group: int | None = None,
    ) -> Tensor:
        """tokens: 4 x [N, hw, D] patch tokens; grid (h, w); out_size (H, W).
        guidance [N, C, H, W] switches on the variant modules (None = plain DAv2 head);
        group = K for the cross-layer exchange (the K items of an image adjacent).
        Returns [N, 1, H, W] (ReLU'd: relative inverse depth)."""
        return self.output(self.decode(tokens, grid, stem, guidance, group), out_size)

    def decode(
        self,
        tokens: list[Tensor],
        grid: tuple[int, int],
        stem: Tensor | None = None,
        guidance: Tensor | None = None,
        group: int | None = None,
    ) -> Tensor:
        """Everything up to the finest features: [N, features/2, 8h, 8w] (output_conv1, plus
        the stem skip)."""
        h, w = grid
        levels = []
        for i, t in enumerate(tokens):
            x = t.transpose(1, 2).reshape(t.shape[0], t.shape[-1], h, w)
            x = self.resize_layers[i](self.projects[i](x))
            x = getattr(self.scratch, f"layer{i + 1}_rn")(x)
            if self.cross_layer is not None and group is not None:
                x = self.cross_layer[i](x, group)
            levels.append(x)
        l1, l2, l3, l4 = levels
        if self.layer_mha is not None and guidance is not None:
            l4 = self.layer_mha(l4, guidance)
        s = self.scratch
        path = s.refinenet4(l4, size=l3.shape[2:])
        path = s.refinenet3(path, l3, size=l2.shape[2:])
        path = s.refinenet2(path, l2, size=l1.shape[2:])
        path = s.refinenet1(path, l1)
        out = s.output_conv1(path)
        if stem is not None:
            skip = F.interpolate(stem, size=out.shape[2:], mode="bilinear", align_corners=True)
            out = out + self.stem_skip(skip)
        return out

    def output(
        self,
        fine: Tensor,
        out_size: tuple[int, int],
        residual: Tensor | None = None,
        k: int = 1,
    ) -> Tensor:
        """The finest features [N, C, h2, w2] -> [N, 1, H, W] (bilinear to the input size,
        output_conv2). `residual` [N*K, 1, h2, w2] (ade_late_guidance): per-layer corrections
        of the last conv's output before its ReLU, upsampled and added to the shared one; the
        result then has N*K rows, the K layers of an image adjacent."""
        conv, relu, last, last_relu = self.scratch.output_conv2
        x = F.interpolate(fine, size=out_size, mode="bilinear", align_corners=True)
        x = last(relu(conv(x)))
        if residual is not None:
            up = F.interpolate(residual, size=out_size, mode="bilinear", align_corners=True)
            x = x.repeat_interleave(k, dim=0) + up
        return last_relu(x)
