"""Training instances for mask completion: one (image, object) pair each, held in memory.

The store keeps what completion needs of every sample of the given splits, packed: the RGB
image (uint8) and the visible and amodal masks (bit-packed), about 165 kB per 224x168 sample
with K = 3 (1.3 GB for 8000 samples). Batches are object-centred crops made on the fly
(crops.py), with box jitter, horizontal flips and colour jitter when training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from amodal_depth.completion import crops
from amodal_depth.data.format import read_manifest, read_sample, split_ids
from amodal_depth.errors import UserError


@dataclass
class Store:
    """Packed samples of one or more datasets, and the list of (sample, object) instances."""

    rgb: np.ndarray  # [N, H, W, 3] uint8
    visible: np.ndarray  # [N, K, H, ceil(W/8)] uint8, bit-packed along W
    amodal: np.ndarray  # [N, K, H, ceil(W/8)] uint8, bit-packed along W
    instances: np.ndarray  # [M, 2] int64: (sample index, object index)
    names: list[str]  # "<dataset root>:<id>" of every sample
    width: int
    source: np.ndarray  # [N] int: index of the dataset (in `roots`) of every sample

    def __len__(self) -> int:
        return len(self.instances)

    def masks(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(visible, amodal) of sample n, each [K, H, W] bool."""
        vis = np.unpackbits(self.visible[n], axis=-1, count=self.width).astype(bool)
        amo = np.unpackbits(self.amodal[n], axis=-1, count=self.width).astype(bool)
        return vis, amo


def load_store(
    roots: list[str | Path], split: str, max_samples: int | None = None, progress: bool = True
) -> Store:
    """Read `split` of every dataset in `roots` (all of one size and K). max_samples caps the
    samples read per dataset (the first ones of the split). UserError when nothing is found."""
    metas = []
    for root in roots:
        manifest = read_manifest(root)  # FormatError (a UserError) on a bad root
        ids = split_ids(manifest, split, root)
        metas.append((Path(root), manifest, ids[:max_samples] if max_samples else ids))
    sizes = {(m["num_layers"], m["height"], m["width"]) for _, m, ids in metas if ids}
    if not sizes:
        raise UserError(
            f"split {split!r} is empty in {', '.join(str(r) for r in roots)}; "
            "pass a dataset with samples in that split"
        )
    if len(sizes) > 1:
        raise UserError(f"datasets differ in (K, height, width): {sorted(sizes)}; use one size")
    (k, h, w), total = sizes.pop(), sum(len(ids) for *_, ids in metas)
    rgb = np.zeros((total, h, w, 3), np.uint8)
    vis = np.zeros((total, k, h, (w + 7) // 8), np.uint8)
    amo = np.zeros_like(vis)
    names: list[str] = []
    source = np.zeros(total, np.int64)
    bar = tqdm(total=total, desc=f"load {split}", unit="img", disable=not progress, leave=False)
    for i, (root, manifest, ids) in enumerate(metas):
        for sid in ids:
            s = read_sample(root, sid, manifest)
            n = len(names)
            source[n] = i
            rgb[n], vis[n] = s.rgb, np.packbits(s.visible, axis=-1)
            amo[n] = np.packbits(s.amodal, axis=-1)
            names.append(f"{root}:{sid}")
            bar.update(1)
    bar.close()
    present = np.unpackbits(vis, axis=-1, count=w).any(axis=(2, 3))  # [N, K]
    instances = np.argwhere(present).astype(np.int64)  # objects with a visible part
    return Store(rgb, vis, amo, instances, names, w, source)


@dataclass(frozen=True)
class Augment:
    """Training-time randomisation of one crop (all off at evaluation)."""

    scale: float = 0.15  # crop side times exp(U(-scale, scale))
    shift: float = 0.08  # centre moved by up to shift x side
    flip: bool = True  # horizontal flip with probability 1/2
    colour: float = 0.15  # per-channel gain 1 ± colour, offset ± colour / 2


def _colour(x: np.ndarray, rng: np.random.Generator, amount: float) -> None:
    gain = 1.0 + rng.uniform(-amount, amount, size=(3, 1, 1))
    offset = rng.uniform(-amount / 2, amount / 2, size=(3, 1, 1))
    x[:3] = np.clip(x[:3] * gain + offset, 0.0, 1.0)


def instance_arrays(
    store: Store,
    idx: int,
    size: int,
    use_rgb: bool,
    rng: np.random.Generator | None = None,
    augment: Augment | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(input [C,S,S], target [S,S]) of instance `idx`; augmented when rng and augment are
    given. The target is the soft amodal mask of the object in the crop."""
    n, k = (int(v) for v in store.instances[idx])
    vis, amo = store.masks(n)
    eraser = crops.erasers(vis)[k]
    box = crops.crop_box(vis[k], eraser)
    if rng is not None and augment is not None:
        box = crops.jitter_box(box, rng, augment.scale, augment.shift)
    rgb = store.rgb[n] if use_rgb else None
    x = crops.crop_planes(rgb, vis[k], eraser, box, size)
    y = crops.crop_target(amo[k], box, size)
    if rng is not None and augment is not None:
        if augment.flip and rng.random() < 0.5:
            x, y = x[:, :, ::-1], y[:, ::-1]
        if use_rgb and augment.colour > 0:
            x = x.copy()
            _colour(x, rng, augment.colour)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def make_batch(
    store: Store,
    indices: list[int] | np.ndarray,
    size: int,
    use_rgb: bool,
    rng: np.random.Generator | None = None,
    augment: Augment | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stacked instance_arrays: ([B,C,S,S], [B,S,S]) float32."""
    pairs = [instance_arrays(store, int(i), size, use_rgb, rng, augment) for i in indices]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def balanced_pool(store: Store) -> np.ndarray:
    """Instance indices in which every dataset of the store has the same share: the
    instances of smaller datasets are repeated (whole copies plus a fixed remainder) up to
    the count of the largest."""
    groups = [
        np.flatnonzero(store.source[store.instances[:, 0]] == i) for i in np.unique(store.source)
    ]
    target = max(len(g) for g in groups)
    parts = [np.resize(g, target) for g in groups]
    return np.concatenate(parts)


def epoch_batch(pool: np.ndarray, batch: int, seed: int, step: int) -> np.ndarray:
    """The instance indices of training step `step`, drawn from `pool` (instance indices,
    repeats allowed): epoch e = step // (len(pool) // batch) reads a permutation seeded by
    (seed, e) in consecutive slices, so any step is reproducible without saved sampler
    state (resume follows the same trajectory)."""
    num = len(pool)
    per_epoch = max(1, num // batch)
    epoch, pos = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(num)
    if num < batch:  # tiny datasets: repeat the permutation
        perm = np.resize(perm, batch)
    return pool[perm[pos * batch : (pos + 1) * batch]]
