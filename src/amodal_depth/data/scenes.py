"""Room, camera and layout sampling with rejection, for one sample.

World frame: metres, z up, floor at z = 0. Targets o_1 .. o_K stand on the floor in a chain
going away from the camera: o_{k+1}'s footprint starts behind o_k's (so no two objects
intersect and depth order equals index order), and o_{k+1} is shifted sideways by a random
fraction of their joint angular width so that o_k hides one of its ends or corners. The
camera (1.2-1.8 m high) is then yawed and pitched down (clipped to the configured range) to
look at the group; the room is built around everything, so no wall cuts an object; clutter
stands along the walls and is dropped when it hides any part of a target.
That is the `template` style. The randomised styles (`diverse`, `shifted`; ranges in
data/styles.py) keep the chain, the sideways repair and the rejection rule, and draw the
camera (per-sample intrinsics, roll), room (size, missing walls), lights, materials, object
families and distractors from their table (the "randomised styles" section below).

Rejection rule (checked at reduced resolution first, then again at full resolution):
every target's amodal mask covers at least `min_area` of the image and its vertex bounding
box lies at most `max_outside` outside the frame; in layer k nothing hides o_k;
for k >= 2 the hidden fraction |amodal ∧ ¬visible| / |amodal| lies in [hidden_min,
hidden_max] and o_{k-1} itself hides at least `min_direct` of o_k.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from amodal_depth.data.format import Camera
from amodal_depth.data.objects import (
    TEX_CHECKER,
    TEX_GRAIN,
    TEX_PLAIN,
    TEX_STRIPES,
    ObjectLibrary,
    random_look,
)
from amodal_depth.data.objects import ObjectMesh as ObjectMesh
from amodal_depth.data.render import Hits, Renderer, WorldMesh
from amodal_depth.data.styles import Style, draw, signed
from amodal_depth.errors import UserError

if TYPE_CHECKING:
    from amodal_depth.data.generate import GeneratorConfig


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class Placed:
    """An object standing on the floor at (x, y), turned by `yaw` (radians) about z."""

    obj: ObjectMesh
    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    _world: tuple | None = field(default=None, repr=False, compare=False)

    def transform(self) -> np.ndarray:
        t = np.eye(4)
        t[:3, :3] = _rot_z(self.yaw)
        t[:3, 3] = [self.x, self.y, 0.0]
        return t

    def half_extents(self) -> tuple[float, float]:
        """Half size of the turned footprint's axis-aligned box (x, y)."""
        v = self.obj.vertices[:, :2] @ _rot_z(self.yaw)[:2, :2].T
        return float(np.abs(v[:, 0]).max()), float(np.abs(v[:, 1]).max())

    def world(self) -> WorldMesh:
        key = (self.x, self.y, self.yaw)
        if self._world is None or self._world[0] != key:  # cached: layouts ask repeatedly
            r = _rot_z(self.yaw)
            attr = self.obj.tri_attr.copy()
            attr[:, 5:8] = attr[:, 5:8] @ r.T.astype(np.float32)  # textures turn with it
            v = self.obj.vertices @ r.T + [self.x, self.y, 0.0]
            self._world = (key, WorldMesh(v, self.obj.triangles, attr))
        return self._world[1]

    def describe(self) -> dict:
        w, d, h = self.obj.size
        fam = {} if self.obj.family is None else {"family": self.obj.family}
        return {
            **fam,
            "category": self.obj.category,
            "source": self.obj.source,
            "size": [round(w, 4), round(d, 4), round(h, 4)],
            "colour": list(self.obj.colour),
            "pose": {
                "position": [round(self.x, 4), round(self.y, 4), 0.0],
                "yaw_deg": round(float(np.rad2deg(self.yaw)), 3),
                "object_to_world": np.round(self.transform(), 6).tolist(),
            },
        }


