"""Where one training step's time goes: torch profiler over a forward + backward of one
variant at a training preset's size, on random tensors (data loading excluded).

    .venv/bin/python benchmarks/profile_train_step.py [--variant ade] [--preset cpu] [--rows 12]

Prints the profiler's table of operators sorted by self CPU time, and writes nothing.
"""

from __future__ import annotations

import argparse

from torch.profiler import ProfilerActivity, profile

from amodal_depth.config import PRESETS, VARIANTS, preset
from amodal_depth.models import build_guidance, build_model, normalize_image
from bench_models import _batch  # benchmarks/ is this script's directory
from common import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="ade", choices=VARIANTS)
    ap.add_argument("--preset", default="cpu", choices=PRESETS)
    ap.add_argument("--rows", type=int, default=12)
    a = ap.parse_args()
    cfg = preset(a.preset, a.variant)
    model = build_model(cfg.model)
    b = _batch(cfg.batch_size, cfg.model.num_layers, cfg.height, cfg.width)
    x = normalize_image(b["rgb"])
    g = build_guidance(b["amodal"], cfg.model.guidance_channels)
    for _ in range(2):  # warm-up: first calls pick kernels and allocate
        model(x, g).sum().backward()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x, g).sum().backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.rows))


if __name__ == "__main__":
    run(main)
