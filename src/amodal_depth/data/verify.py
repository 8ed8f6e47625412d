"""`amodal-depth data verify`: check every sample against the format and the physics.

Format (docs/data-format.md): the manifest, every split id present once and complete, no sample
directory outside the splits, sizes and dtypes, masks strictly {0, 255}, rgb_1 (if written)
equal to rgb. Stale temporary directories of an interrupted write are warnings.

Physics (the invariants of docs/data-format.md), per object o_k, with a tolerance of one
depth unit (1 mm) for the rounding of the uint16 PNGs:
- visible_k ⊆ amodal_k; o_1 has no hidden part; visible masks do not overlap;
- object_depth_k > 0 exactly on amodal_k, and amodal_k is not empty;
- on visible_k, depth_1 = object_depth_k; on the hidden part, something is in front
  (0 < depth_1 ≤ object_depth_k) and that something is one of o_1..o_{k-1} (the hidden part
  lies inside their visible masks: nothing else may hide a target);
- layer k shows o_k whole: depth_k = object_depth_k on amodal_k;
- layers k and k+1 agree outside amodal_k, and removing o_k never brings a surface closer;
- the hidden fraction recorded in meta.json (`occlusion_ratios`, or `hidden_fraction` of
  each entry of `objects`) matches the masks, and for o_2..o_K lies in the generator's
  [hidden_min, hidden_max] when the manifest records them.
A bad sample is reported, never a crash; a bad root or manifest is a UserError (exit 2).
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from amodal_depth.data.format import (
    MANIFEST,
    SAMPLES_DIR,
    FormatError,
    LayeredSample,
    read_manifest,
    read_png,
    read_sample,
)
from amodal_depth.errors import UserError

HIDDEN_FRACTION_TOL = 0.01  # meta.json fractions are rounded floats of pixel counts


def _count(mask: np.ndarray) -> int:
    return int(np.count_nonzero(mask))


def check_physics(
    s: LayeredSample,
    depth_scale: float = 1000.0,
    hidden_range: tuple[float, float] | None = None,
) -> list[str]:
    """Problems of one in-memory sample against the physics invariants (empty list = consistent)."""
    tol = 1.0 / depth_scale + 1e-6
    out: list[str] = []
    k_n = s.num_layers
    d1 = s.depth[0]
    seen_by = np.zeros(d1.shape, np.int32)  # how many visible masks claim a pixel
    front_visible = np.zeros(d1.shape, bool)  # union of visible_j, j < k
    for i in range(k_n):
        k = i + 1
        vis, am, obj, dk = s.visible[i], s.amodal[i], s.object_depth[i], s.depth[i]
        hidden = am & ~vis
        if not am.any():
            out.append(f"o_{k}: amodal_{k} is empty")
        if n := _count(vis & ~am):
            out.append(f"o_{k}: visible_{k} is not inside amodal_{k} ({n} px)")
        if n := _count((obj > 0) != am):
            out.append(f"o_{k}: object_depth_{k} > 0 differs from amodal_{k} on {n} px")
        if k == 1 and (n := _count(hidden)):
            out.append(f"o_1: the front object has a hidden part ({n} px)")
        bad = vis & (np.abs(d1 - obj) > tol)
        if n := _count(bad):
            err = float(np.abs(d1 - obj)[bad].max())
            out.append(f"o_{k}: depth_1 != object_depth_{k} on {n} visible px (max {err:.3f} m)")
        bad = hidden & ((d1 <= 0) | (d1 > obj + tol))
        if n := _count(bad):
            out.append(f"o_{k}: nothing in front of {n} px of its hidden part (depth_1 >= it)")
        if k > 1 and (n := _count(hidden & ~front_visible)):
            out.append(f"o_{k}: {n} hidden px are not covered by o_1..o_{k - 1}")
        bad = am & (np.abs(dk - obj) > tol)
        if n := _count(bad):
            err = float(np.abs(dk - obj)[bad].max())
            out.append(f"layer {k}: depth_{k} != object_depth_{k} on {n} px of amodal_{k} "
                       f"(max {err:.3f} m)")  # fmt: skip
        if k < k_n:
            nxt = s.depth[i + 1]
            bad = ~am & (np.abs(nxt - dk) > tol)
            if n := _count(bad):
                out.append(f"layers {k},{k + 1}: depths differ outside amodal_{k} on {n} px")
            if n := _count(am & (nxt > 0) & (nxt < dk - tol)):
                out.append(f"layer {k + 1}: removing o_{k} brings {n} px closer")
        seen_by += vis
        front_visible |= vis
        out += _check_hidden_fraction(s.meta, k, am, hidden, hidden_range)
    if n := _count(seen_by > 1):
        out.append(f"visible masks overlap on {n} px")
    return out


def _recorded_fractions(meta: Any, i: int) -> list[tuple[str, float]]:
    """Hidden fractions meta.json records for o_{i+1}: (where, value)."""
    found = []
    if not isinstance(meta, dict):
        return found
    ratios = meta.get("occlusion_ratios")
    if isinstance(ratios, list) and i < len(ratios) and isinstance(ratios[i], int | float):
        found.append((f"occlusion_ratios[{i}]", float(ratios[i])))
    objects = meta.get("objects")
    if isinstance(objects, list) and i < len(objects) and isinstance(objects[i], dict):
        v = objects[i].get("hidden_fraction")
        if isinstance(v, int | float):
            found.append((f"objects[{i}].hidden_fraction", float(v)))
    return found


def _check_hidden_fraction(
    meta: Any, k: int, am: np.ndarray, hidden: np.ndarray, hidden_range: tuple[float, float] | None
) -> list[str]:
    area = _count(am)
    if area == 0:
        return []
    frac = _count(hidden) / area
    out = []
    for where, v in _recorded_fractions(meta, k - 1):
        if abs(v - frac) > HIDDEN_FRACTION_TOL + 1.0 / area:
            out.append(f"o_{k}: meta.json {where} = {v:.3f} but the masks give {frac:.3f}")
    if hidden_range is not None and k >= 2:
        lo, hi = hidden_range
        if not lo - 1.0 / area <= frac <= hi + 1.0 / area:
            out.append(f"o_{k}: hidden fraction {frac:.3f} outside the generator's "
                       f"[{lo}, {hi}]")  # fmt: skip
    return out


def _raw_mask_problems(d: Path, k_n: int) -> list[str]:
    out = []
    for k in range(1, k_n + 1):
        for name in (f"visible_{k}.png", f"amodal_{k}.png"):
            img = cv2.imread(str(d / name), cv2.IMREAD_UNCHANGED)
            if img is not None and img.dtype == np.uint8:
                values = np.unique(img)
                if not set(values.tolist()) <= {0, 255}:
                    odd = [int(v) for v in values if v not in (0, 255)][:5]
                    out.append(f"{name}: mask values must be 0 or 255, found {odd}")
    return out


def check_sample(root: Path, sid: str, manifest: dict[str, Any]) -> list[str]:
    """Problems of one sample on disk (format, then physics); never raises on bad files."""
    try:
        s = read_sample(root, sid, manifest)
    except FormatError as e:
        return [str(e)]
    except (OSError, ValueError, cv2.error) as e:  # anything unreadable is one problem
        return [f"{root / SAMPLES_DIR / sid}: cannot be read ({e})"]
    d = root / SAMPLES_DIR / sid
    out = _raw_mask_problems(d, s.num_layers)
    if (d / "rgb_1.png").is_file():
        try:
            if not np.array_equal(read_png(d / "rgb_1.png", kind="rgb"), s.rgb):
                out.append("rgb_1.png differs from rgb.png")
        except FormatError as e:
            out.append(str(e))
    cam = s.camera
    if not all(np.isfinite([cam.fx, cam.fy, cam.cx, cam.cy])) or min(cam.fx, cam.fy) <= 0:
        out.append("camera.json: fx and fy must be positive and all values finite")
    if not isinstance(s.meta, dict):
        out.append("meta.json: must hold a JSON object")
    gen = manifest.get("generator")
    hidden_range = None
    if isinstance(gen, dict) and isinstance(gen.get("hidden_min"), int | float):
        if isinstance(gen.get("hidden_max"), int | float):
            hidden_range = (float(gen["hidden_min"]), float(gen["hidden_max"]))
    out += check_physics(s, float(manifest.get("depth_scale", 1000)), hidden_range)
    return out


def _check_one(args: tuple[str, str, dict[str, Any]]) -> tuple[str, list[str]]:
    root, sid, manifest = args
    return sid, check_sample(Path(root), sid, manifest)


def _layout_problems(root: Path, manifest: dict[str, Any]) -> tuple[list[str], list[str], list]:
    """(problems, warnings, ids to check) from the manifest and the samples folder."""
    problems, warnings = [], []
    splits = manifest["splits"]
    listed: list[str] = []
    for name, ids in splits.items():
        if not isinstance(ids, list):
            problems.append(f"{MANIFEST}: split {name!r} is not a list of ids")
            continue
        listed += [str(i) for i in ids]
    for sid, n in Counter(listed).items():
        if n > 1:
            problems.append(f"{sid}: listed {n} times in the splits")
    if not listed:
        problems.append(f"{MANIFEST}: the splits list no samples")
    samples = root / SAMPLES_DIR
    on_disk = sorted(p.name for p in samples.iterdir()) if samples.is_dir() else []
    known = set(listed)
    for name in on_disk:
        if name.startswith("."):
            warnings.append(f"{samples / name}: stale temporary entry of an interrupted write")
        elif name not in known:
            problems.append(f"{name}: sample directory is in no split of the manifest")
    if (root / ".generate.json").is_file():
        warnings.append(f"{root}: generation looks unfinished (.generate.json is still there)")
    return problems, warnings, list(dict.fromkeys(listed))


def verify_dataset(
    root: str | Path, workers: int = 1, *, progress: bool = True, out: TextIO | None = None
) -> bool:
    """Check every sample of the dataset at `root`; print one line per problem and a
    summary; True when no problem was found. Bad root/manifest: UserError."""
    from tqdm import tqdm

    out = out or sys.stdout
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    root = Path(root)
    manifest = read_manifest(root)
    problems, warnings, ids = _layout_problems(root, manifest)
    lines = list(problems)
    bad_samples = 0
    jobs = [(str(root), sid, manifest) for sid in ids]
    bar = tqdm(total=len(jobs), desc="verify", unit="sample", disable=not progress, file=sys.stderr)
    try:
        if workers == 1 or len(jobs) < 2:
            results = map(_check_one, jobs)
            pool = None
        else:  # spawn: safe beside the thread pools of OpenCV/torch in the parent
            pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
            results = pool.map(_check_one, jobs, chunksize=max(1, len(jobs) // (8 * workers)))
        for sid, found in results:
            bar.update(1)
            if found:
                bad_samples += 1
                lines += [f"{sid}: {p}" for p in found]
        if pool is not None:
            pool.shutdown()
    finally:
        bar.close()
    for w in warnings:
        print(f"warning: {w}", file=out)
    for line in lines:
        print(line, file=out)
    status = "OK" if not lines else "FAILED"
    print(
        f"verify {root}: {len(ids)} samples checked, {len(lines)} problems "
        f"({bad_samples} samples with problems), {len(warnings)} warnings: {status}",
        file=out,
    )
    return not lines
