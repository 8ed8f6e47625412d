"""Time the metrics (docs/metrics.md) and the evaluation loop; write --out (default
runs/benchmarks/metrics.json; the committed copy is benchmarks/results/metrics.json).

    .venv/bin/python benchmarks/bench_metrics.py [--data DIR] [--split test]

Without --data a small 224x168 dataset is generated into a temporary directory with the
project's generator. Reported: median time of `consistency_metrics` on one 224x168 pair of
true layer depths (target <= 30 ms) and of `depth_metrics`, and the evaluation throughput
(images/s, everything included: reading PNGs, predicting, all metrics) of a reference
predictor and, when the model code is there, of a randomly initialised cpu-preset model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from amodal_depth.data.format import atomic_write_json, read_manifest, read_sample, split_ids
from amodal_depth.evaluate import evaluate
from amodal_depth.metrics import consistency_metrics, depth_metrics, static_mask
from common import add_out, check_dataset, run  # benchmarks/ is this script's directory


def _median_ms(fn: Any, repeats: int, clock: Any = time.perf_counter) -> float:
    fn()  # warm-up (Open3D thread pool, numpy caches)
    times = []
    for _ in range(repeats):
        t = clock()
        fn()
        times.append(clock() - t)
    return statistics.median(times) * 1e3


def _make_dataset(root: Path, num: int) -> None:
    from amodal_depth.data.generate import generate_dataset

    generate_dataset(root, num, seed=0)


def _throughput(predictor: Any, data: Path, split: str, max_images: int | None) -> dict:
    t = time.perf_counter()
    r = evaluate(predictor, data, split, max_images=max_images, progress=False)
    dt = time.perf_counter() - t
    return {
        "images": r["num_images"],
        "seconds": round(dt, 3),
        "images_per_s": r["num_images"] / dt,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="dataset root (default: generate)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--num", type=int, default=300, help="samples to generate without --data")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--max-model-images", type=int, default=16)
    add_out(ap, "metrics.json")
    a = ap.parse_args()
    if a.data is not None:
        check_dataset(a.data)

    with tempfile.TemporaryDirectory() as tmp:
        data = a.data
        if data is None:
            data = Path(tmp) / "ds"
            _make_dataset(data, a.num)
        manifest = read_manifest(data)
        ids = split_ids(manifest, a.split, data)
        s = read_sample(data, ids[0], manifest)
        d1, d2 = s.depth[0], s.depth[1]
        stat = static_mask(s.amodal, 1)
        res: dict[str, Any] = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "processor": platform.processor() or platform.machine(),
                "load_average_1min_at_start": round(os.getloadavg()[0], 2),
            },
            "size": f"{manifest['width']}x{manifest['height']}",
            "consistency_metrics_ms": _median_ms(
                lambda: consistency_metrics(d1, d2, s.camera), a.repeats
            ),
            # CPU time of all threads: less sensitive to other jobs on the 2 shared cores
            "consistency_metrics_cpu_ms": _median_ms(
                lambda: consistency_metrics(d1, d2, s.camera), a.repeats, time.process_time
            ),
            "consistency_metrics_static_ms": _median_ms(
                lambda: consistency_metrics(d1, d2, s.camera, stat), a.repeats
            ),
            "consistency_target_ms": 30.0,
            "depth_metrics_ms": _median_ms(
                lambda: depth_metrics(d1 * 1.1 + 0.05, d2, d2 > 0), a.repeats
            ),
            "evaluate": {},
        }
        for ref in ("visible_only", "object_fill"):
            res["evaluate"][ref] = _throughput(ref, data, a.split, None)
        try:
            from amodal_depth.config import preset
            from amodal_depth.models import build_model
        except ImportError as e:
            res["evaluate"]["model_cpu_preset"] = f"skipped: {e}"
        else:
            import torch

            torch.manual_seed(0)
            model = build_model(preset("cpu").model)
            res["evaluate"]["model_cpu_preset"] = _throughput(
                model, data, a.split, a.max_model_images
            )
            res["evaluate"]["model_cpu_preset"]["torch_threads"] = torch.get_num_threads()
        res["num_test_images"] = len(ids)

    for key, v in list(res.items()):
        if isinstance(v, float):
            res[key] = round(v, 3)
    for v in res["evaluate"].values():
        if isinstance(v, dict):
            v["images_per_s"] = round(v["images_per_s"], 2)
    res["consistency_within_target"] = res["consistency_metrics_ms"] <= 30.0
    atomic_write_json(a.out, res)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    run(main)
