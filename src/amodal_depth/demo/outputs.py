"""The files of one demo request: colourised layers, mask pictures, PLY/GLB downloads and the
two GLBs of the 3D view (layered, and visible-only = layer 1).

The 3D view shows a surface rather than bare points: a browser draws a glTF point as one
pixel, so a 224x168 image's cloud looks like dust. Each layer's kept pixels (the fusion rule
of reconstruct.fuse_layers, the very points of points.ply) are joined to their grid
neighbours into triangles, except across depth edges (neighbours more than EDGE_RATIO apart
in depth), with an unlit, double-sided material so the colours are the photo's. The
downloads hold the full cloud (points.ply, scene.glb) as `amodal-depth reconstruct` writes
them.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

from amodal_depth.errors import UserError

EDGE_RATIO = 1.06
"""Grid neighbours whose depths differ by more than this factor are not joined (a depth edge)."""
MAX_VIEW_POINTS = 400_000
"""The 3D view keeps at most this many points (the downloads keep all)."""


@dataclass
class DemoResult:
    """What the page shows: (path, caption) pictures, the view GLBs, the download files."""

    out_dir: Path
    layer_images: list[tuple[str, str]]
    mask_images: list[tuple[str, str]]
    view_layered: Path
    view_visible: Path
    downloads: list[Path]
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines of Markdown: weights, masks, units, camera, points, timings."""
        i = self.info
        per_layer = ", ".join(f"layer {k + 1}: {n:,}" for k, n in enumerate(i["points_per_layer"]))
        units = (
            "metres (fitted to the observed depth)"
            if i["units"] == "metres"
            else "relative inverse depth, turned into metres by the default depth range"
        )
        masks = (
            f"visible masks completed by `{Path(i['completion_weights']).name}`, order "
            f"{i['order_source']}"
            if i["masks_kind"] == "visible"
            else f"amodal masks, order {i['order_source']}"
        )
        s = i["seconds"]
        return "\n".join(
            [
                f"**{i['points']:,} points** ({per_layer}); weights `{i['weights']}` "
                f"({i['variant']}); {masks}: objects nearest first = {i['order']}.",
                f"Depth units: {units}; camera hfov {i['hfov_deg']:.1f}°. Colours: one range "
                "for all layers, red = near.",
                f"Time: masks {s['masks']} s, model {s['model']} s, fusion {s['fusion']} s, "
                f"total {s.get('total', '?')} s.",
            ]
        )


# ------------------------------------------------------------------------------ pictures
def _png(path: Path, rgb: np.ndarray) -> str:
    if not cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)):
        raise UserError(f"{path}: could not write the PNG")
    return str(path)


def layer_pictures(out: Path, disp: np.ndarray, units: str) -> list[tuple[str, str]]:
    """layer_<k>.png (turbo, red = near, one range for all layers) with captions."""
    from amodal_depth.predict import colour_range, colourise

    lo, hi = colour_range(disp)
    items = []
    for k in range(disp.shape[0]):
        what = (
            "the visible scene" if k == 0 else ("o_1 removed" if k == 1 else f"o_1..o_{k} removed")
        )
        caption = f"layer {k + 1}: {what}"
        if units == "metres":
            d = 1.0 / np.clip(disp[k][np.isfinite(disp[k]) & (disp[k] > 0)], 1e-6, None)
            if d.size:
                caption += f" ({np.percentile(d, 2):.1f}-{np.percentile(d, 98):.1f} m)"
        items.append((_png(out / f"layer_{k + 1}.png", colourise(disp[k], lo, hi)), caption))
    return items


def mask_pictures(out: Path, image: np.ndarray, prepared: Any) -> list[tuple[str, str]]:
    """The amodal masks drawn on the image (all outlined, then one by one: the hidden part
    light, the visible part strong when visible masks were given) and amodal_<k>.png."""
    from amodal_depth.predict import MASK_COLOURS, outline_masks

    amodal = prepared.amodal
    items = [(_png(out / "masks_all.png", outline_masks(image, amodal)), "all, nearest first")]
    source = "completed" if prepared.visible is not None else "given"
    for k in range(len(amodal)):
        colour = np.array(MASK_COLOURS[k % len(MASK_COLOURS)], np.float32)
        pic = image.astype(np.float32) * 0.45
        pic[amodal[k]] = 0.35 * image[amodal[k]] + 0.65 * colour
        if prepared.visible is not None:
            pic[prepared.visible[k]] = 0.25 * image[prepared.visible[k]] + 0.75 * colour
        pic = outline_masks(np.clip(pic, 0, 255).astype(np.uint8), amodal[k : k + 1])
        name = "nearest" if k == 0 else "farthest" if k == len(amodal) - 1 else "middle"
        items.append((_png(out / f"mask_{k + 1}.png", pic), f"o_{k + 1} ({name}), {source}"))
        cv2.imwrite(str(out / f"amodal_{k + 1}.png"), amodal[k].astype(np.uint8) * 255)
    return items


