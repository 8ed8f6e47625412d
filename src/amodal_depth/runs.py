"""A training run's directory: its file names, and every function that reads them.

`amodal-depth train --out RUN` writes (docs/training.md):

    RUN/config.json        resolved TrainConfig + data path + git commit
    RUN/model.safetensors  latest weights (models.checkpoints.save_model), written atomically
    RUN/train_state.pt     weights, optimizer, scheduler, step, RNG states (resume)
    RUN/log.jsonl          one JSON line per log step (and per validation)
    RUN/tb/                TensorBoard scalars
    RUN/done.json          written at the end: steps, wall time, final loss

Training, evaluation, reproduction and the benchmarks find these files only through this
module: the names, loading a run's model, resolving `--run` / `--weights`, reading,
appending to and truncating the log, and the loss curve a report draws.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np

from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_path, atomic_write_text

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
STATE_NAME = "train_state.pt"
LOG_NAME = "log.jsonl"
DONE_NAME = "done.json"
TB_DIR = "tb"

LOSS_CURVE_POINTS = 100
"""Points kept by `loss_curve`, so that a run's JSON in a committed report stays small."""


# ------------------------------------------------------------------------------ files
def has_checkpoint(run: str | Path) -> bool:
    """The run has written a checkpoint (weights or training state): it can be resumed."""
    run = Path(run)
    return (run / STATE_NAME).exists() or (run / WEIGHTS_NAME).exists()


def read_config(run: str | Path) -> dict[str, Any] | None:
    """RUN/config.json (`{"train": TrainConfig as a dict, "data": ..., ...}`), or None."""
    path = Path(run) / CONFIG_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def read_done(run: str | Path) -> dict[str, Any] | None:
    """RUN/done.json (steps, wall time, final loss, ...) of a finished run, or None."""
    path = Path(run) / DONE_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def read_state(run: str | Path, device: Any = "cpu") -> dict[str, Any]:
    """RUN/train_state.pt, read with weights_only=True; a UserError when unreadable."""
    import torch

    path = Path(run) / STATE_NAME
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # a truncated or foreign file
        raise UserError(
            f"cannot read {path} ({type(e).__name__}); start a new run with another --out"
        ) from None


# ------------------------------------------------------------------------------ checkpoints
def _rng_state() -> dict[str, Any]:
    import torch

    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
    }


def _set_rng_state(s: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(s["torch"])
    if s["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])
    py = s["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = s["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["cached"]))


def save_checkpoint(
    run: str | Path, model: Any, opt: Any, sched: Any, step: int, elapsed: float, seen: int
) -> None:
    """RUN/train_state.pt (weights, optimiser, scheduler, step, time, images, every RNG)
    then RUN/model.safetensors, each atomically. The state carries its own copy of the
    weights, so a kill between the two renames still resumes consistently."""
    import torch

    from amodal_depth.models.checkpoints import save_model

    state = {
        "step": step,
        "elapsed": elapsed,
        "images_seen": seen,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "rng": _rng_state(),
    }
    with atomic_path(Path(run) / STATE_NAME) as tmp:
        torch.save(state, tmp)
    save_model(model, Path(run) / WEIGHTS_NAME, extra_metadata={"step": str(step)})  # atomic


def restore_checkpoint(
    run: str | Path, model: Any, opt: Any, sched: Any, device: Any
) -> tuple[int, float, int]:
    """Load RUN/train_state.pt into the model, optimiser and scheduler and restore the RNG
    states; returns (step, elapsed seconds, images seen) of the checkpoint."""
    state = read_state(run, device)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    return int(state["step"]), float(state["elapsed"]), state["images_seen"]


# ------------------------------------------------------------------------------ weights
def resolve_weights(run: str | Path | None, weights: str | Path | None) -> Path:
    """The weights file of a run directory (RUN/model.safetensors) or the file given."""
    if run is not None:
        run = Path(run)
        if not run.is_dir():
            raise UserError(f"{run}: no such run directory")
        path = run / WEIGHTS_NAME
        if not path.is_file():
            raise UserError(
                f"{run}: no {WEIGHTS_NAME} in this run directory; finish or resume training "
                "('amodal-depth train ... --resume'), or pass --weights FILE"
            )
        return path
    if weights is None:
        raise UserError("give a run directory (--run RUN) or a weights file (--weights FILE)")
    path = Path(weights)
    if not path.is_file():
        raise UserError(f"{path}: no such weights file")
    return path


def load_run(run_dir: str | Path, device: Any = "cpu") -> Any:
    """The latest weights of a training run (RUN/model.safetensors), in eval mode."""
    from amodal_depth.models.checkpoints import load_model

    path = Path(run_dir) / WEIGHTS_NAME
    if not path.is_file():
        raise UserError(
            f"{run_dir} has no {WEIGHTS_NAME}: not a training run, or it stopped before its "
            "first checkpoint; train it (amodal-depth train --out ...) or pass --weights"
        )
    model = load_model(path, device=str(device))
    model.eval()
    return model


# ------------------------------------------------------------------------------ log
def read_log(run: str | Path) -> list[dict[str, Any]]:
    """The records of RUN/log.jsonl in order ([] without a log); a line cut by a kill is
    left out."""
    path = Path(run) / LOG_NAME
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def append_log(run: str | Path, rec: dict[str, Any]) -> None:
    """One record as one line of RUN/log.jsonl, flushed."""
    with open(Path(run) / LOG_NAME, "a") as f:
        f.write(json.dumps(rec) + "\n")
        f.flush()


def truncate_log(run: str | Path, step: int) -> None:
    """Drop log lines written after the checkpoint at `step` (a killed run's tail), and
    lines cut by the kill; rewritten atomically."""
    path = Path(run) / LOG_NAME
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue
    atomic_write_text(path, "".join(x + "\n" for x in keep))


def training_losses(run: str | Path) -> list[tuple[int, float]]:
    """(step, total training loss) of every training record (validation lines have none)."""
    return [
        (int(r["step"]), float(r["total"]))
        for r in read_log(run)
        if "step" in r and r.get("total") is not None
    ]


def last_logged_loss(run: str | Path) -> float:
    """The last logged training loss; NaN when there is none."""
    losses = training_losses(run)
    return losses[-1][1] if losses else math.nan


def loss_curve(run: str | Path, points: int = LOSS_CURVE_POINTS) -> list[list[float]]:
    """[[step, total loss], ...] of the run, subsampled to <= `points` (the last record
    always kept) so that a run's JSON stays small."""
    recs = [[s, v] for s, v in training_losses(run)]
    if len(recs) <= points:
        return recs
    stride = math.ceil(len(recs) / points)
    keep = recs[::stride]
    if keep[-1] != recs[-1]:
        keep[-1] = recs[-1]
    return keep


def committed_weights(name: str, env_var: str, what: str, hint: str) -> Path:
    """$`env_var` when set (it must name a file), else weights/`name` of the source checkout
    (the committed file). UserError naming `what` and `hint` (how to pass another file)
    when neither exists."""
    import os

    env = os.environ.get(env_var)
    if env:
        path = Path(env)
        if not path.is_file():
            raise UserError(f"${env_var} = {env}: no such {what} file")
        return path
    path = Path(__file__).resolve().parents[2] / "weights" / name
    if not path.is_file():
        raise UserError(f"no {what} given and none at {path}; {hint} or set ${env_var}")
    return path
