"""Is ONNX Runtime faster than PyTorch for our model on this CPU? Writes JSON (default
runs/benchmarks/onnx_runtime.json; the committed copy is in benchmarks/results/).

    .venv/bin/pip install onnx onnxruntime onnxscript   # not project dependencies
    .venv/bin/python benchmarks/onnx_runtime.py [--weights weights/model.safetensors]
        [--variants ade_late_guidance ...] [--repeats 15] [--threads 2]

For the given weights, and for a freshly built model of each `--variants` at the weights'
preset size, the forward `model(rgb, guidance)` at 224x168 with K layers is exported with
`torch.onnx.export(dynamo=True)` and run with onnxruntime's CPU provider (intra-op threads =
torch threads). Reports the largest difference to PyTorch's output (relative to its largest
value) and the median wall time of both over `--repeats` calls after a warm-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from amodal_depth.config import preset
from amodal_depth.fileio import atomic_write_json
from amodal_depth.models import build_guidance, build_model, normalize_image
from amodal_depth.models.checkpoints import load_model
from common import ROOT, add_out, run  # benchmarks/ is this script's directory


def _median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def compare(name: str, model: torch.nn.Module, repeats: int, threads: int) -> dict:
    import onnxruntime as ort

    model.eval()
    k, h, w = model.config.num_layers, 168, 224
    g = torch.Generator().manual_seed(0)
    rgb = normalize_image(torch.rand(1, 3, h, w, generator=g))
    amodal = torch.zeros(1, k, h, w, dtype=torch.bool)
    for i in range(k):
        amodal[:, i, 20 + 10 * i : 120 + 10 * i, 30 + 40 * i : 130 + 40 * i] = True
    guidance = build_guidance(amodal)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        t = time.perf_counter()
        torch.onnx.export(
            model, (rgb, guidance), path, input_names=["rgb", "guidance"],
            output_names=["disparity"], dynamo=True,
        )  # fmt: skip
        export_s = time.perf_counter() - t
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = {"rgb": rgb.numpy(), "guidance": guidance.numpy()}
        out = session.run(None, feed)[0]
        with torch.no_grad():
            ref = model(rgb, guidance).numpy()
            torch_s = _median_time(lambda: model(rgb, guidance), repeats)
        ort_s = _median_time(lambda: session.run(None, feed), repeats)
    return {
        "model": name,
        "variant": model.config.variant,
        "export_s": export_s,
        "max_rel_diff": float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-12)),
        "torch_forward_s": torch_s,
        "onnxruntime_forward_s": ort_s,
        "onnxruntime_speedup": torch_s / ort_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, default=ROOT / "weights" / "model.safetensors")
    ap.add_argument("--variants", nargs="*", default=["ade", "ade_late_guidance"])
    ap.add_argument("--preset", default="cpu-long", help="preset of the --variants models")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    add_out(ap, "onnx_runtime.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = [compare(str(a.weights), load_model(a.weights), a.repeats, a.threads)]
    for v in a.variants:
        torch.manual_seed(0)
        rows.append(compare(f"fresh {v} ({a.preset})", build_model(preset(a.preset, v).model),
                            a.repeats, a.threads))  # fmt: skip
    import onnxruntime

    res = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
        "threads": a.threads,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "command": "python benchmarks/onnx_runtime.py"
        + (f" --variants {' '.join(a.variants)}" if a.variants else "")
        + f" --threads {a.threads}",
        "models": rows,
    }
    atomic_write_json(a.out, res)
    for r in rows:
        print(
            f"{r['model']}: torch {r['torch_forward_s'] * 1e3:.1f} ms, onnxruntime "
            f"{r['onnxruntime_forward_s'] * 1e3:.1f} ms (x{r['onnxruntime_speedup']:.2f}), "
            f"max rel diff {r['max_rel_diff']:.1e}"
        )


if __name__ == "__main__":
    run(main)
