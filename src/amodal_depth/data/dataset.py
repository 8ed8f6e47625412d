"""The PyTorch dataset over an `amodal-layers` root, with augmentation hooks.

Item (a dict)::

    rgb      [3, H, W] float32 in [0, 1]   the input image (layer 1)
    depth    [K, H, W] float32 metres      layer-k depth, 0 = no surface (invalid)
    visible  [K, H, W] bool                visible mask of o_k
    amodal   [K, H, W] bool                amodal mask of o_k
    camera   [4] float32                   fx, fy, cx, cy (OpenCV pixel convention)
    id       str                           the sample id

Augmentations keep the geometry honest: a resize changes the intrinsics through
`Camera.scaled` (pixel-centre convention), a horizontal flip through `Camera.flipped`.
Random choices are a pure function of (seed, epoch, index), so a DataLoader with any number
of workers, or a resumed run, sees exactly the same items.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from amodal_depth.data.augment import (
    AugmentConfig,
    crop_camera,
    crop_window,
    jitter_colour,
    perturb_masks,
    roll_arrays,
)
from amodal_depth.data.format import Camera, read_manifest, read_sample, split_ids
from amodal_depth.data.observe import simulate_observation
from amodal_depth.errors import UserError

Item = dict[str, Any]
SizeSpec = tuple[int, int] | str | None
MULTIPLE_OF_14 = "multiple_of_14"
PATCH = 14  # the ViT patch size of Depth Anything V2


def round_to_multiple(size: tuple[int, int], multiple: int = PATCH) -> tuple[int, int]:
    """(W, H) rounded each to the nearest positive multiple of `multiple`."""
    return tuple(max(multiple, int(round(s / multiple)) * multiple) for s in size)  # type: ignore[return-value]


def resolve_size(size: SizeSpec, native: tuple[int, int]) -> tuple[int, int] | None:
    """The (W, H) to resize to, or None to keep `native`. `size` is (W, H), None, or
    'multiple_of_14' (the nearest multiple of 14 of the native size)."""
    if size is None:
        return None
    if isinstance(size, str):
        if size != MULTIPLE_OF_14:
            raise UserError(f"size {size!r} not understood; give (W, H) or {MULTIPLE_OF_14!r}")
        out = round_to_multiple(native, PATCH)
    else:
        try:
            out = (int(size[0]), int(size[1]))
        except (TypeError, ValueError, IndexError):
            raise UserError(f"size must be (W, H), got {size!r}") from None
        if min(out) < 1:
            raise UserError(f"size must be positive, got {out}")
    return None if out == tuple(native) else out


def augment_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one item's random augmentations: depends on nothing else."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def resize_arrays(
    rgb: np.ndarray,
    depth: np.ndarray,
    visible: np.ndarray,
    amodal: np.ndarray,
    camera: Camera,
    size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Camera]:
    """Resize to size=(W, H): bilinear for the image, nearest for depth and masks (a blend
    of two depths is a surface that does not exist). INTER_NEAREST_EXACT samples the pixel
    whose centre is nearest, which is the convention `Camera.scaled` assumes."""
    w, h = size
    h0, w0 = rgb.shape[:2]
    rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
    cam = camera.scaled(w / w0, h / h0)
    cam = Camera(cam.fx, cam.fy, cam.cx, cam.cy, w, h)
    depth, visible, amodal = (resize_nearest(x, size) for x in (depth, visible, amodal))
    return rgb, depth, visible, amodal, cam


def resize_nearest(stack: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[K,H,W] depth or bool stack -> [K,h,w] for size=(w, h), nearest pixel centre."""
    w, h = size
    src = stack.astype(np.uint8) if stack.dtype == bool else stack
    out = np.stack([cv2.resize(a, (w, h), interpolation=cv2.INTER_NEAREST_EXACT) for a in src])
    return out.astype(bool) if stack.dtype == bool else out


def add_observation(
    item: Item, rng: np.random.Generator, source: str | None = None, model_share: float = 0.0
) -> Item:
    """Add a simulated observed depth of the item's visible scene (data/observe.py) as
    `observed_inverse` [H,W] float32 and `observed_valid` [H,W] bool. With model_share > 0,
    that share of the items is left to a depth model instead (`observed_from_model` True,
    inverse 0, valid wherever there is a surface; train.observe_with_model fills it in)."""
    if model_share > 0:
        from_model = bool(rng.random() < model_share)
        item["observed_from_model"] = torch.tensor(from_model)
        if from_model:
            item["observed_inverse"] = torch.zeros_like(item["depth"][0], dtype=torch.float32)
            item["observed_valid"] = item["depth"][0] > 0
            return item
    rgb = (item["rgb"].permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    inv, valid, _ = simulate_observation(item["depth"][0].numpy(), rgb, rng, source)
    item["observed_inverse"] = torch.from_numpy(inv)
    item["observed_valid"] = torch.from_numpy(valid)
    return item


def make_item(
    sample_id: str,
    rgb: np.ndarray,
    depth: np.ndarray,
    visible: np.ndarray,
    amodal: np.ndarray,
    camera: Camera,
    *,
    size: tuple[int, int] | None = None,
    flip: bool = False,
    guidance_masks: np.ndarray | None = None,
) -> Item:
    """Numpy arrays of one sample (rgb HxWx3 uint8, the rest [K,H,W]) -> dataset item,
    resized to `size` (W, H) and/or flipped horizontally first. `guidance_masks` (perturbed
    amodal masks for the model's input, training only) become the item's `guidance_amodal`."""
    if size is not None:
        rgb, depth, visible, amodal, camera = resize_arrays(
            rgb, depth, visible, amodal, camera, size
        )
        if guidance_masks is not None:
            guidance_masks = resize_nearest(guidance_masks, size)
    if flip:
        rgb, depth = rgb[:, ::-1], depth[..., ::-1]
        visible, amodal = visible[..., ::-1], amodal[..., ::-1]
        camera = camera.flipped()
        if guidance_masks is not None:
            guidance_masks = guidance_masks[..., ::-1]
    cam = [camera.fx, camera.fy, camera.cx, camera.cy]
    extra = {}
    if guidance_masks is not None:
        extra["guidance_amodal"] = torch.from_numpy(np.ascontiguousarray(guidance_masks, bool))
    return {
        "rgb": torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float() / 255.0,
        "depth": torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32)),
        "visible": torch.from_numpy(np.ascontiguousarray(visible, dtype=bool)),
        "amodal": torch.from_numpy(np.ascontiguousarray(amodal, dtype=bool)),
        "camera": torch.tensor(cam, dtype=torch.float32),
        "id": str(sample_id),
        **extra,
    }


