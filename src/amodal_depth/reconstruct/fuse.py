"""Back-projection and fusion of K layer depths into one labelled, coloured point cloud.

Fusion rule (docs/reconstruct.md): layer 1 is kept wherever it has a depth; layer k > 1 only
inside the union of the amodal masks of the removed objects o_1..o_{k-1} -- the surfaces they
hid -- so the layers do not repeat the visible surface. Every point carries its layer
(1..K) and its object: the nearest of o_k..o_K whose amodal mask holds the pixel (1-based),
0 for the background (room, clutter).

Colours: layer-1 points take the image's colour. Points of layers k >= 2 take, in this order:
the true layer image rgb_k when given (evaluation on our data); else with "inpaint" (default)
the colour diffused from the object's own visible pixels (OpenCV Telea inpainting) for object
points and from the background's visible pixels for background points; with "flat" one tint
per layer, so the invented surfaces are told apart at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from amodal_depth.data.format import Camera
from amodal_depth.errors import UserError

HIDDEN_COLOURS = ("inpaint", "flat")
FLAT_TINTS = ((90, 160, 255), (255, 150, 60), (120, 220, 120), (230, 110, 230), (240, 220, 80))
"""RGB tint of the points of layers 2, 3, ... with hidden_colour="flat"."""
INPAINT_MAX_SIDE = 640
"""Inpainting runs on a copy whose longer side is at most this, then is resized back."""


@dataclass
class LayeredPointCloud:
    """One fused reconstruction. Camera frame, OpenCV axes (x right, y down, z forward),
    metres. points [N,3] float32, colors [N,3] uint8 RGB, layer [N] uint8 (1..K),
    object [N] uint8 (0 = background, k = o_k), pixels [N,2] int32 (u, v) of each point."""

    points: np.ndarray
    colors: np.ndarray
    layer: np.ndarray
    object: np.ndarray
    pixels: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def select(self, keep: np.ndarray) -> LayeredPointCloud:
        """The points where `keep` (bool [N]) is true."""
        return LayeredPointCloud(
            self.points[keep],
            self.colors[keep],
            self.layer[keep],
            self.object[keep],
            self.pixels[keep],
            dict(self.info),
        )

    def counts_per_layer(self, num_layers: int | None = None) -> list[int]:
        k_n = int(self.layer.max(initial=0)) if num_layers is None else num_layers
        return [int(c) for c in np.bincount(self.layer, minlength=k_n + 1)[1 : k_n + 1]]

    def to_open3d(self):
        """An open3d.geometry.PointCloud with the points and colours (labels are kept by
        write_ply as extra PLY properties and by `to_open3d_tensor`)."""
        import open3d as o3d

        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(self.points.astype(np.float64)))
        pcd.colors = o3d.utility.Vector3dVector(self.colors.astype(np.float64) / 255.0)
        return pcd

    def to_open3d_tensor(self):
        """An open3d.t.geometry.PointCloud with attributes colors, layer and object."""
        import open3d as o3d

        t = o3d.t.geometry.PointCloud(o3d.core.Tensor(self.points.astype(np.float32)))
        t.point.colors = o3d.core.Tensor(self.colors)
        t.point.layer = o3d.core.Tensor(self.layer[:, None])
        t.point.object = o3d.core.Tensor(self.object[:, None])
        return t


def backproject(depth: np.ndarray, camera: Camera, mask: np.ndarray | None = None) -> np.ndarray:
    """[N,3] float64 camera-frame points of the pixels of `mask` (default all) with a finite,
    positive depth, in row-major pixel order (the order of np.nonzero). Depth is z: pixel
    (u, v) goes to ((u - cx)/fx * z, (v - cy)/fy * z, z)."""
    z = np.asarray(depth, np.float64)
    if z.ndim != 2:
        raise UserError(f"depth must be HxW, got shape {z.shape}")
    ok = np.isfinite(z) & (z > 0)
    if mask is not None:
        ok &= np.asarray(mask, bool)
    v, u = np.nonzero(ok)
    zz = z[v, u]
    return np.stack([(u - camera.cx) / camera.fx * zz, (v - camera.cy) / camera.fy * zz, zz], 1)


def fusion_masks(amodal: np.ndarray) -> np.ndarray:
    """[K,H,W] bool: where each layer is kept. Layer 1 everywhere; layer k > 1 inside the
    union of the amodal masks of o_1..o_{k-1}."""
    amodal = np.asarray(amodal, bool)
    keep = np.ones_like(amodal)
    keep[1:] = np.logical_or.accumulate(amodal, axis=0)[:-1]
    return keep


def object_labels(amodal: np.ndarray) -> np.ndarray:
    """[K,H,W] uint8: in layer k, the nearest remaining object o_j (j >= k, 1-based) whose
    amodal mask holds the pixel; 0 = background."""
    amodal = np.asarray(amodal, bool)
    k_n = amodal.shape[0]
    labels = np.zeros(amodal.shape, np.uint8)
    current = np.zeros(amodal.shape[1:], np.uint8)
    for k in range(k_n - 1, -1, -1):  # far to near: the nearer object wins
        current = np.where(amodal[k], np.uint8(k + 1), current)
        labels[k] = current
    return labels


def _inpaint(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Telea inpainting of `hole` (bool) from the other pixels; large images at reduced size."""
    h, w = hole.shape
    f = min(1.0, INPAINT_MAX_SIDE / max(h, w))
    if f < 1.0:
        size = (max(1, round(w * f)), max(1, round(h * f)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        small_hole = cv2.resize(hole.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        filled = cv2.inpaint(small, small_hole, 3, cv2.INPAINT_TELEA)
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.where(hole[..., None], filled, image)
    return cv2.inpaint(image, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)


def _fill_from(image: np.ndarray, source: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Colours over `region` diffused from the `source` pixels only (inpainting everything
    else inside the region's bounding box); the image elsewhere."""
    out = image.copy()
    if not region.any() or not source.any():
        return out
    vs, us = np.nonzero(region | source)
    y0, y1, x0, x1 = vs.min(), vs.max() + 1, us.min(), us.max() + 1
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    filled = _inpaint(crop, ~source[y0:y1, x0:x1])
    out[y0:y1, x0:x1] = np.where(region[y0:y1, x0:x1, None], filled, crop)
    return out


def hidden_colours(image: np.ndarray, amodal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Guessed colours of hidden surfaces: ([K,H,W,3] colour of object o_k's hidden part,
    diffused from its visible pixels; [H,W,3] background colour, diffused from the pixels
    outside every amodal mask). Visible parts are approximated as amodal_k minus the amodal
    masks of o_1..o_{k-1}, shrunk by one pixel so edge colours do not bleed."""
    amodal = np.asarray(amodal, bool)
    kernel = np.ones((3, 3), np.uint8)
    union = amodal.any(axis=0)
    bg_source = ~cv2.dilate(union.astype(np.uint8), kernel, iterations=2).astype(bool)
    background = _fill_from(image, bg_source, union) if bg_source.any() else image.copy()
    objects = np.empty((*amodal.shape, 3), np.uint8)
    in_front = np.zeros(amodal.shape[1:], bool)
    for k in range(amodal.shape[0]):
        vis = amodal[k] & ~in_front
        eroded = cv2.erode(vis.astype(np.uint8), kernel).astype(bool)
        src = eroded if eroded.any() else vis
        objects[k] = _fill_from(image, src, amodal[k]) if src.any() else background
        in_front |= amodal[k]
    return objects, background


def _layer_colours(
    k: int,
    image: np.ndarray,
    labels: np.ndarray,
    layer_rgb: np.ndarray | None,
    mode: str,
    guessed: tuple[np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """[H,W,3] colours of layer k (0-based) under the rule of the module docstring."""
    if k == 0:
        return image
    if layer_rgb is not None:
        return layer_rgb[k]
    if mode == "flat":
        return np.broadcast_to(
            np.array(FLAT_TINTS[(k - 1) % len(FLAT_TINTS)], np.uint8), image.shape
        ).copy()
    objects, background = guessed
    out = background.copy()
    for j in range(objects.shape[0]):
        sel = labels == j + 1
        out[sel] = objects[j][sel]
    return out


def _check_inputs(depth, amodal, image, layer_rgb, hidden_colour):
    if depth.ndim != 3 or amodal.shape != depth.shape:
        raise UserError(
            f"depth and masks must both be [K,H,W], got {list(depth.shape)} and "
            f"{list(amodal.shape)}"
        )
    if depth.shape[0] > 255:
        raise UserError(f"at most 255 layers are supported, got {depth.shape[0]}")
    if image.shape != (*depth.shape[1:], 3) or image.dtype != np.uint8:
        raise UserError(
            f"image must be HxWx3 uint8 of the depth's size {depth.shape[2]}x{depth.shape[1]}, "
            f"got {list(image.shape)} {image.dtype}"
        )
    if layer_rgb is not None and layer_rgb.shape != (*depth.shape, 3):
        raise UserError(f"layer_rgb must be [K,H,W,3], got {list(layer_rgb.shape)}")
    if hidden_colour not in HIDDEN_COLOURS:
        raise UserError(f"hidden colour {hidden_colour!r}: choose one of {HIDDEN_COLOURS}")


def fuse_layers(
    depth: np.ndarray,
    amodal: np.ndarray,
    camera: Camera,
    image: np.ndarray | None = None,
    layer_rgb: np.ndarray | None = None,
    hidden_colour: str = "inpaint",
    layers: int | None = None,
) -> LayeredPointCloud:
    """Fuse [K,H,W] metric layer depths (NaN or <= 0 = no surface) with the [K,H,W] amodal
    masks of o_1..o_K (front to back) into one LayeredPointCloud by the module's rule.
    image HxWx3 uint8 (None: grey); layer_rgb [K,H,W,3] true layer images (evaluation);
    layers: use only the first `layers` layers (1 = the visible surface alone)."""
    depth = np.asarray(depth, np.float64)
    amodal = np.asarray(amodal, bool)
    if image is None:
        image = np.full((*depth.shape[1:], 3), 128, np.uint8)
    image = np.ascontiguousarray(image)
    _check_inputs(depth, amodal, image, layer_rgb, hidden_colour)
    k_use = depth.shape[0] if layers is None else max(1, min(int(layers), depth.shape[0]))
    keep, labels = fusion_masks(amodal), object_labels(amodal)
    guessed = None
    if layer_rgb is None and hidden_colour == "inpaint" and k_use > 1:
        guessed = hidden_colours(image, amodal)
    parts: list[tuple[np.ndarray, ...]] = []
    for k in range(k_use):
        sel = keep[k] & np.isfinite(depth[k]) & (depth[k] > 0)
        v, u = np.nonzero(sel)
        cols = _layer_colours(k, image, labels[k], layer_rgb, hidden_colour, guessed)
        parts.append(
            (
                backproject(depth[k], camera, sel),
                cols[v, u],
                np.full(v.size, k + 1, np.uint8),
                labels[k][v, u],
                np.stack([u, v], 1).astype(np.int32),
            )
        )
    pts, cols, lay, obj, pix = (np.concatenate(p) for p in zip(*parts))
    info = {
        "fusion": "layer 1 everywhere; layer k > 1 inside the union of amodal masks o_1..o_{k-1}",
        "hidden_colour": "layer_rgb" if layer_rgb is not None else hidden_colour,
        "layers_used": k_use,
    }
    return LayeredPointCloud(pts.astype(np.float32), cols.astype(np.uint8), lay, obj, pix, info)
