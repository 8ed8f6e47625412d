"""The training loss: invariances, masks, weights, consistency, and no NaN on empty masks."""

from __future__ import annotations

import pytest
import torch

from amodal_depth.losses import (
    LossWeights,
    anchored_hidden_term,
    consistency_term,
    disparity_target,
    fit_scale_shift,
    layered_depth_loss,
    masked_median,
)

B, K, H, W = 2, 3, 12, 16


def _scene(seed: int = 0) -> dict[str, torch.Tensor]:
    """Layered GT where layers agree outside the amodal mask of the removed object, like the
    real data: layer k+1 equals layer k except inside amodal_k (o_k removed, farther behind)."""
    g = torch.Generator().manual_seed(seed)
    back = 2.0 + 3.0 * torch.rand(B, H, W, generator=g)
    amodal = torch.zeros(B, K, H, W, dtype=torch.bool)
    amodal[:, 0, 2:7, 3:9] = True
    amodal[:, 1, 4:10, 6:13] = True
    amodal[:, 2, 1:5, 10:15] = True
    layers = [back.clone() for _ in range(K)]
    # object k sits in front in layers <= k
    for k in range(K - 1, -1, -1):
        obj_depth = 1.0 + 0.3 * k + 0.1 * torch.rand(B, H, W, generator=g)
        for j in range(k + 1):
            layers[j] = torch.where(amodal[:, k], obj_depth, layers[j])
    depth = torch.stack(layers, 1)
    depth[:, :, 0, :] = 0.0  # an invalid row
    visible = amodal.clone()
    visible[:, 1] &= ~amodal[:, 0]
    visible[:, 2] &= ~(amodal[:, 0] | amodal[:, 1])
    return {"depth": depth, "visible": visible, "amodal": amodal}


def _loss(pred, s, **kw):
    return layered_depth_loss(pred, s["depth"], s["visible"], s["amodal"], **kw)


def test_masked_median_matches_torch() -> None:
    x = torch.randn(4, 9)
    mask = torch.rand(4, 9) > 0.3
    mask[0] = False
    med = masked_median(x, mask)
    assert med[0] == 0
    for i in range(1, 4):
        if mask[i].any():
            assert torch.isclose(med[i], x[i][mask[i]].median())


@pytest.mark.parametrize("group", [False, True])
def test_zero_for_perfect_prediction_up_to_scale_shift(group: bool) -> None:
    s = _scene()
    disp, _ = disparity_target(s["depth"])
    if group:
        pred = 3.0 * disp + 0.7
    else:
        scale = torch.tensor([0.5, 2.0, 7.0]).view(1, K, 1, 1)
        pred = scale * disp + torch.tensor([0.1, 0.0, 3.0]).view(1, K, 1, 1)
    out = _loss(pred, s, group_alignment=group, consistency=True)
    for key in ("total", "ssi", "grad", "consistency"):
        assert out[key].item() == pytest.approx(0.0, abs=1e-5), key


@pytest.mark.parametrize("group", [False, True])
def test_invariant_to_scale_and_shift(group: bool) -> None:
    s = _scene(1)
    pred = torch.rand(B, K, H, W, generator=torch.Generator().manual_seed(3))
    base = _loss(pred, s, group_alignment=group, consistency=True)
    if group:
        a = torch.tensor([2.5, 0.3]).view(B, 1, 1, 1)
        b = torch.tensor([-1.0, 4.0]).view(B, 1, 1, 1)
    else:
        a = torch.tensor([[2.5, 0.3, 9.0], [1.0, 5.0, 0.2]]).view(B, K, 1, 1)
        b = torch.tensor([[-1.0, 4.0, 0.0], [2.0, 0.5, -3.0]]).view(B, K, 1, 1)
    moved = _loss(a * pred + b, s, group_alignment=group, consistency=True)
    assert base["total"].item() > 0.1
    for key in ("total", "ssi", "grad", "consistency"):
        assert moved[key].item() == pytest.approx(base[key].item(), rel=1e-4, abs=1e-5), key


def test_group_alignment_is_not_invariant_to_per_layer_scales() -> None:
    s = _scene(2)
    disp, _ = disparity_target(s["depth"])
    scale = torch.tensor([0.5, 2.0, 7.0]).view(1, K, 1, 1)
    assert _loss(scale * disp, s, group_alignment=False)["total"].item() < 1e-5
    assert _loss(scale * disp, s, group_alignment=True)["total"].item() > 0.05


def test_consistency_zero_when_aligned_predictions_agree_on_static_pixels() -> None:
    s = _scene(3)
    disp, valid = disparity_target(s["depth"])
    # Different per-layer affine maps, and errors only INSIDE amodal_k of layer k (not static
    # for the pair (k, k+1)) and in layer K (compared only where the GT agrees) ...
    pred = disp * torch.tensor([1.0, 3.0, 0.5]).view(1, K, 1, 1)
    vals, keep = consistency_term(pred, disp, valid, s["amodal"])
    assert keep.all()
    assert vals.abs().max().item() < 1e-5
    # ... but an error on static pixels of layer 2 shows up.
    bad = pred.clone()
    bad[:, 1, 10:, :4] += 0.5
    vals_bad, _ = consistency_term(bad, disp, valid, s["amodal"])
    assert vals_bad[:, 0].min().item() > 1e-3


