"""`amodal-depth evaluate`: score a model or a reference predictor on a dataset split.

Protocol (docs/metrics.md):
1. A model gives relative inverse depth per layer; each layer's map is least-squares aligned
   in inverse-depth space against 1/gt on all valid pixels of that layer and turned into
   metres by `metrics.disparity_to_depth`. A reference (or any depth callable) gives metric
   depth, scored as it is. That is the only alignment: regions are scored with
   `depth_metrics(..., align=False)`, so the hidden part is judged under the same scale
   and shift as the rest of the layer (a fit of its own would absorb exactly the offset
   amodal depth has to get right). References are not aligned because a global fit is
   dragged by their deliberate errors (the removed occluders' pixels) and then spoils the
   pixels they get right.
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
Output: a JSON summary (NaN written as null) and a CSV with one row per image x layer.
Deterministic: fixed sample order, no randomness, fixed-order sums.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from amodal_depth.data.format import (
    SAMPLES_DIR,
    LayeredSample,
    read_manifest,
    read_sample,
    split_ids,
)
from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_write_json, atomic_write_text
from amodal_depth.metrics import (
    BOUNDARY_KEYS,
    CONSISTENCY_KEYS,
    CONSISTENCY_REGIONS,
    DEPTH_KEYS,
    DEPTH_REGIONS,
    boundary_f1,
    depth_metrics,
    disparity_to_depth,
    hidden_outline,
    pair_consistency,
    region_masks,
    valid_depth,
)
from amodal_depth.references import (
    MODEL_REFERENCES,
    REFERENCES,
    MeanDepthMap,
    PredictedObjectFill,
    object_fill,
    visible_only,
)

WEIGHTS_NAME = "model.safetensors"

DepthFn = Callable[[LayeredSample], np.ndarray]


# ------------------------------------------------------------------------------ predictors
def _reference(name: str, data_root: Path) -> DepthFn:
    if name == "visible_only":
        return visible_only
    if name == "object_fill":
        return object_fill
    if name == "mean_depth":
        return MeanDepthMap.fit(data_root, "train").predict
    if name in MODEL_REFERENCES:
        raise UserError(
            f"reference {name!r} is made from a model's prediction: give the model "
            "(--weights FILE or --run RUN; in Python, evaluate(PredictedObjectFill(model), ...))"
        )
    raise UserError(f"unknown reference {name!r}; choose one of {', '.join(REFERENCES)}")


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


# ------------------------------------------------------------------------------ scoring
Pairs = list[dict[str, dict[str, float]]]

# The GT consistency of a sample does not depend on the predictor, and it is half the cost of
# scoring an image; `reproduce` evaluates many predictors on one split in one process. Keyed
# by the sample directory and its mtime (samples are replaced by a rename, which changes it).
_GT_PAIRS: dict[tuple[str, str, int], Pairs] = {}
_GT_CACHE_MAX = 20000


def gt_pairs(sample: LayeredSample) -> Pairs:
    """pair_consistency of the true layer depths for (1,2), (2,3), ..."""
    gt = sample.depth.astype(np.float64)
    valid = valid_depth(gt)
    return [pair_consistency(gt, sample.camera, sample.amodal, k, valid) for k in range(1, len(gt))]


def _cached_gt_pairs(root: Path, sid: str, sample: LayeredSample) -> Pairs:
    d = root / SAMPLES_DIR / sid
    key = (str(d.resolve()), sid, d.stat().st_mtime_ns)
    if key not in _GT_PAIRS:
        if len(_GT_PAIRS) >= _GT_CACHE_MAX:
            _GT_PAIRS.clear()
        _GT_PAIRS[key] = gt_pairs(sample)
    return _GT_PAIRS[key]


def score_sample(
    sample: LayeredSample,
    pred: np.ndarray,
    *,
    is_disparity: bool,
    gt_pair_metrics: Pairs | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Per-layer rows, and the image's consistency of the prediction and of the ground truth.

    `pred` is [K,H,W]: relative inverse depth (is_disparity) or depth in metres.
    `gt_pair_metrics`: `gt_pairs(sample)` when already known.
    """
    gt = sample.depth.astype(np.float64)
    k_layers = gt.shape[0]
    gt_valid = valid_depth(gt)
    if is_disparity:
        disp = np.asarray(pred, np.float64)
        depth = np.stack([disparity_to_depth(disp[k], gt[k], gt_valid[k]) for k in range(k_layers)])
    else:
        depth = np.asarray(pred, np.float64)

    if gt_pair_metrics is None:
        gt_pair_metrics = gt_pairs(sample)
    rows: list[dict[str, Any]] = []
    pairs_pred, pairs_gt = [], []
    for k in range(k_layers):
        row: dict[str, Any] = {"layer": k + 1}
        regions = region_masks(gt[k], sample.amodal[k], sample.visible[k])
        for region in DEPTH_REGIONS:
            m = depth_metrics(depth[k], gt[k], regions[region], align=False)
            row.update({f"{region}_{key}": m[key] for key in DEPTH_KEYS})
            row[f"{region}_pixels"] = int(regions[region].sum())
        if k + 1 < k_layers:
            cp = pair_consistency(depth, sample.camera, sample.amodal, k + 1, gt_valid)
            cg = gt_pair_metrics[k]
            pairs_pred.append(cp)
            pairs_gt.append(cg)
        else:
            cp = cg = {r: dict.fromkeys(CONSISTENCY_KEYS, math.nan) for r in CONSISTENCY_REGIONS}
        for region in CONSISTENCY_REGIONS:
            row.update({f"cons_{region}_{key}": cp[region][key] for key in CONSISTENCY_KEYS})
            row.update({f"gtcons_{region}_{key}": cg[region][key] for key in CONSISTENCY_KEYS})
        row["boundary_f1"] = boundary_f1(depth[k], gt[k], gt_valid[k])
        if k > 0:  # o_1 has no hidden part
            outline = hidden_outline(sample.amodal[k], sample.visible[k]) & gt_valid[k]
            row["boundary_f1_hidden_outline"] = boundary_f1(depth[k], gt[k], outline)
        else:
            outline = np.zeros_like(gt_valid[k])
            row["boundary_f1_hidden_outline"] = math.nan
        row["hidden_outline_pixels"] = int(outline.sum())
        rows.append(row)
    return rows, _mean_pairs(pairs_pred), _mean_pairs(pairs_gt)


