"""Typed configuration and the named presets, in one place.

Every field has a docstring-like comment saying what it is and why its default is what it
is. `PRESET_TABLE` is the only place where numbers for a kind of run are chosen (`quick`:
tests and the quickstart, seconds; `cpu`: real runs on 2 CPU cores; `cpu-long`: the shipped
model; `gpu`: official ViT sizes); what follows from them (the inference size, the
position-embedding grid, a reproduction plan's image size) is derived in `preset` and
`reproduce_plan`, never copied. The resolved config is written into every run directory.
The variant names live in their registry, `models.variants.VARIANTS`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from amodal_depth.errors import UserError


@dataclass
class ModelConfig:
    """Architecture of one model. Everything needed to rebuild it from a weights file."""

    variant: str = "ade"
    """A name of the variant registry (models/variants.py): how the K layers of one image
    relate (docs/variants.md)."""
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
    unguided_first_layer: bool = False
    """Layer 1 (the visible scene) gets no mask guidance: its guidance is zeroed inside the
    model, so the ordinary depth map cannot depend on the masks a user gives (dilated,
    eroded, boxes, or none): exactly so for the variants whose K passes are independent
    (ade, ade_consistency, ade_mha); in ade_multibatch and ade_late_guidance layer 1 still
    attends to the guided layers. Later layers are guided as before. False = the paper's
    input."""
    infer_size: int = 518
    """Short side (pixels) predict_layers resizes an image to when no input_size is given;
    the presets set it to their training height (518 = Depth Anything V2's default)."""


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
    roll_deg: float = 0.0
    """Camera-roll augmentation: with probability 1/2 the item is rotated about its principal
    point by up to +-roll_deg degrees and cut to the largest window without empty corners
    (data/augment.py roll_arrays; exact for square pixels); 0 = off."""
    mask_perturb: float = 0.0
    """Probability that each object's guidance mask is dilated, eroded, boxed, ragged or
    shifted in training (the loss keeps the exact masks); 0 = exact guidance."""
    grad_weight: float = 0.5
    """Weight of the multi-scale gradient-matching term of the loss."""
    invisible_weight: float = 2.0
    """Extra weight on the target's hidden pixels (the region the mission is about)."""
    consistency_weight: float = 0.5
    """Weight of the cross-layer consistency term (ade_consistency only)."""
    anchored_weight: float = 0.0
    """Weight of the anchored hidden-part term (losses.anchored_hidden_term): each layer fitted
    where it shows the visible scene, as inference with an observed depth does, and scored on
    its hidden part; 0 = off (every preset)."""
    anchored_grad_weight: float = 0.0
    """Weight, inside the anchored term, of gradient matching on the fitted hidden part and
    its outline (keeps the hidden part's edges); 0 = off."""
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
    grow_after: list[int] | None = None
    """With `weights`: insert one identity transformer block after each of these encoder
    blocks (0-based) before fine-tuning (models/grow.py): a deeper model that starts as the
    file's model. None = the file's architecture as it is."""
    grow_lr_scale: float = 1.0
    """Multiplier on the learning rate of the blocks `grow_after` inserts (they start as
    identities and must catch up with trained ones)."""
    observed_model: str | None = None
    """With model.observed_depth: an RGB-only project weights file whose layer-1 prediction
    (relative inverse depth, computed on the augmented image in the training step) is the
    observation of a share `observed_model_share` of the training items, instead of a
    simulated one: the errors of a real monocular model, not only modelled ones. None = off."""
    observed_model_share: float = 0.3
    """Share of the training items observed by `observed_model` (val stays simulated)."""


# ------------------------------------------------------------------------------ presets
@dataclass(frozen=True)
class PlanSpec:
    """The reproduction plan of a preset (`reproduce --preset`), beyond its training size."""

    num_samples: int
    """Samples generated (the generator splits them into train/val/test)."""
    seeds: tuple[int, ...]
    """Training seeds per variant; >= 3 wherever seed spread is to be judged."""
    val_images: int | None = 64
    """Val images scored per run, to pick the exported weights without looking at test."""


@dataclass(frozen=True)
class PresetSpec:
    """One named kind of run: the numbers chosen for it, and nothing that follows from
    them (see `preset`)."""

    name: str
    summary: str
    """One line for --help: what the preset is for and how long it takes."""
    width: int
    height: int
    """Training input size (multiples of the patch size): images are resized to it, the
    model predicts at its height by default, and a plan renders its data at it."""
    encoder: str
    conv_stem: bool
    model: Mapping[str, Any] = field(default_factory=dict)
    """Other ModelConfig fields the preset sets."""
    train: Mapping[str, Any] = field(default_factory=dict)
    """Other TrainConfig fields the preset sets (the rest keep their defaults)."""
    plan: PlanSpec | None = None
    """Its reproduction plan; None = `reproduce` does not offer it."""


def _table(*specs: PresetSpec) -> Mapping[str, PresetSpec]:
    return MappingProxyType({s.name: s for s in specs})


# cpu-long: the shipped model, trained on the `diverse` scenes (docs/training.md). A DPT head of
# width 32 instead of 64 trains 1.45x (ade_mha) to 1.9x (ade) more images per hour on 2 cores
# and was as accurate at equal steps (the head, not the ViT, dominates the cost at 224x168;
# docs/training.md); 4500 steps x 4 images take ~1.3 h there at the measured 1.05 s/step.
CPU_LONG_FEATURES = 32
CPU_LONG_OUT_CHANNELS = (48, 96, 192, 192)
CPU_LONG_STEPS = 4500

PRESET_TABLE: Mapping[str, PresetSpec] = _table(
    PresetSpec(
        "quick", "seconds: tests and the quickstart", 112, 84, "vitq", True,
        train=dict(steps=30, batch_size=2, warmup_steps=5, checkpoint_every=10, log_every=5),
        plan=PlanSpec(num_samples=48, seeds=(0,)),
    ),
    PresetSpec(
        "cpu", "<= ~20 min on 2 cores", 224, 168, "vitt", True,
        plan=PlanSpec(num_samples=2000, seeds=(0, 1, 2)),
    ),
    PresetSpec(
        "cpu-long", "the shipped model, ~1.3 h on 2 cores with augmentation, meant for data "
        "generated with --style diverse", 224, 168, "vitt", True,
        model=dict(features=CPU_LONG_FEATURES, out_channels=list(CPU_LONG_OUT_CHANNELS)),
        train=dict(steps=CPU_LONG_STEPS, warmup_steps=200, colour_jitter=0.5, crop_min=0.6,
                   mask_perturb=0.3, checkpoint_every=250, log_every=25),
    ),
    PresetSpec(
        "gpu", "official ViT-S size", 518, 392, "vits", False,
        train=dict(steps=20000, batch_size=8, lr=5e-5, encoder_lr_scale=0.1, warmup_steps=500,
                   num_workers=4),
        plan=PlanSpec(num_samples=20000, seeds=(0, 1, 2), val_images=200),
    ),
)  # fmt: skip
"""Every preset, by name: adding one is one entry here."""

PRESETS = tuple(PRESET_TABLE)
"""Training presets (`train --preset`)."""
PLANS = tuple(name for name, spec in PRESET_TABLE.items() if spec.plan is not None)
"""Reproduction plans (`reproduce --preset`): the paper's tables at one training preset."""


def __getattr__(name: str) -> Any:
    # config.VARIANTS reads the variant registry. Imported on first use: models/ imports
    # this module, so a top-level import of models.variants here would be circular.
    if name == "VARIANTS":
        from amodal_depth.models.variants import VARIANTS

        return tuple(VARIANTS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_preset(name: str) -> PresetSpec:
    """The table entry of `name`; a UserError naming the choices when there is none."""
    try:
        return PRESET_TABLE[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def preset(name: str, variant: str = "ade") -> TrainConfig:
    """The named preset for one variant (UserError for an unknown preset or variant).

    Derived, not chosen: the model's `infer_size` is the training height and its `pos_grid`
    the training width in patches (width / patch_size)."""
    from amodal_depth.models.variants import get_variant

    spec = get_preset(name)
    get_variant(variant)
    model = ModelConfig(
        variant=variant, encoder=spec.encoder, conv_stem=spec.conv_stem, infer_size=spec.height,
        **copy.deepcopy(dict(spec.model)),
    )  # fmt: skip
    model.pos_grid = spec.width // model.patch_size
    train = copy.deepcopy(dict(spec.train))
    return TrainConfig(preset=name, model=model, width=spec.width, height=spec.height, **train)


@dataclass
class ReproducePlan:
    """What `amodal-depth reproduce --preset NAME` does: data, seeds, evaluation sizes.
    Training itself follows `preset(name, variant)` (plus `train_overrides`)."""

    preset: str
    num_samples: int
    """Samples generated (the generator splits them into train/val/test)."""
    width: int
    height: int
    """Rendered resolution; the preset's training size, so nothing is resized."""
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
    """The reproduction plan of a preset (`PlanSpec` in `PRESET_TABLE`), rendered at the
    preset's training size; a UserError for a name without a plan."""
    spec = PRESET_TABLE.get(name)
    if spec is None or spec.plan is None:
        raise UserError(f"unknown plan {name!r}; choose one of {', '.join(PLANS)}")
    p = spec.plan
    return ReproducePlan(
        name, num_samples=p.num_samples, width=spec.width, height=spec.height,
        seeds=p.seeds, val_images=p.val_images,
    )  # fmt: skip


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
