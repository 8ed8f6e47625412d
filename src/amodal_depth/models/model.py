"""AmodalDepthModel: encoder + DPT head, one code path for every variant.

forward(rgb [B,3,H,W], guidance [B,K,C,H,W], observation [B,2,H,W] | None) -> [B,K,H,W]
relative inverse depth (the observation channels of models/observation.py, read only by
models built with observed_depth). Layer k reads the observation only outside the amodal
masks of o_1..o_{k-1}: there the observed visible scene *is* layer k; inside, it shows the
removed objects, which layer k must not copy (ade_late_guidance reads it once per image).
The B*K (image, guidance_k) pairs go through the encoder as independent items, except for
ade_late_guidance, which encodes and decodes each image once and adds the K guidances late
(models/late_guidance.py). Iterative
variants (ade, ade_consistency, ade_mha) keep them independent in the head too (identical to
looping over k); ade_multibatch exchanges information across the K items of an image at the
four DPT levels (models/attention.py). guidance=None gives [B,H,W], the plain Depth Anything V2
function (guidance embeddings and variant modules skipped).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amodal_depth.config import ModelConfig
from amodal_depth.errors import UserError
from amodal_depth.models.dpt import DPTHead
from amodal_depth.models.guidance import build_guidance, removed_before
from amodal_depth.models.late_guidance import LateGuidance
from amodal_depth.models.observation import (
    OBSERVATION_CHANNELS,
    check_observation,
    fit_to_observation,
    inverse_observation,
    observation_input,
    resize_observation,
)
from amodal_depth.models.preprocess import network_size, normalize_image
from amodal_depth.models.sizes import resolve_config
from amodal_depth.models.variants import VariantSpec, get_variant
from amodal_depth.models.vit import ViTEncoder


class AmodalDepthModel(nn.Module):
    config: ModelConfig
    variant: VariantSpec

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg = resolve_config(cfg)
        self.config = cfg
        self.variant = get_variant(cfg.variant)
        self.pretrained = ViTEncoder(
            embed_dim=cfg.embed_dim,
            depth=cfg.depth,
            num_heads=cfg.num_heads,
            mlp_ratio=cfg.mlp_ratio,
            patch_size=cfg.patch_size,
            pos_grid=cfg.pos_grid,
            ffn=cfg.ffn,
            guidance_channels=cfg.guidance_channels,
            conv_stem=cfg.conv_stem,
            stem_channels=cfg.stem_channels,
            observation_channels=len(OBSERVATION_CHANNELS) if cfg.observed_depth else 0,
            stem_guidance=not self.variant.late_guidance,
        )
        self.depth_head = DPTHead(
            cfg.embed_dim,
            cfg.features,
            cfg.out_channels,
            stem_channels=cfg.stem_channels if cfg.conv_stem else None,
            layer_mha=self.variant.layer_mha,
            cross_layer=self.variant.cross_layer,
            guidance_channels=cfg.guidance_channels,
            num_layers=cfg.num_layers,
            heads=cfg.mha_heads,
        )
        self.late_guidance = None
        if self.variant.late_guidance:
            self.late_guidance = LateGuidance(
                cfg.embed_dim,
                cfg.num_heads,
                cfg.mlp_ratio,
                cfg.features // 2,
                cfg.guidance_channels,
                cfg.num_layers,
                cfg.mha_heads,
                ffn=cfg.ffn,
            )

    # ------------------------------------------------------------------ checks
    def _check_rgb(self, rgb: Tensor) -> None:
        p = self.config.patch_size
        if rgb.dim() != 4 or rgb.shape[1] != 3:
            raise UserError(f"rgb must be [B,3,H,W] ImageNet-normalised, got {list(rgb.shape)}")
        h, w = rgb.shape[-2:]
        if h % p or w % p:
            raise UserError(
                f"image size {h}x{w} (HxW) is not a multiple of {p}; resize it "
                f"(predict_layers does that for you)"
            )

    def _check_guidance(self, rgb: Tensor, guidance: Tensor) -> None:
        c = self.config
        b, _, h, w = rgb.shape
        want = [b, c.num_layers, c.guidance_channels, h, w]
        if list(guidance.shape) != want:
            raise UserError(
                f"guidance must have shape [B,K,C,H,W] = {want} (K={c.num_layers} layers, "
                f"C={c.guidance_channels} channels), got {list(guidance.shape)}"
            )

    # ----------------------------------------------------------------- forward
    def _run(
        self,
        rgb: Tensor,
        guidance: Tensor | None,
        group: int | None,
        observation: Tensor | None = None,
    ) -> Tensor:
        """rgb [N,3,H,W], guidance [N,C,H,W] or None, observation [N,2,H,W] or None ->
        [N,H,W]."""
        h, w = rgb.shape[-2:]
        p = self.config.patch_size
        outs, stem = self.pretrained.encode(
            rgb, self.config.intermediate_layers, guidance, observation=observation
        )
        tokens = [o[:, 1:] for o in outs]  # the cls token is not read (use_clstoken=False)
        depth = self.depth_head(tokens, (h // p, w // p), (h, w), stem, guidance, group)
        # The head already ends in ReLU; the official forward applies it once more.
        return F.relu(depth).squeeze(1)

    def forward(
        self, rgb: Tensor, guidance: Tensor | None = None, observation: Tensor | None = None
    ) -> Tensor:
        self._check_rgb(rgb)
        if observation is not None:
            want = [rgb.shape[0], len(OBSERVATION_CHANNELS), *rgb.shape[-2:]]
            if list(observation.shape) != want:
                raise UserError(
                    f"observation must be [B,2,H,W] = {want} (models/observation.py), got "
                    f"{list(observation.shape)}"
                )
            if not self.config.observed_depth:
                observation = None  # an RGB-only model uses a depth for its units only
        if guidance is None:
            return self._run(rgb, None, None, observation)
        self._check_guidance(rgb, guidance)
        b, k = guidance.shape[:2]

        def per_layer(x: Tensor) -> Tensor:
            return x.unsqueeze(1).expand(-1, k, *x.shape[1:]).reshape(b * k, *x.shape[1:])

        # What layer k may see of the observation: read before layer 1 loses its masks.
        seen = ~removed_before(guidance[:, :, 0] > 0.5) if observation is not None else None
        if self.config.unguided_first_layer:  # layer 1 is the visible scene: no masks
            guidance = torch.cat([torch.zeros_like(guidance[:, :1]), guidance[:, 1:]], dim=1)
        g = guidance.reshape(b * k, *guidance.shape[2:]).to(rgb.dtype)
        obs = observation.to(rgb.dtype) if observation is not None else None
        if self.late_guidance is not None:  # the image (and observation) once, not K times
            return self._run_late(rgb, g, k, obs).reshape(b, k, *rgb.shape[-2:])
        if obs is not None:  # hide what the objects removed before layer k cover
            obs = per_layer(obs) * seen.reshape(b * k, 1, *seen.shape[-2:]).to(obs.dtype)
        group = k if self.variant.cross_layer else None
        return self._run(per_layer(rgb), g, group, obs).reshape(b, k, *rgb.shape[-2:])

    def _run_late(
        self, rgb: Tensor, guidance: Tensor, k: int, observation: Tensor | None
    ) -> Tensor:
        """ade_late_guidance: rgb [B,3,H,W] once, guidance [B*K,C,H,W] -> [B*K,H,W]."""
        h, w = rgb.shape[-2:]
        p = self.config.patch_size
        grid = (h // p, w // p)
        outs, stem = self.pretrained.encode(
            rgb, self.config.intermediate_layers, None, observation=observation
        )
        tokens = [o[:, 1:] for o in outs]
        fine = self.depth_head.decode(tokens, grid, stem)
        guidance_tokens = self.pretrained.guidance_embed(guidance)
        residual = self.late_guidance(tokens[-1], guidance_tokens, grid, fine, guidance, k)
        return F.relu(self.depth_head.output(fine, (h, w), residual, k)).squeeze(1)

    # --------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_batch(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        observed: tuple[np.ndarray, np.ndarray] | None = None,
        input_size: int | tuple[int, int] | None = None,
    ) -> np.ndarray:
        """The one inference path (predict_layers and evaluate): images [B,H,W,3] uint8 RGB,
        masks [B,K,H,W] bool amodal masks front to back, observed = (inverse depth [B,H,W],
        valid [B,H,W]) or None -> [B,K,H,W] float32 relative inverse depth at the input size.

        Inputs are resized to a multiple of the patch size (input_size: int = short side
        keeping the aspect ratio, (width, height) = that size, None = config.infer_size):
        the image bicubic with antialiasing, masks bilinear then thresholded at 0.5, the
        observation by normalised convolution; the output is resized back bilinearly."""
        c = self.config
        b, h, w = images.shape[:3]
        was_training = self.training
        self.eval()
        try:
            dev = next(self.parameters()).device
            th, tw = network_size(h, w, input_size, c.infer_size, c.patch_size)
            rgb = torch.from_numpy(np.require(images, requirements=["C", "W"])).to(dev)
            rgb = rgb.permute(0, 3, 1, 2).float() / 255.0
            m = torch.from_numpy(np.require(masks, np.float32, ["C", "W"])).to(dev)
            obs = None
            if observed is not None:
                inv = torch.from_numpy(np.require(observed[0], np.float32, ["C"])).to(dev)
                val = torch.from_numpy(np.require(observed[1], bool, ["C"])).to(dev)
            if (th, tw) != (h, w):
                rgb = F.interpolate(rgb, (th, tw), mode="bicubic", antialias=True).clamp(0, 1)
                m = F.interpolate(m, (th, tw), mode="bilinear", antialias=True)
                if observed is not None:
                    inv, val = resize_observation(inv, val, (th, tw))
            if observed is not None:
                obs = observation_input(inv, val)
            guidance = build_guidance(m > 0.5, c.guidance_channels)
            out = self(normalize_image(rgb), guidance, obs)
            if (th, tw) != (h, w):
                out = F.interpolate(out, (h, w), mode="bilinear", align_corners=False)
            return out.clamp_min(0).float().cpu().numpy()
        finally:
            self.train(was_training)

    def predict_layers(
        self,
        image: np.ndarray,
        masks: np.ndarray,
        depth: np.ndarray | None = None,
        input_size: int | tuple[int, int] | None = None,
        depth_kind: str = "depth",
    ) -> np.ndarray:
        """One image and its K amodal masks (front to back) -> [K,H,W] float32 at the
        image's resolution.

        image: HxWx3 uint8 RGB (any strides, read-only arrays too); masks: [K,H,W] bool.
        Without `depth`: relative inverse depth (depth = 1/(scale*disp + shift) for unknown
        scale and shift, models/preprocess.py). With `depth`, an observed HxW depth of the
        visible scene (0 or NaN = hole; `depth_kind` "disparity" for inverse depth, e.g. a
        monocular model's output): the layers in the observation's kind and units, each
        fitted to it where the layer shows the visible scene and equal to it there where it
        is valid (models/observation.py); a model built with observed_depth also reads it
        as input. input_size: see predict_batch."""
        c = self.config
        image = np.require(image, requirements=["C", "W"])
        masks = np.require(masks, requirements=["C", "W"])
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise UserError(
                f"image must be an HxWx3 uint8 RGB array, got shape {image.shape} {image.dtype}"
            )
        h, w = image.shape[:2]
        if masks.ndim != 3 or masks.shape[1:] != (h, w) or masks.shape[0] != c.num_layers:
            raise UserError(
                f"masks must be [K,H,W] = [{c.num_layers},{h},{w}] amodal masks front to back, "
                f"got {list(masks.shape)}"
            )
        if masks.dtype.kind == "f" and not np.isfinite(masks).all():
            raise UserError("masks hold NaN or infinite values; give bool (or 0/1) masks")
        masks = masks.astype(bool)
        empty = [k + 1 for k in range(masks.shape[0]) if not masks[k].any()]
        if empty:
            raise UserError(f"mask {empty[0]} (1-based) is empty; every object needs a mask")
        if depth is None:
            return self.predict_batch(image[None], masks[None], None, input_size)[0]
        valid = check_observation(depth, h, w, depth_kind)
        inverse = inverse_observation(depth, valid, depth_kind)
        observed = (inverse[None], valid[None])
        disp = self.predict_batch(image[None], masks[None], observed, input_size)[0]
        return fit_to_observation(disp, inverse, valid, masks, depth_kind)[0]


def build_model(cfg: ModelConfig) -> AmodalDepthModel:
    """A freshly initialised model for `cfg` (None dims filled from the encoder name)."""
    return AmodalDepthModel(cfg)
