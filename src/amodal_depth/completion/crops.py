"""Object-centred crops: the eraser, the crop box, the network input and the paste-back.

The completion network sees one object at a time in a square crop around it, resized to
`size` x `size` pixels (scale-normalised, so small and large objects look alike). Inputs,
channel by channel: RGB (optional), the object's visible mask, the eraser, and the share of
each input pixel that lies inside the image (0 in the padding beyond the border).

**Eraser** (the region that may hide the object). The occlusion order is not known when
completion runs (it is derived from the completed masks afterwards), so the eraser of o_k is
the union of the visible masks of *all* other objects. Only earlier objects can hide o_k,
and they are a subset of this union, so the true hidden part always lies inside it; the
network's job is to decide which of it belongs to o_k.

**Paste-back rule.** The amodal mask is visible_k ∪ (prediction ∩ eraser_k): the visible part
is kept at full resolution, and the prediction is only used where something could hide the
object, so the crop's resolution only affects the outline of the hidden part that lies inside
an occluder.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CONTEXT = 1.15
"""The crop side is this many times the side of the region the object may occupy."""
MAX_EXTENT = 3.0
"""The crop side is at most this many times the visible mask's larger bounding-box side."""
MIN_SIDE = 12
"""Smallest crop side in image pixels (tiny objects are upsampled)."""


@dataclass(frozen=True)
class Box:
    """A square crop: top-left corner (x0, y0) and side in image pixels (may leave the image)."""

    x0: int
    y0: int
    side: int


def erasers(visible: np.ndarray) -> np.ndarray:
    """[K,H,W] bool: eraser_k = union of the visible masks of every object but o_k."""
    # A pixel belongs to the eraser of k if some other object is visible there; visible
    # masks do not overlap in our data, but a user's may, so count instead of subtracting.
    counts = visible.sum(axis=0, dtype=np.int32)
    return (counts[None] - visible.astype(np.int32)) > 0


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) inclusive bounds of a non-empty mask."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return int(xs[0]), int(ys[0]), int(xs[-1]), int(ys[-1])


