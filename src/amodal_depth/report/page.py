"""The report page (OUT/README.md): the run-history header, both tables beside the paper's,
the claim verdicts, the figures and the list of runs — rebuilt from the directory's files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from amodal_depth.fileio import atomic_write_text
from amodal_depth.report.claims import claims_markdown, judge_all, verdict_table
from amodal_depth.report.figures import bar_figure, loss_figure, predictions_figure
from amodal_depth.report.paper import CONSISTENCY_METRICS, PAPER_TABLE1, PAPER_TABLE2, VARIANTS
from amodal_depth.report.results import load_figure_arrays, load_references, load_runs
from amodal_depth.report.tables import (
    TABLE1_COLUMNS,
    TABLE2_COLUMNS,
    csv_table,
    markdown_table,
    paper_table,
    table1_rows,
    table2_rows,
)

PREDICTIONS_FIGURE = "fig_predictions.png"


# ------------------------------------------------------------------------------ header
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


# ------------------------------------------------------------------------------ sections
def _tables_section(t1_md: str, t2_md: str) -> list[str]:
    return [
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
    ]


def _runs_section(runs: dict[str, list[dict]]) -> list[str]:
    lines = ["## Runs", "", "| run | steps | train wall (min) | final loss | test images |",
             "|---|---|---|---|---|"]  # fmt: skip
    for v in VARIANTS:
        for r in runs.get(v, []):
            tr = r.get("train", {})
            wall = tr.get("wall_time_s")
            loss = tr.get("final_loss")
            lines.append(
                f"| {v}-seed{r['seed']} | {tr.get('steps', '—')} | "
                f"{'—' if wall is None else f'{wall / 60:.1f}'} | "
                f"{'—' if loss is None else f'{loss:.4f}'} | {r['test'].get('num_images', '—')} |"
            )
    return lines


def _draw_predictions(out: Path) -> str | None:
    """Draw the prediction figure from the saved arrays. None when the figure is there
    (drawn now, or kept from an earlier build), else why it is missing."""
    arrays = load_figure_arrays(out, VARIANTS)
    if arrays is not None:
        predictions_figure(arrays, out / PREDICTIONS_FIGURE)
        return None
    if (out / PREDICTIONS_FIGURE).is_file():
        return None  # kept as an earlier build drew it (its arrays are not in OUT)
    return "no saved predictions in the report directory (runs/<variant>-seed<S>.npz)"


# ------------------------------------------------------------------------------ report
def build_report(out: str | Path, *, info: dict[str, Any] | None = None) -> Path:
    """Rebuild every table, figure and claims.md of `out` from its files; returns the path
    of OUT/README.md. `info` (command, commit, plan) goes on top, read from
    OUT/reproduction.json when not given."""
    out = Path(out)
    info = dict(info if info is not None else info_from_record(out))
    runs, refs = load_runs(out), load_references(out)
    t1, t2 = table1_rows(runs, refs), table2_rows(runs, refs)
    t1_md, t2_md = markdown_table(t1, TABLE1_COLUMNS), markdown_table(t2, TABLE2_COLUMNS)
    atomic_write_text(out / "table1.md", t1_md)
    atomic_write_text(out / "table2.md", t2_md)
    atomic_write_text(out / "table1.csv", csv_table(t1, TABLE1_COLUMNS))
    atomic_write_text(out / "table2.csv", csv_table(t2, TABLE2_COLUMNS))
    atomic_write_text(out / "claims.md", claims_markdown(runs))

    bar_figure(t1, TABLE1_COLUMNS[:5] + TABLE1_COLUMNS[7:], out / "fig_table1.png",
               "Table 1: depth accuracy")  # fmt: skip
    bar_figure(t2, TABLE2_COLUMNS, out / "fig_table2.png", "Table 2: cross-layer consistency")
    has_loss = loss_figure(runs, out / "fig_loss.png")
    pred_note = _draw_predictions(out)

    page = [
        "# Reproduction of the paper's Tables 1 and 2",
        "",
        *_status_lines(runs, info),
        "",
        *_tables_section(t1_md, t2_md),
        "## The paper's claims on our data",
        "",
        *verdict_table(judge_all(runs)),
        "",
        "Every pairwise test and the method: [claims.md](claims.md).",
        "",
        "## Figures",
        "",
        "![loss curves](fig_loss.png)" if has_loss else "No loss curves recorded yet.",
        "",
        "![per-layer predictions](fig_predictions.png)"
        if pred_note is None
        else f"Prediction figure skipped: {pred_note}.",
        "",
        *_runs_section(runs),
        "",
    ]
    readme = out / "README.md"
    atomic_write_text(readme, "\n".join(page))
    return readme
