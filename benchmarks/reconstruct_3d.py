"""3D reconstruction quality on our data (docs/results/reconstruction.md). Writes
benchmarks/results/reconstruct_3d.json and, with --picture, the moved-viewpoint figure.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reconstruct_3d.py \
        --data data/cpu data/shifted --split test \
        --weights shipped=weights/model.safetensors old=runs/old_model.safetensors \
        --scale-rules 100 --out benchmarks/results/reconstruct_3d.json \
        --picture docs/img/reconstruct_moved_view.png

Every reconstruction is fused by the rule of docs/reconstruct.md and scored against the true
layer depths fused by the same rule (amodal_depth.reconstruct.metrics3d). Rows per dataset:
  true_layer1_only   the true visible depth alone (what any perfect ordinary depth map gives)
  true_layers        the truth itself (a check: Chamfer 0, every share 1)
  <model>_layer1_only  the model's layer 1 alone
  <model>_layered    the model's K layers
A model's relative inverse depth is aligned between layers as `predict` does, then turned into
metres with ONE scale and shift: least squares of layer-1 disparity against 1/gt on the valid
layer-1 pixels (metrics.inverse_depth_fit), applied to all layers; pixels that land beyond
100 m are dropped. With --scale-rules the first model's layered depth is also scored under
the user-facing scale rules (reconstruct.scale) on the first N images of the first dataset.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from amodal_depth.data.format import read_manifest, read_sample, split_ids
from amodal_depth.fileio import atomic_write_json
from amodal_depth.metrics import inverse_depth_fit
from amodal_depth.models.checkpoints import load_model
from amodal_depth.predict import align_layers
from amodal_depth.reconstruct import (
    CameraHeight,
    DepthRange,
    InverseDepthFit,
    KnownDepths,
    MedianDepth,
    fuse_layers,
    reconstruct_layers,
    reconstruction_metrics,
    to_metric,
    write_glb,
    write_ply,
)
from common import check_dataset, run  # benchmarks/ is this script's directory

REPORT = (
    "chamfer_l1",
    "fscore_2cm",
    "fscore_5cm",
    "fscore_10cm",
    "hidden_completeness_2cm",
    "hidden_completeness_5cm",
    "hidden_completeness_10cm",
    "visible_fscore_5cm",
)


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys()
    return {k: round(float(np.nanmean([r[k] for r in rows])), 4) for k in keys}


def model_depth(model, s) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """(metric [K,H,W] depth from the layer-1 fit, aligned disparity, the fit (s, t))."""
    disp = model.predict_layers(s.rgb, s.amodal)
    aligned, _ = align_layers(disp, s.amodal)
    fit = inverse_depth_fit(aligned[0], s.depth[0], s.depth[0] > 0)
    depth, _ = to_metric(aligned, InverseDepthFit(*fit), s.camera, s.amodal)
    return depth, aligned, fit


def scale_rule_rows(s, aligned: np.ndarray, fit, truth) -> dict[str, dict[str, float]]:
    """The first model's layered depth under each user-facing scale rule, and under the
    protocol's layer-1 fit on the same images (row layer1_fit)."""
    gt1 = s.depth[0][s.depth[0] > 0]
    lo, hi = np.percentile(gt1, [2.0, 98.0])
    h, w = s.depth.shape[1:]
    points = tuple(
        (float(u), float(v), float(s.depth[0, v, u]))
        for u, v in ((w // 2, h // 2), (w // 2, h - 8), (w // 2, 8))
    )
    rules = {
        "layer1_fit": InverseDepthFit(*fit),
        "default_range": DepthRange(),
        "range_true": DepthRange(float(lo), float(hi)),
        "median_true": MedianDepth(float(np.median(gt1))),
        "camera_height_true": CameraHeight(float(s.meta["camera_pose"]["height"])),
        "known_depths_3_true": KnownDepths(points),
    }
    out = {}
    for name, rule in rules.items():
        try:
            depth, _ = to_metric(aligned, rule, s.camera, s.amodal)
        except Exception:  # noqa: BLE001 - e.g. no floor found: counted as a failure
            out[name] = None
            continue
        out[name] = _score(fuse_layers(depth, s.amodal, s.camera, hidden_colour="flat"), truth)
    return out


MAX_QUERIES = [8000]
"""Query points per direction of each metric (reconstruction_metrics(max_queries=...));
set by --max-queries."""


def _score(pred, truth) -> dict[str, float]:
    return reconstruction_metrics(pred, truth, max_queries=MAX_QUERIES[0])


def _fuse(s, depth: np.ndarray, layers: int | None = None):
    """Geometry only (flat colours: the metrics ignore colour, inpainting would cost time)."""
    return fuse_layers(depth, s.amodal, s.camera, hidden_colour="flat", layers=layers)


def evaluate_dataset(
    root: Path, split: str, models: dict, max_images: int | None, rule_images: int
) -> dict:
    manifest = read_manifest(root)
    ids = split_ids(manifest, split, root)[:max_images]
    rows: dict[str, list[dict[str, float]]] = {}
    rules: dict[str, list[dict[str, float]]] = {}
    failures: dict[str, int] = {}
    for i, sid in enumerate(tqdm(ids, desc=f"3D {root.name}", unit="img")):
        s = read_sample(root, sid, manifest)
        truth = _fuse(s, s.depth)
        rows.setdefault("true_layer1_only", []).append(_score(_fuse(s, s.depth, 1), truth))
        rows.setdefault("true_layers", []).append(_score(truth, truth))
        for j, (name, model) in enumerate(models.items()):
            depth, aligned, fit = model_depth(model, s)
            for tag, n in (("layer1_only", 1), ("layered", None)):
                m = _score(_fuse(s, depth, n), truth)
                rows.setdefault(f"{name}_{tag}", []).append(m)
            if j == 0 and i < rule_images:
                for rname, m in scale_rule_rows(s, aligned, fit, truth).items():
                    if m is None:
                        failures[rname] = failures.get(rname, 0) + 1
                    else:
                        rules.setdefault(rname, []).append(m)
    out = {
        "data": str(root),
        "split": split,
        "images": len(ids),
        "rows": {k: _mean(v) for k, v in rows.items()},
    }
    if rules:
        out["scale_rules"] = {
            "model": next(iter(models)),
            "images": min(rule_images, len(ids)),
            "failures": failures,
            "rows": {k: {**_mean(v), "images": len(v)} for k, v in rules.items()},
        }
    return out


def time_fusion(root: Path, split: str, model, n: int = 20) -> dict[str, float]:
    """Seconds for fusion (inpainted colours) + writing points.ply and scene.glb, per image."""
    import tempfile

    manifest = read_manifest(root)
    ids = split_ids(manifest, split, root)[:n]
    fuse_t, ply_t, glb_t = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for sid in ids:
            s = read_sample(root, sid, manifest)
            aligned, _ = align_layers(model.predict_layers(s.rgb, s.amodal), s.amodal)
            t0 = time.perf_counter()
            cloud = reconstruct_layers(aligned, s.amodal, s.rgb, s.camera)
            t1 = time.perf_counter()
            write_ply(Path(tmp) / "points.ply", cloud)
            t2 = time.perf_counter()
            write_glb(Path(tmp) / "scene.glb", cloud)
            t3 = time.perf_counter()
            fuse_t.append(t1 - t0), ply_t.append(t2 - t1), glb_t.append(t3 - t2)
    med = lambda v: round(float(np.median(v)), 4)  # noqa: E731
    return {
        "images": len(ids),
        "size": f"{s.camera.width}x{s.camera.height}",
        "fusion_s": med(fuse_t),
        "write_ply_s": med(ply_t),
        "write_glb_s": med(glb_t),
        "fusion_plus_ply_s": med(np.add(fuse_t, ply_t)),
        "points": len(cloud),
        "statistic": "median over images",
    }


def write_moved_view(path: Path, root: Path, split: str, index: int, model, name: str) -> None:
    """Input | visible-only | layered (two colourings) | truth, seen from a camera orbiting
    the scene's objects by -30 and +30 degrees (and 12 degrees up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from amodal_depth.fileio import atomic_path
    from amodal_depth.reconstruct.render import orbit_pose, render_points

    manifest = read_manifest(root)
    s = read_sample(root, split_ids(manifest, split, root)[index], manifest)
    depth, _, _ = model_depth(model, s)
    clouds = (
        (
            f"{name}: layer 1 only (visible depth)",
            fuse_layers(depth, s.amodal, s.camera, s.rgb, layers=1),
        ),
        (f"{name}: layered, fused", fuse_layers(depth, s.amodal, s.camera, s.rgb)),
        (
            f"{name}: layered, hidden points tinted",
            fuse_layers(depth, s.amodal, s.camera, s.rgb, hidden_colour="flat"),
        ),
        (
            "true layers, fused",
            fuse_layers(s.depth, s.amodal, s.camera, s.rgb, layer_rgb=s.layer_rgb),
        ),
    )
    pivot = np.median(clouds[-1][1].points[clouds[-1][1].object > 0], axis=0)
    fig, axes = plt.subplots(2, 5, figsize=(16.0, 5.0), layout="constrained")
    axes[0, 0].imshow(s.rgb)
    axes[0, 0].set_title("input image", fontsize=8)
    axes[1, 0].imshow(np.where(s.amodal.any(0)[..., None], s.rgb, s.rgb // 3))
    axes[1, 0].set_title("amodal masks o_1..o_K (bright)", fontsize=8)
    for r, yaw in enumerate((-30.0, 30.0)):
        rot, t = orbit_pose(pivot, yaw, 12.0)
        for c, (title, cloud) in enumerate(clouds):
            axes[r, c + 1].imshow(render_points(cloud, s.camera, rot, t))
            axes[r, c + 1].set_title(f"{title}, view {yaw:+.0f} deg", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(
        f"{root.name} {split} image {index}: the scene seen from a camera moved around it "
        "(dark = no point; tinted: blue = layer 2, orange = layer 3)",
        fontsize=9,
    )
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _sha256(path: str) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--weights", nargs="+", required=True, metavar="NAME=FILE")
    ap.add_argument("--max-images", type=int, default=None, help="first N of each split")
    ap.add_argument(
        "--scale-rules",
        type=int,
        default=0,
        metavar="N",
        help="score the user-facing scale rules on the first N images",
    )
    ap.add_argument(
        "--max-queries",
        type=int,
        default=8000,
        help="query points per direction per metric (0 = all, exact)",
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--picture", type=Path, default=None)
    ap.add_argument("--picture-only", action="store_true", help="only the picture, no JSON")
    ap.add_argument("--picture-index", type=int, default=0, help="test image of the picture")
    a = ap.parse_args(argv)
    for d in a.data:
        check_dataset(d)
    torch.set_num_threads(1)
    MAX_QUERIES[0] = a.max_queries or None
    a.out.parent.mkdir(parents=True, exist_ok=True)
    models = {}
    for item in a.weights:
        name, _, path = item.partition("=")
        models[name] = (load_model(path), path)
    t0 = time.perf_counter()
    nets = {k: v[0] for k, v in models.items()}
    result = {
        "command": " ".join(["OMP_NUM_THREADS=1", ".venv/bin/python", *sys.argv]),
        "commit": _commit(),
        "platform": platform.platform(),
        "torch_threads": 1,
        "weights": {k: {"path": v[1], "sha256": _sha256(v[1])} for k, v in models.items()},
        "scale_protocol": "layer-1 least squares of aligned disparity against 1/gt, all layers",
        "fusion": "layer 1 everywhere; layer k > 1 inside the union of amodal o_1..o_{k-1}",
        "metric_queries": a.max_queries or "all",
        "datasets": {},
    }
    for root in a.data if not a.picture_only else []:
        rule_n = a.scale_rules if root == a.data[0] else 0
        result["datasets"][root.name] = evaluate_dataset(root, a.split, nets, a.max_images, rule_n)
    if not a.picture_only:
        result["timing"] = time_fusion(a.data[0], a.split, next(iter(nets.values())))
        result["seconds"] = round(time.perf_counter() - t0, 1)
        atomic_write_json(a.out, result)
    if a.picture is not None:
        write_moved_view(
            a.picture,
            a.data[0],
            a.split,
            a.picture_index,
            next(iter(nets.values())),
            next(iter(nets)),
        )
    print(f"-> {a.out}")
    return 0


if __name__ == "__main__":
    run(main)