class AugmentedDataset(Dataset):
    """Shared augmentation plumbing: subclasses implement `__len__` and
    `load(index) -> (id, rgb, depth, visible, amodal, camera)` in numpy."""

    def __init__(
        self,
        native_size: tuple[int, int],
        *,
        size: SizeSpec = None,
        hflip: bool = False,
        seed: int = 0,
        transform: Callable[[Item], Item] | None = None,
        augment: AugmentConfig | None = None,
    ) -> None:
        self.native_size = (int(native_size[0]), int(native_size[1]))
        self.size = resolve_size(size, self.native_size)
        self.hflip = bool(hflip)
        self.augment = augment or AugmentConfig()
        self.seed = int(seed)
        self.epoch = 0
        self.transform = transform

    @property
    def output_size(self) -> tuple[int, int]:
        """(W, H) of the items."""
        return self.size or self.native_size

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random flips the next items use (call before each epoch,
        in every process; DataLoader workers see it as they are created per epoch)."""
        self.epoch = int(epoch)

    def load(
        self, index: int
    ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, Camera]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range [0, {len(self)})")
        sid, rgb, depth, visible, amodal, camera = self.load(index)
        rng = augment_rng(self.seed, self.epoch, index)
        flip = self.hflip and bool(rng.random() < 0.5)  # first draw: flips as before
        a, size, guide = self.augment, self.size, None
        if a.crop_min < 1.0 and rng.random() < a.crop_prob:
            u0, v0, w, h = crop_window(rng, camera.width, camera.height, a.crop_min)
            rgb = rgb[v0 : v0 + h, u0 : u0 + w]
            depth, visible, amodal = (
                x[:, v0 : v0 + h, u0 : u0 + w] for x in (depth, visible, amodal)
            )
            camera = crop_camera(camera, u0, v0, w, h)
            size = self.output_size
        if (
            a.roll_deg > 0
            and rng.random() < a.roll_prob
            and abs(camera.fx - camera.fy) <= (1e-3 * camera.fx)
        ):
            angle = float(rng.uniform(-a.roll_deg, a.roll_deg))
            rgb, (depth, visible, amodal), camera = roll_arrays(
                rgb, (depth, visible, amodal), camera, angle
            )
            size = self.output_size
        if a.colour > 0:
            rgb = jitter_colour(rgb, rng, a.colour)
        if a.mask_prob > 0:
            guide = perturb_masks(amodal, rng, a.mask_prob)
        item = make_item(sid, rgb, depth, visible, amodal, camera, size=size, flip=flip,
                         guidance_masks=guide)  # fmt: skip
        if a.observe:  # drawn last, so the other augmentations stay what they were
            add_observation(item, rng, model_share=a.observe_model_share)
        return self.transform(item) if self.transform is not None else item

    def __len__(self) -> int:  # pragma: no cover - subclasses override
        raise NotImplementedError


class AmodalLayersDataset(AugmentedDataset):
    """One split of an `amodal-layers` dataset (docs/data-format.md) as dataset items.

    size: None (native), (W, H), or 'multiple_of_14' (nearest multiples of 14 of the
    native size). hflip: random horizontal flip with probability 1/2, drawn from
    (seed, epoch, index). augment: colour, crop and mask perturbations (data/augment.py),
    drawn from the same generator. transform: optional callable item -> item applied last.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        size: SizeSpec = None,
        hflip: bool = False,
        seed: int = 0,
        transform: Callable[[Item], Item] | None = None,
        augment: AugmentConfig | None = None,
    ) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)  # read once; workers inherit it
        self.split = split
        self.ids = split_ids(self.manifest, split, self.root)
        self.num_layers = int(self.manifest["num_layers"])
        native = (int(self.manifest["width"]), int(self.manifest["height"]))
        super().__init__(
            native, size=size, hflip=hflip, seed=seed, transform=transform, augment=augment
        )

    def __len__(self) -> int:
        return len(self.ids)

    def load(
        self, index: int
    ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, Camera]:
        sid = self.ids[index]
        s = read_sample(self.root, sid, self.manifest)
        return sid, s.rgb, s.depth, s.visible, s.amodal, s.camera
