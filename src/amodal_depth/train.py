"""The training loop: `amodal-depth train`, one file read top to bottom.

Single process on CPU by default; DistributedDataParallel when started by torchrun (its
RANK / WORLD_SIZE / LOCAL_RANK environment): gloo on CPU, nccl on CUDA, each rank reads its
own shard of every step's images, only rank 0 writes. Run directory (docs/training.md):

    RUN/config.json        resolved TrainConfig + data path + git commit
    RUN/model.safetensors  latest weights (models.checkpoints.save_model), written atomically
    RUN/train_state.pt     weights, optimizer, scheduler, step, RNG states (resume)
    RUN/log.jsonl          one JSON line per log step (and per validation)
    RUN/tb/                TensorBoard scalars
    RUN/done.json          written at the end: steps, wall time, final loss

Resume follows the same trajectory as an uninterrupted run: the image order of step s is a
pure function of (seed, s), and weights, optimizer, scheduler and RNG come back exactly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from amodal_depth.config import ModelConfig, TrainConfig, to_dict, train_config_from_dict
from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_path, atomic_write_json, atomic_write_text
from amodal_depth.losses import LossWeights, layered_depth_loss
from amodal_depth.models import build_guidance, build_model, get_variant, normalize_image
from amodal_depth.models.observation import observation_input
from amodal_depth.provenance import git_commit

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
STATE_NAME = "train_state.pt"
LOG_NAME = "log.jsonl"
DONE_NAME = "done.json"
TB_DIR = "tb"

VAL_IMAGES = 8
"""Images of the val split scored at every checkpoint (a cheap learning signal, not a metric)."""

# Fields that may differ on --resume: they change what is written, not the trajectory.
_RESUME_FREE = {"checkpoint_every", "log_every", "num_workers"}


# ------------------------------------------------------------------------- environment
@dataclasses.dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device: torch.device) -> _Dist:
    """DDP from torchrun's environment; a plain single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return _Dist()
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return _Dist(dist.get_rank(), dist.get_world_size(), local, owns)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto' / None -> cuda when available, else cpu; 'cuda' without a GPU is a UserError."""
    name = str(device or "auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for but torch sees no GPU; use --device cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise UserError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


# -------------------------------------------------------------------------------- data
def _open_dataset(data: Path, split: str, cfg: TrainConfig, *, train: bool):
    from amodal_depth.data.augment import AugmentConfig
    from amodal_depth.data.dataset import AmodalLayersDataset

    # Models that read an observed depth get a simulated one (data/observe.py), in val too.
    augment = AugmentConfig(observe=cfg.model.observed_depth)
    if train:
        augment = AugmentConfig(
            colour=cfg.colour_jitter, crop_min=cfg.crop_min, mask_prob=cfg.mask_perturb,
            observe=cfg.model.observed_depth,
        )  # fmt: skip
    return AmodalLayersDataset(
        data, split, size=(cfg.width, cfg.height), hflip=cfg.hflip and train, seed=cfg.seed,
        augment=augment,
    )  # fmt: skip


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def _batches(
    dataset, cfg: TrainConfig, d: _Dist, start_step: int
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
    the encoder (`pretrained.*`) at lr * encoder_lr_scale."""
    groups: dict[tuple[bool, bool], list[Tensor]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim < 2 or any(t in name for t in ("pos_embed", "cls_token", "norm"))
        encoder = name.startswith("pretrained.")
        groups.setdefault((encoder, no_decay), []).append(p)
    out = []
    for (encoder, no_decay), params in sorted(groups.items()):
        out.append(
            {
                "params": params,
                "weight_decay": 0.0 if no_decay else cfg.weight_decay,
                "lr": cfg.lr * (cfg.encoder_lr_scale if encoder else 1.0),
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


# ---------------------------------------------------------------------- checkpointing
def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
    }


def _set_rng_state(s: dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    if s["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])
    py = s["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = s["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["cached"]))


def _all_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _save_checkpoint(
    run: Path, model: nn.Module, opt, sched, step: int, elapsed: float, seen: int
) -> None:
    """train_state.pt then model.safetensors, each atomically. The state carries its own
    copy of the weights, so a kill between the two renames still resumes consistently."""
    from amodal_depth.models.checkpoints import save_model

    state = {
        "step": step,
        "elapsed": elapsed,
        "images_seen": seen,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "rng": _rng_state(),
    }
    with atomic_path(run / STATE_NAME) as tmp:
        torch.save(state, tmp)
    save_model(model, run / WEIGHTS_NAME, extra_metadata={"step": str(step)})  # atomic


def _load_state(run: Path, device: torch.device) -> dict[str, Any]:
    try:
        return torch.load(run / STATE_NAME, map_location=device, weights_only=True)
    except Exception as e:  # a truncated or foreign file
        raise UserError(
            f"cannot read {run / STATE_NAME} ({type(e).__name__}); "
            f"start a new run with another --out"
        ) from None


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (a killed run's tail)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by the kill
    atomic_write_text(path, "".join(x + "\n" for x in keep))


# ------------------------------------------------------------------------------ model
def _model_config_for_init(cfg: TrainConfig) -> ModelConfig:
    """The model config that holds the official checkpoint at `cfg.init`: the architecture is
    read from its tensors; the variant, K, guidance and inference size come from cfg.model."""
    from amodal_depth.models.dav2 import config_from_official, read_official_state_dict

    path = Path(cfg.init)  # type: ignore[arg-type]
    if not path.is_file():
        raise UserError(f"--init {path}: no such file; give an official Depth Anything V2 .pth")
    found = config_from_official(read_official_state_dict(path))
    m = cfg.model
    return dataclasses.replace(
        found,
        variant=m.variant,
        num_layers=m.num_layers,
        guidance_channels=m.guidance_channels,
        mha_heads=m.mha_heads,
        infer_size=m.infer_size,
        conv_stem=False,
    )


def _model_config_for_weights(cfg: TrainConfig) -> ModelConfig:
    """The architecture of the project weights at `cfg.weights` (fine-tuning our own model),
    with the preset's observed_depth switch and inference size."""
    from amodal_depth.models.checkpoints import read_model_config

    path = Path(cfg.weights)  # type: ignore[arg-type]
    if not path.is_file():
        raise UserError(f"--weights {path}: no such file; give a project .safetensors file")
    found = read_model_config(path)
    if found.variant != cfg.model.variant:
        raise UserError(
            f"--weights {path} is a {found.variant} model; train it with --variant {found.variant}"
        )
    return dataclasses.replace(
        found, observed_depth=cfg.model.observed_depth, infer_size=cfg.model.infer_size
    )


def _check_config(cfg: TrainConfig) -> None:
    p = cfg.model.patch_size
    if cfg.width % p or cfg.height % p:
        raise UserError(
            f"training size {cfg.width}x{cfg.height} is not a multiple of the patch size {p}"
        )
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.lr <= 0:
        raise UserError("steps, batch size and lr must be positive")
    if cfg.model.variant != get_variant(cfg.model.variant).name:
        raise UserError(f"unknown variant {cfg.model.variant!r}")


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The latest weights of a training run (RUN/model.safetensors), in eval mode."""
    from amodal_depth.models.checkpoints import load_model

    path = Path(run_dir) / WEIGHTS_NAME
    if not path.is_file():
        raise UserError(
            f"{run_dir} has no {WEIGHTS_NAME}: not a training run, or it stopped before its "
            "first checkpoint; train it (amodal-depth train --out ...) or pass --weights"
        )
    model = load_model(path, device=str(device))
    model.eval()
    return model


# ------------------------------------------------------------------------------- loop
def _forward_loss(model: nn.Module, batch: dict[str, Any], cfg: TrainConfig, device):
    spec = get_variant(cfg.model.variant)
    rgb = batch["rgb"].to(device, non_blocking=True)
    amodal = batch["amodal"].to(device)
    # Perturbed masks (mask_perturb) feed the guidance only; the loss keeps the exact ones.
    guide = batch.get("guidance_amodal", batch["amodal"]).to(device)
    guidance = build_guidance(guide, cfg.model.guidance_channels)
    observation = None
    if cfg.model.observed_depth:
        observation = observation_input(
            batch["observed_inverse"].to(device), batch["observed_valid"].to(device)
        )
    pred = model(normalize_image(rgb), guidance, observation)
    weights = LossWeights(
        invisible_weight=cfg.invisible_weight,
        grad_weight=cfg.grad_weight,
        consistency_weight=cfg.consistency_weight,
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
    dev = resolve_device(device)
    d = _setup_distributed(dev)
    if dev.type == "cuda" and d.world > 1:
        dev = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(dev)
    run, data = Path(out), Path(data)
    has_ckpt = (run / STATE_NAME).exists() or (run / WEIGHTS_NAME).exists()
    if has_ckpt and not resume:
        raise UserError(f"{run} already holds a training run; use --resume or another --out")
    if cfg.batch_size % d.world:
        raise UserError(f"--batch-size {cfg.batch_size} must be a multiple of {d.world} ranks")

    if has_ckpt and (run / CONFIG_NAME).exists():
        saved = train_config_from_dict(json.loads((run / CONFIG_NAME).read_text())["train"])
        if cfg.init or cfg.weights:  # the saved config already holds the resolved dims
            cfg = dataclasses.replace(cfg, model=saved.model)
        diff = [
            f"{k}: {getattr(saved, k)!r} vs {getattr(cfg, k)!r}"
            for k in to_dict(cfg)
            if k not in _RESUME_FREE and to_dict(saved)[k] != to_dict(cfg)[k]
        ]
        if diff:
            raise UserError(
                f"{run} was trained with other options ({'; '.join(diff)}); "
                "resume with the same options or use another --out"
            )
        cfg = dataclasses.replace(saved, **{k: getattr(cfg, k) for k in _RESUME_FREE})
    elif cfg.init:
        cfg = dataclasses.replace(cfg, model=_model_config_for_init(cfg))
    elif cfg.weights:
        cfg = dataclasses.replace(cfg, model=_model_config_for_weights(cfg))
    _check_config(cfg)

    train_set = _open_dataset(data, "train", cfg, train=True)
    if len(train_set) < cfg.batch_size:
        raise UserError(
            f"{data} has {len(train_set)} training images, fewer than --batch-size "
            f"{cfg.batch_size}; generate more data or lower --batch-size"
        )
    try:
        val_set = _open_dataset(data, "val", cfg, train=False)
    except UserError:
        val_set = None

    # Model, optimiser and schedule, seeded so every rank builds the same start.
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    model = build_model(cfg.model)
    if cfg.init and not has_ckpt:
        from amodal_depth.models import init_from_depth_anything_v2

        init_from_depth_anything_v2(model, cfg.init)
    elif cfg.weights and not has_ckpt:
        from amodal_depth.models.checkpoints import init_from_weights

        init_from_weights(model, cfg.weights)
    model.to(dev)
    opt = torch.optim.AdamW(_param_groups(model, cfg), lr=cfg.lr, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, WarmupCosine(cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio)
    )
    start, elapsed, seen = 0, 0.0, 0
    if has_ckpt:
        state = _load_state(run, dev)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start, elapsed, seen = int(state["step"]), float(state["elapsed"]), state["images_seen"]
    net: nn.Module = model
    if d.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )

    writer = None
    if d.main:
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            run / CONFIG_NAME,
            {
                "train": to_dict(cfg),
                "data": str(data.resolve()),
                "git_commit": git_commit(),
                "world_size": d.world,
                "torch": torch.__version__,
            },
        )
        _truncate_log(run / LOG_NAME, start)
        if start < cfg.steps:
            (run / DONE_NAME).unlink(missing_ok=True)
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run / TB_DIR), purge_step=start + 1)

    from tqdm import tqdm

    bar = tqdm(
        total=cfg.steps, initial=start, disable=not (d.main and progress), desc="train",
        dynamic_ncols=True, unit="step",
    )  # fmt: skip
    last_ckpt = run / WEIGHTS_NAME if has_ckpt else None
    acc: dict[str, float] = {}
    acc_n, t_log, seen_log = 0, time.perf_counter(), seen
    t_start, elapsed0 = time.perf_counter(), elapsed
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    last_loss = float("nan")
    model.train()
    try:
        for step, batch in _batches(train_set, cfg, d, start) if start < end else ():
            terms = _forward_loss(net, batch, cfg, dev)
            loss = terms["total"]
            reduced = torch.stack([terms[k].detach() for k in ("total", "ssi", "grad")])
            reduced = torch.cat([reduced, terms["consistency"].detach().reshape(1)])
            if d.world > 1:
                dist.all_reduce(reduced)
                reduced /= d.world
            if not bool(torch.isfinite(reduced[0])):
                _raise_nonfinite(step + 1, float(reduced[0]), last_ckpt, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if not bool(torch.isfinite(gnorm)):
                _raise_nonfinite(step + 1, float(gnorm), last_ckpt, cfg, what="gradient norm")
            opt.step()
            sched.step()
            done = step + 1
            seen += cfg.batch_size
            last_loss = float(reduced[0])
            for key, v in zip(("total", "ssi", "grad", "consistency"), reduced.tolist()):
                acc[key] = acc.get(key, 0.0) + v
            acc_n += 1
            now = time.perf_counter()
            elapsed = elapsed0 + now - t_start
            bar.update(1)
            if done % cfg.log_every == 0 or done == end:
                ips = (seen - seen_log) / max(now - t_log, 1e-9)
                bar.set_postfix(loss=f"{acc['total'] / acc_n:.4f}", img_s=f"{ips:.1f}")
                if d.main:
                    rec = {"step": done, **{k: v / acc_n for k, v in acc.items()}}
                    rec.update(lr=sched.get_last_lr()[0], grad_norm=float(gnorm))
                    rec.update(images_per_s=ips, elapsed_s=elapsed)
                    _append_log(run, rec, writer)
                acc, acc_n, t_log, seen_log = {}, 0, now, seen
            if done % cfg.checkpoint_every == 0 or done == end:
                # Every rank checks (DDP keeps the weights equal), so all stop together.
                if not _all_finite(model):
                    _raise_nonfinite(done, float("nan"), last_ckpt, cfg, what="weights")
                if d.main:
                    _save_checkpoint(run, model, opt, sched, done, elapsed, seen)
                    last_ckpt = run / WEIGHTS_NAME
                    if val_set is not None and min(VAL_IMAGES, len(val_set)) > 0:
                        _append_log(run, {"step": done, **_val_loss(model, val_set, cfg, dev)},
                                    writer)  # fmt: skip
                if d.world > 1:
                    dist.barrier()
            if done >= end:
                break
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    if d.main and end == cfg.steps and not (run / DONE_NAME).exists():
        if not math.isfinite(last_loss):  # killed between the last checkpoint and here
            last_loss = _last_logged_loss(run / LOG_NAME)
        atomic_write_json(
            run / DONE_NAME,
            {
                "steps": cfg.steps,
                "wall_time_s": elapsed,
                "final_loss": last_loss,
                "images_seen": seen,
                "images_per_s": seen / max(elapsed, 1e-9),
                "world_size": d.world,
            },
        )
    if d.world > 1:
        dist.barrier()
        if d.owns_group:
            dist.destroy_process_group()
    return run


def _last_logged_loss(path: Path) -> float:
    text = path.read_text() if path.exists() else ""
    losses = [r["total"] for r in map(json.loads, text.splitlines()) if "total" in r]
    return float(losses[-1]) if losses else float("nan")


def _append_log(run: Path, rec: dict[str, Any], writer) -> None:
    with open(run / LOG_NAME, "a") as f:
        f.write(json.dumps(rec) + "\n")
        f.flush()
    if writer is not None:
        for k, v in rec.items():
            if k != "step" and isinstance(v, float | int):
                writer.add_scalar(k if k.startswith("val_") else f"train/{k}", v, rec["step"])
        writer.flush()


def _raise_nonfinite(
    step: int, value: float, last: Path | None, cfg: TrainConfig, what: str = "loss"
) -> None:
    kept = f"the last good checkpoint {last} is kept" if last else "no checkpoint was written"
    raise UserError(
        f"{what} became {value} at step {step}; stopped, {kept}; "
        f"lower --lr (now {cfg.lr:g}) and rerun (with --resume to continue)"
    )
