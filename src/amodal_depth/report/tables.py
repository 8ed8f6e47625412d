"""Tables 1 and 2 of the report (markdown and CSV), and the paper's tables beside them."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from amodal_depth.report.paper import (
    CONSISTENCY_METRICS,
    LOWER_IS_BETTER,
    METRIC_LABELS,
    PAPER_VARIANTS,
    REFERENCE_LABELS,
    REFERENCE_ORDER,
    VARIANT_LABELS,
    VARIANTS,
)
from amodal_depth.report.results import get_value, run_values
from amodal_depth.report.stats import Stat

Column = tuple[str, str]
"""(region, metric)."""

# Table 1: the hidden part (`invisible`) is the headline; RMSE and AbsRel first because δ1
# saturates there on simple objects (the object-fill reference reached δ1 = 1.00 in a trial).
TABLE1_COLUMNS: tuple[Column, ...] = (
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
TABLE2_COLUMNS: tuple[Column, ...] = tuple(
    (region, m) for region in ("all", "static") for m in CONSISTENCY_METRICS
)

SMALL_METRICS = frozenset({"pc_rmse"})
"""Metrics around 0.01 (point-cloud RMSE of [0,1]-normalised depth): shown with 5 decimals."""


@dataclass
class Row:
    label: str
    kind: str  # "reference", "variant" or "gt"
    stats: dict[Column, Stat]

    @property
    def n(self) -> int:
        return max((s.n for s in self.stats.values()), default=0)


def fmt_stat(s: Stat, metric: str = "") -> str:
    """'0.1234 ± 0.0056' (n >= 2), '0.1234' (n = 1), '—' (no value); one decimal count per
    metric so that a column lines up."""
    if s.n == 0 or math.isnan(s.mean):
        return "—"
    d = 5 if metric in SMALL_METRICS else 4
    if s.n < 2 or math.isnan(s.std):
        return f"{s.mean:.{d}f}"
    return f"{s.mean:.{d}f} ± {s.std:.{d}f}"


def _ref_row(name: str, result: dict[str, Any], section: str, columns: Sequence[Column]) -> Row:
    label = REFERENCE_LABELS.get(name, f"ref: {name}")
    return Row(label, "reference", {c: Stat.of([get_value(result, section, *c)]) for c in columns})


def _variant_rows(
    runs: dict[str, list[dict]], section: str, columns: Sequence[Column]
) -> list[Row]:
    return [
        Row(
            VARIANT_LABELS[v],
            "variant",
            {c: Stat.of(run_values(runs.get(v, []), section, *c)) for c in columns},
        )
        for v in VARIANTS
        if v in PAPER_VARIANTS or runs.get(v)  # our own variants appear once they have runs
    ]


def table1_rows(runs: dict[str, list[dict]], refs: dict[str, dict]) -> list[Row]:
    """References (mean-depth map, visible-only, object fill), then every variant."""
    rows = [_ref_row(n, refs[n], "depth", TABLE1_COLUMNS) for n in REFERENCE_ORDER if n in refs]
    return rows + _variant_rows(runs, "depth", TABLE1_COLUMNS)


def table2_rows(runs: dict[str, list[dict]], refs: dict[str, dict]) -> list[Row]:
    """The ground-truth layers' own consistency, the references, then every variant."""
    rows: list[Row] = []
    gt_source = next(iter(refs.values()), None) or next(
        (rs[0]["test"] for rs in runs.values() if rs), None
    )
    if gt_source is not None:
        rows.append(
            Row(
                "GT reference (true layers)",
                "gt",
                {c: Stat.of([get_value(gt_source, "gt_consistency", *c)]) for c in TABLE2_COLUMNS},
            )
        )
    rows += [
        _ref_row(n, refs[n], "consistency", TABLE2_COLUMNS) for n in REFERENCE_ORDER if n in refs
    ]
    return rows + _variant_rows(runs, "consistency", TABLE2_COLUMNS)


def col_label(region: str, metric: str) -> str:
    arrow = "↓" if metric in LOWER_IS_BETTER else "↑"
    return f"{region} {METRIC_LABELS[metric]} {arrow}"


def markdown_table(rows: Sequence[Row], columns: Sequence[Column]) -> str:
    head = ["model", "n", *(col_label(*c) for c in columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        n = str(r.n) if r.kind == "variant" else "—"
        lines.append(
            "| " + " | ".join([r.label, n, *(fmt_stat(r.stats[c], c[1]) for c in columns)]) + " |"
        )
    return "\n".join(lines) + "\n"


def csv_table(rows: Sequence[Row], columns: Sequence[Column]) -> str:
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
    """One of the paper's tables in markdown (the variants it reports, in registry order)."""
    head = ["model (paper, one run, its own data)", *(col_label("", m).strip() for m in metrics)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in VARIANTS:
        if v not in table:
            continue
        cells = [VARIANT_LABELS[v], *(f"{table[v][m]:.5f}" for m in metrics)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
