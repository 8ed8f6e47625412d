"""The reproduction report: the paper's two tables on our data, with honest statistics.

Everything here is rebuilt from small JSON files in the report directory, so a report can be
regenerated (and committed) without the heavy work directory:

- `OUT/runs/<variant>-seed<S>.json`: one finished training run — its evaluation on the test
  split (`test`, the `evaluate` summary), a `val` summary used to pick weights, and a `train`
  summary (steps, wall time, final loss, loss curve).
- `OUT/references/<name>.json`: the `evaluate` summary of a non-learned reference predictor.

Outputs (all written atomically): `README.md` (the report), `table1.md/.csv`,
`table2.md/.csv`, `claims.md`, and the figures `fig_table1.png`, `fig_table2.png`,
`fig_loss.png`, `fig_predictions.png` (the last needs the run weights in the work directory).

How a paper claim "A is better than B on metric m" is judged (docs/reproduction.md): with at
least two seeds per variant, Welch's two-sided t-test on the per-seed values at alpha = 0.05
— "holds" when significant in the paper's direction, "does not hold" when significant against
it, "within noise" otherwise. With one seed the spread is unknown: "one seed: cannot judge
noise", and only the direction is reported.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from amodal_depth.config import VARIANTS
from amodal_depth.fileio import atomic_path, atomic_write_text

ALPHA = 0.05
"""Significance level of the claim tests (two-sided)."""

VARIANT_LABELS = {
    "ade": "ADE",
    "ade_consistency": "ADE + Consistency Loss",
    "ade_mha": "ADE + MHA",
    "ade_multibatch": "ADE + Multi-Batch",
}
REFERENCE_LABELS = {
    "mean_depth": "ref: mean-depth map",
    "visible_only": "ref: visible-only",
    "object_fill": "ref: object fill",
}
REFERENCE_ORDER = ("mean_depth", "visible_only", "object_fill")

LOWER_IS_BETTER = frozenset({"rmse", "abs_rel", "pixel_diff", "pc_rmse"})

METRIC_LABELS = {
    "rmse": "RMSE",
    "abs_rel": "AbsRel",
    "delta1": "δ1",
    "delta2": "δ2",
    "delta3": "δ3",
    "delta_1_05": "δ<1.05",
    "delta_1_10": "δ<1.10",
    "pixel_diff": "pixel diff",
    "hist_similarity": "hist",
    "fitness": "fitness",
    "pc_rmse": "pc RMSE",
}

# Table 1: the hidden part (`invisible`) is the headline; RMSE and AbsRel first because δ1
# saturates there on simple objects (the object-fill reference reached δ1 = 1.00 in a trial).
TABLE1_COLUMNS: tuple[tuple[str, str], ...] = (
    ("invisible", "rmse"),
    ("invisible", "abs_rel"),
    ("invisible", "delta_1_05"),
    ("invisible", "delta_1_10"),
    ("invisible", "delta1"),
    ("invisible", "delta2"),
    ("invisible", "delta3"),
    ("all", "rmse"),
    ("all", "abs_rel"),
    ("all", "delta1"),
)
CONSISTENCY_METRICS = ("pixel_diff", "hist_similarity", "fitness", "pc_rmse")
TABLE2_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (region, m) for region in ("all", "static") for m in CONSISTENCY_METRICS
)

# The paper's numbers (seed-paper-en.md, Tables 1 and 2): one run each, other data.
PAPER_TABLE1: dict[str, dict[str, float]] = {
    "ade": {"delta1": 0.98366, "delta2": 0.99621, "delta3": 0.99907, "rmse": 0.13641},
    "ade_consistency": {"delta1": 0.98367, "delta2": 0.99624, "delta3": 0.99913, "rmse": 0.13634},
    "ade_mha": {"delta1": 0.93419, "delta2": 0.98504, "delta3": 0.99632, "rmse": 0.27293},
    "ade_multibatch": {"delta1": 0.98373, "delta2": 0.99613, "delta3": 0.99907, "rmse": 0.13601},
}
PAPER_TABLE2: dict[str, dict[str, float]] = {
    "ade": {"pixel_diff": 0.22461, "hist_similarity": 0.73115, "fitness": 0.48614,
            "pc_rmse": 0.01013},
    "ade_consistency": {"pixel_diff": 0.22354, "hist_similarity": 0.72514, "fitness": 0.48124,
                        "pc_rmse": 0.01005},
    "ade_mha": {"pixel_diff": 0.31577, "hist_similarity": 0.64568, "fitness": 0.19311,
                "pc_rmse": 0.01137},
    "ade_multibatch": {"pixel_diff": 0.21884, "hist_similarity": 0.73616, "fitness": 0.51720,
                       "pc_rmse": 0.00992},
}  # fmt: skip


# ------------------------------------------------------------------------------ claims
@dataclass(frozen=True)
class Claim:
    """'`better` beats `worse` on `metric`' (direction from LOWER_IS_BETTER)."""

    better: str
    worse: str
    metric: str


@dataclass(frozen=True)
class PaperStatement:
    """One sentence of the paper, as the pairwise claims it implies."""

    key: str
    text: str
    claims: tuple[Claim, ...]
    regions: tuple[str, ...]
    """Our regions it is tested on: the paper's whole image (`all`) and our headline."""


