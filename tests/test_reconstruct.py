"""`amodal-depth reconstruct`: camera, scale rules, back-projection, fusion, export, 3D metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d
import pytest

from amodal_depth.cli import main
from amodal_depth.data.format import Camera
from amodal_depth.errors import UserError
from amodal_depth.reconstruct import (
    CameraHeight,
    DepthRange,
    InverseDepthFit,
    KnownDepths,
    LayeredPointCloud,
    MedianDepth,
    MetricDepth,
    backproject,
    camera_from_fov,
    chamfer_l1,
    fscore,
    fuse_layers,
    fusion_masks,
    make_mesh,
    object_labels,
    parse_intrinsics,
    read_ply,
    reconstruct_image,
    reconstruct_layers,
    reconstruction_metrics,
    resolve_camera,
    to_metric,
    write_glb,
    write_mesh_ply,
    write_ply,
)
from amodal_depth.reconstruct.export import read_glb_json
from amodal_depth.reconstruct.render import orbit_pose, render_points
from conftest import flat_sample, write_predict_inputs  # tests/ is on sys.path under pytest

W, H = 40, 30


# ------------------------------------------------------------------------------ camera
def test_intrinsics_from_a_camera_json(tmp_path: Path) -> None:
    (tmp_path / "camera.json").write_text(json.dumps(Camera(90, 80, 19.5, 14.5, W, H).to_dict()))
    c = resolve_camera(W, H, intrinsics=str(tmp_path / "camera.json"))
    assert (c.fx, c.fy, c.cx, c.cy) == (90, 80, 19.5, 14.5)
    with pytest.raises(UserError, match="40x30 images but the image is 80x60"):
        resolve_camera(80, 60, intrinsics=str(tmp_path / "camera.json"))
    with pytest.raises(UserError, match="not a readable camera JSON"):
        resolve_camera(W, H, intrinsics=str(tmp_path / "missing.json"))


def test_camera_from_fov_and_intrinsics() -> None:
    cam = camera_from_fov(101, 61, 90.0)
    assert cam.fx == pytest.approx(50.5) and cam.fy == pytest.approx(50.5)
    assert (cam.cx, cam.cy) == (50.0, 30.0)
    assert resolve_camera(101, 61).fx == pytest.approx(50.5 / math.tan(math.radians(30)))
    c = resolve_camera(40, 30, intrinsics="100,90,19.5,14.5")
    assert (c.fx, c.fy, c.cx, c.cy, c.width, c.height) == (100, 90, 19.5, 14.5, 40, 30)
    assert parse_intrinsics([1, 2, 3, 4]) == (1, 2, 3, 4)
    for bad in ("100,90,19.5", "a,b,c,d", "100,0,19.5,14.5", "100,90,-1,14.5", "nan,1,1,1"):
        with pytest.raises(UserError, match="--intrinsics"):
            resolve_camera(40, 30, intrinsics=bad)
    for fov in (0.0, 180.0, -5.0, float("nan")):
        with pytest.raises(UserError, match="--fov"):
            camera_from_fov(40, 30, fov)
    with pytest.raises(UserError, match="not both"):
        resolve_camera(40, 30, fov=60.0, intrinsics="1,1,1,1")


# ------------------------------------------------------------------------------ geometry
def _plane_depth(cam: Camera, normal: np.ndarray, offset: float) -> np.ndarray:
    """z of the plane n.X = offset along every pixel's ray (OpenCV pixel convention)."""
    v, u = np.mgrid[0 : cam.height, 0 : cam.width].astype(np.float64)
    rays = np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u)], -1)
    return offset / (rays @ normal)


def test_backproject_lies_on_the_known_plane() -> None:
    cam = Camera(60.0, 55.0, 20.3, 13.7, W, H)
    n = np.array([0.1, -0.3, 1.0])
    n /= np.linalg.norm(n)
    z = _plane_depth(cam, n, 2.5)
    pts = backproject(z, cam)
    assert pts.shape == (W * H, 3)
    np.testing.assert_allclose(pts @ n, 2.5, atol=1e-9)
    np.testing.assert_allclose(pts[:, 2], z.ravel())  # depth is z, not the ray length
    u, v = pts[:, 0] / pts[:, 2] * cam.fx + cam.cx, pts[:, 1] / pts[:, 2] * cam.fy + cam.cy
    vv, uu = np.mgrid[0:H, 0:W]
    np.testing.assert_allclose(u, uu.ravel(), atol=1e-9)
    np.testing.assert_allclose(v, vv.ravel(), atol=1e-9)
    z[3, 4], z[5, 6] = np.nan, -1.0  # holes are skipped, row-major order kept
    mask = np.zeros((H, W), bool)
    mask[3:6, :] = True
    assert len(backproject(z, cam, mask)) == 3 * W - 2


