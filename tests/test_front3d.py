"""The Amodal-3D-FRONT adapter and the EXR codec, on a miniature dataset in that layout."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from amodal_depth.data.exr import read_exr, write_exr
from amodal_depth.data.format import FormatError
from amodal_depth.data.front3d import FRONT3D_CAMERA, Front3DAmodalDataset
from amodal_depth.errors import UserError
from conftest import flat_sample  # tests/ is on sys.path under pytest

W, H = 40, 30


# ------------------------------------------------------------------------------ EXR
def _hand_made_exr(values: np.ndarray, compression: int = 0) -> bytes:
    """An EXR assembled byte by byte from the OpenEXR file-layout document, independently
    of exr.py: one FLOAT channel 'Z', NONE (0) or ZIPS (2, one line per chunk)."""
    h, w = values.shape

    def attr(name: bytes, typ: bytes, value: bytes) -> bytes:
        return name + b"\0" + typ + b"\0" + struct.pack("<i", len(value)) + value

    chlist = b"Z\0" + struct.pack("<i", 2) + b"\0\0\0\0" + struct.pack("<ii", 1, 1) + b"\0"
    box = struct.pack("<iiii", 0, 0, w - 1, h - 1)
    head = b"\x76\x2f\x31\x01" + struct.pack("<i", 2)
    head += attr(b"channels", b"chlist", chlist)
    head += attr(b"compression", b"compression", bytes([compression]))
    head += attr(b"dataWindow", b"box2i", box) + attr(b"displayWindow", b"box2i", box)
    head += attr(b"lineOrder", b"lineOrder", b"\0")
    head += attr(b"pixelAspectRatio", b"float", struct.pack("<f", 1))
    head += attr(b"screenWindowCenter", b"v2f", struct.pack("<ff", 0, 0))
    head += attr(b"screenWindowWidth", b"float", struct.pack("<f", 1)) + b"\0"
    chunks = []
    for y in range(h):
        raw = values[y].astype("<f4").tobytes()
        if compression == 2:
            # the spec's pre-pass written out in plain Python: split, then delta + 128
            split = raw[0::2] + raw[1::2]
            delta = bytes([split[0]] + [(split[i] - split[i - 1] + 128) % 256
                                        for i in range(1, len(split))])  # fmt: skip
            packed = zlib.compress(delta)
            raw = packed if len(packed) < len(raw) else raw  # as OpenEXR: keep the smaller
        chunks.append(struct.pack("<ii", y, len(raw)) + raw)
    offsets, pos = [], len(head) + 8 * h
    for c in chunks:
        offsets.append(pos)
        pos += len(c)
    return head + struct.pack(f"<{h}Q", *offsets) + b"".join(chunks)


@pytest.mark.parametrize("compression", [0, 2])
def test_exr_reader_reads_a_hand_made_file(tmp_path: Path, compression: int) -> None:
    v = np.random.default_rng(0).uniform(0.5, 6.0, (5, 40)).astype(np.float32)
    v[:, 10:] = 2.5  # compressible, so that ZIPS chunks really are deflated
    p = tmp_path / "d.exr"
    p.write_bytes(_hand_made_exr(v, compression))
    got = read_exr(p)
    assert list(got) == ["Z"] and np.array_equal(got["Z"], v)


@pytest.mark.parametrize("compression, half", [("NONE", False), ("ZIP", False), ("ZIP", True)])
def test_exr_round_trip(tmp_path: Path, compression: str, half: bool) -> None:
    rng = np.random.default_rng(1)
    v = np.where(rng.random((37, 23)) > 0.5, rng.uniform(0.5, 6.0, (37, 23)), 2.0)
    chans = {"R": v, "G": v * 2, "B": np.zeros_like(v)}
    write_exr(tmp_path / "x.exr", chans, half=half, compression=compression)
    got = read_exr(tmp_path / "x.exr")
    tol = 4e-3 if half else 0.0
    for k in chans:
        assert np.allclose(got[k], chans[k].astype(np.float32), rtol=tol, atol=0)


def test_exr_bad_files(tmp_path: Path) -> None:
    p = tmp_path / "t.exr"
    write_exr(p, np.ones((20, 10), np.float32), compression="NONE")
    p.write_bytes(p.read_bytes()[:-50])
    with pytest.raises(FormatError, match="truncated"):
        read_exr(p)
    p.write_bytes(b"not an exr at all")
    with pytest.raises(FormatError, match="not an OpenEXR file"):
        read_exr(p)
    blob = bytearray(_hand_made_exr(np.ones((2, 2), np.float32)))
    i = blob.index(b"compression\0compression\0") + len(b"compression\0compression\0") + 4
    blob[i] = 4  # PIZ
    p.write_bytes(bytes(blob))
    with pytest.raises(FormatError, match="compression PIZ is not supported"):
        read_exr(p)


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
