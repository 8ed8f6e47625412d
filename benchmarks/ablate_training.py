"""What each change of the cpu-long recipe does, at a short equal budget. Writes JSON
(default runs/benchmarks/training_ablation.json;
benchmarks/results/ holds the committed copy) after every row; rerunning resumes
(finished rows are kept, an interrupted training run continues from its checkpoint).

    .venv/bin/python benchmarks/ablate_training.py --diverse data/diverse --template data/cpu \
        --shifted data/shifted [--steps 400] [--work runs/ablate] [--threads 1]
    .venv/bin/python benchmarks/ablate_training.py --table ...   # the markdown table

Rows (variant ade_mha, batch 4, 224x168; each row changes one thing of `cpu_long_recipe`):
  cpu_long_recipe   the cpu-long preset's recipe (diverse scenes, augmentation, DPT head 32)
  template_data     the same recipe on the one-room-template scenes
  no_augmentation   no colour jitter, no crop-and-rescale, exact guidance masks
  head_64           the default DPT head width (64) instead of 32
Every row is scored on the first `--max-images` (100) images of the template test split
(`--template`, the paper-reproduction data) and of the shifted set (`--shifted`): layer-1
delta1 (`all` of layer 1 is the ordinary depth map), invisible-part RMSE, layer-1 boundary F1,
plus images/s and wall time of training.
Model choice uses val and the shifted set only; nothing here looks at a test split to choose.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import torch

from amodal_depth.config import preset
from amodal_depth.evaluate import evaluate
from amodal_depth.fileio import atomic_write_json
from amodal_depth.runs import load_run
from amodal_depth.train import train
from common import ROOT, add_out, check_dataset, run  # benchmarks/ is this script's directory

VARIANT = "ade_mha"
ROWS: dict[str, dict] = {
    "cpu_long_recipe": {},
    "template_data": {"data": "template"},
    "no_augmentation": {"train": {"colour_jitter": 0.0, "crop_min": 1.0, "mask_perturb": 0.0}},
    "head_64": {"model": {"features": 64}},
}


def row_config(name: str, steps: int):
    row = ROWS[name]
    cfg = preset("cpu-long", VARIANT)
    model = dataclasses.replace(cfg.model, **row.get("model", {}))
    warm = max(1, steps // 20)
    return dataclasses.replace(
        cfg, model=model, steps=steps, warmup_steps=warm, checkpoint_every=100, log_every=25,
        **row.get("train", {}),
    )  # fmt: skip


def layer1_summary(r: dict) -> dict:
    """The numbers of the training table from one evaluate summary."""
    return {
        "layer1_delta1": r["depth_per_layer"]["1"]["all"]["delta1"],
        "all_delta1": r["depth"]["all"]["delta1"],
        "invisible_rmse": r["depth"]["invisible"]["rmse"],
        "boundary_f1_layer1": r["boundary_per_layer"]["1"]["boundary_f1"],
        "boundary_f1_hidden_outline": r["boundary"]["boundary_f1_hidden_outline"],
    }


def markdown_table(result: dict) -> str:
    """The table of docs/training.md from the JSON this script writes."""
    head = (
        "| row | train img/s | train min | template: layer-1 δ1 | template: hidden RMSE (m) "
        "| template: layer-1 boundary F1 | shifted: layer-1 δ1 | shifted: hidden RMSE (m) "
        "| shifted: layer-1 boundary F1 |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for name, r in result["rows"].items():
        t, s = r["template_test"], r["shifted"]
        cells = [f"{r['images_per_s']:.2f}", f"{r['train_wall_s'] / 60:.0f}"]
        for d in (t, s):
            cells += [
                f"{d[k]:.3f}" for k in ("layer1_delta1", "invisible_rmse", "boundary_f1_layer1")
            ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--diverse", required=True, type=Path)
    ap.add_argument("--template", required=True, type=Path)
    ap.add_argument("--shifted", required=True, type=Path)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--work", type=Path, default=ROOT / "runs/ablate")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default all)")
    ap.add_argument("--max-images", type=int, default=100, help="images scored per set")
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    add_out(ap, "training_ablation.json")
    ap.add_argument("--table", action="store_true", help="print the markdown table of --out")
    a = ap.parse_args()
    for d in (a.diverse, a.template, a.shifted):
        check_dataset(d)
    if a.table:
        print(markdown_table(json.loads(a.out.read_text())))
        return
    if a.threads:
        torch.set_num_threads(a.threads)
    result = json.loads(a.out.read_text()) if a.out.exists() else {}
    # Rows may come from several invocations (other --threads): each row keeps its command.
    command = (
        "python benchmarks/ablate_training.py "
        f"--diverse {a.diverse} --template {a.template} --shifted {a.shifted} "
        f"--steps {a.steps} --max-images {a.max_images}"
        + (f" --threads {a.threads}" if a.threads else "")
        + (f" --rows {' '.join(a.rows)}" if a.rows != list(ROWS) else "")
    )
    result.update(machine=platform.machine(), variant=VARIANT)
    rows = result.setdefault("rows", {})
    for name in a.rows:
        if name in rows:
            continue
        cfg = row_config(name, a.steps)
        data = a.template if ROWS[name].get("data") == "template" else a.diverse
        run = a.work / name
        t0 = time.perf_counter()
        train(cfg, data, run, resume=True, progress=False)
        done = json.loads((run / "done.json").read_text())
        model = load_run(run)
        scores = {}
        for label, root, split in (("template_test", a.template, "test"),
                                   ("shifted", a.shifted, "test")):  # fmt: skip
            r = evaluate(model, root, split, progress=False, name=name, max_images=a.max_images)
            scores[label] = layer1_summary(r)
        rows[name] = {
            "command": command,
            "train_data": str(data),
            "steps": cfg.steps,
            "images_per_s": done["images_per_s"],
            "train_wall_s": done["wall_time_s"],
            "row_wall_s": time.perf_counter() - t0,
            **scores,
        }
        atomic_write_json(a.out, result)
        print(name, json.dumps(rows[name]), flush=True)


if __name__ == "__main__":
    run(main)
