"""report/page.py and report/results.py: the whole report rebuilt from hand-made run JSONs
and arrays, the committed cpu report rebuilt from its files, and what the report imports.
Helpers `result` and `write_run` are shared by the other test_report_* modules."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from amodal_depth import report
from amodal_depth.report import HOLDS, NOISE, VARIANTS

PAPER_FOUR = ["ade", "ade_consistency", "ade_mha", "ade_multibatch"]

DEPTH = ("delta1", "delta2", "delta3", "delta_1_05", "delta_1_10", "rmse", "abs_rel")
CONS = ("pixel_diff", "hist_similarity", "fitness", "pc_rmse")
REPO = Path(__file__).resolve().parents[1]


def result(depth: dict[str, float] | None = None, cons: dict[str, float] | None = None) -> dict:
    """An evaluate() summary: every region/metric 0.5 unless overridden (region-free keys)."""
    depth = {k: 0.5 for k in DEPTH} | (depth or {})
    cons = {k: 0.5 for k in CONS} | (cons or {})
    return {
        "num_images": 4,
        "depth": {r: dict(depth) for r in ("all", "amodal", "invisible")},
        "consistency": {r: dict(cons) for r in ("all", "static")},
        "gt_consistency": {r: {k: 0.1 for k in CONS} for r in ("all", "static")},
    }


def write_run(out: Path, variant: str, seed: int, **kw) -> None:
    d = {
        "variant": variant,
        "seed": seed,
        "test": result(**kw),
        "val": {"depth": result(**kw)["depth"]},
        "train": {"steps": 2, "wall_time_s": 60.0, "final_loss": 0.5,
                  "loss_curve": [[1, 1.0], [2, 0.5]]},
    }  # fmt: skip
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "runs" / f"{variant}-seed{seed}.json").write_text(json.dumps(d))


def _claim_row(claims: str, start: str) -> str:
    return next(ln for ln in claims.splitlines() if ln.startswith(start))


def test_build_report_writes_tables_claims_and_figures(tmp_path: Path) -> None:
    # multibatch clearly most consistent (3 seeds); ade vs consistency within noise
    for seed in range(3):
        jitter = (seed - 1) * 0.01
        write_run(tmp_path, "ade_multibatch", seed, cons={"pixel_diff": 0.10 + jitter})
        write_run(tmp_path, "ade", seed, cons={"pixel_diff": 0.30 + jitter})
        write_run(tmp_path, "ade_consistency", seed, cons={"pixel_diff": 0.30 - jitter})
        write_run(tmp_path, "ade_mha", seed, cons={"pixel_diff": 0.50 + jitter})
    (tmp_path / "references").mkdir()
    (tmp_path / "references" / "object_fill.json").write_text(json.dumps(result()))
    readme = report.build_report(
        tmp_path, info={"command": "amodal-depth reproduce --preset quick", "seeds": [0, 1, 2],
                        "variants": PAPER_FOUR}
    )  # fmt: skip
    text = readme.read_text()
    assert "Runs finished: 12 of 12 planned" in text
    assert "amodal-depth reproduce --preset quick" in text
    assert "ref: object fill" in text and "0.98373" in text  # ours and the paper's
    for name in ("table1.md", "table1.csv", "table2.md", "table2.csv", "claims.md",
                 "fig_table1.png", "fig_table2.png", "fig_loss.png"):  # fmt: skip
        assert (tmp_path / name).stat().st_size > 0, name
    assert "Prediction figure skipped: no saved predictions" in text
    assert not (tmp_path / "fig_predictions.png").exists()
    claims = (tmp_path / "claims.md").read_text()
    row = _claim_row(claims, "| ADE + Multi-Batch > ADE | pixel diff | all |")
    assert f"| {HOLDS} (right way) |" in row
    row = _claim_row(claims, "| ADE + Multi-Batch > ADE + Consistency Loss | pixel diff | all |")
    assert HOLDS in row
    # identical values on every other metric: no difference, so within noise, never "holds"
    row = _claim_row(claims, "| ADE + Multi-Batch > ADE | fitness | all |")
    assert NOISE in row and "| 1.000 |" in row  # two equal constant groups: p = 1 exactly
    # the sentence about consistency: pixel diff holds, the rest within noise
    sentence = next(ln for ln in claims.splitlines() if "most consistent" in ln and "| all |" in ln)
    assert f"**{NOISE}**" in sentence
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind


def _figure_arrays(out: Path, variants: dict[str, int], first: int = 0, k: int = 3) -> np.ndarray:
    """test_images.npz (two images, ids from `first`) and runs/<v>-seed<S>.npz as reproduce
    writes them; returns the true depth."""
    n = 2
    rng = np.random.default_rng(0)
    h, w = 12, 16
    depth = rng.uniform(1.0, 5.0, (n, k, h, w)).astype(np.float16)
    depth[:, :, :2] = 0  # no surface
    amodal = np.zeros((n, k, h, w), bool)
    amodal[:, :, 4:8, 4:10] = True
    ids = np.array([f"{i:06d}" for i in range(first, first + n)])
    rgb = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    np.savez_compressed(out / "test_images.npz", ids=ids, rgb=rgb, amodal=amodal, depth=depth)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    for v, seed in variants.items():
        np.savez_compressed(out / "runs" / f"{v}-seed{seed}.npz", ids=ids, depth=depth * 1.1)
    return depth


def test_prediction_figure_is_drawn_from_saved_arrays(tmp_path: Path) -> None:
    write_run(tmp_path, "ade", 0)
    depth = _figure_arrays(tmp_path, {"ade": 1, "ade_mha": 0})
    (tmp_path / "other").mkdir()
    _figure_arrays(tmp_path / "other", {"ade": 0}, first=5)  # other images: never mixed in
    shutil.copy(tmp_path / "other" / "runs" / "ade-seed0.npz", tmp_path / "runs")
    arrays = report.load_figure_arrays(tmp_path, VARIANTS)
    assert arrays is not None and arrays.seeds == {"ade": 1, "ade_mha": 0}
    assert arrays.ids == ["000000", "000001"]
    assert np.array_equal(arrays.predictions["ade"], (depth * 1.1).astype(np.float64))
    text = report.build_report(tmp_path, info={}).read_text()
    assert "![per-layer predictions](fig_predictions.png)" in text
    assert (tmp_path / "fig_predictions.png").stat().st_size > 0


def test_prediction_figure_without_arrays_is_kept(tmp_path: Path) -> None:
    write_run(tmp_path, "ade", 0)
    (tmp_path / "fig_predictions.png").write_bytes(b"drawn by an earlier build")
    text = report.build_report(tmp_path, info={}).read_text()
    assert "![per-layer predictions](fig_predictions.png)" in text
    assert (tmp_path / "fig_predictions.png").read_bytes() == b"drawn by an earlier build"
    _figure_arrays(tmp_path, {})  # the truth without any prediction: still nothing to draw
    assert report.load_figure_arrays(tmp_path, VARIANTS) is None


def test_header_lists_the_commit_of_every_session_that_finished_runs(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    for name, t in (("ade-seed0", "10:30"), ("ade-seed1", "10:50"), ("ade-seed2", "13:10")):
        (tmp_path / "runs" / f"{name}.json").write_text(
            json.dumps({"finished": f"2026-01-02T{t}:00+00:00"})
        )
    sessions = [
        {"commit": "a" * 40, "started": "2026-01-02T09:59:00+00:00", "wall_time_s": 0.0},
        {"commit": "b" * 40, "started": "2026-01-02T10:00:00+00:00", "wall_time_s": 3600.0},
        {"commit": "c" * 40, "started": "2026-01-02T13:00:00+00:00", "wall_time_s": 900.0},
        {"commit": "d" * 40, "started": "2026-01-02T14:00:00+00:00", "wall_time_s": 2.0},
    ]
    (tmp_path / "reproduction.json").write_text(
        json.dumps({"last": {"commit": "d" * 40}, "sessions": sessions})
    )
    assert report.info_from_record(tmp_path)["commit"] == (
        "bbbbbbbbbbbb (2026-01-02 10:00 UTC, 1.00 h, 2 runs); "
        "cccccccccccc (2026-01-02 13:00 UTC, 0.25 h, 1 run); "
        "dddddddddddd (2026-01-02 14:00 UTC, 0.00 h, report and export only)"
    )


def test_rebuilding_the_committed_cpu_report_gives_the_committed_text(tmp_path: Path) -> None:
    committed = REPO / "docs" / "results" / "cpu"
    if not (committed / "reproduction.json").is_file():
        pytest.skip("no committed cpu report in this checkout")
    out = tmp_path / "cpu"
    out.mkdir()
    for name in ("runs", "references"):
        shutil.copytree(committed / name, out / name)
    shutil.copy(committed / "reproduction.json", out)
    shutil.copy(committed / "fig_predictions.png", out)  # its arrays are not committed
    report.build_report(out)
    for name in ("README.md", "claims.md", "table1.md", "table1.csv", "table2.md", "table2.csv"):
        assert (out / name).read_text() == (committed / name).read_text(), name


def test_the_report_imports_no_training_evaluation_or_data_generation() -> None:
    code = (
        "import sys, amodal_depth.report\n"
        "bad = ['amodal_depth.train', 'amodal_depth.evaluate', 'amodal_depth.reproduce',\n"
        "       'amodal_depth.data.generate', 'amodal_depth.data.dataset']\n"
        "print([m for m in bad if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
