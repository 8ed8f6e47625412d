"""Depth accuracy and cross-layer consistency metrics (docs/metrics.md), numpy in, floats out.

Every function accepts numpy arrays (torch tensors go through ``np.asarray``) and computes in
float64. Pixels where the ground truth is <= 0 or a value is not finite are always excluded.
Empty regions give NaN rather than an exception, so that averaging code can count them.
The formulas, as implemented, are written out in docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import open3d as o3d

from amodal_depth.data.format import Camera

DEPTH_KEYS = ("delta1", "delta2", "delta3", "delta_1_05", "delta_1_10", "rmse", "abs_rel")
CONSISTENCY_KEYS = ("pixel_diff", "hist_similarity", "fitness", "pc_rmse")
DEPTH_REGIONS = ("all", "amodal", "invisible")
CONSISTENCY_REGIONS = ("all", "static")
BOUNDARY_KEYS = ("boundary_f1", "boundary_f1_hidden_outline")
BOUNDARY_THRESHOLDS = (1.05, 1.10, 1.15, 1.20, 1.25)
"""Depth ratios t of `boundary_f1`: a contour is a neighbour pair with d_far / d_near > t."""
OUTLINE_WINDOW = 5
"""`hidden_outline`: pixels whose 5x5 window holds pixels both in and out of the hidden part."""

MIN_ALIGNED = 1e-6
"""Aligned predictions are clipped below at this value before ratios (docs/metrics.md)."""
DEPTH_RANGE = (1e-3, 100.0)
"""Metres a model's aligned depth is clipped to by `depth_from_disparity` (evaluation)."""

_THRESHOLDS = {
    "delta1": 1.25,
    "delta2": 1.25**2,
    "delta3": 1.25**3,
    "delta_1_05": 1.05,
    "delta_1_10": 1.10,
}

_IDENTITY = np.eye(4)


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    if mask is None:
        return np.ones(shape, bool)
    m = np.asarray(mask).astype(bool)
    if m.shape != shape:
        raise ValueError(f"mask has shape {m.shape}, expected {shape}")
    return m


def valid_depth(depth: Any) -> np.ndarray:
    """Pixels holding a depth: finite and > 0."""
    d = _f64(depth)
    return np.isfinite(d) & (d > 0)


