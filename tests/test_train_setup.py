"""train_setup.py: the config a run trains with (fresh, resumed, --init), its checks, the
datasets and the process group of a single process, without training."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from amodal_depth.config import finetune_from, preset, to_dict
from amodal_depth.errors import UserError
from amodal_depth.train_setup import (
    RESUME_FREE,
    Dist,
    check_config,
    devices,
    open_datasets,
    resolve_config,
)
from conftest import write_flat_dataset  # tests/ is on sys.path under pytest

W, H = 56, 42


def _cfg(**kw):
    return dataclasses.replace(preset("quick", "ade"), **{"width": W, "height": H, **kw})


def test_a_fresh_run_trains_the_config_it_is_given(tmp_path: Path) -> None:
    cfg = _cfg()
    assert resolve_config(cfg, tmp_path / "run", False) == (cfg, None)
    dev, d = devices("cpu")
    assert dev == torch.device("cpu") and d == Dist() and d.main and d.world == 1


def test_resume_takes_the_saved_config_but_for_the_free_fields(tmp_path: Path) -> None:
    saved = _cfg(steps=7)
    (tmp_path / "config.json").write_text(json.dumps({"train": to_dict(saved)}))
    again, official = resolve_config(_cfg(steps=7, log_every=1), tmp_path, True)
    assert official is None and again.log_every == 1 and "log_every" in RESUME_FREE
    assert dataclasses.replace(again, log_every=saved.log_every) == saved
    with pytest.raises(UserError, match=r"other options \(steps: 7 vs 8\)") as err:
        resolve_config(_cfg(steps=8), tmp_path, True)
    assert "\n" not in str(err.value)


def test_init_is_read_once_for_its_architecture_and_weights(tmp_path: Path) -> None:
    from reference_dav2 import RefDepthAnythingV2  # tests/ is on sys.path under pytest

    torch.manual_seed(0)
    pth = tmp_path / "tiny.pth"
    torch.save(RefDepthAnythingV2(dim=64, depth=12, heads=1, grid=5, features=16).state_dict(), pth)
    cfg, official = resolve_config(finetune_from(_cfg(), str(pth)), tmp_path / "run", False)
    assert (cfg.model.embed_dim, cfg.model.depth, cfg.model.conv_stem) == (64, 12, False)
    assert cfg.model.variant == "ade" and cfg.model.infer_size == preset("quick").height
    assert official is not None and "pretrained.cls_token" in official
    # A run that already has a checkpoint (but no config.json) needs only the architecture.
    assert resolve_config(finetune_from(_cfg(), str(pth)), tmp_path / "run", True)[1] is None
    with pytest.raises(UserError, match="no such file"):
        resolve_config(finetune_from(_cfg(), str(tmp_path / "nope.pth")), tmp_path / "r", False)


def test_weights_fine_tuned_with_an_unguided_first_layer_keep_it(tmp_path: Path) -> None:
    from amodal_depth.models import build_model
    from amodal_depth.models.checkpoints import init_from_weights, save_model
    from amodal_depth.train_setup import model_config_for_weights

    guided = save_model(build_model(_cfg().model), tmp_path / "guided.safetensors")
    switched = dataclasses.replace(_cfg().model, unguided_first_layer=True)
    run = dataclasses.replace(_cfg(weights=str(guided)), model=switched)
    cfg = model_config_for_weights(run)
    assert cfg.unguided_first_layer
    assert init_from_weights(build_model(cfg), guided) == []  # no parameters of its own
    unguided = save_model(build_model(cfg), tmp_path / "unguided.safetensors")
    # Fine-tuning it again without the switch does not silently turn it off.
    assert model_config_for_weights(_cfg(weights=str(unguided))).unguided_first_layer


def test_checks_and_datasets(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="multiple of the patch size 14"):
        check_config(_cfg(width=50))
    with pytest.raises(UserError, match="must be positive"):
        check_config(_cfg(steps=0))
    with pytest.raises(UserError, match="unknown variant 'x'"):
        check_config(
            dataclasses.replace(_cfg(), model=dataclasses.replace(_cfg().model, variant="x"))
        )
    root = write_flat_dataset(tmp_path / "ds", num=4, width=W, height=H,
                              splits={"train": [0, 1, 2], "test": [3]})  # fmt: skip
    train_set, val_set = open_datasets(root, _cfg())
    assert len(train_set) == 3 and val_set is None  # no val split: no val loss
    with pytest.raises(UserError, match="fewer than --batch-size 4"):
        open_datasets(root, dataclasses.replace(_cfg(), batch_size=4))
