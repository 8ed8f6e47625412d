"""The pinhole camera of a reconstruction: from a horizontal field of view or from intrinsics.

Conventions are those of the dataset format (docs/data-format.md): OpenCV axes (x right,
y down, z forward) and pixel convention, so the pixel in column u, row v (0-based) is the ray
through ((u - cx)/fx, (v - cy)/fy, 1) and a centred camera has cx = (W - 1)/2. Depth is z.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from amodal_depth.data.format import Camera
from amodal_depth.errors import UserError

DEFAULT_FOV_DEG = 60.0
"""Horizontal field of view used when neither --fov nor --intrinsics is given: the camera of
our generated scenes, and close to a phone's main camera (about 65-70 degrees)."""


def camera_from_fov(width: int, height: int, fov_deg: float = DEFAULT_FOV_DEG) -> Camera:
    """A centred camera with square pixels and the given horizontal field of view (degrees,
    strictly between 0 and 180)."""
    fov = float(fov_deg)
    if not math.isfinite(fov) or not 0.0 < fov < 180.0:
        raise UserError(f"--fov {fov_deg}: the horizontal field of view must be in (0, 180) deg")
    if width <= 0 or height <= 0:
        raise UserError(f"image size {width}x{height} must be positive")
    return Camera.from_fov(int(width), int(height), fov)


def read_camera_json(path: str | Path) -> dict[str, float]:
    """fx, fy, cx, cy (and width, height when present) of a camera.json (the dataset's)."""
    import json

    try:
        d = json.loads(Path(path).read_text())
        return {k: float(d[k]) for k in ("fx", "fy", "cx", "cy", "width", "height") if k in d}
    except (OSError, ValueError, TypeError) as e:
        raise UserError(f"--intrinsics {path}: not a readable camera JSON ({e})") from None


def parse_intrinsics(text: str | Sequence[float]) -> tuple[float, float, float, float]:
    """'fx,fy,cx,cy', a camera.json path (keys fx, fy, cx, cy) or a 4-sequence -> four
    positive finite floats, else UserError."""
    if isinstance(text, str) and text.lower().endswith(".json"):
        d = read_camera_json(text)
        text = [d.get(k, float("nan")) for k in ("fx", "fy", "cx", "cy")]
    if isinstance(text, str):
        parts = [p for p in text.replace(" ", ",").split(",") if p]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
    else:
        values = [float(v) for v in text]
    if len(values) != 4:
        raise UserError(
            f"--intrinsics {text!r}: give four numbers fx,fy,cx,cy in pixels, "
            "e.g. 194,194,111.5,83.5"
        )
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise UserError(
            f"--intrinsics {text!r}: fx, fy, cx and cy must all be positive (pixels; "
            "cx = (width - 1)/2 for a centred camera)"
        )
    fx, fy, cx, cy = values
    return fx, fy, cx, cy


def resolve_camera(
    width: int,
    height: int,
    fov: float | None = None,
    intrinsics: str | Sequence[float] | Camera | None = None,
) -> Camera:
    """The camera for an image of width x height: `intrinsics` (a Camera, 'fx,fy,cx,cy' or a
    4-sequence) when given, else `fov`, else DEFAULT_FOV_DEG. Giving both is an error."""
    if fov is not None and intrinsics is not None:
        raise UserError("give either --fov or --intrinsics, not both")
    if isinstance(intrinsics, Camera):
        if (intrinsics.width, intrinsics.height) != (width, height):
            raise UserError(
                f"the camera is for {intrinsics.width}x{intrinsics.height} images but the image "
                f"is {width}x{height}"
            )
        parse_intrinsics([intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy])
        return intrinsics
    if isinstance(intrinsics, str) and intrinsics.lower().endswith(".json"):
        d = read_camera_json(intrinsics)
        size = (int(d.get("width", width)), int(d.get("height", height)))
        if size != (width, height):
            raise UserError(
                f"--intrinsics {intrinsics}: the camera is for {size[0]}x{size[1]} images but "
                f"the image is {width}x{height}"
            )
    if intrinsics is not None:
        fx, fy, cx, cy = parse_intrinsics(intrinsics)
        return Camera(fx, fy, cx, cy, int(width), int(height))
    return camera_from_fov(width, height, DEFAULT_FOV_DEG if fov is None else fov)


def describe_camera(camera: Camera, source: str) -> dict[str, float | int | str]:
    """What reconstruct.json records: the intrinsics, where they came from, and the
    horizontal field of view they imply."""
    d: dict[str, float | int | str] = dict(camera.to_dict())
    d["source"] = source
    d["hfov_deg"] = round(math.degrees(2.0 * math.atan(camera.width / (2.0 * camera.fx))), 4)
    return d
