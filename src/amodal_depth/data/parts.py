"""Object meshes and the parts they are built from, shared by the furniture (objects.py)
and the randomised styles' shapes (shapes.py).

Every object is one triangle mesh in its own local frame: metres, z up, the origin at the
centre of its footprint on the floor (min z = 0), its front facing -y. Each triangle carries
its part's appearance (`TRI_ATTR` columns): base colour, procedural texture id and scale, and
the world axis the texture runs along.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Per-triangle appearance: r, g, b in [0, 1], texture id, texture scale (m), texture axis.
TRI_ATTR = 8
TEX_PLAIN, TEX_GRAIN, TEX_CHECKER, TEX_STRIPES = 0, 1, 2, 3
# Drawn only by the randomised styles (data/styles.py); TEX_RINGS only by `shifted`.
TEX_NOISE, TEX_DOTS, TEX_GRADIENT, TEX_RINGS = 4, 5, 6, 7
TEXTURES = {
    "plain": TEX_PLAIN, "grain": TEX_GRAIN, "checker": TEX_CHECKER, "stripes": TEX_STRIPES,
    "noise": TEX_NOISE, "dots": TEX_DOTS, "gradient": TEX_GRADIENT, "rings": TEX_RINGS,
}  # fmt: skip


@dataclass
class ObjectMesh:
    """One object: a triangle mesh in its local frame plus per-triangle appearance."""

    category: str
    vertices: np.ndarray  # [N, 3] float64, local frame (z up, footprint centred, min z = 0)
    triangles: np.ndarray  # [M, 3] int32
    tri_attr: np.ndarray  # [M, TRI_ATTR] float32
    colour: tuple[float, float, float]  # the main colour, for meta.json
    source: str = "procedural"
    family: str | None = None  # object family of the randomised styles (None: template)

    @property
    def size(self) -> tuple[float, float, float]:
        """Bounding-box extent (width x, depth y, height z) in metres."""
        ext = self.vertices.max(axis=0) - self.vertices.min(axis=0)
        return float(ext[0]), float(ext[1]), float(ext[2])


# ------------------------------------------------------------------------- primitives
_BOX_V = np.array(
    [[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (0.0, 1.0)], dtype=np.float64
)
# Vertex index = 4*ix + 2*iy + iz. Two triangles per face; winding does not matter (the
# renderer turns normals towards the camera).
_BOX_F = np.array(
    [
        [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5],  # x = -0.5, x = +0.5
        [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],  # y = -0.5, y = +0.5
        [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3],  # z = 0, z = 1
    ],
    dtype=np.int32,
)  # fmt: skip


class _Builder:
    """Accumulates parts (vertices, triangles, per-triangle appearance) into one mesh."""

    def __init__(self) -> None:
        self.v: list[np.ndarray] = []
        self.f: list[np.ndarray] = []
        self.a: list[np.ndarray] = []
        self.n = 0

    def _add(self, v: np.ndarray, f: np.ndarray, look: Look) -> None:
        self.v.append(v)
        self.f.append(f + self.n)
        self.a.append(np.tile(look.attr(), (len(f), 1)))
        self.n += len(v)

    def box(self, x: float, y: float, z0: float, sx: float, sy: float, sz: float, look: Look):
        """Axis-aligned box centred at (x, y) in plan, from height z0 to z0 + sz."""
        v = _BOX_V * [sx, sy, sz] + [x, y, z0]
        self._add(v, _BOX_F, look)

    def lathe(
        self, x: float, y: float, z: np.ndarray, r: np.ndarray, look: Look, seg: int = 14
    ) -> None:
        """Surface of revolution about the vertical axis through (x, y): radius r[i] at
        height z[i]; closed with flat caps. A cylinder is z=[0,h], r=[r,r]; a cone r=[r,0]."""
        z = np.asarray(z, np.float64)
        r = np.asarray(r, np.float64)
        ang = np.linspace(0.0, 2 * np.pi, seg, endpoint=False)
        ring = np.stack([np.cos(ang), np.sin(ang)], 1)
        rings = [np.c_[ring * ri + [x, y], np.full(seg, zi)] for zi, ri in zip(z, r)]
        v = np.concatenate(rings + [np.array([[x, y, z[0]], [x, y, z[-1]]])])
        faces = []
        j = np.arange(seg)
        jn = (j + 1) % seg
        for i in range(len(z) - 1):
            a, b = i * seg + j, (i + 1) * seg + j
            an, bn = i * seg + jn, (i + 1) * seg + jn
            faces += [np.stack([a, an, bn], 1), np.stack([a, bn, b], 1)]
        c0, c1 = len(z) * seg, len(z) * seg + 1
        top = (len(z) - 1) * seg
        faces += [np.stack([np.full(seg, c0), jn, j], 1)]
        faces += [np.stack([np.full(seg, c1), top + j, top + jn], 1)]
        self._add(v, np.concatenate(faces).astype(np.int32), look)

    def cylinder(self, x: float, y: float, z0: float, r: float, h: float, look: Look) -> None:
        self.lathe(x, y, np.array([z0, z0 + h]), np.array([r, r]), look, seg=12)

    def build(self, category: str, colour: np.ndarray) -> ObjectMesh:
        v = np.concatenate(self.v)
        lo, hi = v.min(axis=0), v.max(axis=0)
        v = v - [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]]
        c = tuple(float(round(x, 4)) for x in colour)
        return ObjectMesh(
            category, v, np.concatenate(self.f), np.concatenate(self.a).astype(np.float32), c
        )


@dataclass
class Look:
    """Appearance of one part."""

    colour: np.ndarray
    tex: int = TEX_PLAIN
    scale: float = 0.1
    axis: tuple[float, float, float] = (1.0, 0.0, 0.0)

    def attr(self) -> np.ndarray:
        return np.array([*self.colour, self.tex, self.scale, *self.axis], np.float32)


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))
