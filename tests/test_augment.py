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
    roll_arrays,
    roll_window,
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


def _points(depth: np.ndarray, cam: Camera) -> np.ndarray:
    """Camera-frame 3D points of the valid pixels of an HxW z-depth map."""
    v, u = np.nonzero(depth > 0)
    z = depth[v, u]
    return np.stack([(u - cam.cx) / cam.fx * z, (v - cam.cy) / cam.fy * z, z], axis=1)


def test_roll_is_an_exact_camera_roll_with_no_empty_corners() -> None:
    """A rolled item shows the same 3D points, rotated about the optical axis: each point
    keeps its depth, and the window has no pixel from outside the original image."""
    h, w, angle = 48, 64, 10.0
    cam = Camera(50.0, 50.0, 33.0, 22.0, w, h)  # principal point off the centre
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    depth = (2.0 + 0.02 * u + 0.01 * v)[None]  # a tilted plane: depth varies per pixel
    rgb = np.full((h, w, 3), 200, np.uint8)
    mask = np.zeros((1, h, w), bool)
    mask[0, 10:30, 20:40] = True
    rgb2, (depth2, mask2), cam2 = roll_arrays(rgb, (depth, mask), cam, angle)
    assert rgb2.shape[:2] == depth2.shape[1:] == mask2.shape[1:] == (cam2.height, cam2.width)
    assert mask2.dtype == bool and 0 < mask2.sum() <= mask.sum() * 1.05
    assert (depth2 > 0).all()  # no empty corners
    assert abs(cam2.width / cam2.height - w / h) < 0.1
    # every rolled pixel is an original 3D point rotated about the optical axis
    p2 = _points(depth2[0], cam2)
    t = np.deg2rad(angle)  # OpenCV's positive angle turns the image anticlockwise on screen
    back = np.array([[np.cos(t), np.sin(t), 0], [-np.sin(t), np.cos(t), 0], [0, 0, 1]])
    p_orig = p2 @ back  # the same points in the original camera frame
    u0 = p_orig[:, 0] / p_orig[:, 2] * cam.fx + cam.cx
    v0 = p_orig[:, 1] / p_orig[:, 2] * cam.fy + cam.cy
    z_true = 2.0 + 0.02 * u0 + 0.01 * v0
    assert np.abs(p_orig[:, 2] - z_true).max() < 0.02 * 1.5  # nearest neighbour: < 1 px off


def test_roll_window_is_the_whole_image_without_roll() -> None:
    assert roll_window(64, 48, 31.5, 23.5, 0.0) == (0, 0, 64, 48)
    u0, v0, w, h = roll_window(64, 48, 31.5, 23.5, 12.0)
    assert 0.7 < w / 64 < 0.85 and (u0, v0) == ((64 - w) // 2, (48 - h) // 2)


def test_dataset_roll_changes_items_only_when_switched_on(make_flat_dataset) -> None:
    root = make_flat_dataset(num=6, width=64, height=48)
    plain = AmodalLayersDataset(root, "train", size=(56, 42), seed=1)
    rolled = AmodalLayersDataset(root, "train", size=(56, 42), seed=1,
                                 augment=AugmentConfig(roll_deg=15.0, roll_prob=1.0))  # fmt: skip
    changed = 0
    for i in range(len(plain)):
        a, b = plain[i], rolled[i]
        assert b["rgb"].shape == a["rgb"].shape and b["depth"].shape == a["depth"].shape
        changed += not torch.equal(a["depth"], b["depth"])
        assert b["camera"][0] > a["camera"][0]  # the cut window zooms in
    assert changed == len(plain)
