"""Reading and writing the `amodal-layers` dataset format (docs/data-format.md, version 1).

Layout::

    ROOT/manifest.json
    ROOT/samples/<id>/{rgb.png, camera.json, meta.json,
                       depth_<k>.png, rgb_<k>.png (k >= 2), visible_<k>.png,
                       amodal_<k>.png, object_depth_<k>.png}

Everything that touches these files goes through this module, so that the generator, the
verifier, the torch dataset and the adapters agree on names, dtypes and units. Writers are
atomic: a sample directory is written under a temporary name and renamed into place, so a
reader never sees half a sample, and an interrupted generation can simply be rerun.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_write_json, default_mode

FORMAT_NAME = "amodal-layers"
FORMAT_VERSION = 1
DEPTH_SCALE = 1000  # uint16 depth PNGs store millimetres
MAX_DEPTH_M = 65.535  # largest depth a uint16 millimetre PNG can hold
SAMPLES_DIR = "samples"
MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")


class FormatError(UserError, ValueError):
    """A dataset on disk does not follow the `amodal-layers` format.

    The message is one line that names the offending path and says how to fix it.
    """


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics, OpenCV axes and pixel convention (docs/data-format.md).

    Pixel (u, v) (column, row, 0-based) is the ray through ((u - cx)/fx, (v - cy)/fy, 1);
    a centred camera has cx = (width - 1)/2. Depth is z, not ray length.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "fx": float(self.fx),
            "fy": float(self.fy),
            "cx": float(self.cx),
            "cy": float(self.cy),
            "width": int(self.width),
            "height": int(self.height),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Camera:
        return cls(
            float(d["fx"]),
            float(d["fy"]),
            float(d["cx"]),
            float(d["cy"]),
            int(d["width"]),
            int(d["height"]),
        )

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> Camera:
        """A centred camera with square pixels and the given horizontal field of view."""
        fx = (width / 2.0) / np.tan(np.deg2rad(hfov_deg) / 2.0)
        return cls(fx, fx, (width - 1) / 2.0, (height - 1) / 2.0, width, height)

    def scaled(self, sx: float, sy: float) -> Camera:
        """Intrinsics after resizing the image by (sx, sy), keeping the pixel convention.

        Pixel centres map as u' + 0.5 = sx * (u + 0.5), hence cx' = sx * (cx + 0.5) - 0.5.
        """
        return Camera(
            self.fx * sx,
            self.fy * sy,
            sx * (self.cx + 0.5) - 0.5,
            sy * (self.cy + 0.5) - 0.5,
            round(self.width * sx),
            round(self.height * sy),
        )

    def flipped(self) -> Camera:
        """Intrinsics after a horizontal flip of the image (u' = W - 1 - u)."""
        return Camera(self.fx, self.fy, self.width - 1 - self.cx, self.cy, self.width, self.height)


@dataclass
class LayeredSample:
    """One sample in memory. K = number of target objects = number of layers.

    Arrays follow docs/data-format.md: index k-1 along the first axis is object o_k / layer k.
    Depths are float32 metres with 0 where there is no surface.
    """

    rgb: np.ndarray  # [H, W, 3] uint8, the input image (layer 1)
    depth: np.ndarray  # [K, H, W] float32 metres, layer-k depth
    layer_rgb: np.ndarray  # [K, H, W, 3] uint8; layer_rgb[0] equals rgb
    visible: np.ndarray  # [K, H, W] bool
    amodal: np.ndarray  # [K, H, W] bool
    object_depth: np.ndarray  # [K, H, W] float32 metres, 0 outside o_k
    camera: Camera
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        return int(self.depth.shape[0])


def sample_files(num_layers: int) -> list[str]:
    """Every file a complete sample directory holds, in a fixed order."""
    names = ["rgb.png", "camera.json", "meta.json"]
    for k in range(1, num_layers + 1):
        names += [f"depth_{k}.png", f"visible_{k}.png", f"amodal_{k}.png"]
        names += [f"object_depth_{k}.png"]
        if k >= 2:
            names.append(f"rgb_{k}.png")
    return names


def format_id(index: int) -> str:
    return f"{index:06d}"


# --------------------------------------------------------------------------------------
# encoding helpers


def depth_to_png(depth_m: np.ndarray) -> np.ndarray:
    """Metres -> uint16 millimetres; 0 (no surface), non-finite and negative stay 0."""
    d = np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    d = np.where(d > 0, d, 0.0)
    # Half a millimetre of slack: 65535 mm read back as float32 is 65.535003 m.
    if d.max(initial=0.0) >= MAX_DEPTH_M + 0.0005:
        raise ValueError(f"depth {d.max():.2f} m exceeds the {MAX_DEPTH_M} m a uint16 mm PNG holds")
    return np.round(d * DEPTH_SCALE).astype(np.uint16)


def png_to_depth(mm: np.ndarray, depth_scale: float = DEPTH_SCALE) -> np.ndarray:
    return mm.astype(np.float32) / float(depth_scale)


_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # fast; files are still deterministic


def _write_png(path: Path, img: np.ndarray) -> None:
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), img, _PNG_PARAMS):
        raise OSError(f"could not write {path}")


