"""The demo in a real browser: `amodal-depth demo` in a subprocess on a free loopback port,
driven by headless Chromium (Debian's `chromium` package through Playwright's
executable_path; no browser is downloaded). It loads the bundled sample, runs it, waits for
the layer depths, the masks and the 3D view, checks that the 3D canvas really drew the scene
and that the visible-only toggle changes it, that a bad input shows its message in the
page, that the page asked nothing of any other host, and that the server listens on
127.0.0.1 only. The screenshot is kept in the test's tmp dir; with
AMODAL_DEPTH_DEMO_SCREENSHOT=PATH also at PATH (docs/img/demo.png is made so).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOM = ROOT / "examples" / "room"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT_ENV = "AMODAL_DEPTH_DEMO_SCREENSHOT"

pytest.importorskip("gradio", reason="the demo needs gradio (pip install -e .)")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs playwright (pip install -e '.[dev]')"
)
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium is not installed (Debian: apt-get install -y chromium; make test "
        "installs it where it runs as root)",
    ),
    pytest.mark.skipif(
        not (ROOT / "weights" / "model.safetensors").is_file(), reason="needs the weights"
    ),
]
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
"""Root in a container needs --no-sandbox; WebGL (the 3D view) runs on the CPU rasteriser."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port` (from /proc/net/tcp{,6})."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A = LISTEN
                found.add(addr)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The demo in a subprocess; yields its URL; ends it afterwards."""
    port = free_port()
    log = tmp_path_factory.mktemp("demo_server") / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, "-m", "amodal_depth.cli", "demo", "--port", str(port)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the demo exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the demo did not answer within 120 s:\n{log.read_text()}")
            time.sleep(0.5)
        yield url, port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_text(page, selector: str, text: str, timeout: float = 30_000) -> None:
    """Wait until the element's visible text contains `text`."""
    page.wait_for_function(
        "([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
        arg=[selector, text],
        timeout=timeout,
    )


def load_sample(page, tries: int = 4) -> None:
    """Click 'Load sample' until the masks are listed (a click right after the page appears
    can come before gradio has wired its buttons)."""
    for i in range(tries):
        page.click("#load-sample")
        try:
            wait_text(page, "#masks", "_3", timeout=15_000)  # visible_3 or amodal_3
            page.wait_for_selector("#image img", timeout=15_000)
            return
        except sync_api.TimeoutError:
            if i == tries - 1:
                raise


def canvas_pixels(page, path: Path) -> np.ndarray:
    import cv2

    page.locator("#view3d canvas").screenshot(path=str(path))
    return cv2.imread(str(path))


def test_demo_in_chromium(server, tmp_path: Path) -> None:
    url, port = server
    assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
    foreign: list[str] = []

    def route(r) -> None:
        u = r.request.url
        if u.startswith(url) or u.startswith(("data:", "blob:")):
            r.continue_()
        else:
            foreign.append(u)
            r.abort()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1250})
        page.route("**/*", route)
        page.goto(url)
        page.wait_for_selector("#load-sample", timeout=60_000)
        load_sample(page)
        page.click("#run")
        page.wait_for_function(
            "document.querySelectorAll('#layers img').length >= 3", timeout=180_000
        )
        page.wait_for_function(
            "document.querySelectorAll('#amodal img').length >= 4", timeout=30_000
        )
        page.wait_for_selector("#view3d canvas", timeout=60_000)
        wait_text(page, "#downloads", "points_visible")
        page.wait_for_timeout(4000)  # the viewer loads the GLB and draws
        layered = canvas_pixels(page, tmp_path / "view_layered.png")
        # the scene, not an empty canvas: many colours, and far from the background
        assert len(np.unique(layered.reshape(-1, 3), axis=0)) > 500
        assert layered.std() > 20
        shot = tmp_path / "demo.png"
        page.screenshot(path=str(shot), full_page=True)

        page.get_by_label("visible only: layer 1").check()
        page.wait_for_timeout(4000)
        visible = canvas_pixels(page, tmp_path / "view_visible.png")
        changed = np.abs(layered.astype(int) - visible.astype(int)).max(axis=2) > 30
        assert changed.mean() > 0.002, changed.mean()  # the hidden surfaces are gone

        # a bad input: two masks for a model of K = 3 -> the message in the page
        page.locator("#masks button[aria-label='Clear']").first.click()
        page.wait_for_function(
            "!(document.querySelector('#masks')?.innerText || '').includes('amodal_3')"
        )
        page.locator("#masks input[type=file]").set_input_files(
            [str(ROOM / "amodal_1.png"), str(ROOM / "amodal_2.png")]
        )
        wait_text(page, "#masks", "amodal_2")
        page.click("#run")
        toast = page.locator("[data-testid=toast-body]", has_text="so it needs 3 masks")
        toast.wait_for(state="visible", timeout=60_000)
        assert "(one per object); got 2" in toast.inner_text()
        page.wait_for_timeout(800)  # the toast slides in
        page.screenshot(path=str(tmp_path / "demo_error.png"))
        browser.close()

    assert foreign == []  # offline: no CDN, no fonts, no analytics
    target = os.environ.get(SCREENSHOT_ENV)
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
    print(f"screenshot: {shot}")
