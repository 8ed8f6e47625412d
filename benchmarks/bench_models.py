"""Speed of every variant at the `cpu` preset size, against this machine's matmul speed.

Writes --out (default runs/benchmarks/models.json) and, with --doc docs/benchmarks.md, the
table between that file's `models[-TAG]` markers. Per variant:
  * train_images_per_s: optimiser steps (forward, loss, backward, clip, AdamW) on random
    tensors of the preset's batch and size, after warm-up steps (data loading excluded);
  * predict_latency_s: median wall time of one `predict_layers` call, one image, K layers;
  * forward_gflop_per_image: torch.utils.flop_counter.FlopCounterMode over one forward of
    one image with its K layers (counts matmuls/convs, not elementwise ops);
  * utilisation = achieved FLOP/s / matmul FLOP/s measured in the same run (2048^2 fp32),
    with training FLOPs taken as 3x forward (forward + backward).
Per preset, also the latency of ONE single-layer `ade` pass (a K = 1 model, one mask), and,
when `ade` and `ade_late_guidance` are both timed, the ratios of the K-layer latency of
ade_late_guidance to `ade`'s K-layer call (`k3_latency_ratio_vs_iterative_ade`: its K passes
run as one batch), to K separate single-layer passes (`k3_latency_ratio_vs_three_ade_passes`)
and to one pass (`k3_latency_ratio_vs_one_ade_pass`), and of training images/s
(`train_images_per_s_ratio_vs_ade`).

    .venv/bin/python benchmarks/bench_models.py [--variants ade ...] [--steps 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from amodal_depth.config import PRESETS, VARIANTS, preset
from amodal_depth.data.format import atomic_write_json
from amodal_depth.losses import LossWeights, layered_depth_loss
from amodal_depth.models import build_guidance, build_model, get_variant, normalize_image
from amodal_depth.train import _param_groups
from common import add_out, run  # benchmarks/ is this script's directory

BEGIN, END = "<!-- models:begin -->", "<!-- models:end -->"


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / min(times) / 1e9


def _batch(b: int, k: int, h: int, w: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    amodal = torch.zeros(b, k, h, w, dtype=torch.bool)
    for i in range(k):  # overlapping boxes, front to back
        amodal[:, i, h // 6 + 8 * i : h // 2 + 8 * i, w // 6 + 16 * i : w // 2 + 16 * i] = True
    visible = amodal & ~torch.cumsum(amodal.int(), 1).gt(1)
    return {
        "rgb": torch.rand(b, 3, h, w, generator=g),
        "depth": 1.0 + 4.0 * torch.rand(b, k, h, w, generator=g),
        "amodal": amodal,
        "visible": visible,
    }


def bench_variant(
    variant: str, steps: int, warmup: int, repeats: int, preset_name: str = "cpu"
) -> dict:
    cfg = preset(preset_name, variant)
    spec = get_variant(variant)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    k, h, w, bsz = model.config.num_layers, cfg.height, cfg.width, cfg.batch_size
    params = sum(p.numel() for p in model.parameters())

    # Forward FLOPs of one image with its K layers (the training forward).
    one = _batch(1, k, h, w)
    x, guidance = normalize_image(one["rgb"]), build_guidance(one["amodal"])
    model.eval()
    # Grad mode on: FlopCounterMode's module tracker fails on ade_multibatch under no_grad.
    with FlopCounterMode(display=False) as fc:
        model(x, guidance)
    flops = fc.get_total_flops()

    # Training throughput.
    model.train()
    opt = torch.optim.AdamW(_param_groups(model, cfg), lr=cfg.lr)
    batch = _batch(bsz, k, h, w)
    weights = LossWeights(cfg.invisible_weight, cfg.grad_weight, cfg.consistency_weight)

    def step() -> None:
        pred = model(normalize_image(batch["rgb"]), build_guidance(batch["amodal"]))
        loss = layered_depth_loss(
            pred, batch["depth"], batch["visible"], batch["amodal"],
            group_alignment=spec.group_alignment, consistency=spec.consistency_loss,
            weights=weights,
        )["total"]  # fmt: skip
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()

    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    train_ips = steps * bsz / (time.perf_counter() - t)

    # Latency of one layered prediction (K = 3 for the presets), the public inference call.
    latency = predict_latency(model.eval(), one["amodal"][0].numpy(), repeats)
    return {
        "variant": variant,
        "preset": preset_name,
        "dpt_features": model.config.features,
        "params_m": params / 1e6,
        "batch_size": bsz,
        "size_wh": [w, h],
        "num_layers": k,
        "forward_gflop_per_image": flops / 1e9,
        "train_images_per_s": train_ips,
        "predict_latency_s": latency,
        "train_gflop_per_s": 3 * flops * train_ips / 1e9,
        "predict_gflop_per_s": flops / latency / 1e9,
    }


def predict_latency(model: torch.nn.Module, masks: np.ndarray, repeats: int) -> float:
    """Median wall time of predict_layers on a random image of the masks' size (after one
    warm-up call)."""
    h, w = masks.shape[-2:]
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    model.predict_layers(image, masks)  # warm-up
    lat = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.predict_layers(image, masks)
        lat.append(time.perf_counter() - t)
    return statistics.median(lat)


def one_pass_latency(repeats: int, preset_name: str) -> float:
    """Median predict_layers time of an `ade` model built for one layer: one ordinary pass."""
    cfg = preset(preset_name, "ade")
    torch.manual_seed(0)
    model = build_model(dataclasses.replace(cfg.model, num_layers=1)).eval()
    return predict_latency(model, _batch(1, 1, cfg.height, cfg.width)["amodal"][0].numpy(), repeats)


def ratios(variants: list[dict], one_pass: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per preset: ade_late_guidance against ade (see the module docstring)."""
    out = {}
    for p, single in one_pass.items():
        by = {r["variant"]: r for r in variants if r["preset"] == p}
        if "ade" in by and "ade_late_guidance" in by:
            late, ade = by["ade_late_guidance"], by["ade"]
            out[p] = {
                "k3_latency_ratio_vs_iterative_ade": late["predict_latency_s"]
                / ade["predict_latency_s"],
                "k3_latency_ratio_vs_one_ade_pass": late["predict_latency_s"] / single,
                "k3_latency_ratio_vs_three_ade_passes": late["predict_latency_s"]
                / (late["num_layers"] * single),
                "train_images_per_s_ratio_vs_ade": late["train_images_per_s"]
                / ade["train_images_per_s"],
            }
    return out


