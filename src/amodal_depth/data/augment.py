"""Training augmentations: photometric jitter, random crop-and-rescale, imprecise masks.

All of them are pure functions of a `numpy.random.Generator` that the dataset seeds from
(seed, epoch, index), so any worker count or a resumed run sees the same items.

Why each one (docs/training.md measures them):
  * colour: brightness, contrast, saturation, white balance, gamma, blur and sensor noise.
    Our renderer's shading is simple; real photos and other renderers differ in exactly
    these, and a model that keys on absolute colour learns the renderer, not depth.
  * crop: a random window of 60-100 % of each side, resized back to the training size. It
    changes the field of view and the principal point (the intrinsics follow through
    `Camera`), and moves objects off-centre: the network cannot learn "depth = image row".
  * masks: real masks come from a segmenter or a hand: dilated, eroded, boxes, ragged or
    shifted by a few pixels. Only the *guidance* is perturbed; the loss keeps the true masks,
    so the model learns to read an approximate mask without painting its shape into depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from amodal_depth.data.format import Camera


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of the training augmentations (all off = the items as stored)."""

    colour: float = 0.0
    """Photometric jitter strength in [0, 1] (0 = off; 1 = brightness x[0.6, 1.4], etc.)."""
    crop_min: float = 1.0
    """Smallest crop side as a share of the image side (1.0 = no cropping)."""
    crop_prob: float = 0.5
    """Probability that an item is cropped (when crop_min < 1)."""
    mask_prob: float = 0.0
    """Probability that each object's guidance mask is perturbed (0 = exact masks)."""
    roll_deg: float = 0.0
    """Largest camera roll (degrees) of the roll augmentation (0 = off)."""
    roll_prob: float = 0.5
    """Probability that an item is rolled (when roll_deg > 0)."""
    observe: bool = False
    """Give every item a simulated observed depth of its visible scene (data/observe.py):
    `observed_inverse` [H,W] and `observed_valid` [H,W], for models with observed_depth."""
    observe_model_share: float = 0.0
    """With observe: the share of items whose observation a depth model gives instead of a
    simulation (`observed_from_model` True, `observed_inverse` 0, `observed_valid` where a
    surface is); the training step fills in that model's layer-1 prediction
    (train.observe_with_model). 0 = every observation simulated."""


# ------------------------------------------------------------------------- photometric
def jitter_colour(rgb: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """uint8 HxWx3 -> uint8 HxWx3 with random brightness, contrast, saturation, white
    balance, gamma, and now and then a blur and Gaussian noise."""
    s = float(strength)
    x = rgb.astype(np.float32) / 255.0
    x = x * rng.uniform(1 - 0.4 * s, 1 + 0.4 * s)  # brightness
    x = x * rng.uniform(1 - 0.15 * s, 1 + 0.15 * s, size=3).astype(np.float32)  # white balance
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - 0.4 * s, 1 + 0.4 * s) + mean  # contrast
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * rng.uniform(1 - 0.6 * s, 1 + 0.4 * s) + grey  # saturation
    x = np.clip(x, 0.0, 1.0) ** rng.uniform(1 - 0.3 * s, 1 + 0.3 * s)  # gamma
    if rng.random() < 0.3 * s:
        sigma = rng.uniform(0.3, 1.2)
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=sigma)
    if rng.random() < 0.3 * s:
        x = x + rng.standard_normal(x.shape).astype(np.float32) * rng.uniform(0.005, 0.03)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- geometric
def crop_window(
    rng: np.random.Generator, width: int, height: int, crop_min: float
) -> tuple[int, int, int, int]:
    """(u0, v0, w, h) of a random window with both sides scaled by one factor in
    [crop_min, 1] (the aspect ratio is kept, so pixels stay square after resizing back)."""
    f = rng.uniform(crop_min, 1.0)
    w, h = max(2, round(width * f)), max(2, round(height * f))
    u0 = int(rng.integers(0, width - w + 1))
    v0 = int(rng.integers(0, height - h + 1))
    return u0, v0, w, h


def crop_camera(camera: Camera, u0: int, v0: int, w: int, h: int) -> Camera:
    """Intrinsics of the window (u0, v0, w, h): the principal point moves by the offset."""
    return Camera(camera.fx, camera.fy, camera.cx - u0, camera.cy - v0, w, h)


