"""The observed depth of the visible scene as a second input, and the units it brings.

Users often have the depth of what is visible already: an RGB-D or LiDAR camera (metric
depth with holes), or a monocular model such as Depth Anything V2 (relative inverse depth,
unknown scale and shift). A model with `ModelConfig.observed_depth` reads it as two extra
channels beside the RGB image; every model, with or without that input, uses it to put its
output into the observation's units.

Network input (`observation_input`): the observation as inverse depth o (1/depth for a depth
map, the values themselves for a disparity map), normalised per image over its valid pixels
to (o - median) / mean|o - median|, clipped to [-8, 8] and 0 at holes, plus a validity
channel. Why this normalisation: it removes exactly the unknown scale and shift of relative
inverse depth (the ambiguity of monocular models), it is the normalisation of the training
loss (so input and target live on one scale), and median / mean absolute deviation ignore a
few wild values (flying pixels, far returns). Metric observations lose their units here on
purpose: the same network serves sensors and monocular models, and the units come back in
`fit_to_observation`.

Output units (`fit_to_observation`): the model predicts relative inverse depth d_k per layer.
Wherever no object is removed between layer 1 and layer k (outside the amodal masks of
o_1..o_{k-1}) the true layer k equals the visible scene, so each layer is fitted there to the
observation by least squares, s_k * d_k + t_k ~ o, with one trimming pass that drops pixels
more than 3 median absolute deviations off (holes at edges, sensor outliers). A depth
observation then gives depth = 1 / (s_k d_k + t_k) in its units; inverse depths below
`INVERSE_DEPTH_FLOOR` x the observation's 1st percentile are clipped there (depth is never
infinite: at most 1 / 0.25 = 4x the far end of what was observed). A disparity observation
gives s_k d_k + t_k, the same kind and units. Where layer k shows the visible scene and the
observation is valid, the layer is then the observation itself (`keep_observed`): the user's
measurement of what is visible is kept as it is, and the model supplies what it cannot see,
the holes of the observation and the hidden parts.

Object anchoring (depth observations): the hidden part of o_k in layer k continues o_k's
visible part, which the observation measures. After the per-layer fit, each hidden part is
scaled by the observed / predicted depth ratio of o_k's visible pixels within ANCHOR_BAND_PX
of it (o_k's visible part = amodal_k outside the amodal masks of o_1..o_{k-1}), as a smooth
field that follows the nearest part of the band (`_anchor_hidden`); then blended with the
plane that o_k's observed visible part spans next to the hidden part (`_plane_blend`: the
inverse depth of a 3D plane is affine in the pixel coordinates). Chosen on the val splits
(benchmarks/observed_anchor.py, docs/observed-depth.md): given the true depth, the RGB-only
shipped weights' hidden-part RMSE on data/cpu val (40 images) is 0.50 m unanchored, 0.31 m
with one median ratio per object, 0.25 m with the field and 0.23 m with field and plane.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from amodal_depth.errors import UserError

OBSERVATION_CHANNELS = (
    "observed inverse depth, normalised per image: (o - median) / mean|o - median|, 0 at holes",
    "validity (1 = observed)",
)
DEPTH_KINDS = ("depth", "disparity")
MIN_VALID_PIXELS = 64
"""Fewer observed pixels than this make the observation unusable (one-line error)."""
CLIP = 8.0
"""Normalised observation values are clipped to [-CLIP, CLIP]."""
INVERSE_DEPTH_FLOOR = 0.25
"""Fitted inverse depth is clipped below at this share of the observation's 1st percentile."""
ANCHOR_BAND_PX = 4
"""Visible pixels within this distance of an object's hidden part anchor its depth."""
ANCHOR_MIN_PIXELS = 16
ANCHOR_SIGMA = 0.05
"""Spatial scale over which the anchoring correction follows the visible band, as a share of
the image's short side (8.4 px at 224x168)."""
PLANE_BAND = 0.07
"""The plane of `_plane_blend` is fitted to the visible pixels within this share of the short
side (12 px at 224x168) of the hidden part."""
PLANE_MIN_PIXELS = 24
PLANE_MAX_RATIO = 4.0
"""The plane's depth is clipped to within this factor of the anchored prediction."""
ANCHOR_GRID = 256
"""The anchoring field of a larger image is computed at this short side and resized back."""
ANCHOR_FADE = 0.01
"""Where the band's Gaussian weight is below this, the correction fades to the band's median."""


