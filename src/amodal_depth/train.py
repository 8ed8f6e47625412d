"""The training loop: `amodal-depth train`, one file read top to bottom.

Single process on CPU by default; DistributedDataParallel when started by torchrun (its
RANK / WORLD_SIZE / LOCAL_RANK environment): gloo on CPU, nccl on CUDA, each rank reads its
own shard of every step's images, only rank 0 writes. The run directory it writes (config,
weights, training state, log, TensorBoard, done marker) is described in runs.py and
docs/training.md. `train()` is the loop; set-up, one step, logging, checkpointing and the
end of a run are the named helpers around it.

Resume follows the same trajectory as an uninterrupted run: the image order of step s is a
pure function of (seed, s), and weights, optimizer, scheduler and RNG come back exactly.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from amodal_depth.config import TrainConfig, to_dict
from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_write_json, check_output_dir
from amodal_depth.losses import LossWeights, layered_depth_loss
from amodal_depth.models import build_guidance, build_model, get_variant, normalize_image
from amodal_depth.models.observation import observation_input
from amodal_depth.provenance import git_commit
from amodal_depth.runs import (
    CONFIG_NAME,
    DONE_NAME,
    TB_DIR,
    WEIGHTS_NAME,
    append_log,
    has_checkpoint,
    last_logged_loss,
    restore_checkpoint,
    save_checkpoint,
    truncate_log,
)
from amodal_depth.train_setup import Dist, devices, load_observer, open_datasets, resolve_config

VAL_IMAGES = 8
"""Images of the val split scored at every checkpoint (a cheap learning signal, not a metric)."""
LOSS_TERMS = ("total", "ssi", "grad", "consistency", "anchored")
"""The loss terms logged per step (averaged over ranks and over the steps of a log line)."""


# -------------------------------------------------------------------------------- data
def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def _batches(
    dataset, cfg: TrainConfig, d: Dist, start_step: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(step, batch of this rank) from `start_step` on. Step s of every run reads the same
    images: epoch = s // steps_per_epoch, an epoch's order is a permutation seeded by
    (seed, epoch), split into global batches, each sharded by rank."""
    per_rank = cfg.batch_size // d.world
    steps_per_epoch = len(dataset) // cfg.batch_size
    step = start_step
    while True:
        epoch, first = divmod(step, steps_per_epoch)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        order = _epoch_order(len(dataset), cfg.seed, epoch)
        batch_ids = [
            order[b * cfg.batch_size : (b + 1) * cfg.batch_size][d.rank * per_rank :][:per_rank]
            for b in range(first, steps_per_epoch)
        ]
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=batch_ids,
            num_workers=cfg.num_workers,
            persistent_workers=False,
        )
        for batch in loader:
            yield step, batch
            step += 1