def test_consistency_only_for_consistency_variants() -> None:
    s = _scene(4)
    pred = torch.rand(B, K, H, W, generator=torch.Generator().manual_seed(0))
    off = _loss(pred, s, consistency=False)
    on = _loss(pred, s, consistency=True, weights=LossWeights(consistency_weight=2.0))
    assert off["consistency"].item() == 0.0
    assert on["consistency"].item() > 0
    expected = off["total"] + 2.0 * on["consistency"]
    assert on["total"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_invalid_pixels_ignored_and_hidden_pixels_weighted() -> None:
    s = _scene(5)
    disp, valid = disparity_target(s["depth"])
    pred = disp.clone()
    # Changing invalid pixels changes nothing.
    junk = torch.where(valid, pred, torch.full_like(pred, 123.0))
    assert _loss(junk, s)["total"].item() == pytest.approx(0.0, abs=1e-5)
    # An error only on the hidden part of layer 2 costs more with a larger invisible weight.
    hidden = s["amodal"] & ~s["visible"] & valid
    assert hidden[:, 1].any()
    err = pred + 0.3 * hidden.float() * (torch.arange(W) % 2).float()
    w0 = _loss(err, s, weights=LossWeights(invisible_weight=0.0, grad_weight=0.0))["ssi"]
    w5 = _loss(err, s, weights=LossWeights(invisible_weight=5.0, grad_weight=0.0))["ssi"]
    assert w0.item() > 0
    assert w5.item() > 1.5 * w0.item()


def test_no_nan_on_empty_masks_and_gradient_flows() -> None:
    s = _scene(6)
    s["depth"][0] = 0.0  # the whole first image has no valid pixel
    s["amodal"][1, 2] = False  # an empty amodal mask
    s["visible"][1, 2] = False
    pred = torch.rand(B, K, H, W, requires_grad=True)
    for group in (False, True):
        out = _loss(pred, s, group_alignment=group, consistency=True)
        assert all(torch.isfinite(v) for v in out.values())
        (g,) = torch.autograd.grad(out["total"], pred)
        assert torch.isfinite(g).all()
        assert g[0].abs().sum() == 0  # nothing to learn from the empty image
        assert g[1].abs().sum() > 0  # the gradient goes through the normalisation
    s["depth"].zero_()
    out = _loss(pred, s, group_alignment=True, consistency=True)
    assert out["total"].item() == 0.0


def test_fit_scale_shift_recovers_affine() -> None:
    p = torch.rand(2, 50)
    g = 4.0 * p - 1.5
    s, t = fit_scale_shift(p, g, torch.ones_like(p, dtype=torch.bool))
    assert torch.allclose(s, torch.tensor([4.0, 4.0]), atol=1e-4)
    assert torch.allclose(t, torch.tensor([-1.5, -1.5]), atol=1e-4)


def test_anchored_term_scores_the_hidden_part_after_a_fit_on_the_visible_scene() -> None:
    sc = _scene(3)
    target, valid = disparity_target(sc["depth"])
    hidden = sc["amodal"] & ~sc["visible"] & valid
    pred = 3.0 * target + 0.5  # exact up to one scale and shift per layer
    values, keep = anchored_hidden_term(pred, target, valid, sc["visible"], sc["amodal"])
    assert keep[:, 0].logical_not().all() and keep[:, 1:].all()  # layer 1 hides nothing
    assert values[keep].abs().max() < 1e-5
    # Layer 2 of image 0 is wrong by 0.05 in disparity on its hidden part only: the fit on
    # the pixels showing the visible scene is still exact, so the term is 0.05 / MAD there.
    off = pred.clone()
    off[0, 1][hidden[0, 1]] += 3.0 * 0.05
    values, _ = anchored_hidden_term(off, target, valid, sc["visible"], sc["amodal"])
    removed = sc["amodal"][0, 0]  # o_1, the object removed in layer 2
    shown = valid[0, 1] & ~removed
    g = target[0, 1][shown]
    mad = (g - g.median()).abs().mean()  # the lower median, as masked_median takes
    assert values[0, 1].item() == pytest.approx(0.05 / mad.item(), rel=1e-4)
    assert values[1, 1].abs() < 1e-5 and values[0, 2].abs() < 1e-5
    # In the loss: off by default, weighted when on, and it reaches the prediction.
    p = off.clone().requires_grad_(True)
    base = layered_depth_loss(p, sc["depth"], sc["visible"], sc["amodal"])
    assert base["anchored"].item() == 0.0
    on = layered_depth_loss(
        p, sc["depth"], sc["visible"], sc["amodal"], weights=LossWeights(anchored_weight=2.0)
    )
    mean = values[keep].mean()
    assert on["anchored"].item() == pytest.approx(mean.item(), rel=1e-4)
    assert on["total"].item() == pytest.approx(base["total"].item() + 2.0 * mean.item(), rel=1e-4)
    on["total"].backward()
    assert p.grad is not None and p.grad[0, 1][hidden[0, 1]].abs().sum() > 0


def test_anchored_gradient_part_sees_the_outline_of_the_hidden_part() -> None:
    sc = _scene(4)
    target, valid = disparity_target(sc["depth"])
    hidden = sc["amodal"] & ~sc["visible"] & valid
    args = (target, valid, sc["visible"], sc["amodal"])
    exact = 2.0 * target + 1.0
    values, keep = anchored_hidden_term(exact, *args, grad_weight=1.0)
    assert values[keep].abs().max() < 1e-5  # a perfect layer has no residual to match
    # A hidden part lifted by a constant: its L1 part is the same with or without the
    # gradient part, which only sees the step at its outline.
    lifted = exact.clone()
    lifted[0, 1][hidden[0, 1]] += 2.0 * 0.05
    plain, _ = anchored_hidden_term(lifted, *args)
    with_grad, _ = anchored_hidden_term(lifted, *args, grad_weight=1.0)
    assert with_grad[0, 1] > plain[0, 1] > 0
    torch.testing.assert_close(with_grad[1], plain[1])  # image 1 untouched: both 0
