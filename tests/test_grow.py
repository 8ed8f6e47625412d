"""models/grow.py: a deeper encoder that starts as the trained one, and `train --grow-after`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from amodal_depth.cli import main
from amodal_depth.config import preset
from amodal_depth.errors import UserError
from amodal_depth.models import build_model
from amodal_depth.models.checkpoints import load_model, save_model
from amodal_depth.models.grow import grow_encoder, grown_layout, inserted_blocks
from amodal_depth.models.sizes import resolve_config
from conftest import flat_sample, write_flat_dataset  # tests/ is on sys.path under pytest


def test_layout_by_hand() -> None:
    # The shipped encoder: 6 blocks, hooks 1, 2, 3, 5; one new block after 1, 3 and 5.
    source, hooks = grown_layout(6, [1, 2, 3, 5], [1, 3, 5])
    assert source == [0, 1, None, 2, 3, None, 4, 5, None]
    assert hooks == [2, 3, 5, 8]  # hooked blocks with a new one after them hand it the hook
    assert grown_layout(4, [0, 1, 2, 3], [0]) == ([0, None, 1, 2, 3], [1, 2, 3, 4])
    assert inserted_blocks(9, [1, 3, 5]) == [2, 5, 8]
    for bad in ([], [6], [-1], [2, 2]):
        with pytest.raises(UserError, match=r"distinct indices in \[0, 6\)"):
            grown_layout(6, [1, 2, 3, 5], bad)


def test_grown_model_computes_the_same_and_its_new_blocks_learn() -> None:
    torch.manual_seed(0)
    model = build_model(preset("quick", "ade_mha").model)
    for p in model.parameters():  # no zero LayerScale anywhere: a copy slip would show
        p.data.add_(0.01 * torch.randn_like(p))
    grown = grow_encoder(model, [0, 2])
    c = grown.config
    assert (c.depth, c.intermediate_layers) == (6, [1, 2, 4, 5])
    new_blocks = [grown.pretrained.blocks[i] for i in (1, 4)]
    assert all(not b.ls1.gamma.any() and not b.ls2.gamma.any() for b in new_blocks)
    s = flat_sample(56, 42, 3, seed=2)
    a = model.predict_batch(s.rgb[None], s.amodal[None])
    b = grown.predict_batch(s.rgb[None], s.amodal[None])
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
    # One backward pass reaches the new blocks' gammas (then their weights move).
    grown.train()
    out = grown(torch.rand(1, 3, 42, 56), torch.rand(1, 3, 2, 42, 56))
    out.mean().backward()
    assert float(new_blocks[0].ls1.gamma.grad.abs().sum()) > 0


def test_train_grow_after_fine_tunes_the_deeper_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = preset("quick", "ade").model
    start = save_model(build_model(cfg), tmp_path / "start.safetensors")
    data = write_flat_dataset(tmp_path / "data", num=4, width=56, height=42)
    out = tmp_path / "run"
    argv = ["train", "--variant", "ade", "--preset", "quick", "--data", str(data), "--out",
            str(out), "--steps", "2", "--batch-size", "2", "--weights", str(start),
            "--grow-after", "1,3"]  # fmt: skip
    assert main(argv) == 0
    trained = load_model(out / "model.safetensors")
    assert trained.config.depth == resolve_config(cfg).depth + 2
    saved = json.loads((out / "config.json").read_text())["train"]
    assert saved["grow_after"] == [1, 3] and saved["model"]["depth"] == trained.config.depth
    assert main(argv + ["--resume"]) == 0  # resuming keeps the grown architecture
    # An RGB-only file grown into a model that also reads an observed depth.
    rgbd = tmp_path / "rgbd"
    argv_d = argv[: argv.index("--out") + 1] + [str(rgbd)] + argv[argv.index("--out") + 2 :]
    assert main(argv_d + ["--observed-depth"]) == 0
    assert load_model(rgbd / "model.safetensors").config.observed_depth


def test_inserted_blocks_get_their_own_learning_rate() -> None:
    from amodal_depth.train import _param_groups

    cfg = dataclasses.replace(preset("quick", "ade"), grow_after=[0, 2], grow_lr_scale=10.0)
    cfg = dataclasses.replace(cfg, model=resolve_config(dataclasses.replace(cfg.model, depth=6)))
    model = build_model(cfg.model)
    lr_of = {id(p): g["lr"] for g in _param_groups(model, cfg) for p in g["params"]}
    for name, p in model.named_parameters():
        new = name.startswith(("pretrained.blocks.1.", "pretrained.blocks.4."))
        assert lr_of[id(p)] == pytest.approx(cfg.lr * (10.0 if new else 1.0)), name