def roll_window(
    width: int, height: int, cx: float, cy: float, angle_deg: float
) -> tuple[int, int, int, int]:
    """(u0, v0, w, h): the largest window of the image's aspect ratio, centred on the image,
    that lies inside the image after a rotation by `angle_deg` about (cx, cy) -- so a rolled
    item has no empty corners. The rotation moves the image centre by at most
    2 |c - (cx, cy)| sin(angle / 2); the window shrinks by that much on each side."""
    t = np.deg2rad(abs(angle_deg))
    scale = min(width / (width * np.cos(t) + height * np.sin(t)),
                height / (width * np.sin(t) + height * np.cos(t)))  # fmt: skip
    offset = np.hypot((width - 1) / 2 - cx, (height - 1) / 2 - cy)
    margin = 2.0 * offset * np.sin(t / 2)
    scale = max(0.05, scale - 2.0 * margin / min(width, height))
    w, h = max(2, int(width * scale)), max(2, int(height * scale))
    return (width - w) // 2, (height - h) // 2, w, h


def roll_arrays(
    rgb: np.ndarray,
    stacks: tuple[np.ndarray, ...],
    camera: Camera,
    angle_deg: float,
) -> tuple[np.ndarray, tuple[np.ndarray, ...], Camera]:
    """Roll the camera by `angle_deg` about its optical axis: every array is rotated about the
    principal point (the image bilinearly, the [K,H,W] depth and mask stacks by nearest
    neighbour: depth is along the optical axis, so a roll leaves each point's depth as it is
    and only moves it in the image), then cut to `roll_window` (no empty corners). Exact for
    square pixels (fx = fy), which every dataset of ours has."""
    height, width = rgb.shape[:2]
    rot = cv2.getRotationMatrix2D((float(camera.cx), float(camera.cy)), float(angle_deg), 1.0)
    rgb = cv2.warpAffine(rgb, rot, (width, height), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)  # fmt: skip
    out = []
    for x in stacks:
        planes = [cv2.warpAffine(np.ascontiguousarray(p).astype(np.float32), rot, (width, height),
                                 flags=cv2.INTER_NEAREST, borderValue=0.0) for p in x]  # fmt: skip
        out.append(np.stack(planes).astype(x.dtype))
    u0, v0, w, h = roll_window(width, height, camera.cx, camera.cy, angle_deg)
    rgb = rgb[v0 : v0 + h, u0 : u0 + w]
    out = [x[:, v0 : v0 + h, u0 : u0 + w] for x in out]
    return rgb, tuple(out), crop_camera(camera, u0, v0, w, h)


# ------------------------------------------------------------------------------- masks
def _disk(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def perturb_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One imprecise version of a bool HxW mask, as a segmenter or a hand would give it:
    dilated, eroded, its bounding box, ragged edges, or shifted by a few pixels. An empty
    mask stays empty; an erosion never removes the whole mask."""
    if not mask.any():
        return mask
    m = mask.astype(np.uint8)
    h, w = m.shape
    r = max(1, round(min(h, w) / 84))  # ~1 px at 112x84, ~2 px at 224x168
    kind = int(rng.integers(5))
    if kind == 0:  # dilated
        out = cv2.dilate(m, _disk(int(rng.integers(1, 3 * r + 1))))
    elif kind == 1:  # eroded
        out = cv2.erode(m, _disk(int(rng.integers(1, 2 * r + 1))))
        if not out.any():
            out = m
    elif kind == 2:  # bounding box, a little loose or tight
        vs, us = np.nonzero(m)
        pad = int(rng.integers(-r, 2 * r + 1))
        out = np.zeros_like(m)
        out[
            max(0, vs.min() - pad) : min(h, vs.max() + 1 + pad),
            max(0, us.min() - pad) : min(w, us.max() + 1 + pad),
        ] = 1
        if not out.any():
            out = m
    elif kind == 3:  # ragged: the edge band flips by smooth random noise
        band = cv2.dilate(m, _disk(2 * r)) - cv2.erode(m, _disk(2 * r))
        noise = rng.standard_normal((max(2, h // 8), max(2, w // 8))).astype(np.float32)
        noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
        out = np.where(band > 0, (noise > 0).astype(np.uint8), m)
    else:  # shifted
        du, dv = (int(x) for x in rng.integers(-2 * r, 2 * r + 1, size=2))
        t = np.float32([[1, 0, du], [0, 1, dv]])
        out = cv2.warpAffine(m, t, (w, h), flags=cv2.INTER_NEAREST)
        if not out.any():
            out = m
    return out.astype(bool)


def perturb_masks(masks: np.ndarray, rng: np.random.Generator, prob: float) -> np.ndarray:
    """[K,H,W] bool -> the same stack with each mask perturbed with probability `prob`."""
    out = masks.copy()
    for k in range(len(masks)):
        if rng.random() < prob:
            out[k] = perturb_mask(masks[k], rng)
    return out
