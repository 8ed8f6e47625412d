"""Reader for the Amodal-3D-FRONT layout of the paper's reference [1] ("Occlusion-aware
Amodal Depth Estimation for Enhancing 3D Reconstruction from a Single Image"), yielding the
same items as `AmodalLayersDataset`.

The layout, as that project's public data loader reads it (details in docs/data-format.md)::

    ROOT/<scene>/rgb_XXXX.png     8-bit RGB render of frame XXXX (zero-padded, 4 digits)
    ROOT/<scene>/depth_XXXX.exr   float depth of frame XXXX (first channel if several)
    ROOT/<scene>/mask_XXXX.png    8-bit single-channel mask, > 0 = object
    split file: one line 'scene/N' per sample (e.g. 'a1b2.../0005')

Frames N-2, N-1, N of one scene form one sample, with N mod 3 = 2. Frame N is the full
scene (its RGB is the input image); frame N-1 is the scene with o_1 removed, frame N-2 with
o_1 and o_2 removed. So layer k is frame N-k+1: depth_k = depth_{N-k+1}, and the mask of
frame N-k+1 is the mask of o_k as seen in layer k, i.e. its amodal mask (only o_1..o_{k-1}
hide o_k and they are gone in that frame). The reference builds the same three masks
(mask_N, mask_{N-1}, mask_{N-2}) for one input rgb_N.

Assumptions we add, all overridable: depth is metres along the optical axis (z) as
Blender/BlenderProc writes it; non-finite, non-positive or beyond `max_depth` values mean
"no surface" (0). The camera is the 3D-FRONT/SUNCG one of the reference's config (320x240,
fx = fy = 277.1281435, cx = 159.5, cy = 119.5; a 60 degree horizontal field of view),
scaled when the images have another size. Visible masks are derived: visible_1 = amodal_1,
visible_k = amodal_k minus the amodal masks of o_1..o_{k-1} (what the reference's
"hint" masks are), or, with visible_from='depth', the pixels of amodal_k where layer 1
shows the same depth as layer k.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from amodal_depth.data.dataset import AugmentedDataset, Item, SizeSpec
from amodal_depth.data.exr import read_exr
from amodal_depth.data.format import Camera, FormatError, read_png
from amodal_depth.errors import UserError

#: The camera of the reference's 3D-FRONT renders (its config's INTRINSIC at 320x240).
FRONT3D_CAMERA = Camera(277.1281435, 277.1281435, 159.5, 119.5, 320, 240)
_DEPTH_CHANNELS = ("R", "Y", "Z", "V", "depth", "Depth")  # tried in this order


def depth_channel(channels: dict[str, np.ndarray]) -> np.ndarray:
    """The depth among an EXR's channels: R (Blender writes depth to R, G, B alike), else
    Y, Z, V, depth, Depth, else the alphabetically first channel."""
    for name in _DEPTH_CHANNELS:
        if name in channels:
            return channels[name]
    return channels[sorted(channels)[0]]


def parse_split_file(path: Path, num_layers: int = 3, check_grouping: bool = True) -> list[str]:
    """'scene/N' entries of a split file (blank lines and '#' comments skipped)."""
    if not path.is_file():
        raise UserError(f"{path}: split file not found")
    entries = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.strip("/").split("/")
        if len(parts) != 2 or not parts[1].isdigit():
            raise FormatError(f"{path}:{i}: expected 'scene/N' with a frame number, got {line!r}")
        n = int(parts[1])
        if n < num_layers - 1 or (check_grouping and n % num_layers != num_layers - 1):
            raise FormatError(
                f"{path}:{i}: frame {n} does not close a group of {num_layers} frames "
                f"(N mod {num_layers} must be {num_layers - 1}); pass check_grouping=False "
                "if your layout groups frames differently"
            )
        entries.append(f"{parts[0]}/{parts[1]}")
    if not entries:
        raise UserError(f"{path}: split file lists no samples")
    return entries


class Front3DAmodalDataset(AugmentedDataset):
    """Samples of the Amodal-3D-FRONT layout listed in `split_file` as dataset items.

    root: the folder holding the scene folders ('.../Amodal_front3d/filtering_rgb' in the
    reference). split_file: absolute, or relative to the working directory or to root.
    camera: intrinsics at the images' size (default: FRONT3D_CAMERA scaled to it).
    max_depth: larger depths (sky, "infinity" of the renderer) count as no surface.
    visible_from: 'masks' (default) or 'depth' (see the module docstring).
    size / hflip / seed / transform: as in AmodalLayersDataset.
    """

    def __init__(
        self,
        root: str | Path,
        split_file: str | Path,
        *,
        num_layers: int = 3,
        camera: Camera | None = None,
        max_depth: float = 100.0,
        visible_from: str = "masks",
        depth_tolerance: float = 0.005,
        check_grouping: bool = True,
        size: SizeSpec = None,
        hflip: bool = False,
        seed: int = 0,
        transform: Callable[[Item], Item] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError(f"{self.root}: no such Amodal-3D-FRONT root directory")
        if visible_from not in ("masks", "depth"):
            raise UserError(f"visible_from must be 'masks' or 'depth', got {visible_from!r}")
        split_path = Path(split_file)
        if not split_path.is_file() and not split_path.is_absolute():
            split_path = self.root / split_path
        self.num_layers = int(num_layers)
        self.entries = parse_split_file(split_path, self.num_layers, check_grouping)
        self.max_depth = float(max_depth)
        self.visible_from = visible_from
        self.depth_tolerance = float(depth_tolerance)
        for entry in self.entries:  # fail early, with the file's name, before training
            for path in self._files(entry):
                if not path.is_file():
                    raise FormatError(f"{path}: file is missing (listed by {split_path})")
        first = read_png(self._files(self.entries[0])[0], kind="rgb")
        native = (first.shape[1], first.shape[0])
        if camera is None:
            camera = FRONT3D_CAMERA.scaled(native[0] / 320, native[1] / 240)
        if (camera.width, camera.height) != native:
            raise UserError(
                f"camera is {camera.width}x{camera.height} but the images are "
                f"{native[0]}x{native[1]}"
            )
        self.camera = camera
        super().__init__(native, size=size, hflip=hflip, seed=seed, transform=transform)

    def __len__(self) -> int:
        return len(self.entries)

    def frames(self, entry: str) -> list[str]:
        """Frame names of layers 1..K: N, N-1, ..., N-K+1, zero-padded like N."""
        _, n_text = entry.split("/")
        n = int(n_text)
        return [str(n - k).zfill(len(n_text)) for k in range(self.num_layers)]

    def _files(self, entry: str) -> list[Path]:
        scene = self.root / entry.split("/")[0]
        frames = self.frames(entry)
        files = [scene / f"rgb_{frames[0]}.png"]
        for f in frames:
            files += [scene / f"depth_{f}.exr", scene / f"mask_{f}.png"]
        return files

    def _read_mask(self, path: Path) -> np.ndarray:
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise FormatError(f"{path}: not a readable PNG (truncated or corrupt)")
        return (img.max(axis=2) if img.ndim == 3 else img) > 0

    def load(
        self, index: int
    ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, Camera]:
        entry = self.entries[index]
        scene = self.root / entry.split("/")[0]
        frames = self.frames(entry)
        w, h = self.native_size
        rgb = read_png(scene / f"rgb_{frames[0]}.png", kind="rgb")
        depth = np.zeros((self.num_layers, h, w), np.float32)
        amodal = np.zeros((self.num_layers, h, w), bool)
        for k, f in enumerate(frames):
            d_path, m_path = scene / f"depth_{f}.exr", scene / f"mask_{f}.png"
            d = depth_channel(read_exr(d_path))
            m = self._read_mask(m_path)
            for arr, p in ((rgb, scene / f"rgb_{frames[0]}.png"), (d, d_path), (m, m_path)):
                if arr.shape[:2] != (h, w):
                    raise FormatError(
                        f"{p}: size {arr.shape[1]}x{arr.shape[0]} differs from the dataset's "
                        f"{w}x{h} (taken from the first sample)"
                    )
            ok = np.isfinite(d) & (d > 0) & (d <= self.max_depth)
            depth[k] = np.where(ok, d, 0.0)
            amodal[k] = m
        visible = self._visible(depth, amodal)
        return entry, rgb, depth, visible, amodal, self.camera

    def _visible(self, depth: np.ndarray, amodal: np.ndarray) -> np.ndarray:
        visible = np.zeros_like(amodal)
        if self.visible_from == "depth":
            same = np.abs(depth - depth[0][None]) <= self.depth_tolerance * np.maximum(depth, 1)
            return amodal & same & (depth[0][None] > 0)
        in_front = np.zeros_like(amodal[0])
        for k in range(amodal.shape[0]):
            visible[k] = amodal[k] & ~in_front
            in_front |= amodal[k]
        return visible
