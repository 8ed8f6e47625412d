"""`amodal-depth predict`: one image and the masks of its K objects -> K layer depths.

Masks (masks.py): visible masks by default, completed to amodal masks and put in occlusion
order by the completion model (completion/); or amodal masks nearest first
(`--masks-kind amodal`); one PNG per object or one instance-id PNG; `--order` overrides.

What is written to OUT (docs/predict.md):
  disparity.npy   float32 [K,H,W]: relative inverse depth of layer k = 1..K (larger = nearer),
                  at the image's resolution. Like Depth Anything V2, the model knows depth only
                  up to an unknown scale and shift in inverse depth: depth = 1/(s*d + t).
                  With --depth it is the inverse of depth.npy (or, for a disparity
                  observation, the layers in the observation's units).
  depth.npy       (with --depth of kind depth) float32 [K,H,W] layer depths in the
                  observation's units (metres for a metric depth divided by --depth-scale).
  depth_<k>.png   (with --depth of kind depth) uint16 millimetres, 0 = none (like the dataset).
  amodal_<k>.png  the amodal masks used, front to back (0/255): completed ones for visible masks.
  visible_<k>.png (visible masks given) the visible masks in the same front-to-back order.
  layer_<k>.png   layer k colourised (turbo: red = near), one colour range for all layers.
  overview.png    the image with the K masks outlined, then the K layers side by side.
  predict.json    what was run (image, masks, mask kind, order and where it came from,
                  weights, variant, sizes, alignment, observation and units) and the file
                  list; written last, so its presence means the rest is complete.

Layer alignment. The SSI loss trains each layer of the iterative variants on its own scale
and shift, so their raw outputs do not share one. Where no object is removed between layer 1
and layer k (outside the amodal masks of o_1..o_{k-1}) the true layers are equal, so by
default every layer k >= 2 is fitted to layer 1 there by least squares (s_k, t_k); after that
one (s, t) turns all K layers into depth, which is what a fused reconstruction needs.
ade_multibatch's raw layers already nearly share layer 1's scale, so there the fit changes
little (measured in docs/predict.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from amodal_depth.errors import UserError
from amodal_depth.fileio import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    check_output_dir,
)
from amodal_depth.masks import prepare_masks, read_mask, read_masks  # noqa: F401 - re-exported

WEIGHTS_ENV = "AMODAL_DEPTH_WEIGHTS"
"""Environment variable naming the weights `predict` uses when --weights is not given."""

MIN_STATIC_PIXELS = 64
"""Fewer static pixels than this leave a layer unaligned (the fit would be noise)."""


RGBD_WEIGHTS_NAME = "model_rgbd.safetensors"
"""The committed weights that also read an observed depth (used when a depth is given)."""


def default_weights(observed: bool = False) -> Path:
    """$AMODAL_DEPTH_WEIGHTS, else weights/model.safetensors of the source checkout (the
    committed model); with an observed depth (observed=True), weights/model_rgbd.safetensors
    first when it exists (the model that reads the depth). Raises UserError when none
    exists."""
    import os

    from amodal_depth.runs import committed_weights

    rgbd = Path(__file__).resolve().parents[2] / "weights" / RGBD_WEIGHTS_NAME
    if observed and not os.environ.get(WEIGHTS_ENV) and rgbd.is_file():
        return rgbd
    hint = "pass --weights FILE (a trained RUN/model.safetensors)"
    return committed_weights("model.safetensors", WEIGHTS_ENV, "weights", hint)


# ------------------------------------------------------------------------------ reading
def _imread(path: str | Path, flag: int, what: str, hint: str) -> np.ndarray:
    """cv2.imread with a one-line UserError for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such {what} file")
    img = cv2.imread(str(path), flag)
    if img is None:
        raise UserError(f"{path}: not an image OpenCV can read{hint}")
    return img


