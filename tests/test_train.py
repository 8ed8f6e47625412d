"""The training loop on a tiny hand-built dataset: every variant, resume, NaN stop, DDP, init."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from amodal_depth import train as train_mod
from amodal_depth.cli import main
from amodal_depth.config import PRESETS, VARIANTS, TrainConfig, preset
from amodal_depth.errors import UserError
from amodal_depth.runs import load_run
from amodal_depth.train import WarmupCosine, train
from conftest import write_flat_dataset  # tests/ is on sys.path under pytest

W, H, K = 56, 42, 3


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    splits = {"train": range(6), "val": [6, 7], "test": [6, 7]}
    return write_flat_dataset(root, num=8, width=W, height=H, num_layers=K, splits=splits)


def _cfg(variant: str = "ade", **kw) -> TrainConfig:
    """The quick preset shrunk to the test images: seconds per run."""
    base = dict(steps=2, batch_size=2, width=W, height=H, log_every=1, checkpoint_every=2)
    base.update(kw)
    return dataclasses.replace(preset("quick", variant), **base)


def _log(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_run(run).state_dict()


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol=1e-6) -> None:
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= atol, worst


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_trains_two_steps(data: Path, tmp_path: Path, variant: str) -> None:
    run = train(_cfg(variant), data, tmp_path / "run", progress=False)
    train_lines = [r for r in _log(run) if "total" in r]
    assert [r["step"] for r in train_lines] == [1, 2]
    for r in train_lines:
        assert np.isfinite(r["total"]) and r["total"] > 0
        assert {"ssi", "grad", "consistency", "lr", "images_per_s", "elapsed_s"} <= r.keys()
    assert (train_lines[0]["consistency"] > 0) == (variant == "ade_consistency")
    assert any("val_total" in r for r in _log(run))  # the val loss at the checkpoint
    done = json.loads((run / "done.json").read_text())
    assert done["steps"] == 2 and np.isfinite(done["final_loss"])
    saved = json.loads((run / "config.json").read_text())
    assert saved["train"]["model"]["variant"] == variant and saved["data"] == str(data.resolve())
    assert any((run / "tb").iterdir())
    model = load_run(run)
    assert model.config.variant == variant
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_resume_follows_the_same_trajectory(data: Path, tmp_path: Path) -> None:
    cfg = _cfg("ade_consistency", steps=4, batch_size=2)  # 3 steps per epoch: crosses one
    straight = train(cfg, data, tmp_path / "a", progress=False)

    # Stopped after step 2 (with a checkpoint), then resumed.
    b = train(cfg, data, tmp_path / "b", stop_after=2, progress=False)
    assert not (b / "done.json").exists()
    train(cfg, data, b, resume=True, progress=False)
    _assert_same(_weights(straight), _weights(b))

    # Killed during step 3 (checkpoint at 2, log line 3 written by no one): resume again.
    calls = {"n": 0}
    real = train_mod._forward_loss

    def dying(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 4:  # steps 1, 2, the val loss at the step-2 checkpoint, step 3
            raise KeyboardInterrupt
        return real(*args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_mod, "_forward_loss", dying)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, data, tmp_path / "c", progress=False)
    train(cfg, data, tmp_path / "c", resume=True, progress=False)
    _assert_same(_weights(straight), _weights(tmp_path / "c"))
    steps = [r["step"] for r in _log(tmp_path / "c") if "total" in r]
    assert steps == [1, 2, 3, 4]  # no duplicated or missing lines
    last = [r for r in _log(tmp_path / "c") if "total" in r][-1]
    assert [r for r in _log(straight) if "total" in r][-1]["total"] == pytest.approx(last["total"])


def test_existing_run_needs_resume_and_same_options(data: Path, tmp_path: Path) -> None:
    run = train(_cfg(), data, tmp_path / "run", progress=False)
    with pytest.raises(UserError, match="use --resume or another --out"):
        train(_cfg(), data, run, progress=False)
    with pytest.raises(UserError, match="lr"):
        train(_cfg(lr=0.5), data, run, resume=True, progress=False)
    # Resuming a finished run is a no-op that keeps its weights.
    before = _weights(run)
    train(_cfg(), data, run, resume=True, progress=False)
    _assert_same(before, _weights(run), atol=0)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data: Path, tmp_path: Path) -> None:
    calls = {"n": 0}
    real = train_mod.layered_depth_loss

    def poisoned(*args, **kw):
        out = real(*args, **kw)
        calls["n"] += 1
        if calls["n"] >= 3:  # the train step 3 (val at step 2 comes from _val_loss below)
            out["total"] = out["total"] * float("nan")
        return out

    cfg = _cfg(steps=4)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_mod, "layered_depth_loss", poisoned)
        mp.setattr(train_mod, "VAL_IMAGES", 0)
        with pytest.raises(UserError) as err:
            train(cfg, data, tmp_path / "run", progress=False)
    msg = str(err.value)
    assert "\n" not in msg
    assert "step 3" in msg and "lower --lr" in msg and "model.safetensors" in msg
    from safetensors import safe_open

    with safe_open(str(tmp_path / "run" / "model.safetensors"), "pt") as f:
        assert f.metadata()["step"] == "2"
    model = load_run(tmp_path / "run")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not (tmp_path / "run" / "done.json").exists()


def test_bad_inputs(data: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no model.safetensors"):
        load_run(tmp_path)
    with pytest.raises(UserError, match="multiple of the patch size"):
        train(_cfg(width=50), data, tmp_path / "r1", progress=False)
    with pytest.raises(UserError, match="fewer than --batch-size"):
        train(_cfg(batch_size=64), data, tmp_path / "r2", progress=False)


def test_warmup_cosine() -> None:
    f = WarmupCosine(steps=110, warmup=10, min_ratio=0.05)
    assert f(0) == pytest.approx(0.1)
    assert f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.525)
    assert f(110) == pytest.approx(0.05)


def test_cli_train(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["train", "--variant", "ade_mha", "--data", str(data), "--out", str(out),
            "--preset", "quick", "--steps", "1", "--batch-size", "2"]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 1
    assert main(argv) == 2
    assert "--resume" in capsys.readouterr().err


def test_ddp_two_processes_match_one(data: Path, tmp_path: Path) -> None:
    """torchrun with 2 CPU processes (gloo), each rank reading half of each batch, against one
    process reading whole batches. Step 1 starts from identical weights, so its losses and
    gradient norm must agree to float noise: that is the DDP contract (same forward, averaged
    gradients). Step 2 (after DDP's bucket rebuild) agrees only loosely: Adam's first step
    moves every weight by ~lr * sign(grad), so float noise in gradients that are ~0 by the
    loss's shift invariance moves those weights by ~lr in either direction."""
    cfg_args = ["--preset", "quick", "--steps", "2", "--batch-size", "2", "--device", "cpu",
                "--log-every", "1"]  # fmt: skip
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--standalone", "-m", "amodal_depth.cli", "train", "--variant", "ade",
           "--data", str(data), "--out", str(out), *cfg_args]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    single = tmp_path / "single"
    assert main(["train", "--variant", "ade", "--data", str(data),
                 "--out", str(single), *cfg_args]) == 0  # fmt: skip
    a1, a2 = [r for r in _log(out) if "total" in r]
    b1, b2 = [r for r in _log(single) if "total" in r]
    assert a1["step"] == b1["step"] == 1 and a2["step"] == b2["step"] == 2
    for key in ("total", "ssi", "grad", "grad_norm"):
        assert a1[key] == pytest.approx(b1[key], rel=1e-4), key
        assert a2[key] == pytest.approx(b2[key], rel=5e-2), key
    _assert_same(_weights(out), _weights(single), atol=3e-3)