@dataclass
class Layout:
    camera: Camera
    cam_to_world: np.ndarray  # [4, 4], OpenCV camera axes
    cam_height: float
    pitch_deg: float
    targets: list[Placed]
    clutter: list[Placed] = field(default_factory=list)
    # The room is built last (add_room), once the targets have their final places.
    room: WorldMesh | None = None
    room_box: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    ceiling: bool = True
    light: np.ndarray = field(default_factory=lambda: np.zeros(3))
    ambient: float = 0.4
    # Randomised styles only (None / unused on the template path):
    light_colours: np.ndarray | None = None  # [J, 3]; `light` is then [J, 3]
    shadows: bool = True
    backdrop: np.ndarray | None = None
    extra: dict | None = None  # what the style drew, for meta.json

    def renderer(self) -> Renderer:
        if self.light_colours is None:
            return Renderer(self.meshes(), self.cam_to_world, self.light, self.ambient)
        return Renderer(self.meshes(), self.cam_to_world, self.light, self.ambient,
                        self.light_colours, self.shadows, self.backdrop)  # fmt: skip

    def meshes(self) -> list[WorldMesh]:
        """Geometry order used by the renderer: targets, clutter, room last (when built)."""
        out = [p.world() for p in self.targets + self.clutter]
        return out + ([self.room] if self.room is not None else [])

    def describe(self) -> dict:
        x0, x1, y0, y1, h = self.room_box
        return {
            "world_frame": "metres, z up, floor at z = 0",
            "camera_pose": {
                "cam_to_world": np.round(self.cam_to_world, 6).tolist(),
                "height": round(self.cam_height, 4),
                "pitch_deg": round(self.pitch_deg, 3),
            },
            "room": {
                "x": [round(x0, 4), round(x1, 4)],
                "y": [round(y0, 4), round(y1, 4)],
                "height": round(h, 4),
                "ceiling": self.ceiling,
            },
            "light": {
                "position": np.round(self.light, 4).tolist(),
                "ambient": round(self.ambient, 4),
            },
            "clutter": [p.describe() for p in self.clutter],
            **(self.extra or {}),
        }


def camera_pose(height: float, yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """Camera-to-world [4, 4]: at (0, 0, height), turned by yaw about z (0 = looking +y,
    positive = to the left), pitched down by `pitch` radians, rolled by `roll` radians about
    the optical axis (positive: the image turns clockwise); OpenCV axes (x right, y down)."""
    c, s = np.cos(pitch), np.sin(pitch)
    base = np.array([[1.0, 0.0, 0.0], [0.0, -s, c], [0.0, -c, -s]])  # columns x, y, z
    if roll:
        base = base @ _rot_z(roll)  # turns the camera x, y axes about its z axis
    t = np.eye(4)
    t[:3, :3] = _rot_z(yaw) @ base
    t[:3, 3] = [0.0, 0.0, height]
    return t


# --------------------------------------------------------------------------- room
_FLOOR_WOOD = np.array([[0.62, 0.45, 0.3], [0.75, 0.6, 0.42], [0.45, 0.32, 0.22]])
_FLOOR_TILE = np.array([[0.8, 0.78, 0.74], [0.6, 0.6, 0.62], [0.7, 0.65, 0.55]])
_WALLS = np.array(
    [[0.9, 0.88, 0.82], [0.8, 0.85, 0.88], [0.85, 0.8, 0.72], [0.7, 0.75, 0.7], [0.92, 0.9, 0.9]]
)


def _attr(colour: np.ndarray, tex: int, scale: float, axis: tuple[float, float, float]):
    return np.array([*colour, tex, scale, *axis], np.float32)


def make_room(
    rng: np.random.Generator, box: tuple[float, float, float, float, float], ceiling: bool
) -> WorldMesh:
    """A box room seen from inside: floor, four walls, optionally a ceiling."""
    x0, x1, y0, y1, h = box
    v = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (0.0, h)])
    # Vertex index = 4*ix + 2*iy + iz (same scheme as the object boxes).
    faces = {
        "floor": [[0, 4, 6], [0, 6, 2]],
        "ceiling": [[1, 3, 7], [1, 7, 5]],
        "wall_x0": [[0, 2, 3], [0, 3, 1]],
        "wall_x1": [[4, 5, 7], [4, 7, 6]],
        "wall_y0": [[0, 1, 5], [0, 5, 4]],
        "wall_y1": [[2, 6, 7], [2, 7, 3]],
    }
    jit = lambda c, a=0.04: np.clip(c + rng.uniform(-a, a, 3), 0, 1)  # noqa: E731
    r = rng.random()
    if r < 0.5:
        floor = _attr(jit(_FLOOR_WOOD[rng.integers(3)]), TEX_GRAIN, rng.uniform(0.12, 0.25),
                      (1.0, 0.0, 0.0) if rng.random() < 0.5 else (0.0, 1.0, 0.0))  # fmt: skip
    elif r < 0.8:
        floor = _attr(jit(_FLOOR_TILE[rng.integers(3)]), TEX_CHECKER, rng.uniform(0.3, 0.6),
                      (1.0, 0.0, 0.0))  # fmt: skip
    else:  # carpet
        floor = _attr(jit(_FLOOR_TILE[rng.integers(3)] * 0.8, 0.1), TEX_PLAIN, 0.1, (1.0, 0, 0))
    wall_c = jit(_WALLS[rng.integers(len(_WALLS))])
    wall_tex = TEX_STRIPES if rng.random() < 0.3 else TEX_PLAIN
    wall_s = rng.uniform(0.08, 0.3)
    tris, attrs = [], []
    for name, f in faces.items():
        if name == "ceiling" and not ceiling:
            continue
        if name == "floor":
            a = floor
        elif name == "ceiling":
            a = _attr(np.array([0.95, 0.95, 0.93]), TEX_PLAIN, 0.1, (1.0, 0.0, 0.0))
        else:  # wallpaper stripes run along the wall
            axis = (0.0, 1.0, 0.0) if name.startswith("wall_x") else (1.0, 0.0, 0.0)
            a = _attr(wall_c, wall_tex, wall_s, axis)
        tris += f
        attrs += [a, a]
    return WorldMesh(v, np.array(tris, np.int32), np.array(attrs, np.float32))


