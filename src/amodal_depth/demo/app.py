"""The Gradio page of `amodal-depth demo`: inputs on the left, results on the right.

Callbacks are plain functions (`run_callback`, `toggle_callback`, `load_sample_callback`)
around pipeline.run_request, so tests call them without a browser. A UserError becomes a
gr.Error, shown in the page as a message box; a non-binary mask a gr.Warning.

Offline: the page's scripts, styles and fonts come from the gradio wheel, the 3D viewer
(Babylon.js) too; analytics and the hub are switched off before gradio is imported.
"""

from __future__ import annotations

import functools
import os
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402 - after the environment above

from amodal_depth.demo.pipeline import (  # noqa: E402
    DEPTH_TYPES,
    MASK_TYPES,
    MAX_PIXELS,
    MAX_UPLOAD,
    DemoConfig,
    DemoRequest,
    run_request,
)
from amodal_depth.demo.samples import EXAMPLES_DIR, room_samples  # noqa: E402
from amodal_depth.demo.samples import default_sample as pick_default  # noqa: E402
from amodal_depth.errors import UserError  # noqa: E402

CAMERA_POSITION = (65.0, 75.0, None)
"""Initial 3D view (Babylon alpha, beta in degrees): from the front left, a little above,
so the surfaces behind the objects (or their absence) show at once."""
CACHE_LIFETIME = (600, 3600)
"""Every 10 minutes gradio deletes the files it served that are older than an hour."""
VIEWS = ("layered: all layers", "visible only: layer 1")
"""The choices of the 3D view toggle; the second is what an ordinary depth map gives."""

INTRO = """# amodal-depth: layered depth and 3D behind the occluders
Give a photo and the masks of its 3 objects. The model predicts the depth of the scene
**and of what each object hides**: layer 1 is the visible scene, layer k the scene with the
k-1 nearest objects removed. Fused, the layers give a 3D reconstruction without the empty
"shadow" an ordinary depth map leaves behind every object: flip the 3D view between
*visible only* and *layered* to see the difference."""


def status_markdown(config: DemoConfig) -> str:
    """The availability notes shown under the intro."""
    st = config.status()
    lines = []
    if st["weights_error"]:
        lines.append(f"**No depth weights:** {st['weights_error']}")
    else:
        lines.append(f"Depth model: `{Path(st['weights']).name}`.")
    if st["rgbd_weights"]:
        lines.append(f"With a depth map: `{Path(st['rgbd_weights']).name}` (reads the depth).")
    else:
        lines.append(
            "With a depth map, the RGB model's layers are fitted to it (metres); no RGB-D "
            "weights (`weights/model_rgbd.safetensors`) are installed."
        )
    if st["completion_weights"]:
        lines.append(f"Visible masks are completed by `{Path(st['completion_weights']).name}`.")
    else:
        lines.append(
            "**No amodal completion weights** (`weights/completion.safetensors`): visible "
            "masks cannot be completed yet, so use mask kind **amodal** (whole objects, "
            "hidden parts included)."
        )
    mp = MAX_PIXELS / 1e6
    lines.append(f"Limits: images up to {mp:.0f} MP, files up to {MAX_UPLOAD.upper()} each.")
    return "  \n".join(lines)


# ------------------------------------------------------------------------------ callbacks
def _path(f: Any) -> str | None:
    """A gradio file value (path string, or an object with .name / .path) -> path."""
    if f is None or isinstance(f, str | Path):
        return None if f is None else str(f)
    return str(getattr(f, "path", None) or getattr(f, "name", f))


def run_callback(
    config: DemoConfig,
    image: Any,
    masks: list[Any] | None,
    kind: str,
    depth: Any,
    intrinsics: str | None,
    fov: float | None,
    hidden: str,
    view: str,
) -> tuple[Any, ...]:
    """Run button -> (layer gallery, mask gallery, 3D view, downloads, summary, view state)."""
    req = DemoRequest(
        image=image,
        masks=[_path(m) for m in masks or []],
        masks_kind=kind,
        depth=_path(depth),
        intrinsics=intrinsics,
        fov=fov,
        hidden_colour=hidden,
    )
    try:
        result = run_request(req, config)
    except UserError as e:
        raise gr.Error(str(e), title="Bad input", print_exception=False) from None
    except Exception as e:  # noqa: BLE001 - shown in the page, logged in full
        traceback.print_exc()
        first = (str(e).splitlines() or [""])[0]
        raise gr.Error(f"internal error: {type(e).__name__}: {first}", title="Error") from None
    for w in result.warnings:
        gr.Warning(w)
    views = [str(result.view_layered), str(result.view_visible)]
    shown = views[1] if view == VIEWS[1] else views[0]
    return (
        result.layer_images,
        result.mask_images,
        shown,
        [str(p) for p in result.downloads],
        result.summary(),
        views,
    )


def toggle_callback(view: str, views: list[str] | None) -> str | None:
    """3D view toggle -> the GLB to show (None before the first run)."""
    if not views:
        return None
    return views[1] if view == VIEWS[1] else views[0]


