"""The web demo (`amodal-depth demo`, docs/demo.md): a local Gradio page on the public API.

pipeline.run_request does the work without any web framework (tests call it directly);
app.build_app / app.launch make the page; gradio is imported only by app.
"""


def add_demo_command(subparsers):  # noqa: ANN001, ANN201 - argparse internals
    """Register `amodal-depth demo` (see demo.cli)."""
    from amodal_depth.demo.cli import add_demo_command as add

    return add(subparsers)


__all__ = ["add_demo_command"]
