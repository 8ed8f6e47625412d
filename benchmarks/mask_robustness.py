"""How much do the layers move when the masks are imprecise? Writes JSON (default
runs/benchmarks/mask_robustness.json; the committed copy is in benchmarks/results/).

    .venv/bin/python benchmarks/mask_robustness.py --data DIR --weights A.safetensors [B ...] \
        [--split test] [--max-images 100] [--out JSON]

Real masks come from a segmenter or a hand. For each test image the model is run with the
exact amodal masks and with every mask replaced by one imprecise version of it:
  dilate4  dilated by a disk of radius 4 px      erode3  eroded by radius 3 px
  box      the mask's bounding box               empty   all masks empty (layer 1 only)
Reported per perturbation, averaged over images:
  layer1_shift     mean |layer 1 (perturbed) - layer 1 (exact)| over the image, as a share of
                   the exact layer 1's disparity range (p99 - p1): how much the ordinary depth
                   map changes because of the masks;
  layer1_shift_p99 the same, 99th percentile over pixels (a box painted into the depth);
  invisible_rmse   hidden-part RMSE (m) of layers 2..K after evaluation's per-layer alignment,
                   next to `exact` (the same with exact masks).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from amodal_depth.data.format import read_manifest, read_sample, split_ids
from amodal_depth.fileio import atomic_write_json
from amodal_depth.metrics import aligned_depth, depth_metrics, region_masks, valid_depth
from amodal_depth.models.checkpoints import load_model
from common import add_out, check_dataset, run  # benchmarks/ is this script's directory


def _disk(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _box(m: np.ndarray) -> np.ndarray:
    out = np.zeros_like(m)
    if m.any():
        vs, us = np.nonzero(m)
        out[vs.min() : vs.max() + 1, us.min() : us.max() + 1] = True
    return out


PERTURB = {
    "dilate4": lambda m: cv2.dilate(m.astype(np.uint8), _disk(4)).astype(bool),
    "erode3": lambda m: cv2.erode(m.astype(np.uint8), _disk(3)).astype(bool),
    "box": _box,
    "empty": np.zeros_like,
}


def _hidden_rmse(disp: np.ndarray, s) -> float:
    vals = []
    gt = s.depth.astype(np.float64)
    valid = valid_depth(gt)
    for k in range(1, gt.shape[0]):
        reg = region_masks(gt[k], s.amodal[k], s.visible[k])["invisible"]
        if reg.sum() == 0:
            continue
        pred = aligned_depth(disp[k], gt[k], valid[k])
        vals.append(depth_metrics(pred, gt[k], reg, align=False)["rmse"])
    return float(np.mean(vals)) if vals else float("nan")


def score(weights: Path, data: Path, split: str, max_images: int | None) -> dict:
    model = load_model(weights)
    manifest = read_manifest(data)
    ids = split_ids(manifest, split, data)[:max_images]
    acc: dict[str, dict[str, list[float]]] = {"exact": {"invisible_rmse": []}}
    for name in PERTURB:
        acc[name] = {"layer1_shift": [], "layer1_shift_p99": [], "invisible_rmse": []}
    t0 = time.perf_counter()
    for sid in ids:
        s = read_sample(data, sid, manifest)
        exact = model.predict_layers(s.rgb, s.amodal)
        acc["exact"]["invisible_rmse"].append(_hidden_rmse(exact, s))
        lo, hi = np.percentile(exact[0], [1, 99])
        span = max(float(hi - lo), 1e-6)
        for name, fn in PERTURB.items():
            masks = np.stack([fn(m) for m in s.amodal])
            # predict_batch: predict_layers refuses the empty masks this row is about
            out = model.predict_batch(s.rgb[None], masks[None])[0]
            diff = np.abs(out[0] - exact[0]) / span
            acc[name]["layer1_shift"].append(float(diff.mean()))
            acc[name]["layer1_shift_p99"].append(float(np.percentile(diff, 99)))
            if name != "empty":
                acc[name]["invisible_rmse"].append(_hidden_rmse(out, s))
    return {
        "images": len(ids),
        "seconds": round(time.perf_counter() - t0, 1),
        **{p: {k: float(np.nanmean(v)) for k, v in d.items() if v} for p, d in acc.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--weights", required=True, nargs="+", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--max-images", type=int, default=100)
    add_out(ap, "mask_robustness.json")
    a = ap.parse_args()
    check_dataset(a.data)
    result = {
        "command": "python benchmarks/mask_robustness.py "
        + " ".join(
            ["--data", str(a.data), "--split", a.split, "--max-images", str(a.max_images)]
            + ["--weights", *map(str, a.weights)]
        ),
        "machine": platform.machine(),
        "models": {str(w): score(w, a.data, a.split, a.max_images) for w in a.weights},
    }
    atomic_write_json(a.out, result)
    print(a.out)


if __name__ == "__main__":
    run(main)