def test_init_from_an_official_checkpoint(data: Path, tmp_path: Path) -> None:
    """--init: the model takes the checkpoint's sizes and weights; the zero-initialised
    guidance leaves the official function in place at step 0, then training moves it."""
    from reference_dav2 import RefDepthAnythingV2  # tests/ is on sys.path under pytest

    torch.manual_seed(0)
    ref = RefDepthAnythingV2(dim=64, depth=12, heads=1, grid=5, features=16)
    pth = tmp_path / "depth_anything_v2_tiny.pth"
    torch.save(ref.state_dict(), pth)
    cfg = _cfg("ade_mha", steps=1)
    from amodal_depth.config import finetune_from

    cfg = finetune_from(cfg, str(pth))
    assert cfg.lr == pytest.approx(5e-5) and cfg.encoder_lr_scale == pytest.approx(0.1)
    zero = dataclasses.replace(cfg, lr=1e-12)  # one step that changes (almost) nothing
    run = train(zero, data, tmp_path / "run", progress=False)
    model = load_run(run)
    c = model.config
    assert (c.embed_dim, c.depth, c.num_heads, c.conv_stem) == (64, 12, 1, False)
    assert c.variant == "ade_mha"
    x = torch.randn(1, 3, 42, 56)
    with torch.no_grad():
        assert torch.allclose(model(x), ref.eval()(x), atol=1e-4)
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["init"] == str(pth) and saved["model"]["embed_dim"] == 64
    train(zero, data, run, resume=True, progress=False)  # resumes with the resolved dims
    with pytest.raises(UserError, match="no such file"):
        train(finetune_from(_cfg(), str(tmp_path / "nope.pth")), data, tmp_path / "r2")


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_trains_two_steps(data: Path, tmp_path: Path, name: str) -> None:
    """Each training preset's recipe (augmentation, head width, schedule) runs: two steps at
    the test size with the preset's model shrunk to the test encoder."""
    cfg = preset(name, "ade_mha")
    small = dataclasses.replace(cfg.model, encoder="vitq", embed_dim=None, depth=None,
                                num_heads=None, conv_stem=True, pos_grid=8)  # fmt: skip
    cfg = dataclasses.replace(cfg, model=small, steps=2, batch_size=2, width=W, height=H,
                              warmup_steps=1, log_every=1, checkpoint_every=2, init=None,
                              num_workers=0)  # fmt: skip
    run = train(cfg, data, tmp_path / name, progress=False)
    assert json.loads((run / "done.json").read_text())["steps"] == 2
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["mask_perturb"] == preset(name).mask_perturb


