"""Which change of the shifted set costs the model its depth: one factor at a time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/shift_factors.py \
        --weights weights/model.safetensors --num 100 \
        --out benchmarks/results/shift_factors.json

The shifted set differs from the `diverse` training distribution in several groups of
ranges at once (data/styles.py, SHIFT_FACTORS: lens, camera, tilt, light, texture, noise,
objects). For each group this renders `--num` scenes of the style `shifted-<factor>`
(`diverse` with only that group moved to `shifted`'s ranges), plus fresh `diverse` scenes
(another seed than any training set: the in-distribution reference) and `shifted` scenes
(every group moved), all with the same seed, into `--work/<style>` (resumable: rendered and
evaluated sets are reused; an evaluation only while the weights file has the same sha256),
and scores the weights on each with `amodal-depth evaluate`.
Per style: layer-1 delta1, all-pixel delta1, hidden-part RMSE and AbsRel, layer-1 boundary
F1; and each factor's share of the drop in layer-1 delta1 from `diverse` to `shifted`
(the shares need not add up to 1: factors interact).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

from amodal_depth.data.generate import generate_dataset
from amodal_depth.data.generator_config import GeneratorConfig
from amodal_depth.data.styles import FACTOR_STYLES, default_splits
from amodal_depth.evaluate import evaluate_cli
from amodal_depth.fileio import atomic_write_json
from amodal_depth.models.checkpoints import load_model
from common import SCRATCH, add_out, headline_scores, run  # benchmarks/ is this script's directory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--num", type=int, default=100, help="scenes per style (default 100)")
    ap.add_argument("--seed", type=int, default=4242, help="scene seed of every style")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--work", type=Path, default=SCRATCH / "shift_factors")
    add_out(ap, "shift_factors.json")
    a = ap.parse_args()
    load_model(a.weights)  # a bad weights file is one line before any scene is rendered
    sha = hashlib.sha256(Path(a.weights).read_bytes()).hexdigest()
    styles = ["diverse", *FACTOR_STYLES, "shifted"]
    rows = {}
    for style in styles:
        data = a.work / style
        cfg = GeneratorConfig(style=style, split_fractions=(0.0, 0.0, 1.0))
        generate_dataset(data, a.num, seed=a.seed, config=cfg, workers=a.workers)
        out = a.work / f"{style}.eval.json"
        if not out.is_file() or json.loads(out.read_text()).get("weights_sha256") != sha:
            evaluate_cli(weights=a.weights, data=data, split="test", out=out)
            r = json.loads(out.read_text())
            atomic_write_json(out, {**r, "weights": a.weights, "weights_sha256": sha})
        rows[style] = headline_scores(json.loads(out.read_text()))
        print(style, {k: round(v, 3) for k, v in rows[style].items() if v is not None}, flush=True)
    drop = rows["diverse"]["layer1_delta1"] - rows["shifted"]["layer1_delta1"]
    for style in FACTOR_STYLES:
        own = rows["diverse"]["layer1_delta1"] - rows[style]["layer1_delta1"]
        rows[style]["share_of_layer1_delta1_drop"] = own / drop if drop > 0 else None
    atomic_write_json(
        a.out,
        {
            "command": f"benchmarks/shift_factors.py --weights {a.weights} --num {a.num} "
            f"--seed {a.seed}",
            "when": time.strftime("%Y-%m-%d %H:%M"),
            "weights_sha256": sha,
            "note": "diverse and shifted-* sets rendered with split (0, 0, 1): all test; "
            f"diverse's own default splits are {default_splits('diverse')}",
            "styles": rows,
        },
    )


if __name__ == "__main__":
    run(main)
