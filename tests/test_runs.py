"""The run directory (runs.py): weights resolution, loading, the log, the loss curve and the
checkpoint round trip, on hand-written run directories (no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from amodal_depth import runs
from amodal_depth.errors import UserError


def _tiny_model():
    from amodal_depth.config import preset
    from amodal_depth.models import build_model

    torch.manual_seed(0)
    return build_model(preset("quick", "ade").model)


def _write_log(run: Path, lines: list[str]) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / runs.LOG_NAME).write_text("".join(x + "\n" for x in lines))


def test_resolve_weights(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(UserError, match="no such run directory"):
        runs.resolve_weights(run, None)
    run.mkdir()
    with pytest.raises(UserError, match="no model.safetensors in this run directory"):
        runs.resolve_weights(run, None)
    (run / runs.WEIGHTS_NAME).write_bytes(b"x")
    assert runs.resolve_weights(run, None) == run / "model.safetensors"
    assert runs.resolve_weights(None, run / runs.WEIGHTS_NAME) == run / "model.safetensors"
    with pytest.raises(UserError, match="no such weights file"):
        runs.resolve_weights(None, tmp_path / "nope.safetensors")
    with pytest.raises(UserError, match="--run RUN"):
        runs.resolve_weights(None, None)


def test_load_run_and_checkpoint_markers(tmp_path: Path) -> None:
    from amodal_depth.models.checkpoints import save_model

    run = tmp_path / "run"
    run.mkdir()
    assert not runs.has_checkpoint(run)
    with pytest.raises(UserError, match="no model.safetensors") as err:
        runs.load_run(run)
    assert "\n" not in str(err.value)
    model = _tiny_model()
    save_model(model, run / runs.WEIGHTS_NAME)
    assert runs.has_checkpoint(run)
    loaded = runs.load_run(run)
    assert not loaded.training and loaded.config == model.config
    assert runs.read_config(run) is None and runs.read_done(run) is None
    (run / runs.DONE_NAME).write_text(json.dumps({"steps": 3}))
    assert runs.read_done(run) == {"steps": 3}


def test_log_reading_skips_cut_lines_and_truncates(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert runs.read_log(run) == [] and math.isnan(runs.last_logged_loss(run))
    lines = [json.dumps({"step": s, "total": float(s)}) for s in (1, 2, 3, 4)]
    lines.insert(2, json.dumps({"step": 2, "val_total": 9.0}))
    _write_log(run, [*lines, '{"step": 5, "to'])  # the last line cut by a kill
    assert [r["step"] for r in runs.read_log(run)] == [1, 2, 2, 3, 4]
    assert runs.training_losses(run) == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    assert runs.last_logged_loss(run) == 4.0
    runs.truncate_log(run, 2)  # resume from the step-2 checkpoint
    assert [r["step"] for r in runs.read_log(run)] == [1, 2, 2]
    assert (run / runs.LOG_NAME).read_text().endswith("}\n")
    runs.append_log(run, {"step": 3, "total": 0.5})
    assert runs.training_losses(run)[-1] == (3, 0.5)


def test_loss_curve_is_subsampled_and_keeps_the_last_point(tmp_path: Path) -> None:
    run = tmp_path / "run"
    lines = [json.dumps({"step": s, "total": 1.0 / s}) for s in range(1, 351)]
    lines.insert(5, json.dumps({"step": 5, "val_total": 0.3}))  # validation lines are skipped
    _write_log(run, [*lines, "{cut"])
    curve = runs.loss_curve(run)
    assert len(curve) <= runs.LOSS_CURVE_POINTS
    assert curve[0] == [1, 1.0] and curve[-1] == [350, 1.0 / 350]
    assert runs.loss_curve(run, points=1000) == [[s, 1.0 / s] for s in range(1, 351)]
    assert runs.loss_curve(tmp_path / "empty") == []


def test_checkpoint_round_trip_restores_weights_optimiser_and_rng(tmp_path: Path) -> None:
    model = _tiny_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    model(torch.rand(1, 3, 28, 28), torch.rand(1, 3, 2, 28, 28)).mean().backward()
    opt.step()
    sched.step()
    runs.save_checkpoint(tmp_path, model, opt, sched, step=7, elapsed=1.5, seen=28)
    want = (torch.rand(3), np.random.rand(3))  # what the RNGs give next after the checkpoint
    weights = {k: v.clone() for k, v in model.state_dict().items()}

    fresh = _tiny_model()
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 1.0 / (s + 1))
    torch.manual_seed(123)
    assert runs.restore_checkpoint(tmp_path, fresh, opt2, sched2, "cpu") == (7, 1.5, 28)
    assert all(torch.equal(weights[k], v) for k, v in fresh.state_dict().items())
    assert (
        sched2.last_epoch == 1
        and opt2.state_dict()["state"].keys() == opt.state_dict()["state"].keys()
    )
    assert torch.equal(torch.rand(3), want[0]) and np.array_equal(np.random.rand(3), want[1])
    assert runs.load_run(tmp_path).config == model.config  # the weights file beside it


def test_unreadable_state_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / runs.STATE_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="another --out") as err:
        runs.read_state(tmp_path)
    assert "\n" not in str(err.value)
