"""`amodal-depth reconstruct PREDICT_DIR|IMAGE --out DIR`: layered depth -> fused point cloud.

Writes OUT/points.ply, OUT/mesh.ply (--mesh), OUT/scene.glb (--glb) and, last,
OUT/reconstruct.json (what ran: input, camera, scale rule and its numbers, fusion, colours,
points per layer and object, files, seconds), so its presence means the set is complete.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_write_json, check_output_dir
from amodal_depth.reconstruct.api import reconstruct_image, reconstruct_layers
from amodal_depth.reconstruct.camera import DEFAULT_FOV_DEG, resolve_camera
from amodal_depth.reconstruct.export import make_mesh, write_glb, write_mesh_ply, write_ply
from amodal_depth.reconstruct.scale import (
    DEFAULT_DEPTH_RANGE,
    CameraHeight,
    DepthRange,
    KnownDepths,
    MedianDepth,
    MetricDepth,
    ScaleRule,
    check_rule,
)


def _known_depth(text: str) -> tuple[float, float, float]:
    try:
        u, v, m = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected U,V,METRES (column, row, depth in metres), got {text!r}"
        ) from None
    return u, v, m


def _depth_range(text: str) -> tuple[float, float]:
    try:
        near, far = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NEAR,FAR in metres, got {text!r}") from None
    return near, far


def scale_rule_from_args(a: argparse.Namespace) -> ScaleRule | None:
    """The rule the options ask for; None when none is given (the default applies)."""
    if a.known_depth:
        return KnownDepths(tuple(a.known_depth))
    if a.camera_height is not None:
        return CameraHeight(a.camera_height)
    if a.median_depth is not None:
        return MedianDepth(a.median_depth)
    if a.depth_range is not None:
        return DepthRange(*a.depth_range)
    return None


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e}); rerun amodal-depth predict") from None


def _find(path_text: str, base: Path) -> Path | None:
    p = Path(path_text)
    for cand in (p, base / p, base / p.name):
        if cand.is_file():
            return cand
    return None


def read_predict_dir(d: Path, image_path: str | None) -> dict[str, Any]:
    """The layers, masks, image and record of a finished `predict` output folder."""
    from amodal_depth.predict import read_image, read_mask

    info_path = d / "predict.json"
    if not info_path.is_file():
        raise UserError(f"{d}: no predict.json, so not a finished predict output; rerun predict")
    info = _read_json(info_path)
    metric = info.get("metric") is True and (d / "depth.npy").is_file()
    layers_path = d / ("depth.npy" if metric else "disparity.npy")
    try:
        layers = np.load(layers_path)
    except (OSError, ValueError) as e:
        raise UserError(f"{layers_path}: cannot read it ({e}); rerun predict") from None
    if layers.ndim != 3:
        raise UserError(f"{layers_path}: expected [K,H,W], got shape {list(layers.shape)}")
    img = _find(image_path, Path.cwd()) if image_path else _find(str(info.get("image", "")), d)
    if img is None:
        raise UserError(
            f"{d}: the image {image_path or info.get('image')!r} is not found; pass --image PATH"
        )
    image = read_image(img)
    k_n, h, w = layers.shape
    if image.shape[:2] != (h, w):
        raise UserError(f"{img}: image is {image.shape[1]}x{image.shape[0]}, layers are {w}x{h}")
    names = [d / f"amodal_{k + 1}.png" for k in range(k_n)]
    if not all(p.is_file() for p in names):
        listed = info.get("masks") or []
        if len(listed) != k_n:
            raise UserError(
                f"{d}: no amodal_<k>.png and predict.json lists {len(listed)} masks "
                f"for {k_n} layers; rerun predict"
            )
        names = [_find(str(m), d) or Path(m) for m in listed]
    masks = np.stack([read_mask(p, (w, h)) for p in names])
    return {
        "layers": layers,
        "metric": metric,
        "image": image,
        "image_path": str(img),
        "masks": masks,
        "mask_paths": [str(p) for p in names],
        "predict": info,
    }


def _points_per_object(cloud: Any) -> dict[str, int]:
    counts = np.bincount(cloud.object, minlength=int(cloud.object.max(initial=0)) + 1)
    return {("background" if i == 0 else f"o_{i}"): int(c) for i, c in enumerate(counts)}


def _read_inputs(a: argparse.Namespace, rule: ScaleRule | None) -> dict[str, Any]:
    """Read and check the input (predict folder, or image + masks + weights) before any work."""
    from amodal_depth.predict import read_image, read_mask

    src = Path(a.input)
    if src.is_dir():
        if a.masks:
            raise UserError(f"{src} is a predict folder; --masks is only for an image input")
        got = read_predict_dir(src, a.image)
        if got["metric"] and rule is not None:
            raise UserError(f"{src} holds metric depth.npy; drop the scale option")
        got["record"] = {
            "input": str(src),
            "kind": "predict_dir",
            "image": got["image_path"],
            "masks": got["mask_paths"],
            "layers_file": "depth.npy" if got["metric"] else "disparity.npy",
        }
        return got
    if not src.is_file():
        raise UserError(f"{src}: no such predict folder or image file")
    if not a.masks:
        raise UserError(f"{src} is an image: give the amodal masks with --masks M1.png M2.png ...")
    image = read_image(src)
    h, w = image.shape[:2]
    masks = np.stack([read_mask(p, (w, h)) for p in a.masks])
    from amodal_depth.models.checkpoints import read_model_config
    from amodal_depth.predict import default_weights

    weights = Path(a.weights) if a.weights is not None else default_weights()
    k_model = read_model_config(weights).num_layers  # bad files: one-line UserError
    if masks.shape[0] != k_model:
        raise UserError(
            f"{weights} predicts K = {k_model} layers, so it needs {k_model} masks "
            f"(front to back); got {len(masks)}"
        )
    record = {
        "input": str(src),
        "kind": "image",
        "image": str(src),
        "masks": [str(m) for m in a.masks],
        "weights": str(weights),
    }
    return {"image": image, "masks": masks, "weights": weights, "record": record}


def _build_cloud(a: argparse.Namespace, rule: ScaleRule | None, got: dict[str, Any]) -> Any:
    """Predict (image input) and fuse."""
    if "layers" in got:
        rule = MetricDepth() if got["metric"] else rule
        return reconstruct_layers(
            got["layers"], got["masks"], got["image"], a.intrinsics, a.fov, rule, a.hidden_colour
        )
    from amodal_depth.models.checkpoints import load_model

    model = load_model(got["weights"], device=a.device)
    return reconstruct_image(
        got["image"],
        got["masks"],
        model,
        a.intrinsics,
        a.fov,
        rule,
        a.hidden_colour,
        input_size=a.size,
        device=a.device,
    )


def _check_numbers(a: argparse.Namespace, rule: ScaleRule | None, width: int, height: int):
    """Camera and scale numbers, checked before the output folder is touched."""
    resolve_camera(width, height, a.fov, a.intrinsics)
    if rule is not None:
        check_rule(rule, width, height)


def run_reconstruct(a: argparse.Namespace) -> dict[str, Any]:
    """What `amodal-depth reconstruct` does (module docstring); returns reconstruct.json."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    rule = scale_rule_from_args(a)
    if not Path(a.input).exists():
        raise UserError(f"{a.input}: no such predict folder or image file")
    got = _read_inputs(a, rule)
    h, w = got["image"].shape[:2]
    _check_numbers(a, rule, w, h)
    out = Path(a.out)
    check_output_dir(out).mkdir(parents=True, exist_ok=True)
    (out / "reconstruct.json").unlink(missing_ok=True)  # present only when the set is complete
    record = got["record"]
    stages = 2 + int(a.mesh) + int(a.glb)
    with tqdm(
        total=stages, desc="reconstruct", unit="step", file=sys.stderr, disable=not a.progress
    ) as bar:
        cloud = _build_cloud(a, rule, got)
        bar.update(1)
        write_ply(out / "points.ply", cloud)
        files = ["points.ply"]
        bar.update(1)
        mesh = None
        if a.mesh:
            mesh, record["mesh"] = make_mesh(cloud)
            write_mesh_ply(out / "mesh.ply", mesh)
            files.append("mesh.ply")
            bar.update(1)
        if a.glb:
            write_glb(out / "scene.glb", cloud, mesh)
            files.append("scene.glb")
            bar.update(1)
    record.update(cloud.info)
    record["points_per_object"] = _points_per_object(cloud)
    record["files"] = [*files, "reconstruct.json"]
    record.setdefault("seconds", {})["total"] = round(time.perf_counter() - t0, 4)
    atomic_write_json(out / "reconstruct.json", record)
    return record


