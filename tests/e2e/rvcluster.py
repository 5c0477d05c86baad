"""Real `runvault serve` processes on 127.0.0.1 for end-to-end tests.

    from rvcluster import Cluster
    with Cluster(n=3) as c:
        c.http_endpoints        # ['http://127.0.0.1:P', ...], index i = node i+1
        i = c.leader()          # 0-based index of the current leader
        c.kill(i); c.restart(i)

Every child is SIGKILLed and reaped by stop(), which is idempotent and also
registered with atexit, so an interrupted test never leaves nodes behind.
Only loopback addresses are used; ports come from 20000-32000 (below the
kernel's ephemeral range), each checked free before use. Every wait is
bounded; a node that does not come up raises ClusterError with the tails of
the logs.

Standard library only (Python 3.11).
"""

import atexit
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

__all__ = ["Cluster", "ClusterError", "http_json", "free_ports"]

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PORT_LOW, PORT_HIGH = 20000, 32000
_HOST = "127.0.0.1"

# Ports handed out by this process, so two clusters in one test run never
# pick the same one even before the first has bound it.
_ports_taken = set()


class ClusterError(RuntimeError):
    """A node failed to start or the cluster did not become ready in time."""


def free_ports(count):
    """count distinct free loopback TCP ports from PORT_LOW..PORT_HIGH."""
    rng = random.SystemRandom()
    out = []
    for _ in range(count * 200):
        if len(out) == count:
            break
        p = rng.randint(PORT_LOW, PORT_HIGH)
        if p in out or p in _ports_taken:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((_HOST, p))
        except OSError:
            continue
        finally:
            s.close()
        out.append(p)
    if len(out) != count:
        raise ClusterError("could not find %d free ports in %d-%d"
                           % (count, PORT_LOW, PORT_HIGH))
    _ports_taken.update(out)
    return out


def http_json(endpoint, method, path, body=None, headers=None, timeout=5.0):
    """One HTTP request to endpoint ('http://IP:PORT'): (status, parsed JSON
    or None, raw bytes). Raises OSError/http.client errors on transport
    failure. body may be bytes, str or a JSON-able object."""
    hostport = endpoint.split("://", 1)[-1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, bytearray)):
            if not isinstance(body, str):
                body = json.dumps(body)
            body = body.encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        return resp.status, doc, raw
    finally:
        conn.close()


