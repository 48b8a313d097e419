"""The report in a real browser: no console errors, no network requests, every image decodes, banner shown.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe`` (file descriptors
3 and 4, NUL-separated JSON), which needs nothing beyond the standard library. DNS is mapped to
nowhere, so a stray external reference would show up as a failed request, not a silent fetch.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import select
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from detection_report_fixtures import write_detection_run
from PIL import Image
from report_fixtures import write_full_run, write_minimal_run

from xferdiag.commands.verdict import verdict_for_run
from xferdiag.report import render_compare, render_report

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--hide-scrollbars", "--mute-audio", "--host-resolver-rules=MAP * ~NOTFOUND", "--remote-debugging-pipe",
]
PROBE = """(() => {
  const images = [...document.images];
  const banner = document.querySelector('#verdict.banner');
  return {images: images.length,
          broken: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt),
          banner: banner ? banner.innerText : null,
          scripts: document.scripts.length};
})()"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs headless Chromium at /usr/bin/chromium "
                                                     "(apt-get install chromium); CI installs it"),
]


class Chromium:
    """A headless Chromium and a minimal DevTools client over its debugging pipe."""

    def __init__(self, profile: Path):
        to_browser_r, self._out = os.pipe()
        self._in, from_browser_w = os.pipe()

        def wire_pipes() -> None:  # runs in the child: the protocol expects commands on fd 3, replies on fd 4
            read_end = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.proc = subprocess.Popen([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     preexec_fn=wire_pipes, pass_fds=(3, 4),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.messages: list[dict] = []  # every message received, events included, in order
        self._unclaimed: list[dict] = []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._out)
        os.close(self._in)

    def _receive(self, deadline: float) -> None:
        ready, _, _ = select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError("Chromium did not answer in time")
        chunk = os.read(self._in, 1 << 20)
        if not chunk:
            raise RuntimeError("Chromium closed the debugging pipe")
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\0")
        for raw in complete:
            message = json.loads(raw)
            self.messages.append(message)
            self._unclaimed.append(message)

    def _wait(self, match, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, message in enumerate(self._unclaimed):
                if match(message):
                    return self._unclaimed.pop(i)
            self._receive(deadline)

    def call(self, method: str, session: str | None = None, timeout: float = 60, **params) -> dict:
        self._next_id += 1
        ident = self._next_id
        message = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        reply = self._wait(lambda m: m.get("id") == ident, timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, name: str, timeout: float = 60) -> dict:
        return self._wait(lambda m: m.get("method") == name, timeout)

    def events(self, name: str) -> list[dict]:
        return [m.get("params", {}) for m in self.messages if m.get("method") == name]


def inspect_page(html_file: Path, profile: Path, width: int = 1200) -> dict:
    """Load a file, then return the probe's findings, console errors, requests and a full-page PNG."""
    with Chromium(profile) as browser:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(f"{domain}.enable", session)
        browser.call("Emulation.setDeviceMetricsOverride", session, width=width, height=900,
                     deviceScaleFactor=1, mobile=False)
        browser.call("Page.navigate", session, url=html_file.resolve().as_uri())
        browser.wait_event("Page.loadEventFired")
        probe = browser.call("Runtime.evaluate", session, expression=PROBE, returnByValue=True)["result"]["value"]
        size = browser.call("Page.getLayoutMetrics", session)["cssContentSize"]
        shot = browser.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        errors = ([e["args"] for e in browser.events("Runtime.consoleAPICalled") if e.get("type") in ("error", "warning")]
                  + [e["exceptionDetails"] for e in browser.events("Runtime.exceptionThrown")]
                  + [e["entry"] for e in browser.events("Log.entryAdded") if e["entry"].get("level") == "error"])
        requests = [e["request"]["url"] for e in browser.events("Network.requestWillBeSent")]
    return {"probe": probe, "errors": errors, "requests": requests, "png": base64.b64decode(shot["data"])}


def distinct_colours(png: bytes) -> int:
    with Image.open(io.BytesIO(png)) as image:
        pixels = np.asarray(image.convert("RGB").resize((300, 300))).reshape(-1, 3)
    return len(np.unique(pixels, axis=0))


def render(kind: str, root: Path) -> Path:
    if kind == "compare":
        runs = [write_full_run(root / f"run-{i}", transfer_acc=0.9 - 0.1 * i, seed=i, n_explained=1,
                               scores={"logme": 2.0 - i, "leep": -1.0 - i, "nce": -0.5 - i, "h_score": 3.0 - i})
                for i in range(3)]
        return render_compare(runs, root / "compare.html").path
    if kind == "detection":  # the detection sections: card, per-class AP, PR curves, TIDE bars, the gallery's thumbnails
        run = write_detection_run(root)
        verdict_for_run(run)
        return render_report(run).path
    run = write_full_run(root / "run") if kind == "full" else write_minimal_run(root / "run")
    return render_report(run).path


@pytest.mark.parametrize("kind", ["full", "minimal", "compare", "detection"])
def test_page_in_browser(tmp_path, kind):
    seen = inspect_page(render(kind, tmp_path), tmp_path / "profile")
    probe = seen["probe"]
    assert seen["errors"] == []
    assert [u for u in seen["requests"] if not u.startswith(("file:", "data:"))] == []
    assert probe["scripts"] == 0
    assert probe["broken"] == []
    assert probe["images"] >= {"full": 20, "minimal": 0, "compare": 3, "detection": 4}[kind]
    if kind == "detection":
        assert probe["banner"]
    elif kind != "compare":
        assert probe["banner"] and ("Transfer helped" in probe["banner"] or "No scratch baseline" in probe["banner"])
    assert seen["png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert distinct_colours(seen["png"]) > 20
