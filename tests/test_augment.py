"""Training augmentations (data/augment.py) and their use by the dataset and the loss."""

from __future__ import annotations

import numpy as np
import torch

from amodal_depth.data.augment import (
    AugmentConfig,
    crop_camera,
    crop_window,
    jitter_colour,
    perturb_mask,
    perturb_masks,
)
from amodal_depth.data.dataset import AmodalLayersDataset
from amodal_depth.data.format import Camera

ALL_ON = AugmentConfig(colour=1.0, crop_min=0.6, crop_prob=1.0, mask_prob=1.0)


def _rect(h: int = 48, w: int = 64) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[10:30, 15:40] = True
    return m


def test_crop_camera_keeps_every_pixel_on_its_ray() -> None:
    cam = Camera(50.0, 50.0, 31.5, 23.5, 64, 48)
    u0, v0, w, h = crop_window(np.random.default_rng(0), 64, 48, 0.5)
    c = crop_camera(cam, u0, v0, w, h)
    for u, v in [(0, 0), (w - 1, h - 1), (3, 7)]:
        ray_crop = ((u - c.cx) / c.fx, (v - c.cy) / c.fy)
        ray_full = ((u + u0 - cam.cx) / cam.fx, (v + v0 - cam.cy) / cam.fy)
        assert np.allclose(ray_crop, ray_full)
    assert (c.width, c.height) == (w, h) and 0.5 <= w / 64 <= 1.0
    assert abs(w / h - 64 / 48) < 0.1  # one factor for both sides: square pixels stay square


def test_colour_jitter_changes_colours_not_shape_and_is_seeded() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    a = jitter_colour(rgb, np.random.default_rng(5), 1.0)
    b = jitter_colour(rgb, np.random.default_rng(5), 1.0)
    assert a.shape == rgb.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, rgb)


def test_every_mask_perturbation_keeps_a_nonempty_mask_near_the_object() -> None:
    m = _rect()
    kinds_seen = set()
    for seed in range(40):
        out = perturb_mask(m, np.random.default_rng(seed))
        assert out.dtype == bool and out.shape == m.shape and out.any()
        iou = (out & m).sum() / (out | m).sum()
        assert iou > 0.5, seed  # imprecise, not another object
        kinds_seen.add(out.tobytes())
    assert len(kinds_seen) > 5  # several kinds of error, not one
    empty = np.zeros_like(m)
    assert not perturb_mask(empty, np.random.default_rng(0)).any()


def test_perturb_masks_probability_zero_is_identity() -> None:
    stack = np.stack([_rect(), np.roll(_rect(), 5, axis=1)])
    assert np.array_equal(perturb_masks(stack, np.random.default_rng(0), 0.0), stack)


def test_dataset_without_augmentation_is_unchanged(make_flat_dataset) -> None:
    root = make_flat_dataset(num=6)
    plain = AmodalLayersDataset(root, "train", hflip=True, seed=3)
    off = AmodalLayersDataset(root, "train", hflip=True, seed=3, augment=AugmentConfig())
    for i in range(len(plain)):
        a, b = plain[i], off[i]
        assert "guidance_amodal" not in b
        for key in ("rgb", "depth", "visible", "amodal", "camera"):
            assert torch.equal(a[key], b[key])


def test_augmented_items_keep_geometry_and_exact_loss_masks(make_flat_dataset) -> None:
    root = make_flat_dataset(num=6, width=64, height=48)
    ds = AmodalLayersDataset(root, "train", size=(56, 42), seed=1, augment=ALL_ON)
    plain = AmodalLayersDataset(root, "train", size=(56, 42), seed=1)
    for i in range(len(ds)):
        it = ds[i]
        assert it["rgb"].shape == (3, 42, 56) and it["depth"].shape[1:] == (42, 56)
        assert it["guidance_amodal"].shape == it["amodal"].shape
        # the visible mask is still where o_k is nearest in layer 1
        d = it["depth"].numpy()
        vis = it["visible"].numpy()
        assert np.all(d[0][vis[0]] > 0)
        # a crop zooms in: fx grows over the plain resize
        assert it["camera"][0] >= plain[i]["camera"][0] - 1e-4
    again = AmodalLayersDataset(root, "train", size=(56, 42), seed=1, augment=ALL_ON)
    assert torch.equal(ds[0]["rgb"], again[0]["rgb"])  # a pure function of (seed, epoch, i)