# ------------------------------------------------------------------------------ alignment
def _fit_scale_shift(p: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """Least-squares (s, t) for s*p + t ~ g on 1-D arrays.

    Centred closed form (better conditioned than the raw normal equations). When the fit is
    degenerate -- fewer than 2 pixels, or a prediction constant over them -- we fall back to
    shift only: s = 1, t = mean(g - p). For a constant prediction this is one of the
    (infinitely many) least-squares minimisers; with no pixel at all s, t = 1, 0.
    """
    n = p.size
    if n == 0:
        return 1.0, 0.0
    pm, gm = p.mean(), g.mean()
    dp = p - pm
    var = float(np.dot(dp, dp))
    # Relative test: a prediction that varies only by rounding noise counts as constant.
    if n < 2 or var <= 1e-24 * max(1.0, float(np.dot(p, p))):
        return 1.0, float(gm - pm)
    s = float(np.dot(dp, g - gm)) / var
    return s, float(gm - s * pm)


def scale_shift(pred: Any, gt: Any, mask: Any = None) -> tuple[float, float]:
    """The (s, t) that `align_scale_shift` applies (see there)."""
    p, g = _f64(pred), _f64(gt)
    m = _mask(mask, g.shape) & np.isfinite(p) & np.isfinite(g) & (g > 0)
    return _fit_scale_shift(p[m], g[m])


def align_scale_shift(pred: Any, gt: Any, mask: Any = None) -> np.ndarray:
    """s*pred + t with (s, t) minimising sum over mask of (s*pred + t - gt)^2.

    Pixels with gt <= 0 or a non-finite value are left out of the fit. The whole map is
    returned (float64), aligned with the one (s, t). Degenerate fits: see `_fit_scale_shift`.
    """
    s, t = scale_shift(pred, gt, mask)
    return s * _f64(pred) + t


# ------------------------------------------------------------------------------ accuracy
def depth_metrics(pred: Any, gt: Any, mask: Any = None, align: bool = True) -> dict[str, float]:
    """delta1..3, delta_1_05, delta_1_10, rmse, abs_rel of `pred` against `gt` on `mask`.

    With align=True, `pred` is first aligned by `align_scale_shift` on the same pixels. The
    prediction is then clipped below at 1e-6 (also when align=False: a non-positive depth
    would otherwise pass the ratio test with a negative ratio) and every metric uses that
    clipped value. All NaN when no pixel is left.
    """
    p, g = _f64(pred), _f64(gt)
    if p.shape != g.shape:
        raise ValueError(f"pred has shape {p.shape}, gt {g.shape}")
    m = _mask(mask, g.shape) & np.isfinite(p) & np.isfinite(g) & (g > 0)
    if not m.any():
        return dict.fromkeys(DEPTH_KEYS, float("nan"))
    p, g = p[m], g[m]
    if align:
        s, t = _fit_scale_shift(p, g)
        p = s * p + t
    p = np.maximum(p, MIN_ALIGNED)
    ratio = np.maximum(p / g, g / p)
    out = {k: float(np.mean(ratio < thr)) for k, thr in _THRESHOLDS.items()}
    diff = p - g
    out["rmse"] = float(np.sqrt(np.mean(diff * diff)))
    out["abs_rel"] = float(np.mean(np.abs(diff) / g))
    return {k: out[k] for k in DEPTH_KEYS}


def inverse_depth_fit(pred_disp: Any, gt_depth: Any, mask: Any = None) -> tuple[float, float]:
    """(s, t): least squares of s*disp + t against 1/gt on `mask` (valid gt pixels only)."""
    d, g = _f64(pred_disp), _f64(gt_depth)
    if d.shape != g.shape:
        raise ValueError(f"prediction has shape {d.shape}, gt {g.shape}")
    m = _mask(mask, g.shape) & np.isfinite(d) & np.isfinite(g) & (g > 0)
    inv = np.zeros_like(g)
    np.divide(1.0, g, out=inv, where=m)
    return _fit_scale_shift(d[m], inv[m])


def depth_from_disparity(
    disp: Any, scale: float, shift: float, *, clip: tuple[float, float] | None = DEPTH_RANGE
) -> np.ndarray:
    """Depth in metres from relative inverse depth and a known scale and shift: the one
    disparity -> depth conversion, depth = 1 / (scale * disp + shift), float64.

    Where scale * disp + shift <= 1e-6 there is no finite depth, and `clip` says what then:
    - clip=(lo, hi) (default DEPTH_RANGE, the evaluation protocol): 1 / max(inverse, 1e-6)
      clipped to [lo, hi] m, so such a pixel becomes a far but finite depth (100 m is ten
      times the deepest room the generator makes);
    - clip=None: inf there, every other pixel unclipped.
    NaN in the disparity stays NaN either way. The (scale, shift) usually come from
    `inverse_depth_fit`; `aligned_depth` does both."""
    inv = scale * _f64(disp) + shift
    with np.errstate(invalid="ignore", divide="ignore"):
        if clip is not None:
            return np.clip(1.0 / np.maximum(inv, MIN_ALIGNED), clip[0], clip[1])
        far = np.where(np.isnan(inv), np.nan, np.inf)
        return np.where(inv > MIN_ALIGNED, 1.0 / np.maximum(inv, MIN_ALIGNED), far)


def aligned_depth(disp: Any, gt_depth: Any, mask: Any = None) -> np.ndarray:
    """Metric depth of a model's relative inverse depth as the evaluation scores it: the
    `inverse_depth_fit` against the truth on `mask`, applied by `depth_from_disparity`
    (clipped to DEPTH_RANGE)."""
    s, t = inverse_depth_fit(disp, gt_depth, mask)
    return depth_from_disparity(disp, s, t)


# ------------------------------------------------------------------------------ consistency
def camera_params(camera: Any) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) from a Camera (or any object with those attributes), a mapping with
    those keys, a 4-sequence/array/tensor (fx, fy, cx, cy) or a 3x3 intrinsic matrix."""
    if isinstance(camera, Mapping):
        return (float(camera["fx"]), float(camera["fy"]), float(camera["cx"]), float(camera["cy"]))
    if isinstance(camera, Camera) or all(hasattr(camera, k) for k in ("fx", "fy", "cx", "cy")):
        return (float(camera.fx), float(camera.fy), float(camera.cx), float(camera.cy))
    arr = np.asarray(camera, dtype=np.float64)
    if arr.shape == (3, 3):
        return float(arr[0, 0]), float(arr[1, 1]), float(arr[0, 2]), float(arr[1, 2])
    if arr.size != 4:
        raise ValueError(
            "camera must be a Camera, a dict with fx, fy, cx, cy, (fx, fy, cx, cy) or a 3x3 K"
        )
    arr = arr.ravel()
    return float(arr[0]), float(arr[1]), float(arr[2]), float(arr[3])


def _normalise(depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] over `valid`; a constant map becomes all zeros (no NaN)."""
    out = np.zeros_like(depth)
    if valid.any():
        v = depth[valid]
        lo, hi = v.min(), v.max()
        out[valid] = (v - lo) / (hi - lo) if hi > lo else 0.0
    return out


