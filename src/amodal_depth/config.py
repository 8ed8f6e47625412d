"""Typed configuration and the named presets, in one place.

Every field has a docstring-like comment saying what it is and why its default is what it
is. Presets are the only place where numbers for a kind of run are chosen: `quick` (tests and
the quickstart: seconds), `cpu` (real runs on 2 CPU cores, at most ~20 minutes) and `gpu`
(official ViT sizes). The resolved config is written into every run directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

VARIANTS = ("ade", "ade_consistency", "ade_mha", "ade_multibatch")
PRESETS = ("quick", "cpu", "cpu-long", "gpu")
"""Training presets (`train --preset`)."""
PLANS = ("quick", "cpu", "gpu")
"""Reproduction plans (`reproduce --preset`): the paper's tables at one training preset."""


@dataclass
class ModelConfig:
    """Architecture of one model. Everything needed to rebuild it from a weights file."""

    variant: str = "ade"
    """One of VARIANTS: how the K layers of one image relate (docs/variants.md)."""
    encoder: str = "vitt"
    """Encoder size name: 'vitq' (tests), 'vitt' (our CPU size) or the official
    'vits', 'vitb', 'vitl', 'vitg'. Sets embed_dim/depth/num_heads when those are None."""
    embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    mlp_ratio: float = 4.0
    patch_size: int = 14
    """Token stride in pixels. Inputs must be multiples of it (Depth Anything V2: 14)."""
    pos_grid: int = 37
    """Side of the learned position-embedding grid (37 = 518/14 for official checkpoints);
    it is interpolated to any input size."""
    conv_stem: bool = False
    """Replace the single patch-embedding conv by a small strided conv stem whose features
    also feed the finest DPT fusion stage (as DPT-Hybrid); speeds up learning from scratch
    on CPU. Official checkpoints use False."""
    intermediate_layers: list[int] | None = None
    """Blocks whose outputs feed the DPT head; None = the official choice for the depth."""
    features: int | None = None
    """DPT fusion width; None = the official value for the encoder size."""
    out_channels: list[int] | None = None
    """DPT projection widths of the four levels; None = official values."""
    guidance_channels: int = 2
    """Channels of the per-layer guidance (models/guidance.py): amodal mask of o_k and the
    union of the amodal masks of the removed objects o_1..o_{k-1}."""
    num_layers: int = 3
    """K, the number of layers the model predicts per image."""
    mha_heads: int = 4
    """Heads of the extra attention modules of ade_mha / ade_multibatch."""
    ffn: str | None = None
    """Block feed-forward: 'mlp' (GELU) or 'swiglu' (official vitg); None = from the encoder."""
    stem_channels: int = 32
    """Width of the conv stem (conv_stem only); its features are skipped into the DPT head."""
    observed_depth: bool = False
    """The model also reads an observed depth of the visible scene (an RGB-D sensor or any
    depth model) as two zero-initialised input channels (models/observation.py); False = the
    paper's RGB-only input. Weights without them load into a model with them."""
    infer_size: int = 518
    """Short side (pixels) predict_layers resizes an image to when no input_size is given;
    set it to the training height (518 = Depth Anything V2's default)."""


@dataclass
class TrainConfig:
    """One training run. Resolved from a preset plus command-line overrides."""

    preset: str = "cpu"
    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = 0
    steps: int = 1000
    """Optimiser steps (not epochs): the budget is wall time. 1000 x 4 images at the cpu
    size take ~14 min (ade, 4.7 img/s) to ~21 min (ade_multibatch, 3.2 img/s) on 2 idle
    cores (benchmarks/bench_models.py); every variant gets the same steps and data."""
    batch_size: int = 4
    """Images per step; each image brings its K layers, so the encoder sees batch*K items."""
    lr: float = 1e-3
    """Peak AdamW learning rate (from scratch; fine-tuning a checkpoint wants ~5e-5)."""
    encoder_lr_scale: float = 1.0
    """Multiplier on the encoder's learning rate (0.1 when fine-tuning from --init)."""
    weight_decay: float = 0.05
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    """Cosine decay ends at lr * min_lr_ratio."""
    grad_clip: float = 1.0
    """Global grad-norm clip; absorbs the occasional spike seen in trials."""
    width: int = 224
    height: int = 168
    """Training input size; multiples of patch_size (images are resized to it)."""
    hflip: bool = True
    colour_jitter: float = 0.0
    """Photometric jitter strength of training images in [0, 1] (data/augment.py; 0 = off)."""
    crop_min: float = 1.0
    """Random crop-and-rescale: smallest crop side as a share of the image (1.0 = off). It
    varies the field of view and the principal point, which a single-template dataset lacks."""
    mask_perturb: float = 0.0
    """Probability that each object's guidance mask is dilated, eroded, boxed, ragged or
    shifted in training (the loss keeps the exact masks); 0 = exact guidance."""
    grad_weight: float = 0.5
    """Weight of the multi-scale gradient-matching term of the loss."""
    invisible_weight: float = 2.0
    """Extra weight on the target's hidden pixels (the region the mission is about)."""
    consistency_weight: float = 0.5
    """Weight of the cross-layer consistency term (ade_consistency only)."""
    checkpoint_every: int = 200
    log_every: int = 20
    num_workers: int = 0
    """DataLoader worker processes (0: load in the training process)."""
    init: str | None = None
    """Path to an official Depth Anything V2 checkpoint to start from."""
    weights: str | None = None
    """Path to a project weights file (a RUN/model.safetensors or weights/model.safetensors)
    to fine-tune: its architecture replaces the preset's, except `observed_depth`, which may
    be switched on (the new input starts at zero, so training starts from that model)."""


