"""Camera, layout, room and distractor sampling of the randomised styles.

The `diverse` and `shifted` styles (data/styles.py) replace the template's camera, room,
lights, materials and clutter by draws from the style's table; the layout chain, the
sideways repair and the rejection rule are the template's (data/scenes.py, which calls
these functions from `sample_scene`).
"""

from __future__ import annotations

import colorsys
from typing import TYPE_CHECKING

import numpy as np

from amodal_depth.data.format import Camera
from amodal_depth.data.layout import (
    ROOM_FACES,
    Layout,
    Placed,
    _u,
    aim_at,
    camera_pose,
    room_corners,
)
from amodal_depth.data.objects import ObjectLibrary
from amodal_depth.data.parts import ObjectMesh
from amodal_depth.data.render import WorldMesh
from amodal_depth.data.shapes import random_look
from amodal_depth.data.styles import Style, draw, signed

if TYPE_CHECKING:
    from amodal_depth.data.generator_config import GeneratorConfig


def sample_camera(rng: np.random.Generator, cfg: GeneratorConfig, style: Style) -> Camera:
    """Per-sample intrinsics: random horizontal FOV (square pixels), offset principal point."""
    w, h = cfg.width, cfg.height
    fx = (w / 2.0) / np.tan(np.deg2rad(draw(rng, style.hfov_deg)) / 2.0)
    cx = (w - 1) / 2.0 + signed(rng, style.principal_offset) * w
    cy = (h - 1) / 2.0 + signed(rng, style.principal_offset) * h
    return Camera(float(fx), float(fx), float(cx), float(cy), w, h)


def sample_layout_styled(
    rng: np.random.Generator, style: Style, objects: list[ObjectMesh], camera: Camera
) -> Layout:
    """The template's chain of targets with the style's distances, turns, height, pitch
    range and roll."""
    k_n = len(objects)
    h = draw(rng, style.camera_height)
    tan_half = (camera.width / 2) / camera.fx
    tan_vhalf = (camera.height / 2) / camera.fy
    targets = [Placed(o, yaw=np.deg2rad(_u(rng, -style.yaw_deg, style.yaw_deg))) for o in objects]
    ext = [p.half_extents() for p in targets]
    hx, hy = ext[0]
    fit = max(1.2 * hx / tan_half, 0.6 * objects[0].size[2] / tan_vhalf)
    # Wide lenses come closer (else the targets shrink below min_area): o_1's distance
    # shrinks with tan(hfov/2) beyond the template's 60 deg (100 deg: x 0.6); beyond 100 deg
    # (only the shifted style) the distance and the gaps shrink further.
    closer = min(1.0, np.tan(np.pi / 6) / tan_half) ** 0.7
    wider = min(1.0, np.tan(np.deg2rad(50.0)) / tan_half) ** 3
    targets[0].y = hy + max(_u(rng, *style.first_distance) * closer * wider, fit)
    for k in range(1, k_n):
        p, q = targets[k - 1], targets[k]
        q.y = p.y + ext[k - 1][1] + ext[k][1] + _u(rng, *style.gap) * wider
        ang = p.x / p.y + _u(rng, -0.75, 0.75) * (ext[k - 1][0] / p.y + ext[k][0] / q.y)
        q.x = ang * q.y
    yaw, pitch = aim_at(rng, targets, h, style.pitch_deg)
    roll = np.deg2rad(signed(rng, style.roll_deg))
    cam = camera_pose(h, yaw, pitch, roll)
    lay = Layout(camera, cam, h, float(np.rad2deg(pitch)), targets)
    lay.extra = {"roll_deg": round(float(np.rad2deg(roll)), 3)}
    return lay


_WALLS_OF = ("wall_x0", "wall_x1", "wall_y0", "wall_y1")


def make_room_styled(
    rng: np.random.Generator,
    style: Style,
    box: tuple[float, float, float, float, float],
    walls: dict[str, bool],
    ceiling: bool,
) -> WorldMesh:
    """Floor, the walls that are present, optionally a ceiling; a random material each."""
    v = room_corners(box)
    tris, attrs = [], []
    for name, f in ROOM_FACES.items():
        if (name == "ceiling" and not ceiling) or (name in walls and not walls[name]):
            continue
        a = random_look(rng, style).attr()
        tris += f
        attrs += [a, a]
    return WorldMesh(v, np.array(tris, np.int32), np.array(attrs, np.float32))


