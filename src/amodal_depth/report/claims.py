"""Judging the paper's ordering claims on our seeds, and the claims page (claims.md).

How a claim "A is better than B on metric m" is judged (docs/reproduction.md): with at least
two seeds per variant, Welch's two-sided t-test on the per-seed values at alpha = 0.05 —
"holds" when significant in the paper's direction, "does not hold" when significant against
it, "within noise" otherwise. With one seed the spread is unknown: "one seed: cannot judge
noise", and only the direction is reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from amodal_depth.report.paper import (
    LOWER_IS_BETTER,
    METRIC_LABELS,
    PAPER_VARIANTS,
    VARIANT_LABELS,
    VARIANTS,
    Claim,
    PaperStatement,
    is_consistency,
    paper_says,
    paper_statements,
)
from amodal_depth.report.results import run_values
from amodal_depth.report.stats import ALPHA, Stat, welch_test
from amodal_depth.report.tables import fmt_stat

HOLDS = "holds"
FAILS = "does not hold"
NOISE = "within noise"
ONE_SEED = "one seed: cannot judge noise"
MISSING = "not run yet"


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    region: str
    a: Stat
    """The claimed-better variant."""
    b: Stat
    p: float
    verdict: str
    direction_ok: bool | None
    """Whether our means order as the paper says (None when a mean is missing)."""

    @property
    def effect(self) -> float:
        """Improvement of a over b (positive = the paper's direction) in pooled-std units."""
        pooled = math.sqrt((self.a.std**2 + self.b.std**2) / 2.0)
        gain = self.a.mean - self.b.mean
        if self.claim.metric in LOWER_IS_BETTER:
            gain = -gain
        return gain / pooled if pooled > 0 else math.nan


def judge(
    claim: Claim, region: str, a: Sequence[float], b: Sequence[float], alpha: float = ALPHA
) -> Verdict:
    """Judge one pairwise claim from the per-seed values of the two variants."""
    sa, sb = Stat.of(a), Stat.of(b)
    if sa.n == 0 or sb.n == 0:
        return Verdict(claim, region, sa, sb, math.nan, MISSING, None)
    gain = sa.mean - sb.mean
    if claim.metric in LOWER_IS_BETTER:
        gain = -gain
    direction_ok = gain > 0
    if sa.n < 2 or sb.n < 2:
        return Verdict(claim, region, sa, sb, math.nan, ONE_SEED, direction_ok)
    _, _, p = welch_test(a, b)
    if p < alpha and gain != 0:
        verdict = HOLDS if direction_ok else FAILS
    else:
        verdict = NOISE
    return Verdict(claim, region, sa, sb, p, verdict, direction_ok)


def statement_verdict(verdicts: Sequence[Verdict]) -> str:
    """One word for a whole sentence: every pair holds -> holds; any pair significantly
    reversed -> does not hold; otherwise within noise (or the n = 1 / missing cases)."""
    kinds = {v.verdict for v in verdicts}
    if not verdicts or MISSING in kinds:
        return MISSING
    if FAILS in kinds:
        return FAILS
    if kinds == {HOLDS}:
        return HOLDS
    if ONE_SEED in kinds:
        return ONE_SEED
    return NOISE


def claim_section(claim: Claim) -> str:
    """The part of an evaluation summary the claim's metric lives in."""
    return "consistency" if is_consistency(claim.metric) else "depth"


Judged = list[tuple[PaperStatement, str, list[Verdict]]]


def judge_all(runs: dict[str, list[dict]]) -> Judged:
    """(statement, region, verdicts of its pairwise claims) for every statement and region."""
    out = []
    for st in paper_statements():
        for region in st.regions:
            vs = []
            for c in st.claims:
                sec = claim_section(c)
                a = run_values(runs.get(c.better, []), sec, region, c.metric)
                b = run_values(runs.get(c.worse, []), sec, region, c.metric)
                vs.append(
                    judge(
                        c, region, [x for x in a if x is not None], [x for x in b if x is not None]
                    )
                )
            out.append((st, region, vs))
    return out


def _direction_note(v: Verdict) -> str:
    if v.direction_ok is None:
        return ""
    if v.a.mean == v.b.mean:
        return " (tie)"
    return " (right way)" if v.direction_ok else " (reversed)"


def fmt_p(p: float) -> str:
    if math.isnan(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def verdict_table(judged: Judged) -> list[str]:
    """Markdown lines: one verdict per paper sentence and region."""
    lines = [
        "| paper sentence | region | verdict | pairs: holds / within noise / does not hold / "
        "right direction |",
        "|---|---|---|---|",
    ]
    for st, region, vs in judged:
        counts = [sum(v.verdict == k for v in vs) for k in (HOLDS, NOISE, FAILS)]
        right = sum(bool(v.direction_ok) for v in vs)
        lines.append(
            f"| {st.text} | {region} | **{statement_verdict(vs)}** | "
            f"{counts[0]} / {counts[1]} / {counts[2]} / {right} of {len(vs)} |"
        )
    return lines


def _method_paragraph(n_tests: int) -> str:
    return (
        "**How a claim is judged.** Each sentence of the paper is split into pairwise claims "
        "'A is better than B on metric m' (lower is better for RMSE, AbsRel, pixel diff and "
        "pc RMSE; higher for the rest). For each pair we compare the per-seed test-split values "
        f"of A and B with Welch's two-sided t-test (α = {ALPHA}): **{HOLDS}** when the difference "
        f"is significant in the paper's direction, **{FAILS}** when it is significant against it, "
        f"**{NOISE}** otherwise. With one seed for a variant the spread is unknown: "
        f"**{ONE_SEED}** (the direction is still shown). A sentence holds only if all its pairs "
        "hold, and does not hold if any pair is significantly reversed. `effect` is the mean "
        "improvement of A over B in units of the pooled seed standard deviation. "
        f"This page runs {n_tests} tests: at α = {ALPHA} about {n_tests * ALPHA:.0f} could come "
        "out significant by chance alone, so read single significant pairs with care. Depth "
        "claims are tested on the whole image (`all`, the paper's setting) and on the hidden "
        "part (`invisible`, our headline); consistency claims on `all` and `static`."
    )


def _pair_lines(judged: Judged) -> list[str]:
    """One table row per distinct (claim, region) pair, in the order they first appear."""
    lines = []
    seen: set[tuple[Claim, str]] = set()
    for _, region, vs in judged:
        for v in vs:
            if (v.claim, region) in seen:
                continue
            seen.add((v.claim, region))
            c = v.claim
            eff = "—" if math.isnan(v.effect) else f"{v.effect:+.2f}"
            lines.append(
                f"| {VARIANT_LABELS[c.better]} > {VARIANT_LABELS[c.worse]} | "
                f"{METRIC_LABELS[c.metric]} | {region} | {'yes' if paper_says(c) else 'no'} | "
                f"{fmt_stat(v.a, c.metric)} | {fmt_stat(v.b, c.metric)} | {eff} | {fmt_p(v.p)} | "
                f"{v.verdict}{_direction_note(v)} |"
            )
    return lines


def claims_markdown(runs: dict[str, list[dict]]) -> str:
    """claims.md: one verdict per paper sentence and region, then every pairwise test."""
    judged = judge_all(runs)
    seeds = {v: len(runs.get(v, [])) for v in VARIANTS if v in PAPER_VARIANTS or runs.get(v)}
    n_tests = len({(v.claim, region) for _, region, vs in judged for v in vs})
    lines = [
        "# The paper's ordering claims on our data",
        "",
        "Seeds per variant: "
        + ", ".join(f"{VARIANT_LABELS[v]} {n}" for v, n in seeds.items())
        + ".",
        "",
        _method_paragraph(n_tests),
        "",
        "## Verdict per sentence",
        "",
        *verdict_table(judged),
        "",
        "## Every pairwise test",
        "",
        "| claim (A better than B) | metric | region | paper agrees | A | B | effect | p | "
        "verdict |",
        "|---|---|---|---|---|---|---|---|---|",
        *_pair_lines(judged),
        "",
    ]
    return "\n".join(lines)
