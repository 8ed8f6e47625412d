"""Load on the web demo: N concurrent runs of the bundled sample through the demo's HTTP API
(gradio_client), on this machine only. Reports whether every request was answered and the
latency percentiles (docs/demo.md).

    .venv/bin/python benchmarks/demo_load.py --requests 8 --out benchmarks/results/demo_load.json

It starts `amodal-depth demo` on a free 127.0.0.1 port in a subprocess (or uses --url, which
must be a loopback address), sends one warm-up request (the model loads), then submits
--requests runs at once and waits for all of them, bounded by --timeout seconds; then it
stops the demo it started. Bounded in count (at most 64 requests) and in time; nothing leaves
the loopback interface. Without --out the JSON goes to stdout only.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

from amodal_depth.fileio import atomic_write_text
from common import run  # benchmarks/ is this script's directory

ROOT = Path(__file__).resolve().parents[1]
ROOM = ROOT / "examples" / "room"
MAX_REQUESTS = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_loopback(url: str) -> None:
    host = urllib.parse.urlparse(url).hostname or ""
    ok = host == "localhost"
    try:
        ok = ok or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if not ok:
        sys.exit(f"demo_load: {url} is not a loopback address; this benchmark stays on 127.0.0.1")


def start_demo(port: int, concurrency: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "amodal_depth.cli", "demo", "--port", str(port)]
    cmd += ["--concurrency", str(concurrency)]
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(url: str, proc: subprocess.Popen | None, timeout: float, log: Path) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"demo_load: the demo exited ({proc.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            time.sleep(0.5)
    sys.exit(f"demo_load: the demo did not answer within {timeout} s")


def sample_args(kind: str) -> list:
    from gradio_client import handle_file

    masks = [ROOM / f"{kind}_{k}.png" for k in (1, 2, 3)]
    cam = json.loads((ROOM / "camera.json").read_text())
    intrinsics = ",".join(str(cam[k]) for k in ("fx", "fy", "cx", "cy"))
    return [
        handle_file(str(ROOM / "rgb.png")),
        [handle_file(str(m)) for m in masks],
        kind,
        None,
        intrinsics,
        60.0,
        "inpaint",
        "layered: all layers",
    ]


def check_answer(answer: object) -> str | None:
    """None when the answer has the page's outputs (layer and mask galleries, 3D view,
    downloads, summary; the view state stays on the server) with 3 layer pictures and a
    3D view file."""
    if not isinstance(answer, list | tuple) or len(answer) != 5:
        return f"unexpected answer {type(answer).__name__} of {len(answer)} items"
    layers, _, view3d = answer[0], answer[1], answer[2]
    if len(layers) != 3:
        return f"{len(layers)} layer pictures"
    if not view3d or not Path(str(view3d)).is_file():
        return "no 3D view file"
    return None


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    a = np.asarray(values)
    out = {f"p{q}": round(float(np.percentile(a, q)), 3) for q in (50, 90, 95, 99)}
    return {
        **out,
        "min": round(float(a.min()), 3),
        "max": round(float(a.max()), 3),
        "mean": round(float(a.mean()), 3),
    }


def run_load(client, args: list, n: int, timeout: float) -> dict:
    """Submit n runs at once; wait for all within `timeout` seconds."""
    done = threading.Event()
    lock = threading.Lock()
    ends: dict[int, float] = {}

    def finished(i: int):
        def cb(_job) -> None:
            with lock:
                ends[i] = time.perf_counter()
                if len(ends) == n:
                    done.set()

        return cb

    t0 = time.perf_counter()
    jobs = []
    for i in range(n):
        job = client.submit(*args, api_name="/run")
        job.add_done_callback(finished(i))
        jobs.append(job)
    done.wait(timeout)
    wall = time.perf_counter() - t0
    latencies, errors = [], []
    for i, job in enumerate(jobs):
        if i not in ends:
            errors.append(f"request {i}: no answer within {timeout} s")
            job.cancel()
            continue
        try:
            problem = check_answer(job.result(timeout=1))
        except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
            problem = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        if problem:
            errors.append(f"request {i}: {problem}")
        else:
            latencies.append(ends[i] - t0)
    return {
        "requests": n,
        "answered_ok": len(latencies),
        "all_answered": len(latencies) == n,
        "errors": errors,
        "latency_s": percentiles(latencies),
        "wall_s": round(wall, 3),
        "throughput_per_s": round(len(latencies) / wall, 3) if wall > 0 else None,
    }


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            text=True,
            capture_output=True,
            timeout=10,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=8, help="concurrent requests (default 8)")
    p.add_argument("--concurrency", type=int, default=1, help="the demo's --concurrency")
    p.add_argument("--masks-kind", choices=["amodal", "visible"], default="amodal")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for all requests")
    p.add_argument("--url", default=None, help="a running demo on a loopback address")
    p.add_argument("--out", default=None, help="JSON file to write (default: stdout only)")
    a = p.parse_args(argv)
    if not 1 <= a.requests <= MAX_REQUESTS:
        p.error(f"--requests must be in 1..{MAX_REQUESTS}")
    if not 0 < a.timeout <= 1800:
        p.error("--timeout must be in (0, 1800] seconds")
    return a


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gradio_client import Client

    a = parse_args(argv)
    load_before = [round(x, 2) for x in os.getloadavg()]  # other work on the machine
    tmp = Path(tempfile.mkdtemp(prefix="demo_load_"))
    log = tmp / "server.log"
    proc = None
    url = a.url or f"http://127.0.0.1:{free_port()}/"
    check_loopback(url)
    if a.url is None:
        proc = start_demo(urllib.parse.urlparse(url).port, a.concurrency, log)
    try:
        startup = wait_ready(url, proc, 180.0, log)
        client = Client(
            url, verbose=False, download_files=str(tmp / "downloads"), analytics_enabled=False
        )
        args = sample_args(a.masks_kind)
        t0 = time.perf_counter()
        warm = check_answer(client.predict(*args, api_name="/run"))
        warmup_s = time.perf_counter() - t0
        if warm:
            sys.exit(f"demo_load: the warm-up request failed: {warm}")
        load = run_load(client, args, a.requests, a.timeout)
        client.close()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    cmd = " ".join(["benchmarks/demo_load.py", *(argv if argv is not None else sys.argv[1:])])
    result = {
        "command": f".venv/bin/python {cmd}",
        "commit": _commit(),
        "what": f"{a.requests} concurrent /run requests of examples/room ({a.masks_kind} "
        "masks) through gradio_client, after one warm-up request; latency = submit to answer",
        "server": {
            "url_host": "127.0.0.1",
            "concurrency": a.concurrency,
            "started_here": proc is not None,
            "startup_s": round(startup, 2),
        },
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS",)},
        "warmup_s": round(warmup_s, 3),
        **load,
        "platform": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "load_average_before": load_before,
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        atomic_write_text(a.out, text + "\n")
    return 0 if result["all_answered"] else 1


if __name__ == "__main__":
    run(main)
