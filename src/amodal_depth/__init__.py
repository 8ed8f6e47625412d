"""amodal-depth: occlusion-aware (amodal) layered depth and single-image 3D reconstruction.

`amodal_depth.reconstruct_image(image, masks, ...)` is the one-call API (docs/reconstruct.md);
it is imported on first use so that `import amodal_depth` stays light.
"""

from typing import Any

__all__ = ["reconstruct_image"]


def __getattr__(name: str) -> Any:
    if name == "reconstruct_image":
        from amodal_depth.reconstruct import reconstruct_image

        return reconstruct_image
    raise AttributeError(f"module 'amodal_depth' has no attribute {name!r}")
