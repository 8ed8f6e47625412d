"""Bad inputs against every entry point (docs/robustness.md): each case is one row of the
table; the CLI must exit with the recorded code and one-line message, never a traceback."""

# ruff: noqa: E501 - the case table keeps one bad input per line
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from amodal_depth.cli import main
from amodal_depth.errors import UserError
from conftest import flat_sample, write_flat_dataset  # tests/ is on sys.path under pytest

W, H = 40, 30
ROOT = Path(__file__).resolve().parents[1]
ROOM = ROOT / "examples" / "room"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An image, its 3 amodal masks, tiny random weights and a gallery of bad files."""
    import torch

    from amodal_depth.config import preset
    from amodal_depth.models import build_model
    from amodal_depth.models.checkpoints import save_model

    d = tmp_path_factory.mktemp("robust")
    s = flat_sample(W, H, 3, seed=1)
    e: dict[str, Path] = {"dir": d}
    cv2.imwrite(str(d / "rgb.png"), cv2.cvtColor(s.rgb, cv2.COLOR_RGB2BGR))
    e["image"] = d / "rgb.png"
    for k in range(3):
        e[f"m{k + 1}"] = d / f"m{k + 1}.png"
        cv2.imwrite(str(e[f"m{k + 1}"]), s.amodal[k].astype(np.uint8) * 255)
    torch.manual_seed(0)
    cfg = preset("quick", "ade").model
    save_model(build_model(cfg), d / "k3.safetensors")
    e["weights"] = d / "k3.safetensors"
    small = np.zeros((H // 2, W // 2), np.uint8)
    small[2:6, 2:6] = 255
    files = {
        "small_mask.png": small,
        "empty_mask.png": np.zeros((H, W), np.uint8),
        "full_mask.png": np.full((H, W), 255, np.uint8),
        "grey_mask.png": (s.amodal[0] * 200 + 30).astype(np.uint8),
        "rgba.png": np.dstack([s.rgb, np.full((H, W), 128, np.uint8)]),
        "rgb16.png": s.rgb.astype(np.uint16) * 257,
        "depth_small.png": np.full((H // 2, W // 2), 3000, np.uint16),
        "depth_rgb.png": np.full((H, W, 3), 100, np.uint8),
    }
    for name, arr in files.items():
        cv2.imwrite(str(d / name), arr)
        e[name] = d / name
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10)
    (d / "notes.txt").write_text("not an image\n")
    (d / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (d / "bad.safetensors").write_bytes(b"not a safetensors file")
    (d / "model.pt").write_bytes(b"\x80\x04\x95pickle")
    np.save(d / "depth_neg.npy", np.full((H, W), -1.0, np.float32))
    np.save(d / "depth_nan.npy", np.full((H, W), np.nan, np.float32))
    np.save(d / "depth_ok.npy", np.full((H, W), 3.0, np.float32))
    (d / "a_file").write_text("x")
    for name in ("corrupt.png", "notes.txt", "corrupt.npy", "bad.safetensors", "model.pt",
                 "depth_neg.npy", "depth_nan.npy", "depth_ok.npy", "a_file"):  # fmt: skip
        e[name] = d / name
    e["data"] = write_flat_dataset(d / "data", num=4, width=W, height=H)
    e["data2"] = write_flat_dataset(d / "data2", num=4, width=W, height=H, num_layers=2)
    assert main([str(a) for a in predict_argv(e, d / "pred")]) == 0
    e["pred"] = d / "pred"
    for name, broken in (("pred_bad_npy", "disparity.npy"), ("pred_bad_json", "predict.json")):
        shutil.copytree(e["pred"], d / name)
        (d / name / broken).write_bytes(b"{junk")
        e[name] = d / name
    np.save(d / "depth_3d.npy", np.ones((2, H, W), np.float32))
    np.save(d / "depth_inf.npy", np.full((H, W), np.inf, np.float32))
    e["depth_3d.npy"], e["depth_inf.npy"] = d / "depth_3d.npy", d / "depth_inf.npy"
    return e


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code (argparse's SystemExit included) and the last line of stderr."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as ex:
        rc = int(ex.code or 0)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, (err[-1] if err else "")


def predict_argv(e: dict[str, Path], out: Path, *extra: object, masks: list | None = None) -> list:
    m = masks if masks is not None else [e["m1"], e["m2"], e["m3"]]
    return ["predict", e["image"], "--masks-kind", "amodal", "--masks", *m,
            "--weights", e["weights"], "--out", out, *extra]  # fmt: skip


# ------------------------------------------------------------------------------ CLI table
# id -> (argv builder, exit code, text the last stderr line must contain)
Builder = Callable[[dict[str, Path], Path], list]
P = predict_argv
# fmt: off
CLI_CASES: dict[str, tuple[Builder, int, str]] = {
    # predict
    "predict_mask_other_size": (lambda e, t: P(e, t / "o", masks=[e["small_mask.png"], e["m2"], e["m3"]]), 2, "masks must have the image's size"),
    "predict_empty_mask": (lambda e, t: P(e, t / "o", masks=[e["empty_mask.png"], e["m2"], e["m3"]]), 2, 'mask is empty'),
        "predict_identical_masks": (lambda e, t: P(e, t / "o", masks=[e["m1"], e["m1"], e["m3"]]), 2, 'masks 1 and 2 are identical'),
                "predict_corrupt_image": (lambda e, t: ["predict", e["corrupt.png"], "--masks-kind", "amodal", "--masks", e["m1"], e["m2"], e["m3"], "--weights", e["weights"], "--out", t / "o"], 2, 'not an image OpenCV can read'),
    "predict_text_file_as_image": (lambda e, t: ["predict", e["notes.txt"], "--masks-kind", "amodal", "--masks", e["m1"], e["m2"], e["m3"], "--weights", e["weights"], "--out", t / "o"], 2, 'not an image OpenCV can read'),
    "predict_missing_image": (lambda e, t: ["predict", t / "nope.png", "--masks-kind", "amodal", "--masks", e["m1"], e["m2"], e["m3"], "--weights", e["weights"], "--out", t / "o"], 2, 'no such image file'),
    "predict_missing_mask": (lambda e, t: P(e, t / "o", masks=[t / "nope.png", e["m2"], e["m3"]]), 2, 'no such mask file'),
    "predict_text_file_as_mask": (lambda e, t: P(e, t / "o", masks=[e["notes.txt"], e["m2"], e["m3"]]), 2, 'masks are 0/255 PNGs'),
    "predict_fewer_masks_than_k": (lambda e, t: P(e, t / "o", masks=[e["m1"], e["m2"]]), 2, 'needs 3 masks (one per object); got 2'),
    "predict_more_masks_than_k": (lambda e, t: P(e, t / "o", masks=[e["m1"], e["m2"], e["m3"], e["grey_mask.png"]]), 2, 'needs 3 masks (one per object); got 4'),
    "predict_order_not_permutation": (lambda e, t: P(e, t / "o", "--order", "1,1,2"), 2, 'is not a permutation of 1..3'),
    "predict_order_not_numbers": (lambda e, t: P(e, t / "o", "--order", "a,b,c"), 2, '--order must be mask numbers'),
    "predict_order_out_of_range": (lambda e, t: P(e, t / "o", "--order", "1,2,4"), 2, 'is not a permutation of 1..3'),
    "predict_depth_other_size": (lambda e, t: P(e, t / "o", "--depth", e["depth_small.png"]), 2, 'must be HxW = 30x40 like the image'),
    "predict_depth_negative": (lambda e, t: P(e, t / "o", "--depth", e["depth_neg.npy"]), 2, 'negative values; holes must be 0 or NaN'),
    "predict_depth_all_nan": (lambda e, t: P(e, t / "o", "--depth", e["depth_nan.npy"]), 2, 'only 0 valid pixels'),
    "predict_depth_rgb_png": (lambda e, t: P(e, t / "o", "--depth", e["depth_rgb.png"]), 2, 'a depth PNG has one channel'),
    "predict_depth_corrupt_npy": (lambda e, t: P(e, t / "o", "--depth", e["corrupt.npy"]), 2, 'not a readable .npy array'),
    "predict_depth_scale_zero": (lambda e, t: P(e, t / "o", "--depth", e["depth_ok.npy"], "--depth-scale", "0"), 2, '--depth-scale must be a positive number'),
    "predict_out_under_a_file": (lambda e, t: P(e, e["a_file"] / "o"), 2, 'exists and is not a directory'),
    "predict_weights_missing": (lambda e, t: P(e, t / "o")[:-4] + ["--weights", t / "none.safetensors", "--out", t / "o"], 2, 'does not exist'),
    "predict_weights_corrupt": (lambda e, t: P(e, t / "o")[:-4] + ["--weights", e["bad.safetensors"], "--out", t / "o"], 2, 'is not a readable safetensors file'),
    "predict_weights_pickle": (lambda e, t: P(e, t / "o")[:-4] + ["--weights", e["model.pt"], "--out", t / "o"], 2, 'looks like a PyTorch pickle checkpoint'),
    "predict_size_not_number": (lambda e, t: P(e, t / "o", "--size", "big"), 2, 'argument --size'),
    "predict_masks_kind_unknown": (lambda e, t: P(e, t / "o", "--masks-kind", "both"), 2, 'argument --masks-kind: invalid choice'),
    # reconstruct
    "reconstruct_intrinsics_three_numbers": (lambda e, t: ["reconstruct", e["pred"], "--out", t / "r", "--intrinsics", "1,2,3"], 2, 'give four numbers fx,fy,cx,cy'),
    "reconstruct_intrinsics_negative": (lambda e, t: ["reconstruct", e["pred"], "--out", t / "r", "--intrinsics=-30,30,20,15"], 2, 'must all be positive'),
    "reconstruct_intrinsics_not_numbers": (lambda e, t: ["reconstruct", e["pred"], "--out", t / "r", "--intrinsics", "a,b,c,d"], 2, 'give four numbers fx,fy,cx,cy'),
    "reconstruct_fov_zero": (lambda e, t: ["reconstruct", e["pred"], "--out", t / "r", "--fov", "0"], 2, 'must be in (0, 180) deg'),
    "reconstruct_fov_200": (lambda e, t: ["reconstruct", e["pred"], "--out", t / "r", "--fov", "200"], 2, 'must be in (0, 180) deg'),
    "reconstruct_dir_without_predict_json": (lambda e, t: ["reconstruct", e["dir"], "--out", t / "r"], 2, 'no predict.json'),
    "reconstruct_missing_image": (lambda e, t: ["reconstruct", t / "nope.png", "--masks", e["m1"], "--out", t / "r"], 2, 'no such predict folder or image file'),
    "reconstruct_out_under_a_file": (lambda e, t: ["reconstruct", e["pred"], "--out", e["a_file"] / "r"], 2, "a_file exists and is not a directory"),
    # evaluate
    "evaluate_out_is_a_directory": (lambda e, t: ["evaluate", "--weights", e["weights"], "--data", e["data"], "--out", t], 2, '--out'),
    "evaluate_data_missing": (lambda e, t: ["evaluate", "--weights", e["weights"], "--data", t / "none", "--out", t / "e.json"], 2, 'no such dataset directory'),
    "evaluate_split_missing": (lambda e, t: ["evaluate", "--weights", e["weights"], "--data", e["data"], "--split", "nosuch", "--out", t / "e.json"], 2, "dataset has no samples in split 'nosuch'"),
    "evaluate_max_images_zero": (lambda e, t: ["evaluate", "--weights", e["weights"], "--data", e["data"], "--max-images", "0", "--out", t / "e.json"], 2, '--max-images must be at least 1'),
    "evaluate_unknown_reference": (lambda e, t: ["evaluate", "--reference", "oracle", "--data", e["data"], "--out", t / "e.json"], 2, "unknown reference 'oracle'"),
    "evaluate_observed_unknown_kind": (lambda e, t: ["evaluate", "--weights", e["weights"], "--data", e["data"], "--observed", "lidar", "--out", t / "e.json"], 2, '--observed must be one of'),
    "evaluate_model_k_mismatch": (lambda e, t: ["evaluate", "--weights", e["weights"], "--data", e["data2"], "--out", t / "e.json"], 2, 'the model predicts K = 3 layers but'),
    "evaluate_out_under_a_file": (lambda e, t: ["evaluate", "--weights", e["weights"], "--data", e["data"], "--out", e["a_file"] / "e.json"], 2, '--out'),
    # data
    "data_generate_num_zero": (lambda e, t: ["data", "generate", "--out", t / "g", "--num", "0"], 2, '--num must be >= 1, got 0'),
    "data_generate_negative_seed": (lambda e, t: ["data", "generate", "--out", t / "g", "--num", "1", "--seed", "-1", "--size", "32x24"], 2, '--seed must be >= 0'),
    "data_generate_size_not_wxh": (lambda e, t: ["data", "generate", "--out", t / "g", "--num", "1", "--size", "big"], 2, 'size must look like 224x168'),
    "data_generate_negative_num": (lambda e, t: ["data", "generate", "--out", t / "g", "--num", "-3"], 2, '--num must be >= 1, got -3'),
    "data_verify_missing_dir": (lambda e, t: ["data", "verify", t / "none"], 2, 'no such dataset directory'),
    "data_show_missing_dir": (lambda e, t: ["data", "show", t / "none", "--out", t / "s.png"], 2, 'no such dataset directory'),
    # train
    "train_unknown_variant": (lambda e, t: ["train", "--variant", "nosuch", "--data", e["data"], "--out", t / "run"], 2, "unknown variant 'nosuch'"),
    "train_unknown_preset": (lambda e, t: ["train", "--variant", "ade", "--preset", "huge", "--data", e["data"], "--out", t / "run"], 2, "unknown preset 'huge'"),
    "train_missing_data_dir": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", t / "none", "--out", t / "run"], 2, 'no such dataset directory'),
    "train_weights_missing": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--weights", t / "none.safetensors", "--out", t / "run"], 2, 'no such file; give a project .safetensors file'),
    "train_steps_negative": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--steps", "-5", "--out", t / "run"], 2, 'steps, batch size and lr must be positive'),
    "completion_evaluate_missing_data": (lambda e, t: ["completion", "evaluate", "--weights", ROOT / "weights" / "completion.safetensors", "--data", t / "none", "--out", t / "c.json"], 2, 'no such dataset directory'),
    "reconstruct_depth_range_reversed": (lambda e, t: ["reconstruct", e["pred"], "--out", t / "r", "--depth-range", "5,1"], 2, "far must exceed near"),
    "reconstruct_median_depth_negative": (lambda e, t: ["reconstruct", e["pred"], "--out", t / "r", "--median-depth", "-1"], 2, "must be a positive number of metres"),
    "reconstruct_known_depth_outside_image": (lambda e, t: ["reconstruct", e["pred"], "--out", t / "r", "--known-depth", "500,500,2"], 2, "pixel outside the 40x30 image"),
    "data_verify_not_a_dataset": (lambda e, t: ["data", "verify", e["dir"]], 2, "no manifest.json; not an amodal-layers dataset"),
    "predict_out_is_a_file": (lambda e, t: P(e, e["a_file"]), 2, "exists and is not a directory"),
    "predict_instance_png_too_few_ids": (lambda e, t: P(e, t / "o", masks=[e["m1"]]), 2, "needs 3 masks (one per object); got 1"),
    "train_weights_other_variant": (lambda e, t: ["train", "--variant", "ade_mha", "--preset", "quick", "--data", e["data"], "--steps", "2", "--weights", e["weights"], "--out", t / "run"], 2, "is a ade model; train it with --variant ade"),
    "train_grow_without_weights": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--steps", "2", "--grow-after", "1", "--out", t / "run"], 2, "--grow-after deepens the model of --weights; give --weights too"),
    "train_grow_after_out_of_range": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--steps", "2", "--weights", e["weights"], "--grow-after", "4", "--out", t / "run"], 2, "blocks to grow after must be distinct indices in [0, 4), got [4]"),
    "train_grow_lr_scale_zero": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--steps", "2", "--weights", e["weights"], "--grow-after", "1", "--grow-lr-scale", "0", "--out", t / "run"], 2, "--grow-lr-scale must be a number > 0, got 0.0"),
    "train_grow_lr_scale_without_grow_after": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--steps", "2", "--weights", e["weights"], "--grow-lr-scale", "10", "--out", t / "run"], 2, "--grow-lr-scale scales the blocks --grow-after inserts; give --grow-after too"),
    "train_observed_model_without_observed_depth": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--steps", "2", "--observed-model", e["weights"], "--out", t / "run"], 2, "--observed-model observes the training items for a model that reads a depth; add --observed-depth"),
    "train_weights_corrupt": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--steps", "2", "--weights", e["bad.safetensors"], "--out", t / "run"], 2, "is not a readable safetensors file"),
    "predict_size_zero": (lambda e, t: P(e, t / "o", "--size", "0"), 2, "input_size must be >= 14 pixels, got 0"),
    "predict_size_13": (lambda e, t: P(e, t / "o", "--size", "13"), 2, "input_size must be >= 14 pixels, got 13"),
    "predict_depth_text_file": (lambda e, t: P(e, t / "o", "--depth", e["notes.txt"]), 2, "give a .png, .npy, .exr file"),
    "predict_depth_missing": (lambda e, t: P(e, t / "o", "--depth", t / "none.npy"), 2, "no such file"),
    "predict_depth_3d_npy": (lambda e, t: P(e, t / "o", "--depth", e["depth_3d.npy"]), 2, "expected an HxW array, got shape (2, 30, 40)"),
    "predict_depth_all_inf": (lambda e, t: P(e, t / "o", "--depth", e["depth_inf.npy"]), 2, "only 0 valid pixels"),
    "predict_disparity_negative": (lambda e, t: P(e, t / "o", "--depth", e["depth_neg.npy"], "--depth-kind", "disparity"), 2, "negative values"),
    "evaluate_batch_size_zero": (lambda e, t: ["evaluate", "--weights", e["weights"], "--data", e["data"], "--batch-size", "0", "--out", t / "e.json"], 2, "--batch-size must be at least 1"),
    "evaluate_no_predictor": (lambda e, t: ["evaluate", "--data", e["data"], "--out", t / "e.json"], 2, "give exactly one of --run RUN, --weights FILE or --reference NAME"),
    "evaluate_run_missing": (lambda e, t: ["evaluate", "--run", t / "norun", "--data", e["data"], "--out", t / "e.json"], 2, "no such run directory"),
    "evaluate_weights_corrupt": (lambda e, t: ["evaluate", "--weights", e["bad.safetensors"], "--data", e["data"], "--out", t / "e.json"], 2, "is not a readable safetensors file"),
    "evaluate_csv_is_a_directory": (lambda e, t: ["evaluate", "--weights", e["weights"], "--data", e["data"], "--csv", t, "--out", t / "e.json"], 2, "--csv"),
    "train_batch_size_zero": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--batch-size", "0", "--out", t / "run"], 2, "must be positive"),
    "train_lr_zero": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--lr", "0", "--out", t / "run"], 2, "must be positive"),
    "train_roll_too_large": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--roll-deg", "90", "--out", t / "run"], 2, "--roll-deg must be in"),
    "train_anchored_weight_negative": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--anchored-weight", "-1", "--out", t / "run"], 2, "--anchored-weight must be a number >= 0"),
    "train_init_missing": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--init", t / "none.pth", "--out", t / "run"], 2, "no such file; give an official Depth Anything V2 .pth"),
    "train_out_is_a_file": (lambda e, t: ["train", "--variant", "ade", "--preset", "quick", "--data", e["data"], "--steps", "1", "--out", e["a_file"]], 2, "--out"),
    "data_generate_hidden_min_above_max": (lambda e, t: ["data", "generate", "--out", t / "g", "--num", "1", "--size", "32x24", "--hidden-min", "0.8", "--hidden-max", "0.2"], 2, "need 0 <= --hidden-min < --hidden-max < 1"),
    "data_generate_zero_objects": (lambda e, t: ["data", "generate", "--out", t / "g", "--num", "1", "--size", "32x24", "--num-objects", "0"], 2, "--num-objects must be >= 1"),
    "data_generate_workers_zero": (lambda e, t: ["data", "generate", "--out", t / "g", "--num", "1", "--size", "32x24", "--workers", "0"], 2, "--workers must be >= 1"),
    "data_generate_size_zero": (lambda e, t: ["data", "generate", "--out", t / "g", "--num", "1", "--size", "0x0"], 2, "size must be positive"),
    "data_generate_size_too_small": (lambda e, t: ["data", "generate", "--out", t / "g", "--num", "1", "--size", "4x4"], 2, "is too small (at least 16x12)"),
    "data_generate_out_is_a_file": (lambda e, t: ["data", "generate", "--out", e["a_file"], "--num", "1", "--size", "32x24"], 2, "exists and is not a directory"),
    "data_generate_mesh_dir_missing": (lambda e, t: ["data", "generate", "--out", t / "g", "--num", "1", "--size", "32x24", "--mesh-dir", t / "nomesh"], 2, "not a directory"),
    "data_show_index_out_of_range": (lambda e, t: ["data", "show", e["data"], "--index", "99", "--out", t / "s.png"], 2, "--index 99 is out of range"),
    "data_show_split_missing": (lambda e, t: ["data", "show", e["data"], "--split", "nosuch", "--out", t / "s.png"], 2, "dataset has no samples in split 'nosuch'"),
    "data_show_out_under_a_file": (lambda e, t: ["data", "show", e["data"], "--out", e["a_file"] / "s.png"], 2, "does not exist"),
    "reproduce_seeds_not_numbers": (lambda e, t: ["reproduce", "--preset", "quick", "--out", t / "rep", "--seeds", "a"], 2, "expected integers like 0,1,2"),
    "reconstruct_known_depth_not_numbers": (lambda e, t: ["reconstruct", e["pred"], "--out", t / "r", "--known-depth", "a,b,c"], 2, "expected U,V,METRES"),
    "reconstruct_image_without_masks": (lambda e, t: ["reconstruct", e["image"], "--out", t / "r"], 2, "is an image: give the amodal masks with --masks"),
    "reconstruct_corrupt_disparity": (lambda e, t: ["reconstruct", e["pred_bad_npy"], "--out", t / "r"], 2, "disparity.npy: cannot read it"),
    "reconstruct_corrupt_predict_json": (lambda e, t: ["reconstruct", e["pred_bad_json"], "--out", t / "r"], 2, "predict.json: unreadable"),
    "completion_train_missing_data": (lambda e, t: ["completion", "train", "--data", t / "none", "--out", t / "ct"], 2, "no such dataset directory"),
    "demo_port_out_of_range": (lambda e, t: ["demo", "--port", "99999"], 2, "--port 99999: give a port in 1..65535"),
}
# fmt: on
# cases that were raw tracebacks until fixed (keep the mechanism for new finds)
CLI_BUGS: dict[str, str] = {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=CLI_BUGS[n]))
        if n in CLI_BUGS
        else n
        for n in CLI_CASES
    ],
)
def test_cli_bad_input(
    name: str, env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, code, text = CLI_CASES[name]
    rc, last = cli(build(env, tmp_path), capsys)
    assert rc == code, last
    assert text in last, last
    assert last.startswith("amodal-depth"), last  # the one-line message, no traceback


# ------------------------------------------------------------------------------ CLI, other outcomes
def test_predict_all_one_mask_runs(
    env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An object covering the whole frame is accepted (layer 2 then has no static pixel)."""
    rc, _ = cli(P(env, tmp_path / "o", masks=[env["full_mask.png"], env["m2"], env["m3"]]), capsys)
    assert rc == 0


