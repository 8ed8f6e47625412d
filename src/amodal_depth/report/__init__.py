"""The reproduction report: the paper's two tables on our data, with honest statistics.

Everything is rebuilt from small files in the report directory, so a report can be
regenerated (and committed) without the heavy work directory; the report reads JSON and
arrays and draws, it trains, loads and runs nothing. The inputs (`results`):
`OUT/runs/<variant>-seed<S>.json` per finished run, `OUT/references/<name>.json` per
reference predictor, and for the prediction figure `OUT/test_images.npz` with
`OUT/runs/<variant>-seed<S>.npz` (written by `amodal_depth.reproduce`).

Outputs (all written atomically, `page.build_report`): `README.md` (the report),
`table1.md/.csv`, `table2.md/.csv`, `claims.md`, and the figures `fig_table1.png`,
`fig_table2.png`, `fig_loss.png`, `fig_predictions.png` (kept as it is when its arrays are
not in the directory).

Modules: `paper` (names, labels, the paper's tables and claims), `stats` (mean ± std, Welch's
test), `claims` (verdicts, claims.md), `tables`, `figures`, `results` (reading the
directory), `page` (README.md). Rebuild a committed report with
`python -m amodal_depth.report OUT`.
"""

from amodal_depth.report.claims import (
    FAILS,
    HOLDS,
    MISSING,
    NOISE,
    ONE_SEED,
    Verdict,
    claim_section,
    claims_markdown,
    judge,
    judge_all,
    statement_verdict,
    verdict_table,
)
from amodal_depth.report.page import build_report, info_from_record
from amodal_depth.report.paper import (
    CONSISTENCY_METRICS,
    LOWER_IS_BETTER,
    METRIC_LABELS,
    PAPER_TABLE1,
    PAPER_TABLE2,
    REFERENCE_LABELS,
    VARIANT_LABELS,
    VARIANTS,
    Claim,
    PaperStatement,
    paper_says,
    paper_statements,
)
from amodal_depth.report.results import (
    TEST_IMAGES_NAME,
    FigureArrays,
    load_figure_arrays,
    load_references,
    load_runs,
    predictions_name,
    run_json_name,
)
from amodal_depth.report.stats import ALPHA, Stat, welch_test
from amodal_depth.report.tables import (
    TABLE1_COLUMNS,
    TABLE2_COLUMNS,
    Row,
    csv_table,
    fmt_stat,
    markdown_table,
    paper_table,
    table1_rows,
    table2_rows,
)

__all__ = [
    "ALPHA",
    "CONSISTENCY_METRICS",
    "FAILS",
    "HOLDS",
    "LOWER_IS_BETTER",
    "METRIC_LABELS",
    "MISSING",
    "NOISE",
    "ONE_SEED",
    "PAPER_TABLE1",
    "PAPER_TABLE2",
    "REFERENCE_LABELS",
    "TABLE1_COLUMNS",
    "TABLE2_COLUMNS",
    "TEST_IMAGES_NAME",
    "VARIANTS",
    "VARIANT_LABELS",
    "Claim",
    "FigureArrays",
    "PaperStatement",
    "Row",
    "Stat",
    "Verdict",
    "build_report",
    "claim_section",
    "claims_markdown",
    "csv_table",
    "fmt_stat",
    "info_from_record",
    "judge",
    "judge_all",
    "load_figure_arrays",
    "load_references",
    "load_runs",
    "markdown_table",
    "paper_says",
    "paper_statements",
    "paper_table",
    "predictions_name",
    "run_json_name",
    "statement_verdict",
    "table1_rows",
    "table2_rows",
    "verdict_table",
    "welch_test",
]