def _mean_pairs(pairs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        r: {key: _nanmean([p[r][key] for p in pairs]) for key in CONSISTENCY_KEYS}
        for r in CONSISTENCY_REGIONS
    }


def _nanmean(values: list[float]) -> float:
    ok = [v for v in values if not math.isnan(v)]
    return math.fsum(ok) / len(ok) if ok else math.nan


def _summarise(per_image: list[dict[str, dict[str, float]]]) -> tuple[dict, dict]:
    """Mean over images per region/metric, NaN-skipping, and the number of NaN images."""
    means, nans = {}, {}
    for region in per_image[0]:
        vals = {key: [img[region][key] for img in per_image] for key in per_image[0][region]}
        means[region] = {key: _nanmean(v) for key, v in vals.items()}
        nans[region] = {key: sum(math.isnan(x) for x in v) for key, v in vals.items()}
    return means, nans


def _summarise_flat(per_image: list[dict[str, float]]) -> tuple[dict, dict]:
    """`_summarise` for one level of keys (metric -> value)."""
    means = {key: _nanmean([img[key] for img in per_image]) for key in BOUNDARY_KEYS}
    nans = {key: sum(math.isnan(img[key]) for img in per_image) for key in BOUNDARY_KEYS}
    return means, nans


# ------------------------------------------------------------------------------ evaluate
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

    predictor: a reference name (`visible_only`, `object_fill`, `mean_depth`), a model
    (torch module called as model(normalize_image(rgb), build_guidance(amodal)) -> [B,K,H,W]
    relative inverse depth), `PredictedObjectFill(model)` (that model's prediction turned
    into the `predicted_object_fill` reference, then aligned like the model), or any
    callable LayeredSample -> [K,H,W] depth in metres.
    observed: an `observations.ObservedSource` giving models an observed depth (a
    metric one makes them predict metres); align_to_gt scores those after alignment.
    """
    data_root = Path(data_root)
    manifest = read_manifest(data_root)
    ids = split_ids(manifest, split, data_root)
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if max_images is not None:
        if max_images < 1:
            raise UserError(f"--max-images must be at least 1, got {max_images}")
        ids = ids[:max_images]

    fill: PredictedObjectFill | None = None
    if isinstance(predictor, PredictedObjectFill):
        fill, predictor = predictor, predictor.model
        if not _is_torch_module(predictor):
            raise TypeError(f"PredictedObjectFill needs a model, got {type(predictor).__name__}")
        if observed is not None:
            raise UserError("predicted_object_fill is made from RGB alone: drop --observed")
    is_model = _is_torch_module(predictor)
    if isinstance(predictor, str):
        label = predictor
        depth_fn: DepthFn | None = _reference(predictor, data_root)
    elif is_model:
        cfg = getattr(predictor, "config", None)
        label = f"model:{getattr(cfg, 'variant', type(predictor).__name__)}"
        if fill is not None:
            label = f"{fill.name}:{label.removeprefix('model:')}"
        depth_fn = None
        k_model = getattr(cfg, "num_layers", manifest["num_layers"])
        if k_model != manifest["num_layers"]:
            raise UserError(
                f"the model predicts K = {k_model} layers but {data_root} has K = "
                f"{manifest['num_layers']}; evaluate it on a dataset with the same K"
            )
        predictor.eval()
    elif callable(predictor):
        label = name or getattr(predictor, "__name__", type(predictor).__name__)
        depth_fn = predictor
    else:
        raise TypeError(f"cannot evaluate a {type(predictor).__name__}")
    label = name or label

    rows: list[dict[str, Any]] = []
    img_depth: list[dict[str, dict[str, float]]] = []
    img_layer: dict[int, list[dict[str, dict[str, float]]]] = {}
    img_cons: list[dict[str, dict[str, float]]] = []
    img_gt_cons: list[dict[str, dict[str, float]]] = []
    img_boundary: list[dict[str, float]] = []
    layer_boundary: dict[int, list[dict[str, float]]] = {}
    bar = tqdm(total=len(ids), desc=f"evaluate {label} ({split})", unit="img", disable=not progress)
    for chunk in _batches(ids, batch_size if is_model else 1):
        samples = [read_sample(data_root, sid, manifest) for sid in chunk]
        if is_model:
            preds = _predict_model_batch(predictor, samples, observed, align_to_gt)
            if fill is not None:
                preds = [(fill.fill(p, s), True) for (p, _), s in zip(preds, samples)]
        else:
            preds = [(np.asarray(depth_fn(s), np.float32), False) for s in samples]  # type: ignore[misc]
        for sid, sample, (pred, is_disparity) in zip(chunk, samples, preds):
            if pred.shape != sample.depth.shape:
                raise ValueError(
                    f"prediction {pred.shape} for {sid}, expected {sample.depth.shape}"
                )
            layer_rows, cons, gt_cons = score_sample(
                sample,
                pred,
                is_disparity=is_disparity,
                gt_pair_metrics=_cached_gt_pairs(data_root, sid, sample),
            )
            for r in layer_rows:
                rows.append({"id": sid, **r})
                per_region = {
                    reg: {key: r[f"{reg}_{key}"] for key in DEPTH_KEYS} for reg in DEPTH_REGIONS
                }
                img_layer.setdefault(r["layer"], []).append(per_region)
                layer_boundary.setdefault(r["layer"], []).append(
                    {key: r[key] for key in BOUNDARY_KEYS}
                )
            img_boundary.append(
                {key: _nanmean([r[key] for r in layer_rows]) for key in BOUNDARY_KEYS}
            )
            img_depth.append(
                {
                    reg: {
                        key: _nanmean([r[f"{reg}_{key}"] for r in layer_rows]) for key in DEPTH_KEYS
                    }
                    for reg in DEPTH_REGIONS
                }
            )
            img_cons.append(cons)
            img_gt_cons.append(gt_cons)
        bar.update(len(chunk))
    bar.close()

    depth, depth_nan = _summarise(img_depth)
    cons, cons_nan = _summarise(img_cons)
    gt_cons, gt_cons_nan = _summarise(img_gt_cons)
    boundary, boundary_nan = _summarise_flat(img_boundary)
    result: dict[str, Any] = {
        "predictor": label,
        "data": str(data_root),
        "split": split,
        "num_images": len(ids),
        "num_layers": manifest["num_layers"],
        "observed": None if observed is None else observed.spec,
        "aligned_to_gt": bool(
            (is_model or fill is not None)
            and (align_to_gt or observed is None or not observed.metric)
        ),
        "depth": depth,
        "depth_per_layer": {str(k): _summarise(v)[0] for k, v in sorted(img_layer.items())},
        "consistency": cons,
        "gt_consistency": gt_cons,
        "boundary": boundary,
        "boundary_per_layer": {
            str(k): _summarise_flat(v)[0] for k, v in sorted(layer_boundary.items())
        },
        "nan_counts": {
            "depth": depth_nan,
            "consistency": cons_nan,
            "gt_consistency": gt_cons_nan,
            "boundary": boundary_nan,
        },
        "protocol": (
            "models: per layer LS scale/shift in inverse depth vs 1/gt on all valid pixels, "
            "depth clipped to [1e-3, 100] m; references: metric depth as is; regions scored "
            "without further alignment; mean over "
            "layers per image, then over images (NaN skipped); consistency on predicted depths "
            "over pixels valid in both GT layers"
        ),
    }
    result = _json_safe(result)
    if out_json is not None:
        atomic_write_json(Path(out_json), result)
    if out_csv is not None:
        write_csv(Path(out_csv), rows)
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
def resolve_weights(run: str | Path | None, weights: str | Path | None) -> Path:
    """The weights file of a run directory (RUN/model.safetensors) or the file given."""
    if run is not None:
        run = Path(run)
        if not run.is_dir():
            raise UserError(f"{run}: no such run directory")
        path = run / WEIGHTS_NAME
        if not path.is_file():
            raise UserError(
                f"{run}: no {WEIGHTS_NAME} in this run directory; finish or resume training "
                "('amodal-depth train ... --resume'), or pass --weights FILE"
            )
        return path
    assert weights is not None
    path = Path(weights)
    if not path.is_file():
        raise UserError(f"{path}: no such weights file")
    return path


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
    fit_data: the dataset whose train split the `mean_depth` map is fitted on (default
    `data`; an evaluation-only set such as the shifted one has no train split).
    observed: `gt`, `gt-corrupted` or `model:WEIGHTS` (observations.py)."""
    from amodal_depth.observations import ObservedReference, parse_observed

    if align_to_gt and observed is None:
        raise UserError("--align-to-gt only changes the scoring of an --observed depth")
    model_ref = reference in MODEL_REFERENCES
    if model_ref:
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
    manifest = read_manifest(data)
    split_ids(manifest, split, data)  # fail on a missing split before loading anything
    source = parse_observed(observed)
    if source is not None and reference in ("mean_depth", *MODEL_REFERENCES):
        raise UserError(f"--reference {reference} does not read an observed depth")
    out = Path(out)
    csv_out = Path(csv_path) if csv_path is not None else out.with_suffix(".csv")
    if fit_data is not None and reference != "mean_depth":
        raise UserError("--fit-data is only for --reference mean_depth")
    if reference == "mean_depth" and fit_data is not None:
        predictor: Any = MeanDepthMap.fit(Path(fit_data), "train").predict
        label = f"mean_depth(fit on {fit_data})"
    elif reference is not None and source is not None:
        label = f"{reference}(observed {source.spec})"
        predictor = ObservedReference(_reference(reference, Path(data)), source, label)
    elif reference is not None and not model_ref:
        predictor = reference
        label = reference
    else:
        path = resolve_weights(run, weights)
        from amodal_depth.models.checkpoints import load_model

        try:
            predictor = load_model(path)
        except UserError:
            raise
        except Exception as e:  # a corrupt or foreign file: say so in one line
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise UserError(f"{path}: cannot load model weights ({msg})") from e
        k_model = predictor.config.num_layers
        if k_model != manifest["num_layers"]:
            raise UserError(
                f"{path}: the model predicts K = {k_model} layers but {data} has K = "
                f"{manifest['num_layers']}; evaluate on a dataset with the same K"
            )
        label = f"{predictor.config.variant}:{path}"
        if model_ref:
            predictor = PredictedObjectFill(predictor)
            label = f"{reference}:{label}"
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
