"""The report's figures (PNG, written atomically): bar charts of the two tables, the training
loss curves and the per-layer predictions. They draw what they are given and compute
nothing: the predictions come as arrays saved by `amodal_depth.reproduce`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from amodal_depth.fileio import atomic_path
from amodal_depth.report.paper import VARIANT_LABELS, VARIANTS
from amodal_depth.report.results import FigureArrays
from amodal_depth.report.tables import Column, Row, col_label

PALETTE = ("tab:blue", "tab:orange", "tab:red", "tab:green", "tab:purple", "tab:brown")
"""Variant colours, in registry order."""


def _save_figure(fig: Any, path: Path, dpi: int = 100) -> None:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_figure(rows: Sequence[Row], columns: Sequence[Column], path: Path, title: str) -> None:
    """One panel per column; bars = means, error bars = std over seeds (variants only)."""
    plt = _plt()
    ncol = min(4, len(columns))
    nrow = math.ceil(len(columns) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.9 * nrow), squeeze=False)
    colors = {"gt": "0.35", "reference": "0.7"}
    for i, c in enumerate(columns):
        ax = axes[i // ncol][i % ncol]
        means = [r.stats[c].mean for r in rows]
        errs = [0.0 if math.isnan(r.stats[c].std) else r.stats[c].std for r in rows]
        cols, j = [], 0
        for r in rows:
            if r.kind == "variant":
                cols.append(PALETTE[j % len(PALETTE)])
                j += 1
            else:
                cols.append(colors[r.kind])
        x = list(range(len(rows)))
        ax.bar(x, [0.0 if math.isnan(m) else m for m in means], yerr=errs, color=cols, capsize=3)
        ax.set_xticks(x)
        ax.set_xticklabels([r.label.replace("ref: ", "") for r in rows], rotation=60, ha="right",
                           fontsize=7)  # fmt: skip
        ax.set_title(col_label(*c), fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    for k in range(len(columns), nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    fig.suptitle(title + " (error bars: std over seeds)", fontsize=10)
    fig.tight_layout()
    _save_figure(fig, path)


def loss_figure(runs: dict[str, list[dict]], path: Path) -> bool:
    """Training loss against step, one colour per variant, one line per seed."""
    curves = [
        (v, r) for v in VARIANTS for r in runs.get(v, []) if r.get("train", {}).get("loss_curve")
    ]
    if not curves:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    palette = {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(VARIANTS)}
    labelled: set[str] = set()
    for v, r in curves:
        pts = r["train"]["loss_curve"]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=palette[v], alpha=0.8, lw=1,
                label=None if v in labelled else VARIANT_LABELS[v])  # fmt: skip
        labelled.add(v)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("Training loss (one line per seed)", fontsize=10)
    _save_figure(fig, path)
    return True


def _seed_note(seeds: dict[str, int]) -> str:
    values = set(seeds.values())
    return f"seed {values.pop()} run" if len(values) == 1 else "lowest seed with predictions"


def predictions_figure(arrays: FigureArrays, path: Path) -> None:
    """Per-layer depth of a few test images: the truth, then every variant's prediction
    (aligned to the truth per layer like the evaluation), as `arrays` holds them."""
    plt = _plt()
    preds = {v: arrays.predictions[v] for v in VARIANTS if v in arrays.predictions}
    names = ["ground truth", *(VARIANT_LABELS[v] for v in preds)]
    n_img, k = arrays.depth.shape[:2]
    nrow = n_img * len(names)
    fig, axes = plt.subplots(nrow, k + 1, figsize=(2.2 * (k + 1), 1.75 * nrow), squeeze=False)
    for i in range(n_img):
        depth, amodal = arrays.depth[i], arrays.amodal[i]
        valid = depth > 0
        lo = float(depth[valid].min()) if valid.any() else 0.0
        hi = float(depth[valid].max()) if valid.any() else 1.0
        maps = [depth, *(p[i] for p in preds.values())]
        for j, (name, m) in enumerate(zip(names, maps)):
            row = axes[i * len(names) + j]
            if j == 0:
                row[0].imshow(arrays.rgb[i])
                row[0].contour(amodal[1] if k > 1 else amodal[0], levels=[0.5], colors="w",
                               linewidths=0.6)  # fmt: skip
                row[0].set_title(f"test {arrays.ids[i]}", fontsize=7)
            else:
                row[0].axis("off")
            row[0].text(0.0, 0.5, name, transform=row[0].transAxes, fontsize=7, rotation=90,
                        va="center", ha="right")  # fmt: skip
            for layer in range(k):
                shown = np.where(valid[layer], m[layer], np.nan)
                row[layer + 1].imshow(shown, cmap="turbo_r", vmin=lo, vmax=hi)
                row[layer + 1].contour(amodal[layer], levels=[0.5], colors="k", linewidths=0.5)
                if i == 0 and j == 0:
                    row[layer + 1].set_title(f"layer {layer + 1} (depth, m)", fontsize=7)
            for ax in row:
                ax.set_xticks([])
                ax.set_yticks([])
    fig.suptitle(f"Per-layer depth: truth and each variant ({_seed_note(arrays.seeds)}), "
                 "contour = amodal mask", fontsize=9, y=1.01)  # fmt: skip
    fig.tight_layout()
    _save_figure(fig, path, dpi=60)  # many panels: keep the committed PNG small
