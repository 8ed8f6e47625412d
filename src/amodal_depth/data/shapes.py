"""The randomised styles' object families and random materials.

Drawn only by the `diverse` and `shifted` styles (ObjectLibrary.sample_styled), never by
the template. Families: primitive, composite (diverse); torus, tower, capsule (shifted).
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from amodal_depth.data.parts import TEXTURES, Look, ObjectMesh, _Builder, _u

if TYPE_CHECKING:
    from amodal_depth.data.styles import Style


def random_look(rng: np.random.Generator, style: Style) -> Look:
    """A random material: texture family from the style's table, colour from a wide HSV
    range, random scale, axis-aligned or oblique texture axis."""
    from amodal_depth.data.styles import choose

    tex = TEXTURES[choose(rng, style.textures)]
    rgb = colorsys.hsv_to_rgb(rng.random(), _u(rng, *style.saturation), _u(rng, *style.value))
    if rng.random() < 0.5:
        axis = np.eye(3)[int(rng.integers(3))]
    else:  # oblique: diagonal stripes, tilted gradients
        axis = rng.standard_normal(3)
        axis /= max(float(np.linalg.norm(axis)), 1e-9)
    a = tuple(float(x) for x in axis)
    return Look(np.array(rgb), tex, _u(rng, *style.texture_scale), a)  # type: ignore[arg-type]


def _rot(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def _transform_last(b: _Builder, r: np.ndarray, at: np.ndarray) -> None:
    """Turn the last part added to `b` by `r` about its own centre, then move it to `at`."""
    v = b.v[-1]
    c = 0.5 * (v.min(0) + v.max(0))
    b.v[-1] = (v - c) @ r.T + at


_PRIMITIVES = ("box", "cylinder", "ellipsoid", "cone", "pyramid", "wedge")


def _add_primitive(b: _Builder, rng: np.random.Generator, kind: str, s: float, look: Look):
    """One primitive of overall size ~s (m) standing at the origin."""
    if kind == "box":
        b.box(0, 0, 0, s * _u(rng, 0.4, 1.0), s * _u(rng, 0.4, 1.0), s * _u(rng, 0.3, 1.2), look)
    elif kind == "cylinder":
        r = s * _u(rng, 0.2, 0.5)
        b.lathe(0, 0, np.array([0.0, s * _u(rng, 0.3, 1.3)]), np.array([r, r]), look, seg=18)
    elif kind == "ellipsoid":
        t = np.linspace(0.12, np.pi - 0.12, 9)
        h, r = s * _u(rng, 0.3, 1.1), s * _u(rng, 0.2, 0.5)
        b.lathe(0, 0, (1 - np.cos(t)) / 2 * h, np.sin(t) * r, look, seg=16)
        _transform_last(b, np.diag([1.0, _u(rng, 0.5, 1.5), 1.0]), np.zeros(3))
    elif kind in ("cone", "pyramid"):
        r, h = s * _u(rng, 0.2, 0.5), s * _u(rng, 0.4, 1.2)
        seg = 16 if kind == "cone" else int(rng.integers(3, 6))
        b.lathe(0, 0, np.array([0.0, h]), np.array([r, 0.01 * r]), look, seg=seg)
    else:  # wedge: a ramp, a triangular prism lying on one rectangular face
        w, d, h = s * _u(rng, 0.4, 1.0), s * _u(rng, 0.4, 1.0), s * _u(rng, 0.2, 0.8)
        v = np.array([[x, y, z] for x in (-w / 2, w / 2)
                      for y, z in ((-d / 2, 0.0), (d / 2, 0.0), (d / 2, h))])  # fmt: skip
        f = np.array([[0, 3, 4], [0, 4, 1], [1, 4, 5], [1, 5, 2], [0, 2, 5], [0, 5, 3],
                      [0, 1, 2], [3, 5, 4]], np.int32)  # fmt: skip
        b._add(v, f, look)


def make_primitive(rng: np.random.Generator, style: Style) -> ObjectMesh:
    b = _Builder()
    kind = _PRIMITIVES[int(rng.integers(len(_PRIMITIVES)))]
    look = random_look(rng, style)
    _add_primitive(b, rng, kind, _u(rng, 0.45, 1.4), look)
    if rng.random() < 0.5:  # lying or tilted
        _transform_last(b, _rot(int(rng.integers(2)), _u(rng, -np.pi / 2, np.pi / 2)),
                        np.zeros(3))  # fmt: skip
    return b.build(f"prim_{kind}", look.colour)


def make_composite(rng: np.random.Generator, style: Style) -> ObjectMesh:
    """A union of 2-5 random primitives, each overlapping the parts before it."""
    b = _Builder()
    n = int(rng.integers(2, 6))
    looks = [random_look(rng, style) for _ in range(int(rng.integers(1, 3)))]
    for i in range(n):
        kind = _PRIMITIVES[int(rng.integers(len(_PRIMITIVES)))]
        _add_primitive(b, rng, kind, _u(rng, 0.3, 0.9), looks[i % len(looks)])
        turn = _rot(2, _u(rng, 0, np.pi))
        tilt = _rot(0, _u(rng, -1.2, 1.2)) if rng.random() < 0.3 else np.eye(3)
        r = turn @ tilt
        if i == 0:
            at = np.array([0.0, 0.0, 0.5 * float(np.ptp(b.v[-1][:, 2]))])
        else:
            v = np.concatenate(b.v[:-1])
            lo, hi = v.min(0), v.max(0)
            at = lo + (hi - lo) * rng.uniform([0.1, 0.1, 0.2], [0.9, 0.9, 1.0])
        _transform_last(b, r, at)
    return b.build("composite", looks[0].colour)


def make_torus(rng: np.random.Generator, style: Style) -> ObjectMesh:
    """A ring: lying flat, standing upright or tilted."""
    big, small = _u(rng, 0.25, 0.6), 0.0
    small = big * _u(rng, 0.15, 0.45)
    nu, nv = 24, 10
    u = np.linspace(0, 2 * np.pi, nu, endpoint=False)
    w = np.linspace(0, 2 * np.pi, nv, endpoint=False)
    uu, ww = np.meshgrid(u, w, indexing="ij")
    rr = big + small * np.cos(ww)
    v = np.stack([rr * np.cos(uu), rr * np.sin(uu), small * np.sin(ww)], -1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    a, bb = i * nv + j, ((i + 1) % nu) * nv + j
    c, d = ((i + 1) % nu) * nv + (j + 1) % nv, i * nv + (j + 1) % nv
    f = np.concatenate([np.stack([a, bb, c], -1).reshape(-1, 3),
                        np.stack([a, c, d], -1).reshape(-1, 3)]).astype(np.int32)  # fmt: skip
    b = _Builder()
    look = random_look(rng, style)
    b._add(v, f, look)
    tilt = [0.0, np.pi / 2, _u(rng, 0.3, 1.2)][int(rng.integers(3))]
    _transform_last(b, _rot(0, tilt), np.zeros(3))
    return b.build("torus", look.colour)


def make_tower(rng: np.random.Generator, style: Style) -> ObjectMesh:
    """Stacked slabs of varying size, each turned about the vertical."""
    b = _Builder()
    looks = [random_look(rng, style) for _ in range(2)]
    z = 0.0
    for i in range(int(rng.integers(3, 8))):
        t = _u(rng, 0.06, 0.3)
        b.box(0, 0, 0, _u(rng, 0.2, 0.9), _u(rng, 0.2, 0.9), t, looks[i % 2])
        off = rng.uniform(-0.08, 0.08, 2)
        _transform_last(b, _rot(2, _u(rng, 0, np.pi)), np.array([off[0], off[1], z + t / 2]))
        z += t
    return b.build("tower", looks[0].colour)


def make_capsule(rng: np.random.Generator, style: Style) -> ObjectMesh:
    """A cylinder with hemispherical ends, upright or lying."""
    r, h = _u(rng, 0.1, 0.35), _u(rng, 0.2, 1.0)
    t = np.linspace(0.0, np.pi / 2, 5)[1:]
    z = np.concatenate([r - r * np.cos(t[::-1][:-1]), [r, r + h], r + h + r * np.sin(t)])
    rad = np.concatenate([r * np.sin(t[::-1][:-1]), [r, r], r * np.cos(t)])
    keep = rad > 1e-6
    b = _Builder()
    look = random_look(rng, style)
    b.lathe(0, 0, z[keep], rad[keep], look, seg=16)
    if rng.random() < 0.5:
        _transform_last(b, _rot(0, np.pi / 2), np.zeros(3))
    return b.build("capsule", look.colour)


STYLED_SHAPES: dict[str, Callable[[np.random.Generator, Style], ObjectMesh]] = {
    "primitive": make_primitive,
    "composite": make_composite,
    "torus": make_torus,
    "tower": make_tower,
    "capsule": make_capsule,
}


def restyle(obj: ObjectMesh, rng: np.random.Generator, style: Style) -> ObjectMesh:
    """The same shape with a random material per part (per distinct appearance row)."""
    rows, inv = np.unique(obj.tri_attr, axis=0, return_inverse=True)
    if len(rows) > 32:  # vertex-coloured meshes: one material for the whole object
        inv = np.zeros(len(obj.tri_attr), np.int64)
        rows = rows[:1]
    new = np.stack([random_look(rng, style).attr() for _ in range(len(rows))])
    attr = new[np.asarray(inv).reshape(-1)].astype(np.float32)
    colour = tuple(float(round(x, 4)) for x in new[0, :3])
    return ObjectMesh(obj.category, obj.vertices, obj.triangles, attr, colour, obj.source)