def check_observation(depth: np.ndarray, height: int, width: int, kind: str) -> np.ndarray:
    """A user's observed depth map -> (valid HxW bool) after the checks every entry point
    shares: its size, its kind, no negative values, enough valid pixels. 0, NaN and +inf are
    holes."""
    if kind not in DEPTH_KINDS:
        raise UserError(f"depth kind must be one of {', '.join(DEPTH_KINDS)}, got {kind!r}")
    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.shape != (height, width):
        raise UserError(
            f"the observed depth must be HxW = {height}x{width} like the image, got "
            f"{'x'.join(map(str, depth.shape))}; resize it to the image first"
        )
    if not np.issubdtype(depth.dtype, np.number) or np.issubdtype(depth.dtype, np.complexfloating):
        raise UserError(f"the observed depth must hold real numbers, got dtype {depth.dtype}")
    d = depth.astype(np.float64)
    finite = np.isfinite(d)
    if (d[finite] < 0).any():
        raise UserError(
            f"the observed depth has {int((d[finite] < 0).sum())} negative values; "
            "holes must be 0 or NaN"
        )
    valid = finite & (d > 0)
    if int(valid.sum()) < MIN_VALID_PIXELS:
        raise UserError(
            f"the observed depth has only {int(valid.sum())} valid pixels (> 0 and finite); "
            f"at least {MIN_VALID_PIXELS} are needed"
        )
    return valid


def inverse_observation(depth: np.ndarray, valid: np.ndarray, kind: str) -> np.ndarray:
    """Observed depth (or disparity) -> inverse depth o (float32, 0 at holes)."""
    d = np.where(valid, depth, 1.0).astype(np.float64)
    inv = 1.0 / d if kind == "depth" else d
    return np.where(valid, inv, 0.0).astype(np.float32)


def observation_input(inverse: Tensor, valid: Tensor) -> Tensor:
    """inverse [B,H,W] observed inverse depth (any scale and shift), valid [B,H,W] bool ->
    the network's [B,2,H,W] observation channels (OBSERVATION_CHANNELS). An image with fewer
    than MIN_VALID_PIXELS valid pixels gets all zeros (= no observation)."""
    if inverse.dim() != 3 or valid.shape != inverse.shape:
        raise UserError(
            f"observation must be [B,H,W] with a validity mask of the same shape, got "
            f"{list(inverse.shape)} and {list(valid.shape)}"
        )
    out = torch.zeros((inverse.shape[0], 2, *inverse.shape[1:]), dtype=torch.float32,
                      device=inverse.device)  # fmt: skip
    for i in range(inverse.shape[0]):
        m = valid[i].bool()
        vals = inverse[i][m].float()
        if vals.numel() < MIN_VALID_PIXELS:
            continue
        med = vals.median()
        mad = (vals - med).abs().mean().clamp_min(1e-8)
        norm = ((inverse[i].float() - med) / mad).clamp(-CLIP, CLIP)
        out[i, 0] = torch.where(m, norm, torch.zeros_like(norm))
        out[i, 1] = m.float()
    return out


def resize_observation(inverse: Tensor, valid: Tensor, size: tuple[int, int]) -> tuple:
    """Resize [B,H,W] inverse depth with holes to (h, w) by normalised convolution: holes do
    not bleed into their neighbours; a pixel is valid when most of its footprint was."""
    import torch.nn.functional as F

    v = valid.float()[:, None]
    num = F.interpolate(inverse.float()[:, None] * v, size, mode="bilinear", antialias=True)
    den = F.interpolate(v, size, mode="bilinear", antialias=True)
    out_valid = den[:, 0] > 0.5
    out = torch.where(out_valid, num[:, 0] / den[:, 0].clamp_min(1e-6), torch.zeros_like(num[:, 0]))
    return out, out_valid


def _line(d: np.ndarray, o: np.ndarray) -> tuple[float, float]:
    """Least squares s, t of s*d + t ~ o in closed form (O(n), no matrix factorisation: the
    fit runs over every pixel of a photo); a constant d gives s = 0, t = mean(o)."""
    dm, om = float(d.mean()), float(o.mean())
    dd = d - dm
    var = float(np.dot(dd, dd))
    if var <= 1e-20 * max(1.0, dm * dm) * len(d):
        return 0.0, om
    s = float(np.dot(dd, o - om)) / var
    return s, om - s * dm


