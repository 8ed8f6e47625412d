"""Hidden-part RMSE with a metric observation, with and without object anchoring.

    .venv/bin/python benchmarks/observed_anchor.py --data data/cpu --split val \
        --max-images 40 --weights weights/model.safetensors \
        --out benchmarks/results/observed_anchor_cpu_val.json

For each image the model gets the true layer-1 depth as observation (`--observed gt`, or
`gt-corrupted`: the simulated sensor of `evaluate --observed`); its layers are fitted to it
(models/observation.py) without anchoring (`none`), with one median ratio per object
(`median`, sigma 0), with the smooth ratio field at each sigma of `--sigmas` (`field`,
sigma a share of the short side), and with that field blended with the plane of the
object's observed visible depth (`field+plane`, the default of models/observation.py).
The hidden part of o_k (k >= 2, true amodal_k and not visible_k, valid truth) is scored in
metres without alignment, beside the `object_fill` reference given the same observation.
Per variant: mean and median over layers of the per-layer RMSE, and the RMSE pooled over
all hidden pixels; and the per-layer mean split by whether o_k's visible part was observed
(at least SEEN_SHARE of its pixels valid: a sensor misses far and dark objects). Images whose
observation has too few valid pixels are skipped, as in evaluate. Chosen on val, not test.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from amodal_depth.data.format import read_manifest, read_sample, split_ids
from amodal_depth.fileio import atomic_write_json
from amodal_depth.models.checkpoints import load_model
from amodal_depth.models.observation import (
    ANCHOR_SIGMA,
    check_observation,
    fit_to_observation,
    inverse_observation,
)
from amodal_depth.observations import ObservedSource
from amodal_depth.references import object_fill
from common import check_dataset, run  # benchmarks/ is this script's directory

SEEN_SHARE = 0.2
"""o_k counts as seen when at least this share of its visible pixels has an observation."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--max-images", type=int, default=40)
    ap.add_argument("--weights", nargs="+", required=True)
    ap.add_argument("--observed", choices=("gt", "gt-corrupted"), default="gt")
    ap.add_argument(
        "--sigmas", type=float, nargs="+", default=[ANCHOR_SIGMA],
        help=f"field sigmas to score, shares of the short side (default {ANCHOR_SIGMA})",
    )  # fmt: skip
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    observe = ObservedSource(a.observed)
    check_dataset(a.data)
    m = read_manifest(a.data)
    ids = split_ids(m, a.split, a.data)[: a.max_images]
    models = {w: load_model(w) for w in a.weights}
    anchors = {"none": (None, False), "median": (0.0, False)}
    for x in a.sigmas:
        anchors[f"field sigma={x:g}"] = (x, False)
        anchors[f"field+plane sigma={x:g}"] = (x, True)
    scores: dict[str, list[float]] = {}
    pooled: dict[str, list[float]] = {}  # squared-error sum, pixel count
    by_seen: dict[str, dict[str, list[float]]] = {"seen": {}, "unseen": {}}
    skipped = []
    for sid in ids:
        s = read_sample(a.data, sid, m)
        if not observe.usable(s):  # as evaluate: too few observed pixels to read
            skipped.append(sid)
            continue
        obs, _ = observe(s)
        h, w = obs.shape
        valid = check_observation(obs, h, w, "depth")
        inv = inverse_observation(obs, valid, "depth")
        depth_seen = np.concatenate([np.where(valid, obs, 0)[None], s.depth[1:]])
        fill_input = {"depth": depth_seen, "amodal": s.amodal, "visible": s.visible}
        preds = {"object_fill": object_fill(fill_input)}
        for name, model in models.items():
            disp = model.predict_batch(s.rgb[None], s.amodal[None], (inv[None], valid[None]))[0]
            for label, (sigma, plane) in anchors.items():
                out, _ = fit_to_observation(
                    disp, inv, valid, s.amodal, "depth", sigma is not None, sigma or 0.0, plane
                )
                preds[f"{name} {label}"] = out
        for k in range(1, s.depth.shape[0]):
            hid = s.amodal[k] & ~s.visible[k] & (s.depth[k] > 0)
            if not hid.any():
                continue
            seen = s.visible[k].any() and valid[s.visible[k]].mean() >= SEEN_SHARE
            for name, p in preds.items():
                err = p[k][hid] - s.depth[k][hid]
                rmse = float(np.sqrt(np.mean(err**2)))
                scores.setdefault(name, []).append(rmse)
                by_seen["seen" if seen else "unseen"].setdefault(name, []).append(rmse)
                acc = pooled.setdefault(name, [0.0, 0.0])
                acc[0] += float(np.sum(err**2))
                acc[1] += err.size
    result = {
        "command": "benchmarks/observed_anchor.py "
        + " ".join(
            [
                f"--data {a.data}",
                f"--split {a.split}",
                f"--max-images {a.max_images}",
                f"--observed {a.observed}",
                "--sigmas",
                *[f"{x:g}" for x in a.sigmas],
                "--weights",
                *a.weights,
            ]
        ),  # fmt: skip
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "images": len(ids) - len(skipped),
        "skipped_no_observation": skipped,
        "hidden_rmse_m": {
            n: {
                "mean": float(np.mean(v)),
                "median": float(np.median(v)),
                "pooled": float(np.sqrt(pooled[n][0] / pooled[n][1])),
                "layers": len(v),
            }
            for n, v in scores.items()
        },
        # The same per-layer RMSEs split by whether o_k's visible part was observed.
        "seen_share": SEEN_SHARE,
        "hidden_rmse_m_by_observed_visible_part": {
            part: {n: {"mean": float(np.mean(v)), "layers": len(v)} for n, v in d.items()}
            for part, d in by_seen.items()
        },
    }
    atomic_write_json(Path(a.out), result)
    print(json.dumps(result["hidden_rmse_m"], indent=1))


if __name__ == "__main__":
    run(main)
