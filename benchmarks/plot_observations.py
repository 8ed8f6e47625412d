"""Draw the simulated observed-depth sources of data/observe.py on one dataset sample.

    .venv/bin/python benchmarks/plot_observations.py --data data/cpu --index 8 \
        --out docs/img/observations.png

Columns: the image, the true layer-1 depth, then one draw of each source (sensor twice,
mono twice). Depth maps show inverse depth (turbo, red = near), holes in black; each map is
min-max normalised over its valid pixels, since a monocular observation has no units.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from amodal_depth.data.format import read_manifest, read_sample, split_ids  # noqa: E402
from amodal_depth.data.observe import simulate_observation  # noqa: E402
from amodal_depth.fileio import atomic_path  # noqa: E402
from common import check_dataset, run  # benchmarks/ is this script's directory


def _show(ax, inv: np.ndarray, valid: np.ndarray, title: str) -> None:
    v = inv[valid]
    norm = (inv - v.min()) / max(float(np.ptp(v)), 1e-9) if v.size else inv
    rgb = plt.get_cmap("turbo")(np.clip(norm, 0, 1))[..., :3]
    rgb[~valid] = 0
    ax.imshow(rgb)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    check_dataset(a.data)
    m = read_manifest(a.data)
    s = read_sample(a.data, split_ids(m, a.split, a.data)[a.index], m)
    d1 = s.depth[0]
    draws = [("clean", 0), ("sensor", 1), ("sensor", 2), ("mono", 3), ("mono", 4)]
    fig, axes = plt.subplots(1, 2 + len(draws), figsize=(2.2 * (2 + len(draws)), 2.0))
    axes[0].imshow(s.rgb)
    axes[0].set_title("image", fontsize=8)
    axes[0].axis("off")
    _show(axes[1], np.where(d1 > 0, 1 / np.maximum(d1, 1e-3), 0), d1 > 0, "true layer 1")
    for ax, (source, seed) in zip(axes[2:], draws):
        inv, valid, _ = simulate_observation(d1, s.rgb, np.random.default_rng(seed), source)
        _show(ax, inv, valid, f"{source} (seed {seed}), {100 * (1 - valid.mean()):.0f}% holes")
    fig.tight_layout()
    out = Path(a.out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    print(f"wrote {out}")


if __name__ == "__main__":
    run(main)
