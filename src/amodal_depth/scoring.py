"""How `evaluate` scores one image and summarises a split (steps 2-4 of its protocol).

`score_sample` turns one prediction into per-layer rows (depth metrics per region, the
consistency of each layer pair, boundary F1), aligning a model's disparity with
`metrics.aligned_depth`; `SplitScores` collects the rows of a split and averages them (mean
over layers per image, then over images, NaN skipped, with NaN counts). The ground truth's
own consistency is cached per sample file, since it does not depend on the predictor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from amodal_depth.data.format import SAMPLES_DIR, LayeredSample
from amodal_depth.metrics import (
    BOUNDARY_KEYS,
    CONSISTENCY_KEYS,
    CONSISTENCY_REGIONS,
    DEPTH_KEYS,
    DEPTH_REGIONS,
    aligned_depth,
    boundary_f1,
    depth_metrics,
    hidden_outline,
    pair_consistency,
    region_masks,
    valid_depth,
)

Pairs = list[dict[str, dict[str, float]]]

# The GT consistency of a sample does not depend on the predictor, and it is half the cost of
# scoring an image; `reproduce` evaluates many predictors on one split in one process. Keyed
# by the sample directory and its mtime (samples are replaced by a rename, which changes it).
_GT_PAIRS: dict[tuple[str, str, int], Pairs] = {}
_GT_CACHE_MAX = 20000


def gt_pairs(sample: LayeredSample) -> Pairs:
    """pair_consistency of the true layer depths for (1,2), (2,3), ..."""
    gt = sample.depth.astype(np.float64)
    valid = valid_depth(gt)
    return [pair_consistency(gt, sample.camera, sample.amodal, k, valid) for k in range(1, len(gt))]


def cached_gt_pairs(root: Path, sid: str, sample: LayeredSample) -> Pairs:
    d = root / SAMPLES_DIR / sid
    key = (str(d.resolve()), sid, d.stat().st_mtime_ns)
    if key not in _GT_PAIRS:
        if len(_GT_PAIRS) >= _GT_CACHE_MAX:
            _GT_PAIRS.clear()
        _GT_PAIRS[key] = gt_pairs(sample)
    return _GT_PAIRS[key]


def score_sample(
    sample: LayeredSample,
    pred: np.ndarray,
    *,
    is_disparity: bool,
    gt_pair_metrics: Pairs | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Per-layer rows, and the image's consistency of the prediction and of the ground truth.

    `pred` is [K,H,W]: relative inverse depth (is_disparity) or depth in metres.
    `gt_pair_metrics`: `gt_pairs(sample)` when already known.
    """
    gt = sample.depth.astype(np.float64)
    k_layers = gt.shape[0]
    gt_valid = valid_depth(gt)
    if is_disparity:
        disp = np.asarray(pred, np.float64)
        depth = np.stack([aligned_depth(disp[k], gt[k], gt_valid[k]) for k in range(k_layers)])
    else:
        depth = np.asarray(pred, np.float64)

    if gt_pair_metrics is None:
        gt_pair_metrics = gt_pairs(sample)
    rows: list[dict[str, Any]] = []
    pairs_pred, pairs_gt = [], []
    for k in range(k_layers):
        row: dict[str, Any] = {"layer": k + 1}
        regions = region_masks(gt[k], sample.amodal[k], sample.visible[k])
        for region in DEPTH_REGIONS:
            m = depth_metrics(depth[k], gt[k], regions[region], align=False)
            row.update({f"{region}_{key}": m[key] for key in DEPTH_KEYS})
            row[f"{region}_pixels"] = int(regions[region].sum())
        if k + 1 < k_layers:
            cp = pair_consistency(depth, sample.camera, sample.amodal, k + 1, gt_valid)
            cg = gt_pair_metrics[k]
            pairs_pred.append(cp)
            pairs_gt.append(cg)
        else:
            cp = cg = {r: dict.fromkeys(CONSISTENCY_KEYS, math.nan) for r in CONSISTENCY_REGIONS}
        for region in CONSISTENCY_REGIONS:
            row.update({f"cons_{region}_{key}": cp[region][key] for key in CONSISTENCY_KEYS})
            row.update({f"gtcons_{region}_{key}": cg[region][key] for key in CONSISTENCY_KEYS})
        row["boundary_f1"] = boundary_f1(depth[k], gt[k], gt_valid[k])
        if k > 0:  # o_1 has no hidden part
            outline = hidden_outline(sample.amodal[k], sample.visible[k]) & gt_valid[k]
            row["boundary_f1_hidden_outline"] = boundary_f1(depth[k], gt[k], outline)
        else:
            outline = np.zeros_like(gt_valid[k])
            row["boundary_f1_hidden_outline"] = math.nan
        row["hidden_outline_pixels"] = int(outline.sum())
        rows.append(row)
    return rows, _mean_pairs(pairs_pred), _mean_pairs(pairs_gt)


