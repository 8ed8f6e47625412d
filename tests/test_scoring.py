"""scoring.py: one image's rows (depth, consistency, boundary F1) and a split's means, on
flat hand-made scenes whose truth is known exactly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from amodal_depth.metrics import BOUNDARY_KEYS, DEPTH_REGIONS
from amodal_depth.scoring import SplitScores, cached_gt_pairs, gt_pairs, score_sample
from conftest import flat_sample, write_flat_dataset  # tests/ is on sys.path under pytest


def test_the_truth_scores_perfectly_as_depth_and_as_disparity() -> None:
    s = flat_sample(42, 28, 3)
    rows, cons, gt_cons = score_sample(s, s.depth, is_disparity=False)
    assert [r["layer"] for r in rows] == [1, 2, 3]
    for r in rows:
        for region in DEPTH_REGIONS:
            if region == "invisible" and r["layer"] == 1:  # o_1 has no hidden part
                assert math.isnan(r["invisible_rmse"]) and r["invisible_pixels"] == 0
                continue
            assert r[f"{region}_delta1"] == 1.0 and r[f"{region}_rmse"] == pytest.approx(0)
    assert math.isnan(rows[0]["boundary_f1_hidden_outline"])
    assert rows[1]["hidden_outline_pixels"] > 0
    assert cons == gt_cons  # the prediction is the truth
    # a disparity 2/depth + 0.1 is aligned back to the truth exactly
    disp = 2.0 / s.depth.astype(np.float64) + 0.1
    rows_d, _, _ = score_sample(s, disp, is_disparity=True, gt_pair_metrics=gt_pairs(s))
    for r, rd in zip(rows, rows_d):
        assert rd["all_rmse"] == pytest.approx(0, abs=1e-9)
        assert rd["boundary_f1"] == r["boundary_f1"]


def test_an_offset_hidden_part_is_seen_in_the_invisible_region_only() -> None:
    s = flat_sample(42, 28, 3)
    pred = s.depth.astype(np.float64).copy()
    hidden = s.amodal[1] & ~s.visible[1]
    pred[1][hidden] += 0.5
    rows, _, _ = score_sample(s, pred, is_disparity=False)
    assert rows[1]["invisible_rmse"] == pytest.approx(0.5)
    assert rows[0]["all_rmse"] == 0 and rows[2]["all_rmse"] == 0


def test_split_means_skip_nan_and_count_it() -> None:
    scores = SplitScores()
    a, b = flat_sample(42, 28, 3, seed=0), flat_sample(42, 28, 3, seed=1)
    scores.add("a", *score_sample(a, a.depth, is_disparity=False))
    off = b.depth.astype(np.float64) * 1.1
    scores.add("b", *score_sample(b, off, is_disparity=False))
    out = scores.summary()
    assert list(out) == ["depth", "depth_per_layer", "consistency", "gt_consistency",
                         "boundary", "boundary_per_layer", "nan_counts"]  # fmt: skip
    assert out["depth"]["all"]["delta_1_05"] == pytest.approx(0.5)  # 1 for a, 0 for b
    assert set(out["boundary"]) == set(BOUNDARY_KEYS)
    assert math.isnan(out["boundary_per_layer"]["1"]["boundary_f1_hidden_outline"])
    assert out["nan_counts"]["boundary"]["boundary_f1_hidden_outline"] == 0
    assert len(scores.rows) == 6 and scores.rows[3]["id"] == "b"


def test_gt_pairs_are_cached_per_sample_file(tmp_path: Path) -> None:
    from amodal_depth.data.format import read_manifest, read_sample

    root = write_flat_dataset(tmp_path / "ds", num=2, width=28, height=21)
    m = read_manifest(root)
    sid = m["splits"]["train"][0]
    s = read_sample(root, sid, m)
    first = cached_gt_pairs(root, sid, s)
    assert cached_gt_pairs(root, sid, s) is first
    assert first == gt_pairs(s)