def _fit(d: np.ndarray, o: np.ndarray) -> tuple[float, float]:
    """Least squares s, t of s*d + t ~ o with one 3-MAD trimming pass."""
    s, t = _line(d, o)
    r = np.abs(s * d + t - o)
    keep = r <= 3.0 * max(float(np.median(r)), 1e-12) * 1.4826
    if keep.sum() >= MIN_VALID_PIXELS and keep.sum() < len(d):
        s, t = _line(d[keep], o[keep])
    return float(s), float(t)


def _anchor_hidden(
    layer: np.ndarray,
    inverse: np.ndarray,
    valid: np.ndarray,
    seen: np.ndarray,
    hidden: np.ndarray,
    sigma: float = ANCHOR_SIGMA,
) -> None:
    """Anchor o_k's hidden part to the observed depth of its visible part, in place.

    The per-layer fit leaves each object's depth off by whatever the model got wrong about
    that object; the observation measures the object's visible part, and the hidden part
    continues it across the occlusion boundary. The correction is the log ratio observed /
    predicted depth on o_k's visible pixels within ANCHOR_BAND_PX of the hidden part (all of
    its visible pixels when that band is too small), carried into the hidden part as a smooth
    field: its median plus the residuals' normalised Gaussian average (sigma = ANCHOR_SIGMA
    x the short side), which fades to the median where the band is farther than a few sigma.
    So a hidden part next to a surface that the model tilted wrongly is corrected by the
    nearest observed stretch of that surface, not by one ratio for the whole object.
    sigma = 0: the median ratio alone. `layer` holds inverse depth here."""
    if not hidden.any():
        return
    size = 2 * ANCHOR_BAND_PX + 1
    band = cv2.dilate(hidden.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
    sel = band & seen & valid & (layer > 0)
    if sel.sum() < ANCHOR_MIN_PIXELS:
        sel = seen & valid & (layer > 0)
    if sel.sum() < ANCHOR_MIN_PIXELS:
        return
    log_ratio = np.zeros(layer.shape, np.float64)  # log(observed depth / predicted depth)
    log_ratio[sel] = np.log(layer[sel] / inverse[sel])
    med = float(np.median(log_ratio[sel]))
    if sigma <= 0:
        layer[hidden] = layer[hidden] / np.exp(med)
        return
    residual = _smooth_residual((log_ratio - med) * sel, sel.astype(np.float64), sigma)
    layer[hidden] = layer[hidden] / np.exp(med + residual[hidden])


def _smooth_residual(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised Gaussian average of `values` (already multiplied by `weight`), sigma a share
    of the short side, faded to 0 where the weight is below ANCHOR_FADE. Large images are
    averaged on a grid of at most ANCHOR_GRID px on the short side (the field is smooth)."""
    h, w = weight.shape
    f = min(1.0, ANCHOR_GRID / min(h, w))
    small = (max(1, round(w * f)), max(1, round(h * f)))
    if f < 1.0:
        values = cv2.resize(values, small, interpolation=cv2.INTER_AREA)
        weight = cv2.resize(weight, small, interpolation=cv2.INTER_AREA)
    sigma_px = sigma * min(small)
    num = cv2.GaussianBlur(values, (0, 0), sigma_px)
    den = cv2.GaussianBlur(weight, (0, 0), sigma_px)
    out = num / np.maximum(den, 1e-12) * np.clip(den / ANCHOR_FADE, 0.0, 1.0)
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR) if f < 1.0 else out


def _plane_blend(
    layer: np.ndarray, inverse: np.ndarray, valid: np.ndarray, seen: np.ndarray, hidden: np.ndarray
) -> None:
    """Blend o_k's anchored hidden part with the plane its observed visible part spans, in
    place (`layer` holds inverse depth).

    For a pinhole camera the inverse depth of a 3D plane is affine in the pixel coordinates,
    1/z = a u + b v + c, so a face of o_k that continues behind the occluder is extrapolated
    exactly by the affine fit to its observed inverse depth next to the hidden part (least
    squares with one 3-MAD trimming pass). Objects are not one plane, so the result is the
    geometric mean of that plane and the anchored prediction (the plane clipped to within
    PLANE_MAX_RATIO of the prediction first): the plane corrects the depth where the face
    continues, the prediction keeps the object's shape where it does not."""
    if not hidden.any():
        return
    h, w = layer.shape
    r = max(ANCHOR_BAND_PX, round(PLANE_BAND * min(h, w)))
    hy, hx = np.nonzero(hidden)
    y0, y1 = max(0, hy.min() - r), min(h, hy.max() + r + 1)  # the band's bounding box
    x0, x1 = max(0, hx.min() - r), min(w, hx.max() + r + 1)
    roi = np.s_[y0:y1, x0:x1]
    size = 2 * r + 1
    band = cv2.dilate(hidden[roi].astype(np.uint8), np.ones((size, size), np.uint8)) > 0
    ys, xs = np.nonzero(band & seen[roi] & valid[roi])
    if len(ys) < PLANE_MIN_PIXELS or np.ptp(xs) < 2 or np.ptp(ys) < 2:
        return  # too few pixels, or a line of them: the plane is not determined
    ys, xs = ys + y0, xs + x0
    a = np.stack([xs, ys, np.ones_like(xs)], axis=1).astype(np.float64)
    b = inverse[ys, xs].astype(np.float64)
    coef = np.linalg.lstsq(a, b, rcond=None)[0]
    res = np.abs(a @ coef - b)
    keep = res <= 3.0 * 1.4826 * max(float(np.median(res)), 1e-12)
    if keep.sum() >= PLANE_MIN_PIXELS:
        coef = np.linalg.lstsq(a[keep], b[keep], rcond=None)[0]
    pred = layer[hy, hx]
    plane = np.clip(coef[0] * hx + coef[1] * hy + coef[2], pred / PLANE_MAX_RATIO,
                    pred * PLANE_MAX_RATIO)  # fmt: skip
    layer[hy, hx] = np.sqrt(plane * pred)


def fit_to_observation(
    disp: np.ndarray,
    inverse: np.ndarray,
    valid: np.ndarray,
    amodal: np.ndarray,
    kind: str,
    anchor: bool = True,
    anchor_sigma: float = ANCHOR_SIGMA,
    plane: bool = True,
    keep_observed: bool = True,
) -> tuple[np.ndarray, list[list[float]]]:
    """Relative inverse depth [K,H,W] -> layers in the observation's kind and units, and the
    (s_k, t_k) applied (module docstring). amodal [K,H,W] bool, front to back. anchor: scale
    each hidden part to its object's observed visible depth (`_anchor_hidden`, with
    `anchor_sigma` as its sigma; depth kind); plane: then blend it with the plane of that
    visible depth (`_plane_blend`; only with anchor); keep_observed: where layer k shows the
    visible scene (outside the amodal masks of o_1..o_{k-1}) and the observation is valid,
    layer k is the observation itself."""
    k_layers = disp.shape[0]
    removed = np.zeros(valid.shape, bool)
    all_fit = _fit(disp[0][valid].astype(np.float64), inverse[valid].astype(np.float64))
    fits, out = [], np.empty(disp.shape, np.float32)
    floor = INVERSE_DEPTH_FLOOR * float(np.percentile(inverse[valid], 1))
    for k in range(k_layers):
        static = valid & ~removed
        if static.sum() >= MIN_VALID_PIXELS:
            s, t = _fit(disp[k][static].astype(np.float64), inverse[static].astype(np.float64))
        else:
            s, t = all_fit
        fits.append([s, t])
        inv = s * disp[k].astype(np.float64) + t
        if kind == "depth":
            inv = np.maximum(inv, max(floor, 1e-12))
            if anchor and k > 0:
                seen, hidden = amodal[k] & ~removed, amodal[k] & removed
                _anchor_hidden(inv, inverse, valid, seen, hidden, anchor_sigma)
                if plane:
                    _plane_blend(inv, inverse, valid, seen, hidden)
                inv = np.maximum(inv, max(floor, 1e-12))  # the floor holds after anchoring
        if keep_observed:  # after anchoring, which reads the prediction there
            inv[static] = inverse[static]
        out[k] = 1.0 / inv if kind == "depth" else inv
        removed |= amodal[k]
    return out, fits