def _histogram(values: np.ndarray, bins: int) -> np.ndarray:
    """`bins` equal bins over the closed interval [0, 1] (1.0 falls in the last bin, unlike
    cv2.calcHist's half-open range), normalised to sum 1, float32 as compareHist needs."""
    h = np.histogram(values, bins=bins, range=(0.0, 1.0))[0].astype(np.float64)
    total = h.sum()
    return (h / total if total > 0 else h).astype(np.float32)


def _back_project(
    z: np.ndarray, valid: np.ndarray, params: tuple[float, float, float, float]
) -> np.ndarray:
    fx, fy, cx, cy = params
    v, u = np.nonzero(valid)  # row-major order: deterministic point order
    zz = z[v, u]
    pts = np.empty((zz.size, 3), np.float64)
    pts[:, 0] = (u - cx) / fx * zz
    pts[:, 1] = (v - cy) / fy * zz
    pts[:, 2] = zz
    return pts


def _inlier_rmse(src: np.ndarray, dst: np.ndarray, corr: np.ndarray) -> float:
    """Open3D's inlier RMSE recomputed from its correspondence set in a fixed order.

    Open3D sums the squared distances in parallel, so its own value varies in the last bits
    from run to run; the same sum in source-point order is reproducible. No correspondence
    -> NaN (Open3D reports 0, which would read as "perfect").
    """
    if corr.size == 0:
        return float("nan")
    corr = corr[np.argsort(corr[:, 0], kind="stable")]
    d = src[corr[:, 0]] - dst[corr[:, 1]]
    return float(np.sqrt(np.einsum("ij,ij->", d, d) / len(corr)))


def consistency_metrics(
    depth_a: Any,
    depth_b: Any,
    camera: Any,
    mask: Any = None,
    bins: int = 64,
    max_correspondence_distance: float = 0.02,
) -> dict[str, float]:
    """pixel_diff, hist_similarity, fitness, pc_rmse between two depth maps of one view.

    Valid pixels of a map: finite, > 0 and inside `mask` (None = everywhere). Each map is
    min-max normalised to [0, 1] over its own valid pixels, then:
    pixel_diff = mean |A - B| over pixels valid in both; hist_similarity = cv2.compareHist
    (HISTCMP_CORREL) of `bins`-bin histograms over [0, 1], each summing to 1;
    fitness, pc_rmse = Open3D evaluate_registration(source=P(A), target=P(B),
    max_correspondence_distance, identity), where P back-projects every valid pixel with the
    normalised value as z. No inlier -> pc_rmse NaN (Open3D says 0). Empty source -> both NaN.
    """
    a, b = _f64(depth_a), _f64(depth_b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"depth maps must be two H x W arrays, got {a.shape} and {b.shape}")
    m = _mask(mask, a.shape)
    va, vb = m & valid_depth(a), m & valid_depth(b)
    na, nb = _normalise(a, va), _normalise(b, vb)
    nan = float("nan")

    both = va & vb
    pixel_diff = float(np.mean(np.abs(na[both] - nb[both]))) if both.any() else nan

    if va.any() and vb.any():
        ha, hb = _histogram(na[va], bins), _histogram(nb[vb], bins)
        hist = float(cv2.compareHist(ha, hb, cv2.HISTCMP_CORREL))
    else:
        hist = nan

    params = camera_params(camera)
    if not va.any():
        fitness, pc_rmse = nan, nan
    elif not vb.any():
        fitness, pc_rmse = 0.0, nan
    else:
        src_pts, dst_pts = _back_project(na, va, params), _back_project(nb, vb, params)
        src = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(src_pts))
        dst = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(dst_pts))
        r = o3d.pipelines.registration.evaluate_registration(
            src, dst, float(max_correspondence_distance), _IDENTITY
        )
        fitness = float(r.fitness)
        pc_rmse = _inlier_rmse(src_pts, dst_pts, np.asarray(r.correspondence_set))
    return {
        "pixel_diff": pixel_diff,
        "hist_similarity": hist,
        "fitness": fitness,
        "pc_rmse": pc_rmse,
    }


