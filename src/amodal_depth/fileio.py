"""Atomic file writes: write under a temporary name in the target's folder, then rename.

A reader (or an interrupted run) therefore sees either the old file or the complete new one,
never half a file. Temporary names start with '.' and end with '.tmp' so that cleanup code
can recognise leftovers. Files get the mode the user's umask gives ordinary files (mkstemp's
0600 would make datasets unreadable to other users).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """The mode a plain open()/mkdir() would give under the current umask."""
    return (0o777 if directory else 0o666) & ~_umask()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed to `path`.

    Usage: ``with atomic_path(out) as tmp: cv2.imwrite(str(tmp), img)``. On any exception
    the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(text)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """Fail before any work when `path` cannot become a file: it is a directory, or a file
    stands where one of its parent folders should be. Raises a one-line UserError."""
    from amodal_depth.errors import UserError

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path} is a directory; give a file name inside it instead")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{option} {path}: {parent} is a file, not a folder")
            break
    return path


def check_output_dir(path: str | Path, option: str = "--out") -> Path:
    """Fail before any work when folder `path` cannot be created or written: a file stands
    at it or at one of its parents, or the nearest existing folder is not writable."""
    from amodal_depth.errors import UserError

    path = Path(path)
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{option} {path}: {parent} exists and is not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise UserError(f"{option} {path}: {parent} is not writable; pick another folder")
            break
    return path
