"""models/device.py: the one rule behind every --device option."""

from __future__ import annotations

import pytest
import torch

from amodal_depth.errors import UserError
from amodal_depth.models import resolve_device
from amodal_depth.models.device import DEVICE_CHOICES


def test_auto_and_cpu() -> None:
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == want
    assert resolve_device("auto").type == want
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert DEVICE_CHOICES == ("auto", "cpu", "cuda")


def test_bad_devices_are_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="unknown device 'tpu'; use auto, cpu or cuda"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="no GPU; use --device cpu"):
        resolve_device("cuda:0")
    assert resolve_device("auto").type == "cpu"
