"""Scoring amodal mask completion and occlusion order (definitions: docs/completion.md).

Methods scored side by side on the same objects:

- `visible`: the visible mask taken as the amodal mask (nothing completed);
- `convex_hull`: the convex hull of the visible mask (all its pixels, filled);
- `convex_hull_eraser`: the paste-back rule applied to the hull, visible ∪ (hull ∩ eraser);
- one entry per completion weights file (`unet_rgb`, `unet_mask` from its config);
- `crop_ceiling`: the true amodal masks sent through the first model's crop and the
  paste-back rule (what the crop resolution allows at best);
- for the order only, `true_amodal`: the order rule on the true amodal masks (its ceiling).

IoU(p, t) = |p ∧ t| / |p ∨ t| per object. `amodal_miou` averages it over every object;
`invisible_miou` averages IoU(p ∧ ¬visible, t ∧ ¬visible) over the objects whose true
invisible part is not empty (an object with nothing hidden has no invisible part to score;
its false completions lower `amodal_miou` and are reported as `unoccluded_spurious_area`).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from amodal_depth.completion import crops
from amodal_depth.completion.infer import complete_with_model
from amodal_depth.completion.model import CompletionUNet, load_completion
from amodal_depth.completion.order import occlusion_order, pair_accuracy, pairwise_cover
from amodal_depth.data.format import read_manifest, read_sample, split_ids
from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_write_json


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """|pred ∧ truth| / |pred ∨ truth|; NaN when both are empty."""
    union = int(np.count_nonzero(pred | truth))
    return float("nan") if union == 0 else int(np.count_nonzero(pred & truth)) / union


def convex_hull(mask: np.ndarray) -> np.ndarray:
    """The filled convex hull of all pixels of `mask` (itself when empty)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return mask.copy()
    hull = cv2.convexHull(np.stack([xs, ys], axis=1).astype(np.int32))
    out = np.zeros(mask.shape, np.uint8)
    cv2.fillConvexPoly(out, hull, 1)
    return (out > 0) | mask


def baseline_masks(visible: np.ndarray) -> dict[str, np.ndarray]:
    """The non-learned predictions for every object: name -> [K,H,W] bool."""
    hull = np.stack([convex_hull(v) for v in visible])
    era = crops.erasers(visible)
    return {
        "visible": visible.copy(),
        "convex_hull": hull,
        "convex_hull_eraser": visible | (hull & era),
    }


def crop_ceiling(visible: np.ndarray, amodal: np.ndarray, size: int) -> np.ndarray:
    """The true amodal masks sent through the crop (at `size`) and the paste-back rule: the
    best any network with that crop size can score."""
    era = crops.erasers(visible)
    out = visible.copy()
    for k in range(visible.shape[0]):
        if visible[k].any():
            box = crops.crop_box(visible[k], era[k])
            prob = crops.paste(crops.crop_target(amodal[k], box, size), box, visible.shape[1:])
            out[k] = crops.combine(visible[k], era[k], prob)
    return out


class Scores:
    """Accumulates per-object mask scores and per-image order scores of one method."""

    def __init__(self) -> None:
        self.amodal: list[float] = []
        self.amodal_occluded: list[float] = []
        self.invisible: list[float] = []
        self.spurious: list[float] = []
        self.pairs = [0, 0]  # correct, total: all pairs
        self.occluding = [0, 0]  # correct, total: pairs where one hides the other
        self.exact = [0, 0]  # images with the whole order right, images

    def add_masks(self, pred: np.ndarray, visible: np.ndarray, amodal: np.ndarray) -> None:
        for p, v, t in zip(pred, visible, amodal):
            score = iou(p, t)
            self.amodal.append(score)
            hidden = t & ~v
            if hidden.any():
                self.amodal_occluded.append(score)
                self.invisible.append(iou(p & ~v, hidden))
            else:
                self.spurious.append(np.count_nonzero(p & ~v) / max(1, np.count_nonzero(t)))

    def add_order(self, pred: np.ndarray, visible: np.ndarray, amodal: np.ndarray) -> None:
        """Truth: objects are stored front to back (index order)."""
        k_n = visible.shape[0]
        order = occlusion_order(visible, pred)
        every = [(a, b) for a in range(k_n) for b in range(a + 1, k_n)]
        cover = pairwise_cover(visible, amodal)
        hiding = [(a, b) for a, b in every if cover[a, b] > 0]
        for acc, pairs in ((self.pairs, every), (self.occluding, hiding)):
            c, n = pair_accuracy(order, pairs)
            acc[0] += c
            acc[1] += n
        self.exact[0] += int(order == list(range(k_n)))
        self.exact[1] += 1

    def summary(self, masks: bool = True) -> dict[str, Any]:
        def mean(xs: list[float]) -> float | None:
            return round(float(np.mean(xs)), 4) if xs else None

        def share(acc: list[int]) -> float | None:
            return round(acc[0] / acc[1], 4) if acc[1] else None

        out: dict[str, Any] = {}
        if masks:
            out.update(
                amodal_miou=mean(self.amodal),
                amodal_miou_occluded=mean(self.amodal_occluded),
                invisible_miou=mean(self.invisible),
                unoccluded_spurious_area=mean(self.spurious),
                unoccluded_clean=mean([float(s == 0) for s in self.spurious]),
                num_objects=len(self.amodal),
                num_occluded=len(self.invisible),
            )
        out["order"] = {
            "pair_accuracy": share(self.pairs),
            "occluding_pair_accuracy": share(self.occluding),
            "exact_order": share(self.exact),
            "num_pairs": self.pairs[1],
            "num_occluding_pairs": self.occluding[1],
            "num_images": self.exact[1],
        }
        return out