def paper_statements() -> list[PaperStatement]:
    """The paper's ordering claims (Section III), each turned into pairwise claims."""
    mb, cl, mha, ade = "ade_multibatch", "ade_consistency", "ade_mha", "ade"
    others = lambda v: [o for o in VARIANTS if o != v]  # noqa: E731
    return [
        PaperStatement(
            "multibatch_consistency",
            "ADE + Multi-Batch is the most consistent model on every consistency metric.",
            tuple(Claim(mb, o, m) for m in CONSISTENCY_METRICS for o in others(mb)),
            ("all", "static"),
        ),
        PaperStatement(
            "multibatch_depth",
            "ADE + Multi-Batch has the best δ1 and RMSE.",
            tuple(Claim(mb, o, m) for m in ("delta1", "rmse") for o in others(mb)),
            ("all", "invisible"),
        ),
        PaperStatement(
            "consistency_depth",
            "ADE + Consistency Loss has the best δ2 and δ3.",
            tuple(Claim(cl, o, m) for m in ("delta2", "delta3") for o in others(cl)),
            ("all", "invisible"),
        ),
        PaperStatement(
            "mha_worst_depth",
            "ADE + MHA is the worst model on every depth metric (δ1, δ2, δ3, RMSE).",
            tuple(
                Claim(o, mha, m)
                for m in ("delta1", "delta2", "delta3", "rmse")
                for o in others(mha)
            ),
            ("all", "invisible"),
        ),
        PaperStatement(
            "mha_worst_consistency",
            "ADE + MHA is the worst model on every consistency metric.",
            tuple(Claim(o, mha, m) for m in CONSISTENCY_METRICS for o in others(mha)),
            ("all", "static"),
        ),
        PaperStatement(
            "encoder_decoder_helps",
            "Changing ADE's encoder/decoder (Multi-Batch) improves both depth quality and "
            "consistency over plain ADE.",
            tuple(Claim(mb, ade, m) for m in ("delta1", "rmse", *CONSISTENCY_METRICS)),
            ("all",),
        ),
    ]