# ------------------------------------------------------------------------- layout
def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def sample_layout(
    rng: np.random.Generator, cfg: GeneratorConfig, objects: list[ObjectMesh], camera: Camera
) -> Layout:
    """One random arrangement of `objects` (front to back), camera and room; no clutter yet,
    not yet checked for occlusion."""
    k_n = len(objects)
    h = _u(rng, *cfg.camera_height)
    tan_half = (camera.width / 2) / camera.fx
    targets = [Placed(o, yaw=np.deg2rad(_u(rng, -80, 80))) for o in objects]
    ext = [p.half_extents() for p in targets]
    # The chain, front to back, in a frame whose y axis points away from the camera.
    hx, hy = ext[0]
    targets[0].y = hy + max(_u(rng, 1.0, 2.5), 1.2 * hx / tan_half)
    targets[0].x = 0.0
    for k in range(1, k_n):
        p, q = targets[k - 1], targets[k]
        q.y = p.y + ext[k - 1][1] + ext[k][1] + _u(rng, 0.1, 0.7)
        # Angular offset: a random fraction s of the two objects' joint half-widths, so the
        # front object covers an end or a corner of the one behind. |s| <= 0.75: beyond that
        # too few layouts keep the hidden fraction in range (measured).
        ang = p.x / p.y + _u(rng, -0.75, 0.75) * (ext[k - 1][0] / p.y + ext[k][0] / q.y)
        q.x = ang * q.y
    # Aim the camera at the group: yaw to the middle of its horizontal extent, pitch to the
    # middle of its vertical extent (clipped to the configured range), with some jitter.
    wv = np.concatenate([p.world().vertices for p in targets])
    az = np.arctan2(wv[:, 0], wv[:, 1])
    beta = 0.5 * (az.min() + az.max()) + np.deg2rad(_u(rng, -3, 3))
    fwd = wv[:, 0] * np.sin(beta) + wv[:, 1] * np.cos(beta)
    el = np.arctan2(wv[:, 2] - h, fwd)
    pitch = -0.5 * (el.min() + el.max()) + np.deg2rad(_u(rng, -3, 3))
    pitch = float(np.clip(pitch, *np.deg2rad(cfg.pitch_deg)))
    cam = camera_pose(h, -beta, pitch)

    return Layout(camera, cam, h, float(np.rad2deg(pitch)), targets)


