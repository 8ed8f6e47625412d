"""`data verify` and `data show`: consistent data passes, each injected error is caught,
every bad input gives one line and a non-zero exit through the CLI."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from amodal_depth.cli import main
from amodal_depth.data.format import LayeredSample, write_sample
from amodal_depth.data.verify import check_physics, verify_dataset
from conftest import flat_sample  # tests/ is on sys.path under pytest


def _verify(root: Path, workers: int = 1) -> tuple[bool, str]:
    buf = io.StringIO()
    ok = verify_dataset(root, workers=workers, progress=False, out=buf)
    return ok, buf.getvalue()


def test_consistent_dataset_passes(make_flat_dataset) -> None:
    root = make_flat_dataset(num=4)
    ok, text = _verify(root)
    assert ok, text
    assert "4 samples checked, 0 problems" in text and text.rstrip().endswith("OK")


def test_flat_sample_is_physically_consistent_for_other_k() -> None:
    for k in (1, 2, 4):
        assert check_physics(flat_sample(40, 30, k, seed=k)) == []


# ------------------------------------------------------------------- physics errors
def _o2_hidden(s: LayeredSample) -> np.ndarray:
    return s.amodal[1] & ~s.visible[1]


def _break_visible_outside_amodal(s: LayeredSample) -> None:
    s.visible[2][~s.amodal[2] & ~s.amodal[0] & ~s.amodal[1]] = True


def _break_object_depth_outside(s: LayeredSample) -> None:
    s.object_depth[1][0, 0] = 3.0 if not s.amodal[1][0, 0] else 0.0


def _break_visible_depth(s: LayeredSample) -> None:
    s.depth[0][s.visible[1]] += 0.05


def _break_nothing_in_front(s: LayeredSample) -> None:
    h = _o2_hidden(s)
    s.depth[0][h] = s.object_depth[1][h] + 0.5


def _break_layer_shows_whole(s: LayeredSample) -> None:
    h = _o2_hidden(s)
    s.depth[1][h] = s.object_depth[1][h] + 0.2


def _break_layers_agree(s: LayeredSample) -> None:
    s.depth[2][~s.amodal[1] & ~s.amodal[2]] += 0.1


def _break_front_hidden(s: LayeredSample) -> None:
    s.visible[0][np.argwhere(s.visible[0])[0][0], np.argwhere(s.visible[0])[0][1]] = False


def _break_meta_fraction(s: LayeredSample) -> None:
    s.meta["occlusion_ratios"][1] += 0.2


def _break_visible_overlap(s: LayeredSample) -> None:
    s.visible[1] |= s.amodal[1] & s.visible[0]


def _break_hidden_not_by_front(s: LayeredSample) -> None:
    # a pixel of o_2 that is really seen, marked hidden: no o_1 covers it
    ys, xs = np.nonzero(s.visible[1])
    s.visible[1][ys[0], xs[0]] = False


def _break_closer_after_removal(s: LayeredSample) -> None:
    only1 = s.amodal[0] & ~s.amodal[1] & ~s.amodal[2]
    s.depth[1][only1] = s.depth[0][only1] - 0.3
    s.depth[2][only1] = s.depth[1][only1]


@pytest.mark.parametrize(
    "breaker, message",
    [
        (_break_visible_outside_amodal, "visible_3 is not inside amodal_3"),
        (_break_object_depth_outside, "object_depth_2 > 0 differs from amodal_2"),
        (_break_visible_depth, "depth_1 != object_depth_2"),
        (_break_nothing_in_front, "o_2: nothing in front"),
        (_break_layer_shows_whole, "depth_2 != object_depth_2"),
        (_break_layers_agree, "layers 2,3: depths differ outside amodal_2"),
        (_break_front_hidden, "o_1: the front object has a hidden part"),
        (_break_meta_fraction, "occlusion_ratios[1]"),
        (_break_visible_overlap, "visible masks overlap"),
        (_break_hidden_not_by_front, "hidden px are not covered by o_1..o_1"),
        (_break_closer_after_removal, "removing o_1 brings"),
    ],
)
def test_each_physics_error_is_caught(make_flat_dataset, breaker: Callable, message: str) -> None:
    root = make_flat_dataset(num=3)
    s = flat_sample(32, 24, 3, seed=1)  # the sample stored as 000001
    breaker(s)
    write_sample(root, "000001", s)
    ok, text = _verify(root)
    assert not ok
    assert any(x.startswith("000001: ") and message in x for x in text.splitlines()), text
    assert "000000:" not in text and "000002:" not in text  # only the broken one


def test_hidden_fraction_outside_generator_range(make_flat_dataset) -> None:
    root = make_flat_dataset(num=3)
    m = json.loads((root / "manifest.json").read_text())
    m["generator"].update(hidden_min=0.5, hidden_max=0.9)  # flat samples hide ~1/3
    (root / "manifest.json").write_text(json.dumps(m))
    ok, text = _verify(root)
    assert not ok and "outside the generator's [0.5, 0.9]" in text


# -------------------------------------------------------------------- format errors
def _sample_dir(root: Path, sid: str = "000001") -> Path:
    return root / "samples" / sid


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _grey_mask(root: Path) -> None:
    p = _sample_dir(root) / "amodal_2.png"
    m = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    m[m > 0] = 128
    cv2.imwrite(str(p), m)


def _resize_depth(root: Path) -> None:
    p = _sample_dir(root) / "depth_1.png"
    cv2.imwrite(str(p), np.zeros((10, 10), np.uint16))


def _eight_bit_depth(root: Path) -> None:
    cv2.imwrite(str(_sample_dir(root) / "depth_2.png"), np.zeros((24, 32), np.uint8))


def _edit_manifest(root: Path, **kw) -> None:
    m = json.loads((root / "manifest.json").read_text())
    m.update(kw)
    (root / "manifest.json").write_text(json.dumps(m))


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p.parent


def _duplicate(root: Path) -> None:
    m = json.loads((root / "manifest.json").read_text())
    m["splits"]["test"].append("000001")
    (root / "manifest.json").write_text(json.dumps(m))


def _orphan(root: Path) -> None:
    shutil.copytree(_sample_dir(root), _sample_dir(root, "000009"))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda r: (_sample_dir(r) / "depth_2.png").unlink(), "depth_2.png: file is missing"),
        (lambda r: _truncate(_sample_dir(r) / "rgb.png"), "rgb.png: not a readable PNG"),
        (lambda r: _truncate(_sample_dir(r) / "camera.json"), "camera.json: not valid JSON"),
        (_resize_depth, "depth_1.png: size 10x10 differs from the manifest's 32x24"),
        (_eight_bit_depth, "depth_2.png: expected a 16-bit depth PNG"),
        (_grey_mask, "amodal_2.png: mask values must be 0 or 255, found [128]"),
        (lambda r: shutil.rmtree(_sample_dir(r)), "sample directory is missing"),
        (_duplicate, "000001: listed 2 times in the splits"),
        (_orphan, "000009: sample directory is in no split"),
    ],
)
def test_each_format_error_is_a_problem_line_and_exit_1(
    make_flat_dataset, capsys, damage: Callable, message: str
) -> None:
    root = make_flat_dataset(num=3)
    damage(root)
    assert main(["data", "verify", str(root)]) == 1
    out = capsys.readouterr().out
    assert message in out, out
    assert "FAILED" in out.splitlines()[-1]


def test_stale_temp_dir_is_a_warning_only(make_flat_dataset) -> None:
    root = make_flat_dataset(num=3)
    (root / "samples" / ".000003.abc.tmp").mkdir()
    ok, text = _verify(root)
    assert ok and "warning:" in text and "stale temporary" in text


def test_two_workers_report_the_same(make_flat_dataset) -> None:
    root = make_flat_dataset(num=4)
    s = flat_sample(32, 24, 3, seed=2)
    _break_layers_agree(s)
    write_sample(root, "000002", s)
    one, two = _verify(root, 1), _verify(root, 2)
    assert one == two and not one[0]


# ------------------------------------------------------------- bad roots, CLI, show
@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda r: r / "absent", "no such dataset directory"),
        (lambda r: (r / "manifest.json").unlink() or r, "no manifest.json"),
        (lambda r: _edit_manifest(r, format="kitti") or r, "format is 'kitti'"),
        (lambda r: _edit_manifest(r, version=7) or r, "format version 7 is not supported"),
        (lambda r: _write(r / "manifest.json", "{trunc"), "not valid JSON"),
    ],
)
@pytest.mark.parametrize("command", ["verify", "show"])
def test_bad_root_is_one_line_and_exit_2(
    make_flat_dataset, tmp_path, capsys, make_bad, message, command
) -> None:
    root = make_bad(make_flat_dataset(num=3))
    argv = ["data", command, str(root)]
    if command == "show":
        argv += ["--out", str(tmp_path / "m.png")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_show_writes_a_png_montage(make_flat_dataset, tmp_path) -> None:
    root = make_flat_dataset(num=3)
    out = tmp_path / "montage.png"
    assert (
        main(["data", "show", str(root), "--index", "0", "--split", "val", "--out", str(out)]) == 0
    )
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 400
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


@pytest.mark.parametrize(
    "extra, damage, message",
    [
        (["--index", "3"], None, "--index 3 is out of range: the dataset has indices 0..2"),
        (["--index", "1", "--split", "val"], None, "split 'val' has indices 0..0"),
        (
            ["--split", "bogus"],
            None,
            "split 'bogus'; it has: test (1), train (1), val (1)",
        ),
        (["--index", "1"], lambda r: _truncate(_sample_dir(r) / "depth_3.png"), "not a readable"),
        (["--index", "1"], _resize_depth, "differs from the manifest's 32x24"),
        (["--index", "1"], lambda r: (_sample_dir(r) / "amodal_1.png").unlink(), "missing"),
    ],
)
def test_show_bad_input_is_one_line_and_exit_2(
    make_flat_dataset, tmp_path, capsys, extra, damage, message
) -> None:
    root = make_flat_dataset(num=3)
    if damage:
        damage(root)
    assert main(["data", "show", str(root), "--out", str(tmp_path / "m.png"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "m.png").exists()
