"""The one Python fixture for real `runvault serve` processes.

Used by the end-to-end tests (tests/e2e), the fault suite (tests/fault, whose
nodes live in network namespaces), deploy/cluster.sh and
bench/compare/query.sh. It owns:

  - free_ports(): loopback TCP ports, each checked free by binding it;
  - http_json() / http_get(): the one HTTP helper (standard library);
  - serve_argv(): the command line of one node;
  - NodeProc: one node process (spawn, signal, kill, reap, exit codes);
  - Cluster: n nodes under one directory, with wait_up/wait_ready/leader.
    How a node is addressed (addresses=) and spawned (argv_prefix=, env=)
    can be supplied by the caller;
  - a command line for shell scripts:

        python3 tests/lib/rvfixture.py start DIR [--n 3] [--port-base P]
                [--bin PATH] [--timeout S] [--tls-dir CERTS]
                [-- SERVE-FLAGS...]
        python3 tests/lib/rvfixture.py stop DIR

    `start` runs the nodes detached (each in its own session, pid in
    DIR/n<i>.pid, log in DIR/n<i>.log, data in DIR/n<i>), node i on
    127.0.0.1 ports P+10(i-1) (HTTP), +1 (RPC), +2 (raft); without
    --port-base the ports are picked free. It prints one line per node and
    exits 0 once the cluster serves writes, 1 otherwise (nodes stopped).
    `stop` sends SIGTERM to each node, SIGKILL after 10 s, and removes the
    pid files.

Every wait is bounded. Standard library only (Python 3.11). Not
thread-safe: one thread drives a Cluster.
"""

import argparse
import atexit
import http.client
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

__all__ = ["Cluster", "ClusterError", "FixtureError", "NodeProc",
           "free_ports", "http_json", "http_get", "serve_argv", "peers_arg",
           "loopback_addresses", "fixed_addresses", "REPO_ROOT"]

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PORT_LOW, PORT_HIGH = 20000, 32000
HTTP_ERRORS = (OSError, http.client.HTTPException)
_HOST = "127.0.0.1"
# An ssl.SSLContext for https:// endpoints (tests/tls sets it); http:// ones
# ignore it.
TLS_CONTEXT = None

# Ports handed out by this process, so two clusters in one test run never
# pick the same one even before the first has bound it.
_ports_taken = set()


class FixtureError(RuntimeError):
    """A node failed to start or the cluster did not become ready in time."""


ClusterError = FixtureError


def free_ports(count, host=_HOST):
    """count distinct free TCP ports of host from PORT_LOW..PORT_HIGH (below
    the kernel's ephemeral range), each checked by binding it."""
    rng = random.SystemRandom()
    out = []
    for _ in range(count * 200):
        if len(out) == count:
            break
        p = rng.randint(PORT_LOW, PORT_HIGH)
        if p in out or p in _ports_taken:
            continue
        if port_is_free(p, host):
            out.append(p)
    if len(out) != count:
        raise FixtureError("could not find %d free ports in %d-%d"
                           % (count, PORT_LOW, PORT_HIGH))
    _ports_taken.update(out)
    return out


def port_is_free(port, host=_HOST):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---- HTTP -----------------------------------------------------------------

# The token every request of http_json carries when set (set_token).
_TOKEN = None


def set_token(token):
    """Make every later http_json/http_get send 'Authorization: Bearer
    token' (None: no header)."""
    global _TOKEN
    _TOKEN = token


