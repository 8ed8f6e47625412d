"""Non-learned reference predictors: what a method must beat.

Each takes one sample and returns [K, H, W] float32 depth in metres, scored as it is
(docs/metrics.md), except `predicted_object_fill`, which is a model's output:

- `visible_only`: the true layer-1 depth for every layer. Perfect ordinary depth, no amodal
  reasoning: it shows how much of a score needs no de-occlusion at all.
- `object_fill`: for layer k, the true layer-1 depth with the hidden part of target o_k
  (amodal_k and not visible_k) set to the median layer-1 depth over o_k's visible part. The
  cheapest amodal guess: the hidden part lies at the depth of what is seen of the object.
  Pixels of the removed objects o_1..o_{k-1} outside amodal_k keep the occluder's depth (the
  reference knows nothing of the background behind them). When o_k has no visible pixel with
  a depth, its hidden part is left as layer-1 depth.
- `predicted_object_fill`: `object_fill` built from a model's own layer-1 prediction
  instead of the true layer-1 depth, in the model's output space (relative inverse depth):
  evaluate aligns and scores it exactly like that model (`PredictedObjectFill`). It shows
  how much of a model's hidden-part score a plain median fill of its own visible
  prediction would give.
- `MeanDepthMap`: one fixed per-pixel mean of the training split's layer depths (all layers,
  valid pixels only), the same map for every image and layer.

A sample is a `LayeredSample` (data.format) or a dataset item dict with `depth`, `visible`,
`amodal` ([K,H,W] arrays or tensors). `REFERENCE_REGISTRY` (at the end) names them: it is
what `evaluate --reference` offers and what `reproduce` evaluates, so a new reference is one
entry there plus its function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from amodal_depth.data.format import (
    SAMPLES_DIR,
    read_manifest,
    read_png,
    split_ids,
)
from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_path


def _get(sample: Any, name: str) -> np.ndarray:
    value = sample[name] if isinstance(sample, dict) else getattr(sample, name)
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _fill_hidden(
    base: np.ndarray, valid: np.ndarray, amodal: np.ndarray, visible: np.ndarray, k_n: int
) -> np.ndarray:
    """[k_n,H,W]: `base` ([H,W]) for every layer k, o_k's hidden part (amodal_k and not
    visible_k) set to the median of `base` over o_k's visible pixels where `valid`; left
    at `base` when there is no such pixel."""
    out = np.repeat(base[None], k_n, axis=0)
    for k in range(k_n):
        seen = visible[k] & valid
        if seen.any():
            out[k][amodal[k] & ~visible[k]] = np.median(base[seen])
    return out


def visible_only(sample: Any) -> np.ndarray:
    """[K,H,W]: the ground-truth layer-1 depth repeated for every layer."""
    depth = _get(sample, "depth").astype(np.float32)
    return np.repeat(depth[:1], depth.shape[0], axis=0)


def object_fill(sample: Any) -> np.ndarray:
    """[K,H,W]: layer-1 depth with o_k's hidden part filled by its visible median (layer k)."""
    depth = _get(sample, "depth").astype(np.float32)
    amodal = _get(sample, "amodal").astype(bool)
    visible = _get(sample, "visible").astype(bool)
    d1 = depth[0]
    return _fill_hidden(d1, np.isfinite(d1) & (d1 > 0), amodal, visible, depth.shape[0])


def predicted_object_fill(pred: Any, sample: Any) -> np.ndarray:
    """[K,H,W] float32, in `pred`'s units: `object_fill` with `pred[0]` (a model's layer-1
    prediction, relative inverse depth) in place of the true layer-1 depth.

    Every layer k is `pred[0]`, except o_k's hidden part (amodal_k and not visible_k), which
    is set to the median of `pred[0]` over o_k's visible pixels with a finite value. The
    removed objects' pixels outside amodal_k keep the layer-1 prediction; with no such
    visible pixel the hidden part stays at the layer-1 prediction; layer 1 is `pred[0]`.
    Layers 2..K of `pred` are not used.
    """
    p = np.asarray(pred.detach().cpu().numpy() if hasattr(pred, "detach") else pred)
    p = p.astype(np.float32)
    amodal = _get(sample, "amodal").astype(bool)
    visible = _get(sample, "visible").astype(bool)
    if p.ndim != 3 or p.shape != amodal.shape:
        raise ValueError(f"prediction has shape {p.shape}, expected {amodal.shape}")
    d1 = p[0]
    return _fill_hidden(d1, np.isfinite(d1), amodal, visible, p.shape[0])


class PredictedObjectFill:
    """The `predicted_object_fill` reference of `model`, as a predictor for `evaluate`:
    the model runs through evaluate's own inference path, `predicted_object_fill` turns its
    prediction into the reference, and evaluate aligns that like the model's output."""

    name = "predicted_object_fill"

    def __init__(self, model: Any) -> None:
        self.model = model

    def fill(self, pred: Any, sample: Any) -> np.ndarray:
        return predicted_object_fill(pred, sample)


