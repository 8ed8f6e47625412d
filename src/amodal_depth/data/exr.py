"""A small OpenEXR reader/writer for scan-line images (depth maps).

Why our own: opencv-python-headless 5.0 on this machine has no EXR codec (imread/imwrite
fail even with OPENCV_IO_ENABLE_OPENEXR=1) and no EXR package is installed. Depth maps of
the Amodal-3D-FRONT layout are single-part scan-line EXRs, so this covers exactly that:

- reading: compression NONE, RLE, ZIPS, ZIP; pixel types HALF, FLOAT, UINT; any channels
  (no subsampling); data windows that do not start at 0. Tiled, deep, multi-part files and
  the lossy/wavelet codecs (PIZ, PXR24, B44, DWA) are refused with a one-line error saying
  how to convert the file.
- writing: FLOAT or HALF channels, NONE or ZIP compression.

Layout facts (OpenEXR file layout document): magic 76 2f 31 01, an int32 version (2, with
flag bits for tiles/long names/deep/multi-part), attributes `name\\0 type\\0 int32 size value`
ending with a zero byte, an offset table of uint64 (one per chunk), then chunks
`int32 y, int32 size, data`. Inside a chunk, each scan line holds every channel in turn (in
the header's alphabetical order), little-endian. ZIP/RLE data are the bytes split into even
and odd positions (two halves), delta-coded (+128), then deflated (or run-length coded).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from amodal_depth.data.format import FormatError
from amodal_depth.fileio import atomic_write_bytes

MAGIC = b"\x76\x2f\x31\x01"
_TYPES = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}
_COMPRESSION = {0: "NONE", 1: "RLE", 2: "ZIPS", 3: "ZIP", 4: "PIZ", 5: "PXR24", 6: "B44",
                7: "B44A", 8: "DWAA", 9: "DWAB"}  # fmt: skip
_LINES_PER_CHUNK = {0: 1, 1: 1, 2: 1, 3: 16}
_CONVERT = (
    "convert it to ZIP or uncompressed scan lines (e.g. oiiotool IN --compression zip -o OUT)"
)


# ----------------------------------------------------------------------- byte transforms
def _undo_predictor_and_reorder(buf: bytes) -> bytes:
    """Inverse of the ZIP/RLE pre-pass: cumulative sum of (byte - 128), then re-interleave
    the two halves (first half = even positions, second half = odd positions)."""
    t = np.frombuffer(buf, np.uint8).astype(np.int64)
    if t.size:
        t[1:] -= 128
        t = np.cumsum(t) & 0xFF
    t = t.astype(np.uint8)
    out = np.empty_like(t)
    half = (t.size + 1) // 2
    out[0::2] = t[:half]
    out[1::2] = t[half:]
    return out.tobytes()


def _predictor_and_reorder(raw: bytes) -> bytes:
    a = np.frombuffer(raw, np.uint8)
    t = np.concatenate([a[0::2], a[1::2]]).astype(np.int64)
    d = t.copy()
    d[1:] = (t[1:] - t[:-1] + 128) & 0xFF
    return d.astype(np.uint8).tobytes()


def _rle_decode(data: bytes, expected: int) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        n = struct.unpack_from("b", data, i)[0]
        i += 1
        if n < 0:  # -n literal bytes follow
            out += data[i : i - n]
            i -= n
        else:  # the next byte repeated n + 1 times
            out += data[i : i + 1] * (n + 1)
            i += 1
    if len(out) != expected:
        raise ValueError("RLE data has the wrong length")
    return bytes(out)


# ----------------------------------------------------------------------------- reading
def _read_attributes(data: bytes, path: Path) -> tuple[dict[str, tuple[str, bytes]], int]:
    attrs: dict[str, tuple[str, bytes]] = {}
    pos = 8
    while True:
        end = data.index(b"\0", pos)
        name = data[pos:end].decode("latin-1")
        pos = end + 1
        if not name:
            return attrs, pos
        end = data.index(b"\0", pos)
        typ = data[pos:end].decode("latin-1")
        (size,) = struct.unpack_from("<i", data, end + 1)
        pos = end + 5
        if size < 0 or pos + size > len(data):
            raise FormatError(f"{path}: EXR header is truncated")
        attrs[name] = (typ, data[pos : pos + size])
        pos += size


def _channels(value: bytes) -> list[tuple[str, int]]:
    out, pos = [], 0
    while value[pos : pos + 1] not in (b"\0", b""):
        end = value.index(b"\0", pos)
        name = value[pos:end].decode("latin-1")
        ptype, _, xs, ys = struct.unpack_from("<iB3xii", value, end + 1)
        if (xs, ys) != (1, 1):
            raise ValueError(f"channel {name!r} is subsampled")
        out.append((name, ptype))
        pos = end + 1 + 16
    return out


def read_exr(path: str | Path) -> dict[str, np.ndarray]:
    """Every channel of a scan-line EXR as float32 [H, W] arrays, keyed by channel name."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: file is missing")
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise FormatError(f"{path}: not an OpenEXR file (bad magic number)")
    try:
        return _decode(data, path)
    except FormatError:
        raise
    except (struct.error, ValueError, IndexError, zlib.error) as e:
        raise FormatError(f"{path}: truncated or corrupt EXR ({e})") from e


