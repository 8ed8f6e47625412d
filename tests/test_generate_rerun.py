"""Rerunning `data generate` into an existing folder: what is refused, what is allowed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amodal_depth.cli import main
from amodal_depth.data.generate import PARAMS_FILE, GeneratorConfig, generate_dataset
from amodal_depth.errors import UserError

CFG = GeneratorConfig(width=56, height=42)


def test_a_smaller_num_is_refused_instead_of_leaving_orphans(tmp_path: Path) -> None:
    root = tmp_path / "d"
    generate_dataset(root, 4, seed=1, config=CFG, progress=False)
    before = (root / "manifest.json").read_bytes() if (root / "manifest.json").exists() else None
    with pytest.raises(UserError, match="beyond --num 2"):
        generate_dataset(root, 2, seed=1, config=CFG, progress=False)
    after = (root / "manifest.json").read_bytes() if (root / "manifest.json").exists() else None
    assert before == after  # nothing rewritten
    assert main(["data", "verify", str(root)]) == 0


def test_a_failed_start_does_not_block_other_options(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    # what an aborted first run leaves: the parameters, no sample yet
    (root / PARAMS_FILE).write_text(json.dumps({**CFG.to_dict(), "seed": 9, "num_objects": 5}))
    generate_dataset(root, 2, seed=1, config=CFG, progress=False)
    assert not (root / PARAMS_FILE).exists()


def test_train_takes_k_from_the_data(tmp_path: Path) -> None:
    root = tmp_path / "k2"
    cfg = GeneratorConfig(width=56, height=42, num_objects=2)
    generate_dataset(root, 8, seed=2, config=cfg, progress=False)
    out = tmp_path / "run"
    argv = ["train", "--variant", "ade", "--data", str(root), "--out", str(out)]
    assert main([*argv, "--preset", "quick", "--steps", "1", "--batch-size", "2"]) == 0
    from amodal_depth.models import load_model

    assert load_model(out / "model.safetensors").config.num_layers == 2


def test_too_many_objects_names_the_count_and_a_retry_is_free(tmp_path: Path) -> None:
    root = tmp_path / "d"
    with pytest.raises(UserError, match="--num-objects 8 is hard to fit"):
        generate_dataset(root, 2, seed=0, config=GeneratorConfig(width=112, height=84,
                         num_objects=8), progress=False)  # fmt: skip
    generate_dataset(root, 2, seed=1, config=CFG, progress=False)  # other options: fine
    assert main(["data", "verify", str(root)]) == 0