# ------------------------------------------------------------------------------ 3D view
def grid_triangles(cloud: Any) -> np.ndarray:
    """[T,3] vertex indices joining each layer's points to their pixel-grid neighbours
    (2 triangles per 2x2 block whose corners exist), not across depth edges (EDGE_RATIO)."""
    tris = []
    for k in np.unique(cloud.layer):
        idx = np.flatnonzero(cloud.layer == k)
        u, v = cloud.pixels[idx, 0], cloud.pixels[idx, 1]
        h, w = int(v.max()) + 2, int(u.max()) + 2
        grid = np.full((h, w), -1, np.int64)
        grid[v, u] = idx
        a, b, c, d = grid[:-1, :-1], grid[:-1, 1:], grid[1:, :-1], grid[1:, 1:]
        z = cloud.points[:, 2]
        for tri in ((a, c, b), (b, c, d)):  # counter-clockwise as the camera sees it
            t = np.stack([x.ravel() for x in tri], 1)
            t = t[(t >= 0).all(axis=1)]
            zt = z[t]
            tris.append(t[zt.max(axis=1) <= EDGE_RATIO * zt.min(axis=1)])
    return np.concatenate(tris) if tris else np.zeros((0, 3), np.int64)


def _unlit(glb: bytes) -> bytes:
    """The GLB with one unlit, double-sided material on every primitive (photo colours,
    seen from both sides, no lighting needed)."""
    n_js = struct.unpack_from("<I", glb, 12)[0]
    doc = json.loads(glb[20 : 20 + n_js])
    tail = glb[20 + n_js :]
    doc["materials"] = [
        {
            "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 1.0},
            "extensions": {"KHR_materials_unlit": {}},
            "doubleSided": True,
        }
    ]
    doc["extensionsUsed"] = ["KHR_materials_unlit"]
    for m in doc["meshes"]:
        for p in m["primitives"]:
            p["material"] = 0
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    total = 12 + 8 + len(js) + len(tail)
    head = struct.pack("<III", 0x46546C67, 2, total) + struct.pack("<II", len(js), 0x4E4F534A)
    return head + js + tail


def view_glb(path: Path, cloud: Any) -> Path:
    """The GLB of the 3D view: the points (at most MAX_VIEW_POINTS) and their grid surface."""
    from amodal_depth.reconstruct.export import glb_bytes

    if len(cloud) > MAX_VIEW_POINTS:
        step = int(np.ceil(len(cloud) / MAX_VIEW_POINTS))
        cloud = cloud.select(np.arange(len(cloud)) % step == 0)
    tris = grid_triangles(cloud)
    mesh = SimpleNamespace(
        vertices=cloud.points.astype(np.float64),
        vertex_colors=cloud.colors.astype(np.float64) / 255.0,
        triangles=tris.astype(np.int32),
    )
    path.write_bytes(_unlit(glb_bytes(cloud, mesh if len(tris) else None)))
    return path


# ------------------------------------------------------------------------------ all files
def write_result(
    out: Path,
    image: np.ndarray,
    prepared: Any,
    disp: np.ndarray,
    cloud: Any,
    info: dict[str, Any],
) -> DemoResult:
    """Write every file of one request into `out` -> DemoResult."""
    from amodal_depth.reconstruct import write_glb, write_ply

    if len(cloud) == 0:
        raise UserError("the reconstruction has no point (every depth was invalid)")
    visible = cloud.select(cloud.layer == 1)
    layers = layer_pictures(out, disp, info["units"])
    masks = mask_pictures(out, image, prepared)
    downloads = [
        write_ply(out / "points.ply", cloud),
        write_glb(out / "scene.glb", cloud),
        write_ply(out / "points_visible.ply", visible),
        write_glb(out / "scene_visible.glb", visible),
        *(out / f"amodal_{k + 1}.png" for k in range(len(prepared.amodal))),
    ]
    info = {
        **info,
        "points": len(cloud),
        "points_per_layer": cloud.counts_per_layer(int(disp.shape[0])),
        "hfov_deg": cloud.info["camera"]["hfov_deg"],
        "scale": cloud.info["scale"],
    }
    return DemoResult(
        out,
        layers,
        masks,
        view_glb(out / "view_layered.glb", cloud),
        view_glb(out / "view_visible.glb", visible),
        downloads,
        info,
    )