# ------------------------------------------------------------------------ optimisation
def _param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on norms, biases, gains and token/position embeddings;
    the encoder (`pretrained.*`) at lr * encoder_lr_scale, and the blocks that
    `cfg.grow_after` inserted at that times grow_lr_scale."""
    grown: set[str] = set()
    if cfg.grow_after:
        from amodal_depth.models.grow import inserted_blocks

        grown = {
            f"pretrained.blocks.{j}." for j in inserted_blocks(cfg.model.depth, cfg.grow_after)
        }
    groups: dict[tuple[bool, bool, bool], list[Tensor]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim < 2 or any(t in name for t in ("pos_embed", "cls_token", "norm"))
        encoder = name.startswith("pretrained.")
        new = any(name.startswith(g) for g in grown)
        groups.setdefault((encoder, new, no_decay), []).append(p)
    out = []
    for (encoder, new, no_decay), params in sorted(groups.items()):
        scale = (cfg.encoder_lr_scale if encoder else 1.0) * (cfg.grow_lr_scale if new else 1.0)
        out.append(
            {
                "params": params,
                "weight_decay": 0.0 if no_decay else cfg.weight_decay,
                "lr": cfg.lr * scale,
            }
        )
    return out


class WarmupCosine:
    """LR factor at step s: linear warm-up over `warmup` steps, then cosine to `min_ratio`."""

    def __init__(self, steps: int, warmup: int, min_ratio: float) -> None:
        self.steps, self.warmup, self.min_ratio = steps, warmup, min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = max(1, self.steps - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


# ------------------------------------------------------------------------------- loop
def _all_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


@torch.no_grad()
def observe_with_model(
    observer: nn.Module | None, batch: dict[str, Any], image: Tensor, guide: Tensor
) -> Tensor:
    """The batch's observed inverse depth [B,H,W], with the items flagged
    `observed_from_model` (data/dataset.py add_observation) observed by `observer`: its
    layer-1 prediction (relative inverse depth) on the same normalised, augmented image and
    guidance masks, where the item has a surface."""
    inverse = batch["observed_inverse"].to(image.device)
    flags = batch.get("observed_from_model")
    if flags is None or not bool(flags.any()):
        return inverse
    if observer is None:
        raise ValueError("items are flagged observed_from_model but no observer model is given")
    flags = flags.to(image.device)
    g = build_guidance(guide[flags], observer.config.guidance_channels)
    layer1 = observer(image[flags], g)[:, 0].to(inverse.dtype)
    inverse = inverse.clone()
    valid = batch["observed_valid"].to(image.device)[flags]
    inverse[flags] = torch.where(valid, layer1, torch.zeros_like(layer1))
    return inverse


def _forward_loss(
    model: nn.Module,
    batch: dict[str, Any],
    cfg: TrainConfig,
    device,
    observer: nn.Module | None = None,
):
    spec = get_variant(cfg.model.variant)
    image = normalize_image(batch["rgb"].to(device, non_blocking=True))
    amodal = batch["amodal"].to(device)
    # Perturbed masks (mask_perturb) feed the guidance only; the loss keeps the exact ones.
    guide = batch.get("guidance_amodal", batch["amodal"]).to(device)
    guidance = build_guidance(guide, cfg.model.guidance_channels)
    observation = None
    if cfg.model.observed_depth:
        observation = observation_input(
            observe_with_model(observer, batch, image, guide), batch["observed_valid"].to(device)
        )
    pred = model(image, guidance, observation)
    weights = LossWeights(
        invisible_weight=cfg.invisible_weight,
        grad_weight=cfg.grad_weight,
        consistency_weight=cfg.consistency_weight,
        anchored_weight=cfg.anchored_weight,
        anchored_grad_weight=cfg.anchored_grad_weight,
    )
    return layered_depth_loss(
        pred,
        batch["depth"].to(device),
        batch["visible"].to(device),
        amodal,
        group_alignment=spec.group_alignment,
        consistency=spec.consistency_loss,
        weights=weights,
    )


@torch.no_grad()
def _val_loss(model: nn.Module, val_set, cfg: TrainConfig, device) -> dict[str, float]:
    was = model.training
    model.eval()
    n = min(VAL_IMAGES, len(val_set))
    totals: dict[str, float] = {}
    for start in range(0, n, 4):
        items = [val_set[i] for i in range(start, min(n, start + 4))]
        batch = torch.utils.data.default_collate(items)
        out = _forward_loss(model, batch, cfg, device)
        for key, v in out.items():
            totals[key] = totals.get(key, 0.0) + float(v) * len(items)
    model.train(was)
    return {f"val_{k}": v / n for k, v in totals.items()}


# ------------------------------------------------------------------------------ set-up
@dataclasses.dataclass
class _Run:
    """One run, set up: its config, where it trains and writes, the model and optimiser,
    and where it starts (0, or the checkpoint it resumes from)."""

    cfg: TrainConfig
    run: Path
    dist: Dist
    dev: torch.device
    model: nn.Module
    net: nn.Module
    """The model as the loop calls it (DDP-wrapped with several ranks)."""
    opt: torch.optim.Optimizer
    sched: Any
    train_set: Any
    val_set: Any
    start: int = 0
    elapsed: float = 0.0
    seen: int = 0
    resumed: bool = False
    observer: nn.Module | None = None
    """The frozen model that observes a share of the training items (--observed-model)."""


@dataclasses.dataclass
class _Progress:
    """What the loop moves on at every step: steps done, time, images, the last loss and
    checkpoint; and the training losses summed since the last log line."""

    step: int
    elapsed: float
    seen: int
    last_ckpt: Path | None
    last_loss: float = math.nan
    t_log: float = 0.0
    seen_log: int = 0
    sums: dict[str, float] = dataclasses.field(default_factory=dict)
    n: int = 0

    def add(self, step: int, images: int, terms: Tensor) -> None:
        """Step `step` (0-based) done on `images` images with these rank-averaged loss terms."""
        self.step, self.seen, self.last_loss = step + 1, self.seen + images, float(terms[0])
        for key, v in zip(LOSS_TERMS, terms.tolist()):
            self.sums[key] = self.sums.get(key, 0.0) + v
        self.n += 1


def _set_up(
    cfg: TrainConfig, data: Path, run: Path, resume: bool, device: str | torch.device | None
) -> _Run:
    """Check the run directory, resolve the config, open the data, build (or restore) the
    model and optimiser, seeded so every rank builds the same start."""
    check_output_dir(run)  # a file in the way: say so before any work
    dev, d = devices(device)
    resumed = has_checkpoint(run)
    if resumed and not resume:
        raise UserError(f"{run} already holds a training run; use --resume or another --out")
    if cfg.batch_size % d.world:
        raise UserError(f"--batch-size {cfg.batch_size} must be a multiple of {d.world} ranks")
    cfg, official = resolve_config(cfg, run, resumed)
    observer = load_observer(cfg, dev)
    train_set, val_set = open_datasets(data, cfg)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    model = build_model(cfg.model)
    if official is not None:
        from amodal_depth.models import init_from_depth_anything_v2

        init_from_depth_anything_v2(model, official, source=cfg.init)
    elif cfg.weights and not resumed:
        from amodal_depth.models.checkpoints import init_from_weights, load_model

        if cfg.grow_after:
            from amodal_depth.models.grow import grow_encoder

            # Same architecture (resolve_config grew cfg.model alike) but for inputs the file
            # lacks, e.g. the zero-initialised observed-depth ones, which keep their init.
            state = model.state_dict()
            state.update(grow_encoder(load_model(cfg.weights), cfg.grow_after).state_dict())
            model.load_state_dict(state)
        else:
            init_from_weights(model, cfg.weights)
    model.to(dev)
    opt = torch.optim.AdamW(_param_groups(model, cfg), lr=cfg.lr, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, WarmupCosine(cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio)
    )
    r = _Run(cfg, run, d, dev, model, model, opt, sched, train_set, val_set, resumed=resumed)
    r.observer = observer
    if resumed:
        r.start, r.elapsed, r.seen = restore_checkpoint(run, model, opt, sched, dev)
    if d.world > 1:
        r.net = nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )
    return r


def _open_run_dir(r: _Run, data: Path):
    """Rank 0: RUN/config.json, the log cut back to the start step, done.json removed when
    steps remain, and the TensorBoard writer (None on other ranks)."""
    if not r.dist.main:
        return None
    r.run.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        r.run / CONFIG_NAME,
        {
            "train": to_dict(r.cfg),
            "data": str(data.resolve()),
            "git_commit": git_commit(),
            "world_size": r.dist.world,
            "torch": torch.__version__,
        },
    )
    truncate_log(r.run, r.start)
    if r.start < r.cfg.steps:
        (r.run / DONE_NAME).unlink(missing_ok=True)
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(r.run / TB_DIR), purge_step=r.start + 1)


# ------------------------------------------------------------------------------ the loop
def train(
    cfg: TrainConfig,
    data: str | Path,
    out: str | Path,
    *,
    resume: bool = False,
    device: str | torch.device | None = None,
    stop_after: int | None = None,
    progress: bool = True,
) -> Path:
    """Train `cfg` on the dataset at `data` into the run directory `out`; returns `out`.

    resume=True continues from RUN/train_state.pt (or starts fresh when the run has no
    checkpoint yet). stop_after=N stops after step N (with a checkpoint) as a kill would,
    for time-boxed runs and tests. Raises UserError on bad input and on a non-finite loss.
    """
    from tqdm import tqdm

    r = _set_up(cfg, Path(data), Path(out), resume, device)
    cfg = r.cfg
    writer = _open_run_dir(r, Path(data))
    bar = tqdm(
        total=cfg.steps, initial=r.start, disable=not (r.dist.main and progress), desc="train",
        dynamic_ncols=True, unit="step",
    )  # fmt: skip
    last_ckpt = r.run / WEIGHTS_NAME if r.resumed else None
    pr = _Progress(
        r.start, r.elapsed, r.seen, last_ckpt, t_log=time.perf_counter(), seen_log=r.seen
    )
    t_start = time.perf_counter()
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    r.model.train()
    try:
        for step, batch in _batches(r.train_set, cfg, r.dist, r.start) if r.start < end else ():
            terms, gnorm = _step(r, batch, step, pr.last_ckpt)
            pr.add(step, cfg.batch_size, terms)
            now = time.perf_counter()
            pr.elapsed = r.elapsed + now - t_start
            bar.update(1)
            if pr.step % cfg.log_every == 0 or pr.step == end:
                _log_step(r, pr, now, float(gnorm), bar, writer)
            if pr.step % cfg.checkpoint_every == 0 or pr.step == end:
                _checkpoint(r, pr, writer)
            if pr.step >= end:
                break
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    _finish(r, pr, end)
    return r.run


def _step(r: _Run, batch: dict[str, Any], step: int, last_ckpt: Path | None):
    """One optimiser step on this rank's batch; returns the loss terms (LOSS_TERMS) averaged
    over ranks, and the gradient norm before clipping."""
    terms = _forward_loss(r.net, batch, r.cfg, r.dev, r.observer)
    reduced = torch.stack([terms[k].detach().reshape(()) for k in LOSS_TERMS])
    if r.dist.world > 1:
        dist.all_reduce(reduced)
        reduced /= r.dist.world
    if not bool(torch.isfinite(reduced[0])):
        _raise_nonfinite(step + 1, float(reduced[0]), last_ckpt, r.cfg)
    r.opt.zero_grad(set_to_none=True)
    terms["total"].backward()
    gnorm = torch.nn.utils.clip_grad_norm_(r.model.parameters(), r.cfg.grad_clip)
    if not bool(torch.isfinite(gnorm)):
        _raise_nonfinite(step + 1, float(gnorm), last_ckpt, r.cfg, what="gradient norm")
    r.opt.step()
    r.sched.step()
    return reduced, gnorm


# ------------------------------------------------------------------------------ logging
def _log_step(r: _Run, pr: _Progress, now: float, gnorm: float, bar, writer) -> None:
    """The mean losses since the last log line, lr, gradient norm and speed: to the bar, and
    (rank 0) to RUN/log.jsonl and TensorBoard; then the sums start again."""
    ips = (pr.seen - pr.seen_log) / max(now - pr.t_log, 1e-9)
    bar.set_postfix(loss=f"{pr.sums['total'] / pr.n:.4f}", img_s=f"{ips:.1f}")
    if r.dist.main:
        rec = {"step": pr.step, **{k: v / pr.n for k, v in pr.sums.items()}}
        rec.update(lr=r.sched.get_last_lr()[0], grad_norm=gnorm)
        rec.update(images_per_s=ips, elapsed_s=pr.elapsed)
        _log(r.run, rec, writer)
    pr.sums, pr.n, pr.t_log, pr.seen_log = {}, 0, now, pr.seen


def _log(run: Path, rec: dict[str, Any], writer) -> None:
    append_log(run, rec)
    if writer is not None:
        for k, v in rec.items():
            if k != "step" and isinstance(v, float | int):
                writer.add_scalar(k if k.startswith("val_") else f"train/{k}", v, rec["step"])
        writer.flush()


# ------------------------------------------------------------------------------ checkpoints
def _checkpoint(r: _Run, pr: _Progress, writer) -> None:
    """Check the weights are finite (every rank: DDP keeps them equal, so all stop
    together); rank 0 saves the checkpoint and logs the val loss."""
    if not _all_finite(r.model):
        _raise_nonfinite(pr.step, float("nan"), pr.last_ckpt, r.cfg, what="weights")
    if r.dist.main:
        save_checkpoint(r.run, r.model, r.opt, r.sched, pr.step, pr.elapsed, pr.seen)
        pr.last_ckpt = r.run / WEIGHTS_NAME
        if r.val_set is not None and min(VAL_IMAGES, len(r.val_set)) > 0:
            _log(r.run, {"step": pr.step, **_val_loss(r.model, r.val_set, r.cfg, r.dev)}, writer)
    if r.dist.world > 1:
        dist.barrier()


def _finish(r: _Run, pr: _Progress, end: int) -> None:
    """RUN/done.json once all steps are done (rank 0), and the process group's end."""
    d, cfg = r.dist, r.cfg
    if d.main and end == cfg.steps and not (r.run / DONE_NAME).exists():
        last_loss = pr.last_loss
        if not math.isfinite(last_loss):  # killed between the last checkpoint and here
            last_loss = last_logged_loss(r.run)
        atomic_write_json(
            r.run / DONE_NAME,
            {
                "steps": cfg.steps,
                "wall_time_s": pr.elapsed,
                "final_loss": last_loss,
                "images_seen": pr.seen,
                "images_per_s": pr.seen / max(pr.elapsed, 1e-9),
                "world_size": d.world,
            },
        )
    if d.world > 1:
        dist.barrier()
        if d.owns_group:
            dist.destroy_process_group()


def _raise_nonfinite(
    step: int, value: float, last: Path | None, cfg: TrainConfig, what: str = "loss"
) -> None:
    kept = f"the last good checkpoint {last} is kept" if last else "no checkpoint was written"
    raise UserError(
        f"{what} became {value} at step {step}; stopped, {kept}; "
        f"lower --lr (now {cfg.lr:g}) and rerun (with --resume to continue)"
    )
