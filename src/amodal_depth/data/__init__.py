"""Data: the `amodal-layers` format, the scene generator, the torch dataset, adapters."""

from typing import Any

__all__ = ["AmodalLayersDataset", "Front3DAmodalDataset"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the format or the generator does not import torch.
    if name == "AmodalLayersDataset":
        from amodal_depth.data.dataset import AmodalLayersDataset

        return AmodalLayersDataset
    if name == "Front3DAmodalDataset":
        from amodal_depth.data.front3d import Front3DAmodalDataset

        return Front3DAmodalDataset
    raise AttributeError(f"module 'amodal_depth.data' has no attribute {name!r}")
