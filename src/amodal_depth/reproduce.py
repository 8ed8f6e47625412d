"""`amodal-depth reproduce`: the paper's two tables on our data, by one resumable command.

Steps (docs/reproduction.md): generate (or reuse) the dataset of the preset's plan
(`config.reproduce_plan`), evaluate the non-learned references once, then train and evaluate
every variant for every seed — seed-major (all variants of seed 0, then seed 1, …) so a
partial reproduction stays balanced — and rebuild the report after each run.

Two directories:
- the work directory (`--work`, default `runs/reproduce-<preset>`, git-ignored): the dataset,
  the training runs (weights, optimiser state, TensorBoard logs) and per-image CSVs;
- the report directory (`--out`, committable, small files only): `runs/<variant>-seed<S>.json`
  per finished run, `references/<name>.json`, `reproduction.json` (command, commit, wall
  times of every session), the arrays of the prediction figure (`test_images.npz`, and
  `runs/<variant>-seed<S>.npz` for the first seed: computed here when a run finishes, since
  the report only reads and draws) and the tables, figures and claims of `report/`.

Resume: a run whose JSON is in the report directory is skipped; a run directory without
`done.json` is resumed (`train(..., resume=True)`); a trained run whose JSON is missing is
only re-evaluated. So an interrupted reproduction, rerun with the same command, picks up where
it stopped, and the report directory can be committed between sessions.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shlex
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from amodal_depth import report
from amodal_depth.config import ReproducePlan, preset, reproduce_plan
from amodal_depth.data.format import read_manifest, read_sample, split_ids
from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_path, atomic_write_json
from amodal_depth.models.variants import VARIANTS, get_variant
from amodal_depth.provenance import git_commit
from amodal_depth.references import DATA_REFERENCES as REFERENCES
from amodal_depth.runs import CONFIG_NAME, WEIGHTS_NAME, load_run, loss_curve, read_done

WEIGHTS_LIMIT_MB = 15.0
SELECTION = "lowest mean invisible-region RMSE on the val split (test is never used to choose)"
FIGURE_IMAGES = 3
"""Test images in the report's prediction figure."""


# ------------------------------------------------------------------------------ helpers
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_name(variant: str, seed: int) -> str:
    return f"{variant}-seed{seed}"


def _strip(result: dict[str, Any]) -> dict[str, Any]:
    """An evaluate summary without machine-specific paths (the report is committed)."""
    r = dict(result)
    if "data" in r:
        r["data"] = Path(r["data"]).name
    return r


def canonical_command(
    preset_name: str,
    out: Path,
    work: Path,
    data: str | Path | None,
    seeds: Sequence[int] | None,
    variants: Sequence[str] | None,
    workers: int,
    export_weights: str | Path | None,
) -> str:
    """The command line that repeats this call (options at their defaults left out)."""
    args = ["amodal-depth", "reproduce", "--preset", preset_name, "--out", str(out)]
    if work != Path("runs") / f"reproduce-{preset_name}":
        args += ["--work", str(work)]
    if data is not None:
        args += ["--data", str(data)]
    if seeds is not None:
        args += ["--seeds", ",".join(str(s) for s in seeds)]
    if variants is not None:
        args += ["--variants", ",".join(variants)]
    if workers != 2:
        args += ["--workers", str(workers)]
    if export_weights is not None:
        args += ["--export-weights", str(export_weights)]
    return shlex.join(args)


def plan_for(
    preset_name: str, seeds: Sequence[int] | None, variants: Sequence[str] | None
) -> tuple[ReproducePlan, list[int], list[str]]:
    plan = reproduce_plan(preset_name)  # UserError for a name without a plan
    seed_list = list(plan.seeds if seeds is None else seeds)
    variant_list = list(VARIANTS if variants is None else variants)
    for v in variant_list:
        get_variant(v)  # UserError naming the choices
    if not seed_list or not variant_list:
        raise UserError("give at least one seed and one variant")
    if len(set(seed_list)) != len(seed_list) or any(s < 0 for s in seed_list):
        raise UserError(f"seeds must be distinct non-negative integers, got {seed_list}")
    return plan, seed_list, variant_list


# ------------------------------------------------------------------------------ stages
def ensure_data(plan: ReproducePlan, work: Path, data: Path | None, workers: int) -> Path:
    """The dataset: `data` when given (reused as is), else generated into WORK/data (the
    generator is resumable, so an interrupted generation completes)."""
    if data is not None:
        read_manifest(data)  # a clear one-line error when it is not a dataset
        return data
    root = work / "data"
    if _complete(root, plan.num_samples):
        return root
    from amodal_depth.data.generate import GeneratorConfig, generate_dataset

    print(
        f"reproduce: generating {plan.num_samples} samples at {plan.width}x{plan.height} in {root}"
    )
    cfg = GeneratorConfig(width=plan.width, height=plan.height)
    generate_dataset(root, plan.num_samples, seed=plan.data_seed, config=cfg, workers=workers)
    return root