def _decode(data: bytes, path: Path) -> dict[str, np.ndarray]:
    (version,) = struct.unpack_from("<i", data, 4)
    if version & 0xFF != 2:
        raise FormatError(f"{path}: EXR version {version & 0xFF} is not supported (only 2)")
    if version & 0x1A00:  # tiled (0x200), deep (0x800) or multi-part (0x1000)
        raise FormatError(f"{path}: tiled, deep or multi-part EXR is not supported; {_CONVERT}")
    attrs, pos = _read_attributes(data, path)
    for need in ("channels", "compression", "dataWindow"):
        if need not in attrs:
            raise FormatError(f"{path}: EXR header lacks the {need!r} attribute")
    channels = sorted(_channels(attrs["channels"][1]))
    comp = attrs["compression"][1][0]
    if comp not in _LINES_PER_CHUNK:
        name = _COMPRESSION.get(comp, str(comp))
        raise FormatError(f"{path}: EXR compression {name} is not supported; {_CONVERT}")
    for name, ptype in channels:
        if ptype not in _TYPES:
            raise FormatError(f"{path}: channel {name!r} has unknown pixel type {ptype}")
    x0, y0, x1, y1 = struct.unpack("<iiii", attrs["dataWindow"][1])
    w, h = x1 - x0 + 1, y1 - y0 + 1
    if w < 1 or h < 1:
        raise FormatError(f"{path}: EXR data window is empty")
    per_line = [(name, _TYPES[p]) for name, p in channels]
    line_bytes = sum(dt.itemsize * w for _, dt in per_line)
    lpc = _LINES_PER_CHUNK[comp]
    n_chunks = (h + lpc - 1) // lpc
    offsets = struct.unpack_from(f"<{n_chunks}Q", data, pos)
    out = {name: np.zeros((h, w), np.float32) for name, _ in per_line}
    for off in offsets:
        if off + 8 > len(data):
            raise FormatError(f"{path}: EXR is truncated (a chunk lies past the end of the file)")
        y, size = struct.unpack_from("<ii", data, off)
        payload = data[off + 8 : off + 8 + size]
        row = y - y0
        n = min(lpc, h - row)
        if row < 0 or n < 1 or len(payload) != size:
            raise FormatError(f"{path}: EXR is truncated or has a bad chunk (line {y})")
        expected = n * line_bytes
        if size < expected and comp == 1:
            raw = _undo_predictor_and_reorder(_rle_decode(payload, expected))
        elif size < expected and comp in (2, 3):
            raw = _undo_predictor_and_reorder(zlib.decompress(payload))
        else:  # stored uncompressed (also what ZIP does when deflating does not help)
            raw = payload
        if len(raw) != expected:
            raise FormatError(f"{path}: EXR chunk at line {y} has the wrong size")
        p = 0
        for r in range(row, row + n):
            for name, dt in per_line:
                nb = dt.itemsize * w
                out[name][r] = np.frombuffer(raw, dt, w, p).astype(np.float32)
                p += nb
    return out


# ----------------------------------------------------------------------------- writing
def _attr(name: str, typ: str, value: bytes) -> bytes:
    return name.encode() + b"\0" + typ.encode() + b"\0" + struct.pack("<i", len(value)) + value


def write_exr(
    path: str | Path,
    channels: dict[str, np.ndarray] | np.ndarray,
    *,
    half: bool = False,
    compression: str = "ZIP",
) -> None:
    """Write [H, W] float arrays as a scan-line EXR, atomically. A bare array is written as
    one channel named 'Y'. compression: 'NONE' or 'ZIP'."""
    if isinstance(channels, np.ndarray):
        channels = {"Y": channels}
    comp = {"NONE": 0, "ZIP": 3}.get(compression.upper())
    if comp is None:
        raise ValueError(f"compression must be NONE or ZIP, got {compression!r}")
    names = sorted(channels)
    arrays = [np.asarray(channels[n]) for n in names]
    h, w = arrays[0].shape
    if any(a.shape != (h, w) for a in arrays):
        raise ValueError("all channels must have the same [H, W] shape")
    dt, ptype = (np.dtype("<f2"), 1) if half else (np.dtype("<f4"), 2)
    chlist = b"".join(n.encode() + b"\0" + struct.pack("<iB3xii", ptype, 0, 1, 1) for n in names)
    window = struct.pack("<iiii", 0, 0, w - 1, h - 1)
    header = MAGIC + struct.pack("<i", 2)
    header += _attr("channels", "chlist", chlist + b"\0")
    header += _attr("compression", "compression", bytes([comp]))
    header += _attr("dataWindow", "box2i", window)
    header += _attr("displayWindow", "box2i", window)
    header += _attr("lineOrder", "lineOrder", b"\0")
    header += _attr("pixelAspectRatio", "float", struct.pack("<f", 1.0))
    header += _attr("screenWindowCenter", "v2f", struct.pack("<ff", 0.0, 0.0))
    header += _attr("screenWindowWidth", "float", struct.pack("<f", 1.0))
    header += b"\0"
    lpc = _LINES_PER_CHUNK[comp]
    chunks = []
    for y in range(0, h, lpc):
        raw = b"".join(a[r].astype(dt).tobytes() for r in range(y, min(h, y + lpc)) for a in arrays)
        if comp == 3:
            packed = zlib.compress(_predictor_and_reorder(raw), 6)
            raw = packed if len(packed) < len(raw) else raw
        chunks.append(struct.pack("<ii", y, len(raw)) + raw)
    pos = len(header) + 8 * len(chunks)
    offsets = []
    for c in chunks:
        offsets.append(pos)
        pos += len(c)
    blob = header + struct.pack(f"<{len(offsets)}Q", *offsets) + b"".join(chunks)
    path = Path(path)
    atomic_write_bytes(path, blob)
