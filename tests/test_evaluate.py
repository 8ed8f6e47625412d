"""`amodal-depth evaluate` on a tiny hand-built dataset: references, output structure, errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from amodal_depth.cli import main
from amodal_depth.evaluate import evaluate
from amodal_depth.metrics import (
    BOUNDARY_KEYS,
    CONSISTENCY_KEYS,
    DEPTH_KEYS,
    boundary_f1,
    hidden_outline,
    layered_consistency,
)
from amodal_depth.references import (
    MeanDepthMap,
    PredictedObjectFill,
    object_fill,
    predicted_object_fill,
    visible_only,
)
from conftest import write_flat_dataset

W, H, K = 42, 28, 3  # multiples of 14: the model runs at the dataset's own size


def make_dataset(root: Path, n: int = 6, width: int = W, height: int = H) -> Path:
    """Flat-rectangle scenes (tests/conftest.py): 3 train, the rest test, no val."""
    split = {"train": list(range(3)), "test": list(range(3, n))} if n > 3 else None
    split = split or {"test": list(range(n))}
    return write_flat_dataset(root, num=n, width=width, height=height, num_layers=K, splits=split)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("eval") / "ds")


def test_references_shapes_and_values(data: Path) -> None:
    from amodal_depth.data.format import read_manifest, read_sample

    s = read_sample(data, "000003", read_manifest(data))
    vo = visible_only(s)
    assert vo.shape == (K, H, W)
    np.testing.assert_array_equal(vo[2], s.depth[0])
    of = object_fill(s)
    np.testing.assert_array_equal(of[0], s.depth[0])  # o_1 has no hidden part
    hidden = s.amodal[1] & ~s.visible[1]
    assert hidden.any()
    assert np.all(of[1][hidden] == np.median(s.depth[0][s.visible[1]]))
    np.testing.assert_array_equal(of[1][~hidden], s.depth[0][~hidden])
    mean = MeanDepthMap.fit(data, "train")
    assert mean.depth.shape == (H, W)
    assert mean.predict(s).shape == (K, H, W)
    m = read_manifest(data)
    train = np.stack([read_sample(data, i, m).depth for i in m["splits"]["train"]])
    np.testing.assert_allclose(mean.depth, train.mean(axis=(0, 1)), rtol=1e-6)  # no holes here


def test_visible_only_is_perfect_on_layer1(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "vo.json"
    r = evaluate("visible_only", data, "test", out_json=out, out_csv=tmp_path / "vo.csv")
    assert r["num_images"] == 3
    l1 = r["depth_per_layer"]["1"]["all"]
    assert l1["delta_1_05"] == 1.0
    assert l1["rmse"] == pytest.approx(0.0, abs=1e-3)  # mm quantisation only
    # deeper layers: the occluders are still there, so the hidden part is wrong
    assert r["depth_per_layer"]["2"]["invisible"]["delta_1_05"] < 0.5
    # structure
    assert set(r["depth"]) == {"all", "amodal", "invisible"}
    assert set(r["depth"]["all"]) == set(DEPTH_KEYS)
    assert set(r["depth_per_layer"]) == {"1", "2", "3"}
    for key in ("consistency", "gt_consistency"):
        assert set(r[key]) == {"all", "static"}
        assert set(r[key]["static"]) == set(CONSISTENCY_KEYS)
    assert json.loads(out.read_text()) == r
    rows = list(csv.DictReader((tmp_path / "vo.csv").open()))
    assert len(rows) == 3 * K
    assert rows[0]["id"] == "000003" and rows[0]["layer"] == "1"
    assert rows[K - 1]["cons_all_fitness"] == ""  # the last layer starts no pair
    assert float(rows[0]["all_delta1"]) == 1.0
    # depth-boundary F1: exact on layer 1; no hidden part there, so no outline value
    assert r["boundary_per_layer"]["1"]["boundary_f1"] == 1.0
    assert r["boundary_per_layer"]["1"]["boundary_f1_hidden_outline"] is None
    assert set(r["boundary"]) == set(BOUNDARY_KEYS)
    assert set(r["boundary_per_layer"]) == {"1", "2", "3"}
    assert r["nan_counts"]["boundary"] == dict.fromkeys(BOUNDARY_KEYS, 0)
    assert rows[0]["boundary_f1_hidden_outline"] == "" and rows[0]["hidden_outline_pixels"] == "0"
    assert int(rows[1]["hidden_outline_pixels"]) > 0
    # the new columns come after the existing ones
    assert list(rows[0])[-3:] == [*BOUNDARY_KEYS, "hidden_outline_pixels"]


def test_object_fill_beats_visible_only_on_the_hidden_part(data: Path) -> None:
    vo = evaluate("visible_only", data, progress=False)
    of = evaluate("object_fill", data, progress=False)
    assert of["depth"]["invisible"]["rmse"] < vo["depth"]["invisible"]["rmse"]
    md = evaluate("mean_depth", data, progress=False)
    assert md["depth"]["all"]["delta1"] <= 1.0


def test_boundary_f1_per_layer_and_outline(data: Path) -> None:
    from amodal_depth.data.format import read_manifest, read_sample

    r = evaluate("object_fill", data, progress=False)
    m = read_manifest(data)
    want: dict[int, dict[str, list[float]]] = {k: {b: [] for b in BOUNDARY_KEYS} for k in (1, 2, 3)}
    for sid in m["splits"]["test"]:
        s = read_sample(data, sid, m)
        pred, gt = object_fill(s).astype(np.float64), s.depth.astype(np.float64)
        for k in range(K):
            want[k + 1]["boundary_f1"].append(boundary_f1(pred[k], gt[k], gt[k] > 0))
            if k:
                outline = hidden_outline(s.amodal[k], s.visible[k])
                want[k + 1]["boundary_f1_hidden_outline"].append(
                    boundary_f1(pred[k], gt[k], outline & (gt[k] > 0))
                )
    for k in (1, 2, 3):
        got = r["boundary_per_layer"][str(k)]
        assert got["boundary_f1"] == pytest.approx(np.mean(want[k]["boundary_f1"]))
        if k > 1:
            assert got["boundary_f1_hidden_outline"] == pytest.approx(
                np.mean(want[k]["boundary_f1_hidden_outline"])
            )
    per_image = np.mean([want[k]["boundary_f1"] for k in (1, 2, 3)], axis=0)
    assert r["boundary"]["boundary_f1"] == pytest.approx(per_image.mean())
    # object fill keeps the occluder, so o_k's revealed outline is not drawn at all
    assert r["boundary"]["boundary_f1_hidden_outline"] < r["boundary_per_layer"]["1"]["boundary_f1"]


def test_gt_consistency_row(data: Path) -> None:
    from amodal_depth.data.format import read_manifest, read_sample

    r = evaluate("visible_only", data, progress=False)
    m = read_manifest(data)
    want = []
    for sid in m["splits"]["test"]:
        s = read_sample(data, sid, m)
        want.append(layered_consistency(s.depth, s.camera, s.amodal, valid=s.depth > 0))
    for region in ("all", "static"):
        for key in CONSISTENCY_KEYS:
            vals = [w[region][key] for w in want]
            assert r["gt_consistency"][region][key] == pytest.approx(np.mean(vals)), key
    # the static region is where the true layers agree: a perfect GT score
    assert r["gt_consistency"]["static"]["pixel_diff"] < r["gt_consistency"]["all"]["pixel_diff"]
    # visible-only predicts the same map for every layer: perfectly "consistent"
    assert r["consistency"]["all"]["pixel_diff"] == pytest.approx(0.0, abs=1e-12)
    assert r["consistency"]["all"]["fitness"] == 1.0


def test_deterministic_and_max_images(data: Path, tmp_path: Path) -> None:
    for i in range(2):
        evaluate(
            "object_fill", data, out_json=tmp_path / f"{i}.json", out_csv=tmp_path / f"{i}.csv"
        )
    assert (tmp_path / "0.json").read_bytes() == (tmp_path / "1.json").read_bytes()
    assert (tmp_path / "0.csv").read_bytes() == (tmp_path / "1.csv").read_bytes()
    assert evaluate("object_fill", data, max_images=1, progress=False)["num_images"] == 1


# ------------------------------------------------------------------------------ CLI
def test_cli_reference_writes_json_and_csv(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "r" / "eval.json"
    assert (
        main(["evaluate", "--reference", "object_fill", "--data", str(data), "--out", str(out)])
        == 0
    )
    r = json.loads(out.read_text())
    assert r["predictor"] == "object_fill"
    assert out.with_suffix(".csv").is_file()
    assert not math.isnan(r["depth"]["invisible"]["rmse"])


def _err(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()  # drop earlier output (progress bars)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("amodal-depth: error:")
    return err


def test_cli_bad_inputs(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "e.json")
    err = _err(capsys, ["evaluate", "--reference", "visible_only", "--data", str(data),
                        "--split", "val", "--out", out])  # fmt: skip
    assert "split 'val'" in err
    run = tmp_path / "run"
    run.mkdir()
    err = _err(capsys, ["evaluate", "--run", str(run), "--data", str(data), "--out", out])
    assert "model.safetensors" in err
    err = _err(capsys, ["evaluate", "--weights", str(tmp_path / "nope.safetensors"),
                        "--data", str(data), "--out", out])  # fmt: skip
    assert "no such weights file" in err
    err = _err(capsys, ["evaluate", "--reference", "visible_only", "--data",
                        str(tmp_path / "missing"), "--out", out])  # fmt: skip
    assert "no such dataset" in err
    assert not Path(out).exists()


# ------------------------------------------------------------------------------ models
def _tiny_model(num_layers: int = K, variant: str = "ade"):
    import torch

    from amodal_depth.config import preset
    from amodal_depth.models import build_model

    torch.manual_seed(0)
    cfg = preset("quick", variant).model
    cfg.num_layers = num_layers
    return build_model(cfg)


@pytest.mark.parametrize("variant", ["ade", "ade_multibatch"])
def test_random_model_evaluates(data: Path, tmp_path: Path, variant: str) -> None:
    model = _tiny_model(variant=variant)
    r1 = evaluate(model, data, out_json=tmp_path / "m.json", batch_size=2, progress=False)
    assert r1["predictor"] == f"model:{variant}"
    assert r1["num_images"] == 3
    for region in ("all", "amodal", "invisible"):
        for key in DEPTH_KEYS:
            v = r1["depth"][region][key]
            assert v is not None and np.isfinite(v), (region, key)
    assert 0.0 <= r1["depth"]["all"]["delta1"] <= 1.0
    # the GT row does not depend on the predictor
    assert r1["gt_consistency"] == evaluate("visible_only", data, progress=False)["gt_consistency"]
    # batching does not change the numbers
    r2 = evaluate(model, data, batch_size=3, progress=False)
    for key in DEPTH_KEYS:
        assert r2["depth"]["all"][key] == pytest.approx(r1["depth"]["all"][key], abs=1e-5)


def test_model_on_a_size_that_is_not_a_multiple_of_14(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "odd", n=2, width=40, height=30)  # network input 42x28
    r = evaluate(_tiny_model(), root, progress=False)
    assert r["num_images"] == 2 and r["depth"]["all"]["rmse"] is not None


def test_model_with_another_k_is_refused(data: Path) -> None:
    from amodal_depth.errors import UserError

    with pytest.raises(UserError, match="K = 3"):
        evaluate(_tiny_model(num_layers=2), data, progress=False)


def test_predicted_object_fill(data: Path) -> None:
    from amodal_depth.data.format import read_manifest, read_sample
    from amodal_depth.evaluate import _predict_model_batch
    from amodal_depth.metrics import aligned_depth

    model = _tiny_model().eval()
    m = read_manifest(data)
    samples = [read_sample(data, sid, m) for sid in m["splits"]["test"]]
    preds = [p for p, _ in _predict_model_batch(model, samples)]
    for s, pred in zip(samples, preds):
        fill = predicted_object_fill(pred, s)
        assert fill.shape == (K, H, W) and fill.dtype == np.float32
        np.testing.assert_array_equal(fill[0], pred[0])
        for k in range(1, K):
            hidden = s.amodal[k] & ~s.visible[k]
            assert hidden.any()
            np.testing.assert_array_equal(fill[k][~hidden], pred[0][~hidden])
            assert np.all(fill[k][hidden] == np.median(pred[0][s.visible[k]]))
    # evaluate runs the model itself and aligns the fill like the model, layer by layer
    r = evaluate(PredictedObjectFill(model), data, batch_size=2, progress=False)
    rm = evaluate(model, data, batch_size=2, progress=False)
    assert r["predictor"] == "predicted_object_fill:ade"
    assert r["depth_per_layer"]["1"] == rm["depth_per_layer"]["1"]  # layer 1 is the model's
    assert r["boundary_per_layer"]["1"] == rm["boundary_per_layer"]["1"]
    s = samples[0]
    fill = predicted_object_fill(preds[0], s).astype(np.float64)
    gt = s.depth.astype(np.float64)
    depth2 = aligned_depth(fill[1], gt[1], gt[1] > 0)
    hidden = s.amodal[1] & ~s.visible[1]
    assert np.ptp(depth2[hidden]) == 0.0  # one value, after the same alignment
    r1 = evaluate(PredictedObjectFill(model), data, max_images=1, progress=False)
    from amodal_depth.metrics import depth_metrics

    want = depth_metrics(depth2, gt[1], hidden & (gt[1] > 0), align=False)["rmse"]
    assert r1["depth_per_layer"]["2"]["invisible"]["rmse"] == pytest.approx(want)
    # a name alone is not enough: the reference needs the model
    from amodal_depth.errors import UserError

    with pytest.raises(UserError, match="--weights"):
        evaluate("predicted_object_fill", data, progress=False)


def test_cli_predicted_object_fill(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from amodal_depth.models.checkpoints import save_model

    weights = tmp_path / "model.safetensors"
    save_model(_tiny_model(), weights)
    out = tmp_path / "pof.json"
    argv = ["evaluate", "--reference", "predicted_object_fill", "--data", str(data)]
    assert main([*argv, "--weights", str(weights), "--out", str(out), "--max-images", "1"]) == 0
    r = json.loads(out.read_text())
    assert r["predictor"] == f"predicted_object_fill:ade:{weights}"
    assert out.with_suffix(".csv").is_file()
    assert main([*argv, "--run", str(tmp_path), "--out", str(out), "--max-images", "1"]) == 0
    err = _err(capsys, [*argv, "--out", str(tmp_path / "x.json")])
    assert "--weights" in err and "--run" in err
    err = _err(capsys, [*argv, "--weights", str(weights), "--run", str(tmp_path),
                        "--out", str(tmp_path / "x.json")])  # fmt: skip
    assert "exactly one" in err
    # other references take no model, and a model needs no reference
    err = _err(capsys, ["evaluate", "--reference", "object_fill", "--weights", str(weights),
                        "--data", str(data), "--out", str(tmp_path / "x.json")])  # fmt: skip
    assert "exactly one" in err
    err = _err(capsys, ["evaluate", "--data", str(data), "--out", str(tmp_path / "x.json")])
    assert "exactly one" in err
    assert not (tmp_path / "x.json").exists()


def test_cli_weights_and_run(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from amodal_depth.models.checkpoints import save_model

    run = tmp_path / "run"
    save_model(_tiny_model(), run / "model.safetensors")
    out = tmp_path / "run_eval.json"
    assert main(["evaluate", "--run", str(run), "--data", str(data), "--out", str(out)]) == 0
    by_run = json.loads(out.read_text())
    assert by_run["num_images"] == 3
    out2 = tmp_path / "w_eval.json"
    argv = ["evaluate", "--weights", str(run / "model.safetensors"), "--data", str(data)]
    assert main([*argv, "--out", str(out2), "--max-images", "1"]) == 0
    assert json.loads(out2.read_text())["num_images"] == 1
    # weights of a different K
    save_model(_tiny_model(num_layers=2), tmp_path / "k2.safetensors")
    err = _err(capsys, ["evaluate", "--weights", str(tmp_path / "k2.safetensors"),
                        "--data", str(data), "--out", str(tmp_path / "x.json")])  # fmt: skip
    assert "K = 2" in err and "K = 3" in err
    # a file that is not weights at all
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    _err(capsys, ["evaluate", "--weights", str(bad), "--data", str(data), "--out", str(out2)])


def test_cli_mean_depth_fitted_on_another_dataset(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An evaluation-only set has no train split: --fit-data names where the map is fitted."""
    other = write_flat_dataset(tmp_path / "other", num=3, width=W, height=H)  # 1 train sample
    out = tmp_path / "m.json"
    argv = ["evaluate", "--reference", "mean_depth", "--data", str(data), "--out", str(out)]
    assert main([*argv, "--fit-data", str(other)]) == 0
    fitted_elsewhere = json.loads(out.read_text())
    assert main(argv) == 0
    own = json.loads(out.read_text())
    assert fitted_elsewhere["predictor"].startswith("mean_depth(fit on")
    assert fitted_elsewhere["depth"]["all"]["rmse"] != own["depth"]["all"]["rmse"]
    err = _err(capsys, ["evaluate", "--reference", "object_fill", "--data", str(data),
                        "--out", str(out), "--fit-data", str(other)])  # fmt: skip
    assert "--fit-data" in err
