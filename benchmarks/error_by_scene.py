"""Which scenes does a model fail on? Layer-1 δ1 and hidden-part RMSE per scene factor.

    .venv/bin/python benchmarks/error_by_scene.py --data data/shifted \
        --csv J.csv [J2.csv ...] [--out benchmarks/results/error_by_scene.json]

Reads the per-image CSV that `amodal-depth evaluate --out J.json` writes beside its JSON
(J.csv) and each sample's meta.json (camera height and pitch, field of view, roll, colour
noise, shadows, the family of o_1), splits the images into quartiles of every numeric factor
(groups for the others) and reports the mean per-image layer-1 δ1 and hidden-part RMSE of
each group, for each CSV given (one per model, same data).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from amodal_depth.fileio import atomic_write_json
from common import add_out, check_dataset, run  # benchmarks/ is this script's directory

NUMERIC = ("camera_height_m", "pitch_deg", "hfov_deg", "abs_roll_deg", "noise_std")
GROUPED = ("shadows", "o1_family")


def scene_factors(data: Path, sid: str) -> dict:
    meta = json.loads((data / "samples" / sid / "meta.json").read_text())
    pose = meta["camera_pose"]
    return {
        "camera_height_m": pose["height"],
        "pitch_deg": pose["pitch_deg"],
        "hfov_deg": meta.get("hfov_deg"),
        "abs_roll_deg": abs(meta.get("roll_deg", 0.0)),
        "noise_std": meta.get("noise_std"),
        "shadows": str(meta.get("shadows")),
        "o1_family": str(meta["objects"][0].get("family", meta["objects"][0].get("category"))),
    }


def per_image(csv_path: Path) -> dict[str, dict[str, float]]:
    """id -> layer-1 δ1 and the mean hidden-part RMSE of layers >= 2."""
    out: dict[str, dict[str, list[float]]] = {}
    for r in csv.DictReader(csv_path.open()):
        d = out.setdefault(r["id"], {"d1": [], "hidden": []})
        if r["layer"] == "1":
            d["d1"].append(float(r["all_delta1"]))
        elif r["invisible_rmse"]:
            d["hidden"].append(float(r["invisible_rmse"]))
    return {
        sid: {"layer1_delta1": v["d1"][0], "hidden_rmse": float(np.mean(v["hidden"]))}
        for sid, v in out.items()
        if v["d1"] and v["hidden"]
    }


def breakdown(data: Path, scores: dict[str, dict[str, float]]) -> dict:
    ids = sorted(scores)
    facts = {sid: scene_factors(data, sid) for sid in ids}
    res: dict = {"images": len(ids)}
    for key in NUMERIC:
        vals = np.array([facts[s][key] if facts[s][key] is not None else np.nan for s in ids])
        if np.isnan(vals).all():
            continue
        edges = np.nanquantile(vals, [0, 0.25, 0.5, 0.75, 1])
        groups = []
        for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
            sel = (vals >= lo) & ((vals < hi) if i < 3 else (vals <= hi))
            groups.append(_group(f"{lo:.2f}–{hi:.2f}", [s for s, m in zip(ids, sel) if m], scores))
        res[key] = groups
    for key in GROUPED:
        names = sorted({facts[s][key] for s in ids})
        res[key] = [_group(n, [s for s in ids if facts[s][key] == n], scores) for n in names]
    return res


def _group(name: str, members: list[str], scores: dict[str, dict[str, float]]) -> dict:
    return {
        "group": name,
        "images": len(members),
        "layer1_delta1": float(np.mean([scores[s]["layer1_delta1"] for s in members])),
        "hidden_rmse": float(np.mean([scores[s]["hidden_rmse"] for s in members])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--csv", type=Path, nargs="+", required=True, help="evaluate's per-image CSVs")
    add_out(ap, "error_by_scene.json")
    a = ap.parse_args()
    check_dataset(a.data)
    res = {"data": str(a.data), "models": {str(c): breakdown(a.data, per_image(c)) for c in a.csv}}
    atomic_write_json(a.out, res)
    for name, b in res["models"].items():
        print(f"{name} ({b['images']} images): layer-1 δ1 / hidden RMSE (m) per group")
        for key in (*NUMERIC, *GROUPED):
            if key in b:
                cells = "; ".join(
                    f"{g['group']}: {g['layer1_delta1']:.3f} / {g['hidden_rmse']:.3f}"
                    for g in b[key]
                )
                print(f"  {key}: {cells}")


if __name__ == "__main__":
    run(main)