# ------------------------------------------------------------------------------ regions
def region_masks(gt_depth_k: Any, amodal_k: Any, visible_k: Any) -> dict[str, np.ndarray]:
    """The three evaluation regions of layer k: `all` (valid gt), `amodal` (o_k's amodal
    mask), `invisible` (o_k's hidden part, amodal and not visible), each within valid gt."""
    valid = valid_depth(gt_depth_k)
    amodal = np.asarray(amodal_k).astype(bool)
    visible = np.asarray(visible_k).astype(bool)
    return {
        "all": valid,
        "amodal": valid & amodal,
        "invisible": valid & amodal & ~visible,
    }


def static_mask(amodal: Any, k: int, k_next: int | None = None) -> np.ndarray:
    """Pixels that do not change between layers k and k_next (1-based; default k + 1).

    Going from layer k to layer k_next removes o_k ... o_{k_next - 1}; outside the union of
    their amodal masks the true depth is the same in both layers.
    """
    am = np.asarray(amodal).astype(bool)
    k_next = k + 1 if k_next is None else k_next
    if not 1 <= k < k_next <= am.shape[0]:
        raise ValueError(f"layers ({k}, {k_next}) out of range for K = {am.shape[0]}")
    return ~np.any(am[k - 1 : k_next - 1], axis=0)


def pair_consistency(
    depths: Any, camera: Any, amodal: Any, k: int, valid: Any = None, **kwargs: Any
) -> dict[str, dict[str, float]]:
    """consistency_metrics of layers (k, k+1) (1-based) in the regions `all` and `static`.

    `valid` ([K,H,W] or [H,W], optional) restricts both regions, e.g. to pixels where the
    ground truth of both layers has a surface, so predictions and GT are scored alike.
    """
    d = _f64(depths)
    base = np.ones(d.shape[1:], bool)
    if valid is not None:
        v = np.asarray(valid).astype(bool)
        base = v[k - 1] & v[k] if v.ndim == 3 else v
    regions = {"all": base, "static": base & static_mask(amodal, k)}
    return {
        name: consistency_metrics(d[k - 1], d[k], camera, mask=m, **kwargs)
        for name, m in regions.items()
    }


def layered_consistency(
    depths: Any, camera: Any, amodal: Any, valid: Any = None, **kwargs: Any
) -> dict[str, dict[str, float]]:
    """Mean over consecutive pairs (1,2), (2,3), ... of `pair_consistency`, per region.

    The mean skips NaN pairs (e.g. a pair without inliers has no pc_rmse); all NaN when
    K < 2 or no pair is defined.
    """
    d = _f64(depths)
    pairs = [pair_consistency(d, camera, amodal, k, valid, **kwargs) for k in range(1, len(d))]
    return {
        region: {key: _nanmean([p[region][key] for p in pairs]) for key in CONSISTENCY_KEYS}
        for region in CONSISTENCY_REGIONS
    }