def test_perturbed_guidance_feeds_the_model_and_exact_masks_the_loss(data: Path) -> None:
    """The loss of a batch depends on `guidance_amodal` only through the model's input."""
    from amodal_depth.data.augment import AugmentConfig
    from amodal_depth.data.dataset import AmodalLayersDataset

    cfg = _cfg("ade")
    ds = AmodalLayersDataset(data, "train", size=(W, H), augment=AugmentConfig(mask_prob=1.0))
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert not torch.equal(batch["guidance_amodal"], batch["amodal"])
    torch.manual_seed(0)
    from amodal_depth.models import build_model

    model = build_model(cfg.model)
    with torch.no_grad():  # a fresh model ignores its guidance (zero-initialised embedding)
        for name, p in model.named_parameters():
            if "guidance" in name:
                p.normal_(0, 0.5)
    exact = {**batch, "guidance_amodal": batch["amodal"]}
    without = {k: v for k, v in batch.items() if k != "guidance_amodal"}
    loss = train_mod._forward_loss(model, batch, cfg, "cpu")["total"]
    loss_exact = train_mod._forward_loss(model, exact, cfg, "cpu")["total"]
    loss_without = train_mod._forward_loss(model, without, cfg, "cpu")["total"]
    assert torch.equal(loss_exact, loss_without)
    assert not torch.equal(loss, loss_exact)
