"""Scale rules: from the model's relative inverse depth to metres (docs/reconstruct.md).

Without an observed depth the model knows depth only up to a scale s and a shift t in
inverse depth, depth = 1 / (s * d + t), one (s, t) for all K layers after predict's layer
alignment. Both matter: the shift bends the geometry (walls curve, depth ranges stretch), the
scale only resizes it. A rule fixes (s, t) and is recorded in reconstruct.json with its
numbers:

  DepthRange(n, f)    (default n, f = 1.5, 7.0 m) s, t such that the nearest 2 % of layer 1
                      lie at n metres and the farthest 2 % at f metres.
  MedianDepth(m)      the default's shape (its t / s), rescaled so the median layer-1 depth is m.
  KnownDepths(pts)    one (u, v, metres): the default's shape rescaled to that depth; two or
                      more: least squares of s * d + t against 1 / metres at those pixels.
  CameraHeight(h)     the default's shape rescaled so the floor plane -- RANSAC on the layer-1
                      pixels of the lower image half outside every object mask, normal within
                      45 degrees of the camera's down axis -- lies h metres below the camera.
  InverseDepthFit(s, t)  given numbers (e.g. fitted on a known depth map).
  MetricDepth()       the layers already are depths in metres (predict with an observed depth).

One number can fix only the scale, so the single-number rules keep the default's shift-to-
scale ratio; rescaling a depth map by f is s, t -> s / f, t / f. Pixels whose s * d + t is
not above 1 / max_depth (farther than max_depth, or "beyond infinity") get NaN depth and are
left out of the reconstruction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from amodal_depth.data.format import Camera
from amodal_depth.errors import UserError

DEFAULT_DEPTH_RANGE = (1.5, 7.0)
"""Metres (near, far) of the default rule. Over 200 training images each, the median of the
per-image 2nd / 98th percentile of true layer-1 depth is 1.44 / 7.02 m for the `diverse`
scenes (the shipped weights' training data) and 2.07 / 7.31 m for `template`: an indoor room."""
DEFAULT_MEDIAN_DEPTH = 3.0
"""Metres; only a typical value for --median-depth (the median layer-1 depth of our scenes is
2.8 m for diverse and 3.4 m for template). Not used unless that rule is asked for."""
RANGE_PERCENTILES = (2.0, 98.0)
"""DepthRange: the layer-1 inverse-depth percentiles that are put at far and near."""
MAX_DEPTH = 100.0
"""Metres; farther pixels (and non-positive inverse depth) are dropped."""
MIN_DEPTH = 1e-3
FLOOR_MAX_TILT_DEG = 45.0
"""The floor's normal may be at most this far from the camera's down axis (y)."""
FLOOR_INLIER = 0.02
"""RANSAC inlier distance as a share of the median depth of the candidate floor pixels."""


def depth_from_inverse(disp: np.ndarray, s: float, t: float, max_depth: float = MAX_DEPTH):
    """depth = 1 / (s * disp + t), NaN where that is not in (0, max_depth]."""
    inv = s * np.asarray(disp, np.float64) + t
    ok = np.isfinite(inv) & (inv >= 1.0 / max_depth)
    depth = np.full(inv.shape, np.nan)
    np.divide(1.0, inv, out=depth, where=ok)
    return np.where(ok, np.maximum(depth, MIN_DEPTH), np.nan)


def _positive(x: float, what: str) -> None:
    if not (math.isfinite(float(x)) and float(x) > 0):
        raise UserError(f"{what} {x}: must be a positive number of metres")


def _rescaled(disp: np.ndarray, measure, target: float, what: str) -> dict[str, Any]:
    """The default range's (s, t), rescaled so that measure(depth of layer 1) = target."""
    base = DepthRange(*DEFAULT_DEPTH_RANGE).fit(disp, None, None)
    value = float(measure(depth_from_inverse(disp[0], base["s"], base["t"])))
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"{what}: the prediction there has no finite depth; pick another value")
    f = target / value
    return {"s": base["s"] / f, "t": base["t"] / f, "shape_from": list(DEFAULT_DEPTH_RANGE)}


@dataclass(frozen=True)
class InverseDepthFit:
    """Explicit (s, t): depth = 1 / (s * d + t)."""

    s: float
    t: float = 0.0

    def fit(self, disp: np.ndarray, camera: Camera, masks: np.ndarray) -> dict[str, Any]:
        return {"rule": "inverse_depth_fit", "s": float(self.s), "t": float(self.t)}


