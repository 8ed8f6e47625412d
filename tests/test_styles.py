"""Generator styles: diverse and shifted datasets obey the format and the physics, the
shifted style stays outside diverse's ranges, held-out families never reach diverse."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from amodal_depth.cli import main
from amodal_depth.data.format import SAMPLES_DIR, read_manifest, read_sample
from amodal_depth.data.generate import GeneratorConfig, generate_dataset
from amodal_depth.data.objects import TEX_RINGS, TEXTURES, ObjectLibrary
from amodal_depth.data.render import Renderer, WorldMesh
from amodal_depth.data.styles import (
    DIVERSE,
    DIVERSE_WIDE,
    EVALUATION_ONLY,
    FACTOR_STYLES,
    FAMILIES_DIVERSE,
    FAMILIES_SHIFTED_ONLY,
    SHIFT_FACTORS,
    SHIFTED,
    TEXTURES_SHIFTED_ONLY,
    draw,
)
from amodal_depth.data.verify import verify_dataset
from amodal_depth.errors import UserError

NUM = 5


@pytest.fixture(scope="module", params=["diverse", "shifted"])
def styled(request, tmp_path_factory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp(request.param) / "d"
    cfg = GeneratorConfig(width=64, height=48, style=request.param)
    generate_dataset(root, NUM, seed=5, config=cfg, workers=1, progress=False)
    return request.param, root


def test_styled_dataset_verifies(styled: tuple[str, Path]) -> None:
    name, root = styled
    buf = io.StringIO()
    assert verify_dataset(root, progress=False, out=buf), buf.getvalue()
    assert "0 problems" in buf.getvalue()
    gen = read_manifest(root)["generator"]
    assert gen["style"] == name
    assert gen["style_params"]["name"] == name


# sha256 of sample 000000 (seed 5, 64x48): datasets already rendered with a style (the
# training set) must stay reproducible. Change only with a deliberate change of the style.
_GOLDEN = {
    "diverse": {
        "rgb.png": "0bb84d5f9e8d3f7a77b3935705eaba6cd3e4a0bd377e99177e873f10db80d9bf",
        "depth_1.png": "8758ca12690d333b487538e98408c30eb7ddec8726edea71f8cdf048c3c1f1e3",
        "meta.json": "3fe40cf755f08975c79166a0b68a5a55669229225d8086ab9eed225b2c268447",
    },
    "shifted": {
        "rgb.png": "349fbc379d8d880939f2d6e684e3c8f555eb78d2c37934daf03b34d32b7156aa",
        "depth_1.png": "07355f08c8f4d58661fe8af26f8ddb1498ac3a3a47da0e4a4c2d26d3365b5577",
        "meta.json": "bb7dadcdd03eabf3bc89b0788629ac43c11631c133e7e6dfb19af56fee558399",
    },
}


def test_styles_are_reproducible(styled: tuple[str, Path]) -> None:
    name, root = styled
    d = root / SAMPLES_DIR / "000000"
    got = {n: hashlib.sha256((d / n).read_bytes()).hexdigest() for n in _GOLDEN[name]}
    assert got == _GOLDEN[name]


def _metas(root: Path) -> list[dict]:
    return [
        json.loads((root / SAMPLES_DIR / f"{i:06d}" / "meta.json").read_text()) for i in range(NUM)
    ]


def test_styled_meta_and_cameras(styled: tuple[str, Path]) -> None:
    name, root = styled
    style = DIVERSE if name == "diverse" else SHIFTED
    m = read_manifest(root)
    for i, meta in enumerate(_metas(root)):
        assert meta["style"] == name
        lo, hi = min(a for a, _ in style.hfov_deg), max(b for _, b in style.hfov_deg)
        assert lo - 1e-3 <= meta["hfov_deg"] <= hi + 1e-3
        if name == "shifted":  # never inside diverse's training range
            assert not 40.0 <= meta["hfov_deg"] <= 100.0
        cam = read_sample(root, f"{i:06d}", m).camera
        assert (cam.width, cam.height) == (64, 48)  # image size stays the manifest's
        assert abs(cam.cx - 31.5) <= max(b for _, b in style.principal_offset) * 64 + 1e-6
        assert 1 <= len(meta["lights"]) <= 3
        families = {o["family"] for o in meta["objects"] + meta["clutter"]}
        allowed = FAMILIES_DIVERSE if name == "diverse" else FAMILIES_SHIFTED_ONLY + ("mesh",)
        assert families <= set(allowed)


def test_shifted_ranges_lie_outside_diverse() -> None:
    def inside(x: float, ranges) -> bool:
        return any(a <= x <= b for a, b in ranges)

    rng = np.random.default_rng(0)
    for _ in range(500):
        assert not inside(draw(rng, SHIFTED.hfov_deg), DIVERSE.hfov_deg)
        assert inside(draw(rng, DIVERSE.hfov_deg), ((40.0, 100.0),))
        assert not inside(draw(rng, SHIFTED.roll_deg), ((0.0, 7.999),))
        assert not inside(draw(rng, SHIFTED.ambient), ((0.1501, 0.5999),))
    diverse_fams = {f for f, _ in DIVERSE.families}
    assert not diverse_fams & set(FAMILIES_SHIFTED_ONLY)
    assert not {t for t, _ in DIVERSE.textures} & set(TEXTURES_SHIFTED_ONLY)


def test_held_out_families_and_textures_never_in_diverse() -> None:
    rng = np.random.default_rng(1)
    lib = ObjectLibrary()
    seen = set()
    for _ in range(300):
        o = lib.sample_styled(rng, DIVERSE)
        seen.add(o.family)
        assert o.family not in FAMILIES_SHIFTED_ONLY
        assert o.category not in FAMILIES_SHIFTED_ONLY
        assert not (o.tri_attr[:, 3] == TEX_RINGS).any()
        assert o.triangles.max() < len(o.vertices) and len(o.tri_attr) == len(o.triangles)
        assert o.vertices[:, 2].min() == pytest.approx(0.0, abs=1e-9)
    assert seen == {"furniture", "primitive", "composite"}  # 'mesh' needs --mesh-dir
    shifted = {lib.sample_styled(rng, SHIFTED).family for _ in range(60)}
    assert shifted == set(FAMILIES_SHIFTED_ONLY)


def test_every_texture_family_shades() -> None:
    """Each texture id gives finite colours in [0, 1] (a wall with every family)."""
    from amodal_depth.data.render import albedo

    pts = np.random.default_rng(0).uniform(-3, 3, (200, 3))
    for tex in TEXTURES.values():
        attr = np.tile(np.array([0.5, 0.6, 0.7, tex, 0.2, 0.6, 0.0, 0.8], np.float32), (200, 1))
        a = albedo(pts.astype(np.float32), attr)
        assert a.shape == (200, 3) and np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1


def test_several_lights_add_up() -> None:
    """Two white half-lights at the same place shade like one white light."""
    from amodal_depth.data.format import Camera
    from amodal_depth.data.render import Hits
    from amodal_depth.data.scenes import camera_pose

    cam = Camera.from_fov(16, 12, 60.0)
    pose = camera_pose(1.5, 0.0, 0.3)
    c = np.array([[-9, -9, 2], [9, -9, 2], [9, 9, 2], [-9, 9, 2]], float)
    w = c @ pose[:3, :3].T + pose[:3, 3]
    attr = np.tile(np.array([0.6, 0.6, 0.6, 0, 0.1, 1, 0, 0], np.float32), (2, 1))
    wall = WorldMesh(w, np.array([[0, 1, 2], [0, 2, 3]]), attr)
    light = np.array([0.3, 0.5, 2.0])
    noise = np.zeros((12, 16, 3), np.float32)

    def shade(r: Renderer):
        h: Hits = r.cast(cam)
        return r.shade(cam, h, 1, noise).rgb[0].astype(int)

    one = shade(Renderer([wall], pose, light, 0.3))
    two = shade(Renderer([wall], pose, np.stack([light, light]), 0.3,
                         light_colours=np.full((2, 3), 0.5), shadows=False))  # fmt: skip
    assert np.abs(one - two).max() <= 1
    with pytest.raises(ValueError):
        Renderer([wall], pose, np.stack([light, light]), 0.3)


def test_cli_style_and_resume_of_old_datasets(tmp_path: Path) -> None:
    out = tmp_path / "c"
    assert main(["data", "generate", "--out", str(out), "--num", "1", "--size", "64x48",
                 "--style", "diverse"]) == 0  # fmt: skip
    assert read_manifest(out)["generator"]["style"] == "diverse"
    with pytest.raises(SystemExit):  # argparse rejects an unknown style
        main(["data", "generate", "--out", str(tmp_path / "x"), "--num", "1", "--style", "x"])
    with pytest.raises(UserError, match="--style"):
        GeneratorConfig(style="nope").validate()
    # A template dataset made before styles existed (no 'style' in its parameters) resumes.
    old = tmp_path / "old"
    generate_dataset(old, 1, config=GeneratorConfig(width=64, height=48), progress=False)
    m = json.loads((old / "manifest.json").read_text())
    del m["generator"]["style"]
    (old / "manifest.json").write_text(json.dumps(m))
    generate_dataset(old, 2, config=GeneratorConfig(width=64, height=48), progress=False)
    with pytest.raises(UserError, match="style"):
        generate_dataset(old, 2, config=GeneratorConfig(width=64, height=48, style="diverse"),
                         progress=False)  # fmt: skip


def test_cli_shifted_set_is_all_test(tmp_path: Path) -> None:
    """The shifted style is never trained on: the CLI puts every sample in the test split."""
    out = tmp_path / "shifted"
    assert main(["data", "generate", "--out", str(out), "--num", "3", "--size", "64x48",
                 "--style", "shifted"]) == 0  # fmt: skip
    splits = json.loads((out / "manifest.json").read_text())["splits"]
    assert len(splits["test"]) == 3 and not splits["train"] and not splits["val"]


def test_shift_factors_split_the_shifted_style_into_its_single_changes() -> None:
    """Each shifted-<factor> style is diverse with exactly its group of fields from shifted;
    together the groups cover every field in which shifted differs from diverse."""
    fields = [f for f in DIVERSE.to_dict() if f != "name"]
    differ = {f for f in fields if getattr(DIVERSE, f) != getattr(SHIFTED, f)}
    assert set().union(*SHIFT_FACTORS.values()) == differ
    for factor, group in SHIFT_FACTORS.items():
        style = FACTOR_STYLES[f"shifted-{factor}"]
        assert style.name == f"shifted-{factor}" and style.name in EVALUATION_ONLY
        for f in fields:
            expected = SHIFTED if f in group else DIVERSE
            assert getattr(style, f) == getattr(expected, f), (factor, f)


def test_cli_factor_style_renders_an_all_test_set(tmp_path: Path) -> None:
    out = tmp_path / "lens"
    assert main(["data", "generate", "--out", str(out), "--num", "2", "--size", "64x48",
                 "--style", "shifted-lens"]) == 0  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["generator"]["style"] == "shifted-lens"
    assert len(manifest["splits"]["test"]) == 2
    for sid in manifest["splits"]["test"]:
        hfov = json.loads((out / SAMPLES_DIR / sid / "meta.json").read_text())["hfov_deg"]
        assert not 40.0 <= hfov <= 100.0  # the lens moved out of diverse's range


def test_diverse_wide_widens_only_the_camera_pose() -> None:
    """diverse-wide is diverse with wider camera-pose ranges (each containing diverse's) and
    nothing else changed, so the shifted set still holds out its lens, lights, textures,
    noise and objects; it is a training style (splits like diverse)."""
    pose = {"camera_height", "pitch_deg", "roll_deg", "principal_offset"}
    fields = [f for f in DIVERSE.to_dict() if f != "name"]
    assert {f for f in fields if getattr(DIVERSE, f) != getattr(DIVERSE_WIDE, f)} == pose

    def span(r) -> tuple[float, float]:
        flat = [r] if isinstance(r[0], float) else list(r)
        return min(a for a, _ in flat), max(b for _, b in flat)

    for f in pose:
        lo, hi = span(getattr(DIVERSE, f))
        wlo, whi = span(getattr(DIVERSE_WIDE, f))
        assert wlo <= lo and hi <= whi and (wlo, whi) != (lo, hi), f
    for factor in ("lens", "light", "texture", "noise", "objects"):
        for f in SHIFT_FACTORS[factor]:
            assert getattr(DIVERSE_WIDE, f) == getattr(DIVERSE, f) != getattr(SHIFTED, f)
    assert "diverse-wide" not in EVALUATION_ONLY


def test_cli_diverse_wide_renders_and_verifies(tmp_path: Path) -> None:
    out = tmp_path / "wide"
    assert main(["data", "generate", "--out", str(out), "--num", "4", "--size", "64x48",
                 "--style", "diverse-wide", "--seed", "3"]) == 0  # fmt: skip
    buf = io.StringIO()
    assert verify_dataset(out, progress=False, out=buf), buf.getvalue()
    manifest = read_manifest(out)
    assert manifest["generator"]["style_params"]["name"] == "diverse-wide"
    for sid in sorted((out / SAMPLES_DIR).iterdir()):
        meta = json.loads((sid / "meta.json").read_text())
        assert meta["style"] == "diverse-wide" and abs(meta["roll_deg"]) <= 15.0 + 1e-6
