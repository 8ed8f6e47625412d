"""The object library: procedural furniture built from primitives, and user mesh folders.

Meshes, their per-part appearance and the part builder live in data/parts.py; the randomised
styles' shapes and random materials in data/shapes.py. The furniture is deliberately built
with depth extent and structure (legs, seats and backs, open shelves, L-shapes) so that a
hidden part is not simply the median depth of the visible part.
"""

from __future__ import annotations

import colorsys
import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from amodal_depth.data.parts import (
    TEX_CHECKER,
    TEX_GRAIN,
    TEX_PLAIN,
    TEX_STRIPES,
    Look,
    ObjectMesh,
    _Builder,
    _u,
)

# Names that lived here before parts.py was split off; importers still use this module.
from amodal_depth.data.parts import TEX_DOTS as TEX_DOTS
from amodal_depth.data.parts import TEX_GRADIENT as TEX_GRADIENT
from amodal_depth.data.parts import TEX_NOISE as TEX_NOISE
from amodal_depth.data.parts import TEX_RINGS as TEX_RINGS
from amodal_depth.data.parts import TEXTURES as TEXTURES
from amodal_depth.data.parts import TRI_ATTR as TRI_ATTR
from amodal_depth.data.shapes import STYLED_SHAPES, restyle
from amodal_depth.errors import UserError

if TYPE_CHECKING:
    from amodal_depth.data.styles import Style

MESH_SUFFIXES = (".obj", ".ply", ".glb", ".gltf")


# ---------------------------------------------------------------------------- palettes
_WOODS = np.array(
    [[0.55, 0.38, 0.22], [0.68, 0.5, 0.32], [0.4, 0.26, 0.15], [0.78, 0.64, 0.45], [0.3, 0.2, 0.13]]
)
_PAINTS = np.array(
    [[0.92, 0.91, 0.88], [0.2, 0.22, 0.25], [0.75, 0.8, 0.82], [0.55, 0.62, 0.55], [0.85, 0.8, 0.7]]
)


def _jitter(rng: np.random.Generator, c: np.ndarray, amount: float = 0.05) -> np.ndarray:
    return np.clip(c + rng.uniform(-amount, amount, 3), 0.02, 0.98)


def _wood(rng: np.random.Generator) -> Look:
    axis = (1.0, 0.0, 0.0) if rng.random() < 0.5 else (0.0, 1.0, 0.0)
    return Look(_jitter(rng, _WOODS[rng.integers(len(_WOODS))]), TEX_GRAIN, 0.08, axis)


def _paint(rng: np.random.Generator) -> Look:
    return Look(_jitter(rng, _PAINTS[rng.integers(len(_PAINTS))], 0.04))


def _fabric(rng: np.random.Generator) -> Look:
    rgb = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.2, 0.7), rng.uniform(0.35, 0.85))
    tex = TEX_CHECKER if rng.random() < 0.3 else TEX_PLAIN
    return Look(np.array(rgb), tex, float(rng.uniform(0.06, 0.15)))


def _metal(rng: np.random.Generator) -> Look:
    g = rng.uniform(0.1, 0.7)
    return Look(_jitter(rng, np.array([g, g, g * 1.03]), 0.02))


def _vivid(rng: np.random.Generator) -> Look:
    rgb = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.4, 0.9), rng.uniform(0.4, 0.95))
    return Look(np.array(rgb))


# -------------------------------------------------------------------------- categories
def make_table(rng: np.random.Generator) -> ObjectMesh:
    b = _Builder()
    top, legs = _wood(rng), (_wood(rng) if rng.random() < 0.6 else _metal(rng))
    h, t = _u(rng, 0.62, 0.8), _u(rng, 0.03, 0.06)
    if rng.random() < 0.25:  # round pedestal table
        r = _u(rng, 0.4, 0.65)
        b.cylinder(0, 0, 0, r * 0.45, 0.04, legs)
        b.cylinder(0, 0, 0.04, 0.05, h - t - 0.04, legs)
        b.lathe(0, 0, np.array([h - t, h]), np.array([r, r]), top, seg=20)
        return b.build("table", top.colour)
    w, d = _u(rng, 0.8, 1.8), _u(rng, 0.6, 1.0)
    s, inset = _u(rng, 0.04, 0.08), _u(rng, 0.02, 0.1)
    b.box(0, 0, h - t, w, d, t, top)
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.box(sx * (w / 2 - inset - s / 2), sy * (d / 2 - inset - s / 2), 0, s, s, h - t, legs)
    if rng.random() < 0.35:  # lower shelf
        b.box(0, 0, h * 0.22, w - 2 * inset, d - 2 * inset, 0.025, top)
    return b.build("table", top.colour)