def _method_names(models: list[CompletionUNet], paths: list[Path]) -> list[str]:
    names = ["unet_rgb" if m.config.use_rgb else "unet_mask" for m in models]
    if len(set(names)) < len(names):  # two files of one kind: tell them apart by file name
        names = [f"{n}:{p.stem}" for n, p in zip(names, paths)]
    if len(set(names)) < len(names):
        raise UserError("the same --weights file was given twice; give each one once")
    return names


def evaluate_completion(
    weights: list[str | os.PathLike],
    data: str | os.PathLike,
    split: str = "test",
    max_images: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Mask and order scores of the baselines and every weights file on `split` of `data`."""
    paths = [Path(w) for w in weights]
    models = [load_completion(p) for p in paths]
    names = _method_names(models, paths)
    manifest = read_manifest(data)
    ids = split_ids(manifest, split, data)[:max_images]
    if not ids:
        raise UserError(f"split {split!r} of {data} is empty; pick a split with samples")
    base = ["visible", "convex_hull", "convex_hull_eraser"]
    scores = {n: Scores() for n in [*base, *names, "crop_ceiling"]}
    truth = Scores()
    t0 = time.perf_counter()
    for sid in tqdm(ids, desc=f"completion eval ({split})", unit="img", disable=not progress):
        s = read_sample(data, sid, manifest)
        preds = baseline_masks(s.visible)
        for name, model in zip(names, models):
            preds[name] = complete_with_model(model, s.rgb, s.visible)
        preds["crop_ceiling"] = crop_ceiling(s.visible, s.amodal, models[0].config.crop)
        for name, pred in preds.items():
            scores[name].add_masks(pred, s.visible, s.amodal)
            scores[name].add_order(pred, s.visible, s.amodal)
        truth.add_order(s.amodal, s.visible, s.amodal)
    methods = {n: sc.summary() for n, sc in scores.items()}
    methods["true_amodal"] = truth.summary(masks=False)
    return {
        "task": "amodal mask completion and occlusion order",
        "data": str(Path(data).resolve()),
        "split": split,
        "num_images": len(ids),
        "weights": {n: str(p) for n, p in zip(names, paths)},
        "configs": {n: dataclasses.asdict(m.config) for n, m in zip(names, models)},
        "methods": methods,
        "seconds": round(time.perf_counter() - t0, 1),
        "torch_threads": torch.get_num_threads(),
        "command": shlex.join(["amodal-depth", *sys.argv[1:]]) if sys.argv else "",
    }


def evaluate_cli(
    weights: list[str],
    data: str,
    split: str,
    out: str,
    max_images: int | None = None,
) -> dict[str, Any]:
    """`amodal-depth completion evaluate`: score and write the JSON atomically."""
    if Path(out).is_dir():
        raise UserError(f"--out {out} is a directory; give a JSON file name")
    result = evaluate_completion(weights, data, split, max_images)
    atomic_write_json(out, result)
    return result


def format_table(result: dict[str, Any]) -> str:
    """A Markdown table of the mask scores and the order accuracies of one result."""
    lines = [
        "| method | amodal mIoU | amodal mIoU (occluded) | invisible mIoU | pair acc. | "
        "occluding-pair acc. | exact order |",
        "|---|---|---|---|---|---|---|",
    ]
    first = ["visible", "convex_hull", "convex_hull_eraser"]
    last = ["crop_ceiling", "true_amodal"]
    names = [n for n in first if n in result["methods"]]
    names += sorted(n for n in result["methods"] if n not in first + last)
    names += [n for n in last if n in result["methods"]]
    for name in names:
        m = result["methods"][name]
        o = m["order"]
        cells = [m.get("amodal_miou"), m.get("amodal_miou_occluded"), m.get("invisible_miou")]
        cells += [o["pair_accuracy"], o["occluding_pair_accuracy"], o["exact_order"]]
        text = ["–" if c is None else f"{c:.3f}" for c in cells]
        lines.append(f"| {name} | " + " | ".join(text) + " |")
    return "\n".join(lines)
