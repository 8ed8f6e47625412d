"""Setting up a training run: the devices and process group, the datasets, and the config
it trains with (the preset's, the architecture of `--init` / `--weights`, or on resume the
saved one), checked. `train.py` calls these before its loop.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from amodal_depth.config import ModelConfig, TrainConfig, to_dict, train_config_from_dict
from amodal_depth.errors import UserError
from amodal_depth.models.device import resolve_device
from amodal_depth.models.variants import get_variant
from amodal_depth.runs import read_config

# Fields that may differ on --resume: they change what is written, not the trajectory.
RESUME_FREE = {"checkpoint_every", "log_every", "num_workers"}


# ------------------------------------------------------------------------- environment
@dataclasses.dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun group (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Dist:
    """DDP from torchrun's environment; a plain single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return Dist()
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return Dist(dist.get_rank(), dist.get_world_size(), local, owns)


def devices(device: str | torch.device | None) -> tuple[torch.device, Dist]:
    """The device of this process and its place in a torchrun group (one GPU per rank)."""
    dev = resolve_device(device)
    d = setup_distributed(dev)
    if dev.type == "cuda" and d.world > 1:
        dev = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(dev)
    return dev, d


# -------------------------------------------------------------------------------- data
def _open_dataset(data: Path, split: str, cfg: TrainConfig, *, train: bool):
    from amodal_depth.data.augment import AugmentConfig
    from amodal_depth.data.dataset import AmodalLayersDataset

    # Models that read an observed depth get a simulated one (data/observe.py), in val too;
    # with observed_model, a share of the training items is observed by that model instead.
    augment = AugmentConfig(observe=cfg.model.observed_depth)
    if train:
        augment = AugmentConfig(
            colour=cfg.colour_jitter, crop_min=cfg.crop_min, mask_prob=cfg.mask_perturb,
            roll_deg=cfg.roll_deg, observe=cfg.model.observed_depth,
            observe_model_share=cfg.observed_model_share if cfg.observed_model else 0.0,
        )  # fmt: skip
    return AmodalLayersDataset(
        data, split, size=(cfg.width, cfg.height), hflip=cfg.hflip and train, seed=cfg.seed,
        augment=augment,
    )  # fmt: skip


def open_datasets(data: Path, cfg: TrainConfig) -> tuple[Any, Any]:
    """The train split (at least one batch) and the val split (None when there is none)."""
    train_set = _open_dataset(data, "train", cfg, train=True)
    if train_set.num_layers != cfg.model.num_layers:
        raise UserError(
            f"{data} has K = {train_set.num_layers} objects per image but the model predicts "
            f"K = {cfg.model.num_layers} layers; train on data with K = "
            f"{cfg.model.num_layers} (or without --weights/--resume for K = "
            f"{train_set.num_layers})"
        )
    if len(train_set) < cfg.batch_size:
        raise UserError(
            f"{data} has {len(train_set)} training images, fewer than --batch-size "
            f"{cfg.batch_size}; generate more data or lower --batch-size"
        )
    try:
        val_set = _open_dataset(data, "val", cfg, train=False)
    except UserError:
        val_set = None
    return train_set, val_set


# ------------------------------------------------------------------------------ model
def read_init(cfg: TrainConfig) -> dict[str, Tensor]:
    """The tensors of the official checkpoint at `cfg.init`, read once for both its
    architecture and its weights."""
    from amodal_depth.models.dav2 import read_official_state_dict

    path = Path(cfg.init)  # type: ignore[arg-type]
    if not path.is_file():
        raise UserError(f"--init {path}: no such file; give an official Depth Anything V2 .pth")
    return read_official_state_dict(path)


def model_config_for_init(cfg: TrainConfig, official: dict[str, Tensor]) -> ModelConfig:
    """The model config that holds the official checkpoint `official` (cfg.init's tensors):
    the architecture is read from them; the variant, K, guidance and inference size come
    from cfg.model."""
    from amodal_depth.models.dav2 import config_from_official

    found = config_from_official(official)
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


def model_config_for_weights(cfg: TrainConfig) -> ModelConfig:
    """The architecture of the project weights at `cfg.weights` (fine-tuning our own model),
    with the preset's observed_depth switch and inference size; unguided_first_layer is
    switched on by either the file or the run (fine-tuning never turns it off)."""
    from amodal_depth.models.checkpoints import read_model_config

    path = Path(cfg.weights)  # type: ignore[arg-type]
    if not path.is_file():
        raise UserError(f"--weights {path}: no such file; give a project .safetensors file")
    found = read_model_config(path)
    if found.variant != cfg.model.variant:
        raise UserError(
            f"--weights {path} is a {found.variant} model; train it with --variant {found.variant}"
        )
    if cfg.grow_after:
        from amodal_depth.models.grow import grown_layout

        source, hooks = grown_layout(found.depth, found.intermediate_layers, cfg.grow_after)
        found = dataclasses.replace(found, depth=len(source), intermediate_layers=hooks)
    return dataclasses.replace(
        found,
        observed_depth=cfg.model.observed_depth,
        infer_size=cfg.model.infer_size,
        unguided_first_layer=found.unguided_first_layer or cfg.model.unguided_first_layer,
    )