def _command(a: argparse.Namespace) -> int:
    r = run_reconstruct(a)
    per = ", ".join(f"layer {k + 1}: {n}" for k, n in enumerate(r["points_per_layer"]))
    sc = r["scale"]
    print(
        f"{r['points']} points ({per}); scale {sc['rule']}; files "
        f"{', '.join(r['files'])} -> {a.out}"
    )
    return 0


def _add_camera_and_scale(p: argparse.ArgumentParser) -> None:
    """--fov | --intrinsics, and the scale rules (one at most)."""
    cam = p.add_mutually_exclusive_group()
    cam.add_argument(
        "--fov",
        type=float,
        default=None,
        metavar="DEG",
        help=f"horizontal field of view (default {DEFAULT_FOV_DEG:g})",
    )
    cam.add_argument(
        "--intrinsics",
        default=None,
        metavar="fx,fy,cx,cy",
        help="pinhole intrinsics in pixels (OpenCV convention), or a camera.json with them",
    )
    sc = p.add_mutually_exclusive_group()
    sc.add_argument(
        "--depth-range",
        type=_depth_range,
        default=None,
        metavar="NEAR,FAR",
        help="scale and shift so the nearest / farthest 2%% of the view lie at NEAR / FAR "
        f"metres (default rule: {DEFAULT_DEPTH_RANGE[0]:g},{DEFAULT_DEPTH_RANGE[1]:g})",
    )
    sc.add_argument(
        "--median-depth",
        type=float,
        default=None,
        metavar="METRES",
        help="rescale the default so the median layer-1 depth is METRES",
    )
    sc.add_argument(
        "--known-depth",
        type=_known_depth,
        action="append",
        metavar="U,V,METRES",
        help="a pixel (column, row) of known depth: one rescales the default, two or more "
        "fit scale and shift",
    )
    sc.add_argument(
        "--camera-height",
        type=float,
        default=None,
        metavar="METRES",
        help="rescale the default so the floor plane lies METRES below the camera",
    )


