"""Drive a headless Chromium through the DevTools protocol over a pipe (no extra packages).

Chromium started with ``--remote-debugging-pipe`` reads protocol commands from file
descriptor 3 and writes replies and events to descriptor 4, each message a JSON document
followed by a NUL byte. :class:`Chromium` starts the browser with a fresh profile and the flags
that work in containers, attaches to one page and offers the few calls the report tests need
(load a file, evaluate JavaScript, take a screenshot) plus the console errors and exceptions
seen so far. Nothing here touches the network: the browser is started with background
networking, component updates and sync switched off, and only ``file://`` pages are opened.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

#: Flags that make Chromium run headless in a container without reaching out.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserError(RuntimeError):
    """The browser did not start or did not answer a protocol command in time."""


def find_chromium() -> str | None:
    """Path of a Chromium (or Chrome) executable on ``PATH``, else None."""
    override = os.environ.get("BIDS_APP_CHROMIUM")
    if override:
        return override if Path(override).is_file() else None
    for name in EXECUTABLES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _keep_pipe_fds(command_read: int, reply_write: int) -> None:
    """In the child: put the protocol pipes on descriptors 3 and 4 (runs before exec)."""
    os.dup2(command_read, 3)
    os.dup2(reply_write, 4)


class Chromium:
    """A headless Chromium page controlled over the DevTools pipe.

    Parameters
    ----------
    executable : str
        The browser binary.
    width, height : int
        Viewport size in CSS pixels.
    timeout_s : float
        How long to wait for any one reply.
    """

    def __init__(
        self, executable: str, width: int = 1024, height: int = 800, timeout_s: float = 60.0
    ) -> None:
        self.timeout_s = timeout_s
        self.console_errors: list[str] = []
        self._profile = tempfile.mkdtemp(prefix="bids_app_chromium_")
        command_read, self._command_write = os.pipe()
        self._reply_read, reply_write = os.pipe()
        args = [
            executable,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self._profile}",
            f"--window-size={width},{height}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=lambda: _keep_pipe_fds(command_read, reply_write),
        )
        os.close(command_read)
        os.close(reply_write)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    # ------------------------------------------------------------------ protocol plumbing
    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode("utf-8") + b"\0"
        while data:
            written = os.write(self._command_write, data)
            data = data[written:]

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                msg = "Chromium did not answer in time"
                raise BrowserError(msg)
            ready, _, _ = select.select([self._reply_read], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._reply_read, 1 << 20)
            if not chunk:
                msg = f"Chromium closed the DevTools pipe (exit code {self._process.poll()})"
                raise BrowserError(msg)
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def _call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self._next_id += 1
        request: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        self._send(request)
        deadline = time.monotonic() + self.timeout_s
        while True:
            message = self._receive(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    msg = f"{method} failed: {message['error']}"
                    raise BrowserError(msg)
                result: dict[str, Any] = message.get("result", {})
                return result
            self._record(message)

    def _record(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        method = event.get("method")
        params = event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.console_errors.append(f"exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.console_errors.append(f"console.error: {args}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.console_errors.append(f"{entry.get('source')}: {entry.get('text')}")

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command to the page and return its result."""
        return self._call(method, params, self._session)

    def wait_for_event(self, method: str) -> dict[str, Any]:
        """Wait for an event of the page (events already received count)."""
        for i, event in enumerate(self._events):
            if event.get("method") == method:
                return self._events.pop(i)
        deadline = time.monotonic() + self.timeout_s
        while True:
            message = self._receive(deadline)
            if message.get("method") == method:
                self._record(message)
                self._events.remove(message)
                return message
            self._record(message)

    # ------------------------------------------------------------------ page helpers
    def open(self, path: Path) -> None:
        """Load a local file and wait for its load event."""
        self._events = [e for e in self._events if e.get("method") != "Page.loadEventFired"]
        self.call("Page.navigate", {"url": path.resolve().as_uri()})
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its JSON value."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            msg = f"JavaScript failed: {result['exceptionDetails']}"
            raise BrowserError(msg)
        return result.get("result", {}).get("value")

    def pause(self, seconds: float) -> None:
        """Let the page work (lazy images, layout) while still collecting its events."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._reply_read], [], [], deadline - time.monotonic())
            if ready:
                chunk = os.read(self._reply_read, 1 << 20)
                if not chunk:
                    break
                self._buffer += chunk
                while b"\0" in self._buffer:
                    raw, self._buffer = self._buffer.split(b"\0", 1)
                    self._record(json.loads(raw))

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """Save a PNG screenshot of the viewport (or of the whole page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": size["height"],
                "scale": 1,
            }
        data = self.call("Page.captureScreenshot", params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close the browser (politely, then by force) and remove its profile."""
        try:
            self._send({"id": self._next_id + 1, "method": "Browser.close"})
            self._process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait(timeout=10)
        finally:
            for fd in (self._command_write, self._reply_read):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
