"""The Amodal-3D-FRONT adapter and EXR reading/writing (the openexr package), on a
miniature dataset in that layout written with the library."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import OpenEXR
import pytest
import torch

from amodal_depth.data.exr import read_exr, write_exr
from amodal_depth.data.format import FormatError
from amodal_depth.data.front3d import FRONT3D_CAMERA, Front3DAmodalDataset, depth_channel
from amodal_depth.errors import UserError
from conftest import flat_sample  # tests/ is on sys.path under pytest

W, H = 40, 30


# ------------------------------------------------------------------------------ EXR
@pytest.mark.parametrize(
    "compression, half",
    [("NONE", False), ("ZIP", False), ("ZIP", True), ("ZIPS", False), ("RLE", False),
     ("PIZ", False), ("PIZ", True)],
)  # fmt: skip
def test_exr_round_trip(tmp_path: Path, compression: str, half: bool) -> None:
    rng = np.random.default_rng(1)
    v = np.where(rng.random((37, 23)) > 0.5, rng.uniform(0.5, 6.0, (37, 23)), 2.0)
    chans = {"R": v, "G": v * 2, "B": np.zeros_like(v)}
    write_exr(tmp_path / "x.exr", chans, half=half, compression=compression)
    got = read_exr(tmp_path / "x.exr")
    assert list(got) == ["B", "G", "R"] and all(a.dtype == np.float32 for a in got.values())
    tol = 4e-3 if half else 0.0  # the lossless codecs give the float32 values back exactly
    for k in chans:
        assert np.allclose(got[k], chans[k].astype(np.float32), rtol=tol, atol=0)
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically


def test_exr_reads_tiled_and_uint_files_written_by_the_library(tmp_path: Path) -> None:
    z = np.random.default_rng(2).uniform(0.5, 6.0, (30, 41)).astype(np.float32)
    ids = np.arange(30 * 41, dtype=np.uint32).reshape(30, 41)
    header = {"compression": OpenEXR.PIZ_COMPRESSION, "type": OpenEXR.tiledimage,
              "tiles": OpenEXR.TileDescription()}  # 32x32 tiles: two across  # fmt: skip
    OpenEXR.File(header, {"Z": z, "id": ids}).write(str(tmp_path / "t.exr"))
    got = read_exr(tmp_path / "t.exr")
    assert np.array_equal(got["Z"], z) and np.array_equal(got["id"], ids.astype(np.float32))
    assert depth_channel(got) is got["Z"]


def test_exr_bad_files(tmp_path: Path) -> None:
    p = tmp_path / "t.exr"
    with pytest.raises(FormatError, match="t.exr: file is missing"):
        read_exr(p)
    write_exr(p, np.ones((20, 10), np.float32), compression="NONE")
    p.write_bytes(p.read_bytes()[:-50])
    with pytest.raises(FormatError, match="truncated or corrupt EXR") as err:
        read_exr(p)
    assert "\n" not in str(err.value)  # one line: the library's own report is folded in
    p.write_bytes(b"not an exr at all")
    with pytest.raises(FormatError, match="not an OpenEXR file"):
        read_exr(p)
    part = lambda name: OpenEXR.Part(  # noqa: E731
        {"type": OpenEXR.scanlineimage}, {"Y": np.ones((4, 4), np.float32)}, name=name
    )
    OpenEXR.File([part("a"), part("b")]).write(str(p))
    with pytest.raises(FormatError, match="multi-part EXR .2 parts. is not supported"):
        read_exr(p)
    with pytest.raises(ValueError, match="compression must be one of"):
        write_exr(p, np.ones((2, 2)), compression="LZW")


# ------------------------------------------------------------------ miniature dataset
def _write_front3d(root: Path, scenes: int = 2, groups: int = 2) -> list:
    """Scenes in the reference's layout made from flat samples: frames 3g, 3g+1, 3g+2 are
    layers 3, 2, 1 of sample g. Depth EXRs alternate Blender-like R,G,B and single 'Y'."""
    truth, lines = [], []
    for s in range(scenes):
        scene = root / f"scene{s:02d}"
        scene.mkdir(parents=True)
        for g in range(groups):
            smp = flat_sample(W, H, 3, seed=10 * s + g)
            n = 3 * g + 2
            for k in range(3):
                f = f"{n - k:04d}"
                cv2.imwrite(
                    str(scene / f"rgb_{f}.png"), cv2.cvtColor(smp.layer_rgb[k], cv2.COLOR_RGB2BGR)
                )
                cv2.imwrite(str(scene / f"mask_{f}.png"), smp.amodal[k].astype(np.uint8) * 255)
                d = np.where(smp.depth[k] > 0, smp.depth[k], np.float32(1e10))  # "no hit"
                if (g + k) % 2:
                    write_exr(scene / f"depth_{f}.exr", {c: d for c in "RGB"})
                else:
                    write_exr(scene / f"depth_{f}.exr", d, compression="NONE")
            lines.append(f"scene{s:02d}/{n:04d}")
            truth.append(smp)
    (root / "train.txt").write_text("# scene/N\n" + "\n".join(lines) + "\n")
    return truth


def test_reads_the_layout_into_spec_items(tmp_path: Path) -> None:
    truth = _write_front3d(tmp_path)
    ds = Front3DAmodalDataset(tmp_path, "train.txt")
    assert len(ds) == 4
    for i, smp in enumerate(truth):
        item = ds[i]
        assert item["id"] == ["scene00/0002", "scene00/0005", "scene01/0002", "scene01/0005"][i]
        assert item["rgb"].shape == (3, H, W)
        assert np.array_equal(
            (item["rgb"] * 255).round().byte().numpy().transpose(1, 2, 0), smp.rgb
        )
        assert np.allclose(item["depth"].numpy(), smp.depth)
        assert np.array_equal(item["amodal"].numpy(), smp.amodal)
        assert np.array_equal(item["visible"].numpy(), smp.visible)
    cam = FRONT3D_CAMERA.scaled(W / 320, H / 240)
    assert ds[0]["camera"].tolist() == pytest.approx([cam.fx, cam.fy, cam.cx, cam.cy])


def test_depth_derived_visibility_and_augmentation(tmp_path: Path) -> None:
    truth = _write_front3d(tmp_path, scenes=1, groups=1)
    ds = Front3DAmodalDataset(tmp_path, tmp_path / "train.txt", visible_from="depth")
    assert np.array_equal(ds[0]["visible"].numpy(), truth[0].visible)
    flipped = Front3DAmodalDataset(tmp_path, "train.txt", size=(20, 15), hflip=True, seed=3)
    item = flipped[0]
    assert item["depth"].shape == (3, 15, 20) and item["depth"].dtype == torch.float32


def test_bad_layouts(tmp_path: Path) -> None:
    _write_front3d(tmp_path, scenes=1, groups=1)
    with pytest.raises(UserError, match="no such Amodal-3D-FRONT root"):
        Front3DAmodalDataset(tmp_path / "absent", "train.txt")
    with pytest.raises(UserError, match="split file not found"):
        Front3DAmodalDataset(tmp_path, "val.txt")
    (tmp_path / "odd.txt").write_text("scene00/0001\n")
    with pytest.raises(FormatError, match="N mod 3 must be 2"):
        Front3DAmodalDataset(tmp_path, "odd.txt")
    (tmp_path / "scene00" / "mask_0001.png").unlink()
    with pytest.raises(FormatError, match=r"mask_0001.png: file is missing"):
        Front3DAmodalDataset(tmp_path, "train.txt")


def test_truncated_and_mismatched_files(tmp_path: Path) -> None:
    _write_front3d(tmp_path, scenes=1, groups=1)
    ds = Front3DAmodalDataset(tmp_path, "train.txt")
    exr = tmp_path / "scene00" / "depth_0000.exr"
    exr.write_bytes(exr.read_bytes()[:200])
    with pytest.raises(FormatError, match="depth_0000.exr.*truncated"):
        ds[0]
    write_exr(exr, np.ones((H, W + 1), np.float32))
    with pytest.raises(FormatError, match="size 41x30 differs"):
        ds[0]