def add_reconstruct_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `reconstruct` on the amodal-depth subparsers."""
    from amodal_depth.predict import WEIGHTS_ENV

    p = subparsers.add_parser(
        "reconstruct",
        help="fuse the layer depths of one image into a 3D point cloud (PLY, mesh, GLB)",
        description="Back-project the K layer depths of a predict output folder (or of IMAGE "
        "with --masks, predicted here) and fuse them: layer 1 everywhere, layer k > 1 only "
        "where o_1..o_{k-1} were removed. Writes OUT/points.ply (with per-point layer and "
        "object labels), optional mesh.ply and scene.glb, and reconstruct.json (docs/"
        "reconstruct.md).",
    )
    p.add_argument("input", metavar="PREDICT_DIR|IMAGE", help="predict --out folder, or an image")
    p.add_argument("--out", required=True, help="folder to write the results to")
    p.add_argument(
        "--masks",
        nargs="+",
        metavar="M.png",
        default=None,
        help="with an IMAGE: amodal mask of each object, nearest first",
    )
    p.add_argument(
        "--image",
        default=None,
        help="with a PREDICT_DIR: the image (default: the one predict.json names)",
    )
    _add_camera_and_scale(p)
    p.add_argument(
        "--hidden-colour",
        choices=["inpaint", "flat"],
        default="inpaint",
        help="colour of hidden surfaces: diffused from visible pixels (default) or a "
        "flat tint per layer",
    )
    p.add_argument("--mesh", action="store_true", help="also a cleaned Poisson mesh, mesh.ply")
    p.add_argument("--glb", action="store_true", help="also scene.glb (glTF binary, for the web)")
    p.add_argument(
        "--weights",
        default=None,
        help=f"with an IMAGE: model weights (default ${WEIGHTS_ENV}, else the "
        "committed weights/model.safetensors)",
    )
    p.add_argument("--size", type=int, default=None, help="with an IMAGE: network short side")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="default cpu")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=_command)
    return p
