"""Shared fixtures: physically consistent hand-made samples in the amodal-layers format.

`flat_sample()` builds a scene of flat rectangles at known depths in front of a slanted wall
(o_1 nearest, each o_k overlapping o_{k-1}) and derives every layer, mask and object depth
from those rectangles exactly as docs/data-format.md defines them, so `data verify` must
accept it and any edit to one array is a physics error the verifier should catch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from amodal_depth.data.format import (
    Camera,
    LayeredSample,
    format_id,
    make_manifest,
    write_manifest,
    write_sample,
)


def flat_sample(
    width: int = 32, height: int = 24, num_layers: int = 3, seed: int = 0
) -> LayeredSample:
    """K flat rectangles o_1 (nearest) ... o_K in front of a slanted wall; each o_k
    overlaps o_{k-1} so that o_2 ... o_K have a hidden part. Depths are whole millimetres,
    so the uint16 PNG round trip is exact."""
    rng = np.random.default_rng(seed)
    k_n, h, w = num_layers, height, width
    v, u = np.mgrid[0:h, 0:w]
    wall = np.round(4.0 + 0.03 * u + 0.02 * v, 3).astype(np.float32)
    amodal = np.zeros((k_n, h, w), bool)
    obj = np.zeros((k_n, h, w), np.float32)
    rw, rh = max(4, w // 3), max(4, h // 3)
    sx, sy = max(1, rw // 2), max(1, rh // 3)  # shift per object: half-overlapping
    x0 = int(rng.integers(0, max(1, w - rw - sx * (k_n - 1))))
    y0 = int(rng.integers(0, max(1, h - rh - sy * (k_n - 1))))
    for k in range(k_n):
        ys, xs = slice(y0 + sy * k, y0 + sy * k + rh), slice(x0 + sx * k, x0 + sx * k + rw)
        amodal[k][ys, xs] = True
        obj[k][ys, xs] = round(1.5 + 0.7 * k + float(rng.uniform(0, 0.2)), 3)
    depth = np.zeros((k_n, h, w), np.float32)
    layer_rgb = np.zeros((k_n, h, w, 3), np.uint8)
    base = rng.integers(40, 200, (h, w, 3), dtype=np.uint8)
    colours = rng.integers(0, 256, (k_n, 3), dtype=np.uint8)
    for k in range(k_n):  # layer k: o_1 .. o_{k-1} removed; the nearest remaining surface
        d, img = wall.copy(), base.copy()
        for j in range(k_n - 1, k - 1, -1):  # far to near, so the nearest ends on top
            closer = amodal[j] & (obj[j] < d)
            d = np.where(closer, obj[j], d)
            img[closer] = colours[j]
        depth[k], layer_rgb[k] = d, img
    visible = amodal & (obj == depth[0][None])
    hidden = [float((amodal[k] & ~visible[k]).sum() / amodal[k].sum()) for k in range(k_n)]
    meta = {
        "seed": seed,
        "objects": [{"category": "box", "hidden_fraction": f} for f in hidden],
        "occlusion_ratios": hidden,
    }
    cam = Camera.from_fov(w, h, 60.0)
    return LayeredSample(layer_rgb[0].copy(), depth, layer_rgb, visible, amodal, obj, cam, meta)


def write_flat_dataset(
    root: Path,
    num: int = 4,
    width: int = 32,
    height: int = 24,
    num_layers: int = 3,
    splits: dict[str, list[int]] | None = None,
) -> Path:
    """A complete dataset of `num` flat samples at ROOT (default splits: all but the last
    two in train, then one in val and one in test)."""
    ids = [format_id(i) for i in range(num)]
    for i, sid in enumerate(ids):
        write_sample(root, sid, flat_sample(width, height, num_layers, seed=i))
    if splits is None:
        named = {"train": ids[: max(1, num - 2)], "val": ids[num - 2 : num - 1], "test": ids[-1:]}
    else:
        named = {name: [ids[i] for i in idx] for name, idx in splits.items()}
    gen = {"seed": 0, "hidden_min": 0.0, "hidden_max": 0.99, "kind": "flat test scenes"}
    write_manifest(root, make_manifest(num_layers, width, height, named, gen))
    return root


def write_predict_inputs(
    d: Path, width: int, height: int, layer_counts: tuple[int, ...] = (3,)
) -> dict[str, Path | list[Path]]:
    """In folder d: a flat sample's rgb.png, its amodal masks m1..m3.png (0/255) and the
    weights of a tiny random quick-preset `ade` model per K in layer_counts (k<K>.safetensors)."""
    import cv2
    import torch

    from amodal_depth.config import preset
    from amodal_depth.models import build_model
    from amodal_depth.models.checkpoints import save_model

    s = flat_sample(width, height, 3, seed=1)
    cv2.imwrite(str(d / "rgb.png"), cv2.cvtColor(s.rgb, cv2.COLOR_RGB2BGR))
    masks = []
    for k in range(3):
        masks.append(d / f"m{k + 1}.png")
        cv2.imwrite(str(masks[-1]), s.amodal[k].astype(np.uint8) * 255)
    torch.manual_seed(0)
    for k_n in layer_counts:
        cfg = preset("quick", "ade").model
        cfg.num_layers = k_n
        save_model(build_model(cfg), d / f"k{k_n}.safetensors")
    return {"image": d / "rgb.png", "masks": masks, "weights": d / "k3.safetensors", "dir": d}


@pytest.fixture
def make_flat_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Factory: make_flat_dataset(num=4, width=32, height=24, num_layers=3, splits=None,
    name='layers') -> root of a fresh consistent dataset under tmp_path."""

    def make(name: str = "layers", **kw) -> Path:
        return write_flat_dataset(tmp_path / name, **kw)

    return make
