"""Which code produced a result: the git commit recorded with runs, reports and weights."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def git_commit(outputs: tuple[Path, ...] = (), repo: Path | None = None) -> str | None:
    """HEAD of the repository holding this file (or `repo`), '+dirty' when tracked files
    differ; None outside a git checkout (e.g. an installed wheel).

    Changes under `outputs` (the report and weights directories this command writes, which
    are tracked so that they can be committed) do not count as dirty: they are results, not
    code. Call it once, when a process starts: committing while the process runs moves HEAD
    but not the code already loaded."""
    here = Path(repo) if repo is not None else Path(__file__).resolve().parent
    try:
        top = Path(_git(here, "rev-parse", "--show-toplevel")).resolve()
        head = _git(top, "rev-parse", "HEAD")
        excludes = []
        for o in outputs:
            try:
                excludes.append(f":(exclude){Path(o).resolve().relative_to(top)}")
            except ValueError:  # outside the repository: cannot make it dirty anyway
                continue
        dirty = _git(top, "status", "--porcelain", "--untracked-files=no", "--", ".", *excludes)
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")
