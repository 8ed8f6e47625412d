"""Does `predict`'s layer alignment help a reconstruction? Writes --out
(default runs/benchmarks/layer_alignment.json; the committed copy is in benchmarks/results/).

    .venv/bin/python benchmarks/layer_alignment.py --data DIR --weights A.safetensors [B ...]

A fused reconstruction turns every layer into depth with ONE scale and shift, the one fitted
on layer 1 (the ordinary depth map, the only one whose truth a user may know, e.g. from a
sensor). Scored on layers 2..K, region `invisible` (the hidden parts) and `all`:
  per_layer_fit  each layer fitted to its own truth (what `evaluate` does; needs every
                 layer's truth, so a bound, not a usable protocol);
  layer1_raw     layer 1's fit applied to the raw outputs of every layer;
  layer1_aligned layer 1's fit applied after `predict.align_layers` (the default of predict).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from amodal_depth.data.format import read_manifest, read_sample, split_ids
from amodal_depth.evaluate import _predict_model_batch
from amodal_depth.fileio import atomic_write_json
from amodal_depth.metrics import (
    depth_from_disparity,
    depth_metrics,
    inverse_depth_fit,
    region_masks,
    valid_depth,
)
from amodal_depth.models.checkpoints import load_model
from amodal_depth.predict import align_layers
from common import add_out, check_dataset, run  # benchmarks/ is this script's directory

PROTOCOLS = ("per_layer_fit", "layer1_raw", "layer1_aligned")
KEYS = ("rmse", "abs_rel", "delta_1_05", "delta1")


def score_model(weights: Path, data: Path, split: str, max_images: int | None) -> dict:
    model = load_model(weights)
    manifest = read_manifest(data)
    ids = split_ids(manifest, split, data)[:max_images]
    acc: dict[str, dict[str, dict[str, list[float]]]] = {
        p: {r: {k: [] for k in KEYS} for r in ("invisible", "all")} for p in PROTOCOLS
    }
    t0 = time.perf_counter()
    for sid in ids:
        s = read_sample(data, sid, manifest)
        disp = _predict_model_batch(model, [s])[0][0]
        aligned, _ = align_layers(disp, s.amodal)
        gt = s.depth.astype(np.float64)
        valid = valid_depth(gt)
        # Layer 1's fit is the one a reconstruction can know; it is applied to layers 2..K.
        fit_raw = inverse_depth_fit(disp[0], gt[0], valid[0])
        fit_aligned = inverse_depth_fit(aligned[0], gt[0], valid[0])
        for k in range(1, gt.shape[0]):
            own = inverse_depth_fit(disp[k], gt[k], valid[k])
            preds = {
                "per_layer_fit": depth_from_disparity(disp[k], *own),
                "layer1_raw": depth_from_disparity(disp[k], *fit_raw),
                "layer1_aligned": depth_from_disparity(aligned[k], *fit_aligned),
            }
            regions = region_masks(gt[k], s.amodal[k], s.visible[k])
            for p, depth in preds.items():
                for r in ("invisible", "all"):
                    m = depth_metrics(depth, gt[k], regions[r], align=False)
                    for key in KEYS:
                        if np.isfinite(m[key]):
                            acc[p][r][key].append(m[key])
    out = {
        p: {r: {k: round(float(np.mean(v)), 4) for k, v in rv.items()} for r, rv in pv.items()}
        for p, pv in acc.items()
    }
    return {
        "weights": str(weights),
        "variant": model.config.variant,
        "images": len(ids),
        "seconds": round(time.perf_counter() - t0, 1),
        "layers_2_to_K": out,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--weights", required=True, nargs="+", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--max-images", type=int, default=None)
    add_out(ap, "layer_alignment.json")
    a = ap.parse_args()
    check_dataset(a.data)
    results = [score_model(w, a.data, a.split, a.max_images) for w in a.weights]
    doc = {"data": str(a.data), "split": a.split, "host": platform.node(), "models": results}
    atomic_write_json(a.out, doc)
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    run(main)
