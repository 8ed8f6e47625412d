"""The whole chain from visible masks, against the chain given the true amodal masks.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/chain_3d.py --data data/cpu --split test \
        --max-images 100 --out benchmarks/results/chain_3d.json

Per image: (a) the true amodal masks in the true order, (b) the true *visible* masks through
amodal completion and the predicted occlusion order (weights/completion.safetensors); then
the shipped depth model, layers aligned as `predict` does, metres from the layer-1 fit of
benchmarks/reconstruct_3d.py, fusion by the reconstruct rule with the masks of that chain;
scored against the true layers fused with the true masks (docs/results/reconstruction.md).
Also the wall time of the whole path for one image (completion, layers, alignment, metres,
fusion with inpainted colours, points.ply), median over the first 10 images.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from amodal_depth.completion import complete_masks
from amodal_depth.data.format import read_manifest, read_sample, split_ids
from amodal_depth.fileio import atomic_write_json
from amodal_depth.metrics import inverse_depth_fit
from amodal_depth.models import load_model
from amodal_depth.predict import align_layers
from amodal_depth.reconstruct import InverseDepthFit, fuse_layers, to_metric, write_ply
from amodal_depth.reconstruct.metrics3d import reconstruction_metrics
from common import check_dataset, run  # benchmarks/ is this script's directory

KEYS = ("chamfer_l1", "fscore_5cm", "hidden_completeness_5cm", "hidden_completeness_10cm",
        "visible_fscore_5cm")  # fmt: skip


def _chain(model, s, amodal: np.ndarray, colours: str = "flat"):
    disp = model.predict_layers(s.rgb, amodal)
    aligned, _ = align_layers(disp, amodal)
    fit = inverse_depth_fit(aligned[0], s.depth[0], s.depth[0] > 0)
    depth, _ = to_metric(aligned, InverseDepthFit(*fit), s.camera, amodal)
    return fuse_layers(depth, amodal, s.camera, image=s.rgb, hidden_colour=colours)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--max-images", type=int, default=100)
    ap.add_argument("--weights", default="weights/model.safetensors")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    check_dataset(a.data)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = load_model(a.weights)
    m = read_manifest(a.data)
    ids = split_ids(m, a.split, a.data)[: a.max_images]
    rows: dict[str, list[dict]] = {"true_amodal": [], "from_visible": []}
    order_exact, seconds = [], []
    for i, sid in enumerate(ids):
        s = read_sample(a.data, sid, m)
        truth = fuse_layers(s.depth, s.amodal, s.camera, hidden_colour="flat")
        rows["true_amodal"].append(
            reconstruction_metrics(_chain(model, s, s.amodal), truth, max_queries=8000)
        )
        t0 = time.perf_counter()
        amodal, order = complete_masks(s.rgb, s.visible)
        cloud = _chain(model, s, amodal[order], "inpaint" if i < 10 else "flat")
        if i < 10:
            with tempfile.TemporaryDirectory() as d:
                write_ply(Path(d) / "points.ply", cloud)
            seconds.append(time.perf_counter() - t0)
        order_exact.append(order == list(range(len(order))))
        rows["from_visible"].append(reconstruction_metrics(cloud, truth, max_queries=8000))
    mean = {n: {k: float(np.nanmean([r[k] for r in v])) for k in KEYS} for n, v in rows.items()}
    ratio = {k: mean["from_visible"][k] / mean["true_amodal"][k] for k in KEYS}
    result = {
        "command": f"benchmarks/chain_3d.py --data {a.data} --split {a.split} "
        f"--max-images {a.max_images} --weights {a.weights} --out {a.out}",
        "images": len(ids),
        "torch_threads": torch.get_num_threads(),
        "rows": mean,
        "ratio_from_visible_over_true": ratio,
        "order_exact_share": float(np.mean(order_exact)),
        "whole_path_seconds_median": float(np.median(seconds)),
        "whole_path_seconds": [round(x, 3) for x in seconds],
    }
    atomic_write_json(Path(a.out), result)
    print(result)


if __name__ == "__main__":
    run(main)