def _complete(root: Path, num: int) -> bool:
    try:
        m = read_manifest(root)
    except UserError:
        return False
    ids = [i for ids in m["splits"].values() for i in ids]
    return len(ids) >= num and all((root / "samples" / str(i)).is_dir() for i in ids)


def ensure_references(plan: ReproducePlan, data: Path, out: Path, work: Path) -> None:
    """Evaluate each non-learned reference once into OUT/references/<name>.json."""
    from amodal_depth.evaluate import evaluate

    for name in REFERENCES:
        path = out / "references" / f"{name}.json"
        if path.is_file():
            continue
        t0 = time.perf_counter()
        csv_path = work / "eval" / f"ref-{name}-test.csv"
        r = _strip(evaluate(name, data, "test", out_csv=csv_path, max_images=plan.eval_images))
        r["eval_wall_time_s"] = time.perf_counter() - t0
        atomic_write_json(path, r)


# ------------------------------------------------------------------------------ figure arrays
def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def save_test_images(data: Path, out: Path, num: int = FIGURE_IMAGES) -> list[str]:
    """OUT/test_images.npz: the first `num` test images with their amodal masks and true
    depth (the truth of the report's prediction figure); rewritten only when the dataset's
    first test ids changed. Returns those ids."""
    manifest = read_manifest(data)
    ids = split_ids(manifest, "test", data)[:num]
    path = out / report.TEST_IMAGES_NAME
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if [str(i) for i in z["ids"]] == ids:
                return ids
    samples = [read_sample(data, i, manifest) for i in ids]
    _save_npz(
        path,
        ids=np.array(ids),
        rgb=np.stack([s.rgb for s in samples]),
        amodal=np.stack([s.amodal.astype(bool) for s in samples]),
        depth=np.stack([s.depth for s in samples]).astype(np.float16),
    )
    return ids


def save_predictions(model: Any, data: Path, out: Path, variant: str, seed: int) -> Path:
    """OUT/runs/<variant>-seed<S>.npz: the run's per-layer depth for the figure's test
    images, each layer aligned to the truth like the evaluation (0 where the truth has no
    surface), as float16."""
    from amodal_depth.metrics import aligned_depth, valid_depth

    ids = save_test_images(data, out)
    manifest = read_manifest(data)
    preds = []
    for i in ids:
        s = read_sample(data, i, manifest)
        disp = np.asarray(model.predict_layers(s.rgb, s.amodal.astype(bool)), np.float64)
        valid = valid_depth(s.depth)
        depth = [aligned_depth(disp[j], s.depth[j], valid[j]) for j in range(len(disp))]
        preds.append(np.where(valid, np.stack(depth), 0.0))
    path = out / "runs" / report.predictions_name(variant, seed)
    _save_npz(path, ids=np.array(ids), depth=np.stack(preds).astype(np.float16))
    return path


def ensure_predictions(
    out: Path, work: Path, data: Path, variants: Sequence[str], seed: int
) -> None:
    """Predictions of finished `seed` runs that lack them (runs finished before the arrays
    were saved, or whose .npz was deleted), from their weights in the work directory."""
    for v in variants:
        name = run_name(v, seed)
        weights = work / "runs" / name / WEIGHTS_NAME
        have = (out / "runs" / report.predictions_name(v, seed)).is_file()
        if have or not (out / "runs" / f"{name}.json").is_file() or not weights.is_file():
            continue
        model = load_run(work / "runs" / name)
        model.eval()
        save_predictions(model, data, out, v, seed)