def add_room_styled(rng: np.random.Generator, style: Style, lay: Layout) -> None:
    """Room of random size (sometimes a large open floor) around the targets, each wall
    missing at random, optional ceiling; 1-3 tinted lights, shadows on/off, backdrop."""
    targets = lay.targets
    ext = [p.half_extents() for p in targets]
    h = lay.cam_height

    def margin() -> float:
        if rng.random() < style.open_floor_prob:
            return _u(rng, *style.open_margin)
        return _u(rng, *style.room_margin)

    xs = [v for p, e in zip(targets, ext) for v in (p.x - e[0], p.x + e[0])]
    y_far = max(p.y + e[1] for p, e in zip(targets, ext))
    x0 = min(min(xs), -0.3) - margin()
    x1 = max(max(xs), 0.3) + margin()
    y0, y1 = -0.1 - margin(), y_far + margin()
    tallest = max(p.obj.size[2] for p in targets)
    room_h = max(_u(rng, *style.room_height), tallest + 0.3, h + 0.5)
    walls = {w: bool(rng.random() >= style.wall_missing_prob) for w in _WALLS_OF}
    ceiling = bool(rng.random() < style.ceiling_prob)
    lay.room_box = (x0, x1, y0, y1, room_h)
    lay.ceiling = ceiling
    lay.room = make_room_styled(rng, style, lay.room_box, walls, ceiling)
    n_l = int(rng.integers(style.num_lights[0], style.num_lights[1] + 1))
    pos, col = [], []
    for _ in range(n_l):  # near the group, inside the room, above the objects below it
        x = _u(rng, max(x0 + 0.2, min(xs) - 2.0), min(x1 - 0.2, max(xs) + 2.0))
        y = _u(rng, max(y0 + 0.2, -0.5), min(y1 - 0.2, y_far + 2.0))
        z = _u(rng, 1.0, room_h - 0.1)
        for p, e in zip(targets, ext):
            if abs(x - p.x) < e[0] + 0.1 and abs(y - p.y) < e[1] + 0.1:
                z = max(z, min(p.obj.size[2] + 0.2, room_h - 0.05))
        pos.append([x, y, z])
        tint = colorsys.hsv_to_rgb(draw(rng, style.light_hue) % 1.0,
                                   _u(rng, *style.light_saturation), 1.0)  # fmt: skip
        col.append(np.array(tint) * _u(rng, *style.light_intensity) / np.sqrt(n_l))
    lay.light = np.array(pos)
    lay.light_colours = np.array(col, np.float32)
    lay.shadows = bool(rng.random() < style.shadow_prob)
    lay.ambient = draw(rng, style.ambient)
    bd = colorsys.hsv_to_rgb(rng.random(), _u(rng, 0.0, 0.6), _u(rng, *style.backdrop_value))
    lay.backdrop = np.array(bd, np.float32)
    lay.extra = {
        **(lay.extra or {}),
        "walls": walls,
        "lights": [
            {"position": np.round(p_, 4).tolist(), "colour": np.round(c_, 4).tolist()}
            for p_, c_ in zip(lay.light, lay.light_colours)
        ],
        "shadows": lay.shadows,
        "backdrop": np.round(lay.backdrop, 4).tolist(),
    }


def sample_distractors(
    rng: np.random.Generator, style: Style, library: ObjectLibrary, layout: Layout
) -> list[Placed]:
    """Up to `max_distractors` objects of the style's families anywhere on the floor near
    the group (behind, beside or in front: those that hide a target are dropped later),
    never overlapping a target's or another distractor's footprint, never at the camera."""
    x0, x1, y0, y1, room_h = layout.room_box
    out: list[Placed] = []
    boxes = [(-0.4, 0.4, -0.4, 0.4)]  # the camera's own spot
    for p in layout.targets:
        ex, ey = p.half_extents()
        boxes.append((p.x - ex, p.x + ex, p.y - ey, p.y + ey))
    gx0 = min(b[0] for b in boxes[1:]) - 3.0
    gx1 = max(b[1] for b in boxes[1:]) + 3.0
    gy1 = max(b[3] for b in boxes[1:]) + 4.0
    for _ in range(int(rng.integers(0, style.max_distractors + 1))):
        p = Placed(library.sample_styled(rng, style), yaw=_u(rng, -np.pi, np.pi))
        ex, ey = p.half_extents()
        if p.obj.size[2] > room_h - 0.1:
            continue
        lo_x, hi_x = max(x0 + ex + 0.02, gx0), min(x1 - ex - 0.02, gx1)
        lo_y, hi_y = max(y0 + ey + 0.02, 0.5), min(y1 - ey - 0.02, gy1)
        if lo_x >= hi_x or lo_y >= hi_y:
            continue
        for _try in range(4):
            p.x, p.y = _u(rng, lo_x, hi_x), _u(rng, lo_y, hi_y)
            bb = (p.x - ex, p.x + ex, p.y - ey, p.y + ey)
            if not any(
                bb[0] < b[1] + 0.1 and b[0] < bb[1] + 0.1 and bb[2] < b[3] + 0.1
                and b[2] < bb[3] + 0.1
                for b in boxes
            ):  # fmt: skip
                boxes.append(bb)
                out.append(p)
                break
    return out
