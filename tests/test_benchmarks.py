"""The benchmark scripts as a user runs them from the docs: they start, a missing dataset is
one line before any work, and no default output lands in the committed benchmarks/results/.
Nothing here times anything (the scripts' numbers are in benchmarks/results/)."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "common")

# Minimal arguments besides --data for the scripts that read a dataset.
DATA_ARGS = {
    "chain_3d": ["--out", "{tmp}/c.json"],
    "error_breakdown": ["--weights", "w.safetensors"],
    "error_by_scene": ["--csv", "x.csv"],
    "layer_alignment": ["--weights", "w.safetensors"],
    "mask_robustness": ["--weights", "w.safetensors"],
    "observed_anchor": ["--weights", "w.safetensors", "--out", "{tmp}/o.json"],
    "plot_observations": ["--out", "{tmp}/p.png"],
    "reconstruct_3d": ["--weights", "a=w.safetensors", "--out", "{tmp}/r.json"],
}


@pytest.fixture(autouse=True)
def _bench_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))


def _run(name: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    common = importlib.import_module("common")
    module = importlib.import_module(name)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *argv])
    with pytest.raises(SystemExit) as e:
        common.run(module.main)
    return e.value.code


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_starts(name: str, monkeypatch, capsys) -> None:
    assert _run(name, ["--help"], monkeypatch) == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(DATA_ARGS))
def test_missing_dataset_is_one_line_naming_the_command(name, monkeypatch, capsys, tmp_path):
    args = [a.format(tmp=tmp_path) for a in DATA_ARGS[name]]
    assert _run(name, ["--data", str(tmp_path / "cpu"), *args], monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "no dataset there" in err and "data generate --out data/cpu" in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_shift_factors_checks_the_weights_before_rendering(monkeypatch, capsys, tmp_path):
    work = tmp_path / "work"
    argv = ["--weights", str(tmp_path / "none.safetensors"), "--work", str(work),
            "--out", str(tmp_path / "s.json")]  # fmt: skip
    assert _run("shift_factors", argv, monkeypatch) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing rendered, nothing written


def test_table_script_checks_every_set_first(monkeypatch, capsys, tmp_path) -> None:
    argv = ["--set", f"a={tmp_path / 'shifted'}:test", "--rgb", "w.safetensors"]
    argv += ["--work", str(tmp_path / "w"), "--out", str(tmp_path / "t.md")]
    assert _run("observed_depth_table", argv, monkeypatch) == 2
    assert "data generate --out data/shifted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_table_script_gives_each_rgbd_model_its_own_rows() -> None:
    table = importlib.import_module("observed_depth_table")
    specs = [table._named(s) for s in ("plain=a.safetensors", "b.safetensors")]
    assert specs == [("plain", "a.safetensors"), ("", "b.safetensors")]
    rows = table._rows("rgb.safetensors", specs)
    labels = [label for label, _ in rows]
    assert len(labels) == len(set(labels)) == 7 + 2 * 4
    plain = [kw for label, kw in rows if label.startswith("RGB-D weights plain ")]
    assert {kw["weights"] for kw in plain} == {"a.safetensors"} and len(plain) == 4
    assert {"weights": "b.safetensors", "observed": "model:rgb.safetensors"} in [
        kw for _, kw in rows
    ]


def test_compare_weights_checks_every_input_first(monkeypatch, capsys, tmp_path) -> None:
    work = tmp_path / "w"
    argv = ["--weights", f"a={tmp_path / 'none.safetensors'}", "--work", str(work),
            "--out", str(tmp_path / "c.json")]  # fmt: skip
    assert _run("compare_weights", [*argv, "--set", f"s={tmp_path / 'cpu'}:test"],
                monkeypatch) == 2  # fmt: skip
    assert "data generate --out data/cpu" in capsys.readouterr().err
    assert _run("compare_weights", [*argv, "--set", "s=data/cpu"], monkeypatch) == 2
    assert "NAME=DATA:SPLIT" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing evaluated, nothing written


def test_out_that_is_a_directory_is_refused_before_work(monkeypatch, capsys, tmp_path) -> None:
    assert _run("bench_models", ["--out", str(tmp_path)], monkeypatch) == 2
    assert "is a directory" in capsys.readouterr().err


@pytest.mark.parametrize("name", SCRIPTS)
def test_no_default_output_in_committed_results(name: str) -> None:
    """Defaults of --out/--doc: the scratch folder or nothing, never benchmarks/results/ or a
    doc (a documented command must not overwrite committed numbers)."""
    tree = ast.parse((BENCH / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            flags = [a.value for a in node.args if isinstance(a, ast.Constant)]
            if {"--out", "--doc"} & set(flags):
                default = next((k.value for k in node.keywords if k.arg == "default"), None)
                assert default is None or (
                    isinstance(default, ast.Constant) and default.value is None
                ), f"{name}: {flags[0]} has a default; use common.add_out"
