"""Property-based tests (Hypothesis) for the dataset format, the mask readers and the
metrics: the invariants docs/robustness.md relies on, on inputs no one wrote by hand."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from amodal_depth.data.format import (
    depth_to_png,
    format_id,
    make_manifest,
    png_to_depth,
    read_manifest,
    read_sample,
    write_manifest,
    write_sample,
)
from amodal_depth.errors import UserError
from amodal_depth.masks import parse_order, read_instance_masks, read_mask
from amodal_depth.metrics import DEPTH_KEYS, depth_metrics
from conftest import flat_sample  # tests/ is on sys.path under pytest

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------ format
@FAST
@given(
    w=st.integers(8, 24),
    h=st.integers(8, 20),
    k=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_sample_write_read_round_trip(w: int, h: int, k: int, seed: int) -> None:
    s = flat_sample(w, h, k, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sid = format_id(0)
        write_sample(root, sid, s)
        gen = {"seed": seed, "kind": "property test"}
        write_manifest(root, make_manifest(k, w, h, {"train": [sid]}, gen))
        manifest = read_manifest(root)
        back = read_sample(root, sid, manifest)
    np.testing.assert_array_equal(back.rgb, s.rgb)
    np.testing.assert_array_equal(back.visible, s.visible)
    np.testing.assert_array_equal(back.amodal, s.amodal)
    np.testing.assert_array_equal(back.layer_rgb, s.layer_rgb)
    np.testing.assert_allclose(back.depth, s.depth, atol=5e-4)
    np.testing.assert_allclose(back.object_depth, s.object_depth, atol=5e-4)
    assert back.camera.to_dict() == pytest.approx(s.camera.to_dict())


@FAST
@given(hnp.arrays(np.uint16, (6, 7), elements=st.integers(0, 65534)))
def test_depth_png_round_trip_is_exact_in_millimetres(mm: np.ndarray) -> None:
    np.testing.assert_array_equal(depth_to_png(png_to_depth(mm)), mm)


def test_depth_png_round_trip_at_the_uint16_maximum() -> None:
    mm = np.full((2, 2), 65535, np.uint16)
    np.testing.assert_array_equal(depth_to_png(png_to_depth(mm)), mm)


@FAST
@given(
    hnp.arrays(
        np.float64, (5, 5), elements=st.floats(-10, 60) | st.sampled_from([np.nan, np.inf, -np.inf])
    )
)
def test_depth_png_maps_holes_to_zero(depth: np.ndarray) -> None:
    png = depth_to_png(depth)
    assert png.dtype == np.uint16
    bad = ~np.isfinite(depth) | (depth <= 0)
    assert (png[bad] == 0).all()
    ok = ~bad
    assert np.abs(png_to_depth(png)[ok] - depth[ok]).max(initial=0.0) <= 5e-4 + 1e-6


# ------------------------------------------------------------------------------ masks
@FAST
@given(m=hnp.arrays(bool, (9, 11)), scale=st.sampled_from([1, 255]))
def test_read_mask_round_trips_binary_pngs(m: np.ndarray, scale: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.png"
        cv2.imwrite(str(path), m.astype(np.uint8) * 255 if scale == 255 else m.astype(np.uint8))
        if scale == 1 or not m.any():  # 0/1 PNG: nothing above half of 255
            with pytest.raises(UserError, match="mask is empty"):
                read_mask(path)
            return
        np.testing.assert_array_equal(read_mask(path, (11, 9)), m)
        with pytest.raises(UserError, match="masks must have the image's size"):
            read_mask(path, (12, 9))


@FAST
@given(hnp.arrays(np.uint8, (8, 10), elements=st.integers(0, 6)))
def test_read_instance_masks_one_mask_per_id(ids: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ids.png"
        cv2.imwrite(str(path), ids)
        values = sorted(set(np.unique(ids).tolist()) - {0})
        if not values:
            with pytest.raises(UserError, match="no object"):
                read_instance_masks(path)
            return
        masks = read_instance_masks(path, (10, 8))
    assert masks.shape == (len(values), 8, 10)
    assert (masks.sum(axis=0) <= 1).all()  # disjoint
    for mask, v in zip(masks, values, strict=True):
        np.testing.assert_array_equal(mask, ids == v)


@FAST
@given(st.permutations(list(range(1, 7))), st.sampled_from([",", " ", ", "]))
def test_parse_order_accepts_every_permutation(perm: list[int], sep: str) -> None:
    assert parse_order(sep.join(map(str, perm)), len(perm)) == [v - 1 for v in perm]


@FAST
@given(st.lists(st.integers(-3, 9), min_size=1, max_size=7))
def test_parse_order_rejects_non_permutations(items: list[int]) -> None:
    n = 4
    text = ",".join(map(str, items))
    if sorted(items) == list(range(1, n + 1)):
        assert parse_order(text, n) == [v - 1 for v in items]
    else:
        with pytest.raises(UserError, match="not a permutation"):
            parse_order(text, n)


@FAST
@given(st.text(max_size=12))
def test_parse_order_never_raises_anything_but_user_error(text: str) -> None:
    try:
        order = parse_order(text, 3)
    except UserError as e:
        assert "\n" not in str(e)
    else:
        assert sorted(order) == [0, 1, 2]


# ------------------------------------------------------------------------------ metrics
depths = hnp.arrays(np.float64, (6, 8), elements=st.floats(0.2, 50.0))


@FAST
@given(gt=depths, scale=st.floats(0.05, 20.0), shift=st.floats(-5.0, 5.0))
def test_aligned_affine_prediction_is_perfect(gt: np.ndarray, scale: float, shift: float) -> None:
    if np.ptp(gt) < 1e-3:  # a constant truth cannot pin a scale
        gt = gt + np.linspace(0, 1, gt.size).reshape(gt.shape)
    pred = (gt - shift) / scale  # aligned back by s = scale, t = shift
    m = depth_metrics(pred, gt)
    assert m["rmse"] == pytest.approx(0.0, abs=1e-6 * max(1.0, float(gt.max())))
    assert m["delta1"] == 1.0 and m["abs_rel"] == pytest.approx(0.0, abs=1e-6)


@FAST
@given(pred=hnp.arrays(np.float64, (6, 8), elements=st.floats(-100, 100)), gt=depths)
def test_metric_values_are_in_range(pred: np.ndarray, gt: np.ndarray) -> None:
    for align in (True, False):
        m = depth_metrics(pred, gt, align=align)
        assert set(m) == set(DEPTH_KEYS)
        for k in DEPTH_KEYS:
            assert np.isfinite(m[k]), (k, m)
            if k.startswith("delta"):
                assert 0.0 <= m[k] <= 1.0
            else:
                assert m[k] >= 0.0
        assert m["delta1"] <= m["delta2"] <= m["delta3"]
        assert m["delta_1_05"] <= m["delta_1_10"] <= m["delta1"]


@FAST
@given(
    pred=hnp.arrays(np.float64, (6, 8), elements=st.floats(0.1, 10.0)),
    gt=depths,
    holes=hnp.arrays(bool, (6, 8)),
    poison=st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0]),
)
def test_metrics_ignore_invalid_pixels(
    pred: np.ndarray, gt: np.ndarray, holes: np.ndarray, poison: float
) -> None:
    """Poisoned truth pixels (NaN, inf, <= 0) count as holes: same result as masking them."""
    bad = gt.copy()
    bad[holes] = poison
    a = depth_metrics(pred, bad)
    b = depth_metrics(pred, gt, ~holes)
    for k in DEPTH_KEYS:
        if np.isnan(b[k]):
            assert np.isnan(a[k])
        else:
            assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12), k


@FAST
@given(pred=depths, gt=depths)
def test_metrics_nan_prediction_pixels_are_skipped(pred: np.ndarray, gt: np.ndarray) -> None:
    p = pred.copy()
    p[0, :] = np.nan
    keep = np.ones(gt.shape, bool)
    keep[0, :] = False
    a, b = depth_metrics(p, gt), depth_metrics(pred, gt, keep)
    for k in DEPTH_KEYS:
        assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12), k


@FAST
@given(gt=depths, factor=st.floats(0.1, 10.0))
def test_unaligned_metrics_are_scale_free_in_delta(gt: np.ndarray, factor: float) -> None:
    """Scaling truth and prediction together keeps delta and abs_rel."""
    pred = gt * 1.07
    a = depth_metrics(pred, gt, align=False)
    b = depth_metrics(pred * factor, gt * factor, align=False)
    for k in ("delta1", "delta2", "delta3", "delta_1_05", "delta_1_10", "abs_rel"):
        assert a[k] == pytest.approx(b[k], abs=1e-9), k
