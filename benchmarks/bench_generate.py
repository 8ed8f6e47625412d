"""Generation throughput of `amodal-depth data generate` at 224x168, K = 3, 1 and 2 workers.

Reports, per worker count: the end-to-end rate of `generate_dataset` (process start-up,
imports, rendering, PNG writing, manifest); the steady-state rate with the worker pool
already started (start-up timed on its own); and the CPU time per sample, with the rate the
workers would reach if each had a core to itself (`cpu_bound_samples_per_s` = workers /
CPU time per sample), which is what the wall-clock rate shows on an idle machine and does
not depend on other jobs. Writes --out (default
runs/benchmarks/generate.json; the committed copy is benchmarks/results/generate.json).

    .venv/bin/python benchmarks/bench_generate.py [--num 200] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from amodal_depth.data import generate as gen
from amodal_depth.fileio import atomic_write_text
from common import add_out, run  # benchmarks/ is this script's directory


def _warm(_: int) -> int:
    """Import what a worker needs (Open3D included) so start-up is timed apart."""
    import amodal_depth.data.scenes  # noqa: F401

    return os.getpid()


def steady_state(root: Path, num: int, workers: int, cfg: gen.GeneratorConfig) -> dict:
    init_args = (str(root), 0, cfg, [])
    t0 = time.perf_counter()
    if workers == 1:
        gen._init_worker(*init_args)
        _warm(0)
        t1 = time.perf_counter()
        cpu = [_work_timed(i) for i in range(num)]
    else:
        ctx = mp.get_context("spawn")
        with ctx.Pool(workers, initializer=gen._init_worker, initargs=init_args) as pool:
            pool.map(_warm, range(workers), chunksize=1)
            t1 = time.perf_counter()
            cpu = list(pool.imap_unordered(_work_timed, range(num), chunksize=4))
    t2 = time.perf_counter()
    cpu_ms = 1000 * sum(cpu) / num
    return {
        "startup_s": round(t1 - t0, 3),
        "render_s": round(t2 - t1, 3),
        "samples_per_s": round(num / (t2 - t1), 2),
        # CPU time per sample, summed over workers: with other jobs on the machine the
        # wall-clock rate understates what the workers can do; this does not depend on them.
        "cpu_ms_per_sample": round(cpu_ms, 2),
        "cpu_bound_samples_per_s": round(1000 * workers / cpu_ms, 2),
    }


def _work_timed(i: int) -> float:
    """Render and write sample i; the CPU seconds this process spent on it."""
    t = time.process_time()
    gen._work(i)
    return time.process_time() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num", type=int, default=200)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    add_out(p, "generate.json")
    a = p.parse_args()
    cfg = gen.GeneratorConfig(width=224, height=168, num_objects=3)
    load_start = [round(x, 2) for x in os.getloadavg()]
    results = []
    for w in a.workers:
        tmp = Path(tempfile.mkdtemp(prefix="bench_gen_"))
        try:
            t = time.perf_counter()
            gen.generate_dataset(tmp / "e2e", a.num, seed=0, config=cfg, workers=w, progress=False)
            e2e = time.perf_counter() - t
            st = steady_state(tmp / "steady", a.num, w, cfg)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        row = {"workers": w, "num": a.num, "end_to_end_s": round(e2e, 3),
               "end_to_end_samples_per_s": round(a.num / e2e, 2), **st}  # fmt: skip
        print(json.dumps(row))
        results.append(row)
    out = {
        "benchmark": "data generate throughput",
        "size": "224x168",
        "num_objects": 3,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_at_start": load_start,
            "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "results": results,
    }
    atomic_write_text(a.out, json.dumps(out, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    run(main)