# ------------------------------------------------------------------------------ boundaries
def _contours(d: np.ndarray, thresholds: np.ndarray) -> list[np.ndarray]:
    """The four directed contour maps of depth `d` (NaN = not valid), each [T, ...]:
    right neighbour farther, left farther, lower farther, upper farther, by ratio > t."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a, b = d[:, :-1], d[:, 1:]  # horizontal pairs (i, j) = (x, x + 1)
        c, e = d[:-1, :], d[1:, :]  # vertical pairs (i, j) = (y, y + 1)
        ratios = (b / a, a / b, e / c, c / e)
    t = thresholds.reshape(-1, 1, 1)
    return [r[None] > t for r in ratios]


def boundary_scores(
    pred_depth: Any,
    gt_depth: Any,
    mask: Any = None,
    thresholds: Sequence[float] = BOUNDARY_THRESHOLDS,
) -> dict[str, np.ndarray]:
    """Per-threshold depth-boundary counts and scores (see `boundary_f1`).

    Returns arrays over `thresholds`: `threshold`, `true` (true contours), `predicted`,
    `matched` (both), `precision` (matched / predicted; 0 with no predicted contour),
    `recall` (matched / true; NaN with no true contour) and `f1` (2PR / (P + R); 0 when
    P + R = 0, NaN with no true contour).
    """
    p, g = _f64(pred_depth), _f64(gt_depth)
    if p.shape != g.shape or g.ndim != 2:
        raise ValueError(f"depth maps must be two H x W arrays, got {p.shape} and {g.shape}")
    ok = _mask(mask, g.shape) & valid_depth(g) & valid_depth(p)
    # An invalid pixel becomes NaN, so every ratio involving it is NaN and no contour.
    p, g = np.where(ok, p, np.nan), np.where(ok, g, np.nan)
    thr = np.asarray(thresholds, dtype=np.float64).ravel()
    n_true = np.zeros(thr.size, np.int64)
    n_pred = np.zeros(thr.size, np.int64)
    n_match = np.zeros(thr.size, np.int64)
    if g.shape[0] and g.shape[1]:
        for cp, cg in zip(_contours(p, thr), _contours(g, thr)):
            n_true += cg.sum(axis=(1, 2))
            n_pred += cp.sum(axis=(1, 2))
            n_match += (cp & cg).sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_pred > 0, n_match / np.maximum(n_pred, 1), 0.0)
        recall = np.where(n_true > 0, n_match / np.maximum(n_true, 1), np.nan)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1), 0.0)
    f1 = np.where(n_true > 0, f1, np.nan)
    return {
        "threshold": thr,
        "true": n_true,
        "predicted": n_pred,
        "matched": n_match,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def boundary_f1(
    pred_depth: Any,
    gt_depth: Any,
    mask: Any = None,
    thresholds: Sequence[float] = BOUNDARY_THRESHOLDS,
) -> float:
    """Depth-boundary F1 after Depth Pro (Bochkovskii et al., 2024), pixel-exact.

    For every pair of 4-neighbours (i, j) whose two pixels are both valid (gt and prediction
    finite and > 0) and both inside `mask` (None = everywhere), a contour runs between them
    when d_j / d_i > t: i is the nearer, occluding pixel. Horizontal and vertical pairs and
    both orientations are separate contours, so a predicted contour matches a true one only
    at the same pair with the same near side. Per threshold: precision = matched /
    predicted (0 with no predicted contour), recall = matched / true, F1 = 2PR / (P + R)
    (0 when both are 0); the result is the mean F1 over the thresholds that have a true
    contour, NaN when none has (no true contour in the region). Ratios only: the score is
    invariant to a positive scale of either map. Depth, not disparity.
    """
    f1 = boundary_scores(pred_depth, gt_depth, mask, thresholds)["f1"]
    ok = np.isfinite(f1)
    return float(f1[ok].mean()) if ok.any() else float("nan")


def hidden_outline(amodal_k: Any, visible_k: Any, window: int = OUTLINE_WINDOW) -> np.ndarray:
    """Pixels within 2 px (Chebyshev, for the default 5x5 window) of the border of layer k's
    hidden part H = amodal_k and not visible_k, on both sides of it.

    outline = dilate(H) and not erode(H), both with a `window` x `window` square: a pixel is
    in it when its window holds a pixel of H and a pixel outside H. Pixels beyond the image
    count as neither, so the image edge is no border. Empty when H is empty (layer 1).
    """
    hidden = np.asarray(amodal_k).astype(bool) & ~np.asarray(visible_k).astype(bool)
    if not hidden.any():
        return np.zeros(hidden.shape, bool)
    h = hidden.astype(np.uint8)
    kernel = np.ones((window, window), np.uint8)
    dil = cv2.dilate(h, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    ero = cv2.erode(h, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=1)
    return (dil > 0) & (ero == 0)


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(arr)
    return float(arr[ok].mean()) if ok.any() else float("nan")
