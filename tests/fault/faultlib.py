"""Network namespaces, runvault nodes and nemeses for the fault suite.

Topology (all of it private to one run; nothing is configured in the root
network namespace):

    <tag>-br   a namespace holding the bridge "br0"
    <tag>-n1…  one namespace per node: eth0 = 10.77.0.1<i>/24, lo
    <tag>-c    the clients' namespace: eth0 = 10.77.0.100/24

Every eth0 is one end of a veth pair whose other end is a port of br0.
Node i serves raft on 10.77.0.1<i>:7001, native RPC on :7002 and HTTP on
:7003. The harness process moves its own thread into the clients'
namespace after building the topology (setns), so every socket it opens
and every client it starts is there; `ip netns exec` starts the nodes in
theirs.

Faults (nemeses): signals to node processes; nftables rules inside a
node's namespace (drop by peer address, both ways or one way); tc netem on
a node's eth0; a size-limited tmpfs as a node's data dir plus a balloon
file (disk full); powerfs (powerfs.c, a FUSE layer) as a node's data dir,
whose power cut drops every write not synced; an LD_PRELOAD shim that makes fsync fail while a file
exists; edits of a stopped node's vlog (torn tail, bit flip)."""

import ctypes
import os
import re
import resource
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import rvfixture  # noqa: E402
from rvfixture import NodeProc, http_get, serve_argv, set_token  # noqa: E402,E501

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

CLONE_NEWNET = 0x40000000
SUBNET = "10.77.0"
CLIENT_IP = SUBNET + ".100"


def mono_ns():
    return time.monotonic_ns()


def sh(*args, check=True, quiet=True):
    """Run a command; raise with its stderr when check and it fails."""
    r = subprocess.run(list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), r.returncode,
                                                r.stderr.strip()))
    return r


