"""Training the completion UNet: `amodal-depth completion train`.

Run directory:

    RUN/config.json        the resolved CompletionTrainConfig and the dataset paths
    RUN/model.safetensors  the weights with the best val invisible-part mIoU so far
    RUN/last.safetensors   the latest weights
    RUN/train_state.pt     weights, optimizer, step, best score (resume)
    RUN/log.jsonl          one JSON line per log step and per validation
    RUN/done.json          written at the end: steps, CPU and wall time, chosen step

Resume follows the same trajectory as an uninterrupted run: the instances of step s and
their augmentation are pure functions of (seed, s) (data.epoch_batch), the learning rate a
function of s, and the weights and optimizer come back from train_state.pt.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from amodal_depth.completion.data import (
    Augment,
    Store,
    balanced_pool,
    epoch_batch,
    load_store,
    make_batch,
)
from amodal_depth.completion.evaluate import Scores
from amodal_depth.completion.infer import complete_with_model
from amodal_depth.completion.model import (
    CompletionConfig,
    CompletionUNet,
    build_completion,
    config_from_dict,
    save_completion,
)
from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_path, atomic_write_json
from amodal_depth.runs import (  # the depth model's run-directory layout, shared
    CONFIG_NAME,
    DONE_NAME,
    STATE_NAME,
    append_log,
    truncate_log,
)

PRESETS = ("quick", "cpu", "cpu-long")
BEST_NAME, LAST_NAME = "model.safetensors", "last.safetensors"
_RESUME_FREE = ("log_every", "threads")


@dataclass
class CompletionTrainConfig:
    """One completion training run; presets() chooses the numbers."""

    preset: str = "cpu"
    model: CompletionConfig = field(default_factory=CompletionConfig)
    steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    min_lr_ratio: float = 0.02
    outside_weight: float = 0.2
    """BCE weight of crop pixels outside the eraser (eraser pixels weigh 1): the paste-back
    rule reads only the eraser, the rest keeps the network learning whole shapes."""
    iou_weight: float = 1.0
    """Weight of the soft-IoU term on the hidden part (eraser pixels of objects that have one)."""
    balance: bool = True
    """Give every --data the same share of the training crops (smaller sets repeated)."""
    augment: Augment = field(default_factory=Augment)
    seed: int = 0
    val_every: int = 200
    val_images: int = 300
    """Val images scored at every validation (taken evenly from every --data)."""
    log_every: int = 20
    threads: int | None = None
    """torch threads (None: torch's default)."""


def presets(name: str, use_rgb: bool = True) -> CompletionTrainConfig:
    """quick: tests, seconds; cpu: ~18 min on one CPU thread; cpu-long: the same network and
    batches for 3,500 steps (~1 h on one thread of a busy 2-core machine), the schedule
    stretched to match."""
    if name == "quick":
        model = CompletionConfig(use_rgb=use_rgb, crop=32, channels=[8, 16, 32])
        return CompletionTrainConfig(
            preset=name, model=model, steps=20, batch_size=8, warmup_steps=2, val_every=10,
            val_images=4, log_every=5,
        )  # fmt: skip
    if name == "cpu":
        return CompletionTrainConfig(preset=name, model=CompletionConfig(use_rgb=use_rgb))
    if name == "cpu-long":
        return CompletionTrainConfig(
            preset=name, model=CompletionConfig(use_rgb=use_rgb), steps=3500, val_every=250
        )
    raise UserError(f"unknown completion preset {name!r}; choose one of {', '.join(PRESETS)}")


def config_to_dict(cfg: CompletionTrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def train_config_from_dict(d: dict[str, Any]) -> CompletionTrainConfig:
    d = dict(d)
    d["model"] = config_from_dict(d["model"])
    d["augment"] = Augment(**d["augment"])
    return CompletionTrainConfig(**d)


def lr_at(cfg: CompletionTrainConfig, step: int) -> float:
    """Linear warm-up, then cosine down to lr * min_lr_ratio."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.lr * (
        cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    )


def loss_fn(
    logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor, cfg: CompletionTrainConfig
) -> torch.Tensor:
    """Weighted BCE over the crop's pixels inside the image (eraser 1, elsewhere
    outside_weight) plus iou_weight x (1 - soft IoU) of the hidden part, averaged over the
    crops whose object has a hidden part (y on eraser pixels)."""
    eraser, valid = x[:, -2], x[:, -1]
    w = valid * (cfg.outside_weight + (1.0 - cfg.outside_weight) * eraser)
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    loss = (bce * w).sum() / w.sum().clamp_min(1.0)
    if cfg.iou_weight > 0:
        p, t, e = torch.sigmoid(logits), y * eraser, eraser * valid
        inter = (p * t * e).sum(dim=(1, 2))
        union = ((p + t - p * t) * e).sum(dim=(1, 2))
        has = t.sum(dim=(1, 2)) >= 1.0
        if bool(has.any()):
            loss = loss + cfg.iou_weight * (1.0 - inter[has] / union[has].clamp_min(1e-6)).mean()
    return loss


def validate(model: CompletionUNet, store: Store, num: int) -> dict[str, float | None]:
    """Mask scores on the first `num` samples of a val store (full-resolution paste-back)."""
    scores = Scores()
    for n in np.linspace(0, len(store.names) - 1, min(num, len(store.names))).astype(int):
        vis, amo = store.masks(int(n))
        scores.add_masks(complete_with_model(model, store.rgb[n], vis), vis, amo)
    s = scores.summary()
    return {k: s[k] for k in ("amodal_miou", "invisible_miou", "amodal_miou_occluded")}


def _check_resume(run: Path, cfg: CompletionTrainConfig, data: list[str]) -> CompletionTrainConfig:
    saved = json.loads((run / CONFIG_NAME).read_text())
    old = saved["train"]
    new = config_to_dict(cfg)
    diff = [
        f"{k}: {old.get(k)!r} vs {new[k]!r}"
        for k in new
        if k not in _RESUME_FREE and old.get(k) != new[k]
    ]
    if saved.get("data") != data:
        diff.append(f"data: {saved.get('data')} vs {data}")
    if diff:
        raise UserError(
            f"{run} was trained with other options ({'; '.join(diff)[:300]}); resume with the "
            "same options or use another --out"
        )
    return cfg


def _save_state(run: Path, model: CompletionUNet, opt, step: int, extra: dict[str, Any]) -> None:
    state = {"step": step, "model": model.state_dict(), "optimizer": opt.state_dict(), **extra}
    with atomic_path(run / STATE_NAME) as tmp:
        torch.save(state, tmp)
    save_completion(model, run / LAST_NAME, extra_metadata={"step": step})


def _open_run(
    run: Path, cfg: CompletionTrainConfig, data: list[str], resume: bool
) -> dict[str, Any] | None:
    """The saved state to resume from (None for a fresh run); writes config.json."""
    has_state = (run / STATE_NAME).exists()
    if has_state and not resume:
        raise UserError(f"{run} already holds a completion run; use --resume or another --out")
    state = None
    if has_state:
        _check_resume(run, cfg, data)
        try:
            state = torch.load(run / STATE_NAME, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - truncated or foreign file
            raise UserError(
                f"cannot read {run / STATE_NAME} ({type(e).__name__}); use another --out"
            ) from None
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        run / CONFIG_NAME, {"train": config_to_dict(cfg), "data": data, "torch": torch.__version__}
    )
    truncate_log(run, state["step"] if state else 0)
    if state is None or state["step"] < cfg.steps:
        (run / DONE_NAME).unlink(missing_ok=True)
    return state


def _check(cfg: CompletionTrainConfig) -> None:
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.lr <= 0 or cfg.val_every < 1:
        raise UserError("completion steps, batch size, lr and val_every must be positive")


def _stores(
    cfg: CompletionTrainConfig, roots: list[str], progress: bool
) -> tuple[Store, Store | None]:
    """The train store, and the val store (None when no dataset has a val split)."""
    train_set = load_store(roots, "train", progress=progress)
    try:
        per = -(-cfg.val_images // len(roots))
        return train_set, load_store(roots, "val", max_samples=per, progress=progress)
    except UserError:
        return train_set, None  # no val split: keep the last weights


def _build(cfg: CompletionTrainConfig, state: dict[str, Any] | None):
    """(model, optimizer, start step, best, CPU seconds so far), restored from `state`."""
    torch.manual_seed(cfg.seed)
    model = build_completion(cfg.model).to(memory_format=torch.channels_last)  # ~17 % faster
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if state is None:
        return model, opt, 0, {"score": -1.0, "step": 0}, 0.0
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    return model, opt, int(state["step"]), dict(state["best"]), float(state["cpu_seconds"])


def train_completion(
    cfg: CompletionTrainConfig,
    data: list[str | Path],
    out: str | Path,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
) -> Path:
    """Train on the train splits of `data`, validate on their val splits (the best val
    invisible mIoU is kept as RUN/model.safetensors); returns the run directory.

    stop_after=N stops after step N with a checkpoint, as a kill would (tests, time boxes)."""
    _check(cfg)
    run, roots = Path(out), [str(Path(d).resolve()) for d in data]
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    state = _open_run(run, cfg, roots, resume)
    train_set, val_set = _stores(cfg, roots, progress)
    pool = balanced_pool(train_set) if cfg.balance else np.arange(len(train_set))
    model, opt, start, best, cpu0 = _build(cfg, state)
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    t_cpu, t_wall, acc = time.process_time(), time.perf_counter(), []
    bar = tqdm(
        total=cfg.steps, initial=start, desc="completion train", unit="step", disable=not progress
    )
    model.train()
    for step in range(start, end):
        rng = np.random.default_rng([cfg.seed, step, 1])
        idx = epoch_batch(pool, cfg.batch_size, cfg.seed, step)
        x, y = (
            torch.from_numpy(a)
            for a in make_batch(train_set, idx, cfg.model.crop, cfg.model.use_rgb, rng, cfg.augment)
        )
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, step)
        x = x.contiguous(memory_format=torch.channels_last)
        loss = loss_fn(model(x), x, y, cfg)
        if not torch.isfinite(loss):
            raise UserError(
                f"completion loss became {float(loss)} at step {step + 1}; lower --lr or resume"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc.append(float(loss.detach()))
        done = step + 1
        bar.update(1)
        if done % cfg.log_every == 0 or done == end:
            bar.set_postfix(loss=f"{np.mean(acc):.4f}")
            append_log(run, {"step": done, "loss": float(np.mean(acc)), "lr": lr_at(cfg, step)})
            acc = []
        if done % cfg.val_every == 0 or done == end:
            cpu = cpu0 + time.process_time() - t_cpu
            best = _checkpoint(run, model, opt, done, val_set, cfg, best, cpu)
    bar.close()
    if end == cfg.steps and not (run / DONE_NAME).exists():
        atomic_write_json(run / DONE_NAME, {
            "steps": cfg.steps, "cpu_seconds": round(cpu0 + time.process_time() - t_cpu, 1),
            "wall_seconds_last_session": round(time.perf_counter() - t_wall, 1),
            "best_step": best["step"], "best_val": best.get("val"),
            "train_instances": len(train_set), "train_images": len(train_set.names),
        })  # fmt: skip
    return run


def _checkpoint(
    run: Path, model: CompletionUNet, opt, step: int, val_set: Store | None,
    cfg: CompletionTrainConfig, best: dict[str, Any], cpu: float,
) -> dict[str, Any]:  # fmt: skip
    """Validate, keep the best weights, then write the resumable state (in that order, so a
    kill never leaves a state whose best file is missing)."""
    rec: dict[str, Any] = {"step": step, "cpu_seconds": round(cpu, 1)}
    if val_set is not None:
        val = validate(model, val_set, cfg.val_images)
        model.train()
        rec.update({f"val_{k}": v for k, v in val.items()})
        score = val["invisible_miou"] if val["invisible_miou"] is not None else val["amodal_miou"]
    else:
        val, score = None, float(step)  # no val split: the latest is the best
    if score is not None and score > best["score"]:
        best = {"score": float(score), "step": step, "val": val}
        save_completion(model, run / BEST_NAME, extra_metadata={"step": step, "val": val})
    rec["best_step"] = best["step"]
    append_log(run, rec)
    _save_state(run, model, opt, step, {"best": best, "cpu_seconds": cpu})
    return best
