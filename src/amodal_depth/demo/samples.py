"""Where the demo finds its weights and its bundled samples (examples/ of the checkout)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from amodal_depth.predict import RGBD_WEIGHTS_NAME

ROOT = Path(__file__).resolve().parents[3]
"""The source checkout (the folder holding weights/ and examples/)."""
WEIGHTS_DIR = ROOT / "weights"
RGBD_WEIGHTS = WEIGHTS_DIR / RGBD_WEIGHTS_NAME
"""Weights that also read an observed depth; used for requests with a depth map when present."""
EXAMPLES_DIR = ROOT / "examples"


@dataclass(frozen=True)
class Sample:
    """One bundled input set: an image, its masks (files), their kind, an optional depth."""

    name: str
    image: Path
    masks: tuple[Path, ...]
    kind: str
    depth: Path | None
    intrinsics: str

    def exists(self) -> bool:
        files = [self.image, *self.masks] + ([self.depth] if self.depth else [])
        return all(p.is_file() for p in files)


def _intrinsics(camera_json: Path) -> str:
    """'fx,fy,cx,cy' of a dataset camera.json, '' when it is missing or unreadable."""
    try:
        d = json.loads(camera_json.read_text())
        return ",".join(f"{float(d[k]):.4f}" for k in ("fx", "fy", "cx", "cy"))
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def room_samples(root: Path = EXAMPLES_DIR / "room") -> list[Sample]:
    """The variants of examples/room the demo offers, in menu order (missing files dropped)."""
    cam = _intrinsics(root / "camera.json")
    visible = tuple(root / f"visible_{k}.png" for k in (1, 2, 3))
    amodal = tuple(root / f"amodal_{k}.png" for k in (1, 2, 3))
    instances = (root / "instances.png",)
    depth = root / "depth.png"
    img = root / "rgb.png"
    samples = [
        Sample("room: visible masks (3 PNGs)", img, visible, "visible", None, cam),
        Sample("room: instance-id PNG (visible)", img, instances, "visible", None, cam),
        Sample("room: amodal masks (3 PNGs)", img, amodal, "amodal", None, cam),
        Sample("room: amodal masks + observed depth", img, amodal, "amodal", depth, cam),
        Sample("room: visible masks + observed depth", img, visible, "visible", depth, cam),
    ]
    return [s for s in samples if s.exists()]


def default_sample(samples: list[Sample], completion_ready: bool) -> Sample | None:
    """The first sample with visible masks when completion weights exist, else the first
    with amodal masks (which need no completion)."""
    for s in samples:
        if completion_ready or s.kind == "amodal":
            return s
    return samples[0] if samples else None