def load_sample_callback(name: str) -> tuple[Any, ...]:
    """Load button -> (image, masks, kind, depth, intrinsics) of the named bundled sample."""
    sample = next((s for s in room_samples() if s.name == name), None)
    if sample is None:
        raise gr.Error(f"no bundled sample {name!r} (is examples/ of the checkout there?)")
    return (
        str(sample.image),
        [str(p) for p in sample.masks],
        sample.kind,
        None if sample.depth is None else str(sample.depth),
        sample.intrinsics,
    )


# ------------------------------------------------------------------------------ page
def _inputs(samples: list[Any], default: Any, completion_ready: bool) -> dict[str, Any]:
    c: dict[str, Any] = {}
    c["image"] = gr.Image(
        label="Image",
        type="numpy",
        image_mode="RGB",
        sources=["upload"],
        format="png",
        height=260,
        elem_id="image",
    )
    c["masks"] = gr.File(
        label="Masks: one PNG per object (0/255), or one instance-id PNG (0 = none, 1..3)",
        file_count="multiple",
        file_types=list(MASK_TYPES),
        type="filepath",
        elem_id="masks",
    )
    c["kind"] = gr.Radio(
        ["visible", "amodal"],
        value="visible" if completion_ready else "amodal",
        label="Mask kind",
        elem_id="kind",
        info="visible: what you see of each object (completed by the model); amodal: whole "
        "objects, nearest first",
    )
    c["depth"] = gr.File(
        label="Observed depth (optional): 16-bit PNG in mm, or .npy / .exr in metres",
        file_types=list(DEPTH_TYPES),
        type="filepath",
        elem_id="depth",
    )
    with gr.Accordion("Camera and colours", open=False):
        c["intrinsics"] = gr.Textbox(
            label="Intrinsics fx,fy,cx,cy in pixels (blank: use the field of view)",
            elem_id="intrinsics",
        )
        c["fov"] = gr.Number(value=60.0, label="Horizontal field of view (degrees)")
        c["hidden"] = gr.Radio(
            ["inpaint", "flat"],
            value="inpaint",
            label="Colour of the hidden surfaces",
            info="inpaint: diffused from the visible pixels (a guess); flat: one tint per layer",
        )
    with gr.Row():
        c["sample"] = gr.Dropdown(
            [s.name for s in samples],
            value=default.name if default else None,
            label="Bundled sample (examples/room)",
            scale=3,
            elem_id="sample",
        )
        c["load"] = gr.Button("Load sample", scale=1, elem_id="load-sample")
    c["run"] = gr.Button("Run", variant="primary", elem_id="run")
    return c


def _outputs() -> dict[str, Any]:
    c: dict[str, Any] = {}
    c["view3d"] = gr.Model3D(
        label="3D view (drag to orbit, scroll to zoom)",
        clear_color=(0.12, 0.12, 0.14, 1.0),
        camera_position=CAMERA_POSITION,
        height=420,
        elem_id="view3d",
    )
    c["view"] = gr.Radio(list(VIEWS), value=VIEWS[0], label="3D view shows", elem_id="toggle")
    c["summary"] = gr.Markdown(elem_id="summary")
    c["files"] = gr.File(label="Downloads", file_count="multiple", elem_id="downloads")
    return c


def build_app(config: DemoConfig | None = None) -> gr.Blocks:
    """The demo page (not launched)."""
    config = config or DemoConfig()
    completion_ready = config.status()["completion_weights"] is not None
    samples = room_samples()
    default = pick_default(samples, completion_ready)
    blocks = gr.Blocks(
        title="amodal-depth demo", analytics_enabled=False, delete_cache=CACHE_LIFETIME
    )
    with blocks as app:
        gr.Markdown(INTRO)
        gr.Markdown(status_markdown(config), elem_id="status")
        with gr.Row():
            with gr.Column(scale=1):
                i = _inputs(samples, default, completion_ready)
            with gr.Column(scale=1):
                o = _outputs()
        with gr.Row():
            layers = gr.Gallery(
                label="Layer depths (red = near)",
                columns=3,
                height=240,
                format="png",
                elem_id="layers",
            )
            masks = gr.Gallery(
                label="Amodal masks", columns=4, height=240, format="png", elem_id="amodal"
            )
        views = gr.State(None)
        i["run"].click(
            functools.partial(run_callback, config),
            inputs=[i[k] for k in ("image", "masks", "kind", "depth", "intrinsics", "fov")]
            + [i["hidden"], o["view"]],
            outputs=[layers, masks, o["view3d"], o["files"], o["summary"], views],
            api_name="run",
        )
        o["view"].change(
            toggle_callback, [o["view"], views], o["view3d"], api_name=False, queue=False
        )
        i["load"].click(
            load_sample_callback,
            inputs=i["sample"],
            outputs=[i[k] for k in ("image", "masks", "kind", "depth", "intrinsics")],
            api_name="load_sample",
        )
    return app


def launch(
    config: DemoConfig | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    concurrency: int = 1,
    block: bool = True,
) -> gr.Blocks:
    """Build and serve the page on host:port (loopback by default)."""
    app = build_app(config)
    app.queue(default_concurrency_limit=concurrency, max_size=64)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        max_file_size=MAX_UPLOAD,
        allowed_paths=[str(EXAMPLES_DIR)] if EXAMPLES_DIR.is_dir() else None,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        prevent_thread_lock=not block,
        quiet=False,
    )
    return app
