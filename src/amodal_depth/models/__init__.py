"""Models: DINOv2-style ViT encoder, DPT head, mask guidance, the ADE variants.

Public API: build_model, AmodalDepthModel (forward, predict_layers), build_guidance,
normalize_image, save_model / load_model / read_model_config, load_depth_anything_v2,
init_from_depth_anything_v2, resolve_device (the --device rule). docs/variants.md describes
the variants.
"""

from amodal_depth.models.checkpoints import load_model, read_model_config, save_model
from amodal_depth.models.dav2 import init_from_depth_anything_v2, load_depth_anything_v2
from amodal_depth.models.device import resolve_device
from amodal_depth.models.guidance import GUIDANCE_CHANNELS, build_guidance
from amodal_depth.models.model import AmodalDepthModel, build_model
from amodal_depth.models.preprocess import normalize_image
from amodal_depth.models.sizes import ENCODER_SIZES, resolve_config
from amodal_depth.models.variants import VariantSpec, get_variant

__all__ = [
    "ENCODER_SIZES",
    "GUIDANCE_CHANNELS",
    "AmodalDepthModel",
    "VariantSpec",
    "build_guidance",
    "build_model",
    "get_variant",
    "init_from_depth_anything_v2",
    "load_depth_anything_v2",
    "load_model",
    "normalize_image",
    "read_model_config",
    "resolve_config",
    "resolve_device",
    "save_model",
]
