"""Metrics of docs/metrics.md against an independent re-implementation on random input.

The reference functions here are written from docs/metrics.md alone (plain numpy, lstsq,
brute-force nearest neighbours) and never call amodal_depth.metrics helpers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from amodal_depth.metrics import (
    BOUNDARY_THRESHOLDS,
    DEPTH_KEYS,
    boundary_f1,
    boundary_scores,
    consistency_metrics,
    depth_metrics,
)

H, W = 12, 16


def _ref_depth(pred, gt, mask, align):
    p, g = np.asarray(pred, float), np.asarray(gt, float)
    keep = []
    for i in range(g.size):
        pv, gv = p.flat[i], g.flat[i]
        if mask.flat[i] and np.isfinite(pv) and np.isfinite(gv) and gv > 0:
            keep.append(i)
    p, g = p.flat[keep], g.flat[keep]
    if align:
        a = np.stack([p, np.ones_like(p)], 1)
        (s, t), *_ = np.linalg.lstsq(a, g, rcond=None)
        p = s * p + t
    p = np.where(p < 1e-6, 1e-6, p)
    r = np.array([max(pi / gi, gi / pi) for pi, gi in zip(p, g)])
    return {
        "delta1": np.mean(r < 1.25),
        "delta2": np.mean(r < 1.25**2),
        "delta3": np.mean(r < 1.25**3),
        "delta_1_05": np.mean(r < 1.05),
        "delta_1_10": np.mean(r < 1.10),
        "rmse": math.sqrt(np.mean((p - g) ** 2)),
        "abs_rel": np.mean(np.abs(p - g) / g),
    }


def _ref_consistency(a, b, cam, mask, bins, maxd):
    fx, fy, cx, cy = cam

    def norm(d):
        ok = mask & np.isfinite(d) & (d > 0)
        lo, hi = d[ok].min(), d[ok].max()
        return (d - lo) / (hi - lo), ok

    na, oka = norm(a)
    nb, okb = norm(b)
    both = oka & okb
    pixel_diff = np.abs(na[both] - nb[both]).mean()

    def hist(x):
        h = np.zeros(bins)
        for v in x:
            h[min(int(v * bins), bins - 1)] += 1
        return (h / h.sum()).astype(np.float32).astype(float)

    h1, h2 = hist(na[oka]), hist(nb[okb])
    d1, d2 = h1 - h1.mean(), h2 - h2.mean()
    corr = (d1 @ d2) / math.sqrt((d1 @ d1) * (d2 @ d2))

    def cloud(n, ok):
        pts = []
        for v in range(n.shape[0]):
            for u in range(n.shape[1]):
                if ok[v, u]:
                    z = n[v, u]
                    pts.append(((u - cx) / fx * z, (v - cy) / fy * z, z))
        return np.array(pts)

    src, dst = cloud(na, oka), cloud(nb, okb)
    dist = np.sqrt(((src[:, None, :] - dst[None, :, :]) ** 2).sum(-1)).min(1)
    inl = dist < maxd
    fitness = inl.sum() / len(src)
    rmse = math.sqrt(np.mean(dist[inl] ** 2)) if inl.any() else float("nan")
    return {"pixel_diff": pixel_diff, "hist_similarity": corr, "fitness": fitness, "pc_rmse": rmse}


def _ref_boundary(p, g, mask, t):
    """Counts (true, predicted, matched) by a loop over the directed 4-neighbour pairs."""

    def ok(d, y, x):
        return np.isfinite(d[y, x]) and d[y, x] > 0

    n = [0, 0, 0]
    for y in range(g.shape[0]):
        for x in range(g.shape[1]):
            for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                yj, xj = y + dy, x + dx
                if not (0 <= yj < g.shape[0] and 0 <= xj < g.shape[1]):
                    continue
                pix = ((y, x), (yj, xj))
                if not all(mask[q] and ok(g, *q) and ok(p, *q) for q in pix):
                    continue
                ct, cp = g[yj, xj] / g[y, x] > t, p[yj, xj] / p[y, x] > t
                n[0] += ct
                n[1] += cp
                n[2] += ct and cp
    return n


@pytest.mark.parametrize("seed", range(4))
def test_boundary_scores_match_independent_reference(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    g = rng.choice([1.0, 1.08, 1.16, 1.3, 2.0], (H, W))
    p = np.where(rng.random((H, W)) < 0.7, g, rng.choice([1.0, 1.2, 1.5], (H, W))) * 2.5
    g[rng.random((H, W)) < 0.08] = 0.0
    p[rng.random((H, W)) < 0.05] = np.nan
    mask = rng.random((H, W)) < 0.9
    s = boundary_scores(p, g, mask)
    f1 = []
    for i, t in enumerate(BOUNDARY_THRESHOLDS):
        n_true, n_pred, n_match = _ref_boundary(p, g, mask, t)
        assert (s["true"][i], s["predicted"][i], s["matched"][i]) == (n_true, n_pred, n_match)
        prec, rec = n_match / n_pred, n_match / n_true
        f1.append(2 * prec * rec / (prec + rec))
    assert boundary_f1(p, g, mask) == pytest.approx(np.mean(f1))


@pytest.mark.parametrize("seed", range(6))
def test_depth_metrics_match_independent_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    g = rng.uniform(0.5, 6.0, (H, W))
    g[rng.random((H, W)) < 0.1] = 0.0
    g[rng.random((H, W)) < 0.05] = np.nan
    p = g * rng.uniform(0.7, 1.4, (H, W)) * 1.7 + 0.3
    p[rng.random((H, W)) < 0.05] = np.inf
    if seed % 2:
        p = rng.uniform(0.1, 8.0, (H, W))  # unrelated prediction
    mask = rng.random((H, W)) < 0.8
    for align in (True, False):
        got = depth_metrics(p, g, mask, align=align)
        want = _ref_depth(p, g, mask, align)
        for k in DEPTH_KEYS:
            assert got[k] == pytest.approx(want[k], abs=1e-6), (k, align)


@pytest.mark.parametrize("seed", range(6))
def test_consistency_matches_independent_reference(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    a = rng.uniform(1.0, 4.0, (H, W))
    b = a * rng.uniform(0.9, 1.1) + rng.normal(0, 0.03 * (seed + 1), (H, W))
    b[rng.random((H, W)) < 0.1] = 0.0
    a[rng.random((H, W)) < 0.05] = np.nan
    mask = rng.random((H, W)) < 0.85
    cam = (rng.uniform(10, 30), rng.uniform(10, 30), rng.uniform(5, 10), rng.uniform(4, 8))
    bins = [64, 64, 16, 32, 64, 10][seed]
    maxd = [0.02, 0.05, 0.02, 0.1, 0.03, 0.02][seed]
    got = consistency_metrics(a, b, cam, mask, bins=bins, max_correspondence_distance=maxd)
    want = _ref_consistency(a, b, cam, mask, bins, maxd)
    for k in ("pixel_diff", "hist_similarity"):
        assert got[k] == pytest.approx(want[k], abs=1e-6), k
    assert 0.0 < want["fitness"] <= 1.0
    for k in ("fitness", "pc_rmse"):
        assert got[k] == pytest.approx(want[k], abs=1e-4), k