def make_chair(rng: np.random.Generator) -> ObjectMesh:
    b = _Builder()
    frame, seat = _wood(rng), (_fabric(rng) if rng.random() < 0.5 else _wood(rng))
    w, d, sh = _u(rng, 0.42, 0.56), _u(rng, 0.42, 0.55), _u(rng, 0.42, 0.5)
    s, bt, bh = _u(rng, 0.03, 0.05), _u(rng, 0.04, 0.07), _u(rng, 0.38, 0.6)
    b.box(0, 0, sh - 0.05, w, d, 0.05, seat)
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.box(sx * (w / 2 - s / 2), sy * (d / 2 - s / 2), 0, s, s, sh - 0.05, frame)
    b.box(0, d / 2 - bt / 2, sh, w, bt, bh, seat if rng.random() < 0.5 else frame)
    if rng.random() < 0.3:  # armrests
        for sx in (-1, 1):
            b.box(sx * (w / 2 - 0.02), 0, sh + 0.2, 0.04, d, 0.04, frame)
            b.box(sx * (w / 2 - 0.02), -d / 2 + 0.03, sh, 0.03, 0.03, 0.2, frame)
    return b.build("chair", seat.colour)


def make_cabinet(rng: np.random.Generator) -> ObjectMesh:
    b = _Builder()
    body = _paint(rng) if rng.random() < 0.5 else _wood(rng)
    door, knob = (_paint(rng) if rng.random() < 0.4 else body), _metal(rng)
    w, d, h = _u(rng, 0.5, 1.4), _u(rng, 0.38, 0.6), _u(rng, 0.7, 1.3)
    plinth = 0.08
    b.box(0, 0.01, 0, w - 0.04, d - 0.04, plinth, knob)
    b.box(0, 0, plinth, w, d, h - plinth - 0.03, body)
    b.box(0, -0.01, h - 0.03, w + 0.03, d + 0.03, 0.03, body)
    rows = int(rng.integers(1, 4))
    cols = 2 if w > 0.8 else 1
    gap = 0.01
    ch, cw = (h - plinth - 0.03) / rows, w / cols
    for i in range(rows):
        for j in range(cols):
            x = -w / 2 + cw * (j + 0.5)
            z = plinth + ch * i
            b.box(x, -d / 2 - 0.01, z + gap, cw - 2 * gap, 0.02, ch - 2 * gap, door)
            b.box(x, -d / 2 - 0.035, z + ch - 0.12, 0.1, 0.03, 0.025, knob)
    if rng.random() < 0.45:  # a shallower open hutch on top: an L-shaped side profile
        hh, hd = _u(rng, 0.5, 0.9), d * _u(rng, 0.35, 0.55)
        y = d / 2 - hd / 2
        for sx in (-1, 1):
            b.box(sx * (w / 2 - 0.01), y, h, 0.02, hd, hh, body)
        b.box(0, d / 2 - 0.01, h, w, 0.02, hh, body)
        b.box(0, y, h + hh - 0.02, w, hd, 0.02, body)
        b.box(0, y, h + hh / 2, w, hd, 0.02, body)
    return b.build("cabinet", body.colour)


def make_shelf(rng: np.random.Generator) -> ObjectMesh:
    b = _Builder()
    wood = _wood(rng) if rng.random() < 0.7 else _paint(rng)
    w, d, h = _u(rng, 0.6, 1.4), _u(rng, 0.28, 0.45), _u(rng, 1.0, 2.0)
    t = _u(rng, 0.02, 0.035)
    for sx in (-1, 1):
        b.box(sx * (w / 2 - t / 2), 0, 0, t, d, h, wood)
    b.box(0, d / 2 - 0.005, 0, w, 0.01, h, wood)
    n = int(rng.integers(2, 6))
    levels = np.linspace(0.05, h - t, n + 1)
    for z in levels:
        b.box(0, 0, z, w - 2 * t, d, t, wood)
    inner = w - 2 * t
    for z0, z1 in zip(levels[:-1], levels[1:]):  # books, boxes: contents at varying depth
        x = -inner / 2
        while x < inner / 2 - 0.05:
            bw = _u(rng, 0.02, 0.06) if rng.random() < 0.8 else _u(rng, 0.12, 0.25)
            if rng.random() < 0.25:
                x += _u(rng, 0.05, 0.2)
                continue
            bw = min(bw, inner / 2 - x)
            bh = min(_u(rng, 0.6, 0.95) * (z1 - z0 - t), z1 - z0 - t - 0.005)
            bd = _u(rng, 0.5, 0.95) * (d - 0.02)
            b.box(x + bw / 2, d / 2 - 0.01 - bd / 2, z0 + t, bw, bd, bh, _vivid(rng))
            x += bw + 0.003
    return b.build("shelf", wood.colour)