@dataclass(frozen=True)
class MetricDepth:
    """The layers are metric depth already (predict with an observed depth)."""

    def fit(self, disp: np.ndarray, camera: Camera, masks: np.ndarray) -> dict[str, Any]:
        return {"rule": "metric", "note": "layers are depths in metres (observed depth)"}


@dataclass(frozen=True)
class DepthRange:
    """s, t such that the RANGE_PERCENTILES of layer-1 inverse depth map to 1/far and 1/near:
    the nearest and the farthest few percent of the view lie at `near` and `far` metres."""

    near: float = DEFAULT_DEPTH_RANGE[0]
    far: float = DEFAULT_DEPTH_RANGE[1]

    def fit(self, disp: np.ndarray, camera: Camera | None, masks: Any) -> dict[str, Any]:
        _positive(self.near, "--depth-range near")
        _positive(self.far, "--depth-range far")
        if not self.far > self.near:
            raise UserError(f"--depth-range {self.near:g},{self.far:g}: far must exceed near")
        d1 = disp[0][np.isfinite(disp[0])]
        if d1.size == 0:
            raise UserError("layer 1 has no finite prediction; nothing to scale")
        lo, hi = (float(x) for x in np.percentile(d1, RANGE_PERCENTILES))
        if not hi > lo:
            raise UserError("layer 1 is flat (one inverse depth everywhere); give --known-depth")
        s = (1.0 / self.near - 1.0 / self.far) / (hi - lo)
        return {
            "rule": "depth_range",
            "near_m": float(self.near),
            "far_m": float(self.far),
            "percentiles": list(RANGE_PERCENTILES),
            "s": s,
            "t": 1.0 / self.far - s * lo,
        }


@dataclass(frozen=True)
class MedianDepth:
    """The default shape, rescaled so the median layer-1 depth is `metres`."""

    metres: float = DEFAULT_MEDIAN_DEPTH

    def fit(self, disp: np.ndarray, camera: Camera, masks: np.ndarray) -> dict[str, Any]:
        _positive(self.metres, "--median-depth")
        got = _rescaled(disp, np.nanmedian, self.metres, "--median-depth")
        return {"rule": "median_depth", "median_depth_m": float(self.metres), **got}


@dataclass(frozen=True)
class KnownDepths:
    """Pixels (u, v) = (column, row) of the input image whose depth in metres is known."""

    points: tuple[tuple[float, float, float], ...]

    def fit(self, disp: np.ndarray, camera: Camera, masks: np.ndarray) -> dict[str, Any]:
        h, w = disp.shape[1:]
        pix, inv = [], []
        for u, v, m in self.points:
            what = f"--known-depth {u:g},{v:g},{m:g}"
            _positive(m, what + ": metres")
            iu, iv = int(round(u)), int(round(v))
            if not (0 <= iu < w and 0 <= iv < h):
                raise UserError(f"{what}: pixel outside the {w}x{h} image (u = column, v = row)")
            if not np.isfinite(disp[0, iv, iu]):
                raise UserError(f"{what}: no prediction at that pixel; pick another")
            pix.append((iv, iu))
            inv.append(1.0 / m)
        info: dict[str, Any] = {"rule": "known_depths", "points": [list(p) for p in self.points]}
        if len(pix) == 1:
            at = pix[0]
            return {**info, **_rescaled(disp, lambda d: d[at], 1.0 / inv[0], what)}
        from amodal_depth.metrics import _fit_scale_shift

        ds = np.array([disp[0][p] for p in pix], np.float64)
        s, t = _fit_scale_shift(ds, np.asarray(inv))
        if not s > 0:
            raise UserError(
                "--known-depth: the given depths contradict the prediction (a nearer point is "
                "predicted farther, or all have one prediction); check u,v or give one point"
            )
        return {**info, "s": s, "t": t}


_NO_FLOOR = (
    "--camera-height: no floor plane found in the lower half of the image; give "
    "--known-depth U,V,METRES or --depth-range NEAR,FAR instead"
)