def test_fusion_rule_labels_and_colours() -> None:
    s = flat_sample(W, H, 3, seed=3)
    keep = fusion_masks(s.amodal)
    assert keep[0].all()
    np.testing.assert_array_equal(keep[1], s.amodal[0])
    np.testing.assert_array_equal(keep[2], s.amodal[0] | s.amodal[1])
    cloud = fuse_layers(s.depth, s.amodal, s.camera, s.rgb, layer_rgb=s.layer_rgb)
    counts = [W * H, int(s.amodal[0].sum()), int((s.amodal[0] | s.amodal[1]).sum())]
    assert cloud.counts_per_layer(3) == counts and len(cloud) == sum(counts)
    labels = object_labels(s.amodal)
    for k in range(3):
        sel = cloud.layer == k + 1
        u, v = cloud.pixels[sel].T
        np.testing.assert_array_equal(cloud.object[sel], labels[k][v, u])
        np.testing.assert_array_equal(cloud.colors[sel], s.layer_rgb[k][v, u])
        np.testing.assert_allclose(cloud.points[sel][:, 2], s.depth[k][v, u], rtol=1e-6)
    # in layer 2, o_2's pixels hidden by o_1 are labelled o_2; o_1's own pixels elsewhere are
    # background (the wall behind it) unless o_3 covers them
    hid2 = s.amodal[1] & s.amodal[0]
    assert (labels[1][hid2] == 2).all() and (labels[0][s.amodal[0]] == 1).all()
    assert set(np.unique(labels[2])) <= {0, 3}
    # without the true layer images: flat tints, or colours diffused from visible pixels
    flat = fuse_layers(s.depth, s.amodal, s.camera, s.rgb, hidden_colour="flat")
    assert len(np.unique(flat.colors[flat.layer == 2], axis=0)) == 1
    painted = fuse_layers(s.depth, s.amodal, s.camera, s.rgb)
    o2_hidden = (painted.layer == 2) & (painted.object == 2)
    colour_o2 = s.rgb[s.visible[1]][0]  # flat_sample paints each object in one colour
    diff = np.abs(painted.colors[o2_hidden].astype(int) - colour_o2)
    assert o2_hidden.any() and diff.max() <= 8 and diff.mean() <= 2  # o_2's, not o_1's colour
    assert np.abs(colour_o2.astype(int) - s.rgb[s.visible[0]][0]).max() > 8
    one = fuse_layers(s.depth, s.amodal, s.camera, s.rgb, layers=1)
    assert one.counts_per_layer(3) == [W * H, 0, 0]
    with pytest.raises(UserError, match=r"\[K,H,W\]"):
        fuse_layers(s.depth, s.amodal[:2], s.camera, s.rgb)
    with pytest.raises(UserError, match="hidden colour"):
        fuse_layers(s.depth, s.amodal, s.camera, s.rgb, hidden_colour="rainbow")