def reachable(visible_k: np.ndarray, eraser_k: np.ndarray) -> np.ndarray:
    """visible_k plus the connected parts of the eraser touching it: every pixel the
    object's amodal mask can cover under the paste-back rule (its hidden part lies in the
    eraser and, the silhouette being connected, in components that touch the visible part)."""
    if not eraser_k.any():
        return visible_k.copy()
    n, labels = cv2.connectedComponents(eraser_k.astype(np.uint8), connectivity=8)
    grown = cv2.dilate(visible_k.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    touching = np.unique(labels[grown & eraser_k])
    touching = touching[touching > 0]
    return visible_k | np.isin(labels, touching)


def crop_box(visible_k: np.ndarray, eraser_k: np.ndarray) -> Box:
    """The square crop of one object: around visible_k and the eraser parts touching it,
    at most MAX_EXTENT times the visible extent, always containing the visible box."""
    vx0, vy0, vx1, vy1 = _bbox(visible_k)
    rx0, ry0, rx1, ry1 = _bbox(reachable(visible_k, eraser_k))
    vis_side = max(vx1 - vx0 + 1, vy1 - vy0 + 1)
    side = CONTEXT * max(rx1 - rx0 + 1, ry1 - ry0 + 1)
    side = int(round(min(max(side, CONTEXT * vis_side, MIN_SIDE), MAX_EXTENT * vis_side)))
    side = max(side, MIN_SIDE, vis_side)
    cx, cy = (rx0 + rx1) / 2.0, (ry0 + ry1) / 2.0
    # Keep the whole visible box inside the crop when the reachable region was capped.
    cx = min(max(cx, vx1 + 0.5 - side / 2.0), vx0 - 0.5 + side / 2.0)
    cy = min(max(cy, vy1 + 0.5 - side / 2.0), vy0 - 0.5 + side / 2.0)
    return Box(int(round(cx + 0.5 - side / 2.0)), int(round(cy + 0.5 - side / 2.0)), side)


def jitter_box(box: Box, rng: np.random.Generator, scale: float, shift: float) -> Box:
    """Training augmentation: side times exp(U(-scale, scale)), centre moved by up to
    `shift` x side in each direction."""
    side = max(MIN_SIDE, int(round(box.side * float(np.exp(rng.uniform(-scale, scale))))))
    cx = box.x0 + box.side / 2.0 + rng.uniform(-shift, shift) * box.side
    cy = box.y0 + box.side / 2.0 + rng.uniform(-shift, shift) * box.side
    return Box(int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side)


def _window(arr: np.ndarray, box: Box) -> np.ndarray:
    """arr[y0:y0+side, x0:x0+side] with zero padding beyond the border (float32)."""
    h, w = arr.shape[:2]
    out = np.zeros((box.side, box.side) + arr.shape[2:], np.float32)
    ya, yb = max(box.y0, 0), min(box.y0 + box.side, h)
    xa, xb = max(box.x0, 0), min(box.x0 + box.side, w)
    if ya < yb and xa < xb:
        out[ya - box.y0 : yb - box.y0, xa - box.x0 : xb - box.x0] = arr[ya:yb, xa:xb]
    return out


def resize_to(arr: np.ndarray, size: int) -> np.ndarray:
    """Area-average when shrinking, bilinear when enlarging."""
    if arr.shape[0] == size:
        return arr
    interp = cv2.INTER_AREA if arr.shape[0] > size else cv2.INTER_LINEAR
    if arr.ndim == 2:
        return cv2.resize(arr, (size, size), interpolation=interp)
    # OpenCV resizes at most 4 channels at once with INTER_AREA: go 3 at a time.
    parts = [
        cv2.resize(np.ascontiguousarray(arr[..., i : i + 3]), (size, size), interpolation=interp)
        for i in range(0, arr.shape[2], 3)
    ]
    return np.concatenate([p if p.ndim == 3 else p[..., None] for p in parts], axis=-1)


def crop_planes(
    rgb: np.ndarray | None, visible_k: np.ndarray, eraser_k: np.ndarray, box: Box, size: int
) -> np.ndarray:
    """[C, size, size] float32 network input: RGB in [0,1] (if rgb is given), visible,
    eraser, inside-the-image share."""
    planes = []
    if rgb is not None:
        planes.append(_window(rgb.astype(np.float32) / 255.0, box))
    masks = np.stack([visible_k, eraser_k, np.ones_like(visible_k)], axis=-1)
    planes.append(_window(masks.astype(np.float32), box))
    stacked = np.concatenate(planes, axis=-1)
    return np.ascontiguousarray(resize_to(stacked, size).transpose(2, 0, 1))


def crop_target(mask: np.ndarray, box: Box, size: int) -> np.ndarray:
    """[size, size] float32 soft mask (the share of each crop pixel inside `mask`)."""
    return resize_to(_window(mask.astype(np.float32), box), size)


def paste(prob: np.ndarray, box: Box, shape: tuple[int, int]) -> np.ndarray:
    """A [size,size] probability map back to the image: [H,W] float32, 0 outside the box."""
    h, w = shape
    up = cv2.resize(prob.astype(np.float32), (box.side, box.side), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((h, w), np.float32)
    ya, yb = max(box.y0, 0), min(box.y0 + box.side, h)
    xa, xb = max(box.x0, 0), min(box.x0 + box.side, w)
    if ya < yb and xa < xb:
        out[ya:yb, xa:xb] = up[ya - box.y0 : yb - box.y0, xa - box.x0 : xb - box.x0]
    return out


def combine(
    visible_k: np.ndarray, eraser_k: np.ndarray, prob: np.ndarray, threshold: float = 0.5
) -> np.ndarray:
    """The paste-back rule: amodal = visible ∪ (prob > threshold ∩ eraser)."""
    return visible_k | ((prob > threshold) & eraser_k)
