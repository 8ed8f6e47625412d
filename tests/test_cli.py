"""The command line: every subcommand's --help, the registries' names in it, and one-line
errors (exit code 2) for unknown variant, preset, plan and reference names."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from amodal_depth.cli import build_parser, main
from amodal_depth.config import PLANS, PRESET_TABLE
from amodal_depth.models.variants import VARIANTS
from amodal_depth.references import REFERENCE_REGISTRY
from conftest import write_flat_dataset  # tests/ is on sys.path under pytest


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every (sub)command path of the parser, e.g. ("data", "generate")."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _commands(sub, (*prefix, name))


COMMANDS = sorted(set(_commands(build_parser())))


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps long lines


def test_the_commands_are_found() -> None:
    names = {c[0] for c in COMMANDS}
    assert {"data", "evaluate", "train", "reproduce", "predict"} <= names
    assert ("data", "generate") in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_subcommand_has_help(command: tuple[str, ...], capsys) -> None:
    out = _help(capsys, *command)
    assert out.startswith(f"usage: amodal-depth {' '.join(command)}")


def test_help_lists_the_registries(capsys: pytest.CaptureFixture[str]) -> None:
    train = _help(capsys, "train")
    assert "{" + ",".join(VARIANTS) + "}" in train
    assert "{" + ",".join(PRESET_TABLE) + "}" in train
    for spec in PRESET_TABLE.values():  # each preset's line in the description
        assert f"{spec.name}: {spec.summary}" in train
    for spec in VARIANTS.values():
        assert f"{spec.name}: {spec.summary}" in train
    evaluate = _help(capsys, "evaluate")
    assert "{" + ",".join(REFERENCE_REGISTRY) + "}" in evaluate
    for spec in REFERENCE_REGISTRY.values():
        assert f"{spec.name}: {spec.summary}" in evaluate
    reproduce = _help(capsys, "reproduce")
    assert "{" + ",".join(PLANS) + "}" in reproduce
    assert f"the {len(VARIANTS)} variants" in reproduce and ", ".join(VARIANTS) in reproduce


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_flat_dataset(tmp_path_factory.mktemp("cli") / "ds", num=4, width=28, height=28)


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("amodal-depth: error: "), err
    return err


def test_unknown_names_are_one_line_errors(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "out")
    train = ["train", "--data", str(data), "--out", out]
    err = _error(capsys, [*train, "--variant", "ade_fancy"])
    assert "unknown variant 'ade_fancy'; choose one of " + ", ".join(VARIANTS) in err
    err = _error(capsys, [*train, "--variant", "ade", "--preset", "huge"])
    assert "unknown preset 'huge'; choose one of " + ", ".join(PRESET_TABLE) in err
    err = _error(capsys, ["evaluate", "--reference", "oracle", "--data", str(data),
                          "--out", out + ".json"])  # fmt: skip
    assert "unknown reference 'oracle'; choose one of " + ", ".join(REFERENCE_REGISTRY) in err
    repro = ["reproduce", "--out", out, "--work", str(tmp_path / "work"), "--data", str(data)]
    err = _error(capsys, [*repro, "--preset", "cpu-long"])
    assert "unknown plan 'cpu-long'; choose one of " + ", ".join(PLANS) in err
    err = _error(capsys, [*repro, "--preset", "quick", "--variants", "ade,ade_fancy"])
    assert "unknown variant 'ade_fancy'" in err
    err = _error(capsys, [*train, "--variant", "ade", "--preset", "quick", "--roll-deg", "90"])
    assert "--roll-deg must be in [0, 45] degrees, got 90.0" in err
    assert not Path(out).exists() and not (tmp_path / "work").exists()  # nothing was written
