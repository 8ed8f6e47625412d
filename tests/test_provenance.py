"""amodal_depth.provenance: the commit recorded with runs, reports and weights."""

from __future__ import annotations

import subprocess
from pathlib import Path

from amodal_depth.provenance import git_commit


def test_git_commit_ignores_the_command_outputs_but_not_code(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.md").write_text("| a |\n")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    head = git("rev-parse", "HEAD")
    assert git_commit(repo=tmp_path) == head
    (tmp_path / "results" / "table.md").write_text("| b |\n")  # a result changed
    (tmp_path / "new_untracked.txt").write_text("scratch\n")
    assert git_commit(repo=tmp_path) == head + "+dirty"
    assert git_commit((tmp_path / "results",), repo=tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")  # code changed: dirty whatever the outputs
    assert git_commit((tmp_path / "results",), repo=tmp_path) == head + "+dirty"
    assert git_commit(repo=tmp_path / "results" / "..") == head + "+dirty"
    assert git_commit(repo=tmp_path.parent / "no-such-dir") is None
