"""Models: DINOv2-style ViT encoder, DPT head, mask guidance, the ADE variants.

Public API: build_model, AmodalDepthModel (forward, predict_layers), build_guidance,
normalize_image, disparity_to_depth, save_model / load_model / read_model_config,
load_depth_anything_v2, init_from_depth_anything_v2. docs/variants.md describes the variants.
"""

from amodal_depth.models.checkpoints import load_model, read_model_config, save_model
from amodal_depth.models.dav2 import init_from_depth_anything_v2, load_depth_anything_v2
from amodal_depth.models.guidance import GUIDANCE_CHANNELS, build_guidance
from amodal_depth.models.model import AmodalDepthModel, build_model
from amodal_depth.models.preprocess import disparity_to_depth, normalize_image
from amodal_depth.models.sizes import ENCODER_SIZES, resolve_config
from amodal_depth.models.variants import VariantSpec, get_variant

__all__ = [
    "ENCODER_SIZES",
    "GUIDANCE_CHANNELS",
    "AmodalDepthModel",
    "VariantSpec",
    "build_guidance",
    "build_model",
    "disparity_to_depth",
    "get_variant",
    "init_from_depth_anything_v2",
    "load_depth_anything_v2",
    "load_model",
    "normalize_image",
    "read_model_config",
    "resolve_config",
    "save_model",
]
