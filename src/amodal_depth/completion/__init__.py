"""Amodal mask completion and occlusion order from visible masks (docs/completion.md).

- `complete_masks(image, visible, weights=None) -> (amodal, order)`: the one call predict
  uses; `default_weights()` finds weights/completion.safetensors.
- `occlusion_order(visible, amodal) -> list[int]` and `pairwise_order(...)`: the order rule.
- `load_completion`, `save_completion`, `CompletionConfig`: the UNet's weights files.

Names are imported on first use, so `amodal_depth.completion.cli` (imported by the command
line for every subcommand) does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "complete_masks": "api",
    "default_weights": "api",
    "CompletionConfig": "model",
    "load_completion": "model",
    "save_completion": "model",
    "occlusion_order": "order",
    "pairwise_cover": "order",
    "pairwise_order": "order",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
