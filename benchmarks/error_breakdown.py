"""Where does a model's depth error lie? Writes JSON (default
runs/benchmarks/error_breakdown.json; the committed copy is in benchmarks/results/).

    .venv/bin/python benchmarks/error_breakdown.py --weights W.safetensors \
        --data DIR [DIR ...] [--split test] [--max-images 100] [--out JSON]

Each layer is aligned as `evaluate` aligns it (least squares in inverse depth on the layer's
valid pixels), then every valid pixel's squared error in metres is put into bins:
  region  visible (layer-1 pixels outside every hidden part), hidden (amodal_k and not
          visible_k of layer k >= 2), other (layers >= 2 outside the hidden part);
  depth   true depth < 2 m, 2-4 m, 4-8 m, >= 8 m;
  edge    within 2 px of a true occluding contour of the layer (neighbour depth ratio > 1.05)
          or not.
For each bin: RMSE (m), pixel count and its share of the total squared error (pooled over
pixels, so large regions weigh more than in evaluate's per-image means).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from amodal_depth.data.format import read_manifest, read_sample, split_ids
from amodal_depth.fileio import atomic_write_json
from amodal_depth.metrics import aligned_depth, valid_depth
from amodal_depth.models.checkpoints import load_model
from common import add_out, check_dataset, run  # benchmarks/ is this script's directory

DEPTH_BINS = (0.0, 2.0, 4.0, 8.0, np.inf)


def contour_band(gt: np.ndarray, valid: np.ndarray, ratio: float = 1.05) -> np.ndarray:
    """Pixels within 2 px of a pair of 4-neighbours whose true depths differ by > ratio."""
    edge = np.zeros(gt.shape, bool)
    for axis in (0, 1):
        a = np.moveaxis(gt, axis, 0)
        v = np.moveaxis(valid, axis, 0)
        both = v[1:] & v[:-1]
        r = np.maximum(a[1:] / np.maximum(a[:-1], 1e-9), a[:-1] / np.maximum(a[1:], 1e-9))
        step = both & (r > ratio)
        e = np.moveaxis(edge, axis, 0)
        e[1:] |= step
        e[:-1] |= step
    return cv2.dilate(edge.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)


def breakdown(weights: Path, data: Path, split: str, max_images: int | None) -> dict:
    model = load_model(weights)
    manifest = read_manifest(data)
    ids = split_ids(manifest, split, data)[:max_images]
    sums: dict[str, list[float]] = {}

    def add(key: str, err2: np.ndarray) -> None:
        s = sums.setdefault(key, [0.0, 0])
        s[0] += float(err2.sum())
        s[1] += int(err2.size)

    for sid in ids:
        s = read_sample(data, sid, manifest)
        disp = model.predict_layers(s.rgb, s.amodal)
        gt = s.depth.astype(np.float64)
        valid = valid_depth(gt)
        for k in range(gt.shape[0]):
            pred = aligned_depth(disp[k], gt[k], valid[k])
            err2 = (pred - gt[k]) ** 2
            hidden = s.amodal[k] & ~s.visible[k] if k > 0 else np.zeros_like(valid[k])
            region = "visible" if k == 0 else "other"
            band = contour_band(gt[k], valid[k])
            for name, sel in ((region, ~hidden), ("hidden", hidden)):
                m = valid[k] & sel
                if not m.any():
                    continue
                add(f"region/{name}", err2[m])
                for lo, hi in zip(DEPTH_BINS[:-1], DEPTH_BINS[1:]):
                    d = m & (gt[k] >= lo) & (gt[k] < hi)
                    add(f"{name}/depth/{lo:g}-{hi:g}m", err2[d])
                add(f"{name}/edge", err2[m & band])
                add(f"{name}/interior", err2[m & ~band])
    total = sum(v[0] for k, v in sums.items() if k.startswith("region/"))
    return {
        "images": len(ids),
        "bins": {
            k: {
                "rmse": float(np.sqrt(v[0] / v[1])) if v[1] else float("nan"),
                "pixels": v[1],
                "share_of_squared_error": v[0] / total if total else float("nan"),
            }
            for k, v in sorted(sums.items())
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True, type=Path)
    ap.add_argument("--data", required=True, nargs="+", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--max-images", type=int, default=100)
    add_out(ap, "error_breakdown.json")
    a = ap.parse_args()
    for d in a.data:
        check_dataset(d)
    result = {
        "command": f"python benchmarks/error_breakdown.py --weights {a.weights} --data "
        + " ".join(map(str, a.data))
        + f" --split {a.split} --max-images {a.max_images}",
        "weights": str(a.weights),
        "datasets": {str(d): breakdown(a.weights, d, a.split, a.max_images) for d in a.data},
    }
    atomic_write_json(a.out, result)
    print(a.out)


if __name__ == "__main__":
    run(main)
