"""The Python SDK with tokens (DESIGN Appendix B.1).

StubTests run the SDK against a small local http.server stub that records
every request's headers and answers as each test sets (no runvault node):
the token from token= or $RUNVAULT_TOKEN on every request (also /api/config
and the reads), a malformed token refused before anything is sent, 401 and
403 raising AuthError / PermissionDenied without a retry (at init, during a
run, in a replay), the spool never storing the token and being replayed
with the token given at replay time, 429 honouring Retry-After (bounded).

NodeTests run it against a real node started with --auth on (its bootstrap
token in DATA_DIR/admin.token; tokens made with the runvault CLI):

    RUNVAULT_BIN=build/node/runvault python3 -m unittest -v test_sdk_auth
"""

import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "sdk", "python"))

import rvfixture  # noqa: E402
import runvault  # noqa: E402
from runvault import _limits, _transport  # noqa: E402

T1 = "rvt_" + "1" * 16 + "_" + "a1" * 32
T2 = "rvt_" + "2" * 16 + "_" + "b2" * 32


def _no_token_env():
    env = dict(os.environ)
    env.pop("RUNVAULT_TOKEN", None)
    return mock.patch.dict(os.environ, env, clear=True)


class Stub:
    """An HTTP server on 127.0.0.1 answering like a node's run routes.
    answer(method, path) may be replaced: it returns (status, doc,
    headers) or None for the default answer."""

    def __init__(self, port=0):
        self.requests = []  # (time, method, path, headers, body)
        self.lock = threading.Lock()
        self.answer = lambda method, path: None
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with stub.lock:
                    stub.requests.append((time.monotonic(), self.command,
                                          self.path, dict(self.headers),
                                          body))
                st, doc, hdrs = stub.answer(self.command, self.path) or \
                    stub.default(self.command, self.path, body)
                raw = json.dumps(doc).encode()
                self.send_response(st)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (hdrs or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                                      Handler)
        self.server.daemon_threads = True
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()
        self.index = 0

    def default(self, method, path, body):
        path = path.split("?", 1)[0]
        if path == "/api/config":
            return 404, {"error_code": "ENDPOINT_NOT_FOUND"}, None
        if method == "POST" and path == "/api/v2/runs":
            doc = json.loads(body)
            return 201, {"run_id": doc["run_id"], "resumed": False}, None
        if path.startswith("/api/v2/runs/") and method == "GET":
            rid = urllib.parse.unquote(path.split("/")[4])
            return 200, {"run": {"run_id": rid, "params": {}}}, None
        self.index += 1
        return 200, {"index": self.index}, None

    def seen(self, method=None, prefix=""):
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r[1] == method)
                    and r[2].startswith(prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def refuse(status, prefix="/api/v2/runs"):
    """An answer function: status for every request under prefix."""
    code = "UNAUTHENTICATED" if status == 401 else "PERMISSION_DENIED"

    def answer(method, path):
        if path.startswith(prefix):
            return status, {"error_code": code, "message": "no"}, \
                {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return None
    return answer


class StubTests(unittest.TestCase):
    def setUp(self):
        _limits.forget()
        self.stub = Stub()
        self.spool = tempfile.mkdtemp(prefix="rv-sdk-auth-")
        self.env = _no_token_env()
        self.env.start()

    def tearDown(self):
        self.env.stop()
        self.stub.close()
        shutil.rmtree(self.spool, ignore_errors=True)

    def init(self, **kw):
        kw.setdefault("endpoint", self.stub.endpoint)
        kw.setdefault("spool_dir", self.spool)
        kw.setdefault("offline_after", 3.0)
        return runvault.init("p", "e", **kw)

    def assert_bearer(self, reqs, token):
        self.assertTrue(reqs)
        for r in reqs:
            self.assertEqual(r[3].get("Authorization"), "Bearer " + token,
                             "%s %s" % (r[1], r[2]))

    def spool_bytes(self):
        out = b""
        for d, _, files in os.walk(self.spool):
            for f in files:
                with open(os.path.join(d, f), "rb") as fh:
                    out += fh.read()
        return out

    def test_token_on_every_request(self):
        run = self.init(token=T1)
        run.log({"loss": 1.0})
        run.log_text("hello\n")
        self.assertTrue(run.flush(10))
        self.assertEqual(run.get()["run_id"], run.run_id)  # a read
        run.finish()
        paths = {r[2].split("?")[0] for r in self.stub.seen()}
        self.assertIn("/api/config", paths)
        self.assertIn("/api/v2/runs", paths)
        self.assertIn("/api/v2/runs/%s/log-batch" % run.run_id, paths)
        self.assertIn("/api/v2/runs/%s/status" % run.run_id, paths)
        self.assert_bearer(self.stub.seen(), T1)

    def test_env_token_and_argument_wins(self):
        with mock.patch.dict(os.environ, {"RUNVAULT_TOKEN": T1 + "\n"}):
            self.init().finish()
            self.assert_bearer(self.stub.seen(), T1)
            n = len(self.stub.seen())
            self.init(token=T2).finish()
            self.assert_bearer(self.stub.seen()[n:], T2)

    def test_no_token_no_header(self):
        self.init().finish()
        for r in self.stub.seen():
            self.assertNotIn("Authorization", r[3])

    def test_malformed_token_refused_locally(self):
        bad = "rvt_" + "1" * 16 + "_SECRETXYZ"
        with self.assertRaises(ValueError) as cm:
            self.init(token=bad)
        self.assertNotIn("SECRETXYZ", str(cm.exception))
        self.assertIn("token=", str(cm.exception))
        with mock.patch.dict(os.environ, {"RUNVAULT_TOKEN": bad}):
            with self.assertRaises(ValueError) as cm:
                self.init()
            self.assertNotIn("SECRETXYZ", str(cm.exception))
            self.assertIn("RUNVAULT_TOKEN", str(cm.exception))
            with self.assertRaises(ValueError):
                runvault.sync(endpoint=self.stub.endpoint,
                              spool_dir=self.spool)
        with self.assertRaises(ValueError):
            self.init(token="")
        self.assertEqual(self.stub.seen(), [])

    def test_401_and_403_at_init_raise_without_retry(self):
        for status, cls in ((401, runvault.AuthError),
                            (403, runvault.PermissionDenied)):
            self.stub.requests.clear()
            self.stub.answer = refuse(status)
            t0 = time.monotonic()
            with self.assertRaises(cls) as cm:
                self.init(token=T1)
            self.assertLess(time.monotonic() - t0, 2.0)
            self.assertEqual(cm.exception.status, status)
            self.assertNotIn(T1[21:], str(cm.exception))
            if status == 401:
                self.assertNotIsInstance(cm.exception,
                                         runvault.PermissionDenied)
            self.assertEqual(len(self.stub.seen("POST", "/api/v2/runs")), 1)
            self.assertEqual(os.listdir(self.spool), [])  # nothing spooled

    def test_401_mid_run_stops_keeps_spool_and_raises(self):
        run = self.init(token=T1)
        run.log({"loss": 1.0}, step=0)
        self.assertTrue(run.flush(10))
        self.stub.answer = refuse(401)
        run.log({"loss": 2.0}, step=1)
        with self.assertRaises(runvault.AuthError):
            run.flush(10)
        with self.assertRaises(runvault.AuthError):
            run.log({"loss": 3.0}, step=2)
        with self.assertRaises(runvault.AuthError):
            run.finish()
        batches = self.stub.seen("POST", "/api/v2/runs/%s/log-batch"
                                 % run.run_id)
        self.assertEqual(len(batches), 2)  # the refused one sent once only
        kept = self.spool_bytes()
        self.assertIn(b'"value":2.0', kept)
        self.assertNotIn(T1[21:].encode(), kept)
        # Replayed with the token given now: the point and the status.
        self.stub.answer = lambda m, p: None
        n = len(self.stub.seen())
        out = runvault.sync(run.run_id, spool_dir=self.spool,
                            endpoint=self.stub.endpoint, token=T2)
        self.assertEqual(out, {run.run_id: 2})
        replay = self.stub.seen()[n:]
        self.assert_bearer(replay, T2)
        self.assertIn(b'"value":2.0', replay[0][4])
        self.assertIn(b'"FINISHED"', replay[1][4])

    def test_spool_replay_carries_the_token_given_at_replay(self):
        dead = rvfixture.free_ports(1)[0]
        run = self.init(token=T1, endpoint="http://127.0.0.1:%d" % dead,
                        offline_after=0.3, init_timeout=0.3)
        self.assertTrue(run.offline_at_init)
        run.log({"acc": 0.5})
        run.finish(timeout=5)
        kept = self.spool_bytes()
        self.assertIn(b'"acc"', kept)
        self.assertNotIn(T1[21:].encode(), kept)
        self.assertNotIn(b"rvt_", kept)
        # A 403 at replay leaves every record in the spool.
        self.stub.answer = refuse(403)
        with self.assertRaises(runvault.PermissionDenied):
            runvault.sync(run.run_id, spool_dir=self.spool,
                          endpoint=self.stub.endpoint, token=T1)
        self.assertEqual(len(self.stub.seen("POST")), 1)
        self.assertEqual(self.spool_bytes(), kept)
        self.stub.answer = lambda m, p: None
        n = len(self.stub.seen())
        with mock.patch.dict(os.environ, {"RUNVAULT_TOKEN": T2}):
            out = runvault.sync(run.run_id, spool_dir=self.spool,
                                endpoint=self.stub.endpoint)
        self.assertEqual(out, {run.run_id: 3})  # create, point, status
        self.assert_bearer(self.stub.seen()[n:], T2)
        self.assertFalse(os.path.exists(os.path.join(self.spool,
                                                     run.run_id)))

    def test_429_honours_retry_after(self):
        left = [1]

        def answer(method, path):
            if method == "POST" and path.startswith("/api/v2/runs") and \
                    left[0] > 0:
                left[0] -= 1
                return 429, {"error_code": "RESOURCE_EXHAUSTED"}, \
                    {"Retry-After": "1"}
            return None
        self.stub.answer = answer
        self.init(token=T1).finish()
        posts = self.stub.seen("POST", "/api/v2/runs")
        self.assertGreaterEqual(posts[1][0] - posts[0][0], 0.9)
        self.assert_bearer(posts, T1)

    def test_retry_after_is_bounded(self):
        self.assertEqual(_transport._retry_after_s("3600"),
                         _transport.RETRY_AFTER_MAX_S)
        self.assertEqual(_transport._retry_after_s("soon"), 0.0)
        self.assertEqual(_transport._retry_after_s("-5"), 0.0)
        self.stub.answer = lambda m, p: (429, {}, {"Retry-After": "3600"})
        t = _transport.Transport(self.stub.endpoint, timeout=2.0, token=T1)
        t0 = time.monotonic()
        r = t.request("POST", "/api/v2/runs", b"{}",
                      deadline=time.monotonic() + 1.0)
        t.close()
        self.assertLess(time.monotonic() - t0, 3.0)
        self.assertEqual((r.outcome, r.status), (_transport.UNAVAILABLE, 429))


RV = os.environ.get("RUNVAULT_BIN") or os.path.join(
    rvfixture.REPO_ROOT, "build", "node", "runvault")


def cli(*args, token_file):
    """Run the CLI with the admin token: its stdout (it must succeed)."""
    p = subprocess.run([RV] + list(args) + ["--token-file", token_file],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("runvault %s: exit %d: %s"
                             % (" ".join(args), p.returncode, p.stderr))
    return p.stdout


class NodeTests(unittest.TestCase):
    """One real node with --auth on."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="rv-sdk-auth-node-")
        http_p, rpc_p, raft_p = rvfixture.free_ports(3)
        cls.http = "http://127.0.0.1:%d" % http_p
        cls.rpc = "tcp://127.0.0.1:%d" % rpc_p
        argv = rvfixture.serve_argv(
            RV, 1, os.path.join(cls.dir, "n1"), "127.0.0.1:%d" % raft_p,
            cls.rpc, "127.0.0.1:%d" % http_p,
            extra=["--auth", "on", "--log-level", "warn"])
        cls.node = rvfixture.NodeProc()
        cls.node.spawn(argv, os.path.join(cls.dir, "n1.log"), cls.dir, b"")
        cls.admin = os.path.join(cls.dir, "n1", "admin.token")
        deadline = time.monotonic() + 30
        while True:
            if not cls.node.is_running():
                raise AssertionError("the node exited:\n" + rvfixture.log_tail(
                    os.path.join(cls.dir, "n1.log")))
            st, _ = rvfixture.http_get(cls.http + "/readyz")
            if st == 200 and os.path.exists(cls.admin):
                try:
                    cli("whoami", "--endpoint", cls.rpc, token_file=cls.admin)
                    break
                except AssertionError:
                    pass
            if time.monotonic() > deadline:
                cls.node.kill()
                raise AssertionError("the node did not start with auth on")
            time.sleep(0.1)
        cls.skip_unless_gateway_takes_tokens()
        cli("team", "create", "ml", "--endpoint", cls.rpc,
            token_file=cls.admin)
        cls.writer = cls.token("writer", "w")
        cls.reader = cls.token("reader", "r")

    @classmethod
    def skip_unless_gateway_takes_tokens(cls):
        """The HTTP gateway's Authorization support is another part of
        issue 13, merged separately: until it is, the bootstrap token is
        refused over HTTP (while the native RPC takes it) and these tests
        are skipped, saying so. RV_REQUIRE_GATEWAY_AUTH=1 makes it a
        failure instead (the lead sets it, or deletes this, once merged)."""
        with open(cls.admin) as f:
            admin = f.read().strip()
        st, _, _ = rvfixture.http_json(
            cls.http, "POST", "/api/v2/runs/00000000000000000000000000/status",
            {"status": "FINISHED"},
            headers={"Authorization": "Bearer " + admin}, timeout=10)
        if st != 401:
            return
        why = ("the HTTP gateway refuses a valid token (its Authorization "
               "support is not merged yet)")
        if os.environ.get("RV_REQUIRE_GATEWAY_AUTH") == "1":
            raise AssertionError(why)
        cls.node.kill()
        shutil.rmtree(cls.dir, ignore_errors=True)
        raise unittest.SkipTest(why)

    @classmethod
    def token(cls, role, name):
        return cli("token", "create", "--team", "ml", "--role", role,
                   "--name", name, "--endpoint", cls.rpc,
                   token_file=cls.admin).strip()

    @classmethod
    def tearDownClass(cls):
        cls.node.kill()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        _limits.forget()
        self.spool = tempfile.mkdtemp(prefix="rv-sdk-auth-", dir=self.dir)
        self.env = _no_token_env()
        self.env.start()

    def tearDown(self):
        self.env.stop()

    def init(self, **kw):
        kw.setdefault("endpoint", self.http)
        kw.setdefault("spool_dir", self.spool)
        return runvault.init("p", "e", **kw)

    def points(self, run_id, token):
        st, doc, raw = rvfixture.http_json(
            self.http, "GET", "/api/v2/runs/%s?consistency=leader" % run_id,
            headers={"Authorization": "Bearer " + token}, timeout=10)
        self.assertEqual(st, 200, raw)
        return doc["run"]["n_points"]

    def test_log_with_a_writer_token(self):
        run = self.init(token=self.writer)
        for i in range(10):
            run.log({"loss": 1.0 / (i + 1)})
        run.finish()
        self.assertEqual(self.points(run.run_id, self.reader), 10)
        st, _, _ = rvfixture.http_json(self.http, "GET",
                                       "/api/v2/runs/" + run.run_id)
        self.assertEqual(st, 401)

    def test_variable_token(self):
        with mock.patch.dict(os.environ, {"RUNVAULT_TOKEN": self.writer}):
            run = self.init()
            run.log({"x": 1})
            run.finish()
        self.assertEqual(self.points(run.run_id, self.writer), 1)

    def test_no_token_and_a_reader_are_refused(self):
        t0 = time.monotonic()
        with self.assertRaises(runvault.AuthError) as cm:
            self.init()
        self.assertEqual(cm.exception.status, 401)
        with self.assertRaises(runvault.PermissionDenied) as cm:
            self.init(token=self.reader)
        self.assertEqual(cm.exception.status, 403)
        self.assertLess(time.monotonic() - t0, 5.0)  # not retried

    def test_spool_replayed_with_the_token(self):
        dead = rvfixture.free_ports(1)[0]
        run = self.init(token=self.writer,
                        endpoint="http://127.0.0.1:%d" % dead,
                        offline_after=0.3, init_timeout=0.3)
        for i in range(5):
            run.log({"acc": i / 10})
        run.finish(timeout=5)
        with self.assertRaises(runvault.PermissionDenied):
            runvault.sync(run.run_id, spool_dir=self.spool,
                          endpoint=self.http, token=self.reader)
        out = runvault.sync(run.run_id, spool_dir=self.spool,
                            endpoint=self.http, token=self.writer)
        self.assertEqual(out[run.run_id], 3)
        self.assertEqual(self.points(run.run_id, self.writer), 5)

    def test_revoked_mid_run(self):
        tok = self.token("writer", "short")
        run = self.init(token=tok)
        run.log({"m": 1}, step=0)
        self.assertTrue(run.flush(10))
        cli("token", "revoke", tok[4:20], "--endpoint", self.rpc,
            token_file=self.admin)
        run.log({"m": 2}, step=1)
        with self.assertRaises(runvault.AuthError):
            run.flush(10)
        with self.assertRaises(runvault.AuthError):
            run.finish()
        out = runvault.sync(run.run_id, spool_dir=self.spool,
                            endpoint=self.http, token=self.writer)
        self.assertEqual(out[run.run_id], 2)
        self.assertEqual(self.points(run.run_id, self.writer), 2)


if __name__ == "__main__":
    unittest.main()
