"""Ray-cast rendering of layered scenes with Open3D's `RaycastingScene`.

Every geometry (each object, then the room last) lives in its own ray-casting scene. One cast
per geometry gives its depth alone (objects only over their projected bounding box), and
any layer is the per-pixel minimum over the geometries it contains: layer k = room + o_k ..
o_K + clutter. So K layers and K object-alone depths cost G casts instead of 2K full scenes.

Pixel convention (docs/data-format.md): pixel (u, v) is the ray through
((u - cx)/fx, (v - cy)/fy, 1) in the camera frame (OpenCV axes). The camera-frame direction
has z = 1 and rotating it to the world keeps the ray parameter, so the hit distance t is the
camera z-depth.

Shading: Lambertian albedo (per-triangle colour times a procedural texture evaluated at the
world hit point), one point light plus an ambient term, hard cast shadows from a second ray
towards the light. Removed objects neither appear nor cast shadows in a layer. The
randomised styles pass several tinted lights (`light_colours`), may switch shadows off and
choose the backdrop colour of rays that leave the room; without `light_colours` the
shading is the template's single white light, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from amodal_depth.data.format import Camera
from amodal_depth.data.objects import (
    TEX_CHECKER,
    TEX_DOTS,
    TEX_GRADIENT,
    TEX_GRAIN,
    TEX_NOISE,
    TEX_RINGS,
    TEX_STRIPES,
)

_SHADOW_EPS = 2e-3  # m, lifts shadow-ray origins off the surface they start on
_BACKGROUND = np.array([0.06, 0.06, 0.08], np.float32)  # rays that leave the room (template)


@dataclass
class WorldMesh:
    """A mesh in world coordinates with per-triangle appearance (see objects.TRI_ATTR)."""

    vertices: np.ndarray  # [N, 3]
    triangles: np.ndarray  # [M, 3]
    tri_attr: np.ndarray  # [M, TRI_ATTR]


@dataclass
class Hits:
    """Per-geometry ray hits over the full image; inf / -1 where a geometry is not hit."""

    depth: np.ndarray  # [G, H, W] float32 camera z-depth
    prim: np.ndarray  # [G, H, W] int32 triangle index (empty when cast without it)


@dataclass
class Layers:
    """Rendered layers of one sample; index k-1 = layer k / object o_k."""

    depth: np.ndarray  # [K, H, W] float32 metres, 0 = no surface
    rgb: np.ndarray  # [K, H, W, 3] uint8
    visible: np.ndarray  # [K, H, W] bool
    amodal: np.ndarray  # [K, H, W] bool
    object_depth: np.ndarray  # [K, H, W] float32, 0 outside the object


def _hash(n: np.ndarray) -> np.ndarray:
    """A cheap deterministic pseudo-random value in [0, 1) per integer cell."""
    return np.modf(np.abs(np.sin(n * 12.9898 + 78.233) * 43758.5453))[0]


def albedo(points: np.ndarray, attr: np.ndarray) -> np.ndarray:
    """Surface colour at world points [N, 3] with per-point triangle attributes [N, 8]."""
    return _albedo(points, np.arange(len(points)), _Tables.of(attr))


@dataclass
class _Tables:
    """Per-triangle appearance split by use: colour, texture id, axis / scale, 1 / scale."""

    colour: np.ndarray  # [M, 3] float32
    tex: np.ndarray  # [M] int8
    axis_s: np.ndarray  # [M, 3] float32, texture axis divided by its scale
    inv_s: np.ndarray  # [M] float32

    @classmethod
    def of(cls, attr: np.ndarray) -> _Tables:
        inv = 1.0 / np.maximum(attr[:, 4], 1e-3)
        return cls(
            np.ascontiguousarray(attr[:, :3], np.float32),
            attr[:, 3].astype(np.int8),
            (attr[:, 5:8] * inv[:, None]).astype(np.float32),
            inv.astype(np.float32),
        )


def _albedo(points: np.ndarray, tri: np.ndarray, t: _Tables) -> np.ndarray:
    """Surface colour at world points [N, 3] lying on triangles `tri` (rows of `t`)."""
    col = t.colour[tri]
    tex = t.tex[tri]
    if not tex.any():
        return col
    m = np.ones(len(points), np.float32)
    sel = np.flatnonzero(tex == TEX_GRAIN)
    if len(sel):  # planks / boards: per-plank tone and dark seams
        u = np.einsum("ij,ij->i", points[sel], t.axis_s[tri[sel]])
        cell = np.floor(u)
        m[sel] = (0.82 + 0.3 * _hash(cell)) * np.where(u - cell < 0.04, 0.65, 1.0)
    sel = np.flatnonzero(tex == TEX_CHECKER)
    if len(sel):  # tiles / woven fabric
        c = np.floor(points[sel] * t.inv_s[tri[sel], None]).sum(1)
        m[sel] = np.where(np.mod(c, 2) == 0, 1.0, 0.8)
    sel = np.flatnonzero(tex == TEX_STRIPES)
    if len(sel):  # wallpaper / tape
        u = np.einsum("ij,ij->i", points[sel], t.axis_s[tri[sel]])
        m[sel] = np.where(np.mod(np.floor(u), 2) == 0, 1.0, 0.9)
    # Families of the randomised styles only (never on the template's surfaces).
    sel = np.flatnonzero(tex == TEX_NOISE)
    if len(sel):  # value-noise blotches (trilinear lattice noise)
        m[sel] = 0.65 + 0.5 * _value_noise(points[sel] * t.inv_s[tri[sel], None])
    sel = np.flatnonzero(tex == TEX_DOTS)
    if len(sel):  # polka dots: sections of a lattice of spheres
        f = points[sel] * t.inv_s[tri[sel], None]
        f -= np.floor(f) + 0.5
        m[sel] = np.where(np.einsum("ij,ij->i", f, f) < 0.17, 0.55, 1.0)
    sel = np.flatnonzero(tex == TEX_RINGS)
    if len(sel):  # concentric rings about the texture axis (shifted style only)
        q = points[sel] * t.inv_s[tri[sel], None]
        a = np.einsum("ij,ij->i", points[sel], t.axis_s[tri[sel]])
        r = np.sqrt(np.maximum(np.einsum("ij,ij->i", q, q) - a * a, 0.0))
        m[sel] = np.where(np.mod(np.floor(r), 2) == 0, 1.0, 0.6)
    out = col * m[:, None]
    sel = np.flatnonzero(tex == TEX_GRADIENT)
    if len(sel):  # colour ramps: the tint slides between two hues along the axis
        u = np.einsum("ij,ij->i", points[sel], t.axis_s[tri[sel]])
        w = np.abs(2.0 * (u - np.floor(u)) - 1.0)[:, None]  # triangle wave in [0, 1]
        out[sel] = col[sel] * (0.55 + 0.45 * (w * _TINT_A + (1.0 - w) * _TINT_B))
    return out


_TINT_A = np.array([1.0, 0.55, 0.35], np.float32)
_TINT_B = np.array([0.35, 0.6, 1.0], np.float32)


def _value_noise(q: np.ndarray) -> np.ndarray:
    """Smooth lattice noise in [0, 1] at points q [N, 3] (lattice spacing 1)."""
    i = np.floor(q)
    f = q - i
    f = f * f * (3.0 - 2.0 * f)
    n0 = i[:, 0] + 57.0 * i[:, 1] + 131.0 * i[:, 2]
    out = np.zeros(len(q), np.float64)
    for dx in (0, 1):
        wx = f[:, 0] if dx else 1.0 - f[:, 0]
        for dy in (0, 1):
            wy = f[:, 1] if dy else 1.0 - f[:, 1]
            for dz in (0, 1):
                wz = f[:, 2] if dz else 1.0 - f[:, 2]
                out += wx * wy * wz * _hash(n0 + dx + 57.0 * dy + 131.0 * dz)
    return out.astype(np.float32)


class Renderer:
    """Ray-casting scenes for one sample: `meshes` = objects (targets first), room last.

    Open3D scenes are built here, inside the process that renders (they do not pickle), with
    one thread each so that results and timings do not depend on the worker count."""

    def __init__(
        self,
        meshes: list[WorldMesh],
        cam_to_world: np.ndarray,
        light: np.ndarray,
        ambient: float,
        light_colours: np.ndarray | None = None,
        shadows: bool = True,
        background: np.ndarray | None = None,
    ) -> None:
        """`light`: one position [3] or several [J, 3]. `light_colours` [J, 3]: RGB
        intensity of each light; None = one white light of the template shading."""
        self.meshes = meshes
        self.rot = np.asarray(cam_to_world[:3, :3], np.float64)
        self.origin = np.asarray(cam_to_world[:3, 3], np.float64)
        self.light = np.asarray(light, np.float64)
        self.ambient = float(ambient)
        self.lights = self.light.reshape(-1, 3).astype(np.float32)
        self.white = light_colours is None
        if self.white and len(self.lights) != 1:
            raise ValueError("several lights need light_colours")
        self.light_colours = (
            None if light_colours is None else np.asarray(light_colours, np.float32).reshape(-1, 3)
        )
        self.shadows = bool(shadows)
        self.background = _BACKGROUND if background is None else np.asarray(background, np.float32)
        self.scenes = []
        for m in meshes:
            s = o3d.t.geometry.RaycastingScene(nthreads=1)
            s.add_triangles(
                o3d.core.Tensor(np.ascontiguousarray(m.vertices, np.float32)),
                o3d.core.Tensor(np.ascontiguousarray(m.triangles, np.uint32)),
            )
            self.scenes.append(s)
        sizes = [len(m.triangles) for m in meshes]
        self.tri_offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._attr: _Tables | None = None  # built on first shading (checks need none)
        self._tri_normal: np.ndarray | None = None
        self._rays: dict[tuple, np.ndarray] = {}
        self._suffixes: dict[int, o3d.t.geometry.RaycastingScene] = {}

    @property
    def num_geometries(self) -> int:
        return len(self.meshes)

    def _tables(self) -> tuple[_Tables, np.ndarray]:
        """Per-triangle appearance and face normals of all geometries, concatenated."""
        if self._attr is None or self._tri_normal is None:
            attr = np.concatenate([m.tri_attr for m in self.meshes]).astype(np.float32)
            self._attr = _Tables.of(attr)
            # Face normals once per triangle: cheaper than copying Open3D's per-ray normals.
            nrm = []
            for m in self.meshes:
                t = np.asarray(m.vertices, np.float64)[m.triangles]
                n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
                nrm.append(n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12))
            self._tri_normal = np.concatenate(nrm).astype(np.float32)
        return self._attr, self._tri_normal

    # -------------------------------------------------------------------------- rays
    def rays(self, cam: Camera) -> np.ndarray:
        """[H, W, 6] float32 world rays of the format's pixel grid (direction has camera z = 1)."""
        key = (cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height)
        if key not in self._rays:
            u = ((np.arange(cam.width) - cam.cx) / cam.fx).astype(np.float32)
            v = ((np.arange(cam.height) - cam.cy) / cam.fy).astype(np.float32)
            rx, ry, rz = self.rot.T.astype(np.float32)  # camera axes in world coordinates
            r = np.empty((cam.height, cam.width, 6), np.float32)
            r[..., :3] = self.origin
            # R @ (u, v, 1), written out: no BLAS call (its threads would fight the workers)
            r[..., 3:] = u[None, :, None] * rx + v[:, None, None] * ry + rz
            self._rays[key] = r
        return self._rays[key]

    def project_box(self, g: int, cam: Camera) -> tuple[int, int, int, int]:
        """Pixel window (v0, v1, u0, u1) holding geometry g's projection, clipped to the image;
        the whole image when part of it lies behind the camera."""
        v = (self.meshes[g].vertices - self.origin) @ self.rot  # world -> camera
        if (v[:, 2] <= 1e-3).any():
            return 0, cam.height, 0, cam.width
        u = cam.fx * v[:, 0] / v[:, 2] + cam.cx
        w = cam.fy * v[:, 1] / v[:, 2] + cam.cy
        u0 = max(int(np.floor(u.min())) - 1, 0)
        u1 = min(int(np.ceil(u.max())) + 2, cam.width)
        v0 = max(int(np.floor(w.min())) - 1, 0)
        v1 = min(int(np.ceil(w.max())) + 2, cam.height)
        return v0, max(v1, v0), u0, max(u1, u0)

    # ----------------------------------------------------------------------- casting
    def depths(self, cam: Camera, geoms: list[int] | None = None) -> np.ndarray:
        """[len(geoms), H, W] float32 depth of each geometry alone; inf where it is not hit."""
        geoms = list(range(self.num_geometries)) if geoms is None else geoms
        return self.cast(cam, geoms, prims=False).depth

    def cast(self, cam: Camera, geoms: list[int] | None = None, prims: bool = True) -> Hits:
        geoms = list(range(self.num_geometries)) if geoms is None else geoms
        rays = self.rays(cam)
        n, h, w = len(geoms), cam.height, cam.width
        depth = np.full((n, h, w), np.inf, np.float32)
        prim = np.full((n, h, w), -1, np.int32) if prims else np.zeros((0,), np.int32)
        for i, g in enumerate(geoms):
            v0, v1, u0, u1 = self.project_box(g, cam)
            if v1 <= v0 or u1 <= u0:
                continue
            sub = np.ascontiguousarray(rays[v0:v1, u0:u1])
            out = self.scenes[g].cast_rays(o3d.core.Tensor(sub), nthreads=1)
            t = out["t_hit"].numpy()
            depth[i, v0:v1, u0:u1] = t
            if prims:
                hit = np.isfinite(t)
                prim[i, v0:v1, u0:u1] = np.where(hit, out["primitive_ids"].numpy(), -1)
        return Hits(depth, prim)

    def _suffix(self, k: int) -> o3d.t.geometry.RaycastingScene:
        """A scene of objects k .. n-1 (what can cast shadows in layer k+1); ids = k + local."""
        if k not in self._suffixes:
            sc = o3d.t.geometry.RaycastingScene(nthreads=1)
            for m in self.meshes[k:-1]:  # the room (convex, light inside) casts no shadow
                sc.add_triangles(
                    o3d.core.Tensor(np.ascontiguousarray(m.vertices, np.float32)),
                    o3d.core.Tensor(np.ascontiguousarray(m.triangles, np.uint32)),
                )
            self._suffixes[k] = sc
        return self._suffixes[k]

    def _shadow_rays(self, pts: np.ndarray, nrm: np.ndarray, j: int = 0) -> np.ndarray:
        """Rays from each surface point (lifted off it) to light j; t in [0, 1] spans it."""
        rays = np.empty((len(pts), 6), np.float32)
        org = rays[:, :3]
        np.multiply(nrm, np.float32(_SHADOW_EPS), out=org)
        org += pts
        np.subtract(self.lights[j], org, out=rays[:, 3:])
        return rays

    def _blocked(self, k: int, rays: np.ndarray) -> np.ndarray:
        """Whether any of objects k .. n-1 blocks each shadow ray."""
        if len(rays) == 0 or k >= self.num_geometries - 1 or not self.shadows:
            return np.zeros(len(rays), bool)
        t = o3d.core.Tensor(np.ascontiguousarray(rays))
        return self._suffix(k).test_occlusions(t, 0.0, 1.0, nthreads=1).numpy().astype(bool)

    # ----------------------------------------------------------------------- shading
    def _surface(self, cam: Camera, hits: Hits, win: np.ndarray, pix: np.ndarray):
        """Hit point, camera-facing normal, albedo and n.l [n, J] (one column per light) at
        flat pixel indices `pix` whose nearest geometry is `win`."""
        g_n, npx = len(hits.depth), cam.height * cam.width
        d = hits.depth.reshape(g_n, npx)[win, pix]
        rays = self.rays(cam).reshape(npx, 6)
        dirs = rays[pix, 3:] if len(pix) < npx else rays[:, 3:]
        pts = d[:, None] * dirs
        pts += self.origin.astype(np.float32)
        tri = self.tri_offset[win] + hits.prim.reshape(g_n, npx)[win, pix]
        attr, tri_normal = self._tables()
        nrm = tri_normal[tri]
        flip = np.einsum("ij,ij->i", nrm, dirs) > 0
        nrm[flip] *= -1.0
        alb = _albedo(pts, tri, attr)
        ndotl = np.empty((len(pix), len(self.lights)), np.float32)
        for j, light in enumerate(self.lights):
            to_l = light - pts
            nd = np.einsum("ij,ij->i", nrm, to_l)
            nd /= np.sqrt(np.einsum("ij,ij->i", to_l, to_l))
            ndotl[:, j] = np.maximum(nd, 0.0, out=nd)
        return pts, nrm, alb, ndotl

    def shade(self, cam: Camera, hits: Hits, num_targets: int, noise: np.ndarray) -> Layers:
        """Compose the K layers from per-geometry hits (geometry order: targets, clutter,
        room; `hits` from `cast` over all geometries) and shade them. `noise` [H, W, 3] is
        added to every layer alike."""
        k_n, g_n = num_targets, self.num_geometries
        h, w = cam.height, cam.width
        npx = h * w
        flat_d = hits.depth.reshape(g_n, npx)
        # Layer 1 over the whole image. argmin keeps the lowest index on ties, so a target
        # wins over anything listed after it (objects before the room).
        win1 = np.argmin(flat_d, axis=0)
        valid1 = np.isfinite(flat_d.min(axis=0))  # False only where rays leave the room
        n_l = len(self.lights)
        bg = self.background
        alb = np.tile(bg, (npx, 1))
        ndotl = np.zeros((npx, n_l), np.float32)
        pix = np.nonzero(valid1)[0]
        pts, nrm, alb[pix], ndotl[pix] = self._surface(cam, hits, win1[pix], pix)
        # Shadows of layer 1 with the first blocker along each shadow ray (per light): in
        # layer k a pixel stays shadowed when that blocker is still there; only pixels whose
        # blocker was removed are tested again (against the objects left).
        lit_at, srays, blocker, shadow1 = [], [], [], []
        for j in range(n_l):
            front = ndotl[pix, j] > 0
            lit = pix[front]
            at = np.full(npx, -1, np.int64)  # pixel -> row of its shadow ray
            at[lit] = np.arange(len(lit))
            sr = self._shadow_rays(pts[front], nrm[front], j)
            bl = np.full(npx, -1, np.int64)
            if len(lit) and g_n > 1 and self.shadows:
                out = self._suffix(0).cast_rays(o3d.core.Tensor(sr), nthreads=1)
                t = out["t_hit"].numpy()
                gid = out["geometry_ids"].numpy().astype(np.int64)
                bl[lit] = np.where(t < 1.0, gid, -1)
            lit_at.append(at)
            srays.append(sr)
            blocker.append(bl)
            shadow1.append(bl >= 0)
        shadow1_all = np.stack(shadow1, axis=1)  # [npx, J]

        def colour(a: np.ndarray, l: np.ndarray, sh: np.ndarray, nz: np.ndarray) -> np.ndarray:
            if self.white:  # the template's single white light
                shade = self.ambient + (1.0 - self.ambient) * 1.1 * l[:, 0] * ~sh[:, 0]
                return np.clip(np.rint(a * (shade[:, None] * 255.0) + nz), 0, 255).astype(np.uint8)
            diffuse = (l * ~sh) @ self.light_colours  # [n, 3]: tinted lights add up
            shade3 = self.ambient + (1.0 - self.ambient) * 1.1 * diffuse
            return np.clip(np.rint(a * (shade3 * 255.0) + nz), 0, 255).astype(np.uint8)

        depth = np.zeros((k_n, npx), np.float32)
        rgb = np.zeros((k_n, npx, 3), np.uint8)
        amodal = np.isfinite(flat_d[:k_n])
        visible = np.stack([(win1 == k) & valid1 for k in range(k_n)])
        obj_depth = np.where(amodal, flat_d[:k_n], 0.0).astype(np.float32)
        noise = noise.reshape(npx, 3)
        rgb[0] = colour(alb, ndotl, shadow1_all, noise)
        for k in range(k_n):
            d_k = flat_d[k:].min(axis=0)
            depth[k] = np.where(np.isfinite(d_k), d_k, 0.0)
            if k == 0:
                continue
            # Layer k+1 (0-based k) differs from layer 1 where a removed object was in front
            # and where a removed object's shadow lay; only those pixels are shaded again.
            changed = valid1 & (win1 < k)
            freed = [shadow1[j] & (blocker[j] < k) for j in range(n_l)]
            gone = np.nonzero(np.logical_or.reduce(freed) & ~changed)[0]
            still = shadow1_all[gone]
            for j in range(n_l):
                retest = np.nonzero(freed[j][gone])[0]
                still[retest, j] = self._blocked(k, srays[j][lit_at[j][gone[retest]]])
            ch = np.nonzero(changed)[0]
            ch = ch[np.isfinite(d_k[ch])]
            a_k = np.tile(bg, (len(ch), 1))
            l_k = np.zeros((len(ch), n_l), np.float32)
            sh_k = np.zeros((len(ch), n_l), bool)
            if len(ch):
                win = np.argmin(flat_d[k:, ch], axis=0) + k
                p2, n2, a_k, l_k = self._surface(cam, hits, win, ch)
                for j in range(n_l):
                    sel = l_k[:, j] > 0
                    sh_k[sel, j] = self._blocked(k, self._shadow_rays(p2[sel], n2[sel], j))
            rgb[k] = rgb[0]
            rgb[k, changed] = colour(
                bg[None], np.zeros((1, n_l)), np.zeros((1, n_l), bool), noise[changed]
            )
            rgb[k, ch] = colour(a_k, l_k, sh_k, noise[ch])
            rgb[k, gone] = colour(alb[gone], ndotl[gone], still, noise[gone])
        return Layers(
            depth.reshape(k_n, h, w),
            rgb.reshape(k_n, h, w, 3),
            visible.reshape(k_n, h, w),
            amodal.reshape(k_n, h, w),
            obj_depth.reshape(k_n, h, w),
        )