class Net:
    """The namespaces, bridge and veths of one run."""

    def __init__(self, tag, n_nodes):
        self.tag = tag
        self.n = n_nodes
        self.br = tag + "-br"
        self.client = tag + "-c"
        self.nodes = ["%s-n%d" % (tag, i + 1) for i in range(n_nodes)]
        self.is_up = False
        self.root_netns_fd = None

    def node_ip(self, i):
        return "%s.%d" % (SUBNET, 11 + i)

    def up(self):
        self.is_up = True
        sh("ip", "netns", "add", self.br)
        sh("ip", "-n", self.br, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.br, "link", "set", "br0", "up")
        sh("ip", "-n", self.br, "link", "set", "lo", "up")
        ends = [(ns, "vn%d" % (i + 1), self.node_ip(i))
                for i, ns in enumerate(self.nodes)]
        ends.append((self.client, "vc", CLIENT_IP))
        for ns, port, ip in ends:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", self.br, "link", "add", port, "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", self.br, "link", "set", port, "master", "br0")
            sh("ip", "-n", self.br, "link", "set", port, "up")
            sh("ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def enter_client(self):
        """Move this thread (and every child it starts) into the clients'
        namespace."""
        libc = ctypes.CDLL(None, use_errno=True)
        self.root_netns_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/" + self.client, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)

    def leave_client(self):
        if self.root_netns_fd is None:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        libc.setns(self.root_netns_fd, CLONE_NEWNET)
        os.close(self.root_netns_fd)
        self.root_netns_fd = None

    def down(self):
        if not self.is_up:
            return
        for ns in self.nodes + [self.client, self.br]:
            r = sh("ip", "netns", "pids", ns, check=False)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        time.sleep(0.2)
        for ns in self.nodes + [self.client, self.br]:
            sh("ip", "netns", "del", ns, check=False)
        self.is_up = False

    # ---- Nemeses on the network --------------------------------------

    def nft(self, i, script):
        p = subprocess.run(["ip", "netns", "exec", self.nodes[i], "nft",
                            "-f", "-"], input=script, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        if p.returncode != 0:
            raise RuntimeError("nft in %s: %s" % (self.nodes[i], p.stderr))

    def drop(self, i, peers, inbound=True, outbound=True):
        """Drop node i's packets from (inbound) and to (outbound) peers."""
        rules = []
        for j in peers:
            if inbound:
                rules.append("add rule inet rvf input ip saddr %s drop"
                             % self.node_ip(j))
            if outbound:
                rules.append("add rule inet rvf output ip daddr %s drop"
                             % self.node_ip(j))
        self.nft(i, "\n".join([
            "table inet rvf {",
            "  chain input { type filter hook input priority 0; }",
            "  chain output { type filter hook output priority 0; }",
            "}"] + rules) + "\n")

    def lossy(self, i, loss_pct, rate, latency_ms):
        """A bad link at node i: loss_pct % of its packets dropped each way
        (nftables numgen) and its sending shaped by tbf to rate with up to
        latency_ms of queueing delay. This kernel has no netem
        (CONFIG_NET_SCH_NETEM is not set), so delay comes from shaping and
        there is no reordering."""
        self.nft(i, "\n".join([
            "table inet rvfloss {",
            "  chain input { type filter hook input priority 0;",
            "    numgen random mod 100 < %d drop; }" % loss_pct,
            "  chain output { type filter hook output priority 0;",
            "    numgen random mod 100 < %d drop; }" % loss_pct,
            "}"]) + "\n")
        sh("ip", "netns", "exec", self.nodes[i], "tc", "qdisc", "replace",
           "dev", "eth0", "root", "tbf", "rate", rate, "burst", "16kb",
           "latency", "%dms" % latency_ms)

    def heal(self):
        for i in range(self.n):
            sh("ip", "netns", "exec", self.nodes[i], "nft", "flush",
               "ruleset", check=False)
            sh("ip", "netns", "exec", self.nodes[i], "tc", "qdisc", "del",
               "dev", "eth0", "root", check=False)


def _allow_core():
    """In the child: dump core on a crash (into the cluster's temp dir,
    where log_hits finds it)."""
    resource.setrlimit(resource.RLIMIT_CORE,
                       (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


# GET url: (status, parsed JSON or None); (0, None) if no answer.
http_json = http_get


class Node(NodeProc):
    """One runvault process in its namespace: the fixture's NodeProc
    (tests/lib/rvfixture.py), spawned through `ip netns exec` and addressed
    by the namespace's IP."""

    def __init__(self, cluster, i):
        super().__init__()
        self.c = cluster
        self.i = i
        self.id = i + 1
        self.ip = cluster.net.node_ip(i)
        self.ns = cluster.net.nodes[i]
        self.dir = os.path.join(cluster.tmp, "n%d" % self.id)
        self.log = os.path.join(cluster.tmp, "n%d.log" % self.id)
        self.tmpfs = None
        self.powerfs = None  # (process, backing dir) while mounted
        # A file bind-mounted over /proc/sys/kernel/random/boot_id for the
        # node (a power cut is a reboot: the store's sync marker compares
        # boot ids), or None for the machine's.
        self.boot_id_file = None
        self.env = {}
        self.removed = False

    @property
    def raft_addr(self):
        return "%s:7001" % self.ip

    @property
    def rpc_addr(self):
        return "%s://%s:7002" % ("tls+tcp" if self.c.certs else "tcp",
                                 self.ip)

    @property
    def http_url(self):
        return "%s://%s:7003" % ("https" if self.c.certs else "http", self.ip)

    def start(self, join=None):
        os.makedirs(self.dir, exist_ok=True)
        c = self.c
        # The namespaces' addresses are not loopback: auth off needs
        # --insecure (the test's own network).
        extra = ["--election-ms", str(c.election_ms),
                 "--heartbeat-ms", str(c.heartbeat_ms),
                 "--snapshot-bytes", str(c.snapshot_bytes),
                 "--rpc-workers", "8"]
        extra += ["--auth", "on"] if c.auth else ["--insecure"]
        if c.certs:
            extra += ["--tls-cert", os.path.join(c.certs, "n%d.crt" % self.id),
                      "--tls-key", os.path.join(c.certs, "n%d.key" % self.id),
                      "--tls-ca", os.path.join(c.certs, "ca.crt")]
        if c.segment_bytes:
            extra += ["--segment-bytes", str(c.segment_bytes)]
        if self.tmpfs:
            # A 160 MiB tmpfs is below the default free-space threshold
            # (256 MiB): the node would refuse every write from the start.
            # The disk-full nemesis is about a disk that really fills (the
            # fail-stop); the threshold has its own test (e2e test_archive).
            extra += ["--min-free-bytes", str(8 << 20)]
        boot = []
        if self.boot_id_file:
            boot = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    'mount --bind "$0" /proc/sys/kernel/random/boot_id && '
                    'exec "$@"', self.boot_id_file]
        args = ["ip", "netns", "exec", self.ns] + boot + serve_argv(
            c.binary, self.id, self.dir, self.raft_addr, self.rpc_addr,
            "%s:7003" % self.ip, peers=None if join else c.peers(),
            join=join, durability=c.durability, extra=extra)
        env = dict(os.environ)
        env.update(self.env)
        self.spawn(args, self.log, self.c.tmp, b"---- start %d\n" % mono_ns(),
                   env=env, preexec_fn=_allow_core)

    def ready(self):
        return http_json(self.http_url + "/readyz")

    def cluster_view(self):
        return http_json(self.http_url + "/api/v2/cluster", timeout=2)

    def wipe(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def mount_tmpfs(self, size):
        os.makedirs(self.dir, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs",
           self.dir)
        self.tmpfs = self.dir

    def mount_powerfs(self, binary):
        """Mount powerfs (tests/fault/powerfs.c) on the data dir, backed by
        a dir beside it; power_cut() drops what was not synced."""
        os.makedirs(self.dir, exist_ok=True)
        backing = self.dir + ".backing"
        os.makedirs(backing, exist_ok=True)
        log = open(self.dir + ".powerfs.log", "ab")
        proc = subprocess.Popen([binary, backing, self.dir, "-f"],
                                stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, close_fds=True)
        log.close()
        self.powerfs = (proc, backing)
        deadline = time.monotonic() + 10
        while not os.path.ismount(self.dir):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.umount()
                raise RuntimeError("powerfs did not mount on %s" % self.dir)
            time.sleep(0.02)

    def power_cut(self):
        """Drop every unsynced write (the node must be stopped first) and
        give the node a new boot id: the counters powerfs reports after the
        cut."""
        ctl = os.path.join(self.dir, ".powerfs-ctl")
        with open(ctl, "w") as f:
            f.write("cut")
        self.new_boot_id()
        with open(ctl) as f:
            return {k: int(v) for k, v in
                    (line.split() for line in f.read().splitlines())}

    def new_boot_id(self):
        if self.boot_id_file is None:
            self.boot_id_file = self.dir + ".boot_id"
        with open(self.boot_id_file, "w") as f:
            f.write("%s\n" % uuid.uuid4())

    def umount(self):
        if self.tmpfs:
            sh("umount", "-l", self.tmpfs, check=False)
            self.tmpfs = None
        if self.powerfs:
            proc, _ = self.powerfs
            sh("umount", "-l", self.dir, check=False)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self.powerfs = None


class Cluster:
    """n nodes of one durability mode, in a fresh temporary dir."""

    def __init__(self, net, binary, durability="buffered", n=None,
                 election_ms=600, heartbeat_ms=60, snapshot_bytes=67108864,
                 auth=False, tls=False):
        self.net = net
        self.auth = auth
        self.token = None  # The cluster-admin token once auth is on.
        self.certs = None  # With tls: the dir of deploy/make-certs.sh.
        self.binary = binary
        self.durability = durability
        self.election_ms = election_ms
        self.heartbeat_ms = heartbeat_ms
        self.snapshot_bytes = snapshot_bytes
        self.segment_bytes = None
        self.tmp = tempfile.mkdtemp(prefix="rvfault-")
        if tls:
            self.make_certs()
        self.n_initial = n or net.n
        self.nodes = [Node(self, i) for i in range(net.n)]

    def peers(self):
        return ",".join("%d=%s" % (n.id, n.raft_addr)
                        for n in self.nodes[:self.n_initial])

    def endpoints(self, nodes=None):
        return ",".join(n.rpc_addr for n in (nodes or self.members()))

    def members(self):
        return [n for n in self.nodes[:self.n_initial] if not n.removed] + \
            [n for n in self.nodes[self.n_initial:] if n.proc or n.exit_codes]

    def running(self):
        return [n for n in self.nodes if n.is_running()]

    def start(self):
        for n in self.nodes[:self.n_initial]:
            n.start()
        if self.auth:
            self.token = self.admin_token(20)
            set_token(self.token)
        if self.wait_leader(20) is None:
            raise RuntimeError("no leader within 20 s")

    def make_certs(self):
        """A cluster CA and a certificate per node for the namespaces'
        addresses (deploy/make-certs.sh); https and tls+tcp:// for the
        harness and the workloads (rvfixture.TLS_CONTEXT,
        RUNVAULT_TLS_CA)."""
        self.certs = os.path.join(self.tmp, "certs")
        ips = ",".join(self.net.node_ip(i) for i in range(self.net.n))
        sh(os.path.join(REPO, "deploy", "make-certs.sh"), "--nodes",
           str(self.net.n), "--ip", ips, self.certs)
        rvfixture.TLS_CONTEXT = ssl.create_default_context(
            cafile=os.path.join(self.certs, "ca.crt"))

    def admin_token(self, timeout):
        """The bootstrap cluster-admin token, from the data dir of the node
        that wrote it (DATA_DIR/admin.token)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in self.nodes[:self.n_initial]:
                path = os.path.join(n.dir, "admin.token")
                if os.path.exists(path):
                    with open(path) as f:
                        tok = f.read().strip()
                    if tok:
                        return tok
            time.sleep(0.1)
        raise RuntimeError("no admin.token within %d s" % timeout)

    def stop(self):
        for n in self.nodes:
            n.kill()
            n.umount()

    def leaders(self):
        """The nodes that answer /readyz as serving leaders (two at once
        while a deposed leader has not noticed yet)."""
        out = []
        for n in self.running():
            st, body = n.ready()
            if st == 200 and body and body.get("state") == "leader":
                out.append(n)
        return out

    def leader_claims(self):
        """(node, term) of every node that answers /readyz as a serving
        leader, with the term it leads."""
        out = []
        for n in self.running():
            st, body = n.ready()
            if st == 200 and body and body.get("state") == "leader":
                out.append((n, body.get("term")))
        return out

    def leader(self):
        """The serving leader (the first one if two say so), or None."""
        lds = self.leaders()
        return lds[0] if lds else None

    def wait_leader(self, timeout, exclude=None):
        """A serving leader other than exclude, or None after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ld in self.leaders():
                if ld is not exclude:
                    return ld
            time.sleep(0.02)
        return None

    def converged(self, timeout, nodes=None):
        """(True, applied, digest) once every node in nodes (default: the
        running ones) reports the same applied index and digest."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            views = []
            for n in nodes or self.running():
                st, body = n.cluster_view()
                if st != 200 or not body:
                    views = None
                    break
                me = [x for x in body.get("nodes", [])
                      if x.get("id") == n.id]
                if not me:
                    views = None
                    break
                views.append((me[0].get("applied_index"),
                              me[0].get("digest")))
            if views and len(set(views)) == 1:
                return True, views[0][0], views[0][1]
            last = views
            time.sleep(0.25)
        return False, last, None

    def log_hits(self):
        """Lines of node logs that name a crash: sanitizer reports,
        assertions, aborts; and core files in the data dirs."""
        hits = []
        pats = ("AddressSanitizer", "runtime error:", "Assertion",
                "assertion", "Aborted", "SIGSEGV", "LeakSanitizer")
        for n in self.nodes:
            if not os.path.exists(n.log):
                continue
            with open(n.log, errors="replace") as f:
                for line in f:
                    if any(p in line for p in pats):
                        hits.append("n%d: %s" % (n.id, line.strip()))
        for root, _, files in os.walk(self.tmp):
            hits += ["core file " + os.path.join(root, f) for f in files
                     if f == "core" or f.startswith("core.")]
        return hits

    def count_log_lines(self, needle):
        """How many lines of the node logs contain needle."""
        n = 0
        for node in self.nodes:
            if not os.path.exists(node.log):
                continue
            with open(node.log, errors="replace") as f:
                n += sum(1 for line in f if needle in line)
        return n

    def loop_stalls(self):
        """The raft loop stalls the nodes logged: how many, the longest
        (ms) and, for the longest five, what the loop was busy with."""
        pat = re.compile(r"loop stalled (\d+) ms \(longest work since the "
                         r"last probe: ([a-z -]+) (\d+) ms\)")
        seen = []
        for node in self.nodes:
            if not os.path.exists(node.log):
                continue
            with open(node.log, errors="replace") as f:
                for line in f:
                    m = pat.search(line)
                    if m:
                        seen.append((int(m.group(1)), node.id, m.group(2),
                                     int(m.group(3))))
        seen.sort(reverse=True)
        return {"n": len(seen), "max_ms": seen[0][0] if seen else 0,
                "worst": ["n%d %d ms (%s %d ms)" % (n, ms, what, busy)
                          for ms, n, what, busy in seen[:5]]}

    def cleanup(self, keep=False):
        self.stop()
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
