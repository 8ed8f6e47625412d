"""`amodal-depth reproduce` end to end on a tiny plan: report, resume, weights export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from amodal_depth import reproduce as rp
from amodal_depth.cli import main
from amodal_depth.config import ReproducePlan
from conftest import write_flat_dataset  # tests/ is on sys.path under pytest

W, H, K = 56, 42, 3
VARIANTS = ["ade", "ade_multibatch"]


def _tiny_plan(name: str) -> ReproducePlan:
    overrides = dict(steps=2, batch_size=2, width=W, height=H, log_every=1, checkpoint_every=2)
    return ReproducePlan(
        name, num_samples=12, width=W, height=H, seeds=(0,), val_images=2,
        train_overrides=overrides,
    )  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repro-data")
    splits = {"train": range(8), "val": [8, 9], "test": [10, 11]}
    return write_flat_dataset(root, num=12, width=W, height=H, num_layers=K, splits=splits)


class _Counter:
    """Wraps a function and records what it was called for (key(args, kwargs))."""

    def __init__(self, fn, key):
        self.fn, self.key, self.calls = fn, key, []

    def __call__(self, *args, **kw):
        self.calls.append(self.key(args, kw))
        return self.fn(*args, **kw)


def _check_figure_arrays(out: Path) -> np.ndarray:
    """The figure's arrays: the truth of the test images, and each seed-0 run's depth for
    them (0 where the truth has none). Returns the ade run's depth."""
    truth = np.load(out / "test_images.npz")
    assert list(truth["ids"]) == ["000010", "000011"] and truth["rgb"].shape == (2, H, W, 3)
    assert truth["amodal"].dtype == bool and truth["depth"].shape == (2, K, H, W)
    assert sorted(p.name for p in (out / "runs").glob("*.npz")) == [
        "ade-seed0.npz",
        "ade_multibatch-seed0.npz",
    ]
    pred = np.load(out / "runs" / "ade-seed0.npz")
    assert list(pred["ids"]) == list(truth["ids"]) and pred["depth"].dtype == np.float16
    valid = truth["depth"] > 0
    assert (pred["depth"][valid] > 0).all() and (pred["depth"][~valid] == 0).all()
    return pred["depth"]


