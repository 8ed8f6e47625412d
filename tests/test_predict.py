"""`amodal-depth predict`: layer alignment, outputs, and one-line errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import amodal_depth.predict as predict_module
from amodal_depth.cli import main
from amodal_depth.errors import UserError
from amodal_depth.predict import (
    MIN_STATIC_PIXELS,
    WEIGHTS_ENV,
    align_layers,
    default_weights,
    predict_files,
    read_mask,
)
from conftest import write_predict_inputs  # tests/ is on sys.path under pytest

W, H = 40, 30  # not multiples of 14: predict resizes for the network and back


# ------------------------------------------------------------------------------ alignment
def test_align_layers_recovers_a_known_affine_on_static_pixels() -> None:
    rng = np.random.default_rng(0)
    k_n, h, w = 3, 24, 32
    amodal = np.zeros((k_n, h, w), bool)
    amodal[0, 2:12, 2:14] = True
    amodal[1, 8:20, 10:24] = True
    amodal[2, 4:16, 18:30] = True
    base = rng.uniform(0.5, 2.0, (h, w))
    disp = np.stack([base, 3.0 * base + 0.5, 0.5 * base - 0.2]).astype(np.float32)
    # what changes between layers: inside the removed objects' masks, anything
    disp[1][amodal[0]] = 9.0
    disp[2][amodal[0] | amodal[1]] = -4.0
    out, fits = align_layers(disp, amodal)
    assert fits[0] == [1.0, 0.0]
    np.testing.assert_array_equal(out[0], disp[0])
    assert fits[1] == pytest.approx([1 / 3, -0.5 / 3], abs=1e-6)
    assert fits[2] == pytest.approx([2.0, 0.4], abs=1e-6)
    static1, static2 = ~amodal[0], ~(amodal[0] | amodal[1])
    np.testing.assert_allclose(out[1][static1], base[static1], atol=1e-5)
    np.testing.assert_allclose(out[2][static2], base[static2], atol=1e-5)
    # the removed region moves with the same fit, it is not replaced
    assert out[1][amodal[0]] == pytest.approx(9.0 / 3 - 0.5 / 3, abs=1e-5)


def test_align_layers_leaves_a_layer_without_enough_static_pixels() -> None:
    disp = np.stack([np.ones((10, 10)), 2 * np.ones((10, 10))]).astype(np.float32)
    amodal = np.zeros((2, 10, 10), bool)
    amodal[0, :, :] = True
    amodal[0, 0, : MIN_STATIC_PIXELS // 10] = False  # too few pixels left outside o_1
    out, fits = align_layers(disp, amodal)
    assert fits == [[1.0, 0.0], [1.0, 0.0]]
    np.testing.assert_array_equal(out, disp)
    with pytest.raises(UserError, match=r"\[K,H,W\]"):
        align_layers(disp, amodal[:1])


# ------------------------------------------------------------------------------ files
@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | list[Path]]:
    """An image, its 3 amodal masks and the weights of tiny random models (K = 3 and 2)."""
    return write_predict_inputs(tmp_path_factory.mktemp("predict"), W, H, (3, 2))


def test_predict_writes_every_output(inputs: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["predict", str(inputs["image"]), "--masks-kind", "amodal", "--masks",
            *map(str, inputs["masks"])]  # fmt: skip
    assert main([*argv, "--weights", str(inputs["weights"]), "--out", str(out)]) == 0
    disp = np.load(out / "disparity.npy")
    assert disp.shape == (3, H, W) and disp.dtype == np.float32
    assert np.isfinite(disp).all()
    info = json.loads((out / "predict.json").read_text())
    assert info["num_layers"] == 3 and (info["width"], info["height"]) == (W, H)
    assert info["aligned_to_layer_1"] is True and len(info["layer_fits"]) == 3
    for name in info["files"]:
        assert (out / name).is_file(), name
    img = cv2.imread(str(out / "layer_2.png"))
    assert img.shape == (H, W, 3)
    assert cv2.imread(str(out / "overview.png")) is not None
    assert not list(out.glob(".*.tmp"))


def test_predict_without_alignment_keeps_raw_outputs(inputs: dict, tmp_path: Path) -> None:
    from amodal_depth.models.checkpoints import load_model

    masks = inputs["masks"]
    p = predict_files(
        inputs["image"], masks, tmp_path / "a", weights=inputs["weights"], masks_kind="amodal"
    )
    raw = predict_files(
        inputs["image"], masks, tmp_path / "b", weights=inputs["weights"], align=False,
        masks_kind="amodal",
    )  # fmt: skip
    assert raw.fits == [[1.0, 0.0]] * 3
    image = cv2.cvtColor(cv2.imread(str(inputs["image"])), cv2.COLOR_BGR2RGB)
    m = np.stack([read_mask(x) for x in masks])
    direct = load_model(inputs["weights"]).predict_layers(image, m)
    np.testing.assert_allclose(raw.disparity, direct, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p.disparity[0], direct[0], rtol=1e-5, atol=1e-6)
    # a rerun gives the same numbers (deterministic)
    again = predict_files(
        inputs["image"], masks, tmp_path / "a", weights=inputs["weights"], masks_kind="amodal"
    )
    np.testing.assert_array_equal(again.disparity, p.disparity)


def test_read_mask_accepts_colour_and_16_bit(tmp_path: Path) -> None:
    m = np.zeros((6, 8), bool)
    m[2:4, 3:7] = True
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[m] = (0, 0, 255)
    cv2.imwrite(str(tmp_path / "c.png"), rgb)
    cv2.imwrite(str(tmp_path / "w.png"), m.astype(np.uint16) * 65535)
    np.testing.assert_array_equal(read_mask(tmp_path / "c.png"), m)
    np.testing.assert_array_equal(read_mask(tmp_path / "w.png", (8, 6)), m)


def test_default_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    w = tmp_path / "w.safetensors"
    w.write_bytes(b"x")
    monkeypatch.setenv(WEIGHTS_ENV, str(w))
    assert default_weights() == w
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "missing.safetensors"))
    with pytest.raises(UserError, match="no such weights file"):
        default_weights()
    # with a depth, the weights that read it come first, unless the variable names others
    rgbd = tmp_path / "rgbd.safetensors"
    rgbd.write_bytes(b"x")
    monkeypatch.setattr(predict_module, "RGBD_WEIGHTS_NAME", str(rgbd))  # absolute: wins
    monkeypatch.setenv(WEIGHTS_ENV, str(w))
    assert default_weights(observed=True) == w
    monkeypatch.delenv(WEIGHTS_ENV)
    assert default_weights(observed=True) == rgbd
    assert default_weights() != rgbd
    rgbd.unlink()
    assert default_weights(observed=True) == default_weights()


# ------------------------------------------------------------------------------ errors
def _err(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("amodal-depth: error: ") and "\n" not in err, err
    return err


def test_bad_inputs_give_one_line(
    inputs: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    d: Path = inputs["dir"]
    image, masks = str(inputs["image"]), [str(m) for m in inputs["masks"]]
    out = tmp_path / "out"
    w = ["--weights", str(inputs["weights"]), "--out", str(out), "--masks-kind", "amodal"]
    err = _err(capsys, ["predict", image, "--masks", *masks[:2], *w])
    assert "K = 3" in err and "3 masks" in err
    err = _err(capsys, ["predict", image, "--masks", *masks, "--masks-kind", "amodal",
                        "--weights", str(d / "k2.safetensors"), "--out", str(out)])  # fmt: skip
    assert "K = 2" in err
    cv2.imwrite(str(tmp_path / "small.png"), np.full((10, 10), 255, np.uint8))
    err = _err(capsys, ["predict", image, "--masks", masks[0], masks[1],
                        str(tmp_path / "small.png"), *w])  # fmt: skip
    assert "10x10" in err and f"{W}x{H}" in err
    cv2.imwrite(str(tmp_path / "empty.png"), np.zeros((H, W), np.uint8))
    err = _err(capsys, ["predict", image, "--masks", str(tmp_path / "empty.png"), *masks[1:], *w])
    assert "empty" in err
    assert "no such image" in _err(capsys, ["predict", str(d / "nope.png"), "--masks", *masks, *w])
    (tmp_path / "text.png").write_text("not a picture")
    assert "not an image" in _err(capsys, ["predict", str(tmp_path / "text.png"), "--masks",
                                           *masks, *w])  # fmt: skip
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    _err(capsys, ["predict", image, "--masks", *masks, "--weights", str(bad), "--out", str(out)])
    err = _err(capsys, ["predict", image, "--masks", *masks, "--weights",
                        str(tmp_path / "none.safetensors"), "--out", str(out)])  # fmt: skip
    assert "none.safetensors" in err and "does not exist" in err
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "missing.safetensors"))
    assert WEIGHTS_ENV in _err(capsys, ["predict", image, "--masks", *masks, "--out", str(out)])
    assert not out.exists()
