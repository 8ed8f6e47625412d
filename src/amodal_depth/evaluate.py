"""`amodal-depth evaluate`: score a model or a reference predictor on a dataset split.

Protocol (docs/metrics.md):
1. A model gives relative inverse depth per layer; each layer's map is least-squares aligned
   in inverse-depth space against 1/gt on all valid pixels of that layer and turned into
   metres by `metrics.aligned_depth` (depth clipped to [1e-3, 100] m). A reference (or any
   depth callable) gives metric depth, scored as it is. That is the only alignment: regions
   are scored with `depth_metrics(..., align=False)`, so the hidden part is judged under the
   same scale and shift as the rest of the layer (a fit of its own would absorb exactly the
   offset amodal depth has to get right). References are not aligned because a global fit
   is dragged by their deliberate errors (the removed occluders' pixels) and then spoils
   the pixels they get right.
2. Depth metrics per layer and region (`all`, `amodal`, `invisible`); an image's value is
   the mean over its layers, the split's the mean over images. Means skip NaN (an empty
   region); `nan_counts` says how many images had no value.
3. Consistency of the predicted depths between layers (k, k+1), regions `all` and `static`,
   restricted to pixels where both true layers have a depth; the same on the true layer
   depths gives the `gt_consistency` row.
4. Depth-boundary F1 per layer on the same depth as step 2 (`metrics.boundary_f1`): over
   all valid pixels (`boundary_f1`) and over the outline of o_k's hidden part
   (`boundary_f1_hidden_outline`, layers 2..K), averaged like the depth metrics.
The `predicted_object_fill` reference is a model's own output (`PredictedObjectFill`), so it
is predicted and aligned exactly like the model (step 1).
Steps 2-4 are `scoring.py`. Output: a JSON summary (NaN written as null) and a CSV with one
row per image x layer. Deterministic: fixed sample order, no randomness, fixed-order sums.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from amodal_depth.data.format import LayeredSample, read_manifest, read_sample, split_ids
from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_write_json, atomic_write_text, check_output_file
from amodal_depth.references import (
    MODEL_REFERENCES,
    REFERENCE_REGISTRY,
    PredictedObjectFill,
    ReferenceSpec,
    get_reference,
    make_reference,
)
from amodal_depth.runs import resolve_weights
from amodal_depth.scoring import SplitScores, cached_gt_pairs, score_sample

DepthFn = Callable[[LayeredSample], np.ndarray]
PROTOCOL = (
    "models: per layer LS scale/shift in inverse depth vs 1/gt on all valid pixels, "
    "depth clipped to [1e-3, 100] m; references: metric depth as is; regions scored "
    "without further alignment; mean over "
    "layers per image, then over images (NaN skipped); consistency on predicted depths "
    "over pixels valid in both GT layers"
)


# ------------------------------------------------------------------------------ predictors
@dataclass
class _Predictor:
    """What `evaluate` scores: a model (with the `predicted_object_fill` wrapper or not), or
    a depth function (a reference or any callable giving metres)."""

    label: str
    model: Any = None
    fill: PredictedObjectFill | None = None
    depth_fn: DepthFn | None = None

    def predict(
        self, samples: list[LayeredSample], observed: Any, align_to_gt: bool
    ) -> list[tuple[np.ndarray, bool]]:
        """(prediction [K,H,W], is_disparity) per sample."""
        if self.model is None:
            return [(np.asarray(self.depth_fn(s), np.float32), False) for s in samples]  # type: ignore[misc]
        preds = _predict_model_batch(self.model, samples, observed, align_to_gt)
        if self.fill is not None:
            preds = [(self.fill.fill(p, s), True) for (p, _), s in zip(preds, samples)]
        return preds


def _predictor(
    predictor: Any, data_root: Path, num_layers: int, name: str | None, observed: Any
) -> _Predictor:
    fill: PredictedObjectFill | None = None
    if isinstance(predictor, PredictedObjectFill):
        fill, predictor = predictor, predictor.model
        if not _is_torch_module(predictor):
            raise TypeError(f"PredictedObjectFill needs a model, got {type(predictor).__name__}")
        if observed is not None:
            raise UserError("predicted_object_fill is made from RGB alone: drop --observed")
    if isinstance(predictor, str):
        return _Predictor(name or predictor, depth_fn=make_reference(predictor, data_root))
    if _is_torch_module(predictor):
        cfg = getattr(predictor, "config", None)
        label = f"model:{getattr(cfg, 'variant', type(predictor).__name__)}"
        if fill is not None:
            label = f"{fill.name}:{label.removeprefix('model:')}"
        k_model = getattr(cfg, "num_layers", num_layers)
        if k_model != num_layers:
            raise UserError(
                f"the model predicts K = {k_model} layers but {data_root} has K = "
                f"{num_layers}; evaluate it on a dataset with the same K"
            )
        predictor.eval()
        return _Predictor(name or label, model=predictor, fill=fill)
    if callable(predictor):
        label = name or getattr(predictor, "__name__", type(predictor).__name__)
        return _Predictor(label, depth_fn=predictor)
    raise TypeError(f"cannot evaluate a {type(predictor).__name__}")


def _predict_model_batch(
    model: Any, samples: list[LayeredSample], observed: Any = None, align_to_gt: bool = False
) -> list[tuple[np.ndarray, bool]]:
    """(prediction [K,H,W], is_disparity) per sample, through the model's one inference path
    (AmodalDepthModel.predict_batch / predict_layers). With a metric observation the model
    predicts metres (scored as they are, or as inverse depth after alignment with
    align_to_gt); otherwise relative inverse depth."""
    if observed is None:
        rgb = np.stack([s.rgb for s in samples])
        amodal = np.stack([s.amodal for s in samples])
        return [(p, True) for p in model.predict_batch(rgb, amodal)]
    out = []
    for s in samples:
        obs, kind = observed(s)
        pred = model.predict_layers(s.rgb, s.amodal, depth=obs, depth_kind=kind)
        if kind == "depth" and align_to_gt:
            out.append(((1.0 / pred).astype(np.float32), True))
        else:
            out.append((pred, kind != "depth"))
    return out


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ------------------------------------------------------------------------------ evaluate
def _chosen_ids(
    manifest: dict, split: str, root: Path, batch_size: int, max_images: int | None
) -> list[str]:
    ids = split_ids(manifest, split, root)
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if max_images is not None:
        if max_images < 1:
            raise UserError(f"--max-images must be at least 1, got {max_images}")
        ids = ids[:max_images]
    return ids


def evaluate(
    predictor: Any,
    data_root: str | Path,
    split: str = "test",
    *,
    out_json: str | Path | None = None,
    out_csv: str | Path | None = None,
    max_images: int | None = None,
    batch_size: int = 4,
    name: str | None = None,
    progress: bool = True,
    observed: Any = None,
    align_to_gt: bool = False,
) -> dict[str, Any]:
    """Score `predictor` on a split and return (and optionally write) the summary.

    predictor: a reference name (a data reference of `references.REFERENCE_REGISTRY`), a
    model (torch module called as model(normalize_image(rgb), build_guidance(amodal)) ->
    [B,K,H,W] relative inverse depth), `PredictedObjectFill(model)` (that model's prediction
    turned into the `predicted_object_fill` reference, then aligned like the model), or any
    callable LayeredSample -> [K,H,W] depth in metres.
    observed: an `observations.ObservedSource` giving models an observed depth (a
    metric one makes them predict metres); align_to_gt scores those after alignment.
    """
    data_root = Path(data_root)
    manifest = read_manifest(data_root)
    ids = _chosen_ids(manifest, split, data_root, batch_size, max_images)
    pred = _predictor(predictor, data_root, manifest["num_layers"], name, observed)
    is_model = pred.model is not None
    scores = SplitScores()
    skipped: list[str] = []  # images whose observation has too few valid pixels
    desc = f"evaluate {pred.label} ({split})"
    bar = tqdm(total=len(ids), desc=desc, unit="img", disable=not progress)
    for chunk in _batches(ids, batch_size if is_model else 1):
        bar.update(len(chunk))
        samples = [read_sample(data_root, sid, manifest) for sid in chunk]
        if observed is not None and observed.metric:
            keep = [observed.usable(s) for s in samples]
            skipped += [sid for sid, k in zip(chunk, keep) if not k]
            chunk = [sid for sid, k in zip(chunk, keep) if k]
            samples = [s for s, k in zip(samples, keep) if k]
        preds = pred.predict(samples, observed, align_to_gt) if samples else []
        for sid, sample, (p, is_disparity) in zip(chunk, samples, preds):
            if p.shape != sample.depth.shape:
                raise ValueError(f"prediction {p.shape} for {sid}, expected {sample.depth.shape}")
            gt_pair_metrics = cached_gt_pairs(data_root, sid, sample)
            scored = score_sample(
                sample, p, is_disparity=is_disparity, gt_pair_metrics=gt_pair_metrics
            )
            scores.add(sid, *scored)
    bar.close()
    metric_observation = observed is not None and observed.metric
    result: dict[str, Any] = {
        "predictor": pred.label,
        "data": str(data_root),
        "split": split,
        "num_images": len(ids) - len(skipped),
        "skipped_no_observation": skipped,
        "num_layers": manifest["num_layers"],
        "observed": None if observed is None else observed.spec,
        "aligned_to_gt": bool(is_model and (align_to_gt or not metric_observation)),
        **scores.summary(),
        "protocol": PROTOCOL,
    }
    result = _json_safe(result)
    if out_json is not None:
        atomic_write_json(Path(out_json), result)
    if out_csv is not None:
        write_csv(Path(out_csv), scores.rows)
    return result


def _is_torch_module(obj: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, torch.nn.Module)


def _json_safe(obj: Any) -> Any:
    """NaN/inf -> None (JSON has no NaN), recursively."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """One row per image x layer; empty cells for NaN; written atomically."""
    buf = io.StringIO()
    fields = list(rows[0]) if rows else ["id", "layer"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(
            {k: ("" if isinstance(v, float) and math.isnan(v) else _fmt(v)) for k, v in r.items()}
        )
    atomic_write_text(path, buf.getvalue())


def _fmt(v: Any) -> Any:
    return repr(v) if isinstance(v, float) else v


# ------------------------------------------------------------------------------ CLI entry
def _check_sources(
    run: Any, weights: Any, reference: str | None, fit_data: Any
) -> ReferenceSpec | None:
    """The reference's registry entry (None without --reference), after checking that the
    options name exactly one predictor."""
    spec = None if reference is None else get_reference(reference)
    if spec is not None and spec.from_model:
        if (run is None) == (weights is None):
            raise UserError(
                f"--reference {reference} needs the model's weights: add exactly one of "
                "--weights FILE or --run RUN"
            )
    elif sum(x is not None for x in (run, weights, reference)) != 1:
        raise UserError(
            "give exactly one of --run RUN, --weights FILE or --reference NAME "
            f"(only --reference {' / '.join(MODEL_REFERENCES)} takes --weights or --run too)"
        )
    if fit_data is not None and not (spec is not None and spec.fitted):
        fitted = [n for n, r in REFERENCE_REGISTRY.items() if r.fitted]
        raise UserError(f"--fit-data is only for --reference {' / '.join(fitted)}")
    return spec


def _load_cli_model(path: Path, data: str | Path, num_layers: int) -> Any:
    from amodal_depth.models.checkpoints import load_model

    try:
        model = load_model(path)
    except UserError:
        raise
    except Exception as e:  # a corrupt or foreign file: say so in one line
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: cannot load model weights ({msg})") from e
    k_model = model.config.num_layers
    if k_model != num_layers:
        raise UserError(
            f"{path}: the model predicts K = {k_model} layers but {data} has K = "
            f"{num_layers}; evaluate on a dataset with the same K"
        )
    return model


def evaluate_cli(
    run: str | Path | None = None,
    weights: str | Path | None = None,
    data: str | Path = "",
    split: str = "test",
    out: str | Path = "eval.json",
    reference: str | None = None,
    csv_path: str | Path | None = None,
    max_images: int | None = None,
    batch_size: int = 4,
    fit_data: str | Path | None = None,
    observed: str | None = None,
    align_to_gt: bool = False,
) -> dict[str, Any]:
    """What `amodal-depth evaluate` does: check inputs, load, evaluate, write JSON and CSV.
    fit_data: the dataset whose train split a fitted reference (`mean_depth`) is fitted on
    (default `data`; an evaluation-only set such as the shifted one has no train split).
    observed: `gt`, `gt-corrupted` or `model:WEIGHTS` (observations.py)."""
    from amodal_depth.observations import ObservedReference, parse_observed

    spec = _check_sources(run, weights, reference, fit_data)
    if align_to_gt and observed is None:
        raise UserError("--align-to-gt only changes the scoring of an --observed depth")
    manifest = read_manifest(data)
    split_ids(manifest, split, data)  # fail on a missing split before loading anything
    source = parse_observed(observed)
    if source is not None and spec is not None and not spec.observes:
        raise UserError(f"--reference {reference} does not read an observed depth")
    out = check_output_file(out, "--out")
    csv_out = Path(csv_path) if csv_path is not None else out.with_suffix(".csv")
    check_output_file(csv_out, "--csv")
    if spec is not None and fit_data is not None:  # a fitted reference (checked above)
        predictor: Any = spec.build(Path(fit_data))
        label = f"{reference}(fit on {fit_data})"
    elif spec is not None and source is not None:
        label = f"{reference}(observed {source.spec})"
        predictor = ObservedReference(make_reference(spec.name, data), source, label)
    elif spec is not None and not spec.from_model:
        predictor = label = spec.name
    else:
        path = resolve_weights(run, weights)
        predictor = _load_cli_model(path, data, manifest["num_layers"])
        label = f"{predictor.config.variant}:{path}"
        if spec is not None:  # a reference made from the model
            predictor, label = spec.build(predictor), f"{reference}:{label}"
    return evaluate(
        predictor,
        data,
        split,
        out_json=out,
        out_csv=csv_out,
        max_images=max_images,
        batch_size=batch_size,
        name=label,
        observed=source,
        align_to_gt=align_to_gt,
    )
