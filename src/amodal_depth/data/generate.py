"""`amodal-depth data generate`: render a synthetic layered-occlusion dataset.

Determinism: sample i is a pure function of (seed, i) and the parameters: its own seed is
drawn from `SeedSequence([seed, i])`, its split from i alone (a golden-ratio sequence), so
files are byte-identical whatever the worker count, order or interruptions.

Resume: the parameters are stored in ROOT/.generate.json when a run starts; a rerun with
other parameters is refused. Samples are written atomically (format.write_sample), stale
temporary directories of an interrupted run are removed, complete samples are skipped. The
manifest is written last, once every sample it lists exists; extending a finished dataset
with a larger --num keeps the old manifest valid until the new one replaces it.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from amodal_depth.data.format import (
    MANIFEST,
    SAMPLES_DIR,
    SPLITS,
    LayeredSample,
    atomic_write_json,
    format_id,
    make_manifest,
    read_json,
    sample_files,
    write_manifest,
    write_sample,
)
from amodal_depth.data.generator_config import GeneratorConfig as GeneratorConfig
from amodal_depth.data.objects import ObjectLibrary, list_mesh_files
from amodal_depth.data.styles import get_style
from amodal_depth.errors import UserError

PARAMS_FILE = ".generate.json"
_GOLDEN = 0.6180339887498949


def sample_seed(seed: int, index: int) -> int:
    """The sample's own seed: depends on (seed, index) only."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint32)[0])


def split_of(index: int, fractions: tuple[float, float, float] | list[float]) -> str:
    """Split of sample `index`: a low-discrepancy sequence, so any prefix of the dataset has
    close to the asked shares and adding samples never moves an existing one."""
    x = (index * _GOLDEN) % 1.0
    acc = 0.0
    for name, f in zip(SPLITS, fractions):
        acc += f
        if x < acc:
            return name
    return SPLITS[-1]


def render_sample(seed: int, cfg: GeneratorConfig, library: ObjectLibrary) -> LayeredSample:
    """Render one sample from its own seed."""
    from amodal_depth.data.scenes import sample_camera, sample_scene

    rng = np.random.default_rng(seed)
    style = get_style(cfg.style)
    if style is None:  # template: one camera for every sample
        cam = cfg.camera()
        noise_std = cfg.noise_std
    else:  # per-sample intrinsics and noise level
        cam = sample_camera(rng, cfg, style)
        noise_std = float(rng.uniform(*style.noise_std))
    res = sample_scene(rng, cfg, library, cam, style)
    cam = res.camera or cam
    noise = rng.standard_normal((cam.height, cam.width, 3), np.float32) * np.float32(noise_std)
    lay = res.renderer.shade(cam, res.hits, cfg.num_objects, noise)
    objects = []
    for k, p in enumerate(res.layout.targets):
        d = p.describe()
        d["hidden_fraction"] = res.hidden[k]
        d["amodal_pixels"] = int(lay.amodal[k].sum())
        d["visible_pixels"] = int(lay.visible[k].sum())
        objects.append(d)
    meta = {
        "seed": seed,
        "attempts": res.attempts,
        "objects": objects,
        "occlusion_ratios": [float(h) for h in res.hidden],
        **res.layout.describe(),
    }
    if style is not None:
        meta["style"] = cfg.style
        meta["hfov_deg"] = round(float(np.rad2deg(2 * np.arctan(cam.width / 2 / cam.fx))), 4)
        meta["noise_std"] = round(noise_std, 4)
    return LayeredSample(
        rgb=lay.rgb[0],
        depth=lay.depth,
        layer_rgb=lay.rgb,
        visible=lay.visible,
        amodal=lay.amodal,
        object_depth=lay.object_depth,
        camera=cam,
        meta=meta,
    )


# ------------------------------------------------------------------------ workers
_STATE: dict[str, Any] = {}


def _init_worker(root: str, seed: int, cfg: GeneratorConfig, mesh_files: list[str]) -> None:
    _STATE.update(
        root=Path(root),
        seed=seed,
        cfg=cfg,
        library=ObjectLibrary([Path(p) for p in mesh_files], cfg.mesh_up),
    )


def _work(index: int) -> int:
    s = _STATE
    sample = render_sample(sample_seed(s["seed"], index), s["cfg"], s["library"])
    sample.meta["index"] = index
    write_sample(s["root"], format_id(index), sample)
    return index


# ------------------------------------------------------------------------ dataset
def _is_complete(d: Path, names: list[str]) -> bool:
    return all((d / n).is_file() for n in names)


