"""Training loss of the ADE models: pure functions on tensors.

Decision (docs/training.md): the model predicts *relative inverse depth* (disparity, >= 0);
the target of layer k is 1/depth_k on its valid pixels (depth > 0). The loss is

* **SSI** - scale-and-shift-invariant L1 after MiDaS-style median / mean-absolute-deviation
  normalisation of prediction and target (``x_hat = (x - median) / mean|x - median|``), with
  the gradient flowing through the prediction's normalisation. One normalisation per
  prediction (layer), or one per group of K layers of an image for `group_alignment`
  variants. Pixel weight: 1 on valid pixels + `invisible_weight` on the target's hidden part
  (amodal_k and not visible_k).
* **grad** - multi-scale gradient matching (MiDaS) on the normalised residual.
* **consistency** (`consistency_loss` variants) - ties consecutive layers (k, k+1) on static
  pixels (valid in both, outside amodal_k) after mapping each prediction into the ground-truth
  disparity frame by a differentiable least-squares scale and shift.
* **anchored** (optional, `anchored_weight` > 0) - the hidden part of layer k scored as an
  observed depth is used at inference: the prediction is fitted (differentiable least squares)
  to the target on the pixels where layer k shows the visible scene (outside the amodal masks
  of o_1..o_{k-1}), and the fitted map's L1 error on the hidden part (amodal_k and not
  visible_k) is divided by the target's mean absolute deviation on those pixels.

Why not L1 in metres: in trials on these scenes far walls dominated a metric loss and the
network never learned the room layout; disparity + robust normalisation fixed it
(docs/training.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from amodal_depth.models.guidance import removed_before

EPS = 1e-6
"""Floor on normalisation scales and denominators, so empty or flat maps give 0, not NaN."""


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (copied from TrainConfig)."""

    invisible_weight: float = 2.0
    grad_weight: float = 0.5
    consistency_weight: float = 0.5
    grad_scales: int = 4
    anchored_weight: float = 0.0
    anchored_grad_weight: float = 0.0


def disparity_target(depth: Tensor) -> tuple[Tensor, Tensor]:
    """(1/depth, valid) with valid = finite depth > 0; invalid pixels hold 0."""
    valid = torch.isfinite(depth) & (depth > 0)
    disp = torch.where(valid, 1.0 / torch.where(valid, depth, torch.ones_like(depth)), 0.0)
    return disp, valid


def masked_median(x: Tensor, mask: Tensor) -> Tensor:
    """Lower median of each row of `x` [N, P] over `mask` [N, P]; 0 for an empty row.

    Masked entries become NaN and `torch.nanmedian` selects the lower median of the rest
    (a selection, not a sort: ~4x faster than sorting 37,632 pixels per row on CPU); the
    gradient reaches the one selected element, as with torch.median.
    """
    filled = torch.where(mask, x, torch.full_like(x, float("nan")))
    med = torch.nanmedian(filled, dim=1).values
    return torch.where(mask.any(dim=1), med, torch.zeros_like(med))


def normalise_median_mad(x: Tensor, mask: Tensor) -> Tensor:
    """MiDaS normalisation of each row of `x` [N, P]: (x - median) / mean|x - median| over
    `mask`. Values outside the mask are returned as 0."""
    m = mask.to(x.dtype)
    shift = masked_median(x, mask).unsqueeze(1)
    centred = x - shift
    count = m.sum(dim=1, keepdim=True).clamp(min=1.0)
    scale = ((centred.abs() * m).sum(dim=1, keepdim=True) / count).clamp(min=EPS)
    return torch.where(mask, centred / scale, torch.zeros_like(x))


def _rows(x: Tensor, group: bool) -> Tensor:
    """[B,K,H,W] -> [B*K, H*W] (one row per prediction) or [B, K*H*W] (one per group)."""
    b, k = x.shape[:2]
    return x.reshape(b, -1) if group else x.reshape(b * k, -1)


def normalise_layers(x: Tensor, mask: Tensor, *, group: bool) -> Tensor:
    """`normalise_median_mad` per prediction (group=False) or per image's K maps (group=True);
    input and output [B,K,H,W]."""
    return normalise_median_mad(_rows(x, group), _rows(mask, group)).reshape(x.shape)


def ssi_l1(
    pred_n: Tensor, target_n: Tensor, weight: Tensor, *, group: bool
) -> tuple[Tensor, Tensor]:
    """Weighted mean |pred_n - target_n| per row (prediction or group) and a [rows] bool of
    rows that have any weight. Inputs [B,K,H,W], already normalised."""
    w = _rows(weight, group)
    err = (_rows(pred_n, group) - _rows(target_n, group)).abs()
    wsum = w.sum(dim=1)
    return (err * w).sum(dim=1) / wsum.clamp(min=EPS), wsum > 0


