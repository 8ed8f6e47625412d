"""Hidden-part RMSE with a metric observation, with and without object anchoring.

    .venv/bin/python benchmarks/observed_anchor.py --data data/cpu --split val \
        --max-images 40 --weights weights/model.safetensors \
        --out benchmarks/results/observed_anchor.json

For each image the model gets the true layer-1 depth as observation (`--observed gt`);
its layers are fitted to it (models/observation.py) with `anchor=False` and `anchor=True`;
the hidden part of o_k (k >= 2, true amodal_k and not visible_k, valid truth) is scored in
metres without alignment, beside the `object_fill` reference. Chosen on val, not test.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from amodal_depth.data.format import read_manifest, read_sample, split_ids
from amodal_depth.fileio import atomic_write_json
from amodal_depth.models.checkpoints import load_model
from amodal_depth.models.observation import (
    check_observation,
    fit_to_observation,
    inverse_observation,
)
from amodal_depth.references import object_fill
from common import check_dataset, run  # benchmarks/ is this script's directory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--max-images", type=int, default=40)
    ap.add_argument("--weights", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    check_dataset(a.data)
    m = read_manifest(a.data)
    ids = split_ids(m, a.split, a.data)[: a.max_images]
    models = {w: load_model(w) for w in a.weights}
    scores: dict[str, list[float]] = {}
    for sid in ids:
        s = read_sample(a.data, sid, m)
        d1 = s.depth[0]
        h, w = d1.shape
        valid = check_observation(d1, h, w, "depth")
        inv = inverse_observation(d1, valid, "depth")
        preds = {"object_fill": object_fill(s)}
        for name, model in models.items():
            disp = model.predict_batch(s.rgb[None], s.amodal[None], (inv[None], valid[None]))[0]
            for anchor in (False, True):
                out, _ = fit_to_observation(disp, inv, valid, s.amodal, "depth", anchor)
                preds[f"{name} anchor={anchor}"] = out
        for k in range(1, d1.shape[0] if d1.ndim == 3 else s.depth.shape[0]):
            hid = s.amodal[k] & ~s.visible[k] & (s.depth[k] > 0)
            if not hid.any():
                continue
            for name, p in preds.items():
                err = p[k][hid] - s.depth[k][hid]
                scores.setdefault(name, []).append(float(np.sqrt(np.mean(err**2))))
    result = {
        "command": "benchmarks/observed_anchor.py "
        + " ".join(
            [
                f"--data {a.data}",
                f"--split {a.split}",
                f"--max-images {a.max_images}",
                "--weights",
                *a.weights,
            ]
        ),  # fmt: skip
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "images": len(ids),
        "hidden_rmse_m": {
            n: {"mean": float(np.mean(v)), "median": float(np.median(v)), "layers": len(v)}
            for n, v in scores.items()
        },
    }
    atomic_write_json(Path(a.out), result)
    print(json.dumps(result["hidden_rmse_m"], indent=1))


if __name__ == "__main__":
    run(main)
