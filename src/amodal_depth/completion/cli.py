"""`amodal-depth completion {train,evaluate,export}`: registered by add_completion_commands."""

from __future__ import annotations

import argparse
import dataclasses

PRESET_CHOICES = ("quick", "cpu", "cpu-long")
"""The names of completion.train.PRESETS, repeated so that building the parser needs no torch."""


def _train(a: argparse.Namespace) -> int:
    from amodal_depth.completion.train import presets, train_completion

    cfg = presets(a.preset, use_rgb=a.rgb)
    overrides = {"steps": a.steps, "seed": a.seed, "threads": a.threads}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    run = train_completion(cfg, a.data, a.out, resume=a.resume)
    kind = "RGB" if a.rgb else "mask-only"
    print(f"trained the {kind} completion UNet ({cfg.preset} preset, {cfg.steps} steps) -> {run}")
    return 0


def _evaluate(a: argparse.Namespace) -> int:
    import torch

    from amodal_depth.completion.evaluate import evaluate_cli

    if a.threads:
        torch.set_num_threads(a.threads)
    r = evaluate_cli(a.weights, a.data, a.split, a.out, max_images=a.max_images)
    parts = []
    for name in r["weights"]:
        m = r["methods"][name]
        parts.append(
            f"{name}: amodal mIoU {m['amodal_miou']}, invisible mIoU {m['invisible_miou']}, "
            f"pair order {m['order']['pair_accuracy']}"
        )
    print(f"{r['split']} ({r['num_images']} images): " + "; ".join(parts) + f" -> {a.out}")
    return 0


def _export(a: argparse.Namespace) -> int:
    from amodal_depth.completion.model import export_completion

    path = export_completion(a.weights, a.out, fp16=not a.fp32, flip_tta=a.flip_tta)
    print(f"{a.weights} -> {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


def add_completion_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `completion train`, `evaluate` and `export` to the top-level subparsers."""
    p = subparsers.add_parser(
        "completion",
        help="amodal mask completion from visible masks: train and evaluate (docs/completion.md)",
    )
    sub = p.add_subparsers(dest="completion_cmd", required=True, metavar="{train,evaluate,export}")
    t = sub.add_parser(
        "train",
        help="train the completion UNet",
        description="Train the amodal mask completion UNet on the train splits of every "
        "--data (object crops of RGB, visible mask and eraser), validate on their val "
        "splits and keep the best val invisible-part mIoU as RUN/model.safetensors. "
        "Resumable with --resume (docs/completion.md).",
    )
    t.add_argument("--data", action="append", required=True, help="dataset root (repeatable)")
    t.add_argument("--out", required=True, help="run directory to create (or to resume)")
    t.add_argument(
        "--preset",
        choices=PRESET_CHOICES,
        default="cpu",
        help="quick (tests), cpu (~18 min on one thread) or cpu-long (3,500 steps, ~1 h); "
        "default cpu",
    )
    t.add_argument("--resume", action="store_true", help="continue from RUN's last checkpoint")
    t.add_argument(
        "--rgb",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="feed the image (default); --no-rgb trains the mask-only baseline",
    )
    t.add_argument("--steps", type=int, default=None, help="optimiser steps (preset's default)")
    t.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    t.set_defaults(func=_train)

    e = sub.add_parser(
        "evaluate",
        help="mask mIoU and order accuracy of completion weights and the baselines",
        description="Score every --weights file and the baselines (visible as amodal, "
        "convex hull, convex hull within the eraser) on a split: amodal and invisible-part "
        "mIoU, and the pairwise accuracy of the derived occlusion order. Writes JSON.",
    )
    e.add_argument("--weights", action="append", required=True, help="weights (repeatable)")
    e.add_argument("--data", required=True, help="dataset root (amodal-layers format)")
    e.add_argument("--split", default="test", help="split to score (default test)")
    e.add_argument("--out", required=True, help="JSON file to write")
    e.add_argument("--max-images", type=int, default=None, help="score the first N only")
    e.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    e.set_defaults(func=_evaluate)

    x = sub.add_parser(
        "export",
        help="copy completion weights for shipping (fp16, inference options)",
        description="Write a copy of a completion weights file (fp16 unless --fp32), "
        "optionally switching mirror test-time augmentation on or off in its config.",
    )
    x.add_argument("--weights", required=True, help="source weights (RUN/model.safetensors)")
    x.add_argument("--out", required=True, help="file to write")
    x.add_argument("--fp32", action="store_true", help="keep fp32 tensors")
    x.add_argument(
        "--flip-tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average with the mirrored crop's prediction (default: as in the source)",
    )
    x.set_defaults(func=_export)