def http_json(endpoint, method, path, body=None, headers=None, timeout=5.0):
    """One HTTP request to endpoint ('http://IP:PORT'): (status, parsed JSON
    or None, raw bytes). Raises OSError/http.client errors on transport
    failure. body may be bytes, str or a JSON-able object. Redirects are
    not followed. The set_token token goes with it unless headers carry
    an Authorization."""
    hostport = endpoint.split("://", 1)[-1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    if endpoint.startswith("https://"):
        conn = http.client.HTTPSConnection(host, int(port), timeout=timeout,
                                           context=TLS_CONTEXT)
    else:
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if _TOKEN and "Authorization" not in hdrs:
            hdrs["Authorization"] = "Bearer " + _TOKEN
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


def http_get(url, timeout=0.5):
    """GET url ('http://IP:PORT/path?query'): (status, parsed JSON or None);
    (0, None) if there is no answer. Never raises for transport errors."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "http", url
    hostport, _, path = rest.partition("/")
    try:
        st, doc, _ = http_json(scheme + "://" + hostport, "GET", "/" + path,
                               timeout=timeout)
        return st, doc
    except HTTP_ERRORS:
        return 0, None


# ---- Node command lines and processes ------------------------------------

def peers_arg(raft_addrs):
    """--peers value for nodes 1..n at raft_addrs: '1=A,2=B,...'."""
    return ",".join("%d=%s" % (j + 1, a) for j, a in enumerate(raft_addrs))


def serve_argv(binary, node_id, data_dir, raft_addr, rpc_addr, http_addr,
               peers=None, join=None, durability=None, extra=()):
    """argv of `runvault serve` for one node. http_addr is HOST:PORT,
    rpc_addr tcp://HOST:PORT, raft_addr HOST:PORT; peers a --peers value
    (or None for a single node), join a --join value."""
    args = [binary, "serve", "--id", str(node_id), "--data-dir", data_dir,
            "--raft-addr", raft_addr, "--rpc-addr", rpc_addr,
            "--http-addr", http_addr]
    if join:
        args += ["--join", join]
    elif peers:
        args += ["--peers", peers]
    if durability:
        args += ["--durability", durability]
    return args + list(extra)


class NodeProc:
    """One node process. `proc` is the subprocess.Popen while it runs (None
    once reaped); exit_codes lists the codes of every reaped run."""

    def __init__(self):
        self.proc = None
        self.exit_codes = []

    def spawn(self, argv, log_path, cwd, header, env=None, preexec_fn=None,
              new_session=False):
        """Start argv with stdout and stderr appended to log_path, after the
        line header (bytes)."""
        with open(log_path, "ab", buffering=0) as log:
            log.write(header)
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, cwd=cwd, env=env, close_fds=True,
                preexec_fn=preexec_fn, start_new_session=new_session)

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def exit_code(self):
        """The code of the current or last run, None while it runs."""
        if self.proc is not None:
            return self.proc.poll()
        return self.exit_codes[-1] if self.exit_codes else None

    def signal(self, sig):
        if self.is_running():
            self.proc.send_signal(sig)

    def kill(self, timeout=10):
        """SIGCONT (a paused node) then SIGKILL; reap: its code or None."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        return self.reap(timeout)

    def reap(self, timeout):
        """Wait up to timeout s for the exit: its code, or None (still
        running, or never started)."""
        if self.proc is None:
            return None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.exit_codes.append(code)
        self.proc = None
        return code


def log_tail(path, n=40):
    """The last n lines of the log at path (read from its last 256 KiB)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return "(no log: %s)" % e
    return "\n".join(data.splitlines()[-n:])


# ---- Addressing -------------------------------------------------------------

def loopback_addresses(n, host=_HOST):
    """[(raft HOST:PORT, rpc tcp://HOST:PORT, http http://HOST:PORT)] for n
    nodes on free ports of host."""
    ports = free_ports(3 * n, host)
    return [("%s:%d" % (host, ports[3 * i + 2]),
             "tcp://%s:%d" % (host, ports[3 * i + 1]),
             "http://%s:%d" % (host, ports[3 * i])) for i in range(n)]


def fixed_addresses(n, port_base, host=_HOST):
    """The documented layout: node i (0-based) on port_base+10i (HTTP), +1
    (RPC), +2 (raft)."""
    return [("%s:%d" % (host, port_base + 10 * i + 2),
             "tcp://%s:%d" % (host, port_base + 10 * i + 1),
             "http://%s:%d" % (host, port_base + 10 * i)) for i in range(n)]


# ---- A cluster ----------------------------------------------------------------

class Cluster:
    """n real nodes under one directory (a new temporary one by default,
    removed by stop() unless RV_KEEP_CLUSTER=1).

        with Cluster(n=3) as c:
            c.http_endpoints        # ['http://127.0.0.1:P', ...], i = node i+1
            i = c.leader()          # 0-based index of the current leader
            c.kill(i); c.restart(i)

    addresses: [(raft, rpc, http)] per node as loopback_addresses() gives
    (default: free loopback ports picked at start). argv_prefix(i): words put
    before node i's command line (e.g. a namespace); env: the children's
    environment. detach: children in their own sessions, left running when
    this process exits (the command line's `start`); otherwise every child
    is SIGKILLed and reaped by stop(), which is idempotent and registered
    with atexit, so an interrupted test never leaves nodes behind."""

    def __init__(self, n=3, durability="buffered", runvault=None,
                 extra_args=(), log_level="info", addresses=None,
                 directory=None, argv_prefix=None, env=None, detach=False,
                 node_args=None):
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n = n
        self.durability = durability
        self.log_level = log_level
        self.runvault = os.path.abspath(
            runvault or os.environ.get("RUNVAULT_BIN")
            or os.path.join(REPO_ROOT, "build", "node", "runvault"))
        self.extra_args = list(extra_args)
        self._addresses = addresses
        self._own_dir = directory is None
        self.dir = directory
        self.argv_prefix = argv_prefix or (lambda i: [])
        # node_args(i): serve flags of node i alone (its TLS certificate).
        self.node_args = node_args or (lambda i: [])
        self.env = env
        self.detach = detach
        self.http_endpoints = []
        self.rpc_endpoints = []
        self.raft_addrs = []
        self.nodes = [NodeProc() for _ in range(n)]
        self.token = None  # admin_token()
        self._stopped = True
        if not detach:
            atexit.register(self.stop)

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout=30.0):
        """Start every node and wait until a leader serves HTTP writes."""
        if not self._stopped:
            raise FixtureError("cluster already started")
        if not (os.path.isfile(self.runvault)
                and os.access(self.runvault, os.X_OK)):
            raise FixtureError("runvault binary not found or not executable: "
                               "%s (set RUNVAULT_BIN)" % self.runvault)
        if self._own_dir:
            self.dir = tempfile.mkdtemp(prefix="rv-e2e-")
        else:
            os.makedirs(self.dir, exist_ok=True)
        self._stopped = False
        addrs = self._addresses or loopback_addresses(self.n)
        self.raft_addrs = [a[0] for a in addrs]
        self.rpc_endpoints = [a[1] for a in addrs]
        self.http_endpoints = [a[2] for a in addrs]
        try:
            for i in range(self.n):
                self._spawn(i)
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """SIGKILL and reap every child, remove the directory if it is the
        cluster's own. Idempotent."""
        for node in self.nodes:
            p = node.proc
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
        if self._own_dir and self.dir is not None and \
                os.environ.get("RV_KEEP_CLUSTER") != "1":
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
        extra = []
        if self.log_level:
            extra += ["--log-level", self.log_level]
        peers = peers_arg(self.raft_addrs) if self.n > 1 else None
        return self.argv_prefix(i) + serve_argv(
            self.runvault, i + 1, self.data_dir(i), self.raft_addrs[i],
            self.rpc_endpoints[i], self.http_endpoints[i].split("://", 1)[1],
            peers=peers, durability=self.durability,
            extra=extra + self.extra_args + list(self.node_args(i)))

    def _spawn(self, i):
        argv = self.argv(i)
        self.nodes[i].spawn(argv, self.log_path(i), self.dir,
                            ("==== start %s\n" % " ".join(argv)).encode(),
                            env=self.env, new_session=self.detach)

    def is_alive(self, i):
        return self.nodes[i].is_running()

    def pid(self, i):
        return self.nodes[i].pid

    def kill(self, i, sig=signal.SIGKILL):
        """Send sig to node i; wait for its exit (bounded) for
        SIGKILL/SIGTERM/SIGINT, not for other signals."""
        p = self.nodes[i].proc
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
        return self.nodes[i].exit_code()

    def restart(self, i):
        """Start node i again with the same flags and data dir."""
        if self.is_alive(i):
            raise FixtureError("node %d is still running" % (i + 1))
        self._spawn(i)

    def wait_up(self, i, timeout=15.0):
        """Wait until node i answers GET /healthz."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_alive(i):
                raise self._exited(i)
            try:
                st, _, _ = http_json(self.http_endpoints[i], "GET",
                                     "/healthz", timeout=1.0)
                if st == 200:
                    return
            except HTTP_ERRORS:
                pass
            if time.monotonic() >= deadline:
                raise FixtureError("node %d did not answer /healthz within "
                                   "%.1f s\n%s" % (i + 1, timeout,
                                                   self._tails([i])))
            time.sleep(0.05)

    def _exited(self, i):
        return FixtureError("node %d exited (code %s)\n%s"
                            % (i + 1, self.exit_code(i), self._tails([i])))

    def wait_ready(self, timeout=30.0):
        """Wait until every live node is ready (GET /readyz) and the leader
        accepts writes (a status write to a missing run is answered with a
        4xx instead of a 503 or a transport error: nothing is created).
        Returns the leader's index."""
        deadline = time.monotonic() + timeout
        live = [i for i in range(self.n) if self.is_alive(i)]
        for i in live:
            self.wait_up(i, timeout=max(0.1, deadline - time.monotonic()))
        last = None
        while True:
            for i in live:
                if self.nodes[i].proc is not None and not self.is_alive(i):
                    raise self._exited(i)
            try:
                li, last = self._probe_write(live)
                if li is not None:
                    self._wait_members_known(
                        li, min(5.0, deadline - time.monotonic()))
                    return li
            except HTTP_ERRORS as e:
                last = "%s: %s" % (type(e).__name__, e)
            if time.monotonic() >= deadline:
                raise FixtureError("cluster not ready within %.1f s (%s)\n%s"
                                   % (timeout, last, self._tails(live)))
            time.sleep(0.1)

    def _probe_write(self, live):
        """(leader index, None) once the live nodes are ready and the leader
        answers a harmless write; else (None, why)."""
        if not all(http_json(self.http_endpoints[i], "GET", "/readyz",
                             timeout=1.0)[0] == 200 for i in live):
            return None, "not every node is ready"
        li = self._leader_once()
        if li is None:
            return None, "no leader known"
        st, _, raw = http_json(
            self.http_endpoints[li], "POST",
            "/api/v2/runs/00000000000000000000000000/status",
            {"status": "FINISHED"}, timeout=3.0)
        if 200 <= st < 500 and st not in (408, 429):
            return li, None
        return None, "probe write -> %d %s" % (st, raw[:200])

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
            except HTTP_ERRORS + (FixtureError,):
                pass
            time.sleep(0.05)
        return False

    # -- status ------------------------------------------------------------

    def admin_token(self):
        """With --auth on: the bootstrap cluster-admin token, read from the
        data dir of the node that wrote it (DATA_DIR/admin.token), once it
        exists; else None."""
        if self.token is None and "--auth" in self.extra_args and \
                self.extra_args[self.extra_args.index("--auth") + 1] == "on":
            for i in range(self.n):
                path = os.path.join(self.data_dir(i), "admin.token")
                if os.path.exists(path):
                    with open(path) as f:
                        self.token = f.read().strip() or None
                    break
        return self.token

    def wait_admin_token(self, timeout=20):
        """admin_token(), waiting up to timeout seconds for the bootstrap
        to write it; fails the caller when it never appears."""
        deadline = time.monotonic() + timeout
        while self.admin_token() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert self.admin_token(), "no admin.token was written"
        return self.token

    def auth_headers(self):
        tok = self.admin_token()
        return {"Authorization": "Bearer " + tok} if tok else {}

    def cluster_status(self, i, timeout=2.0, consistency=None):
        path = "/api/v2/cluster"
        if consistency:
            path += "?consistency=" + consistency
        st, doc, raw = http_json(self.http_endpoints[i], "GET", path,
                                 headers=self.auth_headers(),
                                 timeout=timeout)
        if st != 200 or not isinstance(doc, dict):
            raise FixtureError("GET /api/v2/cluster on node %d: %d %r"
                               % (i + 1, st, raw[:200]))
        return doc

    def _leader_once(self):
        for i in range(self.n):
            if not self.is_alive(i):
                continue
            try:
                doc = self.cluster_status(i, timeout=1.0)
            except HTTP_ERRORS + (FixtureError,):
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
                raise FixtureError("no leader within %.1f s\n%s"
                                   % (timeout, self._tails(range(self.n))))
            time.sleep(0.05)

    def endpoint_list(self):
        return ",".join(self.http_endpoints)

    # -- logs ----------------------------------------------------------------

    def log_tail(self, i, n=40):
        return log_tail(self.log_path(i), n)

    def _tails(self, idxs, n=40):
        return "\n".join("---- node %d log (tail)\n%s"
                         % (i + 1, self.log_tail(i, n)) for i in idxs)


# ---- Command line (deploy/cluster.sh, bench/compare/query.sh) ---------------

def _pid_path(directory, i):
    return os.path.join(directory, "n%d.pid" % (i + 1))


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def cli_start(a):
    """Start a detached cluster in a.dir; 0 once it serves writes."""
    addrs = fixed_addresses(a.n, a.port_base) if a.port_base else None
    pids = [_read_pid(_pid_path(a.dir, i)) for i in range(a.n)]
    alive = [p is not None and _pid_alive(p) for p in pids]
    if all(alive):
        for i in range(a.n):
            print("node %d already running (pid %d)" % (i + 1, pids[i]))
        return 0
    if any(alive):
        print("rvfixture: some nodes of %s are running: stop them first"
              % a.dir, file=sys.stderr)
        return 1
    node_args = None
    if a.tls_dir:
        # Node i serves with TLS_DIR/n<i>.crt (deploy/make-certs.sh).
        global TLS_CONTEXT
        t = os.path.abspath(a.tls_dir)
        TLS_CONTEXT = ssl.create_default_context(
            cafile=os.path.join(t, "ca.crt"))
        addrs = [(r, "tls+" + p, "https" + h[4:]) for r, p, h in
                 addrs or loopback_addresses(a.n)]

        def node_args(i):
            return ["--tls-cert", os.path.join(t, "n%d.crt" % (i + 1)),
                    "--tls-key", os.path.join(t, "n%d.key" % (i + 1)),
                    "--tls-ca", os.path.join(t, "ca.crt")]
    c = Cluster(n=a.n, durability=None, log_level=None, runvault=a.bin,
                extra_args=a.serve_flags, addresses=addrs,
                directory=os.path.abspath(a.dir), detach=True,
                node_args=node_args)
    try:
        c.start(timeout=a.timeout)
    except (FixtureError, OSError) as e:
        print("rvfixture: %s" % e, file=sys.stderr)
        return 1
    for i in range(a.n):
        with open(_pid_path(c.dir, i), "w") as f:
            f.write("%d\n" % c.pid(i))
        print("node %d: pid %d, http %s, rpc %s, log %s"
              % (i + 1, c.pid(i), c.http_endpoints[i], c.rpc_endpoints[i],
                 c.log_path(i)))
    return 0


def cli_stop(a):
    """SIGTERM every node with a pid file in a.dir, SIGKILL after 10 s."""
    for i in range(a.n):
        path = _pid_path(a.dir, i)
        pid = _read_pid(path)
        if pid is None:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            print("node %d did not stop in 10 s: SIGKILL" % (i + 1),
                  file=sys.stderr)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.unlink(path)
        print("node %d stopped" % (i + 1))
    return 0


def main(argv):
    p = argparse.ArgumentParser(
        prog="rvfixture.py", description="Start or stop a local runvault "
        "cluster (see the module's docstring).")
    p.add_argument("command", choices=("start", "stop"))
    p.add_argument("dir")
    p.add_argument("--n", type=int, default=3)
    p.add_argument("--port-base", type=int, default=0)
    p.add_argument("--bin", default=None)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--tls-dir", default=None,
                   help="serve with TLS, certificates of make-certs.sh")
    serve_flags = []
    if "--" in argv:
        k = argv.index("--")
        argv, serve_flags = argv[:k], argv[k + 1:]
    a = p.parse_args(argv)
    a.serve_flags = serve_flags
    return cli_start(a) if a.command == "start" else cli_stop(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