def add_room(rng: np.random.Generator, cfg: GeneratorConfig, lay: Layout) -> None:
    """Room around the targets, with the camera inside; light and ambient term."""
    targets = lay.targets
    ext = [p.half_extents() for p in targets]
    h = lay.cam_height
    xs = [v for p, e in zip(targets, ext) for v in (p.x - e[0], p.x + e[0])]
    y_far = max(p.y + e[1] for p, e in zip(targets, ext))
    x0 = min(min(xs), -0.3) - _u(rng, 0.3, 1.5)
    x1 = max(max(xs), 0.3) + _u(rng, 0.3, 1.5)
    y0, y1 = -_u(rng, 0.4, 1.5), y_far + _u(rng, 0.3, 1.8)
    top = max(max(p.obj.size[2] for p in targets) + 0.3, h + 0.5)
    room_h = max(_u(rng, 2.5, 3.1), top)
    ceiling = bool(rng.random() < cfg.ceiling_prob)
    lay.room_box = (x0, x1, y0, y1, room_h)
    lay.ceiling = ceiling
    lay.room = make_room(rng, lay.room_box, ceiling)
    lay.light = np.array(
        [
            _u(rng, x0 + 0.2, x1 - 0.2),
            _u(rng, 0.0, 0.5 * (y0 + y1) + 0.5),
            room_h - _u(rng, 0.1, 0.4),
        ]
    )
    lay.ambient = _u(rng, 0.3, 0.5)


def sample_clutter(
    rng: np.random.Generator, cfg: GeneratorConfig, library: ObjectLibrary, layout: Layout
) -> list[Placed]:
    """Objects along the walls that do not overlap a target's footprint (with a margin)."""
    x0, x1, y0, y1, room_h = layout.room_box
    out: list[Placed] = []
    boxes = []
    for p in layout.targets:
        ex, ey = p.half_extents()
        boxes.append((p.x - ex, p.x + ex, p.y - ey, p.y + ey))
    for _ in range(int(rng.integers(0, cfg.max_clutter + 1))):
        obj = library.sample(rng)
        wall = int(rng.integers(3))  # back, left, right
        yaw = [0.0, -np.pi / 2, np.pi / 2][wall] + np.deg2rad(_u(rng, -5, 5))
        p = Placed(obj, yaw=yaw)
        ex, ey = p.half_extents()
        if obj.size[2] > room_h - 0.1 or 2 * ex > x1 - x0 - 0.2 or 2 * ey > y1 - y0 - 0.2:
            continue
        if wall == 0:
            p.x, p.y = _u(rng, x0 + ex + 0.02, x1 - ex - 0.02), y1 - ey - 0.02
        else:
            p.x = x0 + ex + 0.02 if wall == 1 else x1 - ex - 0.02
            p.y = _u(rng, max(y0 + ey + 0.02, 1.0), y1 - ey - 0.02)
        bb = (p.x - ex, p.x + ex, p.y - ey, p.y + ey)
        if p.y - ey < y0 or any(
            bb[0] < b[1] + 0.1 and b[0] < bb[1] + 0.1 and bb[2] < b[3] + 0.1 and b[2] < bb[3] + 0.1
            for b in boxes
        ):
            continue
        boxes.append(bb)
        out.append(p)
    return out


# ------------------------------------------------------------------ randomised styles
# The `diverse` and `shifted` styles (data/styles.py) replace the template's camera, room,
# lights, materials and clutter by draws from the style's table; the layout chain, the
# sideways repair and the rejection rule are the template's.
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
    wv = np.concatenate([p.world().vertices for p in targets])
    az = np.arctan2(wv[:, 0], wv[:, 1])
    beta = 0.5 * (az.min() + az.max()) + np.deg2rad(_u(rng, -3, 3))
    fwd = wv[:, 0] * np.sin(beta) + wv[:, 1] * np.cos(beta)
    el = np.arctan2(wv[:, 2] - h, fwd)
    pitch = -0.5 * (el.min() + el.max()) + np.deg2rad(_u(rng, -3, 3))
    pitch = float(np.clip(pitch, *np.deg2rad(style.pitch_deg)))
    roll = np.deg2rad(signed(rng, style.roll_deg))
    cam = camera_pose(h, -beta, pitch, roll)
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
    x0, x1, y0, y1, h = box
    v = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (0.0, h)])
    faces = {
        "floor": [[0, 4, 6], [0, 6, 2]],
        "ceiling": [[1, 3, 7], [1, 7, 5]],
        "wall_x0": [[0, 2, 3], [0, 3, 1]],
        "wall_x1": [[4, 5, 7], [4, 7, 6]],
        "wall_y0": [[0, 1, 5], [0, 5, 4]],
        "wall_y1": [[2, 6, 7], [2, 7, 3]],
    }
    tris, attrs = [], []
    for name, f in faces.items():
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


