"""Files of a reconstruction: PLY point cloud with labels, optional cleaned mesh, GLB.

points.ply  binary little-endian PLY: float x, y, z (metres, camera frame, OpenCV axes);
            uchar red, green, blue; uchar layer (1..K); uchar object (0 = background).
            open3d.io.read_point_cloud reads points and colours; open3d.t.io.read_point_cloud
            (and `read_ply`) also the labels.
mesh.ply    binary PLY: vertices with colours, triangles (Open3D reads it with
            read_triangle_mesh).
scene.glb   glTF 2.0 binary for the web: the points (mode POINTS, COLOR_0, and the labels as
            the custom attributes _LAYER and _OBJECT), plus the mesh when there is one.
            glTF is y up and looks along -z, so (x, y, z) are written as (x, -y, -z).

Every file is written under a temporary name in the target folder and renamed into place.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_path
from amodal_depth.reconstruct.fuse import LayeredPointCloud

POISSON_DEPTH = 8
"""Octree depth of the Poisson reconstruction (cells of extent / 256)."""
DENSITY_QUANTILE = 0.05
"""Vertices whose Poisson density is below this quantile are removed (extrapolated)."""
MAX_GAP = 3.0
"""Mesh vertices farther than MAX_GAP x the median point spacing from every point, and
triangles with an edge longer than 2 x MAX_GAP x that spacing, are removed."""


# ------------------------------------------------------------------------------ PLY
def _ply_bytes(vertex: np.ndarray, faces: np.ndarray | None) -> bytes:
    names = {"f4": "float", "u1": "uchar", "i4": "int"}
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {len(vertex)}"]
    for name in vertex.dtype.names:
        lines.append(f"property {names[vertex.dtype[name].str[1:]]} {name}")
    body = vertex.tobytes()
    if faces is not None:
        lines += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
        rec = np.empty(len(faces), np.dtype([("n", "u1"), ("idx", "<i4", (3,))]))
        rec["n"], rec["idx"] = 3, faces
        body += rec.tobytes()
    return ("\n".join(lines) + "\nend_header\n").encode("ascii") + body


def _vertices(points: np.ndarray, colors: np.ndarray, extra: dict[str, np.ndarray]) -> np.ndarray:
    fields = [
        ("x", "<f4"),
        ("y", "<f4"),
        ("z", "<f4"),
        ("red", "u1"),
        ("green", "u1"),
        ("blue", "u1"),
    ]
    fields += [(name, "u1") for name in extra]
    rec = np.empty(len(points), np.dtype(fields))
    rec["x"], rec["y"], rec["z"] = np.asarray(points, np.float32).T
    rec["red"], rec["green"], rec["blue"] = np.asarray(colors, np.uint8).T
    for name, values in extra.items():
        rec[name] = values
    return rec


def write_ply(path: str | Path, cloud: LayeredPointCloud) -> Path:
    """Write `cloud` as points.ply (format in the module docstring), atomically."""
    vertex = _vertices(cloud.points, cloud.colors, {"layer": cloud.layer, "object": cloud.object})
    with atomic_path(path) as tmp:
        tmp.write_bytes(_ply_bytes(vertex, None))
    return Path(path)


def read_ply(path: str | Path) -> LayeredPointCloud:
    """A LayeredPointCloud from a PLY written by `write_ply` (labels 0 when absent)."""
    import open3d as o3d

    if not Path(path).is_file():
        raise UserError(f"{path}: no such PLY file")
    t = o3d.t.io.read_point_cloud(str(path))
    if "positions" not in t.point:
        raise UserError(f"{path}: no points (not a PLY point cloud?)")
    pts = t.point.positions.numpy().astype(np.float32)
    n = len(pts)

    def attr(name: str, width: int) -> np.ndarray:
        if name not in t.point:
            return np.zeros((n, width), np.uint8)
        a = t.point[name].numpy()
        return (a * 255.0 + 0.5).astype(np.uint8) if a.dtype.kind == "f" else a.astype(np.uint8)

    return LayeredPointCloud(
        pts,
        attr("colors", 3),
        attr("layer", 1)[:, 0],
        attr("object", 1)[:, 0],
        np.zeros((n, 2), np.int32),
    )


def write_mesh_ply(path: str | Path, mesh: Any) -> Path:
    """Write an Open3D TriangleMesh (vertex colours, triangles) as binary PLY, atomically."""
    verts = np.asarray(mesh.vertices)
    cols = np.asarray(mesh.vertex_colors)
    cols = (cols * 255.0 + 0.5).astype(np.uint8) if len(cols) else np.full((len(verts), 3), 200)
    faces = np.asarray(mesh.triangles, np.int32)
    with atomic_path(path) as tmp:
        tmp.write_bytes(_ply_bytes(_vertices(verts, cols, {}), faces))
    return Path(path)


# ------------------------------------------------------------------------------ mesh
def point_spacing(points: np.ndarray) -> float:
    """Median distance from a point to its nearest neighbour (metres)."""
    from scipy.spatial import cKDTree

    if len(points) < 2:
        return 0.0
    d, _ = cKDTree(points).query(points, k=2)
    return float(np.median(d[:, 1]))


def make_mesh(cloud: LayeredPointCloud, depth: int = POISSON_DEPTH) -> tuple[Any, dict[str, Any]]:
    """Open3D screened Poisson surface of the cloud (normals estimated from 30 neighbours and
    turned towards the camera), cleaned: low-density vertices, vertices far from every point
    and triangles with long edges removed (constants above). -> (TriangleMesh, record)."""
    import open3d as o3d
    from scipy.spatial import cKDTree

    if len(cloud) < 100:
        raise UserError(f"--mesh needs at least 100 points, the cloud has {len(cloud)}")
    pcd = cloud.to_open3d()
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(30))
    pcd.orient_normals_towards_camera_location(np.zeros(3))
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        mesh, dens = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(pcd, depth=depth)
    dens = np.asarray(dens)
    spacing = max(point_spacing(cloud.points), 1e-6)
    verts = np.asarray(mesh.vertices)
    gap, _ = cKDTree(cloud.points).query(verts, k=1)
    drop = (dens < np.quantile(dens, DENSITY_QUANTILE)) | (gap > MAX_GAP * spacing)
    mesh.remove_vertices_by_mask(drop)
    tri, verts = np.asarray(mesh.triangles), np.asarray(mesh.vertices)
    edges = np.stack(
        [np.linalg.norm(verts[tri[:, i]] - verts[tri[:, (i + 1) % 3]], axis=1) for i in range(3)], 1
    )
    mesh.remove_triangles_by_mask(edges.max(axis=1) > 2 * MAX_GAP * spacing)
    mesh.remove_unreferenced_vertices()
    record = {
        "method": "poisson",
        "octree_depth": depth,
        "density_quantile": DENSITY_QUANTILE,
        "point_spacing_m": round(spacing, 5),
        "max_gap_factor": MAX_GAP,
        "vertices": len(mesh.vertices),
        "triangles": len(mesh.triangles),
    }
    return mesh, record


# ------------------------------------------------------------------------------ GLB
def _gl(points: np.ndarray) -> np.ndarray:
    """OpenCV camera axes -> glTF axes (y up, looking along -z)."""
    return (np.asarray(points, np.float32) * np.array([1.0, -1.0, -1.0], np.float32)).astype("<f4")


class _Buffer:
    """The binary chunk of a GLB and its bufferViews/accessors."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def add(self, arr: np.ndarray, kind: str, ctype: int, target: int, **extra: Any) -> int:
        while len(self.data) % 4:
            self.data += b"\0"
        raw = np.ascontiguousarray(arr).tobytes()
        self.views.append(
            {"buffer": 0, "byteOffset": len(self.data), "byteLength": len(raw), "target": target}
        )
        self.data += raw
        acc = {
            "bufferView": len(self.views) - 1,
            "componentType": ctype,
            "count": int(arr.shape[0]),
            "type": kind,
            **extra,
        }
        self.accessors.append(acc)
        return len(self.accessors) - 1