def read_png(path: Path, *, kind: str) -> np.ndarray:
    """Read one PNG of a sample. kind: 'rgb' (uint8 HxWx3, RGB order), 'mask' (bool HxW)
    or 'depth' (uint16 HxW, millimetres)."""
    if not path.is_file():
        raise FormatError(f"{path}: file is missing; regenerate the sample or the dataset")
    flag = cv2.IMREAD_COLOR if kind == "rgb" else cv2.IMREAD_UNCHANGED
    img = cv2.imread(str(path), flag)
    if img is None:
        raise FormatError(f"{path}: not a readable PNG (truncated or corrupt); regenerate it")
    if kind == "rgb":
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise FormatError(f"{path}: expected an 8-bit RGB PNG")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.ndim != 2:
        raise FormatError(f"{path}: expected a single-channel PNG, got shape {img.shape}")
    if kind == "mask":
        if img.dtype != np.uint8:
            raise FormatError(f"{path}: expected an 8-bit mask PNG, got {img.dtype}")
        return img > 127
    if kind == "depth":
        if img.dtype != np.uint16:
            raise FormatError(f"{path}: expected a 16-bit depth PNG (millimetres), got {img.dtype}")
        return img
    raise ValueError(f"unknown PNG kind {kind!r}")


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise FormatError(f"{path}: file is missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: not valid JSON ({e.msg if hasattr(e, 'msg') else e})") from e


# --------------------------------------------------------------------------------------
# writing


def write_sample(root: Path, sample_id: str, s: LayeredSample) -> Path:
    """Write one sample atomically to ROOT/samples/<id>; returns the final directory.

    The files are written into a hidden temporary directory beside the target and renamed
    into place in one step, so the sample is either complete or absent.
    """
    k = s.num_layers
    h, w = s.rgb.shape[:2]
    for name, arr, shape in [
        ("depth", s.depth, (k, h, w)),
        ("layer_rgb", s.layer_rgb, (k, h, w, 3)),
        ("visible", s.visible, (k, h, w)),
        ("amodal", s.amodal, (k, h, w)),
        ("object_depth", s.object_depth, (k, h, w)),
    ]:
        if arr.shape != shape:
            raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    samples = Path(root) / SAMPLES_DIR
    samples.mkdir(parents=True, exist_ok=True)
    final = samples / sample_id
    tmp = Path(tempfile.mkdtemp(prefix=f".{sample_id}.", suffix=".tmp", dir=samples))
    try:
        tmp.chmod(default_mode(directory=True))  # mkdtemp's 0700 would hide the dataset
        _write_png(tmp / "rgb.png", s.rgb)
        _write_json(tmp / "camera.json", s.camera.to_dict())
        _write_json(tmp / "meta.json", s.meta)
        for i in range(k):
            n = i + 1
            _write_png(tmp / f"depth_{n}.png", depth_to_png(s.depth[i]))
            _write_png(tmp / f"visible_{n}.png", s.visible[i].astype(np.uint8) * 255)
            _write_png(tmp / f"amodal_{n}.png", s.amodal[i].astype(np.uint8) * 255)
            _write_png(tmp / f"object_depth_{n}.png", depth_to_png(s.object_depth[i]))
            if n >= 2:
                _write_png(tmp / f"rgb_{n}.png", s.layer_rgb[i])
        if final.exists():  # an older complete copy: replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def make_manifest(
    num_layers: int,
    width: int,
    height: int,
    splits: dict[str, list[str]],
    generator: dict[str, Any],
) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "num_layers": int(num_layers),
        "width": int(width),
        "height": int(height),
        "depth_scale": DEPTH_SCALE,
        "splits": {name: list(splits.get(name, [])) for name in SPLITS},
        "generator": generator,
    }


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    atomic_write_json(Path(root) / MANIFEST, manifest)


# --------------------------------------------------------------------------------------
# reading