def make_sofa(rng: np.random.Generator) -> ObjectMesh:
    b = _Builder()
    cloth, feet = _fabric(rng), _wood(rng)
    cushion = cloth if rng.random() < 0.6 else _fabric(rng)
    w, d = _u(rng, 1.5, 2.4), _u(rng, 0.8, 1.0)
    sh, bt, bh = _u(rng, 0.38, 0.46), _u(rng, 0.18, 0.28), _u(rng, 0.75, 0.95)
    aw, ah = _u(rng, 0.12, 0.25), _u(rng, 0.55, 0.68)
    base_h, fh = sh - 0.14, 0.06
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.box(sx * (w / 2 - 0.08), sy * (d / 2 - 0.08), 0, 0.05, 0.05, fh, feet)
    b.box(0, 0, fh, w, d, base_h - fh, cloth)
    b.box(0, d / 2 - bt / 2, base_h, w, bt, bh - base_h, cloth)
    for sx in (-1, 1):
        b.box(sx * (w / 2 - aw / 2), 0, base_h, aw, d, ah - base_h, cloth)
    n = int(rng.integers(2, 4))
    cw = (w - 2 * aw) / n
    for i in range(n):
        x = -w / 2 + aw + cw * (i + 0.5)
        b.box(x, -bt / 2, base_h, cw - 0.015, d - bt - 0.02, 0.14, cushion)
    if rng.random() < 0.45:  # L-shaped: a chaise reaching forward at one end
        side = 1 if rng.random() < 0.5 else -1
        ext, cwid = _u(rng, 0.6, 0.95), _u(rng, 0.6, 0.8)
        x = side * (w / 2 - cwid / 2)
        y = -d / 2 - ext / 2
        b.box(x, y, fh, cwid, ext, base_h - fh, cloth)
        b.box(x, y, base_h, cwid - 0.02, ext, 0.14, cushion)
        b.box(x + side * 0.0, -d / 2 - ext + 0.08, 0, 0.05, 0.05, fh, feet)
    return b.build("sofa", cloth.colour)


def make_lamp(rng: np.random.Generator) -> ObjectMesh:
    b = _Builder()
    metal, shade = _metal(rng), _fabric(rng)
    shade.tex = TEX_PLAIN
    pole = _u(rng, 1.2, 1.6)
    rb = _u(rng, 0.12, 0.2)
    b.cylinder(0, 0, 0, rb, 0.03, metal)
    b.cylinder(0, 0, 0.03, 0.015, pole, metal)
    r0, r1, sh = _u(rng, 0.18, 0.28), _u(rng, 0.09, 0.16), _u(rng, 0.25, 0.38)
    b.lathe(0, 0, np.array([pole - 0.05, pole - 0.05 + sh]), np.array([r0, r1]), shade, seg=16)
    return b.build("lamp", shade.colour)


def make_box(rng: np.random.Generator) -> ObjectMesh:
    b = _Builder()
    look = Look(_jitter(rng, np.array([0.62, 0.48, 0.32]), 0.08), TEX_STRIPES, 0.25)
    if rng.random() < 0.4:
        look = _vivid(rng)
    w, d, h = _u(rng, 0.4, 0.9), _u(rng, 0.35, 0.7), _u(rng, 0.3, 0.6)
    b.box(0, 0, 0, w, d, h, look)
    n = int(rng.integers(0, 3))
    for i in range(n):  # stacked or side-by-side crates: L-shapes and steps
        w2, d2, h2 = w * _u(rng, 0.5, 0.9), d * _u(rng, 0.5, 0.9), _u(rng, 0.25, 0.5)
        if i == 0 and rng.random() < 0.6:
            b.box(_u(rng, -0.15, 0.15), _u(rng, -0.1, 0.1), h, w2, d2, h2, look)
        else:
            side = 1 if rng.random() < 0.5 else -1
            b.box(side * (w / 2 + w2 / 2 + 0.01), d / 2 - d2 / 2, 0, w2, d2, h2, look)
    return b.build("box", look.colour)