def _check_root(root: Path, params: dict[str, Any]) -> None:
    """Refuse a non-dataset folder or one generated with other parameters."""
    if root.exists() and not root.is_dir():
        raise UserError(f"--out {root}: exists and is not a directory")
    if not root.exists():
        return
    stored = None
    for name in (PARAMS_FILE, MANIFEST):
        if (root / name).is_file():
            data = read_json(root / name)
            stored = data.get("generator", data) if name == MANIFEST else data
            break
    if stored is None:
        if any(root.iterdir()):
            raise UserError(
                f"--out {root}: folder is not empty and holds no dataset; choose a new folder"
            )
        return
    samples = root / SAMPLES_DIR
    started = samples.is_dir() and any(d.is_dir() and d.name.isdigit() for d in samples.iterdir())
    if not (root / MANIFEST).is_file() and not started:
        (root / PARAMS_FILE).unlink(missing_ok=True)  # a failed start: nothing to keep
        return
    stored = {k: v for k, v in stored.items() if k != "num"}
    stored.setdefault("style", "template")  # datasets made before styles existed
    if stored != params:
        diff = sorted(k for k in set(stored) | set(params) if stored.get(k) != params.get(k))
        raise UserError(
            f"--out {root}: holds a dataset generated with other parameters ({', '.join(diff)}); "
            "rerun with the same options or choose a new folder"
        )


def _check_num(root: Path, num: int) -> None:
    """Refuse a --num smaller than what the folder holds: the samples beyond it would be
    left out of the manifest (orphans that `data verify` rejects)."""
    if not (root / SAMPLES_DIR).is_dir():
        return
    found = [d.name for d in (root / SAMPLES_DIR).iterdir() if d.is_dir()]
    beyond = sorted(n for n in found if n.isdigit() and int(n) >= num)
    if beyond:
        raise UserError(
            f"{root} already holds {len(beyond)} samples beyond --num {num} (up to "
            f"{beyond[-1]}); rerun with --num {int(beyond[-1]) + 1} to complete it, or "
            "generate into another --out"
        )


def generate_dataset(
    out: str | Path,
    num: int,
    seed: int = 0,
    config: GeneratorConfig | None = None,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate (or complete) `num` samples under `out`; returns the manifest."""
    from tqdm import tqdm

    cfg = config or GeneratorConfig()
    cfg.validate()
    if num < 1:
        raise UserError(f"--num must be >= 1, got {num}")
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if seed < 0:
        raise UserError(f"--seed must be >= 0, got {seed}")
    root = Path(out)
    mesh_files: list[Path] = []
    params = {**cfg.to_dict(), "seed": int(seed)}
    if cfg.mesh_dir is not None:
        mesh_files = list_mesh_files(cfg.mesh_dir)
        params["mesh_files"] = [str(p.relative_to(Path(cfg.mesh_dir))) for p in mesh_files]
    _check_root(root, params)
    _check_num(root, num)
    if mesh_files:  # fail fast, with the file's name, before any work is done
        ObjectLibrary(mesh_files, cfg.mesh_up).validate()

    # Parameters first: a folder holding anything of ours always says how it was made.
    if not (root / PARAMS_FILE).is_file():
        atomic_write_json(root / PARAMS_FILE, params)
    samples = root / SAMPLES_DIR
    samples.mkdir(parents=True, exist_ok=True)
    for stale in samples.glob(".*.tmp"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    names = sample_files(cfg.num_objects)
    todo = []
    for i in range(num):
        d = samples / format_id(i)
        if d.exists() and not _is_complete(d, names):
            shutil.rmtree(d)  # damaged by hand: render it again
        if not d.exists():
            todo.append(i)

    init_args = (str(root), int(seed), cfg, [str(p) for p in mesh_files])
    bar = tqdm(total=num, initial=num - len(todo), desc="generate", unit="sample",
               disable=not progress)  # fmt: skip
    try:
        if workers == 1 or len(todo) <= 1:
            _init_worker(*init_args)
            for i in todo:
                _work(i)
                bar.update(1)
        else:
            # spawn: Open3D/Embree thread pools do not survive fork reliably.
            ctx = mp.get_context("spawn")
            chunk = max(1, min(8, len(todo) // (4 * workers)))
            with ctx.Pool(workers, initializer=_init_worker, initargs=init_args) as pool:
                for _ in pool.imap_unordered(_work, todo, chunksize=chunk):
                    bar.update(1)
    finally:
        bar.close()

    splits: dict[str, list[str]] = {name: [] for name in SPLITS}
    for i in range(num):
        splits[split_of(i, cfg.split_fractions)].append(format_id(i))
    manifest = make_manifest(
        cfg.num_objects, cfg.width, cfg.height, splits, {**params, "num": int(num)}
    )
    write_manifest(root, manifest)
    (root / PARAMS_FILE).unlink(missing_ok=True)
    return manifest
