"""The tables of docs/results/observed-depth-tables.md: evaluate calls, then the tables.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/observed_depth_table.py \
        --set template=data/cpu:test --set shifted=data/shifted:test --max-images 200 \
        --rgb weights/model.safetensors [--rgbd [NAME=]RGBD_RUN/model.safetensors ...] \
        --work runs/observed_table --out docs/results/observed-depth-tables.md

Each row is one `amodal-depth evaluate` call (its command is printed in the table); the
JSON of each is kept in --work under the row's label (NAME_row_label.json), and a rerun skips
those that exist (resumable). Hidden =
the `invisible` region (o_k's hidden part, k >= 2); metric rows are scored without any
alignment to the truth.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from amodal_depth.errors import UserError
from amodal_depth.evaluate import evaluate_cli
from amodal_depth.fileio import atomic_write_text
from common import check_dataset, run  # benchmarks/ is this script's directory


def _rows(rgb: str, rgbd: list[tuple[str, str]]) -> list[tuple[str, dict]]:
    rows = [
        ("object_fill, true depth (oracle)", {"reference": "object_fill", "observed": "gt"}),
        ("object_fill, sensor depth", {"reference": "object_fill", "observed": "gt-corrupted"}),
        ("visible_only, true depth", {"reference": "visible_only", "observed": "gt"}),
        ("RGB-only weights, no depth (aligned to truth)", {"weights": rgb}),
        ("RGB-only weights + true depth", {"weights": rgb, "observed": "gt"}),
        (
            "RGB-only weights + true depth, aligned to truth",
            {"weights": rgb, "observed": "gt", "align_to_gt": True},
        ),
        ("RGB-only weights + sensor depth", {"weights": rgb, "observed": "gt-corrupted"}),
    ]
    for name, path in rgbd:
        who = _who(name)
        rows += [
            (f"{who} + true depth", {"weights": path, "observed": "gt"}),
            (
                f"{who} + true depth, aligned to truth",
                {"weights": path, "observed": "gt", "align_to_gt": True},
            ),
            (f"{who} + sensor depth", {"weights": path, "observed": "gt-corrupted"}),
            (
                f"{who} + RGB model's layer 1 (relative, aligned to truth)",
                {"weights": path, "observed": f"model:{rgb}"},
            ),
        ]
    return rows


def _named(spec: str) -> tuple[str, str]:
    """--rgbd NAME=PATH or PATH -> (NAME or '', PATH)."""
    name, sep, path = spec.partition("=")
    return (name, path) if sep else ("", spec)


def _who(name: str) -> str:
    """How the rows and the header name the RGB-D model called `name` ('' = unnamed)."""
    return f"RGB-D weights {name}" if name else "RGB-D weights"


def _slug(label: str) -> str:
    """A row's file name in --work: its label in lower-case words joined by '_'."""
    return "_".join("".join(c if c.isalnum() else " " for c in label.lower()).split())


def _command(data: str, split: str, n: int | None, kw: dict, out: Path) -> str:
    parts = ["amodal-depth evaluate"]
    if "weights" in kw:
        parts.append(f"--weights {kw['weights']}")
    if "reference" in kw:
        parts.append(f"--reference {kw['reference']}")
    parts.append(f"--data {data} --split {split}")
    if n:
        parts.append(f"--max-images {n}")
    if "observed" in kw:
        parts.append(f"--observed {kw['observed']}")
    if kw.get("align_to_gt"):
        parts.append("--align-to-gt")
    return " ".join([*parts, f"--out {out}"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", required=True, help="NAME=DATA:SPLIT")
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--rgb", required=True)
    ap.add_argument(
        "--rgbd", action="append", default=[], metavar="[NAME=]WEIGHTS",
        help="a model that reads the depth map; repeat for several (then name each)",
    )  # fmt: skip
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    for spec in a.set:  # every dataset checked before the first evaluate call
        if "=" not in spec or ":" not in spec:
            raise UserError(f"--set {spec!r}: expected NAME=DATA:SPLIT (template=data/cpu:test)")
        check_dataset(spec.split("=", 1)[1].rsplit(":", 1)[0])
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Layered depth given an observed depth of the visible scene: measured",
        "",
        "Made by `benchmarks/observed_depth_table.py` (its docstring has the command); every",
        "row is one `amodal-depth evaluate` call, listed under its table. The observation",
        "sources and the scoring are in [../observed-depth.md](../observed-depth.md): rows",
        "with a metric observation (true or sensor depth) are scored in metres **without any",
        "alignment** to the truth, unless the row says otherwise. Hidden = o_k's hidden part",
        "(layers 2..K); all = every valid pixel of every layer; where a layer shows the",
        "visible scene and the observation is valid the layer *is* the observation, so the",
        "hidden columns are the measure. Images: an image whose simulated sensor saw fewer",
        "than 64 pixels is skipped by every row given that observation. `RGB-only weights` =",
        f"`{a.rgb}`.",
        "",
    ]
    rgbd = [_named(spec) for spec in a.rgbd]
    for name, path in rgbd:
        who = _who(name)
        lines[-1:-1] = [
            f"`{who}` = `{path}`, a model that reads the depth map (`train",
            "--observed-depth`; how it was trained: [../observed-depth.md](../observed-depth.md)).",
        ]
    for spec in a.set:
        name, rest = spec.split("=", 1)
        data, split = rest.rsplit(":", 1)
        lines += [f"### {name} (`{data}`, split {split})", ""]
        lines += ["| predictor | images | hidden RMSE (m) ↓ | hidden AbsRel ↓ | hidden δ1.05 ↑ | "
                  "all RMSE (m) ↓ | all δ1 ↑ |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        commands = []
        for label, kw in _rows(a.rgb, rgbd):
            out = work / f"{name}_{_slug(label)}.json"
            if not out.is_file():
                evaluate_cli(data=data, split=split, out=out, max_images=a.max_images, **kw)
            r = json.loads(out.read_text())
            inv, al = r["depth"]["invisible"], r["depth"]["all"]
            lines.append(
                f"| {label} | {r['num_images']} | {inv['rmse']:.3f} | {inv['abs_rel']:.3f} | "
                f"{inv['delta_1_05']:.3f} | {al['rmse']:.3f} | {al['delta1']:.3f} |"
            )
            commands.append(f"    {_command(data, split, a.max_images, kw, out)}")
        lines += ["", "Commands:", "", *commands, ""]
    atomic_write_text(Path(a.out), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    run(main)
