"""Single-image 3D reconstruction from layered depth (docs/reconstruct.md).

    cloud = reconstruct_image(image, amodal_masks)          # default weights, 60 deg, 3 m
    write_ply("points.ply", cloud)

The pieces: `resolve_camera` (fov or intrinsics), the scale rules of `scale`
(`MedianDepth`, `DepthRange`, `KnownDepths`, `CameraHeight`, `InverseDepthFit`, `MetricDepth`),
`backproject`, `fuse_layers` (the fusion rule and colours), `write_ply` / `read_ply`,
`make_mesh`, `write_glb`, and the 3D metrics `reconstruction_metrics`.
"""

from amodal_depth.reconstruct.api import reconstruct_image, reconstruct_layers
from amodal_depth.reconstruct.camera import (
    DEFAULT_FOV_DEG,
    camera_from_fov,
    parse_intrinsics,
    resolve_camera,
)
from amodal_depth.reconstruct.export import (
    make_mesh,
    read_ply,
    write_glb,
    write_mesh_ply,
    write_ply,
)
from amodal_depth.reconstruct.fuse import (
    LayeredPointCloud,
    backproject,
    fuse_layers,
    fusion_masks,
    object_labels,
)
from amodal_depth.reconstruct.metrics3d import (
    TAUS,
    chamfer_l1,
    fscore,
    nearest_distances,
    reconstruction_metrics,
)
from amodal_depth.reconstruct.scale import (
    DEFAULT_DEPTH_RANGE,
    DEFAULT_MEDIAN_DEPTH,
    CameraHeight,
    DepthRange,
    InverseDepthFit,
    KnownDepths,
    MedianDepth,
    MetricDepth,
    to_metric,
)


def add_reconstruct_command(subparsers):  # noqa: ANN001, ANN201 - argparse internals
    """Register `amodal-depth reconstruct` (see reconstruct.cli)."""
    from amodal_depth.reconstruct.cli import add_reconstruct_command as add

    return add(subparsers)


__all__ = [
    "DEFAULT_FOV_DEG",
    "DEFAULT_DEPTH_RANGE",
    "DEFAULT_MEDIAN_DEPTH",
    "TAUS",
    "CameraHeight",
    "DepthRange",
    "InverseDepthFit",
    "KnownDepths",
    "LayeredPointCloud",
    "MedianDepth",
    "MetricDepth",
    "add_reconstruct_command",
    "backproject",
    "camera_from_fov",
    "chamfer_l1",
    "fscore",
    "fuse_layers",
    "fusion_masks",
    "make_mesh",
    "nearest_distances",
    "object_labels",
    "parse_intrinsics",
    "read_ply",
    "reconstruct_image",
    "reconstruct_layers",
    "reconstruction_metrics",
    "resolve_camera",
    "to_metric",
    "write_glb",
    "write_mesh_ply",
    "write_ply",
]
