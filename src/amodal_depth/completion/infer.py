"""Running a completion network on one image: crop every object, predict, paste back."""

from __future__ import annotations

import numpy as np
import torch

from amodal_depth.completion import crops
from amodal_depth.completion.model import CompletionUNet


@torch.no_grad()
def predict_probs(
    model: CompletionUNet, rgb: np.ndarray, visible: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(probability [K,H,W] float32 that each pixel is in o_k's amodal mask, eraser [K,H,W]
    bool). rgb: HxWx3 uint8; visible: [K,H,W] bool. Objects with an empty visible mask get
    probability 0 everywhere."""
    cfg = model.config
    k_n, h, w = visible.shape
    era = crops.erasers(visible)
    probs = np.zeros((k_n, h, w), np.float32)
    todo = [k for k in range(k_n) if visible[k].any()]
    if not todo:
        return probs, era
    boxes = [crops.crop_box(visible[k], era[k]) for k in todo]
    image = rgb if cfg.use_rgb else None
    x = np.stack(
        [crops.crop_planes(image, visible[k], era[k], b, cfg.crop) for k, b in zip(todo, boxes)]
    )
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    xt = torch.from_numpy(x).to(device)
    out = torch.sigmoid(model(xt))
    if cfg.flip_tta:  # the mirror image's prediction, mirrored back
        out = 0.5 * (out + torch.sigmoid(model(xt.flip(-1))).flip(-1))
    out = out.float().cpu().numpy()
    model.train(was)
    for k, box, p in zip(todo, boxes, out):
        probs[k] = crops.paste(p, box, (h, w))
    return probs, era


def complete_with_model(model: CompletionUNet, rgb: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Amodal masks [K,H,W] bool by the paste-back rule (visible ∪ (p > threshold ∩ eraser))."""
    probs, era = predict_probs(model, rgb, visible)
    return crops.combine(visible, era, probs, model.config.threshold)