# ------------------------------------------------------------------------------ scale
def test_scale_rules_recover_known_numbers() -> None:
    s = flat_sample(W, H, 3, seed=1)
    s.depth = s.depth.astype(np.float64)
    st = (0.37, 0.05)
    disp = (1.0 / s.depth - st[1]) / st[0]  # depth = 1 / (s d + t)
    depth, info = to_metric(disp, InverseDepthFit(*st), s.camera, s.amodal)
    np.testing.assert_allclose(depth, s.depth, rtol=1e-9)
    pts = (
        (3, 4, float(s.depth[0, 4, 3])),
        (30, 20, float(s.depth[0, 20, 30])),
        (12, 15, float(s.depth[0, 15, 12])),
    )
    _, info = to_metric(disp, KnownDepths(pts), s.camera, s.amodal)
    assert (info["s"], info["t"]) == pytest.approx(st, rel=1e-6)
    depth, info = to_metric(disp, DepthRange(1.0, 5.0), s.camera, s.amodal)
    assert np.percentile(1 / depth[0], [2, 98]) == pytest.approx([1 / 5.0, 1 / 1.0], rel=1e-6)
    default, info = to_metric(disp, None, s.camera, s.amodal)
    assert info["rule"] == "depth_range" and (info["near_m"], info["far_m"]) == (1.5, 7.0)
    # one number rescales the default: same shape, the asked-for value
    med, info = to_metric(disp, MedianDepth(2.0), s.camera, s.amodal)
    assert np.median(med[0]) == pytest.approx(2.0) and info["shape_from"] == [1.5, 7.0]
    np.testing.assert_allclose(med / default, 2.0 / np.median(default[0]))
    one, _ = to_metric(disp, KnownDepths(((5, 6, 4.0),)), s.camera, s.amodal)
    assert one[0, 6, 5] == pytest.approx(4.0)
    metric, info = to_metric(s.depth, MetricDepth(), s.camera, s.amodal)
    np.testing.assert_array_equal(metric, s.depth)
    assert info["rule"] == "metric"
    v_n, u_n = np.unravel_index(np.argmax(disp[0]), disp[0].shape)
    v_f, u_f = np.unravel_index(np.argmin(disp[0]), disp[0].shape)
    near, far = (float(u_n), float(v_n)), (float(u_f), float(v_f))
    for rule, msg in (
        (KnownDepths(((99, 1, 2.0),)), "outside"),
        (MedianDepth(-1.0), "positive"),
        (DepthRange(5.0, 2.0), "far must exceed"),
        (KnownDepths(((*near, 9.0), (*far, 1.0))), "contradict"),
        (CameraHeight(0.0), "positive"),
    ):
        with pytest.raises(UserError, match=msg):
            to_metric(disp, rule, s.camera, s.amodal)


def test_camera_height_puts_the_floor_that_far_below() -> None:
    cam = camera_from_fov(64, 48, 60.0)
    pitch = math.radians(40.0)
    down = np.array([0.0, math.cos(pitch), math.sin(pitch)])  # world down in camera axes
    z = _plane_depth(cam, down, 1.3)  # a floor 1.3 m below the camera fills the view
    masks = np.zeros((2, 48, 64), bool)
    masks[0, 2:10, 5:20], masks[1, 4:14, 15:30] = True, True
    disp = np.stack([1.0 / z, 1.0 / z]) * 7.0 + 0.2  # unknown scale and shift
    depth, info = to_metric(disp, CameraHeight(1.6), cam, masks)
    assert info["rule"] == "camera_height" and info["floor_inlier_share"] > 0.95
    pts = backproject(depth[0], cam)
    c = pts.mean(axis=0)
    n = np.linalg.svd(pts - c)[2][2]
    assert abs(float(n @ c)) == pytest.approx(1.6, rel=1e-3)  # plane 1.6 m from the camera
    wall = _plane_depth(cam, np.array([0.6, 0.0, 0.8]), 3.0)  # a wall receding to the left
    with pytest.raises(UserError, match="no floor"):
        to_metric(np.stack([1 / wall, 1 / wall]), CameraHeight(1.6), cam, masks)


# ------------------------------------------------------------------------------ files
def _cloud() -> LayeredPointCloud:
    s = flat_sample(W, H, 3, seed=2)
    return fuse_layers(s.depth, s.amodal, s.camera, s.rgb, layer_rgb=s.layer_rgb)


def test_ply_round_trip_through_open3d(tmp_path: Path) -> None:
    cloud = _cloud()
    write_ply(tmp_path / "points.ply", cloud)
    pcd = o3d.io.read_point_cloud(str(tmp_path / "points.ply"))
    np.testing.assert_allclose(np.asarray(pcd.points), cloud.points, atol=1e-6)
    np.testing.assert_allclose(np.asarray(pcd.colors) * 255, cloud.colors, atol=1e-3)
    back = read_ply(tmp_path / "points.ply")
    np.testing.assert_array_equal(back.layer, cloud.layer)
    np.testing.assert_array_equal(back.object, cloud.object)
    np.testing.assert_array_equal(back.colors, cloud.colors)
    assert not list(tmp_path.glob(".*.tmp"))