@dataclass(frozen=True)
class CameraHeight:
    """The default shape, rescaled so the floor plane lies `metres` below the camera."""

    metres: float
    seed: int = 0

    def fit(self, disp: np.ndarray, camera: Camera, masks: np.ndarray) -> dict[str, Any]:
        _positive(self.metres, "--camera-height")
        from amodal_depth.reconstruct.fuse import backproject

        base = DepthRange(*DEFAULT_DEPTH_RANGE).fit(disp, camera, masks)
        z = depth_from_inverse(disp[0], base["s"], base["t"])
        cand = np.isfinite(z) & ~np.asarray(masks, bool).any(axis=0)
        cand[: z.shape[0] // 2] = False
        if cand.sum() < 50:
            raise UserError(_NO_FLOOR + " (too few pixels below the middle outside the masks)")
        normal, height, share = fit_floor(backproject(z, camera, cand), self.seed)
        f = self.metres / height
        return {
            "rule": "camera_height",
            "camera_height_m": float(self.metres),
            "s": base["s"] / f,
            "t": base["t"] / f,
            "shape_from": list(DEFAULT_DEPTH_RANGE),
            "floor_normal": [round(float(x), 4) for x in normal],
            "floor_inlier_share": round(share, 4),
        }


def fit_floor(pts: np.ndarray, seed: int = 0, iterations: int = 400):
    """RANSAC plane n.x + c = 0 with n within FLOOR_MAX_TILT_DEG of +y (down) ->
    (unit normal pointing down, height of the camera above the plane, inlier share)."""
    rng = np.random.default_rng(seed)
    n = len(pts)
    sub = pts[rng.choice(n, min(n, 4000), replace=False)]
    tri = sub[rng.integers(0, len(sub), (iterations, 3))]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(normals, axis=1)
    ok = norm > 1e-12
    normals[ok] /= norm[ok, None]
    normals *= np.where(normals[:, 1:2] < 0, -1.0, 1.0)
    ok &= normals[:, 1] >= math.cos(math.radians(FLOOR_MAX_TILT_DEG))
    if not ok.any():
        raise UserError(_NO_FLOOR)
    offsets = -np.einsum("ij,ij->i", normals, tri[:, 0])
    thr = FLOOR_INLIER * float(np.median(sub[:, 2]))
    counts = (np.abs(sub @ normals[ok].T + offsets[ok]) < thr).sum(axis=0)
    best = int(np.argmax(counts))
    nrm, off = normals[ok][best], offsets[ok][best]
    inl = pts[np.abs(pts @ nrm + off) < thr]
    if len(inl) < max(30, 0.1 * n):
        raise UserError(_NO_FLOOR + f" (the best plane holds {len(inl)} of {n} pixels)")
    centre = inl.mean(axis=0)  # refine: least-squares plane through the inliers
    nrm = np.linalg.svd(inl - centre, full_matrices=False)[2][2]
    nrm = nrm if nrm[1] > 0 else -nrm
    off = -float(nrm @ centre)
    if off >= 0:  # the camera (origin) must lie above the floor: n.0 + c < 0 with n down
        raise UserError(_NO_FLOOR + " (the plane found is above the camera)")
    return nrm, -off, len(inl) / n


ScaleRule = InverseDepthFit | MetricDepth | DepthRange | MedianDepth | KnownDepths | CameraHeight


def check_rule(rule: ScaleRule, width: int, height: int) -> None:
    """The rule's numbers alone (positive metres, near < far, pixels inside the image), so a
    command can reject them before it writes anything. UserError on the first problem."""
    if isinstance(rule, DepthRange):
        _positive(rule.near, "--depth-range near")
        _positive(rule.far, "--depth-range far")
        if not rule.far > rule.near:
            raise UserError(f"--depth-range {rule.near:g},{rule.far:g}: far must exceed near")
    elif isinstance(rule, MedianDepth):
        _positive(rule.metres, "--median-depth")
    elif isinstance(rule, CameraHeight):
        _positive(rule.metres, "--camera-height")
    elif isinstance(rule, KnownDepths):
        for u, v, m in rule.points:
            what = f"--known-depth {u:g},{v:g},{m:g}"
            _positive(m, what + ": metres")
            if not (0 <= round(u) < width and 0 <= round(v) < height):
                raise UserError(
                    f"{what}: pixel outside the {width}x{height} image (u = column, v = row)"
                )


def to_metric(
    layers: np.ndarray,
    rule: ScaleRule | None,
    camera: Camera,
    masks: np.ndarray,
    max_depth: float = MAX_DEPTH,
) -> tuple[np.ndarray, dict[str, Any]]:
    """[K,H,W] relative inverse depth (or metric depth for MetricDepth) -> ([K,H,W] metres,
    NaN where no surface; the rule's record for reconstruct.json). rule None = DepthRange()."""
    rule = DepthRange() if rule is None else rule
    layers = np.asarray(layers, np.float64)
    info = rule.fit(layers, camera, masks)
    if isinstance(rule, MetricDepth):
        ok = np.isfinite(layers) & (layers > 0) & (layers <= max_depth)
        return np.where(ok, layers, np.nan), info
    info["formula"] = "depth = 1 / (s * disparity + t)"
    return depth_from_inverse(layers, info["s"], info["t"], max_depth), info
