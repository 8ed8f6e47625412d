"""`GeneratorConfig`: every parameter of the synthetic scene generator.

Its own module so that the scene samplers (data/scenes.py, data/scenes_styled.py) and the
dataset writer (data/generate.py, which re-exports it) all depend on it, and not on each
other.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amodal_depth.data.format import Camera
from amodal_depth.data.styles import STYLE_NAMES, get_style
from amodal_depth.errors import UserError


@dataclass(frozen=True)
class GeneratorConfig:
    """Every parameter of the scene generator (stored in the manifest's `generator`)."""

    width: int = 224
    """Image width in pixels."""
    height: int = 168
    """Image height in pixels."""
    num_objects: int = 3
    """K: target objects per sample, o_1 in front; also the number of layers."""
    hidden_min: float = 0.10
    """Smallest accepted hidden fraction of o_2..o_K."""
    hidden_max: float = 0.60
    """Largest accepted hidden fraction of o_2..o_K."""
    mesh_dir: str | None = None
    """Folder of OBJ/PLY/GLB meshes used as the object library instead of the procedural one."""
    mesh_up: str = "y"
    """Up axis of the user meshes ('y' as in glTF and 3D-FUTURE, or 'z')."""
    hfov_deg: float = 60.0
    """Horizontal field of view of the centred pinhole camera."""
    camera_height: tuple[float, float] = (1.2, 1.8)
    """Range of the camera height above the floor (m)."""
    pitch_deg: tuple[float, float] = (10.0, 35.0)
    """Range the downward camera pitch is clipped to (it aims at the objects)."""
    ceiling_prob: float = 0.8
    """Probability that the room has a ceiling (without one, rays can leave: depth 0)."""
    max_clutter: int = 2
    """Up to this many extra objects along the walls, never in front of a target."""
    min_area: float = 0.008
    """Smallest amodal mask of a target, as a fraction of the image."""
    min_direct: float = 0.03
    """o_{k-1} itself must hide at least this fraction of o_k (the chain of occlusions)."""
    max_outside: float = 0.1
    """Largest fraction of a target's projected bounding box allowed outside the image."""
    noise_std: float = 2.0
    """Standard deviation of the per-pixel colour noise (0-255 units)."""
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    """train / val / test shares."""
    max_attempts: int = 300
    """Layouts tried per sample before giving up with an error."""
    style: str = "template"
    """Scene distribution: 'template' (one room template, the fields above), 'diverse'
    (domain-randomised training distribution) or 'shifted' (held-out evaluation
    distribution); the ranges of the last two are the tables of data/styles.py and replace
    hfov_deg, camera_height, pitch_deg, ceiling_prob, max_clutter and noise_std."""

    def validate(self) -> None:
        if self.width < 16 or self.height < 12:
            raise UserError(f"--size {self.width}x{self.height} is too small (at least 16x12)")
        if self.num_objects < 1:
            raise UserError(f"--num-objects must be >= 1, got {self.num_objects}")
        if not 0.0 <= self.hidden_min < self.hidden_max < 1.0:
            raise UserError(
                f"need 0 <= --hidden-min < --hidden-max < 1, got {self.hidden_min} and "
                f"{self.hidden_max}"
            )
        if not 1.0 <= self.hfov_deg <= 150.0:
            raise UserError(f"hfov_deg must be in [1, 150], got {self.hfov_deg}")
        f = self.split_fractions
        if len(f) != 3 or min(f) < 0 or abs(sum(f) - 1.0) > 1e-6:
            raise UserError(f"split fractions must be 3 non-negative numbers summing to 1: {f}")
        if self.mesh_up not in ("y", "z"):
            raise UserError(f"mesh_up must be 'y' or 'z', got {self.mesh_up!r}")
        if self.style not in STYLE_NAMES:
            raise UserError(f"--style must be one of {', '.join(STYLE_NAMES)}, got {self.style!r}")

    def camera(self) -> Camera:
        return Camera.from_fov(self.width, self.height, self.hfov_deg)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["mesh_dir"] is not None:
            d["mesh_dir"] = str(Path(d["mesh_dir"]).resolve())
        style = get_style(self.style)
        if style is not None:  # the table that was used, for the record
            d["style_params"] = style.to_dict()
        return json.loads(json.dumps(d))  # tuples -> lists, as they come back from JSON