def gradient_matching(
    residual: Tensor, mask: Tensor, *, scales: int = 4, group: bool = False
) -> Tensor:
    """Multi-scale gradient matching (MiDaS): sum over scales s of
    sum(|dx R| + |dy R|) / count(mask), with R the normalised residual subsampled by 2^s and
    differences taken only between two masked pixels. Returns one value per row ([B*K] or
    [B] for group=True)."""
    b, k = residual.shape[:2]
    total = residual.new_zeros(b if group else b * k)
    m_all = mask.to(residual.dtype)
    for s in range(scales):
        step = 2**s
        r = residual[..., ::step, ::step]
        m = m_all[..., ::step, ::step]
        if r.shape[-1] < 2 and r.shape[-2] < 2:
            break
        mx = m[..., :, 1:] * m[..., :, :-1]
        my = m[..., 1:, :] * m[..., :-1, :]
        gx = (r[..., :, 1:] - r[..., :, :-1]).abs() * mx
        gy = (r[..., 1:, :] - r[..., :-1, :]).abs() * my
        num = _rows(gx, group).sum(1) + _rows(gy, group).sum(1)
        total = total + num / _rows(m, group).sum(1).clamp(min=1.0)
    return total


def fit_scale_shift(pred: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Differentiable least squares (s, t) minimising sum_mask (s*pred + t - target)^2, per
    row of [N, P] inputs. A flat or empty row gives s = 0 and t = the target mean."""
    m = mask.to(pred.dtype)
    n = m.sum(1).clamp(min=1.0)
    mp = (pred * m).sum(1) / n
    mt = (target * m).sum(1) / n
    dp = (pred - mp.unsqueeze(1)) * m
    dt = (target - mt.unsqueeze(1)) * m
    s = (dp * dt).sum(1) / ((dp * dp).sum(1) + EPS)
    return s, mt - s * mp


def consistency_term(
    pred: Tensor, target: Tensor, valid: Tensor, amodal: Tensor
) -> tuple[Tensor, Tensor]:
    """Cross-layer consistency on static pixels, per consecutive pair (k, k+1).

    Each prediction is mapped into the ground-truth disparity frame of its own layer (least
    squares on that layer's valid pixels), then the pair is compared on the pixels where the
    ground-truth layers agree: valid in both and outside amodal_k (removing o_k changes
    nothing else). Value = mean |a_k - a_{k+1}| / mean|g_k - median g_k| (the GT's scale on
    those pixels), so it is unitless like the SSI term. Returns ([B, K-1] values,
    [B, K-1] bool of pairs with static pixels).
    """
    b, k = pred.shape[:2]
    if k < 2:
        z = pred.new_zeros(b, 0)
        return z, z.bool()
    p, g, v = pred.reshape(b * k, -1), target.reshape(b * k, -1), valid.reshape(b * k, -1)
    s, t = fit_scale_shift(p, g, v)
    aligned = (s.unsqueeze(1) * p + t.unsqueeze(1)).reshape(b, k, -1)
    gk = target.reshape(b, k, -1)
    vk = valid.reshape(b, k, -1)
    am = amodal.reshape(b, k, -1)
    static = vk[:, :-1] & vk[:, 1:] & ~am[:, :-1]
    sm = static.to(pred.dtype)
    n = sm.sum(-1)
    diff = ((aligned[:, :-1] - aligned[:, 1:]).abs() * sm).sum(-1) / n.clamp(min=1.0)
    g_rows = gk[:, :-1].reshape(b * (k - 1), -1)
    st_rows = static.reshape(b * (k - 1), -1)
    med = masked_median(g_rows, st_rows).unsqueeze(1)
    gscale = ((g_rows - med).abs() * st_rows).sum(1) / st_rows.sum(1).clamp(min=1)
    gscale = gscale.reshape(b, k - 1).clamp(min=EPS)
    return diff / gscale, n > 0


def anchored_hidden_term(
    pred: Tensor,
    target: Tensor,
    valid: Tensor,
    visible: Tensor,
    amodal: Tensor,
    grad_weight: float = 0.0,
    grad_scales: int = 4,
) -> tuple[Tensor, Tensor]:
    """The hidden part of each layer k >= 2 after fitting the layer where it shows the visible
    scene, as inference with an observed depth does (models/observation.py).

    Per prediction: (s, t) by least squares of s*p + t against the target disparity on the
    pixels valid and outside the amodal masks of o_1..o_{k-1}; value = mean over the hidden
    part (amodal_k, not visible_k, valid) of |s*p + t - g|, divided by the target's mean
    absolute deviation from its median on the fitted pixels (unitless, like SSI). With
    grad_weight > 0, plus grad_weight x the multi-scale gradient matching of that normalised
    residual on the hidden part grown by 2 px (its outline included), so the fitted hidden
    part keeps its edges. Returns ([B, K] values, [B, K] bool of layers with a hidden part
    and enough fitted pixels).
    """
    b, k = pred.shape[:2]
    shown = (valid & ~removed_before(amodal)).reshape(b * k, -1)
    hidden = (amodal & ~visible & valid).reshape(b * k, -1)
    p, g = pred.reshape(b * k, -1), target.reshape(b * k, -1)
    s, t = fit_scale_shift(p, g, shown)
    err = (s.unsqueeze(1) * p + t.unsqueeze(1) - g).abs()
    hf = hidden.to(pred.dtype)
    value = (err * hf).sum(1) / hf.sum(1).clamp(min=1.0)
    med = masked_median(g, shown).unsqueeze(1)
    gscale = ((g - med).abs() * shown).sum(1) / shown.sum(1).clamp(min=1)
    keep = hidden.any(1) & (shown.sum(1) >= 16)
    value = value / gscale.clamp(min=EPS)
    if grad_weight > 0:
        residual = (s.unsqueeze(1) * p + t.unsqueeze(1) - g) / gscale.clamp(min=EPS).unsqueeze(1)
        grown = F.max_pool2d(hf.reshape(b * k, 1, *pred.shape[-2:]), 5, stride=1, padding=2)
        region = (grown.reshape(b, k, *pred.shape[-2:]) > 0) & valid
        gm = gradient_matching(
            residual.reshape(pred.shape), region, scales=grad_scales, group=False
        )
        value = value + grad_weight * gm
    return value.reshape(b, k), keep.reshape(b, k)


def _masked_mean(values: Tensor, keep: Tensor) -> Tensor:
    """Mean of `values` where `keep`; 0 (with a gradient path) when nothing is kept."""
    keep_f = keep.to(values.dtype)
    return (values * keep_f).sum() / keep_f.sum().clamp(min=1.0)


def layered_depth_loss(
    pred: Tensor,
    depth: Tensor,
    visible: Tensor,
    amodal: Tensor,
    *,
    group_alignment: bool = False,
    consistency: bool = False,
    weights: LossWeights | None = None,
) -> dict[str, Tensor]:
    """The criterion. `pred` [B,K,H,W] relative disparity; `depth` [B,K,H,W] metres (0 =
    invalid); `visible`, `amodal` [B,K,H,W] bool. Returns a dict of scalar tensors: `total`,
    `ssi`, `grad`, `consistency` and `anchored` (0 when the term is off).

    total = mean_rows(ssi + grad_weight * grad) + consistency_weight * consistency
    + anchored_weight * anchored, where a row is one prediction (or one image's group of K for
    `group_alignment`) with any valid pixel; rows without valid pixels are skipped, so empty
    masks never give NaN.
    """
    w = weights or LossWeights()
    if pred.shape != depth.shape:
        raise ValueError(f"pred has shape {tuple(pred.shape)}, depth {tuple(depth.shape)}")
    pred = pred.float()
    target, valid = disparity_target(depth.float())
    hidden = amodal & ~visible & valid
    weight = valid.to(pred.dtype) + w.invisible_weight * hidden.to(pred.dtype)

    pred_n = normalise_layers(pred, valid, group=group_alignment)
    with torch.no_grad():
        target_n = normalise_layers(target, valid, group=group_alignment)
    ssi_rows, keep = ssi_l1(pred_n, target_n, weight, group=group_alignment)
    grad_rows = gradient_matching(
        pred_n - target_n, valid, scales=w.grad_scales, group=group_alignment
    )
    ssi = _masked_mean(ssi_rows, keep)
    grad = _masked_mean(grad_rows, keep)
    total = ssi + w.grad_weight * grad
    if consistency:
        cons_pairs, cons_keep = consistency_term(pred, target, valid, amodal)
        cons = _masked_mean(cons_pairs, cons_keep)
        total = total + w.consistency_weight * cons
    else:
        cons = total.new_zeros(())
    if w.anchored_weight > 0:
        anch_rows, anch_keep = anchored_hidden_term(
            pred, target, valid, visible, amodal, w.anchored_grad_weight, w.grad_scales
        )
        anchored = _masked_mean(anch_rows, anch_keep)
        total = total + w.anchored_weight * anchored
    else:
        anchored = total.new_zeros(())
    return {
        "total": total,
        "ssi": ssi.detach(),
        "grad": grad.detach(),
        "consistency": cons.detach(),
        "anchored": anchored.detach(),
    }