# cpu-long: the shipped model, trained on the `diverse` scenes (docs/training.md). A DPT head of
# width 32 instead of 64 trains 1.45x (ade_mha) to 1.9x (ade) more images per hour on 2 cores
# and was as accurate at equal steps (the head, not the ViT, dominates the cost at 224x168;
# docs/training.md); 4500 steps x 4 images take ~1.3 h there at the measured 1.05 s/step.
CPU_LONG_FEATURES = 32
CPU_LONG_OUT_CHANNELS = (48, 96, 192, 192)
CPU_LONG_STEPS = 4500


def _model_for(preset: str, variant: str) -> ModelConfig:
    if preset == "quick":
        return ModelConfig(
            variant=variant, encoder="vitq", conv_stem=True, pos_grid=8, infer_size=84
        )
    if preset == "cpu":
        return ModelConfig(
            variant=variant, encoder="vitt", conv_stem=True, pos_grid=16, infer_size=168
        )
    if preset == "cpu-long":
        return ModelConfig(
            variant=variant, encoder="vitt", conv_stem=True, pos_grid=16, infer_size=168,
            features=CPU_LONG_FEATURES, out_channels=list(CPU_LONG_OUT_CHANNELS),
        )  # fmt: skip
    if preset == "gpu":
        return ModelConfig(variant=variant, encoder="vits", conv_stem=False, pos_grid=37)
    raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")


def preset(name: str, variant: str = "ade") -> TrainConfig:
    """The named preset for one variant."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    model = _model_for(name, variant)
    if name == "quick":
        return TrainConfig(
            preset=name, model=model, steps=30, batch_size=2, width=112, height=84,
            warmup_steps=5, checkpoint_every=10, log_every=5,
        )  # fmt: skip
    if name == "cpu":
        return TrainConfig(preset=name, model=model)
    if name == "cpu-long":
        return TrainConfig(
            preset=name, model=model, steps=CPU_LONG_STEPS, warmup_steps=200,
            colour_jitter=0.5, crop_min=0.6, mask_perturb=0.3,
            checkpoint_every=250, log_every=25,
        )  # fmt: skip
    return TrainConfig(
        preset=name, model=model, steps=20000, batch_size=8, width=518, height=392,
        lr=5e-5, encoder_lr_scale=0.1, warmup_steps=500, num_workers=4,
    )  # fmt: skip


@dataclass
class ReproducePlan:
    """What `amodal-depth reproduce --preset NAME` does: data, seeds, evaluation sizes.
    Training itself follows `preset(name, variant)` (plus `train_overrides`)."""

    preset: str
    num_samples: int
    """Samples generated (the generator splits them into train/val/test)."""
    width: int
    height: int
    """Rendered resolution; equal to the preset's training size, so nothing is resized."""
    seeds: tuple[int, ...]
    """Training seeds per variant; >= 3 wherever seed spread is to be judged."""
    data_seed: int = 0
    eval_images: int | None = None
    """Test images scored per run (None = the whole test split)."""
    val_images: int | None = 64
    """Val images scored per run, to pick the exported weights without looking at test."""
    train_overrides: dict[str, Any] = field(default_factory=dict)
    """TrainConfig fields replaced for every run (tests shrink steps and sizes here)."""


def reproduce_plan(name: str) -> ReproducePlan:
    """The reproduction plan of a preset: quick (quickstart, tests: 1 seed, tiny), cpu (a
    2-core machine: 12 runs of ~15 min; resumable over days), gpu (official ViT-S size)."""
    if name not in PLANS:
        raise ValueError(f"unknown plan {name!r}; choose one of {', '.join(PLANS)}")
    if name == "quick":
        return ReproducePlan(name, num_samples=48, width=112, height=84, seeds=(0,))
    if name == "cpu":
        return ReproducePlan(name, num_samples=2000, width=224, height=168, seeds=(0, 1, 2))
    if name == "gpu":
        return ReproducePlan(
            name, num_samples=20000, width=518, height=392, seeds=(0, 1, 2), val_images=200
        )
    raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


FINETUNE_LR = 5e-5
"""Peak lr when starting from an official checkpoint: 1e-3 (from scratch) would wreck it."""
FINETUNE_ENCODER_LR_SCALE = 0.1


def finetune_from(cfg: TrainConfig, init: str) -> TrainConfig:
    """`cfg` set up to fine-tune an official Depth Anything V2 checkpoint at `init`: its dims
    replace the preset's (read by train), no conv stem, and the fine-tuning learning rates."""
    return dataclasses.replace(
        cfg,
        init=str(init),
        lr=FINETUNE_LR,
        encoder_lr_scale=FINETUNE_ENCODER_LR_SCALE,
        model=dataclasses.replace(cfg.model, conv_stem=False),
    )


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def train_config_from_dict(d: dict[str, Any]) -> TrainConfig:
    d = dict(d)
    model = ModelConfig(**d.pop("model"))
    return TrainConfig(model=model, **d)
