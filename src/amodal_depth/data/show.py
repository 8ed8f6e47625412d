"""`amodal-depth data show`: one montage PNG of a sample, to look at what the data says.

One row per layer k: rgb_k (row 1: the input image), depth_k colourised with one colour
range shared by every depth panel (so colours compare across layers), the masks of o_k
over the input image (visible part green, hidden part red), and object_depth_k.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from amodal_depth.data.format import LayeredSample, read_manifest, read_sample
from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_write_bytes


def sample_ids(manifest: dict, split: str | None, root: Path) -> list[str]:
    """The ids `--index` counts in: one split in its order, or every sample id sorted."""
    splits = manifest["splits"]
    if split is not None:
        if split not in splits or not splits[split]:
            have = ", ".join(f"{k} ({len(v)})" for k, v in splits.items() if v) or "none"
            raise UserError(f"{root}: dataset has no samples in split {split!r}; it has: {have}")
        return [str(i) for i in splits[split]]
    return sorted({str(i) for ids in splits.values() for i in ids})


def mask_overlay(rgb: np.ndarray, visible: np.ndarray, amodal: np.ndarray) -> np.ndarray:
    """The image dimmed, with the visible part of the object green and its hidden part red."""
    img = rgb.astype(np.float32) * 0.45
    green, red = np.array([40, 230, 60], np.float32), np.array([235, 50, 40], np.float32)
    img[visible] = 0.35 * rgb[visible] + 0.65 * green
    hidden = amodal & ~visible
    img[hidden] = 0.35 * rgb[hidden] + 0.65 * red
    return img.clip(0, 255).astype(np.uint8)


def _removed(k: int) -> str:
    return "o_1" if k == 2 else f"o_1..o_{k - 1}"


def render_montage(s: LayeredSample, title: str) -> bytes:
    """PNG bytes of the montage of one sample."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k_n = s.num_layers
    valid = np.concatenate([s.depth[s.depth > 0], s.object_depth[s.object_depth > 0]])
    lo, hi = (float(valid.min()), float(valid.max())) if valid.size else (0.0, 1.0)
    h, w = s.rgb.shape[:2]
    fig, axes = plt.subplots(
        k_n, 4, figsize=(4 * 3.0 + 1.2, k_n * 3.0 * h / w + 0.8), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    cmap = matplotlib.colormaps["turbo_r"].with_extremes(bad="black")  # 0 = no surface
    im = None
    for i in range(k_n):
        k = i + 1
        panels = [
            (s.layer_rgb[i], "input rgb" if k == 1 else f"rgb_{k} ({_removed(k)} removed)"),
            (np.ma.masked_equal(s.depth[i], 0), f"depth_{k}"),
            (mask_overlay(s.rgb, s.visible[i], s.amodal[i]), f"o_{k}: visible / hidden"),
            (np.ma.masked_equal(s.object_depth[i], 0), f"object_depth_{k}"),
        ]
        for j, (img, name) in enumerate(panels):
            ax = axes[i, j]
            if img.ndim == 3:
                ax.imshow(img)
            else:
                im = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
            ax.set_title(name, fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="depth (m)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write_montage(
    root: str | Path, index: int, out_png: str | Path, split: str | None = None
) -> Path:
    """Write the montage of sample number `index` of `split` (default: all samples) to
    `out_png`, atomically; returns the path."""
    root, out = Path(root), Path(out_png)
    manifest = read_manifest(root)
    ids = sample_ids(manifest, split, root)
    if not ids:
        raise UserError(f"{root}: the manifest lists no samples")
    if not 0 <= index < len(ids):
        where = f"split {split!r}" if split else "the dataset"
        raise UserError(f"--index {index} is out of range: {where} has indices 0..{len(ids) - 1}")
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: the montage is a PNG; give a file name ending in .png")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")
    sid = ids[index]
    s = read_sample(root, sid, manifest)
    data = render_montage(s, f"{root.name} / sample {sid} ({split or 'all'} #{index})")
    atomic_write_bytes(out, data)
    return out