# -------------------------------------------------------------------------- checks
def in_frame(layout: Layout, cam: Camera, max_outside: float) -> bool:
    """Every target lies in front of the camera and at most `max_outside` of its projected
    vertex bounding box falls outside the image."""
    rot, org = layout.cam_to_world[:3, :3], layout.cam_to_world[:3, 3]
    for p in layout.targets:
        v = (p.world().vertices - org) @ rot
        if (v[:, 2] <= 0.1).any():
            return False
        u = cam.fx * v[:, 0] / v[:, 2] + cam.cx
        w = cam.fy * v[:, 1] / v[:, 2] + cam.cy
        area = (u.max() - u.min()) * (w.max() - w.min())
        iu = min(u.max(), cam.width - 0.5) - max(u.min(), -0.5)
        iv = min(w.max(), cam.height - 0.5) - max(w.min(), -0.5)
        if iu <= 0 or iv <= 0 or iu * iv < (1.0 - max_outside) * area:
            return False
    return True


def _shift(a: np.ndarray, du: int) -> np.ndarray:
    """Shift a depth map du pixels to the right (inf enters at the border)."""
    out = np.full_like(a, np.inf)
    if du > 0:
        out[:, du:] = a[:, :-du]
    elif du < 0:
        out[:, :du] = a[:, -du:]
    else:
        out[:] = a
    return out


def repair_lateral(
    rng: np.random.Generator, lay: Layout, depth: np.ndarray, cam: Camera, cfg: GeneratorConfig
) -> bool:
    """Move o_2..o_K sideways (world x, so the front-to-back gaps stay) to a random place where
    its hidden fraction is inside the range with a margin, estimated by shifting its
    low-resolution depth map in the image. True when something moved; the caller renders
    and checks again (a sideways move is only approximately an image shift)."""
    d = depth.copy()
    w = d.shape[2]
    cos_b = abs(float(lay.cam_to_world[0, 0]))  # camera x axis . world x (no roll)
    lo, hi = cfg.hidden_min + 0.03, cfg.hidden_max - 0.03
    moved = False
    for k in range(1, len(lay.targets)):
        am = np.isfinite(d[k])
        area = int(am.sum())
        if area == 0:
            return False
        front = d[:k].min(axis=0)
        # All sideways shifts at once: window s of the padded map is the shift du = m - s.
        m = w // 2
        pad = np.full((d.shape[1], w + 2 * m), np.inf, d.dtype)
        pad[:, m : m + w] = d[k]
        ds = np.lib.stride_tricks.sliding_window_view(pad, w, axis=1)  # [h, 2m+1, w]
        a_s = np.isfinite(ds)
        n = a_s.sum(axis=(0, 2))
        hid = (a_s & (front[:, None, :] < ds)).sum(axis=(0, 2)) / np.maximum(n, 1)
        direct = (a_s & (d[k - 1][:, None, :] < ds)).sum(axis=(0, 2)) / np.maximum(n, 1)
        ok = (n >= 0.95 * area) & (hid >= lo) & (hid <= hi) & (direct >= 2 * cfg.min_direct)
        good = [m - int(i) for i in np.nonzero(ok)[0][::-1]]  # ascending du
        if 0 in good:
            continue
        if not good:
            return False
        du = good[int(rng.integers(len(good)))]
        z = float(np.median(d[k][am]))
        lay.targets[k].x += du * z / (cam.fx * max(cos_b, 0.2))
        d[k] = _shift(d[k], du)
        moved = True
    return moved


def occluding_clutter(depth: np.ndarray, num_targets: int) -> list[int]:
    """Indices (into the clutter list) of clutter that hides part of some target; `depth`
    holds targets then clutter."""
    tg = depth[:num_targets]
    bad = []
    for c in range(num_targets, len(depth)):
        if (np.isfinite(tg) & (depth[c][None] < tg)).any():
            bad.append(c - num_targets)
    return bad


def check_occlusion(
    depth: np.ndarray, num_targets: int, cfg: GeneratorConfig
) -> list[float] | None:
    """Hidden fractions of o_1..o_K when the depth stack (targets first, then everything
    else) meets the rejection rule of this module; None otherwise."""
    k_n = num_targets
    npx = depth.shape[1] * depth.shape[2]
    am = np.isfinite(depth[:k_n])
    fractions = []
    for k in range(k_n):
        area = int(am[k].sum())
        if area < cfg.min_area * npx:
            return None
        dk = np.where(am[k], depth[k], -np.inf)
        if k + 1 < len(depth) and (depth[k + 1 :].min(axis=0) < dk).any():
            return None  # something other than o_1..o_{k-1} hides o_k
        if k == 0:
            fractions.append(0.0)
            continue
        hidden = am[k] & (depth[:k].min(axis=0) < depth[k])
        frac = float(hidden.sum()) / area
        if not cfg.hidden_min <= frac <= cfg.hidden_max:
            return None
        if int((am[k] & (depth[k - 1] < depth[k])).sum()) < cfg.min_direct * area:
            return None
        fractions.append(frac)
    return fractions


