"""`amodal-depth demo` without a browser: the page's callbacks on the bundled sample and on
bad inputs (each must raise the gr.Error the page shows, with the project's message)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

gr = pytest.importorskip("gradio", reason="the demo needs gradio (pip install -e .)")

from amodal_depth.cli import build_parser  # noqa: E402
from amodal_depth.demo import app  # noqa: E402
from amodal_depth.demo.cli import _is_loopback  # noqa: E402
from amodal_depth.demo.pipeline import (  # noqa: E402
    DemoConfig,
    choose_weights,
    short_paths,
)
from amodal_depth.demo.samples import EXAMPLES_DIR, default_sample, room_samples  # noqa: E402
from amodal_depth.reconstruct.export import read_glb_json  # noqa: E402

ROOM = EXAMPLES_DIR / "room"
WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "model.safetensors"
pytestmark = pytest.mark.skipif(not WEIGHTS.is_file(), reason="needs weights/model.safetensors")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> DemoConfig:
    """The committed RGB weights, no RGB-D weights, no completion weights (deterministic
    whatever weights/ holds)."""
    tmp = tmp_path_factory.mktemp("demo")
    return DemoConfig(
        weights=WEIGHTS,
        rgbd_weights=tmp / "absent_rgbd.safetensors",
        completion_weights=tmp / "absent_completion.safetensors",
        out_root=tmp / "out",
        keep_results=3,
    )


def amodal_files() -> list[str]:
    return [str(ROOM / f"amodal_{k}.png") for k in (1, 2, 3)]


def run(config: DemoConfig, **kw) -> tuple:
    args = {
        "image": str(ROOM / "rgb.png"),
        "masks": amodal_files(),
        "kind": "amodal",
        "depth": None,
        "intrinsics": "",
        "fov": 60.0,
        "hidden": "inpaint",
        "view": app.VIEWS[0],
    }
    args.update(kw)
    return app.run_callback(config, *args.values())


def expect_error(config: DemoConfig, text: str, **kw) -> str:
    with pytest.raises(gr.Error) as e:
        run(config, **kw)
    assert text in str(e.value), str(e.value)
    return str(e.value)


def write_png(path: Path, array: np.ndarray) -> str:
    assert cv2.imwrite(str(path), array)
    return str(path)


# ------------------------------------------------------------------------------ sample runs
def test_bundled_sample_runs_and_toggles(config: DemoConfig) -> None:
    layers, masks, shown, files, summary, views = run(config)
    assert [c for _, c in layers][0].startswith("layer 1")
    assert len(layers) == 3 and all(Path(p).is_file() for p, _ in layers)
    assert len(masks) == 4  # all outlined + one per object
    assert shown == views[0] and all(Path(v).is_file() for v in views)
    names = {Path(f).name for f in files}
    assert {"points.ply", "scene.glb", "points_visible.ply", "scene_visible.glb"} <= names
    counts = []
    for v in views:
        doc, _ = read_glb_json(v)
        assert doc["extensionsUsed"] == ["KHR_materials_unlit"]
        assert [m["name"] for m in doc["meshes"]] == ["points", "mesh"]
        counts.append(doc["accessors"][0]["count"])
    assert counts[0] > counts[1] > 0  # the layered view adds the hidden surfaces
    assert "points" in summary and "layer 3" in summary
    assert app.toggle_callback(app.VIEWS[1], views) == views[1]
    assert app.toggle_callback(app.VIEWS[0], views) == views[0]
    assert app.toggle_callback(app.VIEWS[1], None) is None


def test_observed_depth_gives_metres(config: DemoConfig) -> None:
    layers, *_, summary, _ = run(config, depth=str(ROOM / "depth.png"))
    assert "metres" in summary
    assert " m)" in layers[0][1]  # the caption gives the depth range in metres


def test_instance_png_and_sample_loader(config: DemoConfig) -> None:
    samples = room_samples()
    assert {s.kind for s in samples} == {"visible", "amodal"}
    assert default_sample(samples, completion_ready=False).kind == "amodal"
    assert default_sample(samples, completion_ready=True).kind == "visible"
    image, masks, kind, depth, intr = app.load_sample_callback("room: amodal masks (3 PNGs)")
    assert Path(image).is_file() and len(masks) == 3 and kind == "amodal" and depth is None
    assert len(intr.split(",")) == 4
    with pytest.raises(gr.Error, match="no bundled sample"):
        app.load_sample_callback("nope")
    # the instance-id PNG is read as 3 objects: with visible kind it needs completion weights
    expect_error(config, "completion weights", masks=[str(ROOM / "instances.png")], kind="visible")


def test_nonbinary_mask_warns(config: DemoConfig, tmp_path: Path, monkeypatch) -> None:
    said: list[str] = []
    monkeypatch.setattr(app.gr, "Warning", lambda msg, *a, **k: said.append(msg))
    m = cv2.imread(str(ROOM / "amodal_1.png"), cv2.IMREAD_UNCHANGED)
    grey = write_png(tmp_path / "grey_1.png", np.where(m > 0, 200, np.where(m == 0, 0, 90)))
    grey_img = cv2.imread(grey, cv2.IMREAD_UNCHANGED)
    grey_img[0, 0] = 40  # a third value
    cv2.imwrite(grey, grey_img)
    run(config, masks=[grey, *amodal_files()[1:]])
    assert said and "grey_1.png is not a binary mask" in said[0]


# ------------------------------------------------------------------------------ bad inputs
def test_missing_inputs(config: DemoConfig) -> None:
    expect_error(config, "upload an image first", image=None)
    expect_error(config, "upload the masks", masks=[])
    expect_error(config, "upload the masks", masks=None)


def test_mask_problems(config: DemoConfig, tmp_path: Path) -> None:
    m = cv2.imread(str(ROOM / "amodal_1.png"), cv2.IMREAD_UNCHANGED)
    small = write_png(tmp_path / "small.png", cv2.resize(m, (100, 80)))
    msg = expect_error(
        config, "masks must have the image's size", masks=[small, *amodal_files()[1:]]
    )
    assert str(tmp_path) not in msg and "small.png" in msg  # upload folders are cut
    empty = write_png(tmp_path / "empty.png", np.zeros_like(m))
    expect_error(config, "mask is empty", masks=[empty, *amodal_files()[1:]])
    expect_error(config, "needs 3 masks", masks=amodal_files()[:2])
    four = [*amodal_files(), str(ROOM / "visible_1.png")]
    expect_error(config, "needs 3 masks", masks=four)
    expect_error(config, "identical", masks=[amodal_files()[0], *amodal_files()[:2]])
    jpg = tmp_path / "mask.jpg"
    shutil.copy(ROOM / "amodal_1.png", jpg)
    expect_error(config, "must be a .png file", masks=[str(jpg), *amodal_files()[1:]])
    rgb_ids = write_png(tmp_path / "ids.png", np.dstack([m, m, m]))
    expect_error(config, "instance-id PNG has one channel", masks=[rgb_ids])
    blank_ids = write_png(tmp_path / "ids0.png", np.zeros_like(m))
    expect_error(config, "no object in the instance-id PNG", masks=[blank_ids])
    expect_error(config, "need the amodal completion weights", kind="visible")
    expect_error(config, "mask kind must be one of", kind="whole")


def test_bad_depth_files(config: DemoConfig, tmp_path: Path) -> None:
    d = cv2.imread(str(ROOM / "depth.png"), cv2.IMREAD_UNCHANGED)
    small = write_png(tmp_path / "d_small.png", cv2.resize(d, (50, 40)))
    expect_error(config, "resize it to the image first", depth=small)
    txt = tmp_path / "d.txt"
    txt.write_text("1 2 3")
    expect_error(config, "a depth map must be a .png / .npy / .exr file", depth=str(txt))
    bad_npy = tmp_path / "d.npy"
    bad_npy.write_bytes(b"not numpy")
    expect_error(config, "not a readable .npy array", depth=str(bad_npy))
    neg = tmp_path / "neg.npy"
    np.save(neg, -np.ones(d.shape, np.float32))
    expect_error(config, "negative values", depth=str(neg))
    holes = write_png(tmp_path / "holes.png", np.zeros_like(d))
    expect_error(config, "valid pixels", depth=holes)
    colour = write_png(tmp_path / "colour.png", np.dstack([d, d, d]))
    expect_error(config, "has one channel", depth=colour)


def test_bad_image_and_camera(config: DemoConfig, tmp_path: Path, monkeypatch) -> None:
    from amodal_depth.demo import pipeline

    expect_error(config, "8-bit RGB", image=np.zeros((40, 40, 3), np.float32))
    expect_error(config, "at least 16 pixels", image=np.zeros((8, 40, 3), np.uint8))
    monkeypatch.setattr(pipeline, "MAX_PIXELS", 10_000)
    expect_error(config, "the demo takes at most", image=str(ROOM / "rgb.png"))
    monkeypatch.undo()
    expect_error(config, "give four numbers", intrinsics="1,2,3")
    expect_error(config, "must all be positive", intrinsics="100,100,-1,80")
    expect_error(config, "field of view must be in", fov=200.0)
    expect_error(config, "hidden colour must be one of", hidden="rainbow")
    txt = tmp_path / "image.txt"
    txt.write_text("x")
    expect_error(config, "an image must be", image=str(txt))


# ------------------------------------------------------------------------------ pieces
def test_weights_choice_and_status(config: DemoConfig, tmp_path: Path) -> None:
    assert choose_weights(config, with_depth=True) == WEIGHTS  # no RGB-D file: the RGB one
    rgbd = tmp_path / "model_rgbd.safetensors"
    rgbd.write_bytes(b"x")
    cfg = DemoConfig(weights=WEIGHTS, rgbd_weights=rgbd, completion_weights=tmp_path / "no")
    assert choose_weights(cfg, with_depth=True) == rgbd
    assert choose_weights(cfg, with_depth=False) == WEIGHTS
    text = app.status_markdown(config)
    assert "No amodal completion weights" in text and "model.safetensors" in text


def test_short_paths() -> None:
    msg = "/tmp/gradio/abc/x.png: mask is empty"
    assert short_paths(msg, ["/tmp/gradio/abc/x.png", None]) == "x.png: mask is empty"


def test_cli_registration_and_loopback_default() -> None:
    args = build_parser().parse_args(["demo"])
    assert args.host == "127.0.0.1" and args.port == 7860 and args.concurrency == 1
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0")


def test_cli_rejects_bad_options(capsys: pytest.CaptureFixture) -> None:
    from amodal_depth.cli import main

    assert main(["demo", "--port", "0"]) == 2
    assert "give a port in 1..65535" in capsys.readouterr().err
    assert main(["demo", "--weights", "/nonexistent.safetensors"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_build_app_offline_settings(config: DemoConfig) -> None:
    import os

    blocks = app.build_app(config)
    assert isinstance(blocks, gr.Blocks) and blocks.analytics_enabled is False
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
