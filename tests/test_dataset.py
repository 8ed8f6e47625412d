"""AmodalLayersDataset: dataset items, units, augmentation geometry and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amodal_depth.data.dataset import AmodalLayersDataset, round_to_multiple
from amodal_depth.data.format import read_manifest, read_sample
from amodal_depth.errors import UserError


def test_item_shapes_dtypes_and_units(make_flat_dataset) -> None:
    root = make_flat_dataset(num=3, width=32, height=24)
    ds = AmodalLayersDataset(root, "train")
    assert len(ds) == 1 and ds.num_layers == 3
    item = ds[0]
    assert item["id"] == "000000"
    assert item["rgb"].shape == (3, 24, 32) and item["rgb"].dtype == torch.float32
    assert 0.0 <= float(item["rgb"].min()) and float(item["rgb"].max()) <= 1.0
    for key, dtype in [("depth", torch.float32), ("visible", torch.bool), ("amodal", torch.bool)]:
        assert item[key].shape == (3, 24, 32) and item[key].dtype == dtype
    assert item["camera"].dtype == torch.float32 and item["camera"].shape == (4,)
    s = read_sample(root, "000000", read_manifest(root))
    # metres, exactly what the PNGs hold (whole millimetres)
    assert np.array_equal(item["depth"].numpy(), s.depth)
    assert 1.0 < float(item["depth"].max()) < 10.0
    assert np.array_equal(item["rgb"].numpy(), s.rgb.transpose(2, 0, 1) / np.float32(255))
    assert np.array_equal(item["amodal"].numpy(), s.amodal)
    cam = s.camera
    assert item["camera"].tolist() == pytest.approx([cam.fx, cam.fy, cam.cx, cam.cy])


def test_unknown_split_lists_the_available_ones(make_flat_dataset) -> None:
    root = make_flat_dataset(num=3)
    with pytest.raises(UserError, match=r"no samples in split 'bogus'.*train \(1\)"):
        AmodalLayersDataset(root, "bogus")


def test_flip_mirrors_arrays_and_moves_cx(make_flat_dataset) -> None:
    root = make_flat_dataset(num=3, width=32, height=24)
    plain = AmodalLayersDataset(root, "train")[0]
    # with hflip every item is flipped or not; find seeds giving both outcomes
    flipped = None
    for seed in range(20):
        it = AmodalLayersDataset(root, "train", hflip=True, seed=seed)[0]
        if not torch.equal(it["depth"], plain["depth"]):
            flipped = it
            break
    assert flipped is not None
    assert torch.equal(flipped["depth"], plain["depth"].flip(-1))
    assert torch.equal(flipped["rgb"], plain["rgb"].flip(-1))
    assert torch.equal(flipped["visible"], plain["visible"].flip(-1))
    cx, cx_f = float(plain["camera"][2]), float(flipped["camera"][2])
    assert cx_f == pytest.approx(32 - 1 - cx)
    assert flipped["camera"][0] == plain["camera"][0]


def test_flips_are_a_function_of_seed_epoch_index(make_flat_dataset) -> None:
    root = make_flat_dataset(num=12, splits={"train": list(range(12))})

    def pattern(seed: int, epoch: int) -> list[bool]:
        ds = AmodalLayersDataset(root, "train", hflip=True, seed=seed)
        ds.set_epoch(epoch)
        base = AmodalLayersDataset(root, "train")
        return [not torch.equal(ds[i]["depth"], base[i]["depth"]) for i in range(len(ds))]

    a = pattern(0, 0)
    assert a == pattern(0, 0)  # same (seed, epoch): same flips
    assert 0 < sum(a) < len(a)
    assert a != pattern(0, 1) or a != pattern(1, 0)  # another epoch or seed: others


def test_resize_scales_intrinsics_with_pixel_centres(make_flat_dataset) -> None:
    root = make_flat_dataset(num=3, width=32, height=24)
    base = AmodalLayersDataset(root, "train")[0]
    half = AmodalLayersDataset(root, "train", size=(16, 12))[0]
    assert half["rgb"].shape == (3, 12, 16) and half["depth"].shape == (3, 12, 16)
    fx, fy, cx, cy = base["camera"].tolist()
    assert half["camera"].tolist() == pytest.approx(
        [fx / 2, fy / 2, (cx + 0.5) / 2 - 0.5, (cy + 0.5) / 2 - 0.5]
    )
    # nearest neighbour: every resized depth is a depth of the original (no blends)
    assert set(np.unique(half["depth"].numpy())) <= set(np.unique(base["depth"].numpy()))
    assert half["visible"].dtype == torch.bool


def test_resize_to_multiple_of_14(make_flat_dataset) -> None:
    assert round_to_multiple((32, 24)) == (28, 28)
    assert round_to_multiple((224, 168)) == (224, 168)
    assert round_to_multiple((5, 100), 14) == (14, 98)
    root = make_flat_dataset(num=3, width=32, height=24)
    ds = AmodalLayersDataset(root, "train", size="multiple_of_14")
    assert ds.output_size == (28, 28)
    assert ds[0]["depth"].shape == (3, 28, 28)
    with pytest.raises(UserError, match="not understood"):
        AmodalLayersDataset(root, "train", size="huge")


def test_transform_hook_and_dataloader_collate(make_flat_dataset) -> None:
    root = make_flat_dataset(num=5, splits={"train": [0, 1, 2, 3]})

    def add_flag(item):
        item["seen"] = torch.tensor(1)
        return item

    ds = AmodalLayersDataset(root, "train", transform=add_flag)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["rgb"].shape == (2, 3, 24, 32) and batch["seen"].tolist() == [1, 1]
    assert batch["id"] == ["000000", "000001"] and batch["camera"].shape == (2, 4)
    with pytest.raises(IndexError):
        ds[4]


def test_missing_root_is_a_user_error(tmp_path) -> None:
    with pytest.raises(UserError, match="no such dataset directory"):
        AmodalLayersDataset(tmp_path / "nope", "train")


def test_files_are_readable_from_the_format_description_alone(make_flat_dataset) -> None:
    """docs/data-format.md's recipe, with Pillow instead of our OpenCV-based reader."""
    import json

    from PIL import Image

    root = make_flat_dataset(num=3, width=32, height=24)
    m = json.loads((root / "manifest.json").read_text())
    d, k_n = root / "samples" / m["splits"]["train"][0], m["num_layers"]
    depth = np.stack([np.array(Image.open(d / f"depth_{k}.png")) for k in range(1, k_n + 1)])
    assert depth.dtype == np.uint16
    amodal = np.stack([np.array(Image.open(d / f"amodal_{k}.png")) for k in range(1, k_n + 1)])
    assert set(np.unique(amodal).tolist()) == {0, 255}
    item = AmodalLayersDataset(root, "train")[0]
    assert np.allclose(depth / m["depth_scale"], item["depth"].numpy())
    assert np.array_equal(amodal > 127, item["amodal"].numpy())
    rgb = np.array(Image.open(d / "rgb.png"))
    assert rgb.shape == (24, 32, 3)
    assert np.array_equal(rgb.transpose(2, 0, 1) / np.float32(255), item["rgb"].numpy())
