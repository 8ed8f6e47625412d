"""Deepen a trained encoder without changing what it computes.

Our CPU model underfits: on `diverse-wide` its scores on 200 training images are within 0.01
of its scores on val (layer-1 delta1 0.787 vs 0.777, hidden RMSE 0.478 vs 0.496 m), so more of
the same data cannot help much and a larger model might. Training a larger one from scratch
costs the ~50,000 images the small one has already seen; instead `grow_encoder` inserts new
transformer blocks into the trained encoder as identities — their LayerScale gammas start at
0, so each new block adds exactly nothing to the residual stream — and fine-tuning then gives
them work (the gammas get gradient at once, the blocks' weights as soon as the gammas leave
0; ReZero-style).

A new block goes right after each block listed in `after`. A DPT hook that read such a block
then reads the new one instead (same tensor at the start, so the head's input is unchanged),
so the added depth feeds the head at that level; the other hooks follow their block to its new
index.

Measured (docs/training.md, "A deeper encoder grown from the shipped one"): three blocks grown
into the shipped model and fine-tuned for 2,800 steps moved its depth scores by < 0.01; the new
blocks' gammas stayed small.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from amodal_depth.errors import UserError


def grown_layout(depth: int, layers: Sequence[int], after: Sequence[int]) -> tuple[list, list]:
    """(source of each new block: the old index, or None for an inserted identity block;
    the new DPT hook indices) for inserting one block after each old block in `after`."""
    after = list(after)
    if not after or len(set(after)) != len(after) or not all(0 <= i < depth for i in after):
        raise UserError(
            f"blocks to grow after must be distinct indices in [0, {depth}), got {after}"
        )
    source: list[int | None] = []
    new_index = {}
    for i in range(depth):
        source.append(i)
        new_index[i] = len(source) - 1
        if i in after:
            source.append(None)
    hooks = [new_index[i] + (1 if i in after else 0) for i in layers]
    return source, hooks


def inserted_blocks(grown_depth: int, after: Sequence[int]) -> list[int]:
    """Indices, in the grown encoder of `grown_depth` blocks, of the blocks inserted after
    the old blocks `after`."""
    source, _ = grown_layout(grown_depth - len(after), [], after)
    return [j for j, src in enumerate(source) if src is None]


def grow_encoder(model: torch.nn.Module, after: Sequence[int]) -> torch.nn.Module:
    """A copy of `model` (an AmodalDepthModel) with one identity transformer block inserted
    after each encoder block in `after` (0-based); its output is the same as `model`'s."""
    from amodal_depth.models.model import build_model

    cfg = model.config
    source, hooks = grown_layout(cfg.depth, cfg.intermediate_layers, after)
    grown = build_model(dataclasses.replace(cfg, depth=len(source), intermediate_layers=hooks)).to(
        next(model.parameters()).device
    )
    old, new = model.state_dict(), grown.state_dict()
    prefix = "pretrained.blocks."
    for key in new:
        if not key.startswith(prefix):
            new[key] = old[key].clone()
            continue
        j, rest = key[len(prefix) :].split(".", 1)
        src = source[int(j)]
        if src is not None:
            new[key] = old[f"{prefix}{src}.{rest}"].clone()
        elif rest.endswith("gamma"):  # ls1.gamma / ls2.gamma: the block starts as identity
            new[key] = torch.zeros_like(new[key])
    grown.load_state_dict(new)
    return grown