def test_mesh_and_glb(tmp_path: Path) -> None:
    cam = camera_from_fov(64, 48, 60.0)
    z = _plane_depth(cam, np.array([0.0, 0.0, 1.0]), 2.0)
    depth = np.stack([z, z + 0.5])
    amodal = np.zeros((2, 48, 64), bool)
    amodal[0, 10:30, 10:40] = True
    amodal[1, 15:40, 30:60] = True
    depth[0][amodal[0]] = 1.5
    cloud = fuse_layers(depth, amodal, cam, hidden_colour="flat")
    mesh, rec = make_mesh(cloud)
    assert rec["triangles"] > 100 and len(mesh.triangles) == rec["triangles"]
    v = np.asarray(mesh.vertices)
    assert v[:, 2].min() > 1.4 and v[:, 2].max() < 2.6  # no Poisson bubble left far away
    write_mesh_ply(tmp_path / "mesh.ply", mesh)
    back = o3d.io.read_triangle_mesh(str(tmp_path / "mesh.ply"))
    assert len(back.triangles) == rec["triangles"] and back.has_vertex_colors()
    write_glb(tmp_path / "scene.glb", cloud, mesh)
    doc, binary = read_glb_json(tmp_path / "scene.glb")
    prim = doc["meshes"][0]["primitives"][0]
    assert prim["mode"] == 0 and {"POSITION", "COLOR_0", "_LAYER", "_OBJECT"} <= set(
        prim["attributes"]
    )
    acc = doc["accessors"][prim["attributes"]["POSITION"]]
    view = doc["bufferViews"][acc["bufferView"]]
    pos = np.frombuffer(binary, "<f4", acc["count"] * 3, view["byteOffset"]).reshape(-1, 3)
    np.testing.assert_allclose(pos, cloud.points * [1, -1, -1], atol=1e-6)  # glTF: y up, -z
    assert len(o3d.io.read_triangle_mesh(str(tmp_path / "scene.glb")).triangles) == rec["triangles"]


def test_render_points_z_buffer() -> None:
    cam = camera_from_fov(32, 24, 60.0)
    far = np.full((24, 32), 4.0)
    near = np.full((24, 32), np.nan)
    near[8:16, 8:16] = 2.0
    masks = np.zeros((2, 24, 32), bool)
    masks[0, 8:16, 8:16] = True
    image = np.zeros((24, 32, 3), np.uint8)
    image[:] = (0, 0, 200)
    image[8:16, 8:16] = (200, 0, 0)
    depth = np.stack([np.where(masks[0], 2.0, 4.0), far])
    cloud = fuse_layers(depth, masks, cam, image, hidden_colour="flat")
    same = render_points(cloud, cam, splat=0)
    np.testing.assert_array_equal(same, image)  # identity view: the nearest point wins
    rot, t = orbit_pose(np.array([0.0, 0.0, 3.0]), 20.0)
    assert np.allclose(rot @ np.array([0, 0, 3.0]) + t, [0, 0, 3.0])
    moved = render_points(cloud, cam, rot, t)
    assert (moved == (200, 0, 0)).all(-1).any()


# ------------------------------------------------------------------------------ metrics
def test_metrics_on_known_cases() -> None:
    g = np.stack(np.meshgrid(np.arange(0, 1, 0.01), np.arange(0, 1, 0.01)), -1).reshape(-1, 2)
    plane = np.c_[g, np.full(len(g), 2.0)]
    hidden = np.c_[g[:2000], np.full(2000, 3.0)]
    n1, n2 = len(plane), len(hidden)

    def cloud(vis: np.ndarray, hid: np.ndarray) -> LayeredPointCloud:
        pts = np.concatenate([vis, hid]).astype(np.float32)
        lay = np.r_[np.ones(len(vis)), np.full(len(hid), 2)].astype(np.uint8)
        z = np.zeros(len(pts), np.uint8)
        return LayeredPointCloud(
            pts, np.zeros((len(pts), 3), np.uint8), lay, z, np.zeros((len(pts), 2), np.int32)
        )

    truth = cloud(plane, hidden)
    same = reconstruction_metrics(truth, truth)
    assert same["chamfer_l1"] == 0.0 and same["fscore_2cm"] == 1.0
    assert same["hidden_completeness_2cm"] == 1.0 and same["visible_fscore_5cm"] == 1.0
    shifted = reconstruction_metrics(cloud(plane + [0, 0, 0.03], hidden + [0, 0, 0.04]), truth)
    assert shifted["chamfer_l1"] == pytest.approx((0.03 * n1 + 0.04 * n2) / (n1 + n2), rel=1e-5)
    assert shifted["fscore_2cm"] == 0.0 and shifted["fscore_5cm"] == 1.0
    assert shifted["hidden_completeness_2cm"] == 0.0
    assert shifted["hidden_completeness_5cm"] == 1.0 and shifted["visible_fscore_5cm"] == 1.0
    visible_only = reconstruction_metrics(cloud(plane, hidden[:0]), truth)
    for c in ("2cm", "5cm", "10cm"):  # the hidden plane is 1 m behind: never reached
        assert visible_only[f"hidden_completeness_{c}"] == 0.0
        assert visible_only[f"precision_{c}"] == 1.0
        assert visible_only[f"recall_{c}"] == pytest.approx(n1 / (n1 + n2))
    r = n1 / (n1 + n2)
    assert visible_only["fscore_5cm"] == pytest.approx(2 * r / (1 + r))
    assert visible_only["visible_fscore_5cm"] == 1.0
    rng = np.random.default_rng(1)
    noisy = cloud(plane + rng.normal(0, 0.03, plane.shape), hidden + rng.normal(0, 0.03, (n2, 3)))
    exact = reconstruction_metrics(noisy, truth)
    estimate = reconstruction_metrics(noisy, truth, max_queries=2000)
    for key in ("chamfer_l1", "fscore_2cm", "hidden_completeness_5cm", "visible_fscore_5cm"):
        assert estimate[key] == pytest.approx(exact[key], abs=0.03), key
    assert 0.1 < exact["fscore_2cm"] < 0.9
    assert chamfer_l1(np.zeros((1, 3)), np.array([[0.0, 0.3, 0.4]])) == pytest.approx(0.5)
    assert fscore(np.zeros((2, 3)), np.array([[0, 0, 0.01], [0, 0, 1.0]]), 0.02) == pytest.approx(
        (1.0, 0.5, 2 / 3)
    )
    assert math.isnan(chamfer_l1(np.zeros((0, 3)), plane))


