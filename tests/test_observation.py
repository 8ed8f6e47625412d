"""The observed-depth input: normalisation, zero start, units, corruption, API and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from amodal_depth.cli import main
from amodal_depth.config import preset
from amodal_depth.data.observe import SOURCES, simulate_observation
from amodal_depth.errors import UserError
from amodal_depth.models import build_model
from amodal_depth.models.checkpoints import init_from_weights, load_model, save_model
from amodal_depth.models.guidance import build_guidance
from amodal_depth.models.observation import (
    ANCHOR_GRID,
    _anchor_hidden,
    _plane_blend,
    check_observation,
    fit_to_observation,
    observation_input,
)
from amodal_depth.observations import read_depth
from conftest import flat_sample, write_flat_dataset

W, H, K = 42, 28, 3


def _model(observed: bool, variant: str = "ade"):
    torch.manual_seed(0)
    cfg = preset("quick", variant).model
    cfg.observed_depth = observed
    return build_model(cfg).eval()


def test_observation_input_removes_scale_and_shift_and_marks_holes() -> None:
    rng = np.random.default_rng(0)
    inv = torch.from_numpy(rng.uniform(0.2, 1.0, (1, H, W)).astype(np.float32))
    valid = torch.ones(1, H, W, dtype=torch.bool)
    valid[0, :3] = False
    a = observation_input(inv, valid)
    b = observation_input(inv * 7.5 + 3.0, valid)
    assert a.shape == (1, 2, H, W)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert (a[0, 0, :3] == 0).all() and (a[0, 1, :3] == 0).all() and (a[0, 1, 3:] == 1).all()
    none = observation_input(inv, torch.zeros_like(valid))
    assert (none == 0).all()


def test_zero_initialised_observation_leaves_a_trained_model_unchanged(tmp_path: Path) -> None:
    rgb_model = _model(False, "ade_mha")
    with torch.no_grad():  # a "trained" RGB model: move every weight off its init
        for p in rgb_model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = save_model(rgb_model, tmp_path / "rgb.safetensors")
    obs_model = _model(True, "ade_mha")
    missing = init_from_weights(obs_model, path)
    assert missing and all("observation" in k for k in missing)
    s = flat_sample(W, H, K, seed=2)
    ref = rgb_model.predict_layers(s.rgb, s.amodal)
    out = obs_model.predict_layers(s.rgb, s.amodal)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    # an observation changes nothing either until training moves the new weights...
    inv = (1.0 / s.depth[0])[None].astype(np.float32)
    with_obs = obs_model.predict_batch(s.rgb[None], s.amodal[None], (inv, s.depth[:1] > 0))
    np.testing.assert_allclose(with_obs[0], ref, rtol=1e-5, atol=1e-6)
    # ...and another architecture is refused in one line
    with pytest.raises(UserError, match="another architecture"):
        init_from_weights(_model(True, "ade"), path)


def test_layer_k_does_not_read_the_observation_of_the_objects_removed_before_it() -> None:
    model = _model(True, "ade")
    with torch.no_grad():  # make the observation matter
        for name, p in model.named_parameters():
            if "observation" in name:
                p.normal_(0.0, 0.5)
    s = flat_sample(W, H, K, seed=2)
    rgb = torch.from_numpy(s.rgb).permute(2, 0, 1)[None].float() / 255.0
    amodal = torch.from_numpy(s.amodal)[None]
    guidance = build_guidance(amodal, model.config.guidance_channels)
    obs = torch.randn(1, 2, H, W)
    changed = obs.clone()
    inside = amodal[0, 0]  # o_1: removed in layers 2..K, visible in layer 1
    changed[0, :, inside] += 3.0
    with torch.no_grad():
        a, b = model(rgb, guidance, obs), model(rgb, guidance, changed)
    assert not torch.allclose(a[0, 0], b[0, 0])  # layer 1 sees o_1's observed depth
    torch.testing.assert_close(a[0, 1:], b[0, 1:])  # layers 2..K do not


def test_fit_to_observation_recovers_metres_and_disparity_units() -> None:
    s = flat_sample(W, H, K, seed=3)
    true_inv = 1.0 / s.depth.astype(np.float64)
    disp = (2.0 * true_inv + 0.3).astype(np.float32)  # the model's relative output
    valid = np.ones((H, W), bool)
    valid[:4, :4] = False  # holes are fine
    obs_inv = np.where(valid, true_inv[0], 0).astype(np.float32)
    depth, fits = fit_to_observation(disp, obs_inv, valid, s.amodal, "depth")
    np.testing.assert_allclose(depth, s.depth, rtol=1e-4)
    assert len(fits) == K
    disp_out, _ = fit_to_observation(disp, 5 * obs_inv, valid, s.amodal, "disparity")
    np.testing.assert_allclose(disp_out, 5 * true_inv, rtol=1e-4)


def test_layers_keep_the_observation_where_they_show_the_visible_scene() -> None:
    """Outside the amodal masks of o_1..o_{k-1} layer k is the observed depth itself (noise
    and all); the model fills the holes and the hidden parts."""
    s = flat_sample(W, H, K, seed=3)
    true_inv = 1.0 / s.depth.astype(np.float64)
    disp = (2.0 * true_inv + 0.3).astype(np.float32)
    valid = np.ones((H, W), bool)
    valid[:4, :4] = False
    noise = np.random.default_rng(0).uniform(0.9, 1.1, (H, W))
    obs_inv = np.where(valid, true_inv[0] * noise, 0).astype(np.float32)
    depth, _ = fit_to_observation(disp, obs_inv, valid, s.amodal, "depth")
    kept, _ = fit_to_observation(disp, obs_inv, valid, s.amodal, "depth", keep_observed=False)
    removed = np.zeros((H, W), bool)
    for k in range(K):
        shown = valid & ~removed
        np.testing.assert_allclose(depth[k][shown], 1.0 / obs_inv[shown], rtol=1e-5)
        np.testing.assert_array_equal(depth[k][~shown], kept[k][~shown])  # the model's part
        removed |= s.amodal[k]
    assert not np.allclose(kept[0][valid], 1.0 / obs_inv[valid], rtol=1e-3)


def _anchor_case(h: int, w: int, ratio_left: float, ratio_right: float):
    """An object whose left half is hidden in rows 0..h/2 and visible below; its predicted
    depth is `ratio` x too far on the visible part (left / right half of the image), so
    anchoring must bring the hidden part back by the nearest ratio."""
    obs_inv = np.full((h, w), 0.5)  # observed: 2 m everywhere
    ratio = np.where(np.arange(w)[None, :] < w // 2, ratio_left, ratio_right) * np.ones((h, 1))
    layer = obs_inv / ratio  # predicted inverse depth = observed / ratio (depth x ratio)
    hidden = np.zeros((h, w), bool)
    hidden[: h // 2] = True
    seen = ~hidden
    return layer, obs_inv, np.ones((h, w), bool), seen, hidden


def test_anchoring_with_one_ratio_restores_the_observed_scale() -> None:
    for sigma in (0.0, 0.05):
        layer, obs_inv, valid, seen, hidden = _anchor_case(40, 60, 1.6, 1.6)
        _anchor_hidden(layer, obs_inv, valid, seen, hidden, sigma)
        np.testing.assert_allclose(layer[hidden], 0.5, rtol=1e-9)  # back at 2 m
        np.testing.assert_allclose(layer[seen], 0.5 / 1.6)  # visible part untouched


def test_anchoring_field_follows_the_nearest_part_of_the_band() -> None:
    # Left half 2x too far, right half right: one median ratio cannot serve both; the field
    # corrects the hidden pixels above each half by that half's ratio.
    layer, obs_inv, valid, seen, hidden = _anchor_case(40, 80, 2.0, 1.0)
    median_only = layer.copy()
    _anchor_hidden(median_only, obs_inv, valid, seen, hidden, 0.0)
    _anchor_hidden(layer, obs_inv, valid, seen, hidden, 0.05)
    near_left, near_right = (slice(15, 20), slice(2, 12)), (slice(15, 20), slice(68, 78))
    np.testing.assert_allclose(layer[near_left], 0.5, rtol=0.05)
    np.testing.assert_allclose(layer[near_right], 0.5, rtol=0.05)
    err_field = np.abs(1 / layer[hidden] - 2.0).mean()
    err_median = np.abs(1 / median_only[hidden] - 2.0).mean()
    assert err_field < 0.8 * err_median


def test_anchoring_field_of_a_large_image_matches_the_full_resolution_field(monkeypatch) -> None:
    import amodal_depth.models.observation as observation

    big = _anchor_case(8 * 40, 8 * 80, 2.0, 1.0)
    full = tuple(x.copy() for x in big)
    assert 8 * 40 > ANCHOR_GRID  # `big` takes the reduced-grid path
    _anchor_hidden(*big, 0.05)
    monkeypatch.setattr(observation, "ANCHOR_GRID", 10_000)
    _anchor_hidden(*full, 0.05)
    np.testing.assert_allclose(big[0], full[0], rtol=0.02)


def test_plane_blend_extrapolates_a_face_that_continues_behind_the_occluder() -> None:
    h, w = 40, 60
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    plane = 0.4 + 0.004 * u + 0.006 * v  # inverse depth of a tilted 3D plane
    hidden = np.zeros((h, w), bool)
    hidden[:20, 10:50] = True
    seen = ~hidden
    valid = np.ones((h, w), bool)
    exact = plane.copy()
    _plane_blend(exact, plane, valid, seen, hidden)  # a prediction already on the plane
    np.testing.assert_allclose(exact, plane, rtol=1e-9)
    flat = np.where(hidden, 0.5, plane)  # the model flattened the hidden part
    _plane_blend(flat, plane, valid, seen, hidden)
    np.testing.assert_allclose(flat[hidden], np.sqrt(0.5 * plane[hidden]), rtol=1e-9)
    np.testing.assert_array_equal(flat[seen], plane[seen])  # the visible part is untouched
    line = np.where(hidden, 0.5, plane)
    one_row = np.zeros((h, w), bool)
    one_row[25] = True  # observed pixels on one line do not determine a plane
    _plane_blend(line, plane, one_row, seen, hidden)
    np.testing.assert_array_equal(line[hidden], 0.5)


def test_anchoring_without_observed_visible_pixels_leaves_the_layer() -> None:
    layer, obs_inv, valid, seen, hidden = _anchor_case(40, 60, 1.6, 1.6)
    valid[:] = hidden  # the sensor saw nothing of the object's visible part
    before = layer.copy()
    _anchor_hidden(layer, obs_inv, valid, seen, hidden)
    np.testing.assert_array_equal(layer, before)


@pytest.mark.parametrize(
    ("depth", "match"),
    [
        (np.ones((H, W + 1)), "HxW"),
        (np.full((H, W), np.nan), "valid pixels"),
        (np.zeros((H, W)), "valid pixels"),
        (-np.ones((H, W)), "negative"),
        (np.ones((H, W), complex), "real numbers"),
    ],
)
def test_bad_observations_are_refused_in_one_line(depth: np.ndarray, match: str) -> None:
    s = flat_sample(W, H, K, seed=4)
    with pytest.raises(UserError, match=match):
        _model(True).predict_layers(s.rgb, s.amodal, depth=depth)
    with pytest.raises(UserError, match="kind"):
        check_observation(np.ones((H, W)), H, W, "metres")


def test_predict_layers_with_a_depth_returns_its_units() -> None:
    s = flat_sample(W, H, K, seed=5)
    obs = s.depth[0].copy()
    obs[0, :5] = np.nan  # NaN and 0 are holes
    obs[1, :5] = 0
    for observed in (False, True):  # RGB-only models use it for the units only
        out = _model(observed).predict_layers(s.rgb, s.amodal, depth=obs)
        assert out.shape == (K, H, W) and np.isfinite(out).all() and (out > 0).all()
        # a random tiny model is a poor predictor, but its layer 1 is fitted to the metres
        assert abs(np.median(out[0]) - np.median(s.depth[0])) < 0.5 * np.median(s.depth[0])


def test_simulated_observations_are_deterministic_and_realistic() -> None:
    s = flat_sample(64, 48, K, seed=6)
    d1 = s.depth[0]
    for source in SOURCES:
        a = simulate_observation(d1, s.rgb, np.random.default_rng(1), source)
        b = simulate_observation(d1, s.rgb, np.random.default_rng(1), source)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[2] == source and a[0].shape == d1.shape and a[1].dtype == bool
    inv, valid, _ = simulate_observation(d1, s.rgb, np.random.default_rng(2), "clean")
    np.testing.assert_allclose(inv[valid], 1.0 / d1[valid], rtol=1e-6)
    # a sensor keeps metres on most pixels, within a few per cent (noise grows with z^2)
    for seed in range(5):
        inv, valid, _ = simulate_observation(d1, s.rgb, np.random.default_rng(seed), "sensor")
        assert valid.mean() > 0.3
        err = np.abs(1.0 / inv[valid] - d1[valid]) / d1[valid]
        assert np.median(err) < 0.03
    inv, valid, _ = simulate_observation(d1, s.rgb, np.random.default_rng(3), "none")
    assert not valid.any()
    drawn = {simulate_observation(d1, s.rgb, np.random.default_rng(i))[2] for i in range(60)}
    assert drawn == set(SOURCES)


def test_read_depth_formats_and_errors(tmp_path: Path) -> None:
    mm = np.full((H, W), 2500, np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), mm)
    np.testing.assert_allclose(read_depth(tmp_path / "d.png"), 2.5)
    np.testing.assert_allclose(read_depth(tmp_path / "d.png", scale=1.0), 2500)
    np.save(tmp_path / "d.npy", np.full((H, W), 3.0, np.float32))
    np.testing.assert_allclose(read_depth(tmp_path / "d.npy"), 3.0)
    cv2.imwrite(str(tmp_path / "rgb.png"), np.zeros((H, W, 3), np.uint8))
    np.save(tmp_path / "bad.npy", np.zeros((2, H, W)))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    for name, match in [
        ("rgb.png", "one channel"),
        ("bad.npy", "HxW"),
        ("junk.npy", "readable"),
        ("none.npy", "no such file"),
        ("d.jpg", "give a"),
    ]:
        with pytest.raises(UserError, match=match):
            read_depth(tmp_path / name)
    with pytest.raises(UserError, match="positive"):
        read_depth(tmp_path / "d.png", scale=0.0)


# ---------------------------------------------------------------------- CLI, end to end
@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("obs") / "ds"
    return write_flat_dataset(
        root, num=6, width=W, height=H, num_layers=K,
        splits={"train": [0, 1, 2], "val": [3], "test": [4, 5]},
    )  # fmt: skip


def test_train_with_observed_depth_from_our_weights(data: Path, tmp_path: Path) -> None:
    base = tmp_path / "base.safetensors"
    save_model(_model(False), base)
    out = tmp_path / "run"
    argv = ["train", "--variant", "ade", "--data", str(data), "--out", str(out)]
    argv += ["--preset", "quick", "--steps", "2", "--batch-size", "2"]
    assert main([*argv, "--weights", str(base), "--observed-depth"]) == 0
    model = load_model(out / "model.safetensors")
    assert model.config.observed_depth
    # the zero-initialised input has started to learn
    w = model.pretrained.stem.observation.weight
    assert w.abs().sum() > 0
    cfg = json.loads((out / "config.json").read_text())["train"]
    assert cfg["weights"] == str(base) and cfg["model"]["observed_depth"] is True


def test_a_share_of_items_is_left_to_a_model_and_the_rest_simulated_as_before(data: Path) -> None:
    from amodal_depth.data.augment import AugmentConfig
    from amodal_depth.data.dataset import AmodalLayersDataset

    def items(share: float) -> list[dict]:
        augment = AugmentConfig(observe=True, observe_model_share=share)
        ds = AmodalLayersDataset(data, "train", augment=augment, seed=3)
        return [ds[i] for i in range(len(ds))]

    for item in items(1.0):
        assert bool(item["observed_from_model"])
        assert not item["observed_inverse"].any()
        assert torch.equal(item["observed_valid"], item["depth"][0] > 0)
    plain = items(0.0)
    assert all("observed_from_model" not in item for item in plain)
    assert any(item["observed_inverse"].any() for item in plain)
    for item in items(1e-9):  # drawn, never taken: still a simulated observation
        assert not bool(item["observed_from_model"])
        assert item["observed_inverse"].shape == (H, W)


def test_observe_with_model_fills_in_only_the_flagged_items() -> None:
    from amodal_depth.models import normalize_image
    from amodal_depth.train import observe_with_model

    rng = np.random.default_rng(0)
    rgb = torch.from_numpy(rng.uniform(0, 1, (2, 3, H, W)).astype(np.float32))
    amodal = torch.zeros(2, K, H, W, dtype=torch.bool)
    amodal[:, 0, 5:15, 10:25] = True
    amodal[:, 1, 8:20, 15:35] = True
    simulated = torch.from_numpy(rng.uniform(0.2, 1.0, (2, H, W)).astype(np.float32))
    valid = torch.ones(2, H, W, dtype=torch.bool)
    valid[0, :4] = False  # no surface there
    batch = {
        "observed_inverse": simulated.clone(),
        "observed_valid": valid,
        "observed_from_model": torch.tensor([True, False]),
    }
    observer = _model(False)
    image = normalize_image(rgb)
    out = observe_with_model(observer, batch, image, amodal)
    with torch.no_grad():
        want = observer(image[:1], build_guidance(amodal[:1]))[0, 0]
    torch.testing.assert_close(out[0], torch.where(valid[0], want, torch.zeros_like(want)))
    assert float(out[0, 4:].abs().sum()) > 0 and not out[0, :4].any()
    torch.testing.assert_close(out[1], simulated[1])  # simulated items are left alone
    assert torch.equal(batch["observed_inverse"], simulated)  # the batch is not modified
    del batch["observed_from_model"]
    assert observe_with_model(None, batch, image, amodal) is batch["observed_inverse"]
    batch["observed_from_model"] = torch.tensor([True, False])
    with pytest.raises(ValueError, match="no observer"):
        observe_with_model(None, batch, image, amodal)


def test_train_with_a_model_observing_a_share_of_the_items(data: Path, tmp_path: Path) -> None:
    base = tmp_path / "base.safetensors"
    save_model(_model(False), base)
    out = tmp_path / "run"
    argv = ["train", "--variant", "ade", "--data", str(data), "--out", str(out)]
    argv += ["--preset", "quick", "--steps", "2", "--batch-size", "2", "--weights", str(base)]
    argv += ["--observed-depth", "--observed-model", str(base), "--observed-model-share", "1"]
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())["train"]
    assert cfg["observed_model"] == str(base) and cfg["observed_model_share"] == 1.0
    assert load_model(out / "model.safetensors").pretrained.stem.observation.weight.abs().sum() > 0


def test_observed_model_errors(data: Path, tmp_path: Path, capsys) -> None:
    base = tmp_path / "base.safetensors"
    save_model(_model(False), base)
    two = tmp_path / "two.safetensors"
    cfg = preset("quick", "ade").model
    cfg.num_layers = 2
    save_model(build_model(cfg), two)
    argv = ["train", "--variant", "ade", "--data", str(data), "--preset", "quick", "--steps", "1"]
    cases = [
        (["--observed-model", str(base)], "add --observed-depth"),
        (["--observed-depth", "--observed-model", str(tmp_path / "none.safetensors")],
         "no such file"),
        (["--observed-depth", "--observed-model", str(base), "--observed-model-share", "1.5"],
         "must be in [0, 1]"),
        (["--observed-depth", "--observed-model-share", "0.5"], "give it too"),
        (["--observed-depth", "--observed-model", str(two)], "predicts 2 layers"),
    ]  # fmt: skip
    for i, (extra, message) in enumerate(cases):
        assert main([*argv, "--out", str(tmp_path / f"r{i}"), *extra]) == 2, message
        assert message in capsys.readouterr().err
        assert not (tmp_path / f"r{i}").exists()


def test_train_weights_errors(data: Path, tmp_path: Path, capsys) -> None:
    base = tmp_path / "base.safetensors"
    save_model(_model(False), base)
    argv = ["train", "--data", str(data), "--preset", "quick", "--steps", "1"]
    assert main([*argv, "--variant", "ade_mha", "--out", str(tmp_path / "a"),
                 "--weights", str(base)]) == 2  # fmt: skip
    assert "--variant ade" in capsys.readouterr().err
    assert main([*argv, "--variant", "ade", "--out", str(tmp_path / "b"),
                 "--weights", str(tmp_path / "none.safetensors")]) == 2  # fmt: skip
    assert "no such file" in capsys.readouterr().err


def test_evaluate_with_observations(data: Path, tmp_path: Path) -> None:
    from amodal_depth.evaluate import evaluate
    from amodal_depth.observations import ObservedReference, ObservedSource
    from amodal_depth.references import object_fill

    model = _model(True)
    gt = evaluate(model, data, observed=ObservedSource("gt"), progress=False)
    assert gt["observed"] == "gt" and gt["aligned_to_gt"] is False
    aligned = evaluate(model, data, observed=ObservedSource("gt"), align_to_gt=True,
                       progress=False)  # fmt: skip
    assert aligned["aligned_to_gt"] is True
    assert gt["depth"]["all"]["rmse"] != aligned["depth"]["all"]["rmse"]
    src = ObservedSource("gt-corrupted")
    r = evaluate(ObservedReference(object_fill, src, "of"), data, progress=False)
    plain = evaluate("object_fill", data, progress=False)
    assert r["depth"]["all"]["rmse"] != plain["depth"]["all"]["rmse"]
    same = evaluate(ObservedReference(object_fill, ObservedSource("gt"), "of"), data,
                    progress=False)  # fmt: skip
    assert same["depth"] == plain["depth"]  # the true depth as observation changes nothing
    assert gt["skipped_no_observation"] == []

    from amodal_depth.data.format import read_manifest, read_sample, split_ids

    manifest = read_manifest(data)
    first = split_ids(manifest, "test", data)[0]
    first_rgb = read_sample(data, first, manifest).rgb

    class BlindOnFirst(ObservedSource):  # a sensor that sees nothing in the first image
        def __call__(self, sample):
            obs, kind = super().__call__(sample)
            return (obs * 0 if np.array_equal(sample.rgb, first_rgb) else obs), kind

    for predictor in (model, ObservedReference(object_fill, BlindOnFirst("gt"), "of")):
        r = evaluate(predictor, data, observed=BlindOnFirst("gt"), progress=False)
        assert r["skipped_no_observation"] == [first]  # every row scores the same images
        assert r["num_images"] == gt["num_images"] - 1
    out = tmp_path / "e.json"
    base = ["evaluate", "--data", str(data), "--out", str(out)]
    assert main([*base, "--reference", "object_fill", "--observed", "gt-corrupted"]) == 0
    assert main([*base, "--reference", "mean_depth", "--observed", "gt"]) == 2
    assert main([*base, "--reference", "object_fill", "--observed", "sensor"]) == 2
    assert main([*base, "--reference", "object_fill", "--align-to-gt"]) == 2


def test_evaluate_simulates_each_sensor_observation_once(data: Path, monkeypatch) -> None:
    """The skip check and the prediction of an image read one simulated observation."""
    import amodal_depth.observations as obs_module
    from amodal_depth.evaluate import evaluate

    calls = []
    real = obs_module.sensor_observation
    monkeypatch.setattr(obs_module, "sensor_observation", lambda *a: calls.append(1) or real(*a))
    r = evaluate(_model(True), data, observed=obs_module.ObservedSource("gt-corrupted"),
                 progress=False)  # fmt: skip
    assert len(calls) == r["num_images"] + len(r["skipped_no_observation"]) > 0


def test_evaluate_scores_what_predict_layers_returns_at_a_resized_size(tmp_path: Path) -> None:
    """One inference path: at a size that needs resizing (50x30 is no multiple of 14),
    evaluate's prediction is exactly predict_layers'."""
    from amodal_depth.data.format import read_manifest, read_sample
    from amodal_depth.evaluate import _predict_model_batch

    root = write_flat_dataset(tmp_path / "odd", num=2, width=50, height=30, num_layers=K,
                              splits={"test": [0, 1]})  # fmt: skip
    m = read_manifest(root)
    samples = [read_sample(root, sid, m) for sid in m["splits"]["test"]]
    model = _model(False, "ade_multibatch")
    preds = _predict_model_batch(model, samples)
    for (pred, is_disp), s in zip(preds, samples):
        assert is_disp and pred.shape == (K, 30, 50)
        np.testing.assert_allclose(pred, model.predict_layers(s.rgb, s.amodal), atol=1e-6)


def test_predict_cli_with_depth(tmp_path: Path) -> None:
    s = flat_sample(W, H, K, seed=7)
    cv2.imwrite(str(tmp_path / "rgb.png"), cv2.cvtColor(s.rgb, cv2.COLOR_RGB2BGR))
    masks = []
    for k in range(K):
        masks.append(str(tmp_path / f"m{k}.png"))
        cv2.imwrite(masks[-1], s.amodal[k].astype(np.uint8) * 255)
    cv2.imwrite(str(tmp_path / "d.png"), np.rint(s.depth[0] * 1000).astype(np.uint16))
    weights = save_model(_model(True), tmp_path / "w.safetensors")
    out = tmp_path / "out"
    (out).mkdir()
    (out / "layer_9.png").write_bytes(b"stale")
    argv = ["predict", str(tmp_path / "rgb.png"), "--masks", *masks, "--weights", str(weights),
            "--masks-kind", "amodal"]  # fmt: skip
    assert main([*argv, "--depth", str(tmp_path / "d.png"), "--out", str(out)]) == 0
    info = json.loads((out / "predict.json").read_text())
    assert info["metric"] is True and info["depth_kind"] == "depth"
    depth = np.load(out / "depth.npy")
    assert depth.shape == (K, H, W)
    mm = cv2.imread(str(out / "depth_1.png"), cv2.IMREAD_UNCHANGED)
    assert mm.dtype == np.uint16 and abs(int(np.median(mm)) - np.median(depth[0]) * 1000) < 2
    np.testing.assert_array_equal(cv2.imread(str(out / "amodal_2.png"), 0) > 0, s.amodal[1])
    assert not (out / "layer_9.png").exists()  # stale results of an earlier run are gone
    for name in info["files"]:
        assert (out / name).is_file()
    # disparity kind: no metric files; a scale without a depth, a file as --out: one line
    np.save(tmp_path / "disp.npy", (1.0 / s.depth[0]).astype(np.float32))
    assert main([*argv, "--depth", str(tmp_path / "disp.npy"), "--depth-kind", "disparity",
                 "--out", str(out)]) == 0  # fmt: skip
    assert not (out / "depth.npy").exists()
    assert main([*argv, "--depth-scale", "1000", "--out", str(tmp_path / "x")]) == 2
    assert main([*argv, "--out", str(tmp_path / "rgb.png" / "sub")]) == 2
    assert not (tmp_path / "x").exists()


def test_sensor_seed_is_the_samples_generator_seed(data: Path) -> None:
    """The simulated sensor draws from the sample's own seed, so a dataset rendered again
    with depths that differ by round-off gets the same holes and noise draws."""
    import dataclasses

    from amodal_depth.data.format import read_manifest, read_sample, split_ids
    from amodal_depth.observations import ObservedSource, sensor_seed

    manifest = read_manifest(data)
    sample = read_sample(data, split_ids(manifest, "test", data)[0], manifest)
    assert sensor_seed(sample) == sample.meta["seed"]
    nudged = dataclasses.replace(sample, depth=np.where(sample.depth > 0, sample.depth + 1e-4, 0))
    a, _ = ObservedSource("gt-corrupted")(sample)
    b, _ = ObservedSource("gt-corrupted")(nudged)
    assert np.array_equal(a > 0, b > 0)  # the same holes
    assert np.abs(a - b)[(a > 0) & (b > 0)].max() < 0.01  # the same draws, on a nudged depth
    no_meta = dataclasses.replace(sample, meta={})  # other layouts: a checksum of the depth
    assert sensor_seed(no_meta) != sensor_seed(dataclasses.replace(no_meta, depth=nudged.depth))
