"""A point cloud seen from another pinhole camera: numpy z-buffer splatting (no OpenGL).

Used for previews and for the moved-viewpoint figure of docs/results/reconstruction.md:
behind an occluder, a reconstruction from visible depth alone shows an empty shadow, the
layered one shows the hidden surfaces.
"""

from __future__ import annotations

import math

import numpy as np

from amodal_depth.data.format import Camera
from amodal_depth.reconstruct.fuse import LayeredPointCloud


def orbit_pose(pivot: np.ndarray, yaw_deg: float, pitch_deg: float = 0.0):
    """(R, t) mapping camera-frame points into a camera that orbits `pivot` by yaw (about the
    camera's y axis, positive = move right) and pitch (about x, positive = move up), looking
    at it from the original distance: X' = R @ X + t."""
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rot = rx @ ry  # world (old camera) -> new camera
    pivot = np.asarray(pivot, np.float64)
    return rot, pivot - rot @ pivot


def render_points(
    cloud: LayeredPointCloud,
    camera: Camera,
    rotation: np.ndarray | None = None,
    translation: np.ndarray | None = None,
    splat: int = 1,
    background: tuple[int, int, int] = (24, 24, 28),
) -> np.ndarray:
    """HxWx3 uint8 image of the cloud in `camera` after X' = R X + t (default identity):
    every point is drawn as a (2 splat + 1)^2 square, the nearest point wins per pixel."""
    pts = cloud.points.astype(np.float64)
    if rotation is not None:
        pts = pts @ np.asarray(rotation, np.float64).T
    if translation is not None:
        pts = pts + np.asarray(translation, np.float64)
    h, w = camera.height, camera.width
    img = np.empty((h, w, 3), np.uint8)
    img[:] = background
    front = pts[:, 2] > 1e-3
    pts, cols = pts[front], cloud.colors[front]
    u = np.round(camera.fx * pts[:, 0] / pts[:, 2] + camera.cx).astype(np.int64)
    v = np.round(camera.fy * pts[:, 1] / pts[:, 2] + camera.cy).astype(np.int64)
    offs = [(du, dv) for du in range(-splat, splat + 1) for dv in range(-splat, splat + 1)]
    uu = np.concatenate([u + du for du, _ in offs])
    vv = np.concatenate([v + dv for _, dv in offs])
    zz = np.tile(pts[:, 2], len(offs))
    idx = np.tile(np.arange(len(pts)), len(offs))
    inside = (uu >= 0) & (uu < w) & (vv >= 0) & (vv < h)
    pix, zz, idx = vv[inside] * w + uu[inside], zz[inside], idx[inside]
    order = np.lexsort((zz, pix))  # by pixel, then nearest first
    pix, idx = pix[order], idx[order]
    first = np.ones(len(pix), bool)
    first[1:] = pix[1:] != pix[:-1]
    img.reshape(-1, 3)[pix[first]] = cols[idx[first]]
    return img