def _mean_pairs(pairs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        r: {key: _nanmean([p[r][key] for p in pairs]) for key in CONSISTENCY_KEYS}
        for r in CONSISTENCY_REGIONS
    }


def _nanmean(values: list[float]) -> float:
    ok = [v for v in values if not math.isnan(v)]
    return math.fsum(ok) / len(ok) if ok else math.nan


def _summarise(per_image: list[dict[str, dict[str, float]]]) -> tuple[dict, dict]:
    """Mean over images per region/metric, NaN-skipping, and the number of NaN images."""
    means, nans = {}, {}
    for region in per_image[0]:
        vals = {key: [img[region][key] for img in per_image] for key in per_image[0][region]}
        means[region] = {key: _nanmean(v) for key, v in vals.items()}
        nans[region] = {key: sum(math.isnan(x) for x in v) for key, v in vals.items()}
    return means, nans


def _summarise_flat(per_image: list[dict[str, float]]) -> tuple[dict, dict]:
    """`_summarise` for one level of keys (metric -> value)."""
    means = {key: _nanmean([img[key] for img in per_image]) for key in BOUNDARY_KEYS}
    nans = {key: sum(math.isnan(img[key]) for img in per_image) for key in BOUNDARY_KEYS}
    return means, nans


# ------------------------------------------------------------------------------ a split
@dataclass
class SplitScores:
    """Everything `evaluate` accumulates over a split: CSV rows and per-image values."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    depth: list[dict[str, dict[str, float]]] = field(default_factory=list)
    layer: dict[int, list[dict[str, dict[str, float]]]] = field(default_factory=dict)
    cons: list[dict[str, dict[str, float]]] = field(default_factory=list)
    gt_cons: list[dict[str, dict[str, float]]] = field(default_factory=list)
    boundary: list[dict[str, float]] = field(default_factory=list)
    layer_boundary: dict[int, list[dict[str, float]]] = field(default_factory=dict)

    def add(self, sid: str, layer_rows: list[dict[str, Any]], cons: dict, gt_cons: dict) -> None:
        """One image: its `score_sample` output."""
        for r in layer_rows:
            self.rows.append({"id": sid, **r})
            per_region = {
                reg: {key: r[f"{reg}_{key}"] for key in DEPTH_KEYS} for reg in DEPTH_REGIONS
            }
            self.layer.setdefault(r["layer"], []).append(per_region)
            self.layer_boundary.setdefault(r["layer"], []).append(
                {key: r[key] for key in BOUNDARY_KEYS}
            )
        self.boundary.append({key: _nanmean([r[key] for r in layer_rows]) for key in BOUNDARY_KEYS})
        self.depth.append(
            {
                reg: {key: _nanmean([r[f"{reg}_{key}"] for r in layer_rows]) for key in DEPTH_KEYS}
                for reg in DEPTH_REGIONS
            }
        )
        self.cons.append(cons)
        self.gt_cons.append(gt_cons)

    def summary(self) -> dict[str, Any]:
        """The split's means (and NaN counts), in the order of evaluate's JSON."""
        depth, depth_nan = _summarise(self.depth)
        cons, cons_nan = _summarise(self.cons)
        gt_cons, gt_cons_nan = _summarise(self.gt_cons)
        boundary, boundary_nan = _summarise_flat(self.boundary)
        return {
            "depth": depth,
            "depth_per_layer": {str(k): _summarise(v)[0] for k, v in sorted(self.layer.items())},
            "consistency": cons,
            "gt_consistency": gt_cons,
            "boundary": boundary,
            "boundary_per_layer": {
                str(k): _summarise_flat(v)[0] for k, v in sorted(self.layer_boundary.items())
            },
            "nan_counts": {
                "depth": depth_nan,
                "consistency": cons_nan,
                "gt_consistency": gt_cons_nan,
                "boundary": boundary_nan,
            },
        }
