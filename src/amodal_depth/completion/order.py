"""Occlusion order from visible and (completed) amodal masks.

**Pairwise evidence.** a hides b where b's amodal mask covers a's visible pixels:
``cover[a, b] = |visible_a ∩ amodal_b|``. The relation says a is in front of b when
cover[a, b] − cover[b, a] is at least MIN_SHARE (5 %) of the smaller of the two visible areas
(and at least one pixel); otherwise the pair is undecided (the objects do not overlap, or the
evidence is weak or balanced).

**Total order.** The permutation maximising the agreement Σ over (a before b) of the
deciding net covers (cover[a, b] − cover[b, a]): every pixel of evidence votes, so a weak
contradictory relation inside a cycle loses to strong ones. Ties (and pairs without
evidence) are broken by the ground-contact cue: the object whose visible mask reaches lower
in the image (larger bottom row) is taken as nearer. Exhaustive for K <= 8, greedy beyond.
"""

from __future__ import annotations

import itertools

import numpy as np

MIN_SHARE = 0.05
"""Net cover below this share of the smaller visible area of a pair is no evidence (chosen on
the val splits: weak, often spurious completions otherwise override the ground-contact cue)."""
EXHAUSTIVE_MAX_K = 8
"""Up to this K every permutation is scored (8! = 40320); larger K uses a greedy order."""


def pairwise_cover(visible: np.ndarray, amodal: np.ndarray) -> np.ndarray:
    """[K,K] int64: cover[a, b] = pixels of a's visible mask inside b's amodal mask (a ≠ b;
    the diagonal is 0). A large cover[a, b] says a hides part of b."""
    v = visible.reshape(visible.shape[0], -1).astype(np.int64)
    a = amodal.reshape(amodal.shape[0], -1).astype(np.int64)
    cover = v @ a.T
    np.fill_diagonal(cover, 0)
    return cover


def _net_evidence(visible: np.ndarray, amodal: np.ndarray, min_share: float, min_pixels: int):
    """cover[a, b] − cover[b, a], set to 0 where its size is below max(min_pixels,
    min_share × the smaller visible area of the two): weak evidence decides nothing."""
    cover = pairwise_cover(visible, amodal)
    net = (cover - cover.T).astype(np.float64)
    area = visible.reshape(visible.shape[0], -1).sum(axis=1).astype(np.float64)
    floor = np.maximum(max(1, min_pixels), min_share * np.minimum(area[:, None], area[None, :]))
    return np.where(np.abs(net) >= floor, net, 0.0)


def pairwise_order(
    visible: np.ndarray,
    amodal: np.ndarray,
    min_share: float = MIN_SHARE,
    min_pixels: int = 1,
) -> np.ndarray:
    """[K,K] int8 relation: +1 where a is in front of b, −1 where b is in front of a, 0 where
    the masks do not decide (net cover below max(min_pixels, min_share × the smaller of the
    two visible areas)). Antisymmetric."""
    net = _net_evidence(np.asarray(visible, bool), np.asarray(amodal, bool), min_share, min_pixels)
    return np.sign(net).astype(np.int8)


def _bottom_rows(visible: np.ndarray) -> np.ndarray:
    """Lowest image row of each visible mask (−1 for an empty mask)."""
    rows = visible.any(axis=2)  # [K, H]
    h = rows.shape[1]
    last = h - 1 - np.argmax(rows[:, ::-1], axis=1)
    return np.where(rows.any(axis=1), last, -1)


def _scores(visible: np.ndarray, amodal: np.ndarray, min_share: float) -> np.ndarray:
    """[K,K] float: gain of putting a before b (net cover where it decides, plus a tie-break
    smaller than one pixel of evidence in total)."""
    net = _net_evidence(visible, amodal, min_share, 1)
    k_n = net.shape[0]
    bottom = _bottom_rows(visible).astype(np.float64)
    tie = np.sign(bottom[:, None] - bottom[None, :])  # lower in the image = nearer
    eps = 1.0 / (k_n * k_n + 1)
    return net + eps * tie


def occlusion_order(
    visible: np.ndarray, amodal: np.ndarray, min_share: float = MIN_SHARE
) -> list[int]:
    """Front-to-back order of the K objects: a list of 0-based object indices, nearest
    first. visible, amodal: [K,H,W] bool (amodal e.g. from completion). See the module
    docstring for the rule; K = 1 gives [0]."""
    visible = np.asarray(visible, bool)
    amodal = np.asarray(amodal, bool)
    if visible.shape != amodal.shape or visible.ndim != 3:
        raise ValueError(f"visible {visible.shape} and amodal {amodal.shape} must be [K,H,W]")
    k_n = visible.shape[0]
    if k_n <= 1:
        return list(range(k_n))
    gain = _scores(visible, amodal, min_share)
    if k_n <= EXHAUSTIVE_MAX_K:
        return _best_permutation(gain)
    return _greedy(gain)


def _best_permutation(gain: np.ndarray) -> list[int]:
    k_n = gain.shape[0]
    iu = np.triu_indices(k_n, 1)
    best, best_score = list(range(k_n)), -np.inf
    for perm in itertools.permutations(range(k_n)):
        p = np.asarray(perm)
        score = float(gain[p[iu[0]], p[iu[1]]].sum())  # positions i < j: p[i] before p[j]
        if score > best_score + 1e-12:
            best, best_score = list(perm), score
    return best


def _greedy(gain: np.ndarray) -> list[int]:
    """Repeatedly take the object with the largest total gain over the remaining ones."""
    left = list(range(gain.shape[0]))
    order = []
    while left:
        sub = gain[np.ix_(left, left)]
        pick = left[int(np.argmax(sub.sum(axis=1)))]
        order.append(pick)
        left.remove(pick)
    return order


def pair_accuracy(order: list[int], pairs: list[tuple[int, int]]) -> tuple[int, int]:
    """(correct, total) over `pairs` (a, b) whose truth is "a in front of b"."""
    pos = {obj: i for i, obj in enumerate(order)}
    correct = sum(pos[a] < pos[b] for a, b in pairs)
    return correct, len(pairs)
