"""What every benchmark script shares: where results go, the datasets they read, one-line errors.

* **Results.** A script's `--out` defaults to `runs/benchmarks/NAME` (ignored by git), so a
  documented command never overwrites the committed numbers in `benchmarks/results/`; pass
  `--out benchmarks/results/NAME` to refresh those on purpose.
* **Datasets.** The data the scripts read is not committed (`data/` is ignored): a missing
  dataset stops the script before any work with one line naming the command that renders
  it (`DATASET_COMMANDS` for the directories the docs use).
* **Errors.** `run(main)` turns the package's one-line errors (a bad path, a bad weights
  file) into that line on stderr and exit code 2, as the `amodal-depth` CLI does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from amodal_depth.errors import UserError
from amodal_depth.fileio import check_output_file

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "runs" / "benchmarks"
"""Default output directory of the benchmark scripts (inside the ignored runs/)."""

DATASET_COMMANDS = {
    "cpu": "amodal-depth data generate --out data/cpu --num 2000 --seed 0 --workers 2",
    "diverse": "amodal-depth data generate --out data/diverse --num 8000 --seed 1 "
    "--style diverse --workers 2",
    "shifted": "amodal-depth data generate --out data/shifted --num 400 --seed 777 "
    "--style shifted --workers 2",
    "diverse-wide": "amodal-depth data generate --out data/diverse-wide --num 8000 --seed 2 "
    "--style diverse-wide --workers 2",
}
"""The commands that render the datasets the docs' benchmark commands read (docs/data.md)."""


def _out_file(value: str) -> Path:
    try:
        return check_output_file(value)
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_out(ap: argparse.ArgumentParser, name: str) -> None:
    """--out, default runs/benchmarks/NAME; a path that cannot become a file (a directory, a
    file where a folder should be) is refused before any work."""
    ap.add_argument(
        "--out",
        type=_out_file,
        default=SCRATCH / name,
        help=f"result file (default runs/benchmarks/{name}; the committed copy is "
        f"benchmarks/results/{name})",
    )


def check_dataset(path: Path | str) -> Path:
    """`path` if it holds a dataset (its manifest.json); else a UserError naming the command
    that renders it."""
    path = Path(path)
    if (path / "manifest.json").is_file():
        return path
    cmd = DATASET_COMMANDS.get(
        path.name, f"amodal-depth data generate --out {path} --num N --workers 2"
    )
    raise UserError(f"{path}: no dataset there (data/ is not committed); render it first: {cmd}")


def headline_scores(r: dict) -> dict[str, float | None]:
    """The columns the model comparisons report, from one `amodal-depth evaluate` JSON:
    layer-1 and all-pixel delta1, hidden-part RMSE and AbsRel, layer-1 and hidden-outline
    boundary F1."""
    return {
        "layer1_delta1": r["depth_per_layer"]["1"]["all"]["delta1"],
        "all_delta1": r["depth"]["all"]["delta1"],
        "hidden_rmse_m": r["depth"]["invisible"]["rmse"],
        "hidden_abs_rel": r["depth"]["invisible"]["abs_rel"],
        "layer1_boundary_f1": r["boundary_per_layer"]["1"]["boundary_f1"],
        "hidden_outline_f1": r["boundary"]["boundary_f1_hidden_outline"],
    }


def run(main: Callable[[], object]) -> None:
    """Call a script's main() and exit with the int it returns (0 for None); a UserError
    becomes one line on stderr and exit code 2."""
    try:
        code = main()
    except UserError as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