def test_predict_all_one_mask_is_flagged(
    env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = P(env, tmp_path / "o", masks=[env["full_mask.png"], env["m2"], env["m3"]])
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as ex:
        rc = int(ex.code or 0)
    err = capsys.readouterr().err
    assert rc == 0 and "warning" in err and "covers the whole image" in err


def test_predict_non_binary_mask_warns(
    env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    m = cv2.imread(str(env["m1"]), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    grey = np.clip(m * 0.8 + rng.integers(0, 40, m.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    argv = P(env, tmp_path / "o", masks=[tmp_path / "grey.png", env["m2"], env["m3"]])
    assert main([str(a) for a in argv]) == 0
    err = capsys.readouterr().err
    assert "is not a binary mask; thresholded at 127.5" in err


@pytest.mark.parametrize("image", ["rgba.png", "rgb16.png"])
def test_predict_rgba_and_16_bit_images_run(
    image: str, env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = P(env, tmp_path / "o")
    argv[1] = env[image]
    rc, last = cli(argv, capsys)
    assert rc == 0, last
    assert np.load(tmp_path / "o" / "disparity.npy").shape == (3, H, W)


def test_predict_overlapping_visible_masks(
    env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m1 = cv2.imread(str(env["m1"]), cv2.IMREAD_GRAYSCALE)
    m2 = cv2.imread(str(env["m2"]), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(tmp_path / "ov.png"), m1 | m2)
    argv = ["predict", env["image"], "--masks", env["m1"], tmp_path / "ov.png", env["m3"],
            "--weights", env["weights"], "--out", tmp_path / "o"]  # fmt: skip
    rc, last = cli(argv, capsys)
    assert rc == 2 and "visible masks 1 and 2 overlap on" in last, last


def test_predict_removes_stale_files(
    env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "layer_5.png").write_bytes(b"old")
    (out / "depth_2.png").write_bytes(b"old")
    rc, last = cli(P(env, out), capsys)
    assert rc == 0, last
    assert not (out / "layer_5.png").exists() and not (out / "depth_2.png").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; chmod does not bite")
def test_predict_unwritable_out(
    env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        rc, last = cli(P(env, locked / "o"), capsys)
    finally:
        locked.chmod(0o700)
    assert rc == 2 and last.startswith("amodal-depth: error: --out"), last


def test_data_generate_rerun_smaller_num_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["data", "generate", "--out", tmp_path / "g", "--size", "32x24"]
    assert cli([*base, "--num", "3"], capsys)[0] == 0
    rc, last = cli([*base, "--num", "2"], capsys)
    assert rc == 2 and "already holds 1 samples beyond --num 2" in last, last
    rc, last = cli([*base, "--num", "3", "--seed", "5"], capsys)
    assert rc == 2 and "generated with other parameters (seed)" in last, last
    rc, last = cli([*base, "--num", "3", "--num-objects", "2"], capsys)
    assert rc == 2 and "generated with other parameters (num_objects)" in last, last
    assert cli(["data", "verify", tmp_path / "g"], capsys)[0] == 0  # still whole


def test_train_on_two_layer_data_makes_a_two_layer_model(
    env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from amodal_depth.models.checkpoints import load_model

    argv = ["train", "--variant", "ade", "--preset", "quick", "--data", env["data2"],
            "--steps", "2", "--out", tmp_path / "run"]  # fmt: skip
    rc, last = cli(argv, capsys)
    assert rc == 0, last
    weights = sorted((tmp_path / "run").rglob("*.safetensors"))
    assert weights, list((tmp_path / "run").iterdir())
    assert load_model(weights[-1]).config.num_layers == 2


# ------------------------------------------------------------------------------ Python API
@pytest.fixture(scope="module")
def api() -> dict:
    import torch

    from amodal_depth.config import preset
    from amodal_depth.models import build_model

    torch.manual_seed(0)
    s = flat_sample(W, H, 3, seed=1)
    return {"model": build_model(preset("quick", "ade").model), "image": s.rgb,
            "amodal": s.amodal, "visible": s.visible}  # fmt: skip


COMPLETION = ROOT / "weights" / "completion.safetensors"


def test_api_predict_layers_float_image_rejected(api: dict) -> None:
    with pytest.raises(UserError, match="image must be an HxWx3 uint8 RGB array"):
        api["model"].predict_layers(api["image"].astype(np.float32), api["amodal"])


def test_api_predict_layers_grey_image_rejected(api: dict) -> None:
    with pytest.raises(UserError, match="image must be an HxWx3 uint8 RGB array"):
        api["model"].predict_layers(api["image"][..., 0], api["amodal"])


def test_api_predict_layers_negative_strides_work(api: dict) -> None:
    bgr = np.ascontiguousarray(api["image"][..., ::-1])
    a = api["model"].predict_layers(bgr[..., ::-1], api["amodal"][:, ::-1][:, ::-1])
    b = api["model"].predict_layers(api["image"], api["amodal"])
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_api_predict_layers_read_only_arrays_work(api: dict) -> None:
    import warnings

    image, masks = api["image"].copy(), api["amodal"].copy()
    image.setflags(write=False)
    masks.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = api["model"].predict_layers(image, masks)
    assert out.shape == (3, H, W) and np.isfinite(out).all()


def test_api_predict_layers_wrong_k_rejected(api: dict) -> None:
    with pytest.raises(UserError, match=r"masks must be \[K,H,W\] = \[3,30,40\]"):
        api["model"].predict_layers(api["image"], api["amodal"][:2])


def test_api_predict_layers_2d_mask_rejected(api: dict) -> None:
    with pytest.raises(UserError, match=r"got \[30, 40\]"):
        api["model"].predict_layers(api["image"], api["amodal"][0])


def test_api_predict_layers_nan_mask_rejected(api: dict) -> None:
    masks = api["amodal"].astype(np.float32)
    masks[0, 0, 0] = np.nan
    with pytest.raises(UserError):
        api["model"].predict_layers(api["image"], masks)


def test_api_predict_layers_empty_mask_rejected(api: dict) -> None:
    masks = api["amodal"].copy()
    masks[1] = False
    with pytest.raises(UserError):
        api["model"].predict_layers(api["image"], masks)


@pytest.mark.skipif(not COMPLETION.is_file(), reason="needs weights/completion.safetensors")
def test_api_complete_masks_empty_mask_rejected(api: dict) -> None:
    from amodal_depth.completion.api import complete_masks

    v = api["visible"].copy()
    v[1] = False
    with pytest.raises(UserError, match=r"visible mask 2 \(1-based\) is empty"):
        complete_masks(api["image"], v, COMPLETION)


@pytest.mark.skipif(not COMPLETION.is_file(), reason="needs weights/completion.safetensors")
def test_api_complete_masks_overlapping_masks_rejected(api: dict) -> None:
    from amodal_depth.completion.api import complete_masks

    v = api["visible"].copy()
    v[1] |= v[0]
    with pytest.raises(UserError, match="visible masks 1 and 2 overlap on"):
        complete_masks(api["image"], v, COMPLETION)


@pytest.mark.skipif(not COMPLETION.is_file(), reason="needs weights/completion.safetensors")
def test_api_complete_masks_non_binary_rejected(api: dict) -> None:
    from amodal_depth.completion.api import complete_masks

    with pytest.raises(UserError, match="found the value 7"):
        complete_masks(api["image"], api["visible"].astype(np.uint8) * 7, COMPLETION)


def test_api_complete_masks_rgba_rejected(api: dict) -> None:
    from amodal_depth.completion.api import complete_masks

    rgba = np.dstack([api["image"], api["image"][..., 0]])
    with pytest.raises(UserError, match="drop alpha"):
        complete_masks(rgba, api["visible"], COMPLETION)


def test_api_complete_masks_missing_weights(api: dict, tmp_path: Path) -> None:
    from amodal_depth.completion.api import complete_masks

    with pytest.raises(UserError, match="do not exist"):
        complete_masks(api["image"], api["visible"], tmp_path / "none.safetensors")


def test_api_depth_metrics_empty_mask_gives_nan() -> None:
    from amodal_depth.metrics import depth_metrics

    g = np.full((10, 10), 2.0)
    m = depth_metrics(g, g, np.zeros((10, 10), bool))
    assert all(np.isnan(v) for v in m.values() if isinstance(v, float)), m


def test_api_depth_metrics_skips_nan_pixels() -> None:
    from amodal_depth.metrics import depth_metrics

    g = np.arange(1.0, 101.0).reshape(10, 10)
    p, gt = g.copy(), g.copy()
    p[0, 0], gt[1, 1] = np.nan, np.nan
    m = depth_metrics(p, gt)
    assert m["delta1"] == 1.0 and m["rmse"] == pytest.approx(0.0, abs=1e-9)


def test_api_depth_metrics_shape_mismatch_rejected() -> None:
    from amodal_depth.metrics import depth_metrics

    with pytest.raises(ValueError, match=r"pred has shape \(10, 10\), gt \(5, 5\)"):
        depth_metrics(np.ones((10, 10)), np.ones((5, 5)))


# ------------------------------------------------------------------------------ demo callbacks
MODEL = ROOT / "weights" / "model.safetensors"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """(app module, DemoConfig on the committed weights, a folder of bad uploads)."""
    gr = pytest.importorskip("gradio", reason="the demo needs gradio (pip install -e .)")
    if not MODEL.is_file():
        pytest.skip("needs weights/model.safetensors")
    from amodal_depth.demo import app
    from amodal_depth.demo.pipeline import DemoConfig

    d = tmp_path_factory.mktemp("demo_bad")
    config = DemoConfig(weights=MODEL, rgbd_weights=d / "absent_rgbd.safetensors",
                        completion_weights=d / "absent_completion.safetensors",
                        out_root=d / "out", keep_results=2)  # fmt: skip
    h, w = cv2.imread(str(ROOM / "rgb.png")).shape[:2]
    small = np.zeros((h // 2, w // 2), np.uint8)
    small[3:9, 3:9] = 255
    cv2.imwrite(str(d / "small.png"), small)
    cv2.imwrite(str(d / "depth_small.png"), np.full((h // 2, w // 2), 2000, np.uint16))
    np.save(d / "depth_nan.npy", np.full((h, w), np.nan, np.float32))
    (d / "notes.txt").write_text("hello\n")
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 20)
    return app, config, d, gr


def _room_masks() -> list[str]:
    return [str(ROOM / f"amodal_{k}.png") for k in (1, 2, 3)]


DEMO_CASES: dict[str, tuple[Callable[[Path], dict], str]] = {
    # fmt: off
    "demo_no_image": (lambda d: {"image": None}, "upload an image first"),
    "demo_no_masks": (lambda d: {"masks": []}, "upload the masks"),
    "demo_two_masks_for_k3": (lambda d: {"masks": _room_masks()[:2]}, "needs 3 masks"),
    "demo_four_masks_for_k3": (
        lambda d: {"masks": [*_room_masks(), str(ROOM / "visible_1.png")]},
        "needs 3 masks",
    ),
    "demo_mask_other_size": (
        lambda d: {"masks": [str(d / "small.png"), *_room_masks()[1:]]},
        "masks must have the image's size",
    ),
    "demo_text_file_as_mask": (
        lambda d: {"masks": [str(d / "notes.txt"), *_room_masks()[1:]]},
        "a mask must be a .png file",
    ),
    "demo_corrupt_image": (
        lambda d: {"image": str(d / "corrupt.png")},
        "not an image OpenCV can read",
    ),
    "demo_text_file_as_image": (
        lambda d: {"image": str(d / "notes.txt")},
        "an image must be a .png / .jpg",
    ),
    "demo_depth_text_file": (
        lambda d: {"depth": str(d / "notes.txt")},
        "a depth map must be a .png / .npy / .exr file",
    ),
    "demo_depth_other_size": (
        lambda d: {"depth": str(d / "depth_small.png")},
        "resize it to the image first",
    ),
    "demo_depth_all_nan": (lambda d: {"depth": str(d / "depth_nan.npy")}, "valid pixels"),
    "demo_intrinsics_three_numbers": (lambda d: {"intrinsics": "1,2,3"}, "give four numbers"),
    "demo_fov_zero": (lambda d: {"fov": 0.0}, "field of view must be in"),
    "demo_hidden_colour_unknown": (lambda d: {"hidden": "rainbow"}, "hidden colour must be one of"),
    "demo_visible_without_completion_weights": (
        lambda d: {"kind": "visible"},
        "completion weights",
    ),
    # fmt: on
}


@pytest.mark.parametrize("name", list(DEMO_CASES))
def test_demo_bad_input(name: str, demo: tuple) -> None:
    app, config, d, gr = demo
    build, text = DEMO_CASES[name]
    args = {"image": str(ROOM / "rgb.png"), "masks": _room_masks(), "kind": "amodal",
            "depth": None, "intrinsics": "", "fov": 60.0, "hidden": "inpaint",
            "view": app.VIEWS[0]}  # fmt: skip
    args.update(build(d))
    with pytest.raises(gr.Error) as e:
        app.run_callback(config, *args.values())
    msg = str(e.value)
    assert "internal error" not in msg and "\n" not in msg, msg
    assert text in msg, msg
