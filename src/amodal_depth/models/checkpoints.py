"""Weights files: safetensors holding the state dict, with the resolved ModelConfig as JSON in
the metadata, so `load_model(path)` rebuilds the exact architecture with no other input.

Every failure a user can cause (missing, truncated or foreign file, a PyTorch pickle, a file
of another variant or size than expected) is a one-line UserError.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from amodal_depth.config import ModelConfig
from amodal_depth.errors import UserError
from amodal_depth.fileio import atomic_path
from amodal_depth.models.model import AmodalDepthModel, build_model
from amodal_depth.models.sizes import resolve_config

FORMAT_TAG = "amodal-depth-model"
FORMAT_VERSION = "1"
# Fields that decide whether a weights file fits what the caller expects.
_IDENTITY_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name != "infer_size")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file; a one-line UserError when they cannot be read."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for bad files
        raise UserError(
            f"cannot read the tensors of {path} (truncated?): {_first_line(e)}"
        ) from None


def save_model(
    model: AmodalDepthModel,
    path: str | os.PathLike,
    dtype: torch.dtype | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """Write `model` to `path` (safetensors, atomic). dtype (e.g. torch.float16) casts the
    floating tensors; extra_metadata values are stored as strings (JSON for non-strings).

    An existing file holding the same tensors and metadata is left untouched: safetensors
    writes the metadata in a different order on each call, and a re-export should not turn a
    committed file into a binary diff."""
    meta = {
        "format": FORMAT_TAG,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(dataclasses.asdict(model.config)),
        "observed_depth": json.dumps(bool(model.config.observed_depth)),
    }
    return write_state(model, path, meta, dtype, extra_metadata)


def write_state(
    module: torch.nn.Module,
    path: str | os.PathLike,
    meta: dict[str, str],
    dtype: torch.dtype | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """The one safetensors writer of the project's networks: `module`'s state dict (floating
    tensors cast to `dtype` when given) with `meta` plus `extra_metadata` (non-strings as
    JSON), atomically; a file already holding the same tensors and metadata is left as is."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, t in module.state_dict().items():
        t = t.detach().cpu()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        tensors[key] = t.contiguous()
    full = {
        k: v if isinstance(v, str) else json.dumps(v) for k, v in (extra_metadata or {}).items()
    }
    full.update(meta)
    if _same_content(path, tensors, full):
        return path
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=full)
    return path


def _same_content(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> bool:
    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}) != meta or set(f.keys()) != set(tensors):
                return False
            return all(
                (old := f.get_tensor(k)).dtype == t.dtype and torch.equal(old, t)
                for k, t in tensors.items()
            )
    except Exception:  # unreadable or foreign: overwrite it
        return False


def _is_pickle(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    # A safetensors file starts with its JSON header's length (u64, little endian) and then
    # the header's "{": its first byte is 0x80 whenever that length is 128 mod 256, so check
    # this shape before taking 0x80 for a pickle's protocol byte.
    n = int.from_bytes(head[:8], "little")
    if len(head) == 9 and head[8:9] == b"{" and 0 < n <= path.stat().st_size - 8:
        return False
    # torch.save writes a zip archive; older files are a bare pickle (protocol byte 0x80).
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _pickle_error(path: Path) -> UserError:
    hint = "convert it with save_model"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
            obj = obj["model"]
        if isinstance(obj, dict) and any(str(k).startswith("pretrained.") for k in obj):
            hint = (
                "it holds Depth Anything V2 keys (pretrained.*): load it with "
                "load_depth_anything_v2 or start training from it with train --init PATH"
            )
    except Exception:  # noqa: BLE001 - only refining the hint; the error below stands anyway
        pass
    return UserError(
        f"{path} looks like a PyTorch pickle checkpoint (.pt/.pth), not an amodal-depth "
        f"safetensors weights file; {hint}"
    )


def read_model_config(path: str | os.PathLike) -> ModelConfig:
    """The ModelConfig stored in a weights file (without loading the tensors)."""
    cfg, _ = _open(Path(path))
    return cfg


def _open(path: Path) -> tuple[ModelConfig, dict[str, str]]:
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist")
    if _is_pickle(path):
        raise _pickle_error(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for bad files
        raise UserError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {_first_line(e)}"
        ) from None
    if meta.get("format") != FORMAT_TAG or "config" not in meta:
        raise UserError(
            f"{path} has no amodal-depth model metadata (format tag {FORMAT_TAG!r}); "
            "write weights with save_model, or load official checkpoints with "
            "load_depth_anything_v2"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{path} is format version {meta.get('format_version')!r}; this code reads "
            f"version {FORMAT_VERSION}"
        )
    try:
        cfg = ModelConfig(**json.loads(meta["config"]))
    except (TypeError, ValueError) as e:
        raise UserError(f"{path} has an unreadable model config: {_first_line(e)}") from None
    return resolve_config(cfg), meta


def check_expected(cfg: ModelConfig, expect: ModelConfig, what: str) -> None:
    """UserError naming every architecture field where `cfg` differs from `expect`."""
    want = resolve_config(expect)
    diffs = [
        f"{name} {getattr(cfg, name)!r} (expected {getattr(want, name)!r})"
        for name in _IDENTITY_FIELDS
        if getattr(cfg, name) != getattr(want, name)
    ]
    if diffs:
        raise UserError(
            f"{what} holds another model (variant {cfg.variant}, encoder {cfg.encoder}, "
            f"K={cfg.num_layers}): " + "; ".join(diffs)
        )


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu", expect: ModelConfig | None = None
) -> AmodalDepthModel:
    """Rebuild the model stored by save_model (fp16 files load into an fp32 model)."""
    path = Path(path)
    cfg, _ = _open(path)
    if expect is not None:
        check_expected(cfg, expect, str(path))
    model = build_model(cfg)
    state = read_tensors(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise UserError(
            f"{path} does not match its own config: missing {missing[:3]}, unexpected "
            f"{extra[:3]} (file edited or written by other code?)"
        )
    for k, t in state.items():
        if t.shape != own[k].shape:
            raise UserError(
                f"{path}: tensor {k} has shape {list(t.shape)}, the config needs "
                f"{list(own[k].shape)}"
            )
    model.load_state_dict(state)  # copy_ casts fp16/bf16 into the fp32 parameters
    return model.to(device)


def init_from_weights(model: AmodalDepthModel, path: str | os.PathLike) -> list[str]:
    """Copy the tensors of a project weights file into `model` to fine-tune it, and return
    the names of the parameters the file does not have. Those may only be the zero-initialised
    observed-depth inputs (a model given `observed_depth` starts as the RGB-only one); any
    other difference in architecture is a UserError, except `unguided_first_layer` (no
    parameters: a guided model can learn to predict layer 1 without masks)."""
    path = Path(path)
    cfg, _ = _open(path)
    own_cfg = dataclasses.asdict(model.config)
    file_cfg = dataclasses.asdict(cfg)
    diff = [
        k
        for k in own_cfg
        if k not in ("observed_depth", "infer_size", "unguided_first_layer")
        and own_cfg[k] != file_cfg[k]
    ]
    if diff:
        found = ", ".join(f"{k}: {file_cfg[k]!r}" for k in diff[:3])
        raise UserError(
            f"{path} holds another architecture ({found}); "
            "fine-tune it with the same variant and preset, or start without --weights"
        )
    state = read_tensors(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    if [k for k in missing if "observation" not in k] or set(state) - set(own):
        raise UserError(f"{path} does not match the model it should initialise")
    model.load_state_dict(state, strict=False)
    return missing
