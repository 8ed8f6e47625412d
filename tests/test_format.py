"""Round trip and rejection tests for the amodal-layers reader/writer (docs/data-format.md)."""

import json

import numpy as np
import pytest

from amodal_depth.data import format as fmt


def _sample(k=3, h=6, w=8, seed=0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 9.0, (k, h, w)).astype(np.float32)
    layer_rgb = rng.integers(0, 256, (k, h, w, 3), dtype=np.uint8)
    layer_rgb[0] = rgb
    amodal = rng.random((k, h, w)) > 0.5
    visible = amodal & (rng.random((k, h, w)) > 0.3)
    obj = np.where(amodal, depth, 0).astype(np.float32)
    cam = fmt.Camera.from_fov(w, h, 60.0)
    return fmt.LayeredSample(rgb, depth, layer_rgb, visible, amodal, obj, cam, {"seed": seed})


def _dataset(tmp_path, k=3, h=6, w=8):
    s = _sample(k, h, w)
    fmt.write_sample(tmp_path, "000000", s)
    m = fmt.make_manifest(k, w, h, {"train": ["000000"]}, {"seed": 0})
    fmt.write_manifest(tmp_path, m)
    return s, m


def test_round_trip_is_exact_to_a_millimetre(tmp_path):
    s, m = _dataset(tmp_path)
    r = fmt.read_sample(tmp_path, "000000", fmt.read_manifest(tmp_path))
    assert np.array_equal(r.rgb, s.rgb)
    assert np.array_equal(r.layer_rgb, s.layer_rgb)
    assert np.array_equal(r.visible, s.visible) and np.array_equal(r.amodal, s.amodal)
    assert np.abs(r.depth - s.depth).max() <= 0.0005 + 1e-6
    assert r.camera == s.camera
    assert sorted(p.name for p in (tmp_path / "samples" / "000000").iterdir()) == sorted(
        fmt.sample_files(3)
    )


def test_camera_resize_keeps_pixel_centres():
    cam = fmt.Camera.from_fov(8, 6, 60.0)
    assert cam.cx == 3.5
    half = cam.scaled(0.5, 0.5)
    assert half.cx == 1.5 and half.width == 4
    assert cam.flipped().cx == 3.5


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda root: (root / "manifest.json").unlink(), "no manifest.json"),
        (lambda root: _edit(root, format="other"), "expected 'amodal-layers'"),
        (lambda root: _edit(root, version=2), "version 2 is not supported"),
    ],
)
def test_bad_manifest_is_rejected_in_one_line(tmp_path, change, message):
    _dataset(tmp_path)
    change(tmp_path)
    with pytest.raises(fmt.FormatError, match=message) as e:
        fmt.read_manifest(tmp_path)
    assert "\n" not in str(e.value)


def test_missing_root_and_split(tmp_path):
    with pytest.raises(fmt.FormatError, match="no such dataset"):
        fmt.read_manifest(tmp_path / "nope")
    _, m = _dataset(tmp_path)
    with pytest.raises(fmt.FormatError, match="no samples in split 'test'"):
        fmt.split_ids(m, "test", tmp_path)


def test_missing_truncated_and_resized_files(tmp_path):
    _dataset(tmp_path)
    m = fmt.read_manifest(tmp_path)
    d = tmp_path / "samples" / "000000"
    data = (d / "depth_2.png").read_bytes()
    (d / "depth_2.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(fmt.FormatError, match="truncated or corrupt"):
        fmt.read_sample(tmp_path, "000000", m)
    (d / "depth_2.png").unlink()
    with pytest.raises(fmt.FormatError, match="missing"):
        fmt.read_sample(tmp_path, "000000", m)
    m2 = dict(m, width=9)
    with pytest.raises(fmt.FormatError, match="differs from the manifest"):
        fmt.read_sample(tmp_path, "000000", m2)


def _edit(root, **kv):
    p = root / "manifest.json"
    m = json.loads(p.read_text())
    m.update(kv)
    p.write_text(json.dumps(m))


def test_written_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        _dataset(tmp_path)
    finally:
        os.umask(old)
    assert (tmp_path / "samples" / "000000").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "manifest.json").stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob(".*.tmp")) and not list((tmp_path / "samples").glob(".*"))
