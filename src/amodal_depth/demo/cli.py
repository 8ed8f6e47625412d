"""`amodal-depth demo`: serve the web demo on this machine (docs/demo.md)."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 7860


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _command(a: argparse.Namespace) -> int:
    from amodal_depth.demo.pipeline import DemoConfig
    from amodal_depth.demo.samples import RGBD_WEIGHTS
    from amodal_depth.errors import UserError

    if not 0 < a.port < 65536:
        raise UserError(f"--port {a.port}: give a port in 1..65535")
    if a.concurrency < 1:
        raise UserError(f"--concurrency {a.concurrency}: give at least 1")
    for name in ("weights", "rgbd_weights", "completion_weights"):
        path = getattr(a, name)
        if path is not None and name != "rgbd_weights" and not Path(path).is_file():
            raise UserError(f"--{name.replace('_', '-')} {path}: no such file")
    config = DemoConfig(
        weights=a.weights,
        rgbd_weights=Path(a.rgbd_weights) if a.rgbd_weights else RGBD_WEIGHTS,
        completion_weights=a.completion_weights,
        device=a.device,
    )
    status = config.status()
    if status["weights_error"]:
        raise UserError(status["weights_error"])
    if not status["completion_weights"]:
        print(
            "amodal-depth demo: no amodal completion weights (weights/completion.safetensors): "
            "visible masks cannot be completed; amodal masks work",
            file=sys.stderr,
        )
    if not _is_loopback(a.host):
        print(
            f"amodal-depth demo: warning: --host {a.host} serves the demo to other machines; "
            "it has no login",
            file=sys.stderr,
        )
    from amodal_depth.demo.app import launch

    launch(config, host=a.host, port=a.port, concurrency=a.concurrency)
    return 0


def add_demo_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `amodal-depth demo` on the top-level subparsers."""
    from amodal_depth.models.device import DEVICE_CHOICES

    p = subparsers.add_parser(
        "demo",
        help="a local web page: image + masks -> layer depths and the 3D view (docs/demo.md)",
        description="Serve the web demo (Gradio) on this machine: upload an image and the "
        "masks of its objects (or load the bundled sample) and see the per-layer depths, the "
        "amodal masks and the fused 3D reconstruction, visible-only or layered, with PLY/GLB "
        "downloads. Loopback only unless --host says otherwise; runs offline.",
    )
    p.add_argument("--host", default=LOOPBACK, help=f"address to bind (default {LOOPBACK})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument("--weights", default=None, help="depth weights (default: as for predict)")
    p.add_argument(
        "--rgbd-weights",
        default=None,
        help="weights that read an observed depth, used when a depth map is given and the file "
        "exists (default weights/model_rgbd.safetensors)",
    )
    p.add_argument(
        "--completion-weights",
        default=None,
        help="amodal completion weights for visible masks (default: as for predict)",
    )
    p.add_argument(
        "--concurrency", type=int, default=1, help="requests computed at once (default 1)"
    )
    p.add_argument("--device", choices=DEVICE_CHOICES, default="cpu", help="default cpu")
    p.set_defaults(func=_command)
    return p