def read_image(path: str | Path) -> np.ndarray:
    """HxWx3 uint8 RGB from any image file OpenCV reads (alpha dropped, 16 bit scaled)."""
    img = _imread(path, cv2.IMREAD_COLOR, "image", " (PNG, JPEG, ...)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


# ------------------------------------------------------------------------------ alignment
def align_layers(disp: np.ndarray, amodal: np.ndarray) -> tuple[np.ndarray, list[list[float]]]:
    """Fit each layer k >= 2 to layer 1 on the pixels outside the amodal masks of
    o_1..o_{k-1}, by least squares in inverse depth.

    disp [K,H,W], amodal [K,H,W] bool front to back -> (aligned [K,H,W] float32,
    [[s_k, t_k] for k = 1..K]). Layer 1 keeps (1, 0); a layer with fewer than
    MIN_STATIC_PIXELS static pixels is left as it is."""
    from amodal_depth.metrics import scale_shift

    disp = np.asarray(disp, np.float32)
    amodal = np.asarray(amodal, bool)
    if disp.ndim != 3 or amodal.shape != disp.shape:
        raise UserError(
            f"disparity and masks must both be [K,H,W], got {disp.shape} and {amodal.shape}"
        )
    out = disp.copy()
    fits = [[1.0, 0.0]]
    removed = np.zeros(disp.shape[1:], bool)
    ref = disp[0].astype(np.float64)
    for k in range(1, disp.shape[0]):
        removed |= amodal[k - 1]
        static = ~removed & np.isfinite(disp[k]) & np.isfinite(ref)
        if static.sum() < MIN_STATIC_PIXELS:
            fits.append([1.0, 0.0])
            continue
        # scale_shift ignores target values <= 0: here that is layer 1 at "infinity" (0).
        s, t = scale_shift(disp[k], ref, static)
        out[k] = (s * disp[k].astype(np.float64) + t).astype(np.float32)
        fits.append([s, t])
    return out, fits


# ------------------------------------------------------------------------------ pictures
def colourise(disp: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """HxW relative inverse depth -> HxWx3 uint8 RGB, turbo (red = near) over [lo, hi]."""
    import matplotlib

    x = (np.asarray(disp, np.float64) - lo) / max(hi - lo, 1e-12)
    rgba = matplotlib.colormaps["turbo"](np.clip(np.nan_to_num(x), 0.0, 1.0))
    return (rgba[..., :3] * 255.0 + 0.5).astype(np.uint8)


def colour_range(disp: np.ndarray) -> tuple[float, float]:
    """One range for every layer: the 1st..99th percentile of all finite values."""
    v = disp[np.isfinite(disp)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(v, [1.0, 99.0])
    return float(lo), float(max(hi, lo + 1e-6))


MASK_COLOURS = ((255, 80, 60), (60, 200, 255), (255, 220, 40), (160, 255, 90), (230, 90, 255))


def outline_masks(image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The image with the outline of each amodal mask drawn in its own colour."""
    out = image.copy()
    for i, m in enumerate(masks):
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, MASK_COLOURS[i % len(MASK_COLOURS)], 1)
    return out


def overview_png(image: np.ndarray, masks: np.ndarray, disp: np.ndarray, title: str) -> bytes:
    """PNG bytes: the image with the mask outlines, then layer 1..K."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k_n = disp.shape[0]
    h, w = image.shape[:2]
    lo, hi = colour_range(disp)
    fig, axes = plt.subplots(
        1, k_n + 1, figsize=((k_n + 1) * 3.0, 3.0 * h / w + 0.7), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    axes[0, 0].imshow(outline_masks(image, masks))
    axes[0, 0].set_title("input, amodal masks o_1..o_K", fontsize=8)
    for k in range(k_n):
        axes[0, k + 1].imshow(colourise(disp[k], lo, hi))
        removed = "" if k == 0 else f" (o_1..o_{k} removed)" if k > 1 else " (o_1 removed)"
        axes[0, k + 1].set_title(f"layer {k + 1}{removed}", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise UserError(f"{path}: could not encode the PNG")
    atomic_write_bytes(path, buf.tobytes())


# ------------------------------------------------------------------------------ predict
@dataclass
class Prediction:
    """The result of `predict`: relative inverse depth per layer and how it was made."""

    disparity: np.ndarray  # [K,H,W] float32, aligned to layer 1 when `aligned`
    masks: np.ndarray  # [K,H,W] bool, front to back
    fits: list[list[float]]  # (s_k, t_k) applied to layer k (identity when not aligned)
    aligned: bool
    info: dict[str, Any] = field(default_factory=dict)
    depth: np.ndarray | None = None  # [K,H,W] float32 in the observation's units, if given


def predict(
    image: np.ndarray,
    masks: np.ndarray,
    model: Any,
    align: bool = True,
    input_size: int | tuple[int, int] | None = None,
    depth: np.ndarray | None = None,
    depth_kind: str = "depth",
) -> Prediction:
    """K layer depths of one image: image HxWx3 uint8 RGB, masks [K,H,W] bool (amodal masks
    of o_1..o_K, front to back), `model` an AmodalDepthModel (e.g. from
    models.checkpoints.load_model). input_size: see AmodalDepthModel.predict_layers.
    depth: an observed HxW depth (or disparity, depth_kind) of the visible scene; the layers
    then come in its units, each fitted to it (models/observation.py), so `align` is moot."""
    t0 = time.perf_counter()
    out_depth = None
    if depth is None:
        disp = model.predict_layers(image, masks, input_size=input_size)
    else:
        layers = model.predict_layers(
            image, masks, depth=depth, input_size=input_size, depth_kind=depth_kind
        )
        if depth_kind == "depth":
            out_depth, disp = layers, (1.0 / layers).astype(np.float32)
        else:
            disp = layers
        align = False
    seconds = time.perf_counter() - t0
    if align:
        disp, fits = align_layers(disp, masks)
    else:
        fits = [[1.0, 0.0] for _ in range(disp.shape[0])]
    info = {"seconds": round(seconds, 4), "variant": model.config.variant}
    return Prediction(disp, np.asarray(masks, bool), fits, align, info, out_depth)


def _write_gray_png(path: Path, values: np.ndarray) -> None:
    """A one-channel uint8 (masks, 0/255) or uint16 (millimetres) PNG, written atomically."""
    ok, buf = cv2.imencode(".png", values)
    if not ok:  # pragma: no cover - OpenCV always encodes these
        raise UserError(f"{path}: could not encode the PNG")
    atomic_write_bytes(path, buf.tobytes())


def _write_uint16_mm(path: Path, depth_m: np.ndarray) -> None:
    mm = np.where(np.isfinite(depth_m) & (depth_m > 0), np.rint(depth_m * 1000.0), 0)
    _write_gray_png(path, np.clip(mm, 0, 65535).astype(np.uint16))


STALE_PATTERNS = ("layer_*.png", "depth_*.png", "amodal_*.png", "visible_*.png", "depth.npy")


def _output_note(metric: bool, observed: bool) -> str:
    if metric:
        return "depth.npy: layer depths in the observation's units; disparity.npy = 1/depth"
    if observed:
        return "disparity.npy: layers in the observation's disparity units"
    return (
        "relative inverse depth (larger = nearer); depth = 1/(s*d + t) for an unknown scale s "
        "and shift t"
    )


def _write_outputs(
    out: Path, image: np.ndarray, pred: Prediction, title: str, visible: np.ndarray | None
) -> list[str]:
    """Every result file but predict.json (visible: the visible masks in layer order, when
    given); stale ones from an earlier run are removed."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "predict.json").unlink(missing_ok=True)  # present only when the set is complete
    for pattern in STALE_PATTERNS:
        for old in out.glob(pattern):
            old.unlink()
    with atomic_path(out / "disparity.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, pred.disparity.astype(np.float32))
    files = ["disparity.npy"]
    if pred.depth is not None:
        with atomic_path(out / "depth.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, pred.depth.astype(np.float32))
        files.append("depth.npy")
    lo, hi = colour_range(pred.disparity)
    for k in range(pred.disparity.shape[0]):
        _write_png(out / f"layer_{k + 1}.png", colourise(pred.disparity[k], lo, hi))
        _write_gray_png(out / f"amodal_{k + 1}.png", pred.masks[k].astype(np.uint8) * 255)
        files += [f"layer_{k + 1}.png", f"amodal_{k + 1}.png"]
        if pred.depth is not None:
            _write_uint16_mm(out / f"depth_{k + 1}.png", pred.depth[k])
            files.append(f"depth_{k + 1}.png")
    for k, mask in enumerate(visible if visible is not None else []):
        _write_gray_png(out / f"visible_{k + 1}.png", mask.astype(np.uint8) * 255)
        files.append(f"visible_{k + 1}.png")
    atomic_write_bytes(out / "overview.png", overview_png(image, pred.masks, pred.disparity, title))
    return [*files, "overview.png"]


def predict_files(
    image_path: str | Path,
    mask_paths: list[str | Path],
    out_dir: str | Path,
    weights: str | Path | None = None,
    align: bool = True,
    input_size: int | tuple[int, int] | None = None,
    device: str = "cpu",
    depth_path: str | Path | None = None,
    depth_scale: float | None = None,
    depth_kind: str = "depth",
    masks_kind: str = "visible",
    order: str | list[int] | None = None,
    completion_weights: str | Path | None = None,
) -> Prediction:
    """What `amodal-depth predict` does: read, check, complete the masks (visible ones),
    predict, write OUT (module docstring). order: 1-based mask numbers nearest first."""
    from amodal_depth.masks import MASK_KINDS, parse_order
    from amodal_depth.models.observation import DEPTH_KINDS, check_observation
    from amodal_depth.observations import read_depth

    out = Path(out_dir)
    check_output_dir(out)
    image = read_image(image_path)
    h, w = image.shape[:2]
    if masks_kind not in MASK_KINDS:
        raise UserError(f"--masks-kind must be one of {', '.join(MASK_KINDS)}")
    user_masks = read_masks(list(mask_paths), (w, h))
    order_idx = parse_order(order, len(user_masks))
    depth = None
    if depth_kind not in DEPTH_KINDS:
        raise UserError(f"--depth-kind must be one of {', '.join(DEPTH_KINDS)}")
    if depth_path is not None:
        depth = read_depth(depth_path, depth_scale)
        check_observation(depth, h, w, depth_kind)
    elif depth_scale is not None:
        raise UserError("--depth-scale needs --depth")
    wpath = Path(weights) if weights is not None else default_weights(depth is not None)

    from amodal_depth.models.checkpoints import load_model
    from amodal_depth.models.device import resolve_device

    model = load_model(wpath, device=resolve_device(device))  # bad files: one-line UserError
    k_model = model.config.num_layers
    if len(user_masks) != k_model:
        raise UserError(
            f"{wpath} predicts K = {k_model} layers, so it needs {k_model} masks (one per "
            f"object); got {len(user_masks)}"
        )
    prepared = prepare_masks(image, user_masks, masks_kind, order_idx, completion_weights)
    pred = predict(image, prepared.amodal, model, align, input_size, depth, depth_kind)
    title = f"{Path(image_path).name}: {model.config.variant} ({wpath.name})"
    files = _write_outputs(out, image, pred, title, prepared.visible)
    metric = depth is not None and depth_kind == "depth"
    pred.info.update(
        {
            "image": str(image_path),
            "masks": [str(p) for p in mask_paths],
            **prepared.info,
            "order": [i + 1 for i in prepared.order],
            "weights": str(wpath),
            "observed_depth_input": bool(model.config.observed_depth),
            "width": w,
            "height": h,
            "num_layers": k_model,
            "depth": None if depth_path is None else str(depth_path),
            "depth_kind": None if depth_path is None else depth_kind,
            "metric": metric,
            "output": _output_note(metric, depth_path is not None),
            "aligned_to_layer_1": pred.aligned,
            "layer_fits": pred.fits,
            "files": files,
        }
    )
    atomic_write_json(out / "predict.json", pred.info)
    return pred
