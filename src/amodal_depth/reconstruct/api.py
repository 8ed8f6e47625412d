"""`reconstruct_image` and `reconstruct_layers`: the functions under `amodal-depth reconstruct`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from amodal_depth.data.format import Camera
from amodal_depth.errors import UserError
from amodal_depth.reconstruct.camera import describe_camera, resolve_camera
from amodal_depth.reconstruct.fuse import LayeredPointCloud, fuse_layers
from amodal_depth.reconstruct.scale import MetricDepth, ScaleRule, to_metric


def _camera_source(fov: float | None, camera: Any) -> str:
    if isinstance(camera, Camera):
        return "given camera"
    if camera is not None:
        return "--intrinsics"
    return "--fov" if fov is not None else "default horizontal fov"


def reconstruct_layers(
    layers: np.ndarray,
    masks: np.ndarray,
    image: np.ndarray | None,
    camera: Camera | str | tuple[float, float, float, float] | None = None,
    fov: float | None = None,
    scale: ScaleRule | None = None,
    hidden_colour: str = "inpaint",
    layer_rgb: np.ndarray | None = None,
) -> LayeredPointCloud:
    """Layer outputs [K,H,W] (relative inverse depth, aligned between layers as `predict`
    writes them; or metres with scale=MetricDepth()) and the amodal masks [K,H,W] of
    o_1..o_K front to back -> the fused LayeredPointCloud. camera: a Camera, 'fx,fy,cx,cy' or
    (fx, fy, cx, cy); else `fov` (horizontal, degrees), else the default 60 degrees. scale:
    a rule of reconstruct.scale (default MedianDepth(3.0)). cloud.info records camera, scale
    rule with its numbers, fusion, colours and points per layer."""
    layers = np.asarray(layers)
    masks = np.asarray(masks, bool)
    if layers.ndim != 3 or masks.shape != layers.shape:
        raise UserError(
            f"layers and masks must both be [K,H,W], got {list(layers.shape)} and "
            f"{list(masks.shape)}"
        )
    k_n, h, w = layers.shape
    cam = resolve_camera(w, h, fov, camera)
    depth, scale_info = to_metric(layers, scale, cam, masks)
    cloud = fuse_layers(depth, masks, cam, image, layer_rgb=layer_rgb, hidden_colour=hidden_colour)
    cloud.info.update(
        {
            "camera": describe_camera(cam, _camera_source(fov, camera)),
            "scale": scale_info,
            "num_layers": k_n,
            "points": len(cloud),
            "points_per_layer": cloud.counts_per_layer(k_n),
            "axes": "camera frame, OpenCV axes (x right, y down, z forward), metres",
        }
    )
    return cloud


def _load(model: Any, device: str) -> Any:
    """A model object from None (the default weights), a path, or a model."""
    if model is None or isinstance(model, str | Path):
        from amodal_depth.models.checkpoints import load_model
        from amodal_depth.predict import default_weights

        path = default_weights() if model is None else Path(model)
        return load_model(path, device=device)
    if not hasattr(model, "predict_layers"):
        raise UserError("model must be None, a weights path or a model with predict_layers")
    return model


def reconstruct_image(
    image: np.ndarray,
    masks: np.ndarray,
    model: Any = None,
    camera: Camera | str | tuple[float, float, float, float] | None = None,
    fov: float | None = None,
    scale: ScaleRule | None = None,
    hidden_colour: str = "inpaint",
    align: bool = True,
    input_size: int | tuple[int, int] | None = None,
    device: str = "cpu",
) -> LayeredPointCloud:
    """One image HxWx3 uint8 RGB and the amodal masks [K,H,W] bool of its K objects, front to
    back -> the fused LayeredPointCloud (metres, camera frame). model: None (the default
    weights, see predict.default_weights), a weights path, or a loaded model; its
    `predict_layers(image, masks)` gives the layers, which are aligned to layer 1 as
    `predict` does (align=False keeps them raw) and fused by `reconstruct_layers` (camera,
    fov, scale, hidden_colour: see there)."""
    from amodal_depth.predict import align_layers

    net = _load(model, device)
    masks = np.asarray(masks, bool)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise UserError(f"image must be an HxWx3 uint8 RGB array, got {image.shape} {image.dtype}")
    if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
        raise UserError(
            f"masks must be [K,H,W] with the image's H,W = {list(image.shape[:2])}, "
            f"got {list(masks.shape)}"
        )
    empty = [k + 1 for k in range(masks.shape[0]) if not masks[k].any()]
    if empty:
        raise UserError(f"the mask of object(s) {empty} is empty; every object needs pixels")
    t0 = time.perf_counter()
    kwargs = {} if input_size is None else {"input_size": input_size}
    layers = net.predict_layers(image, masks, **kwargs)
    t_model = time.perf_counter() - t0
    fits = [[1.0, 0.0]] * layers.shape[0]
    if align:
        layers, fits = align_layers(layers, masks)
    if isinstance(scale, MetricDepth):
        raise UserError("the model gives relative inverse depth here; pick another scale rule")
    t1 = time.perf_counter()
    cloud = reconstruct_layers(layers, masks, image, camera, fov, scale, hidden_colour)
    cloud.info.update(
        {
            "model": {
                "variant": getattr(getattr(net, "config", None), "variant", None),
                "aligned_to_layer_1": align,
                "layer_fits": fits,
            },
            "seconds": {"model": round(t_model, 4), "fusion": round(time.perf_counter() - t1, 4)},
        }
    )
    return cloud