def make_vase(rng: np.random.Generator) -> ObjectMesh:
    b = _Builder()
    look = _vivid(rng) if rng.random() < 0.6 else _paint(rng)
    h = _u(rng, 0.45, 1.0)
    rb, rm, rn = _u(rng, 0.08, 0.15), _u(rng, 0.15, 0.28), _u(rng, 0.05, 0.1)
    z = np.array([0, 0.35, 0.6, 0.85, 0.95, 1.0]) * h
    r = np.array([rb, rm, rm * 0.85, rn, rn, rn * 1.3])
    z0 = 0.0
    if rng.random() < 0.4:  # on a pedestal
        ph = _u(rng, 0.3, 0.6)
        ped = _wood(rng)
        b.box(0, 0, 0, rm * 2.2, rm * 2.2, ph, ped)
        z0 = ph
    b.lathe(0, 0, z + z0, r, look, seg=16)
    return b.build("vase", look.colour)


def make_desk(rng: np.random.Generator) -> ObjectMesh:
    """An L-shaped desk with panel legs: two perpendicular tops."""
    b = _Builder()
    top, panel = _wood(rng), (_paint(rng) if rng.random() < 0.5 else _wood(rng))
    w, d, h, t = _u(rng, 1.2, 1.7), _u(rng, 0.55, 0.75), _u(rng, 0.7, 0.78), 0.03
    rw, rl = _u(rng, 0.45, 0.6), _u(rng, 0.7, 1.1)
    side = 1 if rng.random() < 0.5 else -1
    b.box(0, 0, h - t, w, d, t, top)
    xr = side * (w / 2 - rw / 2)
    b.box(xr, -d / 2 - rl / 2, h - t, rw, rl, t, top)
    b.box(-side * (w / 2 - 0.015), 0, 0, 0.03, d, h - t, panel)
    b.box(xr, -d / 2 - rl + 0.015, 0, rw, 0.03, h - t, panel)
    b.box(0, d / 2 - 0.015, h * 0.35, w - 0.06, 0.02, h * 0.6 - t, panel)
    return b.build("desk", top.colour)


def make_bed(rng: np.random.Generator) -> ObjectMesh:
    b = _Builder()
    frame, sheet, pillow = _wood(rng), _fabric(rng), _paint(rng)
    w, length = _u(rng, 1.0, 1.8), _u(rng, 1.9, 2.1)
    fh, mh = _u(rng, 0.2, 0.35), _u(rng, 0.15, 0.25)
    b.box(0, 0, 0.05, w, length, fh - 0.05, frame)
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.box(sx * (w / 2 - 0.05), sy * (length / 2 - 0.05), 0, 0.06, 0.06, 0.05, frame)
    b.box(0, -0.02, fh, w - 0.04, length - 0.08, mh, sheet)
    b.box(0, length / 2 - 0.03, 0, w + 0.04, 0.06, _u(rng, 0.8, 1.2), frame)
    n = 2 if w > 1.3 else 1
    for i in range(n):
        x = (i - (n - 1) / 2) * w / n
        b.box(x, length / 2 - 0.28, fh + mh, w / n - 0.1, 0.35, 0.12, pillow)
    return b.build("bed", sheet.colour)


CATEGORIES: dict[str, Callable[[np.random.Generator], ObjectMesh]] = {
    "table": make_table,
    "chair": make_chair,
    "cabinet": make_cabinet,
    "shelf": make_shelf,
    "sofa": make_sofa,
    "lamp": make_lamp,
    "box": make_box,
    "vase": make_vase,
    "desk": make_desk,
    "bed": make_bed,
}
# Larger, deeper furniture is drawn more often: that is where hidden parts are worth predicting.
_WEIGHTS = {
    "table": 1.5, "chair": 1.2, "cabinet": 1.0, "shelf": 1.2, "sofa": 1.5,
    "lamp": 0.4, "box": 0.8, "vase": 0.4, "desk": 1.0, "bed": 0.6,
}  # fmt: skip


# --------------------------------------------------------------------------- mesh folder
def list_mesh_files(mesh_dir: str | Path) -> list[Path]:
    """The OBJ/PLY/GLB/GLTF files under `mesh_dir` (recursive, sorted for determinism)."""
    root = Path(mesh_dir)
    if not root.is_dir():
        raise UserError(f"--mesh-dir {root}: not a directory")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)
    if not files:
        raise UserError(f"--mesh-dir {root}: no .obj/.ply/.glb/.gltf files found")
    return files


