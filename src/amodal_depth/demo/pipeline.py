"""The demo's work, free of any web framework: check the uploads, run the public API, write
the pictures and the 3D files of one request.

    config = DemoConfig.default()
    result = run_request(DemoRequest(image, ["a.png", "b.png", "c.png"], "visible"), config)

The steps are those of `amodal-depth predict` and `reconstruct`: masks.read_masks /
prepare_masks (amodal completion for visible masks), `load_model(...).predict_layers`,
predict.align_layers (or the layers in metres when an observed depth is given) and
reconstruct.reconstruct_layers (the fusion rule), then outputs.write_result. Every bad input
is a one-line UserError, the project's own messages, with upload folders cut from paths.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from amodal_depth.demo.outputs import DemoResult, write_result
from amodal_depth.demo.samples import RGBD_WEIGHTS
from amodal_depth.errors import UserError

MAX_PIXELS = 4_000_000
"""Largest image the demo accepts (width x height): 2560 x 1560 or so; the fused cloud of a
bigger one makes PLY/GLB files of hundreds of MB."""
MAX_UPLOAD = "25mb"
"""Largest upload (each file), enforced by the web server."""
IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
MASK_TYPES = (".png",)
DEPTH_TYPES = (".png", ".npy", ".exr")
HIDDEN_COLOURS = ("inpaint", "flat")
OUT_NAME = "amodal-depth-demo"
"""Folder under the system temp dir holding the files of the last requests."""


@dataclass
class DemoConfig:
    """Which weights the demo uses and where it writes. weights None: the default of
    `amodal-depth predict` ($AMODAL_DEPTH_WEIGHTS, else weights/model.safetensors)."""

    weights: Path | None = None
    rgbd_weights: Path = RGBD_WEIGHTS
    completion_weights: Path | None = None
    device: str = "cpu"
    out_root: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / OUT_NAME)
    keep_results: int = 32

    def rgb_weights(self) -> Path:
        from amodal_depth.predict import default_weights

        return Path(self.weights) if self.weights is not None else default_weights()

    def completion_path(self) -> Path | None:
        """The completion weights, or None when there are none (visible masks then fail)."""
        if self.completion_weights is not None:
            return Path(self.completion_weights)
        from amodal_depth.completion.api import default_weights

        try:
            return default_weights()
        except UserError:
            return None

    def status(self) -> dict[str, Any]:
        """What is available: shown at the top of the page and by `amodal-depth demo`."""
        try:
            rgb, rgb_error = self.rgb_weights(), None
        except UserError as e:
            rgb, rgb_error = None, str(e)
        comp = self.completion_path()
        return {
            "weights": str(rgb) if rgb else None,
            "weights_error": rgb_error,
            "rgbd_weights": str(self.rgbd_weights) if Path(self.rgbd_weights).is_file() else None,
            "completion_weights": str(comp) if comp is not None and comp.is_file() else None,
        }


@dataclass
class DemoRequest:
    """One run: image HxWx3 uint8 RGB (or a path), mask files (one per object, or one
    instance-id PNG), their kind, an optional observed depth file (PNG millimetres, .npy or
    .exr metres), the camera ('fx,fy,cx,cy' or a horizontal fov) and the hidden colour."""

    image: np.ndarray | str | Path | None
    masks: list[str | Path] | None
    masks_kind: str = "visible"
    depth: str | Path | None = None
    intrinsics: str | None = None
    fov: float | None = None
    hidden_colour: str = "inpaint"


# ------------------------------------------------------------------------------ models
_MODELS: dict[tuple[str, int, str], Any] = {}
_MODELS_LOCK = threading.Lock()


def load_cached(path: Path, device: str = "cpu") -> Any:
    """load_model(path), loaded once per file version and device."""
    from amodal_depth.models.checkpoints import load_model

    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights {path} do not exist")
    key = (str(path.resolve()), path.stat().st_mtime_ns, device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_model(path, device=device)
        return _MODELS[key]


def choose_weights(config: DemoConfig, with_depth: bool) -> Path:
    """The RGB-D weights for a request with a depth map when they exist, else the RGB ones."""
    if with_depth and Path(config.rgbd_weights).is_file():
        return Path(config.rgbd_weights)
    return config.rgb_weights()


# ------------------------------------------------------------------------------ inputs
def short_paths(message: str, paths: list[str | Path | None]) -> str:
    """The message with the upload folders of `paths` removed (file names stay)."""
    for p in paths:
        if p:
            parent = str(Path(p).parent)
            if parent not in ("", "."):
                message = message.replace(parent + os.sep, "")
    return message


def _suffix_ok(path: str | Path, allowed: tuple[str, ...], what: str) -> None:
    if Path(path).suffix.lower() not in allowed:
        raise UserError(
            f"{Path(path).name}: {what} must be a {' / '.join(allowed)} file, got "
            f"'{Path(path).suffix or 'no extension'}'"
        )


def check_image(image: np.ndarray | str | Path | None) -> np.ndarray:
    """HxWx3 uint8 RGB within MAX_PIXELS, or a one-line UserError."""
    from amodal_depth.predict import read_image

    if image is None:
        raise UserError("upload an image first (or load a sample)")
    if isinstance(image, str | Path):
        _suffix_ok(image, IMAGE_TYPES, "an image")
        image = read_image(image)
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise UserError(f"the image must be 8-bit RGB, got shape {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    if h * w > MAX_PIXELS:
        raise UserError(
            f"the image is {w}x{h} = {w * h / 1e6:.1f} MP; the demo takes at most "
            f"{MAX_PIXELS / 1e6:.0f} MP: resize the image and its masks"
        )
    if min(h, w) < 16:
        raise UserError(f"the image is {w}x{h}; give at least 16 pixels a side")
    return np.ascontiguousarray(image)


def nonbinary_masks(paths: list[str | Path]) -> list[str]:
    """Names of separate mask files with more than two values (thresholded at half range)."""
    import cv2

    names = []
    if len(paths) < 2:
        return names  # one file is an instance-id PNG: many values are its point
    for p in paths:
        m = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if m is not None and len(np.unique(m)) > 2:
            names.append(Path(p).name)
    return names


def load_masks(paths: list[str | Path] | None, width: int, height: int) -> np.ndarray:
    """[N,H,W] bool from the uploaded mask files (masks.read_masks' rules)."""
    from amodal_depth.masks import read_masks

    if not paths:
        raise UserError(
            "upload the masks: one PNG per object (0/255), or one instance-id PNG "
            "(0 = none, 1..K = the objects)"
        )
    for p in paths:
        _suffix_ok(p, MASK_TYPES, "a mask")
    return read_masks(list(paths), (width, height))


def load_depth(path: str | Path, height: int, width: int) -> np.ndarray:
    """HxW float32 metres from a depth file (PNG millimetres, .npy / .exr metres), checked
    as every entry point checks an observation (size, no negatives, enough valid pixels)."""
    from amodal_depth.models.observation import check_observation
    from amodal_depth.observations import read_depth

    _suffix_ok(path, DEPTH_TYPES, "a depth map")
    depth = read_depth(path)
    check_observation(depth, height, width, "depth")
    return depth


def check_camera(width: int, height: int, intrinsics: str | None, fov: float | None) -> Any:
    """The Camera: 'fx,fy,cx,cy' when given (non-blank), else the horizontal fov."""
    from amodal_depth.reconstruct import resolve_camera

    text = (intrinsics or "").strip()
    if text:
        return resolve_camera(width, height, None, text)
    return resolve_camera(width, height, None if fov is None else float(fov), None)


# ------------------------------------------------------------------------------ run
_DIRS_LOCK = threading.Lock()


def new_result_dir(config: DemoConfig) -> Path:
    """A fresh folder for one request's files; the oldest beyond keep_results are removed."""
    root = Path(config.out_root)
    with _DIRS_LOCK:
        root.mkdir(parents=True, exist_ok=True)
        old = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        for p in old[: max(0, len(old) - config.keep_results + 1)]:
            shutil.rmtree(p, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix="run-", dir=root))


