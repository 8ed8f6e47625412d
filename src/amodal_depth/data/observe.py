"""Realistic observed depth of the visible scene, simulated from the true layer-1 depth.

A model that reads an observed depth (models/observation.py) must not learn to trust a
perfect one: real observations come from sensors and monocular models, and both corrupt the
truth in known ways. Every training item draws one source (pure function of the item's
generator, so resumed runs and any worker count see the same observation):

  * none (10 %): no observation at all; the model must still work from RGB alone.
  * clean (15 %): the true depth.
  * sensor (40 %), metric depth as an RGB-D or LiDAR camera gives it: noise growing with
    depth squared (structured light and stereo: sigma = a * z^2, a in [0.5, 3] mm/m^2),
    quantisation (1 mm steps, or steps in inverse depth as disparity-based sensors have),
    misregistration between depth and colour (the map shifted by up to 2 px), and holes:
    at depth edges (shadowed / mixed pixels), on dark surfaces (weak returns), beyond a
    maximum range (3.5-8 m), random blobs and speckle.
  * mono (35 %), relative inverse depth as Depth Anything V2 or Depth Pro give it: an
    unknown scale and shift in inverse depth, a smooth low-frequency warp (multiplicative
    field from a 3x4 grid, up to +-15 %), blurred edges (Gaussian, sigma 0.5-3 px), the
    foreground fattened by 1-2 px now and then, 8-bit quantisation, little noise; no holes
    except where there is no surface.

docs/observed-depth.md shows an example of each source.
"""

from __future__ import annotations

import cv2
import numpy as np

SOURCES = ("none", "clean", "sensor", "mono")
SOURCE_PROBS = (0.10, 0.15, 0.40, 0.35)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    grid = rng.normal(0.0, sigma, size=(3, 4)).astype(np.float32)
    return cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _shift(x: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """x moved by (dx, dy) pixels; uncovered pixels become 0 (holes)."""
    out = np.zeros_like(x)
    h, w = x.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = x[ys, xs]
    return out


def depth_edges(depth: np.ndarray, ratio: float = 1.05) -> np.ndarray:
    """Pixels beside a neighbour whose depth differs by more than `ratio` (or no surface)."""
    d = np.where(depth > 0, depth, 1e6).astype(np.float32)
    big = cv2.dilate(d, np.ones((3, 3), np.uint8))
    small = cv2.erode(d, np.ones((3, 3), np.uint8))
    return big > small * ratio


def _blobs(rng: np.random.Generator, shape: tuple[int, int], count: int) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    for _ in range(count):
        c = (int(rng.integers(0, shape[1])), int(rng.integers(0, shape[0])))
        axes = (int(rng.integers(3, 16)), int(rng.integers(3, 16)))
        cv2.ellipse(m, c, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return m.astype(bool)


def sensor_observation(
    depth: np.ndarray, rgb: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Metric depth [H,W] (0 = no surface) -> (observed depth in metres, valid)."""
    d = depth.astype(np.float64)
    valid = d > 0
    d = d + rng.normal(0.0, 1.0, d.shape) * rng.uniform(0.0005, 0.003) * d**2
    if rng.random() < 0.5:
        d = np.round(d * 1000.0) / 1000.0
    else:  # disparity-based sensors: steps in inverse depth
        q = rng.uniform(2e-4, 1.5e-3)  # 1/m: ~2-13 mm steps at 3 m
        d = 1.0 / np.maximum(np.round(1.0 / np.maximum(d, 1e-3) / q) * q, 1e-6)
    d = np.where(valid, d, 0.0)
    if rng.random() < 0.5:
        d = _shift(d, int(rng.integers(-2, 3)), int(rng.integers(-2, 3)))
    valid = d > 0
    holes = np.zeros_like(valid)
    if rng.random() < 0.7:
        edges = depth_edges(d).astype(np.uint8)
        r = int(rng.integers(0, 3))
        holes |= cv2.dilate(edges, np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(bool)
    if rng.random() < 0.5:
        luma = rgb.astype(np.float32).mean(axis=2) / 255.0
        holes |= luma < rng.uniform(0.05, 0.2)
    if rng.random() < 0.5:
        holes |= d > rng.uniform(3.5, 8.0)
    holes |= _blobs(rng, d.shape, int(rng.integers(0, 5)))
    holes |= rng.random(d.shape) < rng.uniform(0.0, 0.05)
    valid &= ~holes
    return np.where(valid, d, 0.0).astype(np.float32), valid


def mono_observation(depth: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Metric depth [H,W] -> (relative inverse depth, valid) as a monocular model gives it."""
    valid = depth > 0
    inv = np.where(valid, 1.0 / np.maximum(depth, 1e-3), 0.0).astype(np.float32)
    inv = inv * np.exp(_smooth_field(rng, inv.shape, rng.uniform(0.0, 0.15)))
    if rng.random() < 0.3:  # monocular models fatten the foreground a little
        r = int(rng.integers(1, 3))
        inv = cv2.dilate(inv, np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    if rng.random() < 0.8:
        inv = cv2.GaussianBlur(inv, (0, 0), sigmaX=rng.uniform(0.5, 3.0))
    med = float(np.median(inv[valid])) if valid.any() else 1.0
    inv = inv * np.exp(rng.uniform(np.log(0.1), np.log(10.0)))
    inv = inv + rng.uniform(-0.3, 0.3) * med * float(np.exp(rng.uniform(-1, 1)))
    inv = inv + rng.normal(0.0, 0.005, inv.shape).astype(np.float32) * float(np.std(inv[valid]))
    if rng.random() < 0.3:
        lo, hi = float(inv[valid].min()), float(inv[valid].max())
        inv = np.round((inv - lo) / max(hi - lo, 1e-9) * 255.0) / 255.0 * (hi - lo) + lo
    return np.where(valid, inv, 0.0).astype(np.float32), valid


def simulate_observation(
    depth: np.ndarray, rgb: np.ndarray, rng: np.random.Generator, source: str | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """The true layer-1 depth [H,W] metres and the image -> (observed inverse depth [H,W]
    float32 in arbitrary units, valid [H,W] bool, source name). `source` forces one of
    SOURCES; None draws it with SOURCE_PROBS."""
    if source is None:
        source = SOURCES[int(rng.choice(len(SOURCES), p=SOURCE_PROBS))]
    if source not in SOURCES:
        raise ValueError(f"unknown observation source {source!r}; choose one of {SOURCES}")
    if source == "none" or not (depth > 0).any():
        return np.zeros(depth.shape, np.float32), np.zeros(depth.shape, bool), "none"
    if source == "mono":
        inv, valid = mono_observation(depth, rng)
        return inv, valid, source
    if source == "sensor":
        d, valid = sensor_observation(depth, rgb, rng)
    else:
        d, valid = depth.astype(np.float32), depth > 0
    inv = np.where(valid, 1.0 / np.maximum(d, 1e-3), 0.0).astype(np.float32)
    return inv, valid, source
