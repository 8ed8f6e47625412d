"""The reference registry (references.py): names, factories and one-line errors. The
references' values are checked in tests/test_evaluate.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from amodal_depth import references as refs
from amodal_depth.errors import UserError
from conftest import write_flat_dataset  # tests/ is on sys.path under pytest


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_flat_dataset(tmp_path_factory.mktemp("refs") / "ds", num=4, width=28, height=21)


def test_the_name_lists_read_the_registry() -> None:
    reg = refs.REFERENCE_REGISTRY
    assert refs.REFERENCES == tuple(reg)
    assert set(refs.MODEL_REFERENCES) | set(refs.DATA_REFERENCES) == set(reg)
    assert refs.MODEL_REFERENCES == ("predicted_object_fill",)
    assert refs.DATA_REFERENCES == ("mean_depth", "visible_only", "object_fill")  # report order
    assert [n for n, r in reg.items() if r.fitted] == ["mean_depth"]
    assert [n for n, r in reg.items() if r.observes] == ["visible_only", "object_fill"]
    assert all(r.name == n and r.label and r.summary for n, r in reg.items())


@pytest.mark.parametrize("name", refs.DATA_REFERENCES)
def test_every_data_reference_predicts_metric_layers(data: Path, name: str) -> None:
    from amodal_depth.data.format import read_manifest, read_sample

    m = read_manifest(data)
    s = read_sample(data, m["splits"]["test"][0], m)
    depth = np.asarray(refs.make_reference(name, data)(s))
    assert depth.shape == s.depth.shape and np.isfinite(depth).all() and (depth > 0).all()


def test_model_references_need_the_model(data: Path) -> None:
    with pytest.raises(UserError, match="--weights FILE or --run RUN") as err:
        refs.make_reference("predicted_object_fill", data)
    assert "\n" not in str(err.value)
    model = object()
    built = refs.get_reference("predicted_object_fill").build(model)
    assert isinstance(built, refs.PredictedObjectFill) and built.model is model


def test_unknown_reference_lists_the_choices(data: Path) -> None:
    for call in (lambda: refs.get_reference("oracle"), lambda: refs.make_reference("oracle", data)):
        with pytest.raises(UserError) as err:
            call()
        assert str(err.value) == (
            "unknown reference 'oracle'; choose one of " + ", ".join(refs.REFERENCES)
        )
