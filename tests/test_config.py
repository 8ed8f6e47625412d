"""config.py: the preset table and what is derived from it, the registries the names come
from, and one-line errors for unknown names."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from amodal_depth import config
from amodal_depth.config import (
    PLANS,
    PRESET_TABLE,
    PRESETS,
    get_preset,
    preset,
    reproduce_plan,
    to_dict,
    train_config_from_dict,
)
from amodal_depth.errors import UserError
from amodal_depth.models.variants import VARIANTS as VARIANT_REGISTRY
from amodal_depth.models.variants import get_variant

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", PRESETS)
def test_preset_numbers_are_derived_from_the_training_size(name: str) -> None:
    cfg = preset(name, "ade_mha")
    p = cfg.model.patch_size
    assert cfg.width % p == 0 and cfg.height % p == 0
    assert cfg.model.infer_size == cfg.height  # predict_layers runs at the training height
    assert cfg.model.pos_grid == cfg.width // p  # one position embedding per patch column
    spec = PRESET_TABLE[name]
    assert (cfg.width, cfg.height, cfg.preset) == (spec.width, spec.height, name)
    assert (cfg.model.encoder, cfg.model.conv_stem) == (spec.encoder, spec.conv_stem)


def test_gpu_preset_infers_at_its_training_height() -> None:
    cfg = preset("gpu", "ade")
    assert (cfg.width, cfg.height) == (518, 392)
    assert cfg.model.infer_size == 392 and cfg.model.pos_grid == 37


@pytest.mark.parametrize("name", PLANS)
def test_plans_render_at_their_presets_training_size(name: str) -> None:
    plan = reproduce_plan(name)
    cfg = preset(name)
    assert (plan.width, plan.height) == (cfg.width, cfg.height)
    assert plan.preset == name and plan.seeds == PRESET_TABLE[name].plan.seeds


def test_plans_are_the_presets_with_a_plan() -> None:
    assert set(PLANS) <= set(PRESETS)
    assert [n for n in PRESETS if PRESET_TABLE[n].plan is None] == ["cpu-long"]
    assert len(reproduce_plan("cpu").seeds) >= 3  # seed spread is judged on cpu


def test_presets_give_the_configs_of_the_committed_runs() -> None:
    """The committed results and weights were trained with these presets: the table must
    keep giving exactly their configs (fields added since are not in the files)."""

    def same(saved: dict, now: dict) -> list[str]:
        bad = []
        for k, v in saved.items():
            if isinstance(v, dict):
                bad += [f"{k}.{x}" for x in same(v, now[k])]
            elif now[k] != v:
                bad.append(k)
        return bad

    checked = 0
    for plan in ("quick", "cpu"):
        for path in sorted((ROOT / "docs" / "results" / plan / "runs").glob("*-seed0.json")):
            run = json.loads(path.read_text())
            now = to_dict(dataclasses.replace(preset(plan, run["variant"]), seed=run["seed"]))
            assert same(run["config"], now) == [], path
            checked += 1
    # The shipped weights: the cpu-long preset, fine-tuned from earlier weights with the
    # overrides the run records (train --weights --lr --warmup-steps --steps --seed
    # --anchored-weight --anchored-grad-weight); the model dims the preset leaves to the
    # encoder name come resolved from the weights file.
    shipped = json.loads((ROOT / "weights" / "config.json").read_text())["train"]
    base = preset("cpu-long", shipped["model"]["variant"])
    overrides = ("lr", "warmup_steps", "steps", "seed", "weights")
    overrides += ("anchored_weight", "anchored_grad_weight")
    now = to_dict(dataclasses.replace(base, **{k: shipped[k] for k in overrides}))
    resolved = {k for k, v in now["model"].items() if v is None}
    now["model"] = {k: shipped["model"][k] if k in resolved else v for k, v in now["model"].items()}
    assert same(shipped, now) == []
    assert checked >= 8  # quick and cpu, four variants each


def test_preset_results_are_independent_copies() -> None:
    a = preset("cpu-long", "ade")
    a.model.out_channels.append(1)
    a.model.pos_grid = 1
    b = preset("cpu-long", "ade")
    assert b.model.out_channels == list(config.CPU_LONG_OUT_CHANNELS) and b.model.pos_grid == 16
    assert train_config_from_dict(to_dict(b)) == b


def test_names_come_from_the_registries() -> None:
    assert config.VARIANTS == tuple(VARIANT_REGISTRY)
    assert PRESETS == tuple(PRESET_TABLE)
    assert all(get_variant(v).name == v for v in config.VARIANTS)
    with pytest.raises(AttributeError):
        _ = config.NOT_A_NAME


@pytest.mark.parametrize(
    ("call", "listed"),
    [
        (lambda: preset("huge"), PRESETS),
        (lambda: get_preset("huge"), PRESETS),
        (lambda: preset("cpu", "ade_fancy"), tuple(VARIANT_REGISTRY)),
        (lambda: get_variant("ade_fancy"), tuple(VARIANT_REGISTRY)),
        (lambda: reproduce_plan("cpu-long"), PLANS),
    ],
)
def test_unknown_names_are_one_line_errors_listing_the_choices(call, listed) -> None:
    with pytest.raises(UserError) as err:
        call()
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("unknown ")
    assert msg.endswith("choose one of " + ", ".join(listed))


def test_an_unknown_variant_in_a_model_config_is_a_user_error() -> None:
    from amodal_depth.models import resolve_config

    cfg = dataclasses.replace(preset("quick").model, variant="nope")
    with pytest.raises(UserError, match="unknown variant 'nope'; choose one of ade"):
        resolve_config(cfg)
