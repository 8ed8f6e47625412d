"""Reading and writing EXR depth maps through the `openexr` package (the OpenEXR project's
own Python bindings, 3.x).

Depth maps of the Amodal-3D-FRONT layout are single-part EXRs; every compression and both
scan-line and tiled storage are read (tiled files at their full-resolution level). Refused
with a one-line `FormatError` that says what to do: a missing file, a file that is not EXR,
a truncated or corrupt one, multi-part and deep files, and subsampled channels.

The library reports decoding problems on the process's stdout and stderr besides raising;
`read_exr` captures that output (file descriptors 1 and 2, while the library reads) and puts
its first line into the error, so a bad file gives one line. Do not call it from several
threads at once.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import OpenEXR

from amodal_depth.data.format import FormatError
from amodal_depth.fileio import atomic_path

MAGIC = b"\x76\x2f\x31\x01"
COMPRESSIONS = {
    "NONE": OpenEXR.NO_COMPRESSION,
    "RLE": OpenEXR.RLE_COMPRESSION,
    "ZIPS": OpenEXR.ZIPS_COMPRESSION,
    "ZIP": OpenEXR.ZIP_COMPRESSION,
    "PIZ": OpenEXR.PIZ_COMPRESSION,
    "PXR24": OpenEXR.PXR24_COMPRESSION,
    "B44": OpenEXR.B44_COMPRESSION,
    "B44A": OpenEXR.B44A_COMPRESSION,
    "DWAA": OpenEXR.DWAA_COMPRESSION,
    "DWAB": OpenEXR.DWAB_COMPRESSION,
}
"""write_exr's compression names (PXR24, B44, B44A, DWAA and DWAB are lossy)."""
_CONVERT = "export a single-part, flat (not deep) EXR, e.g. oiiotool IN --compression zip -o OUT"


@contextmanager
def _captured(fd: int) -> Iterator[list[str]]:
    """Route file descriptor `fd` (1 or 2) to a temporary file; the lines written there are
    appended to the yielded list when the block ends."""
    lines: list[str] = []
    (sys.stdout if fd == 1 else sys.stderr).flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield lines
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            lines += [ln for ln in tmp.read().decode("utf-8", "replace").splitlines() if ln]


def _open(path: Path) -> OpenEXR.File:
    """The library's File of `path`, or a FormatError with the library's first message."""
    error: Exception | None = None
    with _captured(1) as printed, _captured(2) as messages:
        try:
            f = OpenEXR.File(str(path), separate_channels=True)
            parts = f.parts
        except (RuntimeError, ValueError, TypeError) as e:
            error, parts = e, []
    if error is not None or not parts:
        why = (messages or printed or [str(error or "no readable part")])[0]
        why = why.removeprefix(f"{path}: ").strip()
        raise FormatError(f"{path}: truncated or corrupt EXR: {why}")
    return f


def read_exr(path: str | Path) -> dict[str, np.ndarray]:
    """Every channel of a single-part EXR as float32 [H, W] arrays, keyed by channel name
    (alphabetical order, as the file stores them)."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: file is missing")
    with open(path, "rb") as fh:
        if fh.read(4) != MAGIC:
            raise FormatError(f"{path}: not an OpenEXR file (bad magic number)")
    parts = _open(path).parts
    if len(parts) != 1:
        raise FormatError(
            f"{path}: multi-part EXR ({len(parts)} parts) is not supported; {_CONVERT}"
        )
    storage = parts[0].header.get("type")
    if storage in (OpenEXR.deepscanline, OpenEXR.deeptile):
        raise FormatError(f"{path}: deep EXR is not supported; {_CONVERT}")
    out = {}
    for name, ch in sorted(parts[0].channels.items()):
        if (ch.xSampling, ch.ySampling) != (1, 1):
            raise FormatError(f"{path}: channel {name!r} is subsampled, which is not supported")
        if ch.pixels is None or ch.pixels.ndim != 2:
            raise FormatError(f"{path}: channel {name!r} has no pixel data (truncated file?)")
        out[name] = np.asarray(ch.pixels, np.float32)
    if not out:
        raise FormatError(f"{path}: EXR has no channels")
    return out


def write_exr(
    path: str | Path,
    channels: dict[str, np.ndarray] | np.ndarray,
    *,
    half: bool = False,
    compression: str = "ZIP",
) -> None:
    """Write [H, W] float arrays as a scan-line EXR (FLOAT, or HALF with `half`),
    atomically. A bare array is written as one channel named 'Y'. compression: a name of
    COMPRESSIONS (default ZIP)."""
    if isinstance(channels, np.ndarray):
        channels = {"Y": channels}
    comp = COMPRESSIONS.get(compression.upper())
    if comp is None:
        raise ValueError(
            f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}"
        )
    if not channels:
        raise ValueError("give at least one channel")
    dtype = np.float16 if half else np.float32
    arrays = {n: np.ascontiguousarray(channels[n], dtype=dtype) for n in sorted(channels)}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError("all channels must have the same [H, W] shape")
    header = {"compression": comp, "type": OpenEXR.scanlineimage}
    with atomic_path(path) as tmp:
        OpenEXR.File(header, arrays).write(str(tmp))