def train_and_evaluate(
    plan: ReproducePlan,
    variant: str,
    seed: int,
    data: Path,
    work: Path,
    out: Path,
    commit: str | None = None,
    figure: bool = False,
) -> dict[str, Any]:
    """One run: train (or resume, or reuse when done.json exists), evaluate on test and val,
    write OUT/runs/<variant>-seed<S>.json and return it. `commit` is the code the calling
    process loaded (git_commit() at its start), recorded with the result. `figure`: also
    save the run's predictions for the report's figure (`save_predictions`)."""
    from amodal_depth.evaluate import evaluate
    from amodal_depth.train import train

    name = run_name(variant, seed)
    run_dir = work / "runs" / name
    cfg = dataclasses.replace(preset(plan.preset, variant), seed=seed, **plan.train_overrides)
    t0 = time.perf_counter()
    if read_done(run_dir) is None:
        train(cfg, data, run_dir, resume=True)
    t_train = time.perf_counter() - t0
    done = read_done(run_dir) or {}

    model = load_run(run_dir)
    t1 = time.perf_counter()
    csv_path = work / "eval" / f"{name}-test.csv"
    test = evaluate(model, data, "test", out_csv=csv_path, max_images=plan.eval_images, name=name)
    try:
        val: dict[str, Any] | None = evaluate(
            model, data, "val", max_images=plan.val_images, name=name, progress=False
        )
    except UserError:  # a dataset without a val split: weights are then picked on test
        val = None
    t_eval = time.perf_counter() - t1
    if figure:
        save_predictions(model, data, out, variant, seed)
    result = {
        "variant": variant,
        "seed": seed,
        "preset": plan.preset,
        "test": _strip(test),
        "val": None if val is None else {"num_images": val["num_images"], "depth": val["depth"]},
        "train": {
            "steps": done.get("steps"),
            "wall_time_s": done.get("wall_time_s"),
            "final_loss": done.get("final_loss"),
            "images_per_s": done.get("images_per_s"),
            "loss_curve": loss_curve(run_dir),
            "this_session_s": t_train,
        },
        "eval_wall_time_s": t_eval,
        "config": dataclasses.asdict(cfg),
        "commit": commit,
        "finished": _now(),
    }
    atomic_write_json(out / "runs" / f"{name}.json", result)
    return result


def export_weights(
    run_dir: Path,
    dest: Path,
    metrics: dict[str, Any],
    meta: dict[str, str] | None = None,
    name: str = WEIGHTS_NAME,
) -> Path:
    """Write the latest weights of the training run `run_dir` to `dest/name` as fp16
    safetensors, with the run's config and a metrics file (`metrics` plus run, dtype and
    size): config.json and metrics.json for the default name, STEM_config.json and
    STEM_metrics.json for another (so the RGB-D weights sit beside the RGB-only ones).
    Every file is written atomically. Returns the weights path."""
    import torch

    from amodal_depth.models.checkpoints import save_model

    dest.mkdir(parents=True, exist_ok=True)
    weights = dest / name
    prefix = "" if name == WEIGHTS_NAME else f"{weights.stem}_"
    meta = {"run": run_dir.name, **(meta or {})}
    save_model(load_run(run_dir), weights, dtype=torch.float16, extra_metadata=meta)
    with atomic_path(dest / f"{prefix}config.json") as tmp:
        shutil.copyfile(run_dir / CONFIG_NAME, tmp)
    size_mb = weights.stat().st_size / 1e6
    atomic_write_json(
        dest / f"{prefix}metrics.json",
        {"run": meta["run"], **metrics, "dtype": "float16", "size_mb": round(size_mb, 2)},
    )
    if size_mb > WEIGHTS_LIMIT_MB:
        print(f"warning: {weights} is {size_mb:.1f} MB (> {WEIGHTS_LIMIT_MB} MB)")
    return weights


def export_best_weights(out: Path, work: Path, dest: Path, variant: str = "ade_multibatch") -> Path:
    """Copy the best finished `variant` run (SELECTION) to `dest` as fp16 safetensors with its
    config.json and metrics.json. Returns the weights path."""
    runs = report.load_runs(out).get(variant, [])
    cands = []
    for r in runs:
        split = "val" if r.get("val") else "test"
        rmse = (r[split] or {}).get("depth", {}).get("invisible", {}).get("rmse")
        run_dir = work / "runs" / run_name(variant, r["seed"])
        if rmse is not None and (run_dir / WEIGHTS_NAME).is_file():
            cands.append((float(rmse), r["seed"], split, r, run_dir))
    if not cands:
        raise UserError(
            f"no finished {variant} run with weights in {work / 'runs'}; run the reproduction first"
        )
    cands.sort(key=lambda c: (c[0], c[1]))
    rmse, seed, split, best, run_dir = cands[0]
    metrics = {
        "selected_by": SELECTION
        if split == "val"
        else "lowest invisible RMSE on test (the dataset has no val split)",
        "candidates": {run_name(variant, c[1]): c[0] for c in cands},
        "val_depth": (best.get("val") or {}).get("depth"),
        "test_depth": best["test"]["depth"],
        "test_consistency": best["test"]["consistency"],
        "commit": best.get("commit"),
    }
    return export_weights(run_dir, dest, metrics, {"selected_by": SELECTION})


# ------------------------------------------------------------------------------ record
class _Record:
    """OUT/reproduction.json: the plan, and one entry per session (command, commit, wall
    time, runs done), rewritten after every step so a kill loses nothing."""

    def __init__(self, out: Path, info: dict[str, Any]) -> None:
        self.path = out / "reproduction.json"
        old = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.data: dict[str, Any] = {**old, **info}
        self.data.setdefault("sessions", [])
        self.session = {"started": _now(), "ended": None, "wall_time_s": 0.0, **info["last"]}
        self.data["sessions"].append(self.session)
        self.t0 = time.perf_counter()
        self.save()

    def save(self, ended: bool = False) -> None:
        self.session["wall_time_s"] = time.perf_counter() - self.t0
        if ended:
            self.session["ended"] = _now()
        total = sum(s.get("wall_time_s") or 0.0 for s in self.data["sessions"])
        self.data["total_wall_time_s"] = total
        atomic_write_json(self.path, self.data)

    def report_info(self) -> dict[str, Any]:
        return report.info_from_record(self.path.parent)


