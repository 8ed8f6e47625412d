"""The report directory's inputs: file names, and reading them (JSON and small arrays).

- `OUT/runs/<variant>-seed<S>.json`: one finished training run (`test`, the `evaluate`
  summary; `val`, used to pick weights; `train`, steps, wall time, loss curve).
- `OUT/references/<name>.json`: the `evaluate` summary of a non-learned reference predictor.
- `OUT/test_images.npz`: the first test images of the dataset (`ids`, `rgb` uint8
  [N,H,W,3], `amodal` bool [N,K,H,W], `depth` float16 [N,K,H,W] metres, 0 = no surface).
- `OUT/runs/<variant>-seed<S>.npz`: that run's per-layer depth for those images (`ids`,
  `depth` float16 [N,K,H,W], aligned to the truth per layer, 0 where the truth has none).

The arrays are written by `amodal_depth.reproduce` when a run finishes; the report only
reads them, for its prediction figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TEST_IMAGES_NAME = "test_images.npz"


def run_json_name(variant: str, seed: int) -> str:
    return f"{variant}-seed{seed}.json"


def predictions_name(variant: str, seed: int) -> str:
    return f"{variant}-seed{seed}.npz"


def load_runs(out: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The finished runs of a report directory, per variant, sorted by seed."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((Path(out) / "runs").glob("*.json")):
        d = json.loads(path.read_text())
        runs.setdefault(d["variant"], []).append(d)
    for v in runs.values():
        v.sort(key=lambda d: d["seed"])
    return runs


def load_references(out: str | Path) -> dict[str, dict[str, Any]]:
    refs = {}
    for path in sorted((Path(out) / "references").glob("*.json")):
        refs[path.stem] = json.loads(path.read_text())
    return refs


def get_value(result: dict[str, Any], section: str, region: str, metric: str) -> float | None:
    """result[section][region][metric] as a float, None when any level is missing."""
    v = result.get(section, {}).get(region, {}).get(metric)
    return None if v is None else float(v)


def run_values(
    runs: list[dict[str, Any]], section: str, region: str, metric: str, split: str = "test"
) -> list[float | None]:
    """One value per seed: `section` is 'depth' or 'consistency' of the run's evaluation."""
    return [get_value(r[split], section, region, metric) for r in runs]


@dataclass(frozen=True)
class FigureArrays:
    """What the prediction figure draws: the truth of a few test images and, per variant,
    the depth its run predicted for them (one seed per variant)."""

    ids: list[str]
    rgb: np.ndarray
    amodal: np.ndarray
    depth: np.ndarray
    predictions: dict[str, np.ndarray]
    seeds: dict[str, int]


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_figure_arrays(out: str | Path, variants: tuple[str, ...]) -> FigureArrays | None:
    """The truth and, for each variant, the lowest seed whose predictions cover the same
    images; None when the truth or every prediction is missing."""
    out = Path(out)
    truth_path = out / TEST_IMAGES_NAME
    if not truth_path.is_file():
        return None
    truth = _read_npz(truth_path)
    ids = [str(i) for i in truth["ids"]]
    preds: dict[str, np.ndarray] = {}
    seeds: dict[str, int] = {}
    for v in variants:
        found = sorted(
            (int(p.stem.rsplit("-seed", 1)[1]), p)
            for p in (out / "runs").glob(f"{v}-seed*.npz")
            if p.stem.rsplit("-seed", 1)[1].isdigit()
        )
        for seed, path in found:
            d = _read_npz(path)
            if [str(i) for i in d["ids"]] == ids and d["depth"].shape == truth["depth"].shape:
                preds[v], seeds[v] = d["depth"].astype(np.float64), seed
                break
    if not preds:
        return None
    return FigureArrays(
        ids, truth["rgb"], truth["amodal"], truth["depth"].astype(np.float64), preds, seeds
    )
