"""report/tables.py: Tables 1 and 2 in markdown and CSV, labels from the variant registry."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from amodal_depth import report
from amodal_depth.models.variants import VARIANTS as REGISTRY
from amodal_depth.report import Stat, fmt_stat
from amodal_depth.report.paper import PAPER_VARIANTS
from test_report import result, write_run  # tests/ is on sys.path under pytest


def test_labels_come_from_the_variant_registry() -> None:
    assert report.VARIANTS == tuple(REGISTRY)
    assert report.VARIANT_LABELS == {v: spec.label for v, spec in REGISTRY.items()}
    assert report.VARIANT_LABELS["ade_multibatch"] == "ADE + Multi-Batch"
    assert all(spec.summary and "\n" not in spec.summary for spec in REGISTRY.values())


def test_fmt_stat_decimals_per_metric() -> None:
    assert fmt_stat(Stat(0.123456, 0.01, 3), "rmse") == "0.1235 ± 0.0100"
    assert fmt_stat(Stat(0.0101234, 0.0002, 3), "pc_rmse") == "0.01012 ± 0.00020"
    assert fmt_stat(Stat(0.5, float("nan"), 1), "rmse") == "0.5000"
    assert fmt_stat(Stat.of([]), "rmse") == "—"


def test_tables_hold_every_variant_with_mean_std_and_n(tmp_path: Path) -> None:
    for seed, rmse in enumerate([0.1, 0.2, 0.3]):
        write_run(tmp_path, "ade", seed, depth={"rmse": rmse})
    write_run(tmp_path, "ade_mha", 0, depth={"rmse": 0.4})
    runs = report.load_runs(tmp_path)
    refs = {"visible_only": result(depth={"rmse": 0.7})}
    rows = report.table1_rows(runs, refs)
    md = report.markdown_table(rows, report.TABLE1_COLUMNS)
    # The paper's four always (a missing one shows n = 0); our own variants once they have runs.
    assert [r.label for r in rows] == ["ref: visible-only", *(report.VARIANT_LABELS[v]
                                                              for v in PAPER_VARIANTS)]  # fmt: skip
    write_run(tmp_path, "ade_late_guidance", 0, depth={"rmse": 0.5})
    labels = [r.label for r in report.table1_rows(report.load_runs(tmp_path), refs)]
    assert labels[-1] == report.VARIANT_LABELS["ade_late_guidance"]
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

    t2_rows = report.table2_rows(runs, refs)
    assert [r.kind for r in t2_rows[:2]] == ["gt", "reference"]
    t2 = report.markdown_table(t2_rows, report.TABLE2_COLUMNS)
    assert "GT reference" in t2 and "static pixel diff ↓" in t2 and "| 0.1000 |" in t2


def test_paper_table_lists_the_papers_numbers() -> None:
    md = report.paper_table(report.PAPER_TABLE1, ("delta1", "rmse"))
    lines = md.splitlines()
    assert lines[0] == "| model (paper, one run, its own data) | δ1 ↑ | RMSE ↓ |"
    assert lines[2] == "| ADE | 0.98366 | 0.13641 |"
    assert lines[-1] == "| ADE + Multi-Batch | 0.98373 | 0.13601 |"