# ------------------------------------------------------------------------------ main
def reproduce(
    preset_name: str,
    out: str | Path,
    *,
    work: str | Path | None = None,
    data: str | Path | None = None,
    seeds: Sequence[int] | None = None,
    variants: Sequence[str] | None = None,
    workers: int = 2,
    export_weights: str | Path | None = None,
    command: str | None = None,
) -> Path:
    """Run (or resume) the reproduction of `preset_name`; returns OUT/README.md."""
    plan, seed_list, variant_list = plan_for(preset_name, seeds, variants)
    out = Path(out)
    work = Path(work) if work is not None else Path("runs") / f"reproduce-{preset_name}"
    if out.resolve() == work.resolve():
        raise UserError("--out and --work must differ: the report is committed, the work dir not")
    if data is not None:
        read_manifest(data)  # fail on a wrong --data before anything is written
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    # Taken once, before anything is written: the code this process runs. Committing results
    # while it runs moves HEAD but not the loaded code, so it must not be asked again later.
    commit = git_commit((out,) + ((Path(export_weights),) if export_weights is not None else ()))
    cmd = command or canonical_command(
        preset_name, out, work, data, seeds, variants, workers, export_weights
    )
    machine = f"{platform.machine()}, {os.cpu_count() or 1} CPU cores, "
    machine += f"python {platform.python_version()}"
    plan_info = {"preset": preset_name, "plan": dataclasses.asdict(plan), "seeds": seed_list}
    rec = _Record(
        out,
        {**plan_info, "variants": variant_list,
         "last": {"command": cmd, "commit": commit, "machine": machine}},
    )  # fmt: skip
    try:
        data_root = ensure_data(plan, work, Path(data) if data else None, workers)
        rec.data["data_description"] = _describe(data_root)
        rec.save()
        ensure_references(plan, data_root, out, work)
        save_test_images(data_root, out)
        todo = [(s, v) for s in seed_list for v in variant_list]  # seed-major
        _run_all(plan, todo, data_root, work, out, commit, rec)
        ensure_predictions(out, work, data_root, variant_list, seed_list[0])
        if export_weights is not None and "ade_multibatch" in variant_list:
            w = export_best_weights(out, work, Path(export_weights))
            print(f"reproduce: best ade_multibatch weights -> {w}")
    finally:
        rec.save(ended=True)
    readme = report.build_report(out, info=rec.report_info())
    print(f"reproduce: report {readme} (wall time this session {rec.session['wall_time_s']:.0f} s)")
    return readme


def _describe(data_root: Path) -> str:
    m = read_manifest(data_root)
    return (
        f"{data_root.name}: {sum(len(v) for v in m['splits'].values())} samples at "
        f"{m['width']}x{m['height']}, K = {m['num_layers']}, splits "
        + ", ".join(f"{k} {len(v)}" for k, v in m["splits"].items())
    )


def _run_all(
    plan: ReproducePlan,
    todo: list[tuple[int, str]],
    data: Path,
    work: Path,
    out: Path,
    commit: str | None,
    rec: _Record,
) -> None:
    """Train and evaluate every (seed, variant) of `todo` without a run JSON, rebuilding the
    whole report after each; the first seed's runs also save the figure's predictions."""
    total = len(todo)
    for i, (seed, variant) in enumerate(todo, 1):
        name = run_name(variant, seed)
        if (out / "runs" / f"{name}.json").is_file():
            continue
        print(f"reproduce: [{i}/{total}] {name}")
        figure = seed == todo[0][0]
        r = train_and_evaluate(plan, variant, seed, data, work, out, commit, figure=figure)
        rec.data.setdefault("runs", {})[name] = {
            "train_wall_time_s": r["train"]["wall_time_s"],
            "eval_wall_time_s": r["eval_wall_time_s"],
        }
        rec.save()
        readme = report.build_report(out, info=rec.report_info())
        inv = r["test"]["depth"]["invisible"]
        done = sum((out / "runs" / f"{run_name(v, s)}.json").is_file() for s, v in todo)
        print(
            f"reproduce: [{i}/{total}] {name} done: invisible RMSE {_f(inv['rmse'])} m, "
            f"AbsRel {_f(inv['abs_rel'])}; {done} of {total} runs finished; report {readme}"
        )


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"
