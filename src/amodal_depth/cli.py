"""The `amodal-depth` command line. Thin by design: every subcommand parses its options and
calls one function of the public API; bad input surfaces as one line and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from amodal_depth.completion.cli import add_completion_commands
from amodal_depth.demo import add_demo_command
from amodal_depth.errors import UserError
from amodal_depth.reconstruct import add_reconstruct_command

Handler = Callable[[argparse.Namespace], int | None]


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 224x168, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def _names(names: Sequence[str]) -> str:
    """A registry's names as a metavar, {a,b,c}: --help lists them. Names are checked by the
    function the command calls (a one-line UserError naming the choices, exit code 2), not
    by argparse, so that the CLI and the Python API give the same error."""
    return "{" + ",".join(names) + "}"


# ---------------------------------------------------------------------------------- data
def _data_generate(a: argparse.Namespace) -> int:
    from amodal_depth.data.generate import GeneratorConfig, generate_dataset
    from amodal_depth.data.styles import default_splits

    cfg = GeneratorConfig(
        width=a.size[0],
        height=a.size[1],
        num_objects=a.num_objects,
        hidden_min=a.hidden_min,
        hidden_max=a.hidden_max,
        mesh_dir=a.mesh_dir,
        style=a.style,
        split_fractions=default_splits(a.style),
    )
    generate_dataset(a.out, a.num, seed=a.seed, config=cfg, workers=a.workers)
    return 0


def _data_verify(a: argparse.Namespace) -> int:
    from amodal_depth.data.verify import verify_dataset

    return 0 if verify_dataset(a.dir, workers=a.workers) else 1


def _data_show(a: argparse.Namespace) -> int:
    from amodal_depth.data.show import write_montage

    write_montage(a.dir, a.index, a.out, split=a.split)
    return 0


def _add_data(sub: argparse._SubParsersAction) -> None:
    from amodal_depth.data.styles import STYLE_NAMES

    p = sub.add_parser("data", help="generate, verify and look at amodal-layers datasets")
    dsub = p.add_subparsers(dest="data_cmd", required=True, metavar="{generate,verify,show}")

    g = dsub.add_parser(
        "generate",
        help="render a synthetic layered-occlusion dataset",
        description="Render indoor scenes with K mutually occluding objects into the "
        "amodal-layers format. Resumable: rerunning completes what is missing and gives the "
        "same files as one uninterrupted run, whatever the worker count.",
    )
    g.add_argument("--out", required=True, help="dataset root to create or complete")
    g.add_argument("--num", type=int, required=True, help="number of samples")
    g.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    g.add_argument("--size", type=_size, default=(224, 168), help="WxH (default 224x168)")
    g.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    g.add_argument("--num-objects", type=int, default=3, help="K, occluding objects (default 3)")
    g.add_argument("--hidden-min", type=float, default=0.10, help="min hidden fraction of o_2..o_K")
    g.add_argument("--hidden-max", type=float, default=0.60, help="max hidden fraction of o_2..o_K")
    g.add_argument(
        "--mesh-dir", default=None, help="folder of OBJ/PLY/GLB meshes to use as objects"
    )
    g.add_argument(
        "--style",
        choices=STYLE_NAMES,
        default="template",
        help="scene distribution: template (one room template, default), diverse "
        "(domain-randomised camera, room, lights, materials and objects: for training) or "
        "shifted (outside diverse's ranges, held-out shapes and textures: for evaluation "
        "only, every sample in the test split); see docs/data.md",
    )
    g.set_defaults(func=_data_generate)

    v = dsub.add_parser("verify", help="check every sample against the format and the physics")
    v.add_argument("dir", help="dataset root")
    v.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    v.set_defaults(func=_data_verify)

    s = dsub.add_parser("show", help="write a montage PNG of one sample")
    s.add_argument("dir", help="dataset root")
    s.add_argument("--index", type=int, default=0, help="position of the sample in the split")
    s.add_argument("--split", default=None, help="split to index into (default: all samples)")
    s.add_argument("--out", required=True, help="PNG file to write")
    s.set_defaults(func=_data_show)


# ---------------------------------------------------------------------------------- evaluate
def _evaluate(a: argparse.Namespace) -> int:
    from amodal_depth.evaluate import evaluate_cli

    r = evaluate_cli(
        run=a.run,
        weights=a.weights,
        data=a.data,
        split=a.split,
        out=a.out,
        reference=a.reference,
        csv_path=a.csv,
        max_images=a.max_images,
        batch_size=a.batch_size,
        fit_data=a.fit_data,
        observed=a.observed,
        align_to_gt=a.align_to_gt,
    )
    d, b = r["depth"], r["boundary"]
    print(
        f"{r['predictor']} on {r['split']} ({r['num_images']} images): "
        f"delta1 all {d['all']['delta1']}, invisible {d['invisible']['delta1']}; "
        f"RMSE all {d['all']['rmse']}, invisible {d['invisible']['rmse']}; "
        f"boundary F1 all {b['boundary_f1']}, hidden outline {b['boundary_f1_hidden_outline']}"
        f" -> {a.out}"
    )
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    from amodal_depth.references import MODEL_REFERENCES, REFERENCE_REGISTRY

    p = sub.add_parser(
        "evaluate",
        help="score a model or a reference predictor on a dataset split (docs/metrics.md)",
        description="Depth accuracy per layer and region (all, amodal, invisible) and "
        "cross-layer consistency (all, static), with the ground-truth consistency row, and "
        "depth-boundary F1 (all valid pixels, outline of the hidden part). "
        "Writes a JSON summary and a CSV with one row per image and layer "
        "(definitions: docs/metrics.md).",
    )
    # One of --run, --weights, --reference; --reference predicted_object_fill also takes
    # --run or --weights (checked by evaluate_cli, as one-line errors).
    src = p.add_argument_group("predictor (one of --run, --weights, --reference)")
    src.add_argument("--run", help="training run directory (uses RUN/model.safetensors)")
    src.add_argument("--weights", help="model weights file (.safetensors)")
    src.add_argument(
        "--reference",
        metavar=_names(REFERENCE_REGISTRY),
        help="a reference predictor instead of a model: "
        + "; ".join(f"{r.name}: {r.summary}" for r in REFERENCE_REGISTRY.values())
        + f" ({' / '.join(MODEL_REFERENCES)}: from the model given by --weights or --run)",
    )
    p.add_argument("--data", required=True, help="dataset root (amodal-layers format)")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--csv", default=None, help="per-image CSV (default: beside --out, .csv)")
    p.add_argument("--max-images", type=int, default=None, help="evaluate the first N only")
    p.add_argument(
        "--fit-data",
        default=None,
        help="with --reference mean_depth: fit the map on this dataset's train split "
        "(default --data; needed for an evaluation-only set such as --style shifted)",
    )
    p.add_argument("--batch-size", type=int, default=4, help="images per model call (default 4)")
    p.add_argument(
        "--observed",
        default=None,
        metavar="{gt,gt-corrupted,model:WEIGHTS}",
        help="give the model (or visible_only / object_fill) an observed depth of the visible "
        "scene: the true layer-1 depth, the same through simulated sensor corruption, or an "
        "RGB-only model's layer 1 (docs/observed-depth.md)",
    )
    p.add_argument(
        "--align-to-gt",
        action="store_true",
        help="with a metric --observed: score after per-layer alignment to the truth "
        "(default: the predicted metres as they are)",
    )
    p.set_defaults(func=_evaluate)


# --------------------------------------------------------------------------------- train
def _train(a: argparse.Namespace) -> int:
    import dataclasses

    from amodal_depth.config import finetune_from, preset
    from amodal_depth.train import train

    cfg = preset(a.preset, a.variant)
    if a.init and a.weights:
        raise UserError("give --init (an official checkpoint) or --weights (ours), not both")
    if a.init:
        cfg = finetune_from(cfg, a.init)
    if a.weights:
        cfg = dataclasses.replace(cfg, weights=a.weights)
    if a.grow_after:
        cfg = dataclasses.replace(cfg, grow_after=a.grow_after)
    if a.grow_lr_scale is not None:
        cfg = dataclasses.replace(cfg, grow_lr_scale=a.grow_lr_scale)
    if a.observed_depth:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, observed_depth=True))
    if a.observed_model:
        cfg = dataclasses.replace(cfg, observed_model=a.observed_model)
    if a.observed_model_share is not None:
        cfg = dataclasses.replace(cfg, observed_model_share=a.observed_model_share)
    if a.unguided_first_layer:
        cfg = dataclasses.replace(
            cfg, model=dataclasses.replace(cfg.model, unguided_first_layer=True)
        )
    # K comes from the data: a dataset made with --num-objects 2 trains a 2-layer model.
    from amodal_depth.data.format import read_manifest

    k = int(read_manifest(a.data)["num_layers"])
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, num_layers=k))
    overrides = {
        "steps": a.steps,
        "seed": a.seed,
        "batch_size": a.batch_size,
        "lr": a.lr,
        "log_every": a.log_every,
        "warmup_steps": a.warmup_steps,
        "roll_deg": a.roll_deg,
        "anchored_weight": a.anchored_weight,
        "anchored_grad_weight": a.anchored_grad_weight,
    }
    cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    run = train(cfg, a.data, a.out, resume=a.resume, device=a.device)
    print(f"trained {cfg.model.variant} ({cfg.preset} preset, {cfg.steps} steps) -> {run}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    from amodal_depth.config import PRESET_TABLE
    from amodal_depth.models.device import DEVICE_CHOICES
    from amodal_depth.models.variants import VARIANTS
    from amodal_depth.runs import CONFIG_NAME, DONE_NAME, LOG_NAME, STATE_NAME, TB_DIR, WEIGHTS_NAME

    presets = "; ".join(f"{s.name}: {s.summary}" for s in PRESET_TABLE.values())
    files = ", ".join((CONFIG_NAME, WEIGHTS_NAME, STATE_NAME, LOG_NAME, f"{TB_DIR}/"))
    p = sub.add_parser(
        "train",
        help="train one ADE variant on an amodal-layers dataset",
        description=f"Train a variant from a preset ({presets}). Works under torchrun "
        f"--nproc_per_node N (DDP). Writes RUN/{files} and {DONE_NAME} (docs/training.md).",
    )
    p.add_argument(
        "--variant", required=True, metavar=_names(VARIANTS),
        help="model variant: " + "; ".join(f"{v.name}: {v.summary}" for v in VARIANTS.values()),
    )  # fmt: skip
    p.add_argument("--data", required=True, help="dataset root (amodal-layers format)")
    p.add_argument("--out", required=True, help="run directory to create (or to resume)")
    p.add_argument(
        "--preset", metavar=_names(PRESET_TABLE), default="cpu", help="size preset (default cpu)"
    )
    p.add_argument("--resume", action="store_true", help="continue from RUN's last checkpoint")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (preset's default)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--batch-size", type=int, default=None, help="images per step, all ranks")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument(
        "--log-every", type=int, default=None, help="steps between log lines (preset's default)"
    )
    p.add_argument(
        "--init",
        default=None,
        help="official Depth Anything V2 checkpoint (.pth) to fine-tune from "
        "(sets the fine-tuning lr unless --lr is given)",
    )
    p.add_argument(
        "--weights",
        default=None,
        help="project weights (.safetensors, e.g. weights/model.safetensors) to fine-tune; "
        "the architecture comes from the file, --variant must match",
    )
    p.add_argument(
        "--observed-depth",
        action="store_true",
        help="the model also reads an observed depth of the visible scene (trained on "
        "simulated sensor and monocular observations; docs/observed-depth.md)",
    )
    p.add_argument(
        "--observed-model", default=None, metavar="WEIGHTS",
        help="with --observed-depth: an RGB-only weights file whose layer-1 prediction is the "
        "observation of a share of the training items, as a user's monocular model gives it",
    )  # fmt: skip
    p.add_argument(
        "--observed-model-share", type=float, default=None, metavar="P",
        help="share of the training items observed by --observed-model (default 0.3)",
    )  # fmt: skip
    p.add_argument(
        "--unguided-first-layer",
        action="store_true",
        help="layer 1 (the visible scene) gets no mask guidance, so the ordinary depth map "
        "does not depend on the masks (docs/training.md)",
    )
    p.add_argument(
        "--grow-after", type=_int_list, default=None, metavar="1,3,5",
        help="with --weights: insert an identity transformer block after each of these encoder "
        "blocks (0-based) and fine-tune the deeper model (docs/training.md)",
    )  # fmt: skip
    p.add_argument(
        "--grow-lr-scale", type=float, default=None,
        help="learning-rate multiplier of the blocks --grow-after inserts (default 1)",
    )  # fmt: skip
    p.add_argument("--warmup-steps", type=int, default=None, help="lr warm-up (preset's)")
    p.add_argument(
        "--roll-deg", type=float, default=None,
        help="camera-roll augmentation: half of the items rotated about the principal point "
        "by up to +-DEG degrees, cut to the largest window without empty corners (default 0)",
    )  # fmt: skip
    p.add_argument(
        "--anchored-weight", type=float, default=None,
        help="weight of the loss term that fits each layer where it shows the visible scene "
        "(as inference with an observed depth does) and scores its hidden part (default 0)",
    )  # fmt: skip
    p.add_argument(
        "--anchored-grad-weight", type=float, default=None,
        help="inside that term, weight of gradient matching on the fitted hidden part and its "
        "outline (default 0)",
    )  # fmt: skip
    p.add_argument("--device", choices=DEVICE_CHOICES, default="cpu", help="default cpu")
    p.set_defaults(func=_train)


# ---------------------------------------------------------------------------------- reproduce
def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 0,1,2, got {text!r}") from None


def _reproduce(a: argparse.Namespace) -> int:
    from amodal_depth.reproduce import reproduce

    variants = a.variants.replace(",", " ").split() if a.variants else None
    reproduce(
        a.preset,
        a.out,
        work=a.work,
        data=a.data,
        seeds=a.seeds,
        variants=variants,
        workers=a.workers,
        export_weights=a.export_weights,
    )
    return 0


def _add_reproduce(sub: argparse._SubParsersAction) -> None:
    from amodal_depth.config import PLANS
    from amodal_depth.models.variants import VARIANTS

    n = len(VARIANTS)
    p = sub.add_parser(
        "reproduce",
        help=f"the paper's Tables 1 and 2 on our data: data, {n} variants x seeds, report",
        description=f"Generate (or reuse) the data, train and evaluate the {n} variants for "
        "every seed (seed-major), evaluate the references, and write the report (tables, "
        "figures, claims) to --out after every run. Resumable: rerun the same command to "
        "continue; finished runs are skipped (docs/reproduction.md).",
    )
    p.add_argument(
        "--preset", required=True, metavar=_names(PLANS), help="plan: a preset's reproduction"
    )
    p.add_argument("--out", required=True, help="report directory (small files, committable)")
    p.add_argument(
        "--work", default=None, help="data, runs and weights (default runs/reproduce-PRESET)"
    )
    p.add_argument("--data", default=None, help="reuse this dataset instead of generating one")
    p.add_argument("--seeds", type=_int_list, default=None, help="e.g. 0,1,2 (plan's default)")
    p.add_argument(
        "--variants", default=None, metavar="V,V,...",
        help=f"comma-separated subset of {', '.join(VARIANTS)} (default all)",
    )  # fmt: skip
    p.add_argument("--workers", type=int, default=2, help="data generation processes (2)")
    p.add_argument(
        "--export-weights",
        default=None,
        metavar="DIR",
        help="copy the best ade_multibatch run (by val invisible RMSE) there as fp16",
    )
    p.set_defaults(func=_reproduce)


# ---------------------------------------------------------------------------------- predict
def _predict(a: argparse.Namespace) -> int:
    from amodal_depth.predict import predict_files

    p = predict_files(
        a.image,
        a.masks,
        a.out,
        weights=a.weights,
        align=not a.no_align,
        input_size=a.size,
        device=a.device,
        depth_path=a.depth,
        depth_scale=a.depth_scale,
        depth_kind=a.depth_kind,
        masks_kind=a.masks_kind,
        order=a.order,
        completion_weights=a.completion_weights,
    )
    k = p.disparity.shape[0]
    metric = ", depth.npy (metric), depth_1..{k}.png" if p.depth is not None else ""
    print(
        f"{p.info['variant']}: {k} layers of {a.image} in {p.info['seconds']:.2f} s -> "
        f"{a.out}/disparity.npy{metric.format(k=k)}, amodal_1..{k}.png, layer_1..{k}.png, "
        "overview.png"
    )
    return 0


def _input_size(text: str) -> int | tuple[int, int]:
    return _size(text) if "x" in text.lower() else int(text)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    from amodal_depth.models.device import DEVICE_CHOICES
    from amodal_depth.predict import WEIGHTS_ENV

    p = sub.add_parser(
        "predict",
        help="layer depths of one image from the masks of its objects",
        description="Predict the K layer depths of IMAGE (layer k = the scene with o_1..o_{k-1} "
        "removed) from the masks of its K objects: visible masks (completed to amodal masks "
        "and ordered front to back by the completion model) or amodal masks. Writes OUT/"
        "disparity.npy ([K,H,W] float32 relative inverse depth, larger = nearer), with --depth "
        "also depth.npy and depth_<k>.png in the observation's units, amodal_<k>.png, "
        "layer_<k>.png, overview.png and predict.json (docs/predict.md).",
    )
    p.add_argument("image", help="RGB image (PNG, JPEG, ...)")
    p.add_argument(
        "--masks", nargs="+", required=True, metavar="M.png",
        help="one mask per object (0/255 PNGs of the image's size), or one instance-id PNG "
        "(0 = none, 1..K = objects)",
    )  # fmt: skip
    p.add_argument(
        "--masks-kind", choices=["visible", "amodal"], default="visible",
        help="visible (default): completed to amodal masks and ordered by the completion "
        "model; amodal: whole-object masks, nearest first",
    )  # fmt: skip
    p.add_argument(
        "--order", default=None, metavar="2,1,3",
        help="front-to-back order as mask numbers (1-based), nearest first; default: "
        "predicted (visible) or as listed (amodal)",
    )  # fmt: skip
    p.add_argument(
        "--completion-weights", default=None,
        help="amodal-completion weights (default weights/completion.safetensors)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="folder to write the results to")
    p.add_argument(
        "--weights",
        default=None,
        help=f"model weights (.safetensors); default ${WEIGHTS_ENV}, else the committed "
        "weights/model.safetensors (with --depth: weights/model_rgbd.safetensors when it "
        "exists, the model that reads the depth)",
    )
    p.add_argument(
        "--size",
        type=_input_size,
        default=None,
        help="network input: short side N, or WxH (default: the model's, 168 for cpu weights)",
    )
    p.add_argument(
        "--no-align",
        action="store_true",
        help="keep each layer's own scale and shift (default: fit layers 2..K to layer 1 "
        "where nothing is removed)",
    )
    p.add_argument(
        "--depth",
        default=None,
        metavar="D.png|D.npy|D.exr",
        help="observed depth of the visible scene (RGB-D sensor or any depth model), the "
        "image's size, 0 or NaN = hole: the layers come out in its units (docs/predict.md)",
    )
    p.add_argument(
        "--depth-scale",
        type=float,
        default=None,
        help="divide --depth by this (default 1000 for PNG: millimetres -> metres; 1 else)",
    )
    p.add_argument(
        "--depth-kind",
        choices=["depth", "disparity"],
        default="depth",
        help="--depth holds depth (default) or inverse depth (e.g. Depth Anything V2 output)",
    )
    p.add_argument("--device", choices=DEVICE_CHOICES, default="cpu", help="default cpu")
    p.set_defaults(func=_predict)


# ---------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="amodal-depth",
        description="Occlusion-aware (amodal) layered depth estimation and 3D reconstruction.",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    _add_data(sub)
    _add_evaluate(sub)
    _add_train(sub)
    _add_reproduce(sub)
    _add_predict(sub)
    add_reconstruct_command(sub)
    add_completion_commands(sub)
    add_demo_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except UserError as e:
        print(f"amodal-depth: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("amodal-depth: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