def load_observer(cfg: TrainConfig, device: torch.device) -> torch.nn.Module | None:
    """The frozen depth model of `cfg.observed_model` (None without one): its layer-1
    prediction observes a share of the training items (train.observe_with_model)."""
    if not cfg.observed_model:
        return None
    from amodal_depth.models.checkpoints import load_model

    path = Path(cfg.observed_model)
    if not path.is_file():
        raise UserError(f"--observed-model {path}: no such file; give a project .safetensors file")
    observer = load_model(path)
    if observer.config.num_layers != cfg.model.num_layers:
        raise UserError(
            f"--observed-model {path} predicts {observer.config.num_layers} layers, the data "
            f"has {cfg.model.num_layers}; give a model trained on {cfg.model.num_layers} layers"
        )
    observer.requires_grad_(False)
    return observer.eval().to(device)


def check_config(cfg: TrainConfig) -> None:
    p = cfg.model.patch_size
    if cfg.width % p or cfg.height % p:
        raise UserError(
            f"training size {cfg.width}x{cfg.height} is not a multiple of the patch size {p}"
        )
    if cfg.grow_after and not cfg.weights:
        raise UserError("--grow-after deepens the model of --weights; give --weights too")
    if not 0.0 < cfg.grow_lr_scale < float("inf"):
        raise UserError(f"--grow-lr-scale must be a number > 0, got {cfg.grow_lr_scale}")
    if cfg.grow_lr_scale != 1.0 and not cfg.grow_after:
        raise UserError(
            "--grow-lr-scale scales the blocks --grow-after inserts; give --grow-after too"
        )
    if cfg.observed_model and not cfg.model.observed_depth:
        raise UserError(
            "--observed-model observes the training items for a model that reads a depth; "
            "add --observed-depth"
        )
    if cfg.observed_model_share != TrainConfig.observed_model_share and not cfg.observed_model:
        raise UserError(
            "--observed-model-share is the share --observed-model observes; give it too"
        )
    if not 0.0 <= cfg.observed_model_share <= 1.0:
        raise UserError(f"--observed-model-share must be in [0, 1], got {cfg.observed_model_share}")
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.lr <= 0:
        raise UserError("steps, batch size and lr must be positive")
    if not 0.0 <= cfg.roll_deg <= 45.0:
        raise UserError(f"--roll-deg must be in [0, 45] degrees, got {cfg.roll_deg}")
    for flag, v in (("anchored-weight", cfg.anchored_weight),
                    ("anchored-grad-weight", cfg.anchored_grad_weight)):  # fmt: skip
        if not 0.0 <= v < float("inf"):
            raise UserError(f"--{flag} must be a number >= 0, got {v}")
    get_variant(cfg.model.variant)  # a UserError naming the variants


def resumed_config(cfg: TrainConfig, saved: TrainConfig, run: Path) -> TrainConfig:
    """The saved config of the run being resumed; `cfg` may differ only in RESUME_FREE."""
    if cfg.init or cfg.weights:  # the saved config already holds the resolved dims
        cfg = dataclasses.replace(cfg, model=saved.model)
    diff = [
        f"{k}: {getattr(saved, k)!r} vs {getattr(cfg, k)!r}"
        for k in to_dict(cfg)
        if k not in RESUME_FREE and to_dict(saved)[k] != to_dict(cfg)[k]
    ]
    if diff:
        raise UserError(
            f"{run} was trained with other options ({'; '.join(diff)}); "
            "resume with the same options or use another --out"
        )
    return dataclasses.replace(saved, **{k: getattr(cfg, k) for k in RESUME_FREE})


def resolve_config(
    cfg: TrainConfig, run: Path, has_ckpt: bool
) -> tuple[TrainConfig, dict[str, Tensor] | None]:
    """The config the run trains with (the saved one on resume; the architecture of --init
    or --weights), checked; and the official tensors to start from (a fresh --init run)."""
    saved = read_config(run) if has_ckpt else None
    official = None
    if saved is not None:
        cfg = resumed_config(cfg, train_config_from_dict(saved["train"]), run)
    elif cfg.init:
        official = read_init(cfg)
        cfg = dataclasses.replace(cfg, model=model_config_for_init(cfg, official))
    elif cfg.weights:
        cfg = dataclasses.replace(cfg, model=model_config_for_weights(cfg))
    check_config(cfg)
    return cfg, None if has_ckpt else official
