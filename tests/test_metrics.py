"""Metrics of docs/metrics.md: hand-worked values (the independent re-implementation on
random input is tests/test_metrics_reference.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from amodal_depth.data.format import Camera
from amodal_depth.metrics import (
    BOUNDARY_THRESHOLDS,
    CONSISTENCY_KEYS,
    DEPTH_KEYS,
    align_scale_shift,
    aligned_depth,
    boundary_f1,
    boundary_scores,
    consistency_metrics,
    depth_from_disparity,
    depth_metrics,
    hidden_outline,
    inverse_depth_fit,
    layered_consistency,
    region_masks,
    scale_shift,
    static_mask,
)

H, W = 12, 16
CAM = Camera(fx=20.0, fy=20.0, cx=(W - 1) / 2, cy=(H - 1) / 2, width=W, height=H)


def _ramp() -> np.ndarray:
    v, u = np.mgrid[0:H, 0:W]
    return 1.0 + 0.1 * u + 0.05 * v  # 1.0 .. 3.05 m


# ------------------------------------------------------------------------------ depth
def test_identical_maps_are_perfect() -> None:
    g = _ramp()
    for align in (True, False):
        m = depth_metrics(g, g, np.ones_like(g, bool), align=align)
        assert list(m) == list(DEPTH_KEYS)
        for k in ("delta1", "delta2", "delta3", "delta_1_05", "delta_1_10"):
            assert m[k] == 1.0
        assert m["rmse"] == pytest.approx(0.0, abs=1e-12)
        assert m["abs_rel"] == pytest.approx(0.0, abs=1e-12)


def test_known_shift_without_and_with_alignment() -> None:
    g = _ramp()
    p = g + 0.5
    m = depth_metrics(p, g, None, align=False)
    assert m["rmse"] == pytest.approx(0.5)
    assert m["abs_rel"] == pytest.approx(np.mean(0.5 / g))
    # 1.5/1.0 is the largest ratio; 1.25 is passed where 0.5/g < 0.25, i.e. g > 2
    assert m["delta1"] == pytest.approx(np.mean(g > 2.0))
    aligned = depth_metrics(p, g, None, align=True)
    assert aligned["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert aligned["delta_1_05"] == 1.0


@pytest.mark.parametrize(
    ("factor", "expected"),
    [
        (1.2, {"delta1": 1.0, "delta2": 1.0, "delta_1_05": 0.75, "delta_1_10": 0.75}),
        (1.3, {"delta1": 0.75, "delta2": 1.0, "delta_1_05": 0.75, "delta_1_10": 0.75}),
        (1 / 1.6, {"delta1": 0.75, "delta2": 0.75, "delta3": 1.0}),
        (1.08, {"delta1": 1.0, "delta_1_05": 0.75, "delta_1_10": 1.0}),
    ],
)
def test_fraction_off_by_factor(factor: float, expected: dict[str, float]) -> None:
    g = np.full((H, W), 2.0)
    p = g.copy()
    p[: H // 4] *= factor  # exactly a quarter of the rows
    m = depth_metrics(p, g, None, align=False)
    for k, v in expected.items():
        assert m[k] == pytest.approx(v), k
    assert m["rmse"] == pytest.approx(math.sqrt(0.25 * (2.0 * (factor - 1)) ** 2))
    assert m["abs_rel"] == pytest.approx(0.25 * abs(factor - 1))


def test_mask_and_invalid_gt_are_excluded() -> None:
    g = _ramp()
    p = g.copy()
    p[:, :4] = 50.0  # garbage, but only where gt is invalid or outside the mask
    g_bad = g.copy()
    g_bad[:6, :4] = 0.0
    g_bad[6:9, :4] = np.nan
    mask = np.ones_like(g, bool)
    mask[9:, :4] = False
    for align in (True, False):
        m = depth_metrics(p, g_bad, mask, align=align)
        assert m["delta_1_05"] == 1.0
        assert m["rmse"] == pytest.approx(0.0, abs=1e-9)
    p2 = g.copy()
    p2[0, 5] = np.inf  # a non-finite prediction is dropped too
    assert depth_metrics(p2, g, None, align=False)["rmse"] == pytest.approx(0.0)


def test_empty_region_gives_nan() -> None:
    g = _ramp()
    m = depth_metrics(g, g, np.zeros_like(g, bool))
    assert all(math.isnan(v) for v in m.values())
    m = depth_metrics(g, np.zeros_like(g), None)
    assert all(math.isnan(v) for v in m.values())


def test_align_recovers_scale_and_shift() -> None:
    g = _ramp()
    s, t = 2.5, -0.7
    p = (g - t) / s
    assert scale_shift(p, g, None) == pytest.approx((s, t))
    np.testing.assert_allclose(align_scale_shift(p, g, None), g, atol=1e-12)
    # a mask: the fit uses only masked pixels, the whole map is returned aligned
    mask = np.zeros_like(g, bool)
    mask[3:7, 2:9] = True
    p_out = p.copy()
    p_out[~mask] = 7.0
    out = align_scale_shift(p_out, g, mask)
    np.testing.assert_allclose(out[mask], g[mask], atol=1e-12)
    np.testing.assert_allclose(out[~mask], s * 7.0 + t)


def test_degenerate_alignment_falls_back_to_shift() -> None:
    g = _ramp()
    const = np.full_like(g, 3.0)
    assert scale_shift(const, g, None) == pytest.approx((1.0, g.mean() - 3.0))
    m = depth_metrics(const, g, None)
    assert m["rmse"] == pytest.approx(g.std())
    one = np.zeros_like(g, bool)
    one[2, 3] = True
    assert scale_shift(g * 5, g, one) == pytest.approx((1.0, g[2, 3] - 5 * g[2, 3]))
    assert depth_metrics(g * 5, g, one)["rmse"] == pytest.approx(0.0, abs=1e-12)
    assert scale_shift(g, g, np.zeros_like(g, bool)) == (1.0, 0.0)


def test_aligned_prediction_clipped_at_1e6() -> None:
    g = np.full((H, W), 1.0)
    p = np.full((H, W), -2.0)  # without the clip, max(p/g, g/p) < 1.25 would hold
    m = depth_metrics(p, g, None, align=False)
    assert m["delta3"] == 0.0
    assert m["rmse"] == pytest.approx(1.0 - 1e-6)


def test_aligned_depth_inverts_an_affine_disparity() -> None:
    g = _ramp()
    disp = 3.0 / g - 0.2
    np.testing.assert_allclose(aligned_depth(disp, g, None), g, rtol=1e-10)
    s, t = inverse_depth_fit(disp, g, None)
    assert (s, t) == pytest.approx((1 / 3, 0.2 / 3), rel=1e-10)
    # a disparity that aligns to <= 0 becomes the far limit
    d2 = disp.copy()
    d2[0, 0] = -100.0
    out = aligned_depth(d2, g, g > 1.01)
    assert out[0, 0] == 100.0
    s, t = inverse_depth_fit(d2, g, g > 1.01)
    np.testing.assert_array_equal(out, depth_from_disparity(d2, s, t))


def test_depth_from_disparity_clips_or_gives_inf() -> None:
    disp = np.array([1.0, 0.5, 0.0, -1.0, 1e-4, np.nan])
    clipped = depth_from_disparity(disp, 2.0, 0.0)  # the evaluation's [1e-3, 100] m
    np.testing.assert_array_equal(clipped[:2], [0.5, 1.0])
    assert clipped[2] == clipped[3] == 100.0 and clipped[4] == 100.0  # 1/2e-4 = 5000 m
    assert np.isnan(clipped[5])
    assert depth_from_disparity(np.array([1e4]), 1.0, 0.0)[0] == 1e-3  # the near limit
    raw = depth_from_disparity(disp, 2.0, 0.0, clip=None)
    np.testing.assert_array_equal(raw[:2], [0.5, 1.0])
    assert np.isinf(raw[2]) and np.isinf(raw[3]) and raw[4] == pytest.approx(5000.0)
    assert np.isnan(raw[5])
    assert depth_from_disparity(disp, 2.0, 0.0, clip=(0.75, 2.0))[:2].tolist() == [0.75, 1.0]


def test_torch_tensors_are_accepted() -> None:
    torch = pytest.importorskip("torch")
    g = _ramp()
    a = depth_metrics(torch.from_numpy(g * 1.1), torch.from_numpy(g), torch.ones(H, W).bool())
    b = depth_metrics(g * 1.1, g, None)
    assert a == b


# ------------------------------------------------------------------------------ consistency
def test_identical_maps_are_consistent() -> None:
    g = _ramp()
    m = consistency_metrics(g, g, CAM)
    assert list(m) == list(CONSISTENCY_KEYS)
    assert m["pixel_diff"] == 0.0
    assert m["hist_similarity"] == pytest.approx(1.0)
    assert m["fitness"] == 1.0
    assert m["pc_rmse"] == pytest.approx(0.0, abs=1e-12)


def test_consistency_is_scale_and_shift_invariant() -> None:
    g = _ramp()
    m = consistency_metrics(g, 3.0 * g + 2.0, CAM)
    assert m["pixel_diff"] == pytest.approx(0.0, abs=1e-12)
    assert m["fitness"] == 1.0


def test_known_pixel_diff_and_histogram() -> None:
    # A: left half 1, right half 2 -> normalised 0 / 1.  B: all of A's values swapped.
    a = np.ones((H, W))
    a[:, W // 2 :] = 2.0
    b = 3.0 - a
    m = consistency_metrics(a, b, CAM, bins=4)
    assert m["pixel_diff"] == 1.0
    # both histograms are [0.5, 0, 0, 0.5]: identical -> correlation 1
    assert m["hist_similarity"] == pytest.approx(1.0)
    # a map with 3/4 in bin 0 against the first: still a known correlation
    c = np.ones((H, W))
    c[:, 3 * W // 4 :] = 2.0
    h1 = np.array([0.5, 0, 0, 0.5])
    h2 = np.array([0.75, 0, 0, 0.25])
    d1, d2 = h1 - h1.mean(), h2 - h2.mean()
    want = (d1 @ d2) / math.sqrt((d1 @ d1) * (d2 @ d2))
    assert consistency_metrics(a, c, CAM, bins=4)["hist_similarity"] == pytest.approx(want)


def test_no_inliers_gives_nan_rmse() -> None:
    g = _ramp()
    m = consistency_metrics(g, np.zeros_like(g), CAM)
    assert m["fitness"] == 0.0
    assert math.isnan(m["pc_rmse"])
    assert math.isnan(m["pixel_diff"]) and math.isnan(m["hist_similarity"])
    m = consistency_metrics(np.zeros_like(g), g, CAM)
    assert math.isnan(m["fitness"]) and math.isnan(m["pc_rmse"])


def test_known_fitness_from_a_far_patch() -> None:
    # B equals A except one 2x2 patch moved far in z: those 4 source points lose their match
    # while the normalisation is unchanged (min and max pixels are elsewhere).
    a = np.full((H, W), 2.0)
    a[0, 0], a[-1, -1] = 1.0, 3.0
    b = a.copy()
    b[5:7, 5:7] = 2.9
    m = consistency_metrics(a, b, CAM)
    assert m["fitness"] == pytest.approx(1 - 4 / (H * W))
    assert m["pc_rmse"] == pytest.approx(0.0, abs=1e-12)
    assert m["pixel_diff"] == pytest.approx(4 * 0.45 / (H * W))


def test_camera_forms_agree() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(1, 2, (H, W))
    b = a + rng.normal(0, 0.01, (H, W))
    want = consistency_metrics(a, b, CAM, max_correspondence_distance=0.05)
    for cam in (
        CAM.to_dict(),
        (CAM.fx, CAM.fy, CAM.cx, CAM.cy),
        np.array([CAM.fx, CAM.fy, CAM.cx, CAM.cy]),
        np.array([[CAM.fx, 0, CAM.cx], [0, CAM.fy, CAM.cy], [0, 0, 1]]),
    ):
        assert consistency_metrics(a, b, cam, max_correspondence_distance=0.05) == want


# ------------------------------------------------------------------------------ regions
def test_regions_and_static_mask() -> None:
    k = 3
    amodal = np.zeros((k, H, W), bool)
    visible = np.zeros((k, H, W), bool)
    amodal[0, 2:5, 2:5] = visible[0, 2:5, 2:5] = True
    amodal[1, 3:8, 3:8] = True
    visible[1] = amodal[1] & ~amodal[0]
    gt = _ramp()
    gt[7, 7] = 0.0
    r = region_masks(gt, amodal[1], visible[1])
    assert r["all"].sum() == H * W - 1
    assert r["amodal"].sum() == 25 - 1
    assert r["invisible"].sum() == 4  # (3..4) x (3..4)
    np.testing.assert_array_equal(static_mask(amodal, 1), ~amodal[0])
    np.testing.assert_array_equal(static_mask(amodal, 2), ~amodal[1])
    np.testing.assert_array_equal(static_mask(amodal, 1, 3), ~(amodal[0] | amodal[1]))
    with pytest.raises(ValueError):
        static_mask(amodal, 3)


def test_layered_consistency_means_pairs() -> None:
    rng = np.random.default_rng(5)
    depths = rng.uniform(1, 3, (3, H, W))
    amodal = np.zeros((3, H, W), bool)
    amodal[0, :4] = True
    amodal[1, 4:8] = True
    out = layered_consistency(depths, CAM, amodal, max_correspondence_distance=0.05)
    p12 = consistency_metrics(depths[0], depths[1], CAM, None, max_correspondence_distance=0.05)
    p23 = consistency_metrics(depths[1], depths[2], CAM, None, max_correspondence_distance=0.05)
    s12 = consistency_metrics(
        depths[0], depths[1], CAM, ~amodal[0], max_correspondence_distance=0.05
    )
    s23 = consistency_metrics(
        depths[1], depths[2], CAM, ~amodal[1], max_correspondence_distance=0.05
    )
    for key in CONSISTENCY_KEYS:
        assert out["all"][key] == pytest.approx((p12[key] + p23[key]) / 2)
        assert out["static"][key] == pytest.approx((s12[key] + s23[key]) / 2)
    single = layered_consistency(depths[:1], CAM, amodal[:1])
    assert all(math.isnan(v) for v in single["all"].values())


# ------------------------------------------------------------------------------ boundaries
STEP = 7  # the true step lies between columns STEP - 1 and STEP


def _step(near: float = 2.0, ratio: float = 1.5, col: int = STEP) -> np.ndarray:
    """A constant plane at `near` m, `near * ratio` from column `col` on: one vertical
    step edge, i.e. H horizontal neighbour pairs with a contour at every t < ratio."""
    d = np.full((H, W), near)
    d[:, col:] = near * ratio
    return d


def test_boundary_f1_perfect_flat_and_scale_invariant() -> None:
    g = _step()
    assert boundary_f1(g, g) == 1.0
    assert boundary_f1(np.full_like(g, 3.0), g) == 0.0  # no predicted contour: P = 0
    for c in (0.01, 3.7, 1e4):
        assert boundary_f1(c * g, g) == 1.0
    s = boundary_scores(g, g)
    np.testing.assert_array_equal(s["threshold"], BOUNDARY_THRESHOLDS)
    assert list(s["true"]) == [H] * 5 and list(s["matched"]) == [H] * 5
    # the same step the other way round (far on the left) is a contour of the other sign
    flipped = g[:, ::-1].copy()
    assert boundary_f1(flipped, flipped) == 1.0
    assert boundary_f1(g[:, ::-1], _step(col=W - STEP)) == 0.0  # same pairs, opposite sign
    # a horizontal step (vertical pairs) against a vertical one: nothing in common
    gh = np.full((H, W), 2.0)
    gh[5:] = 3.0
    assert boundary_f1(gh, gh) == 1.0
    assert boundary_f1(gh, g) == 0.0


def test_boundary_f1_one_pixel_shift_is_a_miss() -> None:
    g = _step()
    assert boundary_f1(_step(col=STEP + 1), g) == 0.0  # pixel-exact: no tolerance band
    # shifted in the lower half of the rows only: H/2 = 6 of the 12 true contours found,
    # and the jog of the edge adds a 13th predicted contour (a vertical pair at column
    # STEP, ratio 1.5): P = 6/13, R = 6/12, F1 = 2PR/(P + R) = 12/25 at every threshold
    half = g.copy()
    half[H // 2 :] = _step(col=STEP + 1)[H // 2 :]
    s = boundary_scores(half, g)
    assert list(s["predicted"]) == [H + 1] * 5 and list(s["matched"]) == [H // 2] * 5
    assert boundary_f1(half, g) == pytest.approx(12 / 25)
    # the true step plus a spurious one: P = 1/2, R = 1, F1 = 2/3
    extra = g.copy()
    extra[:, STEP + 3 :] *= 1.3
    assert boundary_f1(extra, g) == pytest.approx(2 / 3)


def test_boundary_f1_weak_predicted_step_counts_at_low_thresholds() -> None:
    g = _step(ratio=1.5)
    p = _step(ratio=1.12)  # a contour for t = 1.05, 1.10 only
    s = boundary_scores(p, g)
    np.testing.assert_array_equal(s["f1"], [1, 1, 0, 0, 0])
    assert boundary_f1(p, g) == pytest.approx(2 / 5)
    # the other way round: the thresholds without a true contour are left out of the mean
    s = boundary_scores(g, p)
    assert list(s["true"]) == [H, H, 0, 0, 0]
    assert s["precision"][0] == 1.0 and math.isnan(s["recall"][4])
    assert boundary_f1(g, p) == 1.0


def test_boundary_f1_no_true_contour_is_nan() -> None:
    flat = np.full((H, W), 2.0)
    assert math.isnan(boundary_f1(flat, flat))
    assert math.isnan(boundary_f1(_step(), flat))  # predicted contours, none true
    g = _step(ratio=1.04)  # below every threshold
    assert math.isnan(boundary_f1(g, g))
    assert math.isnan(boundary_f1(g, np.zeros((H, W))))  # no valid gt
    assert math.isnan(boundary_f1(np.zeros((0, 0)), np.zeros((0, 0))))


def test_boundary_f1_mask_and_invalid_pixels() -> None:
    g = _step()
    p = _step(col=STEP + 1)
    # a pair counts only when both of its pixels are in the mask
    mask = np.zeros((H, W), bool)
    mask[:, STEP - 1 : STEP + 1] = True  # exactly the pixels of the true contour pairs
    assert boundary_f1(g, g, mask) == 1.0
    assert boundary_f1(p, g, mask) == 0.0
    one_side = np.zeros((H, W), bool)
    one_side[:, :STEP] = True  # the left pixel of each pair only
    assert math.isnan(boundary_f1(g, g, one_side))
    # rows 0..3 in the mask: 4 true contours; the prediction is right in rows 0..1 only,
    # and its jog adds a vertical contour between rows 1 and 2: 5 predicted
    rows = np.zeros((H, W), bool)
    rows[:4] = True
    p2 = g.copy()
    p2[2:] = _step(col=STEP + 1)[2:]
    s = boundary_scores(p2, g, rows)
    assert (s["true"][0], s["predicted"][0], s["matched"][0]) == (4, 5, 2)
    # invalid gt (0, NaN) or prediction (NaN, inf, <= 0) removes the pairs it is part of
    g_bad, p_bad = g.copy(), g.copy()
    g_bad[0, STEP] = 0.0
    g_bad[1, STEP - 1] = np.nan
    p_bad[2, STEP] = np.nan
    p_bad[3, STEP - 1] = -1.0
    p_bad[4, STEP] = np.inf
    p_bad[8, 1], g_bad[8, 1] = 10.0, 0.0  # 4 spurious contours, all at an invalid gt pixel
    s = boundary_scores(p_bad, g_bad)
    assert list(s["true"]) == list(s["predicted"]) == list(s["matched"]) == [H - 5] * 5
    assert boundary_f1(p_bad, g_bad) == 1.0
    with pytest.raises(ValueError):
        boundary_f1(g, g, np.ones((2, 2), bool))


def test_hidden_outline() -> None:
    amodal = np.zeros((H, W), bool)
    amodal[2:9, 3:12] = True
    visible = amodal.copy()
    visible[:, 8:] = False  # hidden part: rows 2..8, columns 8..11
    out = hidden_outline(amodal, visible)
    hidden = amodal & ~visible
    # Chebyshev distance to the border: a pixel is in iff its 5x5 window meets both sides
    want = np.zeros((H, W), bool)
    for y in range(H):
        for x in range(W):
            win = hidden[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3]
            want[y, x] = win.any() and not win.all()
    np.testing.assert_array_equal(out, want)
    assert out[5, 6] and out[5, 9] and out[0, 9] and not out[5, 5] and not out[11, 9]
    assert not hidden_outline(amodal, amodal).any()  # no hidden part (layer 1)
    # the image edge is no border: a hidden part reaching it has no outline there
    edge = np.zeros((H, W), bool)
    edge[:, W - 4 :] = True
    out = hidden_outline(edge, np.zeros((H, W), bool))
    assert out[:, W - 6 : W - 2].all() and not out[:, W - 1].any() and not out[:, : W - 6].any()
