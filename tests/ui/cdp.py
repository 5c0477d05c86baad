"""Headless Chromium driven through the DevTools protocol over a pipe
(chromium --remote-debugging-pipe: JSON messages, each ended by a NUL
byte, on the child's fds 3 and 4), so the browser tests need nothing
beyond Debian's chromium and Python's standard library.

    with Browser() as b:
        page = b.page()
        page.goto("http://127.0.0.1:P/#/runs")
        page.wait("document.body.dataset.runsReady")
        page.eval("document.querySelectorAll('tr').length")
        page.screenshot("runs.png")

Every wait is bounded; the browser is killed on exit whatever happened."""

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

CHROMIUM = os.environ.get("RV_CHROMIUM", "chromium")


class CdpError(RuntimeError):
    pass


def chromium_path():
    """The chromium binary, or None when it is not installed."""
    return shutil.which(CHROMIUM)


class Browser:
    def __init__(self, width=1280, height=900):
        self.width, self.height = width, height
        self.proc = None
        self.dir = None
        self._next = 0
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._results = {}
        self._events = []
        self._dead = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        exe = chromium_path()
        if exe is None:
            raise CdpError("chromium is not installed (apt-get install "
                           "chromium)")
        self.dir = tempfile.mkdtemp(prefix="rv-chromium-")
        r, self._to_child = os.pipe()
        self._from_child, w = os.pipe()
        # The child's ends above fd 9, so that moving them to 3 and 4
        # cannot overwrite one with the other.
        to_child_r = fcntl.fcntl(r, fcntl.F_DUPFD, 10)
        from_child_w = fcntl.fcntl(w, fcntl.F_DUPFD, 10)
        os.close(r)
        os.close(w)

        def fds():
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        argv = [exe, "--headless=new", "--remote-debugging-pipe",
                "--no-first-run", "--no-default-browser-check",
                "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--disable-background-networking",
                "--disable-sync", "--metrics-recording-only",
                "--enable-precise-memory-info",
                "--window-size=%d,%d" % (self.width, self.height),
                "--user-data-dir=" + self.dir, "about:blank"]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # Chromium refuses root else.
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "stderr.log"), "wb"),
            preexec_fn=fds, pass_fds=(3, 4), start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.call("Browser.close", timeout=5)
            except CdpError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)
        for fd in (getattr(self, "_to_child", None),):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._to_child = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cv:
                    self._dead = True
                    self._cv.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cv:
                    if "id" in msg:
                        self._results[msg["id"]] = msg
                    else:
                        self._events.append(msg)
                    self._cv.notify_all()

    def call(self, method, params=None, session=None, timeout=30):
        with self._lock:
            self._next += 1
            mid = self._next
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        try:
            os.write(self._to_child, data)
        except (OSError, TypeError) as e:
            raise CdpError("chromium is gone: %s" % e)
        end = time.monotonic() + timeout
        with self._cv:
            while mid not in self._results:
                left = end - time.monotonic()
                if left <= 0 or self._dead:
                    raise CdpError("%s: no answer in %ss" % (method, timeout)
                                   if not self._dead else
                                   "%s: chromium exited" % method)
                self._cv.wait(left)
            res = self._results.pop(mid)
        if "error" in res:
            raise CdpError("%s: %s" % (method, res["error"]))
        return res.get("result", {})

    def events(self, method=None):
        with self._lock:
            return [e for e in self._events
                    if method is None or e.get("method") == method]

    def page(self):
        t = self.call("Target.createTarget", {"url": "about:blank"})
        s = self.call("Target.attachToTarget",
                      {"targetId": t["targetId"], "flatten": True})
        p = Page(self, s["sessionId"], t["targetId"])
        for m in ("Page.enable", "Runtime.enable", "Performance.enable"):
            p.call(m)
        p.call("Emulation.setDeviceMetricsOverride",
               {"width": self.width, "height": self.height,
                "deviceScaleFactor": 1, "mobile": False})
        return p


class Page:
    def __init__(self, browser, session, target):
        self.b, self.session, self.target = browser, session, target

    def call(self, method, params=None, timeout=30):
        return self.b.call(method, params, session=self.session,
                           timeout=timeout)

    def goto(self, url, timeout=30):
        self.call("Page.navigate", {"url": url}, timeout=timeout)

    def eval(self, expr, timeout=30):
        """The value of a JavaScript expression (promises awaited)."""
        r = self.call("Runtime.evaluate",
                      {"expression": expr, "awaitPromise": True,
                       "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CdpError("%s: %s" % (expr[:80], d.get("exception", {})
                                       .get("description", d.get("text"))))
        return r["result"].get("value")

    def wait(self, expr, timeout=20, what=None):
        """Poll expr until it is truthy; its value."""
        end = time.monotonic() + timeout
        while True:
            try:
                v = self.eval(expr)
            except CdpError:
                v = None
            if v:
                return v
            if time.monotonic() > end:
                raise CdpError("timed out after %ss waiting for %s" %
                               (timeout, what or expr))
            time.sleep(0.05)

    def screenshot(self, path):
        r = self.call("Page.captureScreenshot", {"format": "png",
                                                  "captureBeyondViewport":
                                                      False})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def mouse(self, kind, x, y, buttons=0, button="none"):
        self.call("Input.dispatchMouseEvent",
                  {"type": kind, "x": x, "y": y, "button": button,
                   "buttons": buttons, "clickCount": 1})

    def drag(self, x0, y0, x1, y1, steps=8):
        self.mouse("mouseMoved", x0, y0)
        self.mouse("mousePressed", x0, y0, 1, "left")
        for i in range(1, steps + 1):
            self.mouse("mouseMoved", x0 + (x1 - x0) * i / steps,
                       y0 + (y1 - y0) * i / steps, 1, "left")
        self.mouse("mouseReleased", x1, y1, 0, "left")

    def key(self, key, code=None, text=None):
        p = {"type": "keyDown", "key": key, "code": code or key}
        if text:
            p["text"] = text
        self.call("Input.dispatchKeyEvent", p)
        self.call("Input.dispatchKeyEvent",
                  {"type": "keyUp", "key": key, "code": code or key})

    def type_text(self, text):
        self.call("Input.insertText", {"text": text})

    def metrics(self):
        """Performance.getMetrics as a dict (JSHeapUsedSize, ...)."""
        r = self.call("Performance.getMetrics")
        return {m["name"]: m["value"] for m in r["metrics"]}

    def console_errors(self):
        out = []
        for e in self.b.events("Runtime.exceptionThrown"):
            if e.get("sessionId") == self.session:
                out.append(e["params"]["exceptionDetails"].get("text"))
        for e in self.b.events("Runtime.consoleAPICalled"):
            if (e.get("sessionId") == self.session
                    and e["params"]["type"] == "error"):
                out.append(" ".join(str(a.get("value", a.get("description")))
                                    for a in e["params"]["args"]))
        return out
