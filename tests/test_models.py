"""Contract tests of the model family: every variant, the weights files, the official loader."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from amodal_depth.config import ModelConfig
from amodal_depth.errors import UserError
from amodal_depth.models import (
    build_guidance,
    build_model,
    init_from_depth_anything_v2,
    load_depth_anything_v2,
    load_model,
    save_model,
)
from amodal_depth.models.variants import VARIANTS
from reference_dav2 import RefDepthAnythingV2  # tests/ is on sys.path under pytest

H, W = 42, 56  # multiples of 14, non-square


def tiny(variant: str, conv_stem: bool = True, **kw) -> ModelConfig:
    return ModelConfig(variant=variant, encoder="vitq", conv_stem=conv_stem, pos_grid=4, **kw)


def inputs(b: int = 2, k: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.randn(b, 3, H, W, generator=g)
    amodal = torch.zeros(b, k, H, W, dtype=torch.bool)
    for i in range(k):  # nested boxes, front to back
        amodal[:, i, 4 + 3 * i : 30 + 3 * i, 6 + 5 * i : 40 + 3 * i] = True
    return rgb, build_guidance(amodal)


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg
    return msg


def perturb_(model: torch.nn.Module, seed: int = 1) -> None:
    """Move every parameter off its init, so zero-initialised outputs no longer block the
    gradient to what feeds them (otherwise 'gets a gradient' could not fail)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("conv_stem", [True, False], ids=["stem", "patch"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_contract(variant: str, conv_stem: bool, tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model(tiny(variant, conv_stem))
    rgb, guidance = inputs()

    # Fresh model: right shape, finite, every parameter gets a non-None finite gradient.
    out = model(rgb, guidance)
    assert out.shape == (2, 3, H, W)
    assert torch.isfinite(out).all() and (out >= 0).all()
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name

    # Off its init, every parameter is on the path to the output (none is dead weight).
    perturb_(model)
    model.zero_grad()
    model(rgb, guidance).square().mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not dead, dead

    # Save -> load -> identical outputs; fp16 files load into fp32 models.
    model.eval()
    with torch.no_grad():
        ref = model(rgb, guidance)
    path = save_model(model, tmp_path / "m.safetensors", extra_metadata={"step": 3})
    loaded = load_model(path, expect=tiny(variant, conv_stem))
    assert loaded.variant == model.variant and loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(loaded.eval()(rgb, guidance), ref)
    half = load_model(save_model(model, tmp_path / "h.safetensors", dtype=torch.float16))
    assert half.pretrained.pos_embed.dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(half.eval()(rgb, guidance), ref, rtol=0.05, atol=0.05)
    # Re-saving the same weights keeps the file (no binary churn); other weights replace it
    # (atomically: a new inode).
    inode = path.stat().st_ino
    save_model(model, path, extra_metadata={"step": 3})
    assert path.stat().st_ino == inode
    save_model(model, path, extra_metadata={"step": 4})
    assert path.stat().st_ino != inode and load_model(path).config == model.config

    # Layer independence: iterative variants ignore the other layers' guidance.
    changed = guidance.clone()
    changed[:, 2] = 1.0 - changed[:, 2]
    with torch.no_grad():
        new = model(rgb, changed)
    same = torch.equal(new[:, :2], ref[:, :2])
    assert same == model.variant.iterative
    assert not torch.equal(new[:, 2], ref[:, 2])

    model.train()
    # predict_layers: any image size, [K,H,W] float32 at the input resolution.
    image = np.random.default_rng(0).integers(0, 255, (50, 61, 3), dtype=np.uint8)
    masks = np.zeros((3, 50, 61), dtype=bool)
    masks[0, 5:30, 5:30] = masks[1, 10:40, 10:50] = masks[2, 20:45, 0:60] = True
    pred = model.predict_layers(image, masks, input_size=42)
    assert pred.shape == (3, 50, 61) and pred.dtype == np.float32 and np.isfinite(pred).all()
    assert model.predict_layers(image, masks, input_size=(56, 42)).shape == (3, 50, 61)
    assert model.training  # predict_layers restores the mode it found


def test_late_guidance_encodes_each_image_once() -> None:
    """ade_late_guidance runs the encoder and the head on B items, not B*K, and its layers
    still depend on their own guidance (and, through the exchange, on each other's)."""
    torch.manual_seed(0)
    model = build_model(tiny("ade_late_guidance")).eval()
    perturb_(model)
    seen: list[int] = []
    model.pretrained.blocks[0].register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    model.depth_head.scratch.refinenet1.register_forward_hook(
        lambda m, i, o: seen.append(o.shape[0])
    )
    rgb, guidance = inputs(b=2, k=3)
    with torch.no_grad():
        out = model(rgb, guidance)
        swapped = model(rgb, guidance[:, [1, 0, 2]])
    assert seen[:2] == [2, 2] and out.shape == (2, 3, H, W)
    assert not torch.equal(out[:, 0], out[:, 1])
    assert not torch.equal(swapped[:, 2], out[:, 2])  # layer 3 hears the others


def test_iterative_predict_equals_batched_forward() -> None:
    torch.manual_seed(0)
    model = build_model(tiny("ade_mha")).eval()
    perturb_(model)
    image = np.random.default_rng(1).integers(0, 255, (H, W, 3), dtype=np.uint8)
    masks = np.zeros((3, H, W), dtype=bool)
    masks[0, :20, :20] = masks[1, 10:30, 10:40] = masks[2, 5:40, 30:] = True
    pred = model.predict_layers(image, masks, input_size=(W, H))
    from amodal_depth.models import normalize_image

    x = normalize_image(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
    with torch.no_grad():
        batched = model(x, build_guidance(torch.from_numpy(masks)[None]))[0].numpy()
    assert np.allclose(pred, batched, atol=1e-5)


def test_guidance_channels() -> None:
    amodal = torch.zeros(1, 3, 4, 4, dtype=torch.bool)
    amodal[0, 0, 0, 0] = amodal[0, 1, 1, 1] = amodal[0, 2, 2, 2] = True
    g = build_guidance(amodal)
    assert g.shape == (1, 3, 2, 4, 4) and g.dtype == torch.float32
    assert torch.equal(g[:, :, 0], amodal.float())
    assert g[0, 0, 1].sum() == 0  # nothing removed in layer 1
    assert g[0, 1, 1, 0, 0] == 1 and g[0, 1, 1].sum() == 1
    assert g[0, 2, 1, 0, 0] == 1 and g[0, 2, 1, 1, 1] == 1 and g[0, 2, 1].sum() == 2


@pytest.mark.parametrize("variant", ["ade_mha", "ade_multibatch"])
def test_unguided_first_layer_ignores_the_masks_and_later_layers_do_not(variant: str) -> None:
    torch.manual_seed(0)
    model = build_model(tiny(variant, unguided_first_layer=True)).eval()
    perturb_(model)  # the zero-initialised guidance embedding must matter
    rgb, guidance = inputs(b=1)
    other = guidance.clone()
    other[:, 0, 0] = 0.0
    other[:, 0, 0, :20, :30] = 1.0  # layer 1 given a box instead of o_1's mask
    with torch.no_grad():
        a, b = model(rgb, guidance), model(rgb, other)
        empty = model(rgb, torch.zeros_like(guidance))
    if variant == "ade_mha":  # independent passes: layer 1 cannot see any mask
        torch.testing.assert_close(a[:, 0], b[:, 0])
        torch.testing.assert_close(a[:, 0], empty[:, 0])
    assert not torch.allclose(a[:, 1], empty[:, 1])  # layer 2 still reads its guidance
    guided = build_model(tiny(variant)).eval()
    guided.load_state_dict(model.state_dict())  # the switch has no parameters of its own
    with torch.no_grad():
        assert not torch.allclose(guided(rgb, guidance)[:, 0], guided(rgb, other)[:, 0])


# ------------------------------------------------------------------ official checkpoints
def reference(depth=12, heads=2, seed=0) -> RefDepthAnythingV2:
    torch.manual_seed(seed)
    ref = RefDepthAnythingV2(dim=64, depth=depth, heads=heads, grid=5, features=16)
    with torch.no_grad():  # LayerScale / norms / biases off their trivial init
        for p in ref.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
        ref.depth_head.scratch.output_conv2[2].bias.fill_(0.5)
    return ref.eval()


def test_official_checkpoint_reproduces_reference(tmp_path) -> None:
    ref = reference()
    path = tmp_path / "depth_anything_v2_tiny.pth"
    torch.save(ref.state_dict(), path)
    model = load_depth_anything_v2(path, num_heads=2)
    assert model.config.intermediate_layers == [2, 5, 8, 11]
    x = torch.randn(2, 3, 70, 98)  # non-square, not the 5x5 grid: pos-embed interpolation
    with torch.no_grad():
        want = ref(x)
        got = model(x)
        assert got.shape == want.shape == (2, 70, 98)
        assert (want > 0).float().mean() > 0.5
        assert ((got - want).abs().max() / want.abs().max()) <= 1e-5
        # Zero guidance embedding: with guidance, every layer is the DAv2 output.
        _, g = inputs(b=2)
        g = torch.nn.functional.interpolate(g.flatten(1, 2), (70, 98)).view(2, 3, 2, 70, 98)
        assert ((model(x, g) - want[:, None]).abs().max() / want.abs().max()) <= 1e-5
        # The grid-sized square input takes the no-interpolation path.
        sq = torch.randn(1, 3, 70, 70)
        assert ((model(sq) - ref(sq)).abs().max() / ref(sq).abs().max()) <= 1e-5
    # Default head count (64 // 64 = 1) gives another function: the override matters.
    assert not torch.allclose(load_depth_anything_v2(ref.state_dict())(x), want, rtol=1e-3)


@pytest.mark.parametrize("variant", ["ade_multibatch", "ade_late_guidance"])
def test_init_from_official_keeps_function(variant: str, tmp_path) -> None:
    ref = reference()
    path = tmp_path / "dav2.pth"
    torch.save(ref.state_dict(), path)
    cfg = ModelConfig(
        variant=variant, encoder="custom", embed_dim=64, depth=12, num_heads=2,
        pos_grid=5, features=16, out_channels=[8, 16, 32, 64],
    )  # fmt: skip
    model = build_model(cfg).eval()
    report = init_from_depth_anything_v2(model, path)
    extra = "depth_head.cross_layer." if variant == "ade_multibatch" else "late_guidance."
    assert any(k.startswith(extra) for k in report["kept_init"])
    assert "pretrained.mask_token" in report["ignored"]
    x, g = inputs(b=1)
    with torch.no_grad():
        out = model(x, g)
        assert ((out - ref(x)[:, None]).abs().max() / ref(x).abs().max()) <= 1e-5
    with pytest.raises(UserError) as e:
        init_from_depth_anything_v2(build_model(tiny("ade", conv_stem=False)), path)
    assert "embed_dim" in one_line(e)
    with pytest.raises(UserError) as e:
        init_from_depth_anything_v2(build_model(tiny("ade")), path)
    assert "conv_stem" in one_line(e)


# ------------------------------------------------------------------------- bad input
def test_bad_inputs(tmp_path) -> None:
    model = build_model(tiny("ade_multibatch"))
    rgb, g = inputs()
    for bad in (g[:, :, :1], g[:, :2], g[:1]):
        with pytest.raises(UserError) as e:
            model(rgb, bad)
        assert "[B,K,C,H,W]" in one_line(e)
    with pytest.raises(UserError) as e:
        model(torch.randn(1, 3, 40, 56))
    assert "multiple of 14" in one_line(e) and "predict_layers" in one_line(e)
    with pytest.raises(UserError) as e:
        model.predict_layers(np.zeros((20, 20, 3), np.uint8), np.zeros((2, 20, 20), bool))
    one_line(e)
    with pytest.raises(UserError):
        build_model(ModelConfig(variant="nope", encoder="vitq"))

    path = save_model(model, tmp_path / "m.safetensors")
    with pytest.raises(UserError) as e:  # another variant / size / K than expected
        load_model(path, expect=tiny("ade"))
    assert "variant" in one_line(e)
    with pytest.raises(UserError) as e:
        load_model(path, expect=ModelConfig(variant="ade_multibatch", encoder="vitt"))
    assert "embed_dim" in one_line(e)
    with pytest.raises(UserError) as e:
        load_model(path, expect=tiny("ade_multibatch", num_layers=2))
    assert "num_layers" in one_line(e)

    data = path.read_bytes()
    for cut in (len(data) - 100, 50, 4):  # truncated in the tensors, the header, the length
        short = tmp_path / f"short{cut}.safetensors"
        short.write_bytes(data[:cut])
        with pytest.raises(UserError) as e:
            load_model(short)
        one_line(e)
    with pytest.raises(UserError) as e:
        load_model(tmp_path / "missing.safetensors")
    assert "does not exist" in one_line(e)

    pth = tmp_path / "official.pth"
    torch.save(reference(depth=12).state_dict(), pth)
    with pytest.raises(UserError) as e:
        load_model(pth)
    assert "pickle" in one_line(e) and "load_depth_anything_v2" in one_line(e)
    old = tmp_path / "legacy.pkl"
    old.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(UserError) as e:
        load_model(old)
    assert "pickle" in one_line(e)

    # Official loader: truncated file, code-pickling file, a file of other keys.
    raw = pth.read_bytes()
    (tmp_path / "cut.pth").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(UserError) as e:
        load_depth_anything_v2(tmp_path / "cut.pth")
    one_line(e)
    torch.save({"pretrained.cls_token": torch.zeros(1), "evil": object()}, tmp_path / "evil.pth")
    with pytest.raises(UserError) as e:
        load_depth_anything_v2(tmp_path / "evil.pth")
    assert "weights_only" in one_line(e)
    with pytest.raises(UserError) as e:
        load_depth_anything_v2(path)  # our own safetensors file: not official keys
    assert "load_model" in one_line(e)


def test_safetensors_whose_header_length_starts_with_0x80_loads(tmp_path) -> None:
    """A safetensors file begins with its header length: 128 mod 256 gives a first byte of
    0x80, a pickle's protocol byte. Such a file is still read as safetensors (a cpu-long
    checkpoint hit this)."""
    model = build_model(tiny("ade"))
    path = tmp_path / "w.safetensors"
    for pad in range(300):
        save_model(model, path, extra_metadata={"pad": "x" * pad})
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.fail("no padding gave a header length of 128 mod 256")
    loaded = load_model(path)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_predict_layers_takes_any_strides_and_read_only_arrays() -> None:
    """A reversed-channel view (BGR->RGB) and read-only arrays give the same layers as a
    plain contiguous copy, without a warning."""
    import warnings

    model = build_model(tiny("ade"))
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    masks = np.zeros((3, H, W), bool)
    masks[0, 5:20, 5:20] = masks[1, 10:30, 15:35] = masks[2, 20:40, 25:50] = True
    want = model.predict_layers(np.ascontiguousarray(bgr[..., ::-1]), masks)
    ro_img, ro_masks = bgr[..., ::-1].copy(), masks.copy()
    ro_img.flags.writeable = ro_masks.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(model.predict_layers(bgr[..., ::-1], masks[:, ::-1][:, ::-1]), want)
        assert np.array_equal(model.predict_layers(ro_img, ro_masks), want)
