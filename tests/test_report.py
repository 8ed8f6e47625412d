"""report.py: statistics, claim verdicts and table formatting on hand-made run JSONs."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from amodal_depth import report
from amodal_depth.config import VARIANTS
from amodal_depth.report import (
    FAILS,
    HOLDS,
    MISSING,
    NOISE,
    ONE_SEED,
    Claim,
    Stat,
    judge,
    statement_verdict,
    t_two_sided_p,
    welch_test,
)

DEPTH = ("delta1", "delta2", "delta3", "delta_1_05", "delta_1_10", "rmse", "abs_rel")
CONS = ("pixel_diff", "hist_similarity", "fitness", "pc_rmse")


def _result(depth: dict[str, float] | None = None, cons: dict[str, float] | None = None) -> dict:
    """An evaluate() summary: every region/metric 0.5 unless overridden (region-free keys)."""
    depth = {k: 0.5 for k in DEPTH} | (depth or {})
    cons = {k: 0.5 for k in CONS} | (cons or {})
    return {
        "num_images": 4,
        "depth": {r: dict(depth) for r in ("all", "amodal", "invisible")},
        "consistency": {r: dict(cons) for r in ("all", "static")},
        "gt_consistency": {r: {k: 0.1 for k in CONS} for r in ("all", "static")},
    }


def _write_run(out: Path, variant: str, seed: int, **kw) -> None:
    d = {
        "variant": variant,
        "seed": seed,
        "test": _result(**kw),
        "val": {"depth": _result(**kw)["depth"]},
        "train": {"steps": 2, "wall_time_s": 60.0, "final_loss": 0.5,
                  "loss_curve": [[1, 1.0], [2, 0.5]]},
    }  # fmt: skip
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "runs" / f"{variant}-seed{seed}.json").write_text(json.dumps(d))


# ------------------------------------------------------------------------------ statistics
def test_stat_mean_and_sample_std() -> None:
    s = Stat.of([1.0, 2.0, 3.0])
    assert (s.mean, s.std, s.n) == (2.0, 1.0, 3)
    one = Stat.of([4.0, None])
    assert one.n == 1 and one.mean == 4.0 and math.isnan(one.std)
    assert Stat.of([]).n == 0


def test_t_distribution_p_values() -> None:
    # df = 1 is the Cauchy distribution: P(|T| > 1) = 1/2
    assert t_two_sided_p(1.0, 1.0) == pytest.approx(0.5, abs=1e-12)
    # df = 2 has a closed form: P(|T| > t) = 1 - t / sqrt(2 + t^2)
    for t in (0.3, 1.7, 5.0):
        assert t_two_sided_p(t, 2.0) == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-10)
    # the textbook critical value of df = 4 at 5 %
    assert t_two_sided_p(2.776445, 4.0) == pytest.approx(0.05, abs=1e-5)
    assert t_two_sided_p(0.0, 7.0) == pytest.approx(1.0)


def test_welch_matches_hand_computation() -> None:
    a, b = [1.0, 2.0, 3.0], [4.0, 6.0, 8.0]
    t, df, p = welch_test(a, b)
    # va = 1/3, vb = 4/3: t = -4 / sqrt(5/3); df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2)
    assert t == pytest.approx(-4 / math.sqrt(5 / 3))
    assert df == pytest.approx((5 / 3) ** 2 / ((1 / 9) / 2 + (16 / 9) / 2))
    assert 0.05 < p < 0.2
    assert math.isnan(welch_test([1.0], [2.0, 3.0])[2])


# ------------------------------------------------------------------------------ verdicts
def test_clear_win_holds_and_reverse_fails() -> None:
    good, bad = [0.10, 0.11, 0.09], [0.30, 0.31, 0.29]
    v = judge(Claim("ade_multibatch", "ade", "rmse"), "invisible", good, bad)
    assert v.verdict == HOLDS and v.direction_ok and v.p < 0.01 and v.effect > 10
    # higher-is-better metric with the same numbers: the claim is reversed
    v = judge(Claim("ade_multibatch", "ade", "delta1"), "all", good, bad)
    assert v.verdict == FAILS and v.direction_ok is False


def test_difference_within_seed_spread_is_noise() -> None:
    v = judge(Claim("ade_multibatch", "ade", "rmse"), "all", [0.20, 0.30, 0.25], [0.26, 0.21, 0.31])
    assert v.verdict == NOISE and v.p > 0.5


def test_one_seed_cannot_judge_noise_but_shows_direction() -> None:
    v = judge(Claim("ade_multibatch", "ade", "rmse"), "all", [0.1], [0.3])
    assert v.verdict == ONE_SEED and v.direction_ok is True
    assert judge(Claim("ade", "ade_mha", "rmse"), "all", [], [0.3]).verdict == MISSING


def test_statement_verdict_combines_pairs() -> None:
    c = Claim("ade_multibatch", "ade", "rmse")
    hold = judge(c, "all", [0.1, 0.11, 0.09], [0.3, 0.31, 0.29])
    noise = judge(c, "all", [0.2, 0.3, 0.25], [0.26, 0.21, 0.31])
    fail = judge(c, "all", [0.3, 0.31, 0.29], [0.1, 0.11, 0.09])
    assert statement_verdict([hold, hold]) == HOLDS
    assert statement_verdict([hold, noise]) == NOISE
    assert statement_verdict([hold, noise, fail]) == FAILS


def test_paper_statements_cover_the_paper_and_agree_with_its_tables() -> None:
    sts = report.paper_statements()
    keys = {s.key for s in sts}
    assert {"multibatch_consistency", "multibatch_depth", "consistency_depth"} <= keys
    claims = {c for s in sts for c in s.claims}
    assert Claim("ade_consistency", "ade_multibatch", "delta2") in claims
    assert Claim("ade", "ade_mha", "fitness") in claims
    # every claim we test is what the paper's own numbers say
    assert all(report._paper_says(c) for c in claims)


# ------------------------------------------------------------------------------ tables
def test_tables_hold_every_variant_with_mean_std_and_n(tmp_path: Path) -> None:
    for seed, rmse in enumerate([0.1, 0.2, 0.3]):
        _write_run(tmp_path, "ade", seed, depth={"rmse": rmse})
    _write_run(tmp_path, "ade_mha", 0, depth={"rmse": 0.4})
    runs = report.load_runs(tmp_path)
    refs = {"visible_only": _result(depth={"rmse": 0.7})}
    rows = report.table1_rows(runs, refs)
    md = report.markdown_table(rows, report.TABLE1_COLUMNS)
    for v in VARIANTS:
        assert report.VARIANT_LABELS[v] in md
    ade = next(line for line in md.splitlines() if line.startswith("| ADE |"))
    assert "| 3 |" in ade and "0.2000 ± 0.1000" in ade
    mha = next(line for line in md.splitlines() if line.startswith("| ADE + MHA |"))
    assert "| 1 |" in mha and "0.4000 |" in mha and "±" not in mha
    assert "ref: visible-only" in md and "0.7000" in md
    missing = next(line for line in md.splitlines() if line.startswith("| ADE + Multi-Batch |"))
    assert "| 0 |" in missing and "—" in missing

    table = list(csv.DictReader(io.StringIO(report.csv_table(rows, report.TABLE1_COLUMNS))))
    ade_row = next(r for r in table if r["model"] == "ADE")
    assert float(ade_row["invisible_rmse_mean"]) == pytest.approx(0.2)
    assert float(ade_row["invisible_rmse_std"]) == pytest.approx(0.1)
    assert ade_row["n"] == "3"

    t2 = report.markdown_table(report.table2_rows(runs, refs), report.TABLE2_COLUMNS)
    assert "GT reference" in t2 and "static pixel diff ↓" in t2


def test_build_report_writes_tables_claims_and_figures(tmp_path: Path) -> None:
    # multibatch clearly most consistent (3 seeds); ade vs consistency within noise
    for seed in range(3):
        jitter = (seed - 1) * 0.01
        _write_run(tmp_path, "ade_multibatch", seed, cons={"pixel_diff": 0.10 + jitter})
        _write_run(tmp_path, "ade", seed, cons={"pixel_diff": 0.30 + jitter})
        _write_run(tmp_path, "ade_consistency", seed, cons={"pixel_diff": 0.30 - jitter})
        _write_run(tmp_path, "ade_mha", seed, cons={"pixel_diff": 0.50 + jitter})
    (tmp_path / "references").mkdir()
    (tmp_path / "references" / "object_fill.json").write_text(json.dumps(_result()))
    readme = report.build_report(
        tmp_path, info={"command": "amodal-depth reproduce --preset quick", "seeds": [0, 1, 2],
                        "variants": list(VARIANTS)}
    )  # fmt: skip
    text = readme.read_text()
    assert "Runs finished: 12 of 12 planned" in text
    assert "amodal-depth reproduce --preset quick" in text
    assert "ref: object fill" in text and "0.98373" in text  # ours and the paper's
    for name in ("table1.md", "table1.csv", "table2.md", "table2.csv", "claims.md",
                 "fig_table1.png", "fig_table2.png", "fig_loss.png"):  # fmt: skip
        assert (tmp_path / name).stat().st_size > 0, name
    assert "Prediction figure skipped" in text
    claims = (tmp_path / "claims.md").read_text()
    row = next(
        ln for ln in claims.splitlines()
        if ln.startswith("| ADE + Multi-Batch > ADE | pixel diff | all |")
    )  # fmt: skip
    assert f"| {HOLDS} (right way) |" in row
    row = next(
        ln for ln in claims.splitlines()
        if ln.startswith("| ADE + Multi-Batch > ADE + Consistency Loss | pixel diff | all |")
    )  # fmt: skip
    assert HOLDS in row
    # identical values on every other metric: no difference, so within noise, never "holds"
    row = next(
        ln for ln in claims.splitlines()
        if ln.startswith("| ADE + Multi-Batch > ADE | fitness | all |")
    )  # fmt: skip
    assert NOISE in row
    # the sentence about consistency: pixel diff holds, the rest within noise
    sentence = next(ln for ln in claims.splitlines() if "most consistent" in ln and "| all |" in ln)
    assert f"**{NOISE}**" in sentence
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind


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
