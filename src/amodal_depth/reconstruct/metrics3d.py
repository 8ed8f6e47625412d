"""3D metrics of a fused reconstruction against the truth fused by the same rule
(docs/reconstruct.md, "Metrics"). Points in metres; numpy arrays in, floats out.

  chamfer_l1            (mean over predicted points of the distance to the nearest true point
                        + mean over true points of the distance to the nearest predicted
                        point) / 2
  precision / recall@t  share of predicted points within t of the truth / of true points
                        within t of the prediction; fscore@t = 2 P R / (P + R) (0 if both 0)
  hidden_completeness@t share of the true points of layers k >= 2 (by the fusion rule: inside
                        the removed objects' regions) within t of the whole prediction
  visible_fscore@t      the F-score of the layer-1 points of both clouds alone

Nearest neighbours are exact (scipy cKDTree). An empty cloud gives NaN for the distances
and 0 for the shares that need its points. `max_queries` trades exactness for time: the means
are then estimated from random query subsets (against all points, so without bias).
"""

from __future__ import annotations

import numpy as np

from amodal_depth.reconstruct.fuse import LayeredPointCloud

TAUS = (0.02, 0.05, 0.10)
"""Distance thresholds in metres (2, 5, 10 cm)."""


def nearest_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For every point of a [N,3], the distance to the nearest point of b [M,3] (inf if b is
    empty)."""
    from scipy.spatial import cKDTree

    a = np.asarray(a, np.float64).reshape(-1, 3)
    b = np.asarray(b, np.float64).reshape(-1, 3)
    if len(b) == 0:
        return np.full(len(a), np.inf)
    if len(a) == 0:
        return np.zeros(0)
    return cKDTree(b).query(a, k=1)[0]


def chamfer_l1(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean of both directions' mean nearest-neighbour distance (metres); NaN if a cloud is
    empty."""
    if len(pred) == 0 or len(gt) == 0:
        return float("nan")
    return 0.5 * float(nearest_distances(pred, gt).mean() + nearest_distances(gt, pred).mean())


def _share(d: np.ndarray, tau: float) -> float:
    return float(np.mean(d <= tau)) if d.size else 0.0


def fscore(pred: np.ndarray, gt: np.ndarray, tau: float) -> tuple[float, float, float]:
    """(precision, recall, F-score) at distance tau (metres)."""
    p = _share(nearest_distances(pred, gt), tau)
    r = _share(nearest_distances(gt, pred), tau)
    return p, r, (2 * p * r / (p + r) if p + r > 0 else 0.0)


def _cm(tau: float) -> str:
    return f"{round(tau * 100):d}cm"


def _sample(points: np.ndarray, max_points: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of a uniform random subset of at most max_points rows (all when None)."""
    n = len(points)
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.sort(rng.choice(n, max_points, replace=False))


def reconstruction_metrics(
    pred: LayeredPointCloud,
    gt: LayeredPointCloud,
    taus: tuple[float, ...] = TAUS,
    max_queries: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Every metric of the module docstring: chamfer_l1, precision_/recall_/fscore_<t>,
    hidden_completeness_<t>, visible_fscore_<t> for t in taus (keys like fscore_5cm).

    max_queries: estimate each mean from a uniform random subset of at most this many query
    points per direction (the nearest neighbours are still searched among all points, so the
    estimate is unbiased); None = every point, exact."""
    rng = np.random.default_rng(seed)
    p_pts, g_pts = pred.points, gt.points
    ip, ig = _sample(p_pts, max_queries, rng), _sample(g_pts, max_queries, rng)
    d_pg, d_gp = nearest_distances(p_pts[ip], g_pts), nearest_distances(g_pts[ig], p_pts)
    out: dict[str, float] = {
        "chamfer_l1": 0.5 * float(d_pg.mean() + d_gp.mean())
        if d_pg.size and d_gp.size
        else float("nan"),
        "num_pred_points": float(len(pred)),
        "num_true_points": float(len(gt)),
    }
    hidden = gt.layer[ig] >= 2
    p_vis, g_vis = p_pts[pred.layer == 1], g_pts[gt.layer == 1]
    jp, jg = _sample(p_vis, max_queries, rng), _sample(g_vis, max_queries, rng)
    dv_pg, dv_gp = nearest_distances(p_vis[jp], g_vis), nearest_distances(g_vis[jg], p_vis)
    for tau in taus:
        c = _cm(tau)
        p, r = _share(d_pg, tau), _share(d_gp, tau)
        out[f"precision_{c}"], out[f"recall_{c}"] = p, r
        out[f"fscore_{c}"] = 2 * p * r / (p + r) if p + r > 0 else 0.0
        out[f"hidden_completeness_{c}"] = (
            _share(d_gp[hidden], tau) if hidden.any() else float("nan")
        )
        pv, rv = _share(dv_pg, tau), _share(dv_gp, tau)
        out[f"visible_fscore_{c}"] = 2 * pv * rv / (pv + rv) if pv + rv > 0 else 0.0
    return out
