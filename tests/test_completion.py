"""Mask completion: crops, the order rule, training (quick preset, 2 steps), resume, the
weights file, complete_masks' input checks, evaluation and the CLI, on tiny flat scenes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from amodal_depth.cli import main
from amodal_depth.completion import (
    complete_masks,
    crops,
    load_completion,
    occlusion_order,
    pairwise_order,
    save_completion,
)
from amodal_depth.completion.data import balanced_pool, load_store, make_batch
from amodal_depth.completion.evaluate import convex_hull, evaluate_completion, iou
from amodal_depth.completion.model import CompletionConfig, build_completion
from amodal_depth.completion.train import presets, train_completion
from amodal_depth.errors import UserError
from conftest import flat_sample, write_flat_dataset  # tests/ is on sys.path under pytest

W, H, K = 48, 36, 3


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("completion") / "layers"
    splits = {"train": range(4), "val": [4], "test": [5]}
    return write_flat_dataset(root, num=6, width=W, height=H, num_layers=K, splits=splits)


def _quick(steps: int = 2, use_rgb: bool = True):
    import dataclasses

    cfg = presets("quick", use_rgb=use_rgb)
    return dataclasses.replace(cfg, steps=steps, val_every=2, log_every=1, val_images=1)


def test_eraser_and_paste_back_keep_the_truth_reachable() -> None:
    s = flat_sample(W, H, K, seed=3)
    era = crops.erasers(s.visible)
    for k in range(K):
        assert not (era[k] & s.visible[k]).any()
        hidden = s.amodal[k] & ~s.visible[k]
        assert not (hidden & ~era[k]).any()  # the hidden part lies in the eraser
        box = crops.crop_box(s.visible[k], era[k])
        prob = crops.paste(crops.crop_target(s.amodal[k], box, 32), box, (H, W))
        assert iou(crops.combine(s.visible[k], era[k], prob), s.amodal[k]) > 0.9
        planes = crops.crop_planes(s.rgb, s.visible[k], era[k], box, 32)
        assert planes.shape == (6, 32, 32) and planes.dtype == np.float32


def test_order_rule_on_true_masks() -> None:
    s = flat_sample(W, H, K, seed=1)
    assert occlusion_order(s.visible, s.amodal) == list(range(K))
    rel = pairwise_order(s.visible, s.amodal)
    assert rel[0, 1] == 1 and rel[1, 0] == -1 and (rel == -rel.T).all()
    perm = [2, 0, 1]
    assert occlusion_order(s.visible[perm], s.amodal[perm]) == [1, 2, 0]
    # Without evidence (visible as amodal) the lower object comes first.
    two = np.zeros((2, 10, 10), bool)
    two[0, 1:3, 1:3] = True
    two[1, 6:9, 6:9] = True
    assert occlusion_order(two, two) == [1, 0]
    # Weak evidence (below 5 % of the smaller visible area) does not beat the row cue.
    vis = np.zeros((2, 40, 40), bool)
    vis[0, 0:20, 0:20] = True  # upper object
    vis[1, 20:40, 0:20] = True  # lower object
    amo = vis.copy()
    amo[0, 20, 0:5] = True  # the upper object's completion claims 5 of the lower's pixels
    assert pairwise_order(vis, amo)[0, 1] == 0 and occlusion_order(vis, amo) == [1, 0]
    amo[0, 20:23, 0:20] = True  # 60 pixels: enough to say the upper object is behind
    assert pairwise_order(vis, amo)[1, 0] == 1 and occlusion_order(vis, amo) == [1, 0]
    amo[0], amo[1, 17:20, 0:20] = vis[0], True  # the lower one is behind the upper one
    assert occlusion_order(vis, amo) == [0, 1]


def test_convex_hull_fills_a_ring() -> None:
    ring = np.zeros((20, 20), bool)
    ring[4:16, 4:16] = True
    ring[7:13, 7:13] = False
    assert convex_hull(ring)[10, 10] and convex_hull(ring).sum() == 144


def test_store_balance_and_batch_shapes(data: Path, tmp_path: Path) -> None:
    small = write_flat_dataset(tmp_path / "small", num=3, width=W, height=H, num_layers=K)
    both = load_store([data, small], "train", progress=False)
    pool = balanced_pool(both)
    sources = both.source[both.instances[pool, 0]]
    assert (sources == 0).sum() == (sources == 1).sum() == 4 * K
    store = load_store([data], "train", progress=False)
    assert len(store.names) == 4 and len(store) == 4 * K
    x, y = make_batch(
        store, [0, 1, 2], 32, True, np.random.default_rng(0), presets("quick").augment
    )
    assert x.shape == (3, 6, 32, 32) and y.shape == (3, 32, 32)
    assert 0 <= x.min() and x.max() <= 1 and 0 <= y.min() and y.max() <= 1


def test_train_two_steps_resume_and_weights(data: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    full = train_completion(_quick(4), [data], tmp_path / "full", progress=False)
    part = train_completion(_quick(4), [data], tmp_path / "part", stop_after=2, progress=False)
    assert not (part / "done.json").exists()
    with pytest.raises(UserError, match="--resume"):
        train_completion(_quick(4), [data], part, progress=False)
    with pytest.raises(UserError, match="other options"):
        train_completion(_quick(4, use_rgb=False), [data], part, resume=True, progress=False)
    train_completion(_quick(4), [data], part, resume=True, progress=False)
    a, b = load_completion(full / "last.safetensors"), load_completion(part / "last.safetensors")
    for (ka, ta), (_, tb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.allclose(ta.float(), tb.float(), atol=1e-5), ka
    done = json.loads((full / "done.json").read_text())
    assert done["steps"] == 4 and done["best_step"] in (2, 4)
    steps = [json.loads(x)["step"] for x in (part / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps.count(2) == 2  # one loss line, one val line
    model = load_completion(full / "model.safetensors")
    x = torch.rand(2, model.config.in_channels, 32, 32)
    assert model(x).shape == (2, 32, 32)


def test_fp16_file_and_bad_files(tmp_path: Path) -> None:
    model = build_completion(CompletionConfig(use_rgb=False, crop=32, channels=[4, 8]))
    path = save_completion(model, tmp_path / "m.safetensors", dtype=torch.float16)
    back = load_completion(path)
    assert back.config.use_rgb is False and back.head.weight.dtype == torch.float32
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    for bad in (tmp_path / "junk.safetensors", tmp_path / "missing.safetensors"):
        with pytest.raises(UserError):
            load_completion(bad)


def _tiny_weights(tmp_path: Path) -> Path:
    model = build_completion(CompletionConfig(crop=32, channels=[4, 8]))
    return save_completion(model, tmp_path / "w.safetensors")


def test_complete_masks_shapes_and_input_checks(tmp_path: Path) -> None:
    w = _tiny_weights(tmp_path)
    s = flat_sample(W, H, K, seed=2)
    amodal, order = complete_masks(s.rgb, s.visible, weights=w)
    assert amodal.shape == (K, H, W) and amodal.dtype == bool
    assert sorted(order) == list(range(K)) and (amodal >= s.visible).all()
    amodal255, _ = complete_masks(s.rgb, s.visible.astype(np.uint8) * 255, weights=w)
    assert (amodal255 == amodal).all()
    bad = [
        (s.rgb[..., :2], s.visible, "HxWx3"),
        (s.rgb.astype(np.uint16), s.visible, "uint8"),
        (s.rgb, s.visible[:, :-1], "image's size"),
        (s.rgb, s.visible.astype(np.uint8) * 7, "binary"),
        (s.rgb, np.concatenate([s.visible, np.zeros((1, H, W), bool)]), "mask 4 .*empty"),
        (s.rgb, np.concatenate([s.visible, s.visible[:1]]), "overlap"),
    ]
    for image, vis, msg in bad:
        with pytest.raises(UserError, match=msg):
            complete_masks(image, vis, weights=w)
    with pytest.raises(UserError, match="do not exist"):
        complete_masks(s.rgb, s.visible, weights=tmp_path / "none.safetensors")


def test_evaluate_scores_baselines(data: Path, tmp_path: Path) -> None:
    r = evaluate_completion([_tiny_weights(tmp_path)], data, "test", progress=False)
    m = r["methods"]
    assert set(m) == {
        "visible",
        "convex_hull",
        "convex_hull_eraser",
        "unet_rgb",
        "true_amodal",
        "crop_ceiling",
    }
    assert m["visible"]["invisible_miou"] == 0.0 and m["true_amodal"]["order"]["pair_accuracy"] == 1
    assert m["visible"]["num_objects"] == K and m["visible"]["num_occluded"] == K - 1


def test_cli_train_resume_and_evaluate(data: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    args = ["completion", "train", "--data", str(data), "--out", str(run), "--preset", "quick"]
    assert main([*args, "--no-rgb", "--steps", "2", "--threads", "1"]) == 0
    assert main([*args, "--no-rgb", "--steps", "2"]) == 2  # exists: needs --resume
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--no-rgb", "--steps", "2", "--resume"]) == 0
    out = tmp_path / "eval.json"
    w = str(run / "model.safetensors")
    assert (
        main(["completion", "evaluate", "--weights", w, "--data", str(data), "--out", str(out)])
        == 0
    )
    r = json.loads(out.read_text())
    assert r["split"] == "test" and "unet_mask" in r["methods"]
    half = tmp_path / "half.safetensors"
    assert main(["completion", "export", "--weights", w, "--out", str(half), "--flip-tta"]) == 0
    exported = load_completion(half)
    assert exported.config.flip_tta and not exported.config.use_rgb
    assert exported.head.weight.dtype == torch.float32  # fp16 on disk, fp32 in memory
    bad = ["completion", "evaluate", "--weights", str(tmp_path / "x"), "--data", str(data)]
    assert main([*bad, "--out", str(out)]) == 2
    assert main([*args, "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r2")]) == 2


def test_cli_preset_names_are_the_trainers() -> None:
    """The parser's --preset choices (listed without importing torch) are exactly PRESETS,
    and every one builds a config whose schedule fits its length."""
    from amodal_depth.completion.cli import PRESET_CHOICES
    from amodal_depth.completion.train import PRESETS

    assert tuple(PRESET_CHOICES) == tuple(PRESETS)
    for name in PRESETS:
        cfg = presets(name)
        assert cfg.preset == name and 0 < cfg.warmup_steps < cfg.steps
        assert cfg.val_every <= cfg.steps
    assert presets("cpu-long").steps > presets("cpu").steps
    with pytest.raises(UserError, match="unknown completion preset"):
        presets("gpu")