def _layers(model: Any, image: np.ndarray, amodal: np.ndarray, depth: np.ndarray | None):
    """(layers for reconstruct_layers, display disparity, scale rule, record)."""
    from amodal_depth.predict import align_layers
    from amodal_depth.reconstruct import MetricDepth

    if depth is None:
        disp = model.predict_layers(image, amodal)
        disp, fits = align_layers(disp, amodal)
        return disp, disp, None, {"units": "relative", "layer_fits": fits}
    metres = model.predict_layers(image, amodal, depth=depth)
    with np.errstate(divide="ignore", invalid="ignore"):
        disp = np.where(metres > 0, 1.0 / metres, np.nan).astype(np.float32)
    return metres, disp, MetricDepth(), {"units": "metres"}


def _check_count(masks: np.ndarray, k_model: int, weights: Path) -> None:
    if len(masks) != k_model:
        raise UserError(
            f"{weights.name} predicts K = {k_model} layers, so it needs {k_model} masks (one "
            f"per object); got {len(masks)}"
        )


def _prepare(image: np.ndarray, masks: np.ndarray, kind: str, config: DemoConfig):
    from amodal_depth.masks import MASK_KINDS, prepare_masks

    if kind not in MASK_KINDS:
        raise UserError(f"mask kind must be one of {', '.join(MASK_KINDS)}, got {kind!r}")
    comp = None
    if kind == "visible":
        comp = config.completion_path()
        if comp is None or not comp.is_file():
            raise UserError(
                "visible masks need the amodal completion weights (weights/completion.safetensors"
                "), which this installation does not have yet: choose mask kind 'amodal' and "
                "give the whole objects' masks, or start the demo with --completion-weights FILE"
            )
    return prepare_masks(image, masks, kind, None, comp)


