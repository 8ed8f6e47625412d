"""`complete_masks`: amodal masks and the occlusion order from a photo's visible masks."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from amodal_depth.completion.infer import complete_with_model
from amodal_depth.completion.model import CompletionUNet, load_completion
from amodal_depth.completion.order import occlusion_order
from amodal_depth.errors import UserError

WEIGHTS_ENV = "AMODAL_DEPTH_COMPLETION_WEIGHTS"


def default_weights() -> Path:
    """$AMODAL_DEPTH_COMPLETION_WEIGHTS, else weights/completion.safetensors of the source
    checkout (the committed RGB UNet). UserError when neither exists."""
    from amodal_depth.runs import committed_weights

    hint = "pass weights=PATH (a RUN/model.safetensors of 'amodal-depth completion train')"
    return committed_weights("completion.safetensors", WEIGHTS_ENV, "completion weights", hint)
    path = Path(__file__).resolve().parents[3] / "weights" / "completion.safetensors"
    if not path.is_file():
        raise UserError(
            f"no completion weights given and none at {path}; pass weights=PATH (a "
            f"RUN/model.safetensors of 'amodal-depth completion train') or set ${WEIGHTS_ENV}"
        )
    return path


@lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int) -> CompletionUNet:
    return load_completion(path)


def load_cached(weights: str | os.PathLike | None = None) -> CompletionUNet:
    """The completion network of `weights` (default_weights() when None), loaded once per
    file version."""
    path = Path(weights) if weights is not None else default_weights()
    if not path.is_file():
        raise UserError(f"completion weights {path} do not exist; pass an existing file")
    return _cached(str(path.resolve()), path.stat().st_mtime_ns)


def check_inputs(image: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image HxWx3 uint8 C-contiguous, visible [K,H,W] bool) or a one-line UserError."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise UserError(
            f"image must be an HxWx3 uint8 RGB array, got shape {image.shape} dtype "
            f"{image.dtype}; drop alpha and convert 16-bit images to 8 bits first"
        )
    visible = np.asarray(visible)
    if visible.ndim == 2:
        visible = visible[None]
    if visible.ndim != 3 or visible.shape[0] < 1:
        raise UserError(f"visible masks must be a [K,H,W] array, got shape {visible.shape}")
    if visible.shape[1:] != image.shape[:2]:
        raise UserError(
            f"visible masks are {visible.shape[2]}x{visible.shape[1]} but the image is "
            f"{image.shape[1]}x{image.shape[0]}; give masks of the image's size"
        )
    if visible.dtype != bool:
        values = np.unique(visible)
        if not (set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255}):
            odd = next(v for v in values.tolist() if v not in (0, 1, 255))
            raise UserError(
                f"visible masks must be binary (bool, 0/1 or 0/255), found the value {odd}; "
                "threshold them first (e.g. mask > 127)"
            )
        visible = visible > 0
    empty = [k + 1 for k in range(visible.shape[0]) if not visible[k].any()]
    if empty:
        raise UserError(
            f"visible mask {empty[0]} (1-based) is empty; drop that object or fix its mask"
        )
    overlap = visible.sum(axis=0) > 1
    if overlap.any():
        a, b = np.flatnonzero(visible[:, overlap].any(axis=1))[:2]
        raise UserError(
            f"visible masks {a + 1} and {b + 1} overlap on {int(overlap.sum())} pixels; a pixel "
            "is visible for at most one object, so fix the masks"
        )
    return np.ascontiguousarray(image), visible


def complete_masks(
    image: np.ndarray,
    visible: np.ndarray,
    weights: str | os.PathLike | None = None,
) -> tuple[np.ndarray, list[int]]:
    """Amodal masks and the front-to-back order of K objects from their visible masks.

    image: HxWx3 uint8 RGB; visible: [K,H,W] bool (or 0/1, 0/255) visible masks, one per
    object, in any order, non-empty and not overlapping; weights: a completion weights file
    (None: default_weights()). Returns (amodal [K,H,W] bool in the input's object order,
    order: 0-based object indices nearest first, see order.occlusion_order). Bad input
    raises a one-line UserError."""
    image, visible = check_inputs(image, visible)
    model = load_cached(weights)
    amodal = complete_with_model(model, image, visible)
    return amodal, occlusion_order(visible, amodal)
