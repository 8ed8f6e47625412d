"""Which torch device a command runs on: the one rule behind every `--device` option."""

from __future__ import annotations

import torch

from amodal_depth.errors import UserError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
"""What `--device` accepts (`cuda:N` also works from Python)."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto' / None -> cuda when available, else cpu; 'cuda' without a GPU is a UserError."""
    name = str(device or "auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for but torch sees no GPU; use --device cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise UserError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)
