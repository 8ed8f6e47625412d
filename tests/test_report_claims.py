"""report/claims.py and report/paper.py: verdicts of the paper's ordering claims."""

from __future__ import annotations

import math
from pathlib import Path

from amodal_depth import report
from amodal_depth.report import (
    FAILS,
    HOLDS,
    MISSING,
    NOISE,
    ONE_SEED,
    Claim,
    judge,
    statement_verdict,
)
from test_report import write_run  # tests/ is on sys.path under pytest


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


def test_significance_is_decided_at_alpha() -> None:
    # df = 4 and |t| = 2.776445 give p = 0.05 to 1e-6: just past either side of alpha
    c = Claim("ade_multibatch", "ade", "delta1")
    for x, expected in ((2.78 * math.sqrt(2 / 3), HOLDS), (2.77 * math.sqrt(2 / 3), NOISE)):
        assert judge(c, "all", [x, x + 1.0, x + 2.0], [0.0, 1.0, 2.0]).verdict == expected


def test_one_seed_cannot_judge_noise_but_shows_direction() -> None:
    v = judge(Claim("ade_multibatch", "ade", "rmse"), "all", [0.1], [0.3])
    assert v.verdict == ONE_SEED and v.direction_ok is True and math.isnan(v.p)
    assert judge(Claim("ade", "ade_mha", "rmse"), "all", [], [0.3]).verdict == MISSING


def test_statement_verdict_combines_pairs() -> None:
    c = Claim("ade_multibatch", "ade", "rmse")
    hold = judge(c, "all", [0.1, 0.11, 0.09], [0.3, 0.31, 0.29])
    noise = judge(c, "all", [0.2, 0.3, 0.25], [0.26, 0.21, 0.31])
    fail = judge(c, "all", [0.3, 0.31, 0.29], [0.1, 0.11, 0.09])
    one = judge(c, "all", [0.1], [0.3])
    assert statement_verdict([hold, hold]) == HOLDS
    assert statement_verdict([hold, noise]) == NOISE
    assert statement_verdict([hold, noise, fail]) == FAILS
    assert statement_verdict([hold, one]) == ONE_SEED
    assert statement_verdict([]) == MISSING


def test_paper_statements_cover_the_paper_and_agree_with_its_tables() -> None:
    sts = report.paper_statements()
    keys = {s.key for s in sts}
    assert {"multibatch_consistency", "multibatch_depth", "consistency_depth"} <= keys
    claims = {c for s in sts for c in s.claims}
    assert Claim("ade_consistency", "ade_multibatch", "delta2") in claims
    assert Claim("ade", "ade_mha", "fitness") in claims
    # every claim we test is what the paper's own numbers say
    assert all(report.paper_says(c) for c in claims)
    assert not report.paper_says(Claim("ade_mha", "ade", "rmse"))


def test_claims_page_lists_every_pair_once_with_p_values(tmp_path: Path) -> None:
    for seed in range(3):
        write_run(tmp_path, "ade_multibatch", seed, depth={"rmse": 0.1 + 0.01 * seed})
        write_run(tmp_path, "ade", seed, depth={"rmse": 0.3 + 0.01 * seed})
    md = report.claims_markdown(report.load_runs(tmp_path))
    assert "Seeds per variant: ADE 3, ADE + Consistency Loss 0, ADE + MHA 0, " in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| ADE + Multi-Batch > ADE | RMSE |")]
    assert [r.split(" | ")[2] for r in rows] == ["all", "invisible"]  # once per region
    assert all("| <0.001 | holds (right way) |" in r for r in rows)
    assert "| ADE + Multi-Batch > ADE + MHA | RMSE | all | yes | 0.1100 ± 0.0100 | — |" in md