def write_table(res: dict, path: Path) -> None:
    mm = res["matmul_gflop_per_s"]
    rows = [
        f"Measured {res['date']} on {res['machine']} ({res['threads']} threads), `cpu` preset size "
        f"(`{res['model']}`, {res['size']}, batch {res['batch_size']}, K = {res['num_layers']}); "
        f"fp32 matmul 2048²: **{mm:.1f} GFLOP/s** in the same run. Command: "
        f"`{res['command']}`.",
        "",
        "| variant | params (M) | fwd GFLOP / image (K layers) | train img/s | train util. "
        "| predict K=3 latency (s) | predict util. |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["variants"]:
        name = (
            r["variant"] if r.get("preset", "cpu") == "cpu" else f"{r['variant']} ({r['preset']})"
        )
        rows.append(
            f"| {name} | {r['params_m']:.2f} | {r['forward_gflop_per_image']:.2f} "
            f"| {r['train_images_per_s']:.2f} | {r['train_gflop_per_s'] / mm:.0%} "
            f"| {r['predict_latency_s']:.3f} | {r['predict_gflop_per_s'] / mm:.0%} |"
        )
    rows += [
        "",
        *(
            f"One single-layer `ade` pass ({p}): {t:.3f} s."
            for p, t in res.get("one_ade_pass_latency_s", {}).items()
        ),
        *(
            f"`ade_late_guidance` against `ade` ({p}): K = {res['num_layers']} latency "
            f"{r['k3_latency_ratio_vs_iterative_ade']:.2f} × `ade`'s K-layer call (its passes "
            f"batched), {r['k3_latency_ratio_vs_three_ade_passes']:.2f} × K single-layer "
            f"passes, {r['k3_latency_ratio_vs_one_ade_pass']:.2f} × one pass; training images/s "
            f"{r['train_images_per_s_ratio_vs_ade']:.2f} × `ade`'s."
            for p, r in res.get("late_guidance_vs_ade", {}).items()
        ),
        "",
        "Utilisation = achieved FLOP/s ÷ matmul FLOP/s; training FLOPs = 3 × forward. "
        "FlopCounterMode counts matmuls and convolutions only, so elementwise work (GELU, "
        "norms, the loss's medians) is time without counted FLOPs.",
    ]
    # One block per preset set, so a cpu-long timing does not replace the cpu table.
    tag = "" if res.get("presets", ["cpu"]) == ["cpu"] else "-" + "-".join(res["presets"])
    if res.get("tag"):
        tag = "-" + res["tag"]
    begin, end = BEGIN.replace("models", f"models{tag}"), END.replace("models", f"models{tag}")
    title = "## Models (`benchmarks/bench_models.py`" + (f", {tag[1:]})" if tag else ")")
    block = "\n".join([begin, title, "", *rows, end])
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument(
        "--presets", nargs="+", default=["cpu"], choices=PRESETS,
        help="training presets to time each variant at (default cpu); same image size",
    )  # fmt: skip
    ap.add_argument("--steps", type=int, default=5, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed training steps first")
    ap.add_argument("--repeats", type=int, default=5, help="timed predict_layers calls")
    add_out(ap, "models.json")
    ap.add_argument(
        "--doc",
        type=Path,
        default=None,
        help="also write the table into this markdown file (docs/benchmarks.md)",
    )
    ap.add_argument(
        "--tag", default=None,
        help="name of this run's block in --doc (default: from the presets), so that a run "
        "with other variants does not replace an earlier block",
    )  # fmt: skip
    a = ap.parse_args()
    mm_before = matmul_gflops()
    variants = [
        bench_variant(v, a.steps, a.warmup, a.repeats, p) for p in a.presets for v in a.variants
    ]
    one_pass = {p: one_pass_latency(a.repeats, p) for p in a.presets}
    mm_after = matmul_gflops()
    cfg = preset("cpu")
    m = dataclasses.replace(cfg.model)
    res = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "command": " ".join(["python benchmarks/bench_models.py", *sys.argv[1:]]),
        "tag": a.tag,
        "model": f"{m.encoder}, conv_stem={m.conv_stem}",
        "size": f"{cfg.width}x{cfg.height}",
        "batch_size": cfg.batch_size,
        "num_layers": m.num_layers,
        # The max of two measurements bracketing the variants: the machine is shared.
        "matmul_gflop_per_s": max(mm_before, mm_after),
        "matmul_gflop_per_s_before_after": [mm_before, mm_after],
        "presets": a.presets,
        "variants": variants,
        "one_ade_pass_latency_s": one_pass,
        "late_guidance_vs_ade": ratios(variants, one_pass),
    }
    atomic_write_json(a.out, res)
    if a.doc is not None:
        write_table(res, a.doc)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    run(main)
