"""Object masks as users give them, turned into what the depth model needs.

Users give one mask per object (separate PNGs) or one instance-id PNG (0 = no object,
each other value one object, in increasing id order), and usually *visible* masks (what a
segmenter or a hand gives). The layered-depth model needs the *amodal* masks (whole objects,
hidden parts included) ordered front to back. `prepare_masks` does that step: amodal mask
completion and the occlusion order (completion/), or the user's amodal masks and order as
given.

Rules (docs/predict.md): a separate mask PNG is thresholded at half its range (any channel);
a mask with more than two distinct values is thresholded too, with a warning on stderr. Bad
input is a one-line UserError: a mask of another size, an empty mask, two identical masks,
overlapping visible masks, an order that is not a permutation of 1..K.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from amodal_depth.errors import UserError

MASK_KINDS = ("visible", "amodal")


def _imread_mask(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such mask file")
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise UserError(f"{path}: not an image OpenCV can read; masks are 0/255 PNGs")
    return m


def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """HxW bool: pixels brighter than half the file's range (any channel; 0/255 PNGs as in
    the dataset format). `size` = (width, height) the mask must have."""
    m = _imread_mask(path)
    if m.ndim == 3:
        m = m[..., :3].max(axis=2) if m.shape[2] >= 3 else m[..., 0]
    half = 0.5 if m.dtype.kind == "f" else np.iinfo(m.dtype).max / 2
    if len(np.unique(m)) > 2:
        print(
            f"amodal-depth: warning: {path} is not a binary mask; thresholded at {half:g}",
            file=sys.stderr,
        )
    mask = m > half
    if size is not None and (mask.shape[1], mask.shape[0]) != size:
        raise UserError(
            f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
            f"{size[0]}x{size[1]}; masks must have the image's size"
        )
    if not mask.any():
        raise UserError(f"{path}: mask is empty (no pixel above {half:g}); masks are 0/255")
    if mask.all():
        print(
            f"amodal-depth: warning: {path} covers the whole image; the layers behind that "
            "object have no pixel of the visible scene to take their scale from",
            file=sys.stderr,
        )
    return mask


def read_instance_masks(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """[N,H,W] bool from one instance-id PNG (single channel, 8 or 16 bit): 0 = no object,
    every other value is one object, ordered by increasing id."""
    ids = _imread_mask(path)
    if ids.ndim != 2:
        raise UserError(
            f"{path}: an instance-id PNG has one channel (0 = none, 1..N = objects); this one "
            f"has {ids.shape[2]} — give one mask PNG per object instead"
        )
    if size is not None and (ids.shape[1], ids.shape[0]) != size:
        raise UserError(
            f"{path}: instance ids are {ids.shape[1]}x{ids.shape[0]} but the image is "
            f"{size[0]}x{size[1]}"
        )
    values = [int(v) for v in np.unique(ids) if v != 0]
    if not values:
        raise UserError(f"{path}: no object in the instance-id PNG (every pixel is 0)")
    return np.stack([ids == v for v in values])


def read_masks(paths: list[str | Path], size: tuple[int, int]) -> np.ndarray:
    """One PNG per object, or a single instance-id PNG -> [N,H,W] bool."""
    if not paths:
        raise UserError("give the mask of every object with --masks M1.png M2.png ...")
    if len(paths) == 1:
        return read_instance_masks(paths[0], size)
    return np.stack([read_mask(p, size) for p in paths])


def parse_order(text: str | list[int] | None, n: int) -> list[int] | None:
    """'2,1,3' (1-based mask numbers, nearest first) -> [1, 0, 2]; None stays None."""
    if text is None:
        return None
    try:
        items = text.replace(",", " ").split() if isinstance(text, str) else text
        order = [int(v) for v in items]
    except ValueError:
        raise UserError(f"--order must be mask numbers like 2,1,3, got {text!r}") from None
    if sorted(order) != list(range(1, n + 1)):
        raise UserError(
            f"--order {text} is not a permutation of 1..{n} (each mask number once, nearest first)"
        )
    return [v - 1 for v in order]


def check_distinct(masks: np.ndarray) -> None:
    """Two identical masks are one object given twice (or a copy-paste slip)."""
    flat = masks.reshape(len(masks), -1)
    for a in range(len(masks)):
        for b in range(a + 1, len(masks)):
            if np.array_equal(flat[a], flat[b]):
                raise UserError(f"masks {a + 1} and {b + 1} are identical; give each object once")


@dataclass
class PreparedMasks:
    """Amodal masks front to back, and how they were obtained."""

    amodal: np.ndarray  # [K,H,W] bool, nearest first
    visible: np.ndarray | None  # [K,H,W] bool in the same order, when visible masks were given
    order: list[int]  # 0-based input mask index of each layer's object, nearest first
    info: dict[str, Any] = field(default_factory=dict)


def prepare_masks(
    image: np.ndarray,
    masks: np.ndarray,
    kind: str = "visible",
    order: list[int] | None = None,
    completion_weights: str | Path | None = None,
) -> PreparedMasks:
    """User masks [N,H,W] -> amodal masks front to back (module docstring).

    kind "visible": amodal masks completed by the completion model, order predicted from
    them unless `order` (0-based, nearest first) is given. kind "amodal": the masks as they
    are, nearest first, or in `order`."""
    if kind not in MASK_KINDS:
        raise UserError(f"--masks-kind must be one of {', '.join(MASK_KINDS)}, got {kind!r}")
    masks = np.asarray(masks, bool)
    check_distinct(masks)
    if order is not None and sorted(order) != list(range(len(masks))):
        raise UserError(f"order {order} is not a permutation of 0..{len(masks) - 1}")
    if kind == "amodal":
        info = {"masks_kind": kind, "order_source": "as listed" if order is None else "given"}
        order = list(range(len(masks))) if order is None else order
        return PreparedMasks(masks[order], None, order, info)
    from amodal_depth.completion import complete_masks
    from amodal_depth.completion.api import default_weights as completion_default

    weights = completion_weights if completion_weights is not None else completion_default()
    amodal, predicted = complete_masks(image, masks, weights)
    source = "predicted" if order is None else "given"
    order = predicted if order is None else order
    info = {"masks_kind": kind, "order_source": source, "completion_weights": str(weights)}
    return PreparedMasks(amodal[order], masks[order], order, info)
