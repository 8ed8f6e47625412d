"""Generator styles: the parameter tables of the domain-randomised scene distributions.

`template` is the original generator: one room template whose parameters are the fields of
`GeneratorConfig` (hfov_deg, camera_height, pitch_deg, ceiling_prob, max_clutter); it has no
entry here and its code path is unchanged. `diverse` is the training distribution
(`diverse-wide`: the same with the camera's height, pitch, roll and principal point over
the range of indoor photographs), and
`shifted` a held-out evaluation distribution: wherever a quantity can lie outside the
training range it does (field of view, principal point offset, roll, camera height,
ambient level, light colours), and it draws object families and a texture family that
`diverse` never draws. `shifted-<factor>` (lens, camera, tilt, light, texture, noise,
objects) is `diverse` with only that one group of `shifted`'s ranges: evaluation-only sets
that separate the causes of the shifted set's difficulty. Every range is a tuple of
intervals (a union); a value is drawn uniformly from the union (an interval is chosen with
probability proportional to its length).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

Ranges = tuple[tuple[float, float], ...]


# Object families (ObjectLibrary.sample_styled) and texture families (objects.TEXTURES).
FAMILIES_DIVERSE = ("furniture", "primitive", "composite", "mesh")
FAMILIES_SHIFTED_ONLY = ("torus", "tower", "capsule")
TEXTURES_DIVERSE = ("plain", "grain", "checker", "stripes", "noise", "dots", "gradient")
TEXTURES_SHIFTED_ONLY = ("rings",)


@dataclass(frozen=True)
class Style:
    """Ranges of one randomised scene distribution (see the module docstring)."""

    name: str
    # camera
    hfov_deg: Ranges
    """Horizontal field of view, per sample (fx = fy: square pixels)."""
    principal_offset: Ranges
    """|cx - (W-1)/2| / W and |cy - (H-1)/2| / H, each with a random sign."""
    roll_deg: Ranges
    """|roll| about the optical axis, random sign."""
    camera_height: Ranges
    pitch_deg: tuple[float, float]
    """Range the downward pitch is clipped to (it aims at the objects)."""
    # layout
    first_distance: tuple[float, float]
    """Distance of o_1's footprint centre from the camera before the fit-in-view floor."""
    gap: tuple[float, float]
    """Front-to-back gap between consecutive targets' footprints (m)."""
    yaw_deg: float
    """Targets are turned by up to +-yaw_deg about the vertical."""
    # room
    room_margin: tuple[float, float]
    """Free floor between the objects and a wall (per side)."""
    open_floor_prob: float
    """Probability (per side) of a large open floor instead: margin from open_margin."""
    open_margin: tuple[float, float]
    room_height: tuple[float, float]
    wall_missing_prob: float
    """Each of the four walls is absent with this probability (rays leave: depth 0)."""
    ceiling_prob: float
    backdrop_value: tuple[float, float]
    """HSV value of the backdrop colour seen where rays leave the room (depth 0)."""
    # lighting
    num_lights: tuple[int, int]
    light_hue: Ranges
    light_saturation: tuple[float, float]
    light_intensity: tuple[float, float]
    """Diffuse intensity of each light before dividing by sqrt(number of lights)."""
    shadow_prob: float
    """Probability that the sample has cast shadows."""
    ambient: Ranges
    # materials
    textures: tuple[tuple[str, float], ...]
    """Texture families with weights, drawn per surface."""
    saturation: tuple[float, float]
    value: tuple[float, float]
    texture_scale: tuple[float, float]
    restyle_prob: float
    """Probability that a furniture/mesh object gets random materials on every part."""
    noise_std: tuple[float, float]
    """Per-sample standard deviation of the colour noise (0-255 units)."""
    # objects
    families: tuple[tuple[str, float], ...]
    """Object families with weights, drawn per object ('mesh' only with --mesh-dir)."""
    max_distractors: int
    """Up to this many extra objects anywhere in the room; any that hides a target is dropped."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


DIVERSE = Style(
    name="diverse",
    hfov_deg=((40.0, 100.0),),
    principal_offset=((0.0, 0.04),),
    roll_deg=((0.0, 8.0),),
    camera_height=((0.5, 2.4),),
    pitch_deg=(-5.0, 50.0),
    first_distance=(0.8, 3.5),
    gap=(0.05, 0.9),
    yaw_deg=180.0,
    room_margin=(0.3, 2.0),
    open_floor_prob=0.25,
    open_margin=(3.0, 10.0),
    room_height=(2.4, 4.5),
    wall_missing_prob=0.25,
    ceiling_prob=0.5,
    backdrop_value=(0.0, 0.9),
    num_lights=(1, 3),
    light_hue=((0.0, 0.2), (0.5, 0.7)),  # warm (incandescent) to cool (daylight) whites
    light_saturation=(0.0, 0.35),
    light_intensity=(0.6, 1.3),
    shadow_prob=0.7,
    ambient=((0.15, 0.6),),
    textures=(
        ("plain", 2.0),
        ("grain", 1.0),
        ("checker", 1.0),
        ("stripes", 1.0),
        ("noise", 1.0),
        ("dots", 1.0),
        ("gradient", 1.0),
    ),  # fmt: skip
    saturation=(0.0, 0.9),
    value=(0.12, 0.98),
    texture_scale=(0.04, 0.6),
    restyle_prob=0.5,
    noise_std=(0.5, 5.0),
    families=(("furniture", 2.0), ("primitive", 1.5), ("composite", 1.5), ("mesh", 2.0)),
    max_distractors=5,
)

# DIVERSE with the camera's pose over the range of indoor photographs, from a phone held at
# the floor to a camera on a high shelf or the ceiling, pitched from slightly up to steeply
# down, rolled and off-centre like a hand-held or cropped photo. Why: the factor study
# (docs/training.md) found the shipped model's ordinary depth tied to the camera's pose in
# the image (heights and tilts just outside DIVERSE's ranges cost most of the shifted set's
# drop), and a user's camera is anywhere in these ranges. Lens, lights, materials and
# objects stay DIVERSE's, so the shifted set still holds them out.
DIVERSE_WIDE = dataclasses.replace(
    DIVERSE,
    name="diverse-wide",
    principal_offset=((0.0, 0.08),),
    roll_deg=((0.0, 15.0),),
    camera_height=((0.25, 3.0),),
    pitch_deg=(-15.0, 65.0),
)

# The held-out distribution: DIVERSE's table except where a quantity moves outside it.
SHIFTED = dataclasses.replace(
    DIVERSE,
    name="shifted",
    hfov_deg=((30.0, 38.0), (104.0, 115.0)),
    principal_offset=((0.04, 0.07),),
    roll_deg=((8.0, 12.0),),
    camera_height=((0.35, 0.5), (2.4, 2.8)),
    pitch_deg=(-8.0, 55.0),
    light_hue=((0.25, 0.45), (0.75, 0.95)),  # green and magenta/purple: never in diverse
    light_saturation=(0.4, 0.7),
    ambient=((0.08, 0.15), (0.6, 0.7)),
    textures=(
        ("rings", 3.0),
        ("plain", 1.0),
        ("checker", 0.5),
        ("stripes", 0.5),
        ("noise", 0.5),
        ("dots", 0.5),
        ("gradient", 0.5),
    ),  # fmt: skip
    noise_std=(5.0, 8.0),
    families=(("torus", 1.0), ("tower", 1.0), ("capsule", 1.0), ("mesh", 1.0)),
)

SHIFT_FACTORS: dict[str, tuple[str, ...]] = {
    "lens": ("hfov_deg",),
    "camera": ("camera_height", "pitch_deg"),
    "tilt": ("roll_deg", "principal_offset"),
    "light": ("light_hue", "light_saturation", "ambient"),
    "texture": ("textures",),
    "noise": ("noise_std",),
    "objects": ("families",),
}
"""The groups of fields in which SHIFTED differs from DIVERSE. `shifted-<factor>` is DIVERSE
with one group taken from SHIFTED: a controlled set that says how much of the shifted set's
difficulty that one change brings (benchmarks/shift_factors.py)."""

FACTOR_STYLES: dict[str, Style] = {
    f"shifted-{factor}": dataclasses.replace(
        DIVERSE, name=f"shifted-{factor}", **{f: getattr(SHIFTED, f) for f in fields}
    )
    for factor, fields in SHIFT_FACTORS.items()
}

STYLES: dict[str, Style] = {
    "diverse": DIVERSE,
    "diverse-wide": DIVERSE_WIDE,
    "shifted": SHIFTED,
    **FACTOR_STYLES,
}

STYLE_NAMES = ("template", *STYLES)

EVALUATION_ONLY = ("shifted", *FACTOR_STYLES)
"""Styles never trained on: every sample of such a dataset is in its test split."""


def default_splits(style: str) -> tuple[float, float, float]:
    """train / val / test shares of a new dataset of `style`."""
    return (0.0, 0.0, 1.0) if style in EVALUATION_ONLY else (0.8, 0.1, 0.1)


def get_style(name: str) -> Style | None:
    """The table of a style; None for `template` (its parameters are GeneratorConfig's)."""
    return STYLES.get(name)


def draw(rng: np.random.Generator, ranges: Ranges) -> float:
    """A uniform draw from a union of intervals."""
    if len(ranges) == 1:
        return float(rng.uniform(*ranges[0]))
    lengths = np.array([hi - lo for lo, hi in ranges], np.float64)
    x = float(rng.uniform(0.0, lengths.sum()))
    for (lo, _), n in zip(ranges, lengths):
        if x <= n:
            return lo + x
        x -= n
    return float(ranges[-1][1])


def signed(rng: np.random.Generator, ranges: Ranges) -> float:
    """A magnitude from `ranges` with a random sign."""
    v = draw(rng, ranges)
    return v if rng.random() < 0.5 else -v


def choose(rng: np.random.Generator, table: tuple[tuple[str, float], ...]) -> str:
    """A name drawn from (name, weight) pairs."""
    w = np.array([p for _, p in table], np.float64)
    return table[int(rng.choice(len(table), p=w / w.sum()))][0]
