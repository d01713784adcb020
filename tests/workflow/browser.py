"""A headless Chromium driven through ChromeDriver's W3C WebDriver protocol, with the standard library only.

The report test opens Snakemake's report (a JavaScript app) in a real browser and reads the DOM
the app renders; no Python WebDriver package is needed for the handful of calls it makes.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

# Debian's package names for the browser and its driver
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) executables on PATH, or None when either is missing."""
    browser = next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)
    driver = next((shutil.which(n) for n in DRIVER_NAMES if shutil.which(n)), None)
    return (browser, driver) if browser and driver else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """One ChromeDriver process and one browser session; use as a context manager."""

    def __init__(self, browser: str, driver: str, timeout: float = 60):
        self.browser, self.driver, self.timeout = browser, driver, timeout
        self.port = _free_port()
        self.profile = tempfile.TemporaryDirectory(prefix="gohscore-chromium-")
        self.process: subprocess.Popen | None = None
        self.session = ""

    def __enter__(self) -> Browser:
        self.process = subprocess.Popen(
            [self.driver, f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.driver} did not start on port {self.port}")
            time.sleep(0.2)
        options = {"binary": self.browser, "args": [*CHROMIUM_ARGS, f"--user-data-dir={self.profile.name}"]}
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.session:
                self._call("DELETE", f"/session/{self.session}")
        finally:
            if self.process is not None:
                self.process.terminate()
                self.process.wait(timeout=30)
            self.profile.cleanup()

    def _call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as err:  # WebDriver errors come as JSON bodies
            raise RuntimeError(f"{method} {path}: {err.read().decode(errors='replace')[:2000]}") from None

    def _session(self, method: str, path: str, body: dict | None = None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self._session("POST", "/url", {"url": url})

    def run(self, script: str, *args):
        """Run ``script`` (a function body; ``arguments`` holds ``args``) in the page; its return value."""
        return self._session("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script: str, *args, timeout: float = 30):
        """Run ``script`` until it returns something truthy; that value (RuntimeError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.run(script, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for: {script}")
            time.sleep(0.2)

    def find(self, css: str) -> list[dict]:
        """Element references of every element matching ``css`` in the current frame."""
        return self._session("POST", "/elements", {"using": "css selector", "value": css})

    def click(self, element: dict) -> None:
        self._session("POST", f"/element/{element[ELEMENT]}/click", {})

    def enter_frame(self, element: dict | None) -> None:
        """Switch into the iframe ``element``, or back to the top page with None."""
        self._session("POST", "/frame", {"id": element})

    def screenshot(self, out: Path) -> Path:
        out.write_bytes(base64.b64decode(self._session("GET", "/screenshot")))
        return out