class Cluster:
    """n real nodes under one temporary directory."""

    def __init__(self, n=3, durability="buffered", runvault=None,
                 extra_args=()):
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n = n
        self.durability = durability
        self.runvault = (runvault or os.environ.get("RUNVAULT_BIN")
                         or os.path.join(REPO_ROOT, "build", "node",
                                         "runvault"))
        self.extra_args = list(extra_args)
        self.dir = None
        self.http_endpoints = []
        self.rpc_endpoints = []
        self.raft_addrs = []
        self._procs = [None] * n
        self._logs = [None] * n
        self._stopped = True
        atexit.register(self.stop)

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout=30.0):
        """Start every node and wait until a leader serves HTTP writes."""
        if not self._stopped:
            raise ClusterError("cluster already started")
        if not (os.path.isfile(self.runvault)
                and os.access(self.runvault, os.X_OK)):
            raise ClusterError("runvault binary not found or not executable: "
                               "%s (set RUNVAULT_BIN)" % self.runvault)
        self.dir = tempfile.mkdtemp(prefix="rv-e2e-")
        self._stopped = False
        ports = free_ports(3 * self.n)
        self.http_endpoints = ["http://%s:%d" % (_HOST, ports[3 * i])
                               for i in range(self.n)]
        self.rpc_endpoints = ["tcp://%s:%d" % (_HOST, ports[3 * i + 1])
                              for i in range(self.n)]
        self.raft_addrs = ["%s:%d" % (_HOST, ports[3 * i + 2])
                           for i in range(self.n)]
        try:
            for i in range(self.n):
                self._spawn(i)
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """SIGKILL and reap every child, remove the directory. Idempotent."""
        for i, p in enumerate(self._procs):
            if p is not None and p.poll() is None:
                try:
                    p.send_signal(signal.SIGKILL)
                except OSError:
                    pass
            if p is not None:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        for f in self._logs:
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self._logs = [None] * self.n
        if self.dir is not None and os.environ.get("RV_KEEP_CLUSTER") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)
        self._stopped = True

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- nodes ---------------------------------------------------------------

    def data_dir(self, i):
        return os.path.join(self.dir, "n%d" % (i + 1))

    def log_path(self, i):
        return os.path.join(self.dir, "n%d.log" % (i + 1))

    def argv(self, i):
        k = i + 1
        args = [self.runvault, "serve",
                "--id", str(k),
                "--data-dir", self.data_dir(i),
                "--http-addr", self.http_endpoints[i].split("://", 1)[1],
                "--rpc-addr", self.rpc_endpoints[i],
                "--raft-addr", self.raft_addrs[i]]
        if self.n > 1:
            args += ["--peers", ",".join("%d=%s" % (j + 1, a)
                                         for j, a in enumerate(self.raft_addrs))]
        args += ["--durability", self.durability, "--log-level", "info"]
        return args + self.extra_args

    def _spawn(self, i):
        if self._logs[i] is None:
            self._logs[i] = open(self.log_path(i), "ab", buffering=0)
        self._logs[i].write(("==== start %s\n" % " ".join(self.argv(i)))
                            .encode())
        self._procs[i] = subprocess.Popen(
            self.argv(i), stdin=subprocess.DEVNULL, stdout=self._logs[i],
            stderr=subprocess.STDOUT, cwd=self.dir, close_fds=True)

    def is_alive(self, i):
        p = self._procs[i]
        return p is not None and p.poll() is None

    def pid(self, i):
        p = self._procs[i]
        return p.pid if p is not None else None

    def kill(self, i, sig=signal.SIGKILL):
        """Send sig to node i; reap it if it exits (bounded wait for
        SIGKILL/SIGTERM/SIGINT, none for other signals)."""
        p = self._procs[i]
        if p is None or p.poll() is not None:
            return
        p.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            try:
                p.wait(timeout=15 if sig == signal.SIGKILL else 20)
            except subprocess.TimeoutExpired:
                pass
        else:
            p.poll()

    def exit_code(self, i):
        p = self._procs[i]
        return None if p is None else p.poll()

    def restart(self, i):
        """Start node i again with the same flags and data dir."""
        if self.is_alive(i):
            raise ClusterError("node %d is still running" % (i + 1))
        self._spawn(i)

    def wait_up(self, i, timeout=15.0):
        """Wait until node i answers GET /healthz."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_alive(i):
                raise ClusterError("node %d exited (code %s)\n%s"
                                   % (i + 1, self.exit_code(i),
                                      self._tails([i])))
            try:
                st, _, _ = http_json(self.http_endpoints[i], "GET",
                                     "/healthz", timeout=1.0)
                if st == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() >= deadline:
                raise ClusterError("node %d did not answer /healthz within "
                                   "%.1f s\n%s" % (i + 1, timeout,
                                                   self._tails([i])))
            time.sleep(0.05)

    def wait_ready(self, timeout=30.0):
        """Wait until every live node is ready (GET /readyz) and the leader
        accepts writes (a status write to a missing run is answered with a
        4xx instead of a 503 or a transport error: nothing is created)."""
        deadline = time.monotonic() + timeout
        live = [i for i in range(self.n) if self.is_alive(i)]
        for i in live:
            self.wait_up(i, timeout=max(0.1, deadline - time.monotonic()))
        last = None
        while True:
            for i in range(self.n):
                if self._procs[i] is not None and not self.is_alive(i) \
                        and i in live:
                    raise ClusterError("node %d exited (code %s)\n%s"
                                       % (i + 1, self.exit_code(i),
                                          self._tails([i])))
            try:
                ok = all(http_json(self.http_endpoints[i], "GET", "/readyz",
                                   timeout=1.0)[0] == 200 for i in live)
                if ok:
                    li = self._leader_once()
                    if li is not None:
                        st, doc, raw = http_json(
                            self.http_endpoints[li], "POST",
                            "/api/v2/runs/00000000000000000000000000/status",
                            {"status": "FINISHED"}, timeout=3.0)
                        last = "probe write -> %d %s" % (st, raw[:200])
                        if 200 <= st < 500 and st not in (408, 429):
                            self._wait_members_known(
                                li, min(5.0, deadline - time.monotonic()))
                            return li
                    else:
                        last = "no leader known"
                else:
                    last = "not every node is ready"
            except (OSError, http.client.HTTPException) as e:
                last = "%s: %s" % (type(e).__name__, e)
            if time.monotonic() >= deadline:
                raise ClusterError("cluster not ready within %.1f s (%s)\n%s"
                                   % (timeout, last, self._tails(live)))
            time.sleep(0.1)

    def _wait_members_known(self, li, timeout):
        """Best effort, bounded: until the leader lists every live node with
        its HTTP address (a node records its addresses through the leader
        shortly after it starts)."""
        deadline = time.monotonic() + max(0.0, timeout)
        want = {i + 1 for i in range(self.n) if self.is_alive(i)}
        while time.monotonic() < deadline:
            try:
                doc = self.cluster_status(li, timeout=1.0)
                known = {m.get("id") for m in doc.get("nodes", ())
                         if m.get("http_addr")}
                if want <= known:
                    return True
            except (OSError, http.client.HTTPException, ClusterError):
                pass
            time.sleep(0.05)
        return False

    # -- status ------------------------------------------------------------

    def cluster_status(self, i, timeout=2.0, consistency=None):
        path = "/api/v2/cluster"
        if consistency:
            path += "?consistency=" + consistency
        st, doc, raw = http_json(self.http_endpoints[i], "GET", path,
                                 timeout=timeout)
        if st != 200 or not isinstance(doc, dict):
            raise ClusterError("GET /api/v2/cluster on node %d: %d %r"
                               % (i + 1, st, raw[:200]))
        return doc

    def _leader_once(self):
        for i in range(self.n):
            if not self.is_alive(i):
                continue
            try:
                doc = self.cluster_status(i, timeout=1.0)
            except (OSError, http.client.HTTPException, ClusterError):
                continue
            lid = doc.get("leader_id") or 0
            if 1 <= lid <= self.n and self.is_alive(lid - 1):
                return lid - 1
        return None

    def leader(self, timeout=15.0):
        """0-based index of the leader reported by the live nodes; waits
        (bounded) until one is known."""
        deadline = time.monotonic() + timeout
        while True:
            li = self._leader_once()
            if li is not None:
                return li
            if time.monotonic() >= deadline:
                raise ClusterError("no leader within %.1f s\n%s"
                                   % (timeout, self._tails(range(self.n))))
            time.sleep(0.05)

    def endpoint_list(self):
        return ",".join(self.http_endpoints)

    # -- logs ----------------------------------------------------------------

    def log_tail(self, i, n=40):
        try:
            with open(self.log_path(i), "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 256 * 1024))
                data = f.read().decode("utf-8", "replace")
        except OSError as e:
            return "(no log: %s)" % e
        return "\n".join(data.splitlines()[-n:])

    def _tails(self, idxs, n=40):
        return "\n".join("---- node %d log (tail)\n%s" % (i + 1,
                                                         self.log_tail(i, n))
                         for i in idxs)