def run_request(req: DemoRequest, config: DemoConfig) -> DemoResult:
    """One demo run (module docstring) -> DemoResult; bad input raises UserError."""
    from amodal_depth.reconstruct import reconstruct_layers

    uploads = [*(req.masks or []), req.depth, req.image if isinstance(req.image, str) else None]
    try:
        t0 = time.perf_counter()
        image = check_image(req.image)
        h, w = image.shape[:2]
        user_masks = load_masks(req.masks, w, h)
        warnings = [
            f"{n} is not a binary mask; thresholded at half its range"
            for n in nonbinary_masks(list(req.masks or []))
        ]
        depth = None if not req.depth else load_depth(req.depth, h, w)
        camera = check_camera(w, h, req.intrinsics, req.fov)
        if req.hidden_colour not in HIDDEN_COLOURS:
            raise UserError(f"hidden colour must be one of {', '.join(HIDDEN_COLOURS)}")
        wpath = choose_weights(config, depth is not None)
        model = load_cached(wpath, config.device)
        _check_count(user_masks, model.config.num_layers, wpath)
        prepared = _prepare(image, user_masks, req.masks_kind, config)
        t1 = time.perf_counter()
        layers, disp, scale, record = _layers(model, image, prepared.amodal, depth)
        t2 = time.perf_counter()
        cloud = reconstruct_layers(
            layers, prepared.amodal, image, camera, None, scale, req.hidden_colour
        )
    except UserError as e:
        raise UserError(short_paths(str(e), uploads)) from None
    t3 = time.perf_counter()
    info = {
        "weights": wpath.name,
        "variant": model.config.variant,
        "observed_depth_input": bool(model.config.observed_depth),
        **prepared.info,
        "order": [i + 1 for i in prepared.order],
        "depth_given": depth is not None,
        **record,
        "seconds": {
            "masks": round(t1 - t0, 3),
            "model": round(t2 - t1, 3),
            "fusion": round(t3 - t2, 3),
        },
    }
    result = write_result(new_result_dir(config), image, prepared, disp, cloud, info)
    result.info["seconds"]["total"] = round(time.perf_counter() - t0, 3)
    result.warnings.extend(warnings)
    return result