# ------------------------------------------------------------------------------ API and CLI
@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An image, its 3 amodal masks, tiny random weights and a predict folder made with them."""
    files = write_predict_inputs(tmp_path_factory.mktemp("reconstruct"), W, H)
    pred = files["dir"] / "pred"
    argv = [
        "predict",
        str(files["image"]),
        "--masks-kind",
        "amodal",
        "--masks",
        *map(str, files["masks"]),
    ]
    assert main([*argv, "--weights", str(files["weights"]), "--out", str(pred)]) == 0
    return {**files, "pred": pred, "sample": flat_sample(W, H, 3, seed=1)}


def test_reconstruct_image_api(inputs: dict) -> None:
    import amodal_depth

    s = inputs["sample"]
    cloud = amodal_depth.reconstruct_image(s.rgb, s.amodal, model=inputs["weights"], fov=70.0)
    assert isinstance(cloud, LayeredPointCloud) and len(cloud) > W * H
    assert cloud.info["camera"]["hfov_deg"] == pytest.approx(70.0)
    assert cloud.info["scale"]["rule"] == "depth_range"
    assert sum(cloud.info["points_per_layer"]) == len(cloud)
    assert cloud.to_open3d().has_colors()
    with pytest.raises(UserError, match="empty"):
        reconstruct_image(s.rgb, np.zeros_like(s.amodal), model=inputs["weights"])


def test_cli_on_a_predict_folder(inputs: dict, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    argv = [
        "reconstruct",
        str(inputs["pred"]),
        "--out",
        str(out),
        "--mesh",
        "--glb",
        "--intrinsics",
        "50,50,19.5,14.5",
        "--no-progress",
    ]
    assert main(argv) == 0
    info = json.loads((out / "reconstruct.json").read_text())
    assert info["files"] == ["points.ply", "mesh.ply", "scene.glb", "reconstruct.json"]
    assert info["kind"] == "predict_dir" and info["camera"]["source"] == "--intrinsics"
    assert info["scale"]["rule"] == "depth_range" and "s" in info["scale"]
    pcd = o3d.io.read_point_cloud(str(out / "points.ply"))
    assert len(pcd.points) == info["points"] == sum(info["points_per_layer"])
    assert 0.9 * W * H <= info["points_per_layer"][0] <= W * H  # beyond 100 m: dropped
    assert len(o3d.io.read_triangle_mesh(str(out / "mesh.ply")).triangles) > 0
    assert not list(out.glob(".*.tmp"))
    out2 = tmp_path / "rec2"
    assert (
        main(
            [
                "reconstruct",
                str(inputs["image"]),
                "--masks",
                *map(str, inputs["masks"]),
                "--weights",
                str(inputs["weights"]),
                "--out",
                str(out2),
                "--no-progress",
                "--known-depth",
                "20,15,2.5",
            ]
        )
        == 0
    )
    info2 = json.loads((out2 / "reconstruct.json").read_text())
    assert info2["kind"] == "image" and info2["scale"]["rule"] == "known_depths"
    pts = read_ply(out2 / "points.ply")
    at = (pts.layer == 1) & (np.abs(pts.points[:, 0]) < 1e-6) & (np.abs(pts.points[:, 1]) < 1e-6)
    # pixel (20, 15) is off-centre (cx = 19.5); find it by its pixel ray instead
    cam = camera_from_fov(W, H, 60.0)
    ray = pts.points[:, :2] / pts.points[:, 2:3] * [cam.fx, cam.fy] + [cam.cx, cam.cy]
    at = (pts.layer == 1) & (np.abs(ray - [20, 15]).max(axis=1) < 1e-3)
    assert pts.points[at, 2] == pytest.approx([2.5], rel=1e-5)


def test_cli_reads_amodal_pngs_and_metric_depth(inputs: dict, tmp_path: Path) -> None:
    s = inputs["sample"]
    d = tmp_path / "metric_pred"
    d.mkdir()
    np.save(d / "depth.npy", s.depth)
    for k in range(3):
        cv2.imwrite(str(d / f"amodal_{k + 1}.png"), s.amodal[k].astype(np.uint8) * 255)
    cv2.imwrite(str(d / "photo.png"), cv2.cvtColor(s.rgb, cv2.COLOR_RGB2BGR))
    (d / "predict.json").write_text(
        json.dumps({"image": "photo.png", "metric": True, "masks": ["gone1.png"]})
    )
    out = tmp_path / "rec"
    assert main(["reconstruct", str(d), "--out", str(out), "--no-progress"]) == 0
    info = json.loads((out / "reconstruct.json").read_text())
    assert info["scale"]["rule"] == "metric" and info["layers_file"] == "depth.npy"
    assert info["masks"][0].endswith("amodal_1.png")
    truth = reconstruct_layers(s.depth, s.amodal, s.rgb, scale=MetricDepth())
    assert truth.info["camera"]["fx"] == pytest.approx(s.camera.fx)  # 60 deg = the sample's
    got = read_ply(out / "points.ply")
    np.testing.assert_allclose(got.points, truth.points, atol=1e-5)


def _err(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("amodal-depth: error: ") and "\n" not in err, err
    return err


def test_bad_inputs_give_one_line(inputs: dict, tmp_path: Path, capsys) -> None:
    pred, image = str(inputs["pred"]), str(inputs["image"])
    masks, w = [str(m) for m in inputs["masks"]], ["--weights", str(inputs["weights"])]
    out = tmp_path / "out"
    o = ["--out", str(out), "--no-progress"]
    assert "positive" in _err(capsys, ["reconstruct", pred, *o, "--intrinsics", "50,0,19,14"])
    assert "--fov" in _err(capsys, ["reconstruct", pred, *o, "--fov", "200"])
    assert "no such" in _err(capsys, ["reconstruct", str(tmp_path / "nope"), *o])
    assert "--masks" in _err(capsys, ["reconstruct", image, *o, *w])
    assert "K = 3" in _err(capsys, ["reconstruct", image, "--masks", *masks[:2], *o, *w])
    cv2.imwrite(str(tmp_path / "small.png"), np.full((10, 10), 255, np.uint8))
    err = _err(
        capsys, ["reconstruct", image, "--masks", *masks[:2], str(tmp_path / "small.png"), *o, *w]
    )
    assert "10x10" in err
    assert "predict.json" in _err(capsys, ["reconstruct", str(tmp_path), *o])
    assert "only for an image" in _err(capsys, ["reconstruct", pred, "--masks", *masks, *o])
    assert "outside" in _err(capsys, ["reconstruct", pred, *o, "--known-depth", "400,3,2"])
    assert "far must exceed" in _err(capsys, ["reconstruct", pred, *o, "--depth-range", "5,2"])
    assert not out.exists()  # nothing written for bad numbers
    (tmp_path / "file").write_text("x")
    err = _err(capsys, ["reconstruct", pred, "--out", str(tmp_path / "file" / "sub")])
    assert "file exists and is not a directory" in err
    assert "not a directory" in _err(capsys, ["reconstruct", pred, "--out", str(tmp_path / "file")])