def test_quick_plan_end_to_end_resume_and_export(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("amodal_depth.data.dataset")  # the training loop's data loader
    import amodal_depth.evaluate as ev
    import amodal_depth.train as tr

    monkeypatch.setattr(rp, "reproduce_plan", _tiny_plan)
    train = _Counter(tr.train, lambda a, kw: str(a[2]))  # the run directory
    evaluate = _Counter(ev.evaluate, lambda a, kw: kw.get("name") or str(a[0]))
    monkeypatch.setattr(tr, "train", train)
    monkeypatch.setattr(ev, "evaluate", evaluate)
    out, work = tmp_path / "report", tmp_path / "work"
    args = ["reproduce", "--preset", "quick", "--out", str(out), "--work", str(work),
            "--data", str(data), "--variants", ",".join(VARIANTS)]  # fmt: skip

    assert main(args) == 0
    assert sorted(p.name for p in (out / "runs").glob("*.json")) == [
        "ade-seed0.json",
        "ade_multibatch-seed0.json",
    ]
    assert {p.stem for p in (out / "references").glob("*.json")} == set(rp.REFERENCES)
    assert len(train.calls) == 2
    run = json.loads((out / "runs" / "ade-seed0.json").read_text())
    assert run["train"]["steps"] == 2 and run["train"]["loss_curve"][-1][0] == 2
    assert run["test"]["num_images"] == 2 and run["val"]["num_images"] == 2
    assert run["test"]["data"] == data.name  # no machine paths in the committed report
    readme = (out / "README.md").read_text()
    assert "Runs finished: 2 of 2 planned — complete" in readme
    assert "--preset quick" in readme
    assert (out / "fig_predictions.png").stat().st_size > 0
    assert "![per-layer predictions](fig_predictions.png)" in readme
    pred = _check_figure_arrays(out)
    assert "one seed: cannot judge noise" in (out / "claims.md").read_text()
    record = json.loads((out / "reproduction.json").read_text())
    assert len(record["sessions"]) == 1 and record["sessions"][0]["ended"]
    assert set(record["runs"]) == {"ade-seed0", "ade_multibatch-seed0"}

    # Second call: everything is done, nothing is trained or evaluated again; a run's lost
    # predictions are computed again from its weights, equal to the first ones.
    train.calls.clear()
    evaluate.calls.clear()
    (out / "runs" / "ade-seed0.npz").unlink()
    assert main(args) == 0
    assert train.calls == [] and evaluate.calls == []
    assert np.array_equal(np.load(out / "runs" / "ade-seed0.npz")["depth"], pred)
    assert len(json.loads((out / "reproduction.json").read_text())["sessions"]) == 2

    # A lost run JSON: only that run is evaluated again (its training is finished).
    (out / "runs" / "ade-seed0.json").unlink()
    assert main(args) == 0
    assert train.calls == [] and evaluate.calls == ["ade-seed0", "ade-seed0"]  # test, val

    # A lost run: only that one is trained again.
    evaluate.calls.clear()
    (out / "runs" / "ade_multibatch-seed0.json").unlink()
    shutil.rmtree(work / "runs" / "ade_multibatch-seed0")
    assert main(args) == 0
    assert train.calls == [str(work / "runs" / "ade_multibatch-seed0")]
    assert set(evaluate.calls) == {"ade_multibatch-seed0"}

    # Export: fp16 weights of the best multibatch run, with config and metrics.
    from amodal_depth.models.checkpoints import load_model

    dest = tmp_path / "weights"
    rp.export_best_weights(out, work, dest)
    metrics = json.loads((dest / "metrics.json").read_text())
    assert metrics["run"] == "ade_multibatch-seed0" and "val" in metrics["selected_by"]
    assert (dest / "config.json").is_file() and metrics["dtype"] == "float16"
    model = load_model(dest / "model.safetensors")
    assert model.config.variant == "ade_multibatch"
    from safetensors import safe_open

    with safe_open(str(dest / "model.safetensors"), "pt") as f:
        dtypes = {str(f.get_tensor(k).dtype) for k in f.keys()}
    assert "torch.float16" in dtypes and "torch.float32" not in dtypes

    # Another name (the RGB-D weights) sits beside them without touching their files.
    run_dir = work / "runs" / "ade_multibatch-seed0"
    rp.export_weights(run_dir, dest, {"note": "rgbd"}, name="model_rgbd.safetensors")
    assert json.loads((dest / "model_rgbd_metrics.json").read_text())["note"] == "rgbd"
    assert (dest / "model_rgbd_config.json").is_file()
    assert load_model(dest / "model_rgbd.safetensors").config.variant == "ade_multibatch"
    assert json.loads((dest / "metrics.json").read_text())["run"] == "ade_multibatch-seed0"
    assert "note" not in json.loads((dest / "metrics.json").read_text())


def test_bad_options_are_one_line_errors(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["reproduce", "--preset", "quick", "--out", str(tmp_path / "o"),
            "--work", str(tmp_path / "w"), "--data", str(data)]  # fmt: skip
    assert main([*base, "--variants", "ade,nope"]) == 2
    assert "unknown variant 'nope'" in capsys.readouterr().err
    assert main([*base, "--seeds", "1,1"]) == 2
    assert main([*base, "--work", str(tmp_path / "o")]) == 2
    assert main([*base[:-1], str(tmp_path / "missing")]) == 2
    assert "no such dataset" in capsys.readouterr().err


def test_plan_data_is_generated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = pytest.importorskip("amodal_depth.data.generate")
    plan = _tiny_plan("quick")
    root = rp.ensure_data(plan, tmp_path, None, workers=1)
    m = json.loads((root / "manifest.json").read_text())
    assert (m["width"], m["height"]) == (W, H)
    assert sum(len(v) for v in m["splits"].values()) == plan.num_samples

    def fail(*a, **kw):
        raise AssertionError("complete data must not be generated again")

    monkeypatch.setattr(gen, "generate_dataset", fail)
    assert rp.ensure_data(plan, tmp_path, None, workers=1) == root
