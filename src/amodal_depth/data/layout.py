"""What a sampled scene is made of, shared by every generator style: objects placed on the
floor (`Placed`), the arrangement with camera, room and lights (`Layout`), the camera pose
and the room's box geometry. World frame: metres, z up, floor at z = 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from amodal_depth.data.format import Camera
from amodal_depth.data.parts import ObjectMesh
from amodal_depth.data.render import Renderer, WorldMesh


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
# The room's box, seen from inside. Vertex index = 4*ix + 2*iy + iz (same scheme as the
# object boxes); two triangles per face, faces in the order the room meshes list them.
ROOM_FACES = {
    "floor": [[0, 4, 6], [0, 6, 2]],
    "ceiling": [[1, 3, 7], [1, 7, 5]],
    "wall_x0": [[0, 2, 3], [0, 3, 1]],
    "wall_x1": [[4, 5, 7], [4, 7, 6]],
    "wall_y0": [[0, 1, 5], [0, 5, 4]],
    "wall_y1": [[2, 6, 7], [2, 7, 3]],
}


def room_corners(box: tuple[float, float, float, float, float]) -> np.ndarray:
    """[8, 3] corners of the room box (x0, x1, y0, y1, height), indexed as in ROOM_FACES."""
    x0, x1, y0, y1, h = box
    return np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (0.0, h)])


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def aim_at(
    rng: np.random.Generator, targets: list[Placed], height: float, pitch_deg: tuple[float, float]
) -> tuple[float, float]:
    """(yaw, pitch) in radians of a camera at `height` that looks at the targets: yaw to the
    middle of their horizontal extent, pitch down to the middle of their vertical extent
    (clipped to `pitch_deg`), each with +-3 deg of jitter (two draws from `rng`)."""
    wv = np.concatenate([p.world().vertices for p in targets])
    az = np.arctan2(wv[:, 0], wv[:, 1])
    beta = 0.5 * (az.min() + az.max()) + np.deg2rad(_u(rng, -3, 3))
    fwd = wv[:, 0] * np.sin(beta) + wv[:, 1] * np.cos(beta)
    el = np.arctan2(wv[:, 2] - height, fwd)
    pitch = -0.5 * (el.min() + el.max()) + np.deg2rad(_u(rng, -3, 3))
    return float(-beta), float(np.clip(pitch, *np.deg2rad(pitch_deg)))
