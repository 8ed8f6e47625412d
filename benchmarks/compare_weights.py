"""Several weights files on several datasets: one `amodal-depth evaluate` per cell, one table.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/compare_weights.py \
        --weights before=runs/before.safetensors --weights wide=runs/wide/model.safetensors \
        --set wide-val=data/diverse-wide:val:200 --set shifted=data/shifted:test \
        --set template-test=data/cpu:test --work runs/compare \
        --out benchmarks/results/wide_camera.json

Each cell is `amodal-depth evaluate --weights W --data DATA --split SPLIT [--max-images N]`
(its command is in the JSON); the evaluation JSON of a cell is kept in --work as
SET_WEIGHTS.json, stamped with the sha256 of the weights file it scored, so a rerun skips
the cells whose weights have not changed (resumable, as benchmarks/shift_factors.py). Every
dataset and weights file is checked before the first evaluation. Per cell: layer-1 delta1,
all-pixel delta1, hidden-part RMSE and AbsRel (o_k's hidden part, k >= 2), layer-1 boundary
F1 and the hidden-outline boundary F1 (common.headline_scores), after evaluate's per-layer
alignment; the markdown table is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from amodal_depth.errors import UserError
from amodal_depth.evaluate import evaluate_cli
from amodal_depth.fileio import atomic_write_json
from amodal_depth.models.checkpoints import load_model
from common import (
    add_out,
    check_dataset,
    headline_scores,
    run,
)  # benchmarks/ is this script's directory

COLUMNS = {
    "layer1_delta1": "layer-1 δ1 ↑",
    "all_delta1": "all δ1 ↑",
    "hidden_rmse_m": "hidden RMSE (m) ↓",
    "hidden_abs_rel": "hidden AbsRel ↓",
    "layer1_boundary_f1": "layer-1 boundary F1 ↑",
    "hidden_outline_f1": "hidden-outline boundary F1 ↑",
}


def _pair(spec: str, flag: str, example: str) -> tuple[str, str]:
    if "=" not in spec:
        raise UserError(f"{flag} {spec!r}: expected {example}")
    name, value = spec.split("=", 1)
    return name, value


def parse_set(spec: str) -> tuple[str, str, str, int | None]:
    """NAME=DATA:SPLIT[:MAX_IMAGES] -> (name, data, split, max_images)."""
    name, rest = _pair(spec, "--set", "NAME=DATA:SPLIT[:MAX_IMAGES] (shifted=data/shifted:test)")
    parts = rest.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise UserError(f"--set {spec!r}: expected NAME=DATA:SPLIT[:MAX_IMAGES]")
    if len(parts) == 3 and not parts[2].isdigit():
        raise UserError(f"--set {spec!r}: MAX_IMAGES must be a positive whole number")
    return name, parts[0], parts[1], int(parts[2]) if len(parts) == 3 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", action="append", required=True, help="NAME=FILE (repeat)")
    ap.add_argument("--set", action="append", required=True,
                    help="NAME=DATA:SPLIT[:MAX_IMAGES] (repeat)")  # fmt: skip
    ap.add_argument("--work", required=True, help="folder for the per-cell evaluate JSONs")
    add_out(ap, "compare_weights.json")
    a = ap.parse_args()
    weights = [_pair(w, "--weights", "NAME=FILE") for w in a.weights]
    sets = [parse_set(s) for s in a.set]
    for _, data, _, _ in sets:  # every input checked before the first evaluation
        check_dataset(data)
    sha = {}
    for name, path in weights:
        load_model(path)
        sha[name] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    cells: dict[str, dict[str, dict]] = {}
    for set_name, data, split, n in sets:
        for w_name, path in weights:
            out = work / f"{set_name}_{w_name}.json"
            r = json.loads(out.read_text()) if out.is_file() else {}
            if r.get("weights_sha256") != sha[w_name]:
                evaluate_cli(weights=path, data=data, split=split, out=out, max_images=n)
                r = {**json.loads(out.read_text()), "weights_sha256": sha[w_name]}
                atomic_write_json(out, r)
            cmd = f"amodal-depth evaluate --weights {path} --data {data} --split {split}"
            cmd += f" --max-images {n}" if n else ""
            cells.setdefault(set_name, {})[w_name] = {
                "images": r["num_images"],
                **{k: round(v, 4) for k, v in headline_scores(r).items() if v is not None},
                "command": f"{cmd} --out J.json",
            }
    lines = ["| weights | data | images | " + " | ".join(COLUMNS.values()) + " |",
             "|---" * (3 + len(COLUMNS)) + "|"]  # fmt: skip
    for set_name, row in cells.items():
        for w_name, c in row.items():
            vals = [f"{c[k]:.3f}" if k in c else "—" for k in COLUMNS]
            lines.append(f"| {w_name} | {set_name} | {c['images']} | " + " | ".join(vals) + " |")
    atomic_write_json(
        a.out,
        {
            "what": "weights x datasets, one evaluate per cell (benchmarks/compare_weights.py)",
            "weights": {n: {"path": p, "sha256": sha[n]} for n, p in weights},
            "cells": cells,
            "table": lines,
        },
    )
    print("\n".join(lines))


if __name__ == "__main__":
    run(main)