def read_manifest(root: Path | str) -> dict[str, Any]:
    """Read and check ROOT/manifest.json; raises FormatError with a one-line reason."""
    root = Path(root)
    if not root.exists():
        raise FormatError(f"{root}: no such dataset directory")
    if not root.is_dir():
        raise FormatError(f"{root}: not a directory")
    path = root / MANIFEST
    if not path.is_file():
        raise FormatError(
            f"{root}: no {MANIFEST}; not an amodal-layers dataset "
            "(create one with 'amodal-depth data generate')"
        )
    m = read_json(path)
    if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
        got = m.get("format") if isinstance(m, dict) else type(m).__name__
        raise FormatError(f"{path}: format is {got!r}, expected {FORMAT_NAME!r}")
    if m.get("version") != FORMAT_VERSION:
        raise FormatError(
            f"{path}: format version {m.get('version')!r} is not supported "
            f"(this reader knows version {FORMAT_VERSION})"
        )
    for key, typ in [("num_layers", int), ("width", int), ("height", int), ("splits", dict)]:
        if not isinstance(m.get(key), typ):
            raise FormatError(f"{path}: field {key!r} is missing or not {typ.__name__}")
    if m["num_layers"] < 1 or m["width"] < 1 or m["height"] < 1:
        raise FormatError(f"{path}: num_layers, width and height must be positive")
    m.setdefault("depth_scale", DEPTH_SCALE)
    return m


def split_ids(manifest: dict[str, Any], split: str, root: Path | str = "") -> list[str]:
    """The sample ids of one split; FormatError naming the available splits otherwise."""
    splits = manifest["splits"]
    if split not in splits or not splits[split]:
        have = ", ".join(f"{k} ({len(v)})" for k, v in splits.items() if v) or "none"
        raise FormatError(f"{root}: dataset has no samples in split {split!r}; it has: {have}")
    return [str(i) for i in splits[split]]


def read_sample(root: Path | str, sample_id: str, manifest: dict[str, Any]) -> LayeredSample:
    """Read one complete sample; FormatError (one line) on any missing or malformed file."""
    d = Path(root) / SAMPLES_DIR / sample_id
    if not d.is_dir():
        raise FormatError(f"{d}: sample directory is missing; rerun 'amodal-depth data generate'")
    k, h, w = manifest["num_layers"], manifest["height"], manifest["width"]
    scale = manifest.get("depth_scale", DEPTH_SCALE)

    def check(arr: np.ndarray, name: str) -> np.ndarray:
        if arr.shape[:2] != (h, w):
            raise FormatError(
                f"{d / name}: size {arr.shape[1]}x{arr.shape[0]} differs from the manifest's "
                f"{w}x{h}"
            )
        return arr

    rgb = check(read_png(d / "rgb.png", kind="rgb"), "rgb.png")
    cam_d = read_json(d / "camera.json")
    try:
        camera = Camera.from_dict(cam_d)
    except (KeyError, TypeError, ValueError) as e:
        raise FormatError(
            f"{d / 'camera.json'}: needs numeric fx, fy, cx, cy, width, height"
        ) from e
    if (camera.width, camera.height) != (w, h):
        raise FormatError(f"{d / 'camera.json'}: width/height differ from the manifest's {w}x{h}")
    meta = read_json(d / "meta.json")
    depth = np.zeros((k, h, w), np.float32)
    obj_depth = np.zeros((k, h, w), np.float32)
    visible = np.zeros((k, h, w), bool)
    amodal = np.zeros((k, h, w), bool)
    layer_rgb = np.zeros((k, h, w, 3), np.uint8)
    layer_rgb[0] = rgb
    for i in range(k):
        n = i + 1
        depth[i] = png_to_depth(
            check(read_png(d / f"depth_{n}.png", kind="depth"), f"depth_{n}.png"), scale
        )
        obj_depth[i] = png_to_depth(
            check(read_png(d / f"object_depth_{n}.png", kind="depth"), f"object_depth_{n}.png"),
            scale,
        )
        visible[i] = check(read_png(d / f"visible_{n}.png", kind="mask"), f"visible_{n}.png")
        amodal[i] = check(read_png(d / f"amodal_{n}.png", kind="mask"), f"amodal_{n}.png")
        if n >= 2:
            layer_rgb[i] = check(read_png(d / f"rgb_{n}.png", kind="rgb"), f"rgb_{n}.png")
    return LayeredSample(rgb, depth, layer_rgb, visible, amodal, obj_depth, camera, meta)