class MeanDepthMap:
    """A fixed per-pixel mean-depth map, fit on a dataset split.

    Pixels no training layer has a depth at take the mean over all valid training pixels.
    """

    def __init__(self, depth: np.ndarray) -> None:
        self.depth = np.asarray(depth, dtype=np.float32)
        """[H, W] metres."""

    @classmethod
    def fit(
        cls, root: str | Path, split: str = "train", max_images: int | None = None
    ) -> MeanDepthMap:
        """Mean over the split's images and all K layers, per pixel, of the valid depths."""
        manifest = read_manifest(root)
        ids = split_ids(manifest, split, root)[:max_images]
        k, h, w = manifest["num_layers"], manifest["height"], manifest["width"]
        scale = float(manifest.get("depth_scale", 1000))
        total = np.zeros((h, w), np.float64)
        count = np.zeros((h, w), np.int64)
        for sid in tqdm(ids, desc=f"mean depth ({split})", unit="img", leave=False):
            for n in range(1, k + 1):
                mm = read_png(Path(root) / SAMPLES_DIR / sid / f"depth_{n}.png", kind="depth")
                if mm.shape != (h, w):
                    raise ValueError(f"sample {sid}: depth_{n}.png is not {w}x{h}")
                ok = mm > 0
                total[ok] += mm[ok] / scale
                count[ok] += 1
        fill = total.sum() / max(count.sum(), 1)
        mean = np.where(count > 0, total / np.maximum(count, 1), fill)
        return cls(mean)

    def predict(self, sample: Any) -> np.ndarray:
        """[K,H,W]: the map for every layer of the sample."""
        depth = _get(sample, "depth")
        if depth.shape[1:] != self.depth.shape:
            raise ValueError(
                f"mean-depth map is {self.depth.shape[1]}x{self.depth.shape[0]}, "
                f"sample is {depth.shape[2]}x{depth.shape[1]}"
            )
        return np.repeat(self.depth[None], depth.shape[0], axis=0)

    __call__ = predict

    def save(self, path: str | Path) -> None:
        """Write the map as .npy (atomically)."""
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, self.depth)

    @classmethod
    def load(cls, path: str | Path) -> MeanDepthMap:
        return cls(np.load(Path(path)))


# ------------------------------------------------------------------------------ registry
@dataclass(frozen=True)
class ReferenceSpec:
    """One reference predictor: its name, what it is, and how to make it."""

    name: str
    label: str
    """Display name in reports and tables."""
    summary: str
    """What it predicts, in one line, for --help and the docs."""
    build: Callable[[Any], Any]
    """A data reference: build(root) -> (sample -> [K,H,W] depth in metres), `root` the
    dataset a fitted reference is fitted on (its train split). A model reference
    (`from_model`): build(model) -> the predictor `evaluate` scores."""
    from_model: bool = False
    """Made from a model's prediction: it needs the model (--weights or --run)."""
    fitted: bool = False
    """Fitted on a dataset's train split (`evaluate --fit-data`)."""
    observes: bool = False
    """Can read an observed depth in place of the true layer 1 (`evaluate --observed`)."""


REFERENCE_REGISTRY: dict[str, ReferenceSpec] = {
    r.name: r
    for r in (  # in the order of the report's rows
        ReferenceSpec("mean_depth", "mean-depth map",
                      "one per-pixel mean depth map of the train split",
                      lambda root: MeanDepthMap.fit(root, "train").predict, fitted=True),
        ReferenceSpec("visible_only", "visible-only", "the true layer-1 depth for every layer",
                      lambda root: visible_only, observes=True),
        ReferenceSpec("object_fill", "object fill", "layer 1 with o_k's hidden part set to "
                      "the median depth of its visible part", lambda root: object_fill,
                      observes=True),
        ReferenceSpec("predicted_object_fill", "predicted object fill", "object_fill made "
                      "from a model's own layer-1 prediction", PredictedObjectFill,
                      from_model=True),
    )
}  # fmt: skip
"""Every reference predictor, by name: adding one is one entry here."""

REFERENCES = tuple(REFERENCE_REGISTRY)
MODEL_REFERENCES = tuple(n for n, r in REFERENCE_REGISTRY.items() if r.from_model)
"""References built from a model's prediction: they need the model (--weights or --run)."""
DATA_REFERENCES = tuple(n for n, r in REFERENCE_REGISTRY.items() if not r.from_model)
"""References made from the data alone (evaluated once per dataset by `reproduce`)."""


def get_reference(name: str) -> ReferenceSpec:
    """The registry entry of `name`; a UserError naming the choices when there is none."""
    try:
        return REFERENCE_REGISTRY[name]
    except KeyError:
        raise UserError(
            f"unknown reference {name!r}; choose one of {', '.join(REFERENCES)}"
        ) from None


def make_reference(name: str, root: str | Path) -> Callable[[Any], Any]:
    """The depth function (sample -> [K,H,W] metres) of the data reference `name`, fitted
    on ROOT's train split when it is fitted; a model reference is a UserError (it needs
    the model: `PredictedObjectFill(model)`)."""
    spec = get_reference(name)
    if spec.from_model:
        raise UserError(
            f"reference {name!r} is made from a model's prediction: give the model "
            "(--weights FILE or --run RUN; in Python, evaluate(PredictedObjectFill(model), ...))"
        )
    return spec.build(Path(root))