_REUSE = 4  # arrangements tried per drawn set of objects
_NEW_CAMERA = 100  # randomised styles: new intrinsics after this many failed layouts


@dataclass
class SceneResult:
    layout: Layout
    renderer: Renderer
    hits: Hits
    hidden: list[float]
    attempts: int
    camera: Camera | None = None  # the intrinsics used (styles may redraw them)


def low_res_camera(cam: Camera, target_width: int = 56) -> Camera:
    step = max(1, cam.width // target_width)
    return cam if step == 1 else cam.scaled(1.0 / step, 1.0 / step)


def sample_scene(
    rng: np.random.Generator,
    cfg: GeneratorConfig,
    library: ObjectLibrary,
    camera: Camera,
    style: Style | None = None,
) -> SceneResult:
    """Sample layouts until one passes the rejection rule at low and at full resolution.
    `style` None: the template; otherwise a randomised style's table (data/styles.py)."""
    low = low_res_camera(camera)
    k_n = cfg.num_objects
    objects: list[ObjectMesh] = []
    for attempt in range(1, cfg.max_attempts + 1):
        if style is not None and attempt % _NEW_CAMERA == 0:  # a lens that rarely works
            camera = sample_camera(rng, cfg, style)
            low = low_res_camera(camera)
        if attempt % _REUSE == 1 or _REUSE == 1:  # new objects now and then; arrangements
            if style is None:  # are cheaper to redraw
                objects = [library.sample(rng) for _ in range(k_n)]
            else:
                objects = [library.sample_styled(rng, style) for _ in range(k_n)]
        if style is None:
            lay = sample_layout(rng, cfg, objects, camera)
        else:
            lay = sample_layout_styled(rng, style, objects, camera)
        if not in_frame(lay, camera, cfg.max_outside):
            continue
        d = lay.renderer().depths(low)
        if check_occlusion(d, k_n, cfg) is None:
            # Rather than drop the layout, slide occluded objects sideways to a place where
            # their hidden fraction fits (most failures are "too much / too little hidden").
            if not repair_lateral(rng, lay, d, low, cfg) or not in_frame(
                lay, camera, cfg.max_outside
            ):
                continue
            d = lay.renderer().depths(low)
            if check_occlusion(d, k_n, cfg) is None:
                continue
        if style is not None:
            add_room_styled(rng, style, lay)
            lay.clutter = sample_distractors(rng, style, library, lay)
            r = lay.renderer()
            hits = r.cast(camera)
            n_c = len(lay.clutter)
            # Distractors that hide any part of a target go, judged at full resolution.
            bad = occluding_clutter(hits.depth[: k_n + n_c], k_n) if n_c else []
            if bad:
                keep = [g for g in range(r.num_geometries) if g - k_n not in bad]
                lay.clutter = [c for i, c in enumerate(lay.clutter) if i not in bad]
                r = lay.renderer()
                hits = Hits(hits.depth[keep], hits.prim[keep])
            hidden = check_occlusion(hits.depth, k_n, cfg)
            if hidden is None:
                continue
            return SceneResult(lay, r, hits, hidden, attempt, camera)
        add_room(rng, cfg, lay)
        lay.clutter = sample_clutter(rng, cfg, library, lay)
        r = lay.renderer()
        if lay.clutter:  # drop clutter in front of a target rather than the whole layout
            dc = r.depths(low, list(range(k_n, k_n + len(lay.clutter))))
            bad = occluding_clutter(np.concatenate([d, dc]), k_n)
            if bad:
                lay.clutter = [c for i, c in enumerate(lay.clutter) if i not in bad]
                r = lay.renderer()
        hits = r.cast(camera)
        hidden = check_occlusion(hits.depth, k_n, cfg)
        if hidden is None:
            continue
        return SceneResult(lay, r, hits, hidden, attempt)
    raise UserError(
        f"no layout met the occlusion constraints in {cfg.max_attempts} attempts; "
        "widen --hidden-min/--hidden-max or use a larger --size"
    )
