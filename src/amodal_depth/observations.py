"""Where the observed depth comes from when a model is evaluated with one (`--observed`).

- `gt`: the true layer-1 depth (metres): a perfect RGB-D sensor; bounds what the input can
  give.
- `gt-corrupted`: the true layer-1 depth through the sensor corruption of data/observe.py
  (noise growing with z^2, quantisation, misregistration, holes), seeded by the sample's
  own generator seed (meta.json `seed`; the depth's bytes for a sample without one), so
  every run, and every install that renders the dataset anew, scores the same observation
  (metres).
- `model:WEIGHTS`: layer 1 of an RGB-only model's prediction (relative inverse depth, the
  `disparity` kind): what a user with a monocular depth model has.

A model given a metric observation predicts metres, scored as they are (no alignment to the
truth; `align_to_gt` scores the same prediction after the usual per-layer alignment instead).
References given an observation (`visible_only`, `object_fill`) use it in place of the true
layer-1 depth; its holes are left out of the score.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from amodal_depth.data.observe import sensor_observation
from amodal_depth.errors import UserError

OBSERVED_CHOICES = ("gt", "gt-corrupted", "model:WEIGHTS")
RECENT = 16
"""Observations of this many recent samples are kept (more than one evaluate batch)."""


@dataclass
class ObservedSource:
    """Callable sample -> (observed HxW float32, kind 'depth' | 'disparity'); 0 = hole."""

    spec: str
    model: Any = None
    _recent: dict = field(default_factory=dict, repr=False, compare=False)
    """The last few samples' observations (id -> (sample, result); holding the sample keeps
    its id unique), so the skip check and the prediction of one batch simulate once."""

    @property
    def metric(self) -> bool:
        return self.model is None

    def __call__(self, sample: Any) -> tuple[np.ndarray, str]:
        hit = self._recent.get(id(sample))
        if hit is not None and hit[0] is sample:
            return hit[1]
        if len(self._recent) >= RECENT:
            self._recent.clear()
        result = self._observe(sample)
        self._recent[id(sample)] = (sample, result)
        return result

    def _observe(self, sample: Any) -> tuple[np.ndarray, str]:
        d1 = np.asarray(sample.depth[0], np.float32)
        if self.spec == "gt":
            return d1, "depth"
        if self.spec == "gt-corrupted":
            obs, _ = sensor_observation(d1, sample.rgb, np.random.default_rng(sensor_seed(sample)))
            return obs, "depth"
        disp = self.model.predict_layers(sample.rgb, np.asarray(sample.amodal, bool))[0]
        return disp.astype(np.float32), "disparity"

    def usable(self, sample: Any) -> bool:
        """Whether the observation has enough valid pixels to read (a simulated sensor that
        sees nothing, e.g. every surface beyond its range, has not). Evaluation skips the
        images that are not, for every predictor given this source, so all its rows score
        the same images."""
        from amodal_depth.models.observation import MIN_VALID_PIXELS

        obs, _ = self(sample)
        return int((np.isfinite(obs) & (obs > 0)).sum()) >= MIN_VALID_PIXELS


def sensor_seed(sample: Any) -> int:
    """The simulated sensor's seed for one sample: its generator seed (meta.json), which
    does not change when a dataset is rendered again on another install (the depth PNGs can
    differ there by float round-off); samples without one (other layouts) fall back to a
    checksum of their true layer-1 depth."""
    seed = (getattr(sample, "meta", None) or {}).get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    return zlib.crc32(np.ascontiguousarray(sample.depth[0], np.float32).tobytes())


def parse_observed(spec: str | None) -> ObservedSource | None:
    """`--observed` text -> its source (None stays None); model:WEIGHTS loads the model."""
    if spec is None:
        return None
    if spec in ("gt", "gt-corrupted"):
        return ObservedSource(spec)
    if spec.startswith("model:") and len(spec) > len("model:"):
        from amodal_depth.models.checkpoints import load_model

        path = Path(spec.removeprefix("model:"))
        if not path.is_file():
            raise UserError(f"--observed {spec}: no such weights file {path}")
        return ObservedSource(spec, load_model(path).eval())
    raise UserError(f"--observed must be one of {', '.join(OBSERVED_CHOICES)}, got {spec!r}")


class ObservedReference:
    """A reference (visible_only, object_fill) that sees the observation instead of the
    true layer-1 depth: sample -> [K,H,W] metres, NaN at the observation's holes."""

    def __init__(self, reference: Any, source: ObservedSource, name: str) -> None:
        if not source.metric:
            raise UserError(
                f"references take a metric observation (--observed gt or gt-corrupted), "
                f"not {source.spec}"
            )
        self.reference, self.source, self.__name__ = reference, source, name

    def __call__(self, sample: Any) -> np.ndarray:
        obs, _ = self.source(sample)
        depth = np.array(sample.depth, np.float32)
        depth[0] = np.where(obs > 0, obs, np.nan)
        view = {"depth": depth, "amodal": sample.amodal, "visible": sample.visible}
        return self.reference(view)


DEPTH_FILE_TYPES = (".png", ".npy", ".exr")


def read_depth(path: str | Path, scale: float | None = None) -> np.ndarray:
    """An observed depth (or disparity) map from a file -> HxW float32 (0 / NaN = hole).

    .png: 16-bit (or 8-bit) integers divided by `scale` (default 1000: millimetres, the
    RGB-D convention, gives metres); .npy: an HxW float array, divided by `scale` (default 1);
    .exr: the Z (else Y, R, or only) channel, divided by `scale` (default 1)."""
    import cv2

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in DEPTH_FILE_TYPES:
        raise UserError(f"--depth {path}: give a {', '.join(DEPTH_FILE_TYPES)} file")
    if not path.is_file():
        raise UserError(f"--depth {path}: no such file")
    if scale is not None and not (np.isfinite(scale) and scale > 0):
        raise UserError(f"--depth-scale must be a positive number, got {scale}")
    if suffix == ".png":
        d = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if d is None:
            raise UserError(f"--depth {path}: not a PNG OpenCV can read")
        if d.ndim != 2:
            raise UserError(
                f"--depth {path}: a depth PNG has one channel (16-bit millimetres), this one "
                f"has {d.shape[2]}"
            )
        return (d.astype(np.float32) / (1000.0 if scale is None else scale)).astype(np.float32)
    if suffix == ".npy":
        try:
            d = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise UserError(f"--depth {path}: not a readable .npy array ({e})") from None
    else:
        from amodal_depth.data.exr import read_exr

        try:
            channels = read_exr(path)
        except Exception as e:  # noqa: BLE001 - any reader failure is one line
            raise UserError(f"--depth {path}: {str(e).splitlines()[0]}") from None
        key = next((c for c in ("Z", "Y", "R") if c in channels), None)
        if key is None and len(channels) != 1:
            raise UserError(f"--depth {path}: no Z, Y or R channel in {sorted(channels)}")
        d = channels[key] if key is not None else next(iter(channels.values()))
    if d.ndim != 2:
        raise UserError(f"--depth {path}: expected an HxW array, got shape {d.shape}")
    if not np.issubdtype(d.dtype, np.number):
        raise UserError(f"--depth {path}: expected numbers, got dtype {d.dtype}")
    return (d.astype(np.float32) / (1.0 if scale is None else scale)).astype(np.float32)
