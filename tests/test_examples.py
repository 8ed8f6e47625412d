"""The README's commands on the committed example scene, with the committed weights."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from amodal_depth.cli import main

ROOT = Path(__file__).resolve().parents[1]
ROOM = ROOT / "examples" / "room"
needs_weights = pytest.mark.skipif(
    not (ROOT / "weights" / "completion.safetensors").is_file(),
    reason="weights/completion.safetensors is not in this checkout",
)


@needs_weights
def test_predict_from_visible_masks_and_a_sensor_depth(tmp_path: Path) -> None:
    out = tmp_path / "room"
    argv = ["predict", str(ROOM / "rgb.png"), "--masks", str(ROOM / "instances.png")]
    assert main([*argv, "--depth", str(ROOM / "depth.png"), "--out", str(out)]) == 0
    info = json.loads((out / "predict.json").read_text())
    assert info["masks_kind"] == "visible" and info["order_source"] == "predicted"
    assert sorted(info["order"]) == [1, 2, 3] and info["metric"] is True
    depth = np.load(out / "depth.npy")
    observed = cv2.imread(str(ROOM / "depth.png"), cv2.IMREAD_UNCHANGED) / 1000.0
    valid = observed > 0
    # layer 1 is in the sensor's metres where it measured
    assert np.median(np.abs(depth[0][valid] - observed[valid]) / observed[valid]) < 0.1
    # the completed masks cover the visible ones and match the true amodal masks well
    for k, obj in enumerate(info["order"]):
        amodal = cv2.imread(str(out / f"amodal_{k + 1}.png"), cv2.IMREAD_GRAYSCALE) > 0
        visible = cv2.imread(str(ROOM / f"visible_{obj}.png"), cv2.IMREAD_GRAYSCALE) > 0
        truth = cv2.imread(str(ROOM / f"amodal_{obj}.png"), cv2.IMREAD_GRAYSCALE) > 0
        assert (amodal | ~visible).all()
        assert (amodal & truth).sum() / (amodal | truth).sum() > 0.8
    rec = tmp_path / "room_3d"
    args = ["reconstruct", str(out), "--intrinsics", str(ROOM / "camera.json"), "--glb"]
    assert main([*args, "--out", str(rec)]) == 0
    import open3d as o3d

    assert len(o3d.io.read_point_cloud(str(rec / "points.ply")).points) > 1000
    assert (rec / "scene.glb").is_file() and (rec / "reconstruct.json").is_file()


@needs_weights
def test_separate_visible_masks_give_the_same_result(tmp_path: Path) -> None:
    masks = [str(ROOM / f"visible_{k}.png") for k in (1, 2, 3)]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["predict", str(ROOM / "rgb.png"), "--masks", *masks, "--out", str(a)]) == 0
    argv = ["predict", str(ROOM / "rgb.png"), "--masks", str(ROOM / "instances.png")]
    assert main([*argv, "--out", str(b)]) == 0
    np.testing.assert_array_equal(np.load(a / "disparity.npy"), np.load(b / "disparity.npy"))