def _positions(buf: _Buffer, pts: np.ndarray) -> int:
    lo = pts.min(axis=0) if len(pts) else np.zeros(3)
    hi = pts.max(axis=0) if len(pts) else np.zeros(3)
    return buf.add(pts, "VEC3", 5126, 34962, min=lo.tolist(), max=hi.tolist())


def _rgba(colors: np.ndarray) -> np.ndarray:
    c = np.asarray(colors, np.uint8)
    return np.concatenate([c, np.full((len(c), 1), 255, np.uint8)], axis=1)


def glb_bytes(cloud: LayeredPointCloud, mesh: Any | None = None) -> bytes:
    """The GLB file of the module docstring as bytes."""
    buf = _Buffer()
    attrs = {
        "POSITION": _positions(buf, _gl(cloud.points)),
        "COLOR_0": buf.add(_rgba(cloud.colors), "VEC4", 5121, 34962, normalized=True),
        "_LAYER": buf.add(cloud.layer.astype("<f4"), "SCALAR", 5126, 34962),
        "_OBJECT": buf.add(cloud.object.astype("<f4"), "SCALAR", 5126, 34962),
    }
    meshes = [{"name": "points", "primitives": [{"attributes": attrs, "mode": 0}]}]
    if mesh is not None and len(mesh.triangles):
        verts, cols = np.asarray(mesh.vertices), np.asarray(mesh.vertex_colors)
        cols = (cols * 255 + 0.5).astype(np.uint8) if len(cols) else np.full((len(verts), 3), 200)
        m_attrs = {
            "POSITION": _positions(buf, _gl(verts)),
            "COLOR_0": buf.add(_rgba(cols), "VEC4", 5121, 34962, normalized=True),
        }
        idx = buf.add(np.asarray(mesh.triangles, "<u4").ravel(), "SCALAR", 5125, 34963)
        meshes.append(
            {"name": "mesh", "primitives": [{"attributes": m_attrs, "indices": idx, "mode": 4}]}
        )
    while len(buf.data) % 4:
        buf.data += b"\0"
    doc = {
        "asset": {"version": "2.0", "generator": "amodal-depth reconstruct"},
        "scene": 0,
        "scenes": [{"nodes": list(range(len(meshes)))}],
        "nodes": [{"mesh": i, "name": m["name"]} for i, m in enumerate(meshes)],
        "meshes": meshes,
        "buffers": [{"byteLength": len(buf.data)}],
        "bufferViews": buf.views,
        "accessors": buf.accessors,
    }
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    total = 12 + 8 + len(js) + 8 + len(buf.data)
    return b"".join(
        [
            struct.pack("<III", 0x46546C67, 2, total),
            struct.pack("<II", len(js), 0x4E4F534A),
            js,
            struct.pack("<II", len(buf.data), 0x004E4942),
            bytes(buf.data),
        ]
    )


def write_glb(path: str | Path, cloud: LayeredPointCloud, mesh: Any | None = None) -> Path:
    """Write scene.glb (module docstring), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(glb_bytes(cloud, mesh))
    return Path(path)


def read_glb_json(path: str | Path) -> tuple[dict, bytes]:
    """(the glTF JSON, the binary chunk) of a GLB file; for checks and tests."""
    raw = Path(path).read_bytes()
    magic, version, total = struct.unpack_from("<III", raw, 0)
    if magic != 0x46546C67 or version != 2 or total != len(raw):
        raise UserError(f"{path}: not a glTF 2.0 binary file")
    n_js = struct.unpack_from("<I", raw, 12)[0]
    doc = json.loads(raw[20 : 20 + n_js])
    n_bin = struct.unpack_from("<I", raw, 20 + n_js)[0]
    return doc, raw[28 + n_js : 28 + n_js + n_bin]