@dataclass
class _LoadedMesh:
    vertices: np.ndarray  # z up, footprint centred, min z 0, original units
    triangles: np.ndarray
    tri_colour: np.ndarray | None  # [M, 3] from vertex colours, or None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C-level stderr: Open3D's file parsers print their own complaints there, and
    the user should see our one-line error instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_mesh(path: Path, up: str = "y") -> _LoadedMesh:
    """Read one mesh with Open3D; UserError naming the file when it is unreadable or empty.

    `up` is the file's up axis ('y' for OBJ/GLB exports such as 3D-FUTURE, or 'z')."""
    import open3d as o3d

    try:
        with _quiet_stderr(), o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
            m = o3d.io.read_triangle_mesh(str(path))
    except Exception as e:  # open3d raises RuntimeError on some malformed inputs
        raise UserError(f"{path}: cannot read mesh ({e}); fix or remove the file") from e
    v = np.asarray(m.vertices, np.float64)
    f = np.asarray(m.triangles, np.int32)
    if len(v) == 0 or len(f) == 0:
        raise UserError(f"{path}: unreadable or empty mesh (no triangles); fix or remove the file")
    if not np.isfinite(v).all() or f.min() < 0 or f.max() >= len(v):
        raise UserError(f"{path}: mesh has invalid vertices or triangle indices; fix or remove it")
    ext = v.max(0) - v.min(0)
    if ext.max() <= 0:
        raise UserError(f"{path}: mesh is degenerate (zero size); fix or remove the file")
    if up == "y":  # (x, y, z) y-up -> (x, -z, y) z-up, keeping a right-handed frame
        v = np.c_[v[:, 0], -v[:, 2], v[:, 1]]
    lo, hi = v.min(0), v.max(0)
    v = v - [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]]
    colour = None
    if m.has_vertex_colors():
        vc = np.asarray(m.vertex_colors, np.float64)
        colour = vc[f].mean(axis=1)
    return _LoadedMesh(v, f, colour)


class ObjectLibrary:
    """Draws objects: procedural furniture, or (with a mesh folder) the user's meshes.

    Mesh files are checked once up front (`validate`) and loaded lazily per process with a
    small cache, so workers never pickle Open3D objects."""

    def __init__(self, mesh_files: list[Path] | None = None, mesh_up: str = "y") -> None:
        self.mesh_files = list(mesh_files or [])
        self.mesh_up = mesh_up
        self._cache: dict[int, _LoadedMesh] = {}

    def validate(self) -> None:
        for p in self.mesh_files:
            load_mesh(p, self.mesh_up)

    def sample(self, rng: np.random.Generator) -> ObjectMesh:
        if self.mesh_files:
            return self._sample_mesh(rng)
        return self._sample_furniture(rng)

    def sample_styled(self, rng: np.random.Generator, style: Style) -> ObjectMesh:
        """An object of a randomised style: family drawn from the style's table ('mesh' only
        when a mesh folder is given); furniture and meshes may get random materials."""
        from amodal_depth.data.styles import choose

        table = tuple((f, w) for f, w in style.families if f != "mesh" or self.mesh_files)
        family = choose(rng, table)
        if family == "furniture":
            obj = self._sample_furniture(rng)
        elif family == "mesh":
            obj = self._sample_mesh(rng)
        else:
            obj = STYLED_SHAPES[family](rng, style)
        if family in ("furniture", "mesh") and rng.random() < style.restyle_prob:
            obj = restyle(obj, rng, style)
        obj.family = family
        return obj

    def _sample_furniture(self, rng: np.random.Generator) -> ObjectMesh:
        names = list(_WEIGHTS)
        p = np.array([_WEIGHTS[n] for n in names])
        name = names[int(rng.choice(len(names), p=p / p.sum()))]
        return CATEGORIES[name](rng)

    def _sample_mesh(self, rng: np.random.Generator) -> ObjectMesh:
        i = int(rng.integers(len(self.mesh_files)))
        if i not in self._cache:
            if len(self._cache) > 64:  # bound memory with large model folders
                self._cache.pop(next(iter(self._cache)))
            self._cache[i] = load_mesh(self.mesh_files[i], self.mesh_up)
        m = self._cache[i]
        v = m.vertices
        ext = float((v.max(0) - v.min(0)).max())
        # Metric models (3D-FUTURE) keep their size; anything implausible is rescaled.
        if not 0.3 <= ext <= 3.0:
            v = v * (_u(rng, 0.6, 1.6) / ext)
        look = _fabric(rng) if rng.random() < 0.5 else _wood(rng)
        attr = np.tile(look.attr(), (len(m.triangles), 1)).astype(np.float32)
        if m.tri_colour is not None:
            attr[:, :3] = m.tri_colour
            attr[:, 3] = TEX_PLAIN
        colour = tuple(float(round(x, 4)) for x in attr[:, :3].mean(0))
        category = self.mesh_files[i].stem
        return ObjectMesh(category, v.copy(), m.triangles, attr, colour, self.mesh_files[i].name)