@dataclass(frozen=True)
class Stat:
    """Mean ± sample standard deviation (ddof = 1) over seeds; NaN std when n < 2."""

    mean: float
    std: float
    n: int

    @staticmethod
    def of(values: Iterable[float | None]) -> Stat:
        v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
        if not v:
            return Stat(math.nan, math.nan, 0)
        mean = math.fsum(v) / len(v)
        if len(v) < 2:
            return Stat(mean, math.nan, len(v))
        var = math.fsum((x - mean) ** 2 for x in v) / (len(v) - 1)
        return Stat(mean, math.sqrt(var), len(v))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            delta = d * c
            h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) (no scipy in the project's dependencies)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The continued fraction converges fast only below (a+1)/(a+b+2); use symmetry above.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    if math.isnan(t) or math.isnan(df) or df <= 0:
        return math.nan
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def welch_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's unequal-variance t-test: (t, df, two-sided p) for mean(a) - mean(b)."""
    sa, sb = Stat.of(a), Stat.of(b)
    if sa.n < 2 or sb.n < 2:
        return math.nan, math.nan, math.nan
    va, vb = sa.std**2 / sa.n, sb.std**2 / sb.n
    diff = sa.mean - sb.mean
    if va + vb == 0.0:  # both groups constant: any difference is exact
        return (math.copysign(math.inf, diff), math.inf, 0.0) if diff else (0.0, math.inf, 1.0)
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (
        (va**2 / (sa.n - 1) if va else 0.0) + (vb**2 / (sb.n - 1) if vb else 0.0)
    )
    return t, df, t_two_sided_p(t, df)


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
    _, _, p = welch_test([x for x in a if x is not None], [x for x in b if x is not None])
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


# ------------------------------------------------------------------------------ loading
def run_json_name(variant: str, seed: int) -> str:
    return f"{variant}-seed{seed}.json"


def load_runs(out: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The finished runs of a report directory, per variant, sorted by seed."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((Path(out) / "runs").glob("*.json")):
        d = json.loads(path.read_text())
        runs.setdefault(d["variant"], []).append(d)
    for v in runs.values():
        v.sort(key=lambda d: d["seed"])
    return runs


def load_references(out: str | Path) -> dict[str, dict[str, Any]]:
    refs = {}
    for path in sorted((Path(out) / "references").glob("*.json")):
        refs[path.stem] = json.loads(path.read_text())
    return refs


def _get(result: dict[str, Any], section: str, region: str, metric: str) -> float | None:
    v = result.get(section, {}).get(region, {}).get(metric)
    return None if v is None else float(v)


def run_values(
    runs: Sequence[dict[str, Any]], section: str, region: str, metric: str, split: str = "test"
) -> list[float | None]:
    """One value per seed: `section` is 'depth' or 'consistency' of the run's evaluation."""
    return [_get(r[split], section, region, metric) for r in runs]


# ------------------------------------------------------------------------------ tables
@dataclass
class Row:
    label: str
    kind: str  # "reference", "variant" or "gt"
    stats: dict[tuple[str, str], Stat]

    @property
    def n(self) -> int:
        return max((s.n for s in self.stats.values()), default=0)


SMALL_METRICS = frozenset({"pc_rmse"})
"""Metrics around 0.01 (point-cloud RMSE of [0,1]-normalised depth): shown with 5 decimals."""


def fmt_stat(s: Stat, metric: str = "") -> str:
    """'0.1234 ± 0.0056' (n >= 2), '0.1234' (n = 1), '—' (no value); one decimal count per
    metric so that a column lines up."""
    if s.n == 0 or math.isnan(s.mean):
        return "—"
    d = 5 if metric in SMALL_METRICS else 4
    if s.n < 2 or math.isnan(s.std):
        return f"{s.mean:.{d}f}"
    return f"{s.mean:.{d}f} ± {s.std:.{d}f}"


def _ref_row(name: str, result: dict[str, Any], section: str, columns: Sequence) -> Row:
    label = REFERENCE_LABELS.get(name, f"ref: {name}")
    return Row(label, "reference", {c: Stat.of([_get(result, section, *c)]) for c in columns})


def _variant_rows(runs: dict[str, list[dict]], section: str, columns: Sequence) -> list[Row]:
    rows = []
    for v in VARIANTS:
        rs = runs.get(v, [])
        rows.append(
            Row(
                VARIANT_LABELS[v],
                "variant",
                {c: Stat.of(run_values(rs, section, *c)) for c in columns},
            )
        )
    return rows


def table1_rows(runs: dict[str, list[dict]], refs: dict[str, dict]) -> list[Row]:
    """References (mean-depth map, visible-only, object fill), then the four variants."""
    rows = [_ref_row(n, refs[n], "depth", TABLE1_COLUMNS) for n in REFERENCE_ORDER if n in refs]
    return rows + _variant_rows(runs, "depth", TABLE1_COLUMNS)


def table2_rows(runs: dict[str, list[dict]], refs: dict[str, dict]) -> list[Row]:
    """The ground-truth layers' own consistency, the references, then the four variants."""
    rows: list[Row] = []
    gt_source = next(iter(refs.values()), None) or next(
        (rs[0]["test"] for rs in runs.values() if rs), None
    )
    if gt_source is not None:
        rows.append(
            Row(
                "GT reference (true layers)",
                "gt",
                {c: Stat.of([_get(gt_source, "gt_consistency", *c)]) for c in TABLE2_COLUMNS},
            )
        )
    rows += [
        _ref_row(n, refs[n], "consistency", TABLE2_COLUMNS) for n in REFERENCE_ORDER if n in refs
    ]
    return rows + _variant_rows(runs, "consistency", TABLE2_COLUMNS)


def _col_label(region: str, metric: str) -> str:
    arrow = "↓" if metric in LOWER_IS_BETTER else "↑"
    return f"{region} {METRIC_LABELS[metric]} {arrow}"


def markdown_table(rows: Sequence[Row], columns: Sequence[tuple[str, str]]) -> str:
    head = ["model", "n", *(_col_label(*c) for c in columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        n = str(r.n) if r.kind == "variant" else "—"
        lines.append(
            "| " + " | ".join([r.label, n, *(fmt_stat(r.stats[c], c[1]) for c in columns)]) + " |"
        )
    return "\n".join(lines) + "\n"


def csv_table(rows: Sequence[Row], columns: Sequence[tuple[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["model", "kind", "n"]
    for region, metric in columns:
        head += [f"{region}_{metric}_mean", f"{region}_{metric}_std"]
    w.writerow(head)
    for r in rows:
        line: list[Any] = [r.label, r.kind, r.n]
        for c in columns:
            s = r.stats[c]
            line += [
                "" if math.isnan(s.mean) else repr(s.mean),
                "" if math.isnan(s.std) else repr(s.std),
            ]
        w.writerow(line)
    return buf.getvalue()


def paper_table(table: dict[str, dict[str, float]], metrics: Sequence[str]) -> str:
    head = ["model (paper, one run, its own data)", *(_col_label("", m).strip() for m in metrics)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in VARIANTS:
        lines.append(
            "| " + " | ".join([VARIANT_LABELS[v], *(f"{table[v][m]:.5f}" for m in metrics)]) + " |"
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ claims
def claim_section(claim: Claim) -> str:
    return "consistency" if claim.metric in CONSISTENCY_METRICS else "depth"


def _paper_says(claim: Claim) -> bool:
    table = PAPER_TABLE2 if claim.metric in CONSISTENCY_METRICS else PAPER_TABLE1
    a, b = table[claim.better][claim.metric], table[claim.worse][claim.metric]
    return a < b if claim.metric in LOWER_IS_BETTER else a > b


def judge_all(runs: dict[str, list[dict]]) -> list[tuple[PaperStatement, str, list[Verdict]]]:
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


def _fmt_p(p: float) -> str:
    if math.isnan(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def verdict_table(judged: list[tuple[PaperStatement, str, list[Verdict]]]) -> list[str]:
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


def claims_markdown(runs: dict[str, list[dict]]) -> str:
    """claims.md: one verdict per paper sentence and region, then every pairwise test."""
    judged = judge_all(runs)
    seeds = {v: len(runs.get(v, [])) for v in VARIANTS}
    n_tests = len({(v.claim, region) for _, region, vs in judged for v in vs})
    lines = [
        "# The paper's ordering claims on our data",
        "",
        "Seeds per variant: "
        + ", ".join(f"{VARIANT_LABELS[v]} {n}" for v, n in seeds.items())
        + ".",
        "",
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
        "part (`invisible`, our headline); consistency claims on `all` and `static`.",
        "",
        "## Verdict per sentence",
        "",
        *verdict_table(judged),
    ]
    lines += [
        "",
        "## Every pairwise test",
        "",
        "| claim (A better than B) | metric | region | paper agrees | A | B | effect | p | "
        "verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    seen: set[tuple[Claim, str]] = set()
    for _, region, vs in judged:
        for v in vs:
            if (v.claim, region) in seen:
                continue
            seen.add((v.claim, region))
            c = v.claim
            eff = "—" if math.isnan(v.effect) else f"{v.effect:+.2f}"
            direction = _direction_note(v)
            lines.append(
                f"| {VARIANT_LABELS[c.better]} > {VARIANT_LABELS[c.worse]} | "
                f"{METRIC_LABELS[c.metric]} | {region} | {'yes' if _paper_says(c) else 'no'} | "
                f"{fmt_stat(v.a, c.metric)} | {fmt_stat(v.b, c.metric)} | {eff} | {_fmt_p(v.p)} | "
                f"{v.verdict}{direction} |"
            )
    lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ files
def _save_figure(fig: Any, path: Path, dpi: int = 100) -> None:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_figure(
    rows: Sequence[Row], columns: Sequence[tuple[str, str]], path: Path, title: str
) -> None:
    """One panel per column; bars = means, error bars = std over seeds (variants only)."""
    plt = _plt()
    ncol = min(4, len(columns))
    nrow = math.ceil(len(columns) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.9 * nrow), squeeze=False)
    colors = {"gt": "0.35", "reference": "0.7"}
    palette = ["tab:blue", "tab:orange", "tab:red", "tab:green"]
    for i, c in enumerate(columns):
        ax = axes[i // ncol][i % ncol]
        means = [r.stats[c].mean for r in rows]
        errs = [0.0 if math.isnan(r.stats[c].std) else r.stats[c].std for r in rows]
        cols, j = [], 0
        for r in rows:
            if r.kind == "variant":
                cols.append(palette[j % len(palette)])
                j += 1
            else:
                cols.append(colors[r.kind])
        x = list(range(len(rows)))
        ax.bar(x, [0.0 if math.isnan(m) else m for m in means], yerr=errs, color=cols, capsize=3)
        ax.set_xticks(x)
        ax.set_xticklabels([r.label.replace("ref: ", "") for r in rows], rotation=60, ha="right",
                           fontsize=7)  # fmt: skip
        ax.set_title(_col_label(*c), fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    for k in range(len(columns), nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    fig.suptitle(title + " (error bars: std over seeds)", fontsize=10)
    fig.tight_layout()
    _save_figure(fig, path)


def loss_figure(runs: dict[str, list[dict]], path: Path) -> bool:
    """Training loss against step, one colour per variant, one line per seed."""
    curves = [
        (v, r) for v in VARIANTS for r in runs.get(v, []) if r.get("train", {}).get("loss_curve")
    ]
    if not curves:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    palette = dict(zip(VARIANTS, ["tab:blue", "tab:orange", "tab:red", "tab:green"]))
    labelled: set[str] = set()
    for v, r in curves:
        pts = r["train"]["loss_curve"]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=palette[v], alpha=0.8, lw=1,
                label=None if v in labelled else VARIANT_LABELS[v])  # fmt: skip
        labelled.add(v)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("Training loss (one line per seed)", fontsize=10)
    _save_figure(fig, path)
    return True


PredictFn = Callable[[Any], Any]


def predictions_figure(
    run_dirs: dict[str, Path], data_root: Path, path: Path, num_images: int = 3
) -> str | None:
    """Per-layer depth of a few test images: the truth, then every variant's prediction
    (aligned to the truth per layer like the evaluation). Returns None when written, else
    the reason it was skipped (no weights, no data)."""
    import numpy as np

    from amodal_depth.data.format import read_manifest, read_sample, split_ids
    from amodal_depth.metrics import disparity_to_depth, valid_depth

    have = {v: d for v, d in run_dirs.items() if (Path(d) / "model.safetensors").is_file()}
    if not have:
        return "no run weights in the work directory"
    try:
        manifest = read_manifest(data_root)
    except Exception as e:  # the data may live on another machine
        return f"no dataset ({str(e).splitlines()[0]})"
    try:
        from amodal_depth.train import load_run
    except ImportError as e:
        return f"cannot load runs ({e})"
    ids = split_ids(manifest, "test", data_root)[:num_images]
    samples = [read_sample(data_root, i, manifest) for i in ids]
    k = manifest["num_layers"]
    preds: dict[str, list[Any]] = {}
    for v in VARIANTS:
        if v not in have:
            continue
        model = load_run(have[v])
        model.eval()
        out = []
        for s in samples:
            disp = np.asarray(model.predict_layers(s.rgb, s.amodal.astype(bool)), np.float64)
            gt_valid = valid_depth(s.depth)
            out.append(
                np.stack([disparity_to_depth(disp[j], s.depth[j], gt_valid[j]) for j in range(k)])
            )
        preds[v] = out
    plt = _plt()
    names = ["ground truth", *(VARIANT_LABELS[v] for v in preds)]
    nrow = len(samples) * len(names)
    fig, axes = plt.subplots(nrow, k + 1, figsize=(2.2 * (k + 1), 1.75 * nrow), squeeze=False)
    for i, s in enumerate(samples):
        valid = s.depth > 0
        lo = float(s.depth[valid].min()) if valid.any() else 0.0
        hi = float(s.depth[valid].max()) if valid.any() else 1.0
        maps = [s.depth, *(preds[v][i] for v in preds)]
        for j, (name, m) in enumerate(zip(names, maps)):
            row = axes[i * len(names) + j]
            if j == 0:
                row[0].imshow(s.rgb)
                row[0].contour(s.amodal[1] if k > 1 else s.amodal[0], levels=[0.5], colors="w",
                               linewidths=0.6)  # fmt: skip
                row[0].set_title(f"test {ids[i]}", fontsize=7)
            else:
                row[0].axis("off")
            row[0].text(0.0, 0.5, name, transform=row[0].transAxes, fontsize=7, rotation=90,
                        va="center", ha="right")  # fmt: skip
            for layer in range(k):
                shown = np.where(valid[layer], m[layer], np.nan)
                row[layer + 1].imshow(shown, cmap="turbo_r", vmin=lo, vmax=hi)
                row[layer + 1].contour(s.amodal[layer], levels=[0.5], colors="k", linewidths=0.5)
                if i == 0 and j == 0:
                    row[layer + 1].set_title(f"layer {layer + 1} (depth, m)", fontsize=7)
            for ax in row:
                ax.set_xticks([])
                ax.set_yticks([])
    fig.suptitle("Per-layer depth: truth and each variant (seed 0 run), contour = amodal mask",
                 fontsize=9, y=1.01)  # fmt: skip
    fig.tight_layout()
    _save_figure(fig, path, dpi=60)  # many panels: keep the committed PNG small
    return None


# ------------------------------------------------------------------------------ report
def _status_lines(runs: dict[str, list[dict]], info: dict[str, Any]) -> list[str]:
    lines = []
    plan_seeds = info.get("seeds")
    plan_variants = info.get("variants", list(VARIANTS))
    if plan_seeds is not None:
        done = sum(r["seed"] in plan_seeds for v in plan_variants for r in runs.get(v, []))
    else:
        done = sum(len(runs.get(v, [])) for v in VARIANTS)
    if plan_seeds is not None:
        total = len(plan_seeds) * len(plan_variants)
        state = "complete" if done >= total else "IN PROGRESS (partial: resume with the command)"
        lines.append(f"- Runs finished: {done} of {total} planned — {state}.")
    else:
        lines.append(f"- Runs finished: {done}.")
    for key, label in (
        ("command", "Command"),
        ("commit", "Code commit per session"),
        ("data", "Dataset"),
        ("wall_time_h", "Total wall time (hours, all sessions)"),
        ("machine", "Machine"),
    ):
        if key in info:
            val = info[key]
            lines.append(f"- {label}: `{val}`" if key == "command" else f"- {label}: {val}")
    return lines


def _session_commits(sessions: list[dict[str, Any]], runs_dir: Path) -> str:
    """'<commit> (<start>, <hours> h, <n> runs), …' for every session that finished runs, and
    the last one (which wrote the report): a reproduction resumed over several sessions ran
    at several commits. A run belongs to the session whose time span holds its `finished`."""
    finished = []
    for f in sorted(runs_dir.glob("*.json")):
        try:
            finished.append(datetime.fromisoformat(json.loads(f.read_text())["finished"]))
        except (KeyError, ValueError, json.JSONDecodeError):
            continue
    parts = []
    for i, ses in enumerate(sessions):
        try:
            start = datetime.fromisoformat(ses["started"])
        except (KeyError, ValueError):
            continue
        wall = float(ses.get("wall_time_s") or 0.0)
        end = start + timedelta(seconds=wall + 1.0)
        n = sum(start <= t <= end for t in finished)
        if n == 0 and i != len(sessions) - 1:
            continue  # an aborted start
        what = f"{n} run{'s' if n != 1 else ''}" if n else "report and export only"
        parts.append(
            f"{str(ses.get('commit') or 'unknown')[:12]} "
            f"({start:%Y-%m-%d %H:%M} UTC, {wall / 3600:.2f} h, {what})"
        )
    return "; ".join(parts)


def info_from_record(out: str | Path) -> dict[str, Any]:
    """The report header from OUT/reproduction.json (written by `reproduce`), if any."""
    path = Path(out) / "reproduction.json"
    if not path.is_file():
        return {}
    d = json.loads(path.read_text())
    last = d.get("last", {})
    total = float(d.get("total_wall_time_s") or 0.0)
    return {
        "command": last.get("command", ""),
        "commit": _session_commits(d.get("sessions", []), Path(out) / "runs")
        or last.get("commit", ""),
        "seeds": d.get("seeds"),
        "variants": d.get("variants", list(VARIANTS)),
        "data": d.get("data_description", ""),
        "wall_time_h": f"{total / 3600:.2f} over {len(d.get('sessions', []))} session(s)",
        "machine": last.get("machine", ""),
    }


def build_report(
    out: str | Path,
    *,
    run_dirs: dict[str, Path] | None = None,
    data_root: str | Path | None = None,
    info: dict[str, Any] | None = None,
) -> Path:
    """Rebuild every table, figure and claims.md of `out` from its JSON files; returns the
    path of OUT/README.md. `run_dirs` (variant -> a run directory with weights) and
    `data_root` enable the prediction figure; `info` (command, commit, plan) goes on top,
    read from OUT/reproduction.json when not given."""
    out = Path(out)
    info = dict(info if info is not None else info_from_record(out))
    runs, refs = load_runs(out), load_references(out)
    t1, t2 = table1_rows(runs, refs), table2_rows(runs, refs)
    t1_md, t2_md = markdown_table(t1, TABLE1_COLUMNS), markdown_table(t2, TABLE2_COLUMNS)
    atomic_write_text(out / "table1.md", t1_md)
    atomic_write_text(out / "table2.md", t2_md)
    atomic_write_text(out / "table1.csv", csv_table(t1, TABLE1_COLUMNS))
    atomic_write_text(out / "table2.csv", csv_table(t2, TABLE2_COLUMNS))
    claims = claims_markdown(runs)
    atomic_write_text(out / "claims.md", claims)

    bar_figure(t1, TABLE1_COLUMNS[:5] + TABLE1_COLUMNS[7:], out / "fig_table1.png",
               "Table 1: depth accuracy")  # fmt: skip
    bar_figure(t2, TABLE2_COLUMNS, out / "fig_table2.png", "Table 2: cross-layer consistency")
    has_loss = loss_figure(runs, out / "fig_loss.png")
    pred_note: str | None = "no work directory given"
    if run_dirs and data_root is not None:
        pred_note = predictions_figure(run_dirs, Path(data_root), out / "fig_predictions.png")
    if pred_note is not None and (out / "fig_predictions.png").is_file():
        pred_note = None  # keep the figure an earlier build made from the weights

    summary = [
        "# Reproduction of the paper's Tables 1 and 2",
        "",
        *_status_lines(runs, info),
        "",
        "Every number is a mean over seeds ± the sample standard deviation (n = seeds; one "
        "seed shows no ±). Split: test. Depth is aligned per layer (scale and shift in "
        "inverse depth on all valid pixels) before scoring; definitions in docs/metrics.md, "
        "the procedure in docs/reproduction.md. Our data differ from the paper's, so compare "
        "orderings, not values.",
        "",
        "## Table 1 — depth accuracy",
        "",
        "Headline: the hidden part of each target (`invisible`), RMSE and AbsRel in metres "
        "and ratio; δ1 saturates there on simple objects, hence the tighter δ<1.05 and "
        "δ<1.10. The references are not learned: *visible-only* uses the true layer-1 depth "
        "for every layer (perfect ordinary depth, no amodal reasoning); *object fill* fills "
        "each target's hidden part with the median depth of its visible part; *mean-depth "
        "map* is one fixed per-pixel mean of the training depths.",
        "",
        t1_md,
        "The paper's Table 1, for orientation:",
        "",
        paper_table(PAPER_TABLE1, ("delta1", "delta2", "delta3", "rmse")),
        "![Table 1](fig_table1.png)",
        "",
        "## Table 2 — consistency between consecutive layers",
        "",
        "`static` = pixels where the true depth does not change between the two layers. The "
        "GT row is the consistency of the true layer depths: a model matching it is exactly "
        "as 'inconsistent' as reality. A predictor that ignores the layer (visible-only) "
        "looks perfectly consistent, so these metrics reward sameness, not correctness.",
        "",
        t2_md,
        "The paper's Table 2, for orientation:",
        "",
        paper_table(PAPER_TABLE2, CONSISTENCY_METRICS),
        "![Table 2](fig_table2.png)",
        "",
        "## The paper's claims on our data",
        "",
    ]
    summary += [
        *verdict_table(judge_all(runs)),
        "",
        "Every pairwise test and the method: [claims.md](claims.md).",
        "",
        "## Figures",
        "",
    ]
    summary.append("![loss curves](fig_loss.png)" if has_loss else "No loss curves recorded yet.")
    summary.append("")
    if pred_note is None:
        summary.append("![per-layer predictions](fig_predictions.png)")
    else:
        summary.append(f"Prediction figure skipped: {pred_note}.")
    summary += ["", "## Runs", "", "| run | steps | train wall (min) | final loss | test images |",
                "|---|---|---|---|---|"]  # fmt: skip
    for v in VARIANTS:
        for r in runs.get(v, []):
            tr = r.get("train", {})
            wall = tr.get("wall_time_s")
            loss = tr.get("final_loss")
            summary.append(
                f"| {v}-seed{r['seed']} | {tr.get('steps', '—')} | "
                f"{'—' if wall is None else f'{wall / 60:.1f}'} | "
                f"{'—' if loss is None else f'{loss:.4f}'} | {r['test'].get('num_images', '—')} |"
            )
    summary.append("")
    readme = out / "README.md"
    atomic_write_text(readme, "\n".join(summary))
    return readme


if __name__ == "__main__":  # rebuild a committed report: python -m amodal_depth.report OUT
    import sys

    for arg in sys.argv[1:] or ["."]:
        print(build_report(arg))
