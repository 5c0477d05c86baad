#!/usr/bin/env python3
"""The fault suite: real runvault nodes in network namespaces, clients that
record histories, nemeses, and the checkers (check.py).

    run.py BUILD_DIR [--scenario NAME ...] [--out DIR]      the CI subset
    run.py BUILD_DIR --soak SECONDS [--seed N] [--out DIR]  random nemeses

Needs root (ip netns, nftables, tc, mount). Each scenario follows the etcd
robustness loop: a fresh cluster, traffic (register, append and set
workloads over native RPC), a QPS gate before the first fault, the
nemesis, heal, the final reads, then the checks: the history checkers,
equal digests on every replica, and no crash in any node log. Every loop is
bounded in count and time; namespaces, mounts and processes are removed
whatever happens (finally + signal handlers).

Prints one JSON object per scenario and a summary; exit 0 if every gate
holds."""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib  # noqa: E402
from faultlib import mono_ns  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
QPS_GATE = 50  # ops/s before the first fault, or the run proves nothing


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def read_ops(paths):
    """The operations of history files (a line cut short by a crash of the
    harness is skipped here; check.py reports it)."""
    for p in paths:
        if not os.path.exists(p):
            continue
        with open(p) as f:
            for line in f:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue


class Events:
    """The nemesis log (JSONL, monotonic ns) the checkers read."""

    def __init__(self, path, cluster):
        self.path = path
        self.c = cluster
        self.f = open(path, "w")
        self.lock = threading.Lock()
        self.stop_watch = threading.Event()
        self.watcher = None
        self.n_leader_changes = 0
        self.term_leaders = {}  # term -> ids of nodes seen leading it

    def add(self, event, nodes, leader=None, **extra):
        rec = {"t": mono_ns(), "event": event,
               "nodes": [n.id for n in nodes],
               "leader": leader.id if leader else None}
        rec.update(extra)
        with self.lock:
            self.f.write(json.dumps(rec) + "\n")
            self.f.flush()
        return rec

    def watch_leader(self):
        """Log every change of the serving leader ("leader-change", with
        the one it replaced), nemesis or not: memory mode may lose what a
        deposed leader had accepted, and spontaneous elections are a
        figure of their own."""
        def loop():
            last = None
            while not self.stop_watch.wait(0.1):
                try:
                    claims = self.c.leader_claims()
                except Exception:  # noqa: BLE001 - a node went away
                    continue
                for n, term in claims:
                    # Raft's election safety: one leader per term, ever.
                    self.term_leaders.setdefault(term, set()).add(n.id)
                lds = [n for n, _ in claims]
                ld = lds[-1] if lds else None  # the newest claims last
                if ld is not None and ld is not last:
                    if last is not None:
                        self.n_leader_changes += 1
                        self.add("leader-change", [last], last, new=ld.id)
                    last = ld
        self.watcher = threading.Thread(target=loop, daemon=True)
        self.watcher.start()

    def close(self):
        self.stop_watch.set()
        if self.watcher is not None:
            self.watcher.join(5)
        self.f.close()


class Workloads:
    """register + append + set client processes, each with --final."""

    def __init__(self, ctx, seconds, procs=(4, 4, 2), pause_ms=8):
        self.ctx = ctx
        self.seconds = seconds
        self.procs = procs
        self.pause_ms = pause_ms
        self.p = []
        self.hists = []
        self.summaries = []

    def start(self):
        c = self.ctx.c
        base = 0
        for wl, n in zip(("register", "append", "set"), self.procs):
            name = "%s%d" % (wl[:3], self.ctx.round)
            args = [self.ctx.workload_bin, "--endpoints", c.endpoints(),
                    "--workload", wl, "--name", name, "--procs", str(n),
                    "--proc-base", str(base), "--seconds", str(self.seconds),
                    "--pause-ms", str(self.pause_ms), "--out", "",
                    "--attempt-ms", "1000", "--total-ms", "4000", "--final",
                    "--final-wait-s", "300"]
            base += n + 1
            hist = os.path.join(self.ctx.dir, "history-%s.jsonl" % wl)
            if os.path.exists(hist):  # an --out dir used before
                os.unlink(hist)
            self.hists.append(hist)
            args[args.index("--out") + 1] = hist
            env = dict(os.environ)
            if c.token:
                env["RUNVAULT_TOKEN"] = c.token
            if c.certs:
                env["RUNVAULT_TLS_CA"] = os.path.join(c.certs, "ca.crt")
            self.p.append(subprocess.Popen(args, stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE,
                                           stderr=sys.stderr, text=True,
                                           env=env))

    def wait_waiting(self, timeout):
        """Until every workload printed its waiting line."""
        deadline = time.monotonic() + timeout
        for p in self.p:
            while time.monotonic() < deadline:
                line = p.stdout.readline()
                if not line or "waiting" in line:
                    break

    def finish(self, timeout=180):
        for p in self.p:
            try:
                p.stdin.write("go\n")
                p.stdin.flush()
            except BrokenPipeError:
                pass
        for p in self.p:
            try:
                out, _ = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
            for line in out.splitlines():
                try:
                    self.summaries.append(json.loads(line))
                except ValueError:
                    pass
        return self.summaries

    def kill(self):
        for p in self.p:
            if p.poll() is None:
                p.kill()
                p.wait()

    def ops_between(self, t0, t1):
        n = 0
        for o in read_ops(self.hists):
            if t0 <= o["ret"] <= t1 and o["type"] == "ok":
                n += 1
        return n


class Ctx:
    """One scenario's cluster, events, workloads and figures."""

    def __init__(self, args, net, name, rnd, durability, n, **ckw):
        self.args = args
        self.net = net
        self.name = name
        self.round = rnd
        self.dir = os.path.join(args.out, "%02d-%s" % (rnd, name))
        os.makedirs(self.dir, exist_ok=True)
        self.workload_bin = os.path.join(args.build, "tests", "rv_workload")
        self.shim = os.path.join(args.build, "tests", "librv_eio_shim.so")
        self.c = faultlib.Cluster(net, os.path.join(args.build, "node",
                                                    "runvault"),
                                  durability=durability, n=n, **ckw)
        self.ev = Events(os.path.join(self.dir, "nemesis.jsonl"), self.c)
        self.fig = {"scenario": name, "durability": durability, "nodes": n,
                    "election_ms": [], "recovery_ms": [], "fence_ms": [],
                    "self_stops": [],
                    "unavailable_ms": [], "notes": []}
        self.failures = []
        self.backup = None  # (dir, applied index) of a verified backup

    def fail(self, why):
        self.failures.append(why)
        print("  FAIL %s: %s" % (self.name, why), file=sys.stderr)

    def note(self, text):
        self.fig["notes"].append(text)

    # ---- Measured steps used by the nemeses --------------------------

    def election_after(self, t0_ns, old, timeout=15):
        ld = self.c.wait_leader(timeout, exclude=old)
        if ld is None:
            self.fail("no new leader within %d s" % timeout)
            return None
        ms = (mono_ns() - t0_ns) / 1e6
        self.fig["election_ms"].append(round(ms, 1))
        return ld

    def restart(self, node, join=None, while_starting=None):
        """Start node and time until it serves with the leader's index;
        while_starting(), if given, runs right after the start."""
        t0 = mono_ns()
        node.start(join=join)
        self.ev.add("start", [node])
        if while_starting is not None:
            while_starting()
        deadline = time.monotonic() + 60
        n_restarts = 0
        while time.monotonic() < deadline:
            if not node.is_running():
                code = node.reap(1)
                if code == 5 and n_restarts < 3:
                    # raft stopped itself (exit 5): restart it as a
                    # supervisor would, and count it.
                    n_restarts += 1
                    self.fig["self_stops"].append(code)
                    self.note("n%d: raft stopped itself after a restart "
                              "(exit 5); restarted" % node.id)
                    node.start(join=join)
                    self.ev.add("start", [node])
                    continue
                self.fail("n%d exited %s after restart" % (node.id, code))
                return
            st, body = node.ready()
            ld = self.c.leader()
            if st == 200 and ld is not None:
                s2, lb = ld.ready()
                if s2 == 200 and body["applied_index"] + 64 >= \
                        lb["applied_index"]:
                    self.fig["recovery_ms"].append(
                        round((mono_ns() - t0) / 1e6, 1))
                    return
            time.sleep(0.05)
        self.fail("n%d did not catch up within 60 s" % node.id)

    def wait_exit(self, node, timeout, what):
        """A node must stop itself (fail-stop) within timeout."""
        t0 = mono_ns()
        code = node.reap(timeout)
        if code is None:
            self.fail("n%d did not stop itself within %d s after %s" %
                      (node.id, timeout, what))
            node.kill()
            return None
        self.fig["fence_ms"].append(round((mono_ns() - t0) / 1e6, 1))
        self.note("n%d stopped itself after %s: exit %d" %
                  (node.id, what, code))
        return code


# ---- Nemeses --------------------------------------------------------------
# Each takes the context and returns when its fault is healed and every
# node that should run is running again.


def nem_kill_leader(ctx, rounds=3, down_s=2.0):
    for _ in range(rounds):
        ld = ctx.c.leader() or ctx.c.wait_leader(10)
        if ld is None:
            ctx.fail("no leader to kill")
            return
        t0 = mono_ns()
        ctx.ev.add("kill", [ld], ld)
        ld.kill()
        ctx.election_after(t0, ld)
        time.sleep(down_s)
        ctx.restart(ld)
        time.sleep(1.5)


def nem_kill_follower(ctx, rounds=2):
    for _ in range(rounds):
        ld = ctx.c.wait_leader(10)
        f = random.choice([n for n in ctx.c.running() if n is not ld])
        ctx.ev.add("kill", [f], ld)
        f.kill()
        time.sleep(2)
        ctx.restart(f)
        time.sleep(1)


def nem_kill_all(ctx, rounds=2, while_down=None, leader_s=20):
    """SIGKILL every node at once, while_down(ctx, nodes) if given, then
    restart them all; the time until a leader is the recovery time."""
    for _ in range(rounds):
        ld = ctx.c.leader()
        nodes = ctx.c.running()
        t0 = mono_ns()
        ctx.ev.add("kill", nodes, ld, power_cut=while_down is not None)
        for n in nodes:
            n.proc.kill()
        for n in nodes:
            n.reap(10)
        if while_down:
            while_down(ctx, nodes)
        time.sleep(1)
        for n in nodes:
            n.start()
        ctx.ev.add("start", nodes)
        if ctx.c.wait_leader(leader_s) is None:
            ctx.fail("no leader within %d s after restarting all" % leader_s)
        else:
            ctx.fig["recovery_ms"].append(round((mono_ns() - t0) / 1e6, 1))
        for n in nodes:
            if not n.is_running():
                ctx.fail("n%d exited %s after restarting all" %
                         (n.id, n.reap(1)))
        time.sleep(2)


def power_cut_all(ctx, nodes):
    for n in nodes:
        # powerfs counts since its mount: keep this cut's share.
        st = n.power_cut()
        prev = getattr(n, "powerfs_counters", {})
        n.powerfs_counters = st
        cut = {k: st[k] - prev.get(k, 0) for k in (
            "files_reverted", "pages_restored", "sizes_restored",
            "entries_removed", "entries_restored", "errors")}
        cut["node"] = n.id
        ctx.fig.setdefault("power_cuts", []).append(cut)
        if cut["errors"]:
            ctx.fail("n%d: powerfs cut reported %d errors" %
                     (n.id, cut["errors"]))


def nem_power_cut(ctx, rounds=2):
    """Power loss of every node at once: SIGKILL all, then each node's
    powerfs drops every write it had not synced (files back to their
    synced contents and size, entries back to their directory's last
    fsync); restarted, they must recover whatever the cut left."""
    nem_kill_all(ctx, rounds, while_down=power_cut_all, leader_s=30)


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


def set_clock(node, offset_s):
    """Move node's wall clock (libfaketime; the monotonic clock is left
    alone) offset_s seconds from the machine's, live."""
    with open(node.env["FAKETIME_TIMESTAMP_FILE"], "w") as f:
        f.write("%+d\n" % offset_s)
    time.sleep(0.5)  # FAKETIME_NO_CACHE: read at every call


def skew_call(ctx, node, method, path, body=None, token=None):
    hdrs = {"Authorization": "Bearer " + token} if token else None
    try:
        st, doc, _ = faultlib.rvfixture.http_json(
            node.http_url, method, path, body, hdrs, timeout=10)
    except OSError as e:
        return 0, {"error": repr(e)}
    return st, doc


def nem_clock_skew(ctx):
    """One node's wall clock runs 10 minutes ahead while it leads, then
    jumps 20 minutes back, then it is killed (a leader with a true clock
    takes over). Commands are stamped by the proposer and apply judges
    them at max(stamp, the greatest stamp applied): a token expired at
    apply stays expired whatever a later clock says, and audit times never
    go backwards in log order. start_time is the proposer's stamp: every
    replica answers a start_time filter alike."""
    ld = ctx.c.wait_leader(10)
    sk = ctx.fig.setdefault("skew", {})
    skewed = ctx.c.nodes[0]  # the one node under libfaketime
    deadline = time.monotonic() + 15
    while ld is not skewed and time.monotonic() < deadline:
        skew_call(ctx, ld, "POST", "/api/v2/cluster/transfer",
                  {"id": skewed.id})
        time.sleep(1)
        ld = ctx.c.wait_leader(5)
    if ld is not skewed:
        ctx.fail("leadership did not move to n%d" % skewed.id)
        return
    st, doc = skew_call(ctx, ld, "POST", "/api/v2/tokens", {
        "team": "default", "role": "writer", "name": "skew",
        "expires_in_s": 120})
    if st != 201:
        ctx.fail("token create: %s %s" % (st, doc))
        return
    tok = doc["token"]

    def run(node, run_id, token=None):
        st, doc = skew_call(ctx, node, "POST", "/api/v2/runs", {
            "project": "skew", "experiment": "e", "run_id": run_id}, token)
        sk[run_id] = st
        return st

    if run(ld, "skew-0", tok) != 201:
        ctx.fail("a fresh token was refused")
    ctx.ev.add("clock", [ld], ld, offset_s=600)
    set_clock(ld, 600)
    if ctx.c.leader() is not ld:
        ctx.note("leadership moved while the clock was set")
    run(ld, "skew-ahead")
    # The leader's own check refuses the token (its clock is past it).
    if run(ld, "skew-t1", tok) != 401:
        ctx.fail("token accepted by a leader 10 min ahead: %s" %
                 sk["skew-t1"])
    ctx.ev.add("clock", [ld], ld, offset_s=-600)
    set_clock(ld, -600)
    # The leader's check passes now (its clock is 20 min behind); apply
    # must still refuse: the log's time already passed the expiry.
    if run(ld, "skew-t2", tok) != 401:
        ctx.fail("expired token revived by a clock jumping back: %s" %
                 sk["skew-t2"])
    run(ld, "skew-behind")
    t0 = mono_ns()
    ctx.ev.add("kill", [ld], ld)
    ld.kill()
    nl = ctx.election_after(t0, ld)
    if nl is not None:
        if run(nl, "skew-t3", tok) != 401:
            ctx.fail("expired token revived after a leader change: %s" %
                     sk["skew-t3"])
        run(nl, "skew-after")
    ctx.restart(ld)  # still 10 min behind
    time.sleep(2)
    check_skew_reads(ctx, sk)
    set_clock(ld, 0)


def check_skew_reads(ctx, sk):
    """Every replica lists the same runs with the same start times, and a
    start_time filter selects exactly the runs whose stored start time
    passes it; audit times never decrease with the index."""
    lists = {}
    for n in ctx.c.running():
        st, doc = skew_call(ctx, n, "GET", "/api/v2/experiments?project=skew"
                            "&consistency=linearizable&per_page=100")
        if st != 200:
            ctx.fail("n%d: list: %s %s" % (n.id, st, doc))
            return
        lists[n.id] = sorted((r["run_id"], r["created_at"])
                             for r in doc["runs"])
    first = next(iter(lists.values()))
    if any(v != first for v in lists.values()):
        ctx.fail("replicas disagree on the runs' start times: %s" % lists)
    created = dict(first)
    sk["start_times"] = created
    want = {k for k in sk if k.startswith("skew-") and sk[k] == 201}
    if set(created) != want:
        ctx.fail("runs listed %s, acknowledged %s" % (sorted(created),
                                                     sorted(want)))
    if {"skew-ahead", "skew-behind"} <= set(created) and not (
            created["skew-ahead"] - created["skew-behind"] > 15 * 60000):
        ctx.fail("the skewed leader's stamps are not its clock's: %s" %
                 created)
    for cut in sorted(created.values()):
        q = urllib.parse.quote("attributes.start_time >= %d" % cut)
        for n in ctx.c.running():
            st, doc = skew_call(ctx, n, "GET", "/api/v2/experiments?"
                                "project=skew&consistency=linearizable"
                                "&per_page=100&filter=" + q)
            got = sorted(r["run_id"] for r in (doc or {}).get("runs", []))
            exp = sorted(k for k, v in created.items() if v >= cut)
            if st != 200 or got != exp:
                ctx.fail("n%d: start_time >= %d gave %s %s, want %s" %
                         (n.id, cut, st, got, exp))
    node = ctx.c.leader() or ctx.c.running()[0]
    seen, since, st = set(), 0, 200
    for _ in range(500):  # pages of 1000
        st, doc = skew_call(ctx, node, "GET",
                            "/api/v2/audit?max=1000&since_index=%d" % since)
        page = (doc or {}).get("events", []) if st == 200 else []
        new = {(e["index"], e["time"], e.get("action"), e.get("target"))
               for e in page} - seen
        if not new:
            break
        seen |= new
        since = max(e[0] for e in new)
    evs = sorted((e[0], e[1]) for e in seen if e[1] != 0)  # 0: unstamped
    sk["audit_events"] = len(evs)
    back = [(a, b) for a, b in zip(evs, evs[1:]) if b[1] < a[1]]
    if st != 200 or not evs or back:
        ctx.fail("audit times go backwards: %s %s" % (st, back[:3]))


def nem_pause_leader(ctx, rounds=2, pause_s=4):
    for _ in range(rounds):
        ld = ctx.c.wait_leader(10)
        t0 = mono_ns()
        ctx.ev.add("stop", [ld], ld)
        ld.signal(signal.SIGSTOP)
        ctx.election_after(t0, ld)
        time.sleep(pause_s)
        ld.signal(signal.SIGCONT)
        ctx.ev.add("cont", [ld])
        time.sleep(2)


def partition(ctx, groups, label, hold_s):
    """Cut every link between nodes of different groups (both ways)."""
    ld = ctx.c.leader()
    ids = {}
    for g, members in enumerate(groups):
        for n in members:
            ids[n.i] = g
    for n in ctx.c.running():
        others = [m.i for m in ctx.c.running() if ids.get(m.i) != ids.get(n.i)]
        if others:
            ctx.net.drop(n.i, others)
    t0 = mono_ns()
    ctx.ev.add("partition", ctx.c.running(), ld, shape=label,
               groups=[[n.id for n in g] for g in groups])
    if ld is not None and any(ld in g and len(g) <= len(ctx.c.running()) // 2
                              for g in groups):
        ctx.election_after(t0, ld)
    time.sleep(hold_s)
    ctx.net.heal()
    ctx.ev.add("heal", ctx.c.running())
    time.sleep(2)


def nem_partition_leader(ctx, rounds=2, hold_s=6):
    """The leader alone (clients still reach it: no stale reads allowed)."""
    for _ in range(rounds):
        ld = ctx.c.wait_leader(10)
        rest = [n for n in ctx.c.running() if n is not ld]
        partition(ctx, [[ld], rest], "leader", hold_s)


# A healed node must serve again (/readyz 200) within this of the heal.
HEAL_READY_GATE_MS = 1000


def heal_leader(ctx, hold_s):
    """Cut the leader off from every other node (nftables, both ways) for
    hold_s while the majority goes on writing, heal, and time how long the
    old leader takes to serve again: /readyz polled every 50 ms (0.5 s per
    request at most) for up to 30 s. Gate: HEAL_READY_GATE_MS."""
    ld = ctx.c.wait_leader(10)
    if ld is None:
        ctx.fail("heal-leader: no leader to cut")
        return
    rest = [n for n in ctx.c.running() if n is not ld]
    for n in ctx.c.running():
        ctx.net.drop(n.i, [m.i for m in ctx.c.running()
                           if (m is ld) != (n is ld)])
    t0 = mono_ns()
    ctx.ev.add("partition", ctx.c.running(), ld, shape="leader-alone",
               groups=[[ld.id], [n.id for n in rest]])
    ctx.election_after(t0, ld)
    time.sleep(hold_s)
    # Not serving while cut off is what makes the timing mean something:
    # recorded (readyz status just before the heal; None: no answer).
    try:
        st_cut, _ = ld.ready()
    except OSError:
        st_cut = None
    ctx.fig.setdefault("readyz_before_heal", []).append(st_cut)
    ctx.net.heal()
    t_heal = mono_ns()
    ctx.ev.add("heal", ctx.c.running())
    ready_ms = None
    while mono_ns() - t_heal < 30 * 10 ** 9:
        try:
            st, _ = ld.ready()
        except OSError:
            st = None
        if st == 200:
            ready_ms = round((mono_ns() - t_heal) / 1e6, 1)
            break
        time.sleep(0.05)
    ctx.fig.setdefault("heal_ready_ms", []).append(ready_ms)
    if ready_ms is None or ready_ms > HEAL_READY_GATE_MS:
        ctx.fail("n%d served again %s after a %d s cut (gate %d ms)" %
                 (ld.id, "never (30 s)" if ready_ms is None else
                  "%.0f ms" % ready_ms, hold_s, HEAL_READY_GATE_MS))
    time.sleep(2)


def nem_heal_leader_8(ctx):
    heal_leader(ctx, 8)


def nem_heal_leader_20(ctx):
    heal_leader(ctx, 20)


def nem_partition_halves(ctx, rounds=2, hold_s=6):
    for _ in range(rounds):
        nodes = ctx.c.running()
        random.shuffle(nodes)
        k = len(nodes) // 2
        partition(ctx, [nodes[:k], nodes[k:]], "halves", hold_s)


def nem_ring(ctx, hold_s=6):
    """Each node sees only its two neighbours (5 nodes: no majority view
    is shared)."""
    nodes = ctx.c.running()
    ld = ctx.c.leader()
    k = len(nodes)
    for j, n in enumerate(nodes):
        near = {nodes[(j - 1) % k].i, nodes[(j + 1) % k].i, n.i}
        ctx.net.drop(n.i, [m.i for m in nodes if m.i not in near])
    ctx.ev.add("partition", nodes, ld, shape="ring")
    time.sleep(hold_s)
    ctx.net.heal()
    ctx.ev.add("heal", nodes)
    time.sleep(2)


def nem_one_way(ctx, hold_s=6):
    """The leader hears nobody but can still send (inbound dropped)."""
    ld = ctx.c.wait_leader(10)
    others = [n.i for n in ctx.c.running() if n is not ld]
    ctx.net.drop(ld.i, others, inbound=True, outbound=False)
    t0 = mono_ns()
    ctx.ev.add("partition", [ld], ld, shape="one-way-in")
    ctx.election_after(t0, ld)
    time.sleep(hold_s)
    ctx.net.heal()
    ctx.ev.add("heal", ctx.c.running())
    time.sleep(2)


def nem_lossy(ctx, hold_s=10):
    """Every link loses 10 % of packets each way and is shaped to 4 Mbit/s
    with up to 80 ms of queueing (see Net.lossy: no netem here)."""
    nodes = ctx.c.running()
    for n in nodes:
        ctx.net.lossy(n.i, 10, "4mbit", 80)
    ctx.ev.add("netem", nodes, ctx.c.leader(),
               spec="loss 10% each way, tbf 4mbit latency 80ms")
    time.sleep(hold_s)
    ctx.net.heal()
    ctx.ev.add("heal", nodes)
    time.sleep(2)


def nem_membership(ctx):
    """Remove a follower, add a brand-new node, under load (5 nodes)."""
    c = ctx.c
    ld = c.wait_leader(10)
    victim = [n for n in c.running() if n is not ld][0]
    ctx.ev.add("member-remove", [victim], ld)
    r = faultlib.sh(c.binary, "cluster", "remove", "--id", str(victim.id),
                    "--endpoint", c.endpoints(), check=False)
    if r.returncode != 0:
        ctx.fail("cluster remove: exit %d %s" % (r.returncode, r.stderr))
    code = victim.reap(20)
    if code != 6:
        ctx.fail("removed n%d exited %s, not 6" % (victim.id, code))
        victim.kill()
    victim.removed = True
    time.sleep(1)
    new = c.nodes[c.n_initial] if len(c.nodes) > c.n_initial else None
    if new is None:
        ctx.note("no spare namespace for a new node")
        return
    ctx.ev.add("member-add", [new], c.leader())
    ctx.restart(new, join=",".join(n.http_url for n in c.running()))
    time.sleep(2)


def nem_disk_full(ctx):
    """A follower's data dir (tmpfs) fills up: it stops itself, the rest
    carries on; freed and restarted it catches up."""
    c = ctx.c
    ld = c.wait_leader(10)
    f = ctx.tmpfs_node
    balloon = os.path.join(f.dir, "balloon")
    ctx.ev.add("disk-full", [f], ld)
    with open(balloon, "wb") as b:
        chunk = b"\0" * (1 << 20)
        for _ in range(4096):
            try:
                b.write(chunk)
                b.flush()
            except OSError:
                break
    ctx.wait_exit(f, 30, "disk full")
    os.unlink(balloon)
    ctx.ev.add("disk-freed", [f])
    time.sleep(1)
    ctx.restart(f)
    time.sleep(1)


def nem_fsync_eio(ctx, on_leader=False):
    """fsync fails on a follower (or the leader): it must stop (never
    retry), the rest carries on; disarmed and restarted it recovers from
    the raft log."""
    ld = ctx.c.wait_leader(10)
    if on_leader and ld is not None:
        f = ld
    else:
        f = [n for n in ctx.c.running() if n is not ld][0]
    arm = f.env["RV_EIO_ARM"]
    open(arm, "w").close()
    ctx.ev.add("fsync-eio", [f], ld)
    ctx.wait_exit(f, 30, "fsync EIO")
    os.unlink(arm)
    time.sleep(1)
    ctx.restart(f)
    time.sleep(1)


def vlog_segments(node):
    d = os.path.join(node.dir, "vlog")
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, x) for x in os.listdir(d))


def nem_torn_tail(ctx):
    """kill -9 a follower, cut its newest vlog segment mid-record; it must
    recover (truncate the torn tail, replay from raft) and converge."""
    ld = ctx.c.wait_leader(10)
    f = [n for n in ctx.c.running() if n is not ld][0]
    ctx.ev.add("kill", [f], ld)
    f.kill()
    segs = vlog_segments(f)
    if not segs:
        ctx.fail("n%d has no vlog segment" % f.id)
        return
    size = os.path.getsize(segs[-1])
    cut = max(0, size - 37)
    os.truncate(segs[-1], cut)
    ctx.ev.add("torn-tail", [f], ld, segment=os.path.basename(segs[-1]),
               bytes_cut=size - cut)
    ctx.restart(f)
    time.sleep(1)


def nem_bitflip(ctx):
    """Flip a bit in the middle of a follower's sealed segment: the node
    must never serve the damaged record (a refused start, or reads that
    fail); `runvault verify` must call it corrupt."""
    ld = ctx.c.wait_leader(10)
    f = [n for n in ctx.c.running() if n is not ld][0]
    deadline = time.monotonic() + 30
    while len(vlog_segments(f)) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    ctx.ev.add("kill", [f], ld)
    f.kill()
    segs = vlog_segments(f)
    if len(segs) < 2:
        ctx.fail("n%d has %d vlog segments, no sealed one" %
                 (f.id, len(segs)))
        ctx.restart(f)
        return
    seg = segs[len(segs) // 2 - 1] if len(segs) > 2 else segs[0]
    size = os.path.getsize(seg)
    off = size // 2
    with open(seg, "r+b") as s:
        s.seek(off)
        b = s.read(1)
        s.seek(off)
        s.write(bytes([b[0] ^ 0x10]))
    ctx.ev.add("bitflip", [f], ld, segment=os.path.basename(seg), offset=off)
    r = faultlib.sh(ctx.c.binary, "verify", "--data-dir", f.dir, check=False)
    ctx.fig["verify_exit_after_bitflip"] = r.returncode
    if r.returncode != 2:
        ctx.fail("verify after a bit flip exited %d, not 2" % r.returncode)
    # Restarted, the node's scrub must find the flip and stop it (exit 2);
    # until then every read it serves must be right (reads check CRCs).
    t0 = mono_ns()
    f.start()
    ctx.ev.add("start", [f])
    reads = {"keys": 0, "same": 0, "refused": 0, "wrong": 0}
    deadline = time.monotonic() + 30
    while f.is_running() and time.monotonic() < deadline:
        for k, v in compare_series(ctx, f, ld).items():
            reads[k] += v
        time.sleep(0.2)
    ctx.fig["bitflip_reads"] = reads
    if reads["wrong"]:
        ctx.fail("n%d served damaged data: %s" % (f.id, reads))
    code = f.reap(1) if not f.is_running() else None
    if code is None:
        ctx.fail("n%d still serves 30 s after a bit flip in a sealed "
                 "segment" % f.id)
    elif code != 2:
        ctx.fail("n%d exited %s after a bit flip, not 2 (corrupt)" %
                 (f.id, code))
    else:
        ms = round((mono_ns() - t0) / 1e6, 1)
        ctx.fig["bitflip_outcome"] = "stopped, exit 2, %.0f ms after start" % ms
        ctx.fig["fence_ms"].append(ms)
    # Repair as an operator would: wipe the node, it rejoins by catch-up.
    f.kill()
    f.wipe()
    ctx.ev.add("wipe", [f])
    ctx.restart(f, join=",".join(n.http_url for n in ctx.c.running()))
    time.sleep(1)


def compare_series(ctx, node, ref):
    """Every append series read from node (stale: its own state) against the
    same read from ref. The two may lag each other but, in log order, one
    must be a prefix of the other; otherwise node served wrong data. A read
    node refuses (an error status) is counted, not wrong."""
    run = "wl-app%d" % ctx.round
    keys = sorted({o["key"] for o in read_ops(ctx.wl.hists)
                   if o.get("wl") == "append"})
    out = {"keys": len(keys), "same": 0, "refused": 0, "wrong": 0}
    for k in keys[:400]:
        q = "/api/v2/runs/%s/metrics?key=%s&consistency=stale" % (run, k)
        st1, a = faultlib.http_json(node.http_url + q, timeout=3)
        st2, b = faultlib.http_json(ref.http_url + q, timeout=3)
        if st1 != 200 or not a:
            out["refused"] += 1
            continue
        if st2 != 200 or not b:
            continue
        pa = [p[2] for p in a.get("points", [])]
        pb = [p[2] for p in b.get("points", [])]
        n = min(len(pa), len(pb))
        if pa[:n] == pb[:n]:
            out["same"] += 1
        else:
            out["wrong"] += 1
    return out


def make_purged_runs(ctx, ld, tag, n=6):
    """n runs with 400 KB of log lines each, created, deleted and purged
    through ld: bytes for a compaction to reclaim."""
    for k in range(n):
        rid = "cmp%s-%d-%d" % (tag, k, random.randrange(1 << 30))
        skew_call(ctx, ld, "POST", "/api/v2/runs",
                  {"project": "cmp", "experiment": "e", "run_id": rid})
        skew_call(ctx, ld, "POST", "/api/v2/runs/%s/logs" % rid, {
            "lines": [{"timestamp": 1, "stream": "stdout",
                       "text": "purged %d %s" % (i, "x" * 2000)}
                      for i in range(200)]})
        skew_call(ctx, ld, "POST", "/api/v2/runs/%s/delete" % rid, {})
        skew_call(ctx, ld, "POST", "/api/v2/runs/%s/purge" % rid, {})


def nem_compact_catchup(ctx):
    """A follower is wiped and rejoins (a snapshot install, then the
    fetch of the records after it) and a compaction is asked as it
    starts: the compaction's index lands while it catches up. It must
    catch up across it and report its peers' digest (the end check)."""
    ld = ctx.c.wait_leader(10)
    if ld is None:
        ctx.fail("no leader")
        return
    make_purged_runs(ctx, ld, "cu")
    f = [n for n in ctx.c.running() if n is not ld][0]
    ctx.ev.add("kill", [f], ld)
    f.kill()
    f.wipe()
    ctx.ev.add("wipe", [f])

    def compact():
        time.sleep(0.2)
        ref = ctx.c.wait_leader(10)
        st, doc = skew_call(ctx, ref, "POST", "/api/v2/compact", {})
        st_f, body_f = f.ready()
        ctx.fig["compact_during_catchup"] = {
            "status": st, "index": (doc or {}).get("index"),
            "joiner_applied": (body_f or {}).get("applied_index")
            if st_f == 200 else None}
        ctx.ev.add("compact", [f], ref, status=st,
                   index=(doc or {}).get("index"))
        if st != 202:
            ctx.fail("POST /api/v2/compact -> %d %r" % (st, doc))

    ctx.restart(f, join=",".join(n.http_url for n in ctx.c.running()),
                while_starting=compact)
    time.sleep(1)


def nem_compact_power(ctx, rounds=2):
    """nem_compact_kill with a power cut of the victim instead of a plain
    kill -9: its powerfs drops every write it had not synced, mid-image,
    mid-rewrite or mid-snapshot (a compaction makes raft snapshot next,
    and the scenario snapshots every MiB)."""
    nem_compact_kill(ctx, rounds, while_down=power_cut_all)


def nem_compact_kill(ctx, rounds=2, while_down=None):
    """Runs with 400 KB of log lines each created and purged, a compaction
    asked, and kill -9 of a follower (first round) or the leader (second)
    shortly after, while it writes its image or rewrites its segments;
    restarted, it opens on the old or the new segment set (never a mix)
    and the end check wants equal digests everywhere. while_down(ctx,
    [victim]) runs while it is down."""
    for r in range(rounds):
        ld = ctx.c.wait_leader(10)
        if ld is None:
            ctx.fail("no leader")
            return
        make_purged_runs(ctx, ld, str(r))
        others = [n for n in ctx.c.running() if n is not ld]
        victim = ld if r == 1 or not others else random.choice(others)
        st, doc = skew_call(ctx, ld, "POST", "/api/v2/compact", {})
        ctx.ev.add("compact", [victim], ld, status=st,
                   index=(doc or {}).get("index"))
        if st != 202:
            ctx.fail("POST /api/v2/compact -> %d %r" % (st, doc))
        time.sleep(random.uniform(0.02, 0.3))
        ctx.ev.add("kill", [victim], ld)
        victim.kill()
        if while_down is not None:
            while_down(ctx, [victim])
        time.sleep(1.5)
        ctx.restart(victim)
        time.sleep(2)


def run_cli(ctx, *args, timeout=120):
    """`runvault ARGS` from the clients' namespace: (exit, stdout, stderr)."""
    env = dict(os.environ)
    if ctx.c.token:
        env["RUNVAULT_TOKEN"] = ctx.c.token
    try:
        r = subprocess.run([ctx.c.binary] + list(args), capture_output=True,
                           text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return -1, "", "timed out after %d s" % timeout
    return r.returncode, r.stdout, r.stderr


def nem_backup_kill_leader(ctx):
    """An online backup from a follower while the workloads write and the
    leader is killed mid-backup (it holds several MB in 64 KiB segments,
    so the copy takes a while). The archive was compacted once before
    (purged runs), so the backup carries the checkpoint; a second
    compaction is asked as the copy starts, so it may commit while the
    backup session is open. The backup completes, or fails with a clear
    error and one retry completes; verify-backup must pass. After the
    run, check_backup restores it and looks for every write the
    workloads had acknowledged at or below the backup's index."""
    ld = ctx.c.wait_leader(10)
    if ld is None:
        ctx.fail("no leader")
        return
    def bulk(posts, purge):
        # Log lines in a run of their own: kept, so the archive spans many
        # segments and the copy is long enough to be interrupted; or
        # purged, so a compaction has bytes to reclaim.
        rid = "bk-bulk-%d" % random.randrange(1 << 30)
        skew_call(ctx, ld, "POST", "/api/v2/runs",
                  {"project": "bk", "experiment": "e", "run_id": rid})
        for k in range(posts):
            skew_call(ctx, ld, "POST", "/api/v2/runs/%s/logs" % rid, {
                "lines": [{"timestamp": 1, "stream": "stdout",
                           "text": "bulk %d %d %s" % (k, i, "b" * 2000)}
                          for i in range(200)]})
        if purge:
            skew_call(ctx, ld, "POST", "/api/v2/runs/%s/delete" % rid, {})
            skew_call(ctx, ld, "POST", "/api/v2/runs/%s/purge" % rid, {})

    def checkpoint(node):
        st, body = node.cluster_view()
        me = [x for x in (body or {}).get("nodes", []) if x.get("id") ==
              node.id]
        return ((me[0].get("compaction") or {}).get("checkpoint_index", 0)
                if st == 200 and me else None)

    bulk(24, False)
    bulk(8, True)
    f = [n for n in ctx.c.running() if n is not ld][0]
    st, doc = skew_call(ctx, ld, "POST", "/api/v2/compact", {})
    c1 = (doc or {}).get("index", 0)
    if st != 202:
        ctx.fail("POST /api/v2/compact -> %d %r" % (st, doc))
    deadline = time.monotonic() + 30
    while (checkpoint(f) or 0) < c1 and time.monotonic() < deadline:
        time.sleep(0.1)
    ctx.fig["backup_checkpoint_before"] = checkpoint(f)
    if (checkpoint(f) or 0) < c1:
        ctx.fail("n%d did not compact at %d within 30 s" % (f.id, c1))
    bulk(8, True)
    out = os.path.join(ctx.dir, "backup")
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ)
    if ctx.c.token:
        env["RUNVAULT_TOKEN"] = ctx.c.token
    argv = [ctx.c.binary, "backup", "--endpoint", f.http_url, "--out", out]
    ctx.ev.add("backup-begin", [f], ld)
    t0 = mono_ns()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    # The leader dies once the first file is being copied.
    data = os.path.join(out, "data")
    deadline = time.monotonic() + 10
    while p.poll() is None and time.monotonic() < deadline:
        if os.path.isdir(data) and os.listdir(data):
            break
        time.sleep(0.002)
    mid = p.poll() is None
    st, doc = skew_call(ctx, ld, "POST", "/api/v2/compact", {})
    ctx.ev.add("compact", [f], ld, status=st, index=(doc or {}).get("index"))
    time.sleep(random.uniform(0.0, 0.05))
    ctx.ev.add("kill", [ld], ld)
    ld.kill()
    try:
        so, se = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        so, se = p.communicate()
    ctx.fig["backup_ms"] = round((mono_ns() - t0) / 1e6, 1)
    ctx.fig["backup_leader_killed_mid_copy"] = mid
    ctx.ev.add("backup-end", [f], ld, code=p.returncode)
    attempts = [p.returncode]
    if p.returncode != 0:
        ctx.note("backup during the leader's kill exited %d: %s" %
                 (p.returncode, se.strip()[-300:]))
        if "FAILED" not in se:
            ctx.fail("the failed backup did not say so clearly: %r" %
                     se.strip()[-300:])
        ctx.c.wait_leader(15)
        code, so, se = run_cli(ctx, "backup", "--endpoint", f.http_url,
                               "--out", out)
        attempts.append(code)
    ctx.fig["backup_attempts"] = attempts
    if attempts[-1] != 0:
        ctx.fail("the backup failed twice: %s" % se.strip()[-300:])
    else:
        got = json.loads(so.strip().splitlines()[-1])
        ctx.fig["backup"] = {k: got.get(k) for k in (
            "applied_index", "files", "copied_bytes", "seconds")}
        with open(os.path.join(out, "manifest.json")) as fh:
            ck = json.load(fh).get("checkpoint_index", 0)
        ctx.fig["backup"]["checkpoint_index"] = ck
        ctx.fig["backup_checkpoint_after"] = checkpoint(f)
        if ck < c1:
            ctx.fail("the backup of a node compacted at %d holds checkpoint "
                     "%d" % (c1, ck))
        code, vo, ve = run_cli(ctx, "verify-backup", out)
        ctx.fig["verify_backup_exit"] = code
        if code != 0:
            ctx.fail("verify-backup exited %d: %s" % (code, ve[-300:]))
        else:
            ctx.backup = (out, got["applied_index"])
    ctx.restart(ld)
    time.sleep(1)


def check_backup(ctx):
    """Restore ctx.backup into a one-node cluster in the clients'
    namespace (loopback) and check that every append and every set add
    the workloads had acknowledged with an index at or below the backup's
    is there (register writes are overwritten by later ones: not
    checked)."""
    bdir, index = ctx.backup
    d = os.path.join(ctx.c.tmp, "restored")
    code, so, se = run_cli(ctx, "restore", bdir, "--data-dir", d,
                           "--raft-addr", "127.0.0.1:17001")
    if code != 0:
        ctx.fail("restore exited %d: %s" % (code, se[-300:]))
        return
    node = faultlib.rvfixture.NodeProc()
    argv = faultlib.rvfixture.serve_argv(
        ctx.c.binary, 1, d, "127.0.0.1:17001", "tcp://127.0.0.1:17002",
        "127.0.0.1:17003")
    node.spawn(argv, os.path.join(ctx.dir, "restored.log"), ctx.c.tmp,
               b"---- restored\n")
    url = "http://127.0.0.1:17003"
    res = {"index": index, "appends": 0, "adds": 0, "missing": []}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st, body = faultlib.http_json(url + "/readyz", timeout=1)
            if st == 200:
                break
            time.sleep(0.1)
        else:
            ctx.fail("the restored node did not get ready in 30 s")
            return
        acked = [o for o in read_ops(ctx.wl.hists)
                 if o["type"] == "ok" and o.get("index") and
                 o["index"] <= index and o["f"] in ("append", "add")]
        series = {}
        run = "wl-app%d" % ctx.round
        for o in acked:
            if o["f"] == "add":
                st, _ = faultlib.http_json(
                    url + "/api/v2/runs/" + urllib.parse.quote(o["value"]),
                    timeout=5)
                res["adds"] += 1
                if st != 200:
                    res["missing"].append(o["value"])
                continue
            if o["key"] not in series:
                st, doc = faultlib.http_json(
                    url + "/api/v2/runs/%s/metrics?key=%s" %
                    (run, urllib.parse.quote(o["key"])), timeout=5)
                series[o["key"]] = {float(x[2]) for x in
                                    (doc or {}).get("points", [])}
            res["appends"] += 1
            if float(o["value"]) not in series[o["key"]]:
                res["missing"].append("%s=%s" % (o["key"], o["value"]))
    finally:
        node.kill()
    res["missing"] = res["missing"][:20]
    ctx.fig["restored"] = res
    if res["missing"]:
        ctx.fail("acknowledged writes at or below the backup's index %d "
                 "missing after restore: %s" % (index, res["missing"][:5]))
    if res["appends"] + res["adds"] < 100:
        ctx.fail("only %d acknowledged writes below the backup's index: "
                 "the check proves little" % (res["appends"] + res["adds"]))


NEMESES = {
    "backup-kill-leader": nem_backup_kill_leader,
    "compact-kill": nem_compact_kill,
    "compact-power": nem_compact_power,
    "compact-catchup": nem_compact_catchup,
    "kill-leader": nem_kill_leader,
    "kill-follower": nem_kill_follower,
    "kill-all": nem_kill_all,
    "power-cut": nem_power_cut,
    "clock-skew": nem_clock_skew,
    "pause-leader": nem_pause_leader,
    "partition-leader": nem_partition_leader,
    "partition-halves": nem_partition_halves,
    "ring": nem_ring,
    "one-way": nem_one_way,
    "lossy": nem_lossy,
    "membership": nem_membership,
    "disk-full": nem_disk_full,
    "fsync-eio": nem_fsync_eio,
    "fsync-eio-leader": lambda ctx: nem_fsync_eio(ctx, on_leader=True),
    "torn-tail": nem_torn_tail,
    "bitflip": nem_bitflip,
    "heal-leader-8": nem_heal_leader_8,
    "heal-leader-20": nem_heal_leader_20,
}

# The CI subset: (name, durability, nodes, nemeses, seconds of traffic).
CI = [
    ("kill-leader", "buffered", 3, ["kill-leader"], 24),
    ("kill-leader-strict", "strict", 3, ["kill-leader", "kill-follower"], 24),
    ("kill-leader-memory", "memory", 3, ["kill-leader"], 20),
    ("partition-leader", "buffered", 3, ["partition-leader"], 24),
    ("partitions-lossy", "buffered", 5,
     ["partition-halves", "ring", "one-way", "lossy"], 50),
    ("pause", "buffered", 3, ["pause-leader"], 20),
    ("kill-all", "strict", 3, ["kill-all"], 20),
    ("kill-all-buffered", "buffered", 3, ["kill-all"], 20),
    ("disk", "buffered", 3, ["disk-full", "fsync-eio"], 30),
    ("disk-leader", "strict", 3, ["fsync-eio-leader"], 20),
    ("vlog-damage", "buffered", 3, ["torn-tail", "bitflip"], 30),
    ("membership", "buffered", 5, ["membership"], 24),
    # With authentication and TLS on: every request carries the bootstrap
    # token, over https and tls+tcp://; raft peers mutually authenticated.
    ("kill-leader-auth-tls", "buffered", 3,
     ["kill-leader", "partition-leader"], 24),
    # Power loss of every node at once (powerfs under the data dirs).
    ("power-cut", "buffered", 3, ["power-cut"], 24),
    # kill -9 of a follower, then the leader, mid-compaction (~26 s).
    ("compact-kill", "buffered", 3, ["compact-kill"], 24),
    # An online backup from a follower while the leader is killed
    # mid-copy; verified, restored, every acknowledged append and add at
    # or below its index found (~19 s).
    ("backup-kill-leader", "buffered", 3, ["backup-kill-leader"], 16),
]


# The subset run again on the AddressSanitizer + UBSan build (deploy/test.sh,
# --subset asan): cheap scenarios whose paths only faults reach (a killed
# leader's replacement with strict syncs, a deposed leader failing its
# requests, vlog recovery and the scrub's stop, a removal and a join with
# catch-up). No LD_PRELOAD shim (ASan must come first) and no FUSE: the
# disk and power-cut scenarios stay on the -Werror build only.
ASAN_SUBSET = ["kill-leader-strict", "partition-leader", "vlog-damage",
               "membership"]


# Run only when named with --scenario (not part of the CI subset yet).
EXTRA = [

    # Issue 18 item 8: the old leader, cut off while the majority writes,
    # must serve again within HEAL_READY_GATE_MS of the heal.
    ("heal-leader", "buffered", 3, ["heal-leader-8", "heal-leader-20"], 50),
    # Issue 18 item 2: power loss of all nodes (data dirs on powerfs);
    # the buffered one is in the CI subset.
    ("power-cut-strict", "strict", 3, ["power-cut"], 24),
    ("power-cut-memory", "memory", 3, ["power-cut"], 24),
    # Issue 18 item 3: a leader's wall clock 10 min ahead, then 20 min
    # back (libfaketime), auth on (token expiry), then a leader change.
    ("clock-skew-auth", "buffered", 3, ["clock-skew"], 30),
    # Issue 18 item 2: one node's power cut mid-compaction, and in the
    # snapshot a compaction brings (data dirs on powerfs).
    ("compact-power", "buffered", 3, ["compact-power"], 24),
    ("compact-power-strict", "strict", 3, ["compact-power"], 24),
    # Issue 17: a compaction while a wiped follower catches up.
    ("compact-catchup", "buffered", 3, ["compact-catchup"], 24),
]


def save_crash(ctx):
    """A core file anywhere in the cluster's dir: keep it and every node's
    log in the scenario's output dir (soak rounds remove their data)."""
    cores = [os.path.join(r, f) for r, _, fs in os.walk(ctx.c.tmp)
             for f in fs if f == "core" or f.startswith("core.")]
    if not cores:
        return
    dest = os.path.join(ctx.dir, "crash")
    os.makedirs(dest, exist_ok=True)
    for i, path in enumerate(cores):
        shutil.copy(path, os.path.join(dest, "core.%d" % i))
    for n in ctx.c.nodes:
        if os.path.exists(n.log):
            shutil.copy(n.log, dest)
    ctx.note("core files and node logs saved in %s" % dest)


def run_checker(ctx):
    args = [sys.executable, os.path.join(HERE, "check.py"),
            "--mode", ctx.c.durability,
            "--nemesis", ctx.ev.path,
            "--allow-loss-window-ms", "1000"] + ctx.wl.hists
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=600)
    try:
        res = json.loads(r.stdout)
    except ValueError:
        res = {"ok": False, "error": r.stdout[-2000:] + r.stderr[-2000:]}
    if r.returncode != 0:
        ctx.fail("checker: exit %d: %s" % (r.returncode,
                                           r.stderr.strip()[-1500:]))
    return res


def unavailability(ctx):
    """Per fault, the longest gap between acknowledged writes from the fault
    until 5 s after it healed (ms)."""
    acks = [o["ret"] for o in read_ops(ctx.wl.hists)
            if o["type"] == "ok" and o["f"] in ("write", "append", "add")]
    acks.sort()
    events = [json.loads(x) for x in open(ctx.ev.path)]
    faults = [e for e in events if e["event"] in (
        "kill", "stop", "partition", "netem", "disk-full", "fsync-eio",
        "member-remove")]
    out = []
    for e in faults:
        t0 = e["t"]
        t1 = t0 + 12 * 10 ** 9
        prev, worst = t0, 0
        for t in acks:
            if t < t0:
                continue
            if t > t1:
                break
            worst = max(worst, t - prev)
            prev = t
        out.append(round(worst / 1e6, 1))
    return out


def diagnose_unconverged(c):
    """What each running node is doing when the replicas do not agree: its
    raft counters twice, one second apart (entries still being proposed
    on an idle cluster, and by whom), and its log's last lines."""
    import urllib.request

    def counters(n):
        want = ("runvault_raft_entries_total", "runvault_raft_commands_total",
                "runvault_raft_barriers_total", "runvault_raft_applied_index",
                "runvault_raft_last_index")
        try:
            with urllib.request.urlopen(n.http_url + "/metrics",
                                        timeout=2) as r:
                text = r.read().decode(errors="replace")
        except OSError as e:
            return {"error": repr(e)}
        out = {}
        for line in text.splitlines():
            k, _, v = line.partition(" ")
            if k in want:
                out[k] = float(v)
        return out

    first = {n.id: counters(n) for n in c.running()}
    time.sleep(1.0)
    out = {}
    for n in c.running():
        second = counters(n)
        tail = []
        if os.path.exists(n.log):
            with open(n.log, errors="replace") as f:
                tail = [x.rstrip() for x in f.readlines()[-20:]]
        out["n%d" % n.id] = {"before": first.get(n.id), "after": second,
                             "log_tail": tail}
    return out


def run_scenario(args, net, rnd, name, durability, n, nemeses, seconds):
    ckw = {}
    if args.soak or args.custom or name in ("vlog-damage",
                                            "compact-catchup") or \
            name.startswith("compact-power"):
        ckw["snapshot_bytes"] = 1 << 20
    if "-auth" in name:
        ckw["auth"] = True
    if name.endswith("-tls"):
        ckw["tls"] = True
    ctx = Ctx(args, net, name, rnd, durability, n, **ckw)
    print("== %s (%s, %d nodes, %s)" % (name, durability, n,
                                         ",".join(nemeses)), file=sys.stderr)
    wl = None
    t_begin = time.monotonic()
    try:
        c = ctx.c
        if name in ("vlog-damage", "compact-kill", "compact-catchup",
                    "backup-kill-leader") or name.startswith("compact-power"):
            c.segment_bytes = 65536
        elif args.soak or args.custom:
            c.segment_bytes = 1 << 20
        if "disk-full" in nemeses:
            ctx.tmpfs_node = c.nodes[2]
            ctx.tmpfs_node.mount_tmpfs("160m")
        if "power-cut" in nemeses or "compact-power" in nemeses:
            for n in c.nodes[:c.n_initial]:
                n.mount_powerfs(os.path.join(args.build, "tests",
                                             "rv_powerfs"))
        if "clock-skew" in nemeses:
            for n in c.nodes[:1]:
                clock = os.path.join(c.tmp, "faketime-n%d" % n.id)
                with open(clock, "w") as f:
                    f.write("+0\n")
                n.env = {"LD_PRELOAD": FAKETIME_LIB,
                         "FAKETIME_TIMESTAMP_FILE": clock,
                         "FAKETIME_NO_CACHE": "1",
                         "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        if any(nm.startswith("fsync-eio") for nm in nemeses):
            for n in c.nodes:  # each node its own arm file
                n.env = {"LD_PRELOAD": ctx.shim,
                         "RV_EIO_ARM": os.path.join(c.tmp,
                                                    "eio-arm-n%d" % n.id)}
        c.start()
        ctx.ev.watch_leader()
        wl = ctx.wl = Workloads(ctx, seconds)
        wl.start()
        t_gate0 = mono_ns()
        time.sleep(3)
        t_gate1 = mono_ns()
        qps = wl.ops_between(t_gate0, t_gate1) / ((t_gate1 - t_gate0) / 1e9)
        ctx.fig["qps_before"] = round(qps, 1)
        if qps < QPS_GATE:
            ctx.fail("only %.0f ops/s before the fault (gate %d): the run "
                     "would prove nothing" % (qps, QPS_GATE))
        t_fault = mono_ns()
        for nm in nemeses:
            NEMESES[nm](ctx)
        t_healed = mono_ns()
        ctx.fig["qps_during"] = round(
            wl.ops_between(t_fault, t_healed) /
            max(1e-9, (t_healed - t_fault) / 1e9), 1)
        wl.wait_waiting(seconds + 120)
        ok, applied, digest = c.converged(60)
        ctx.fig["converged"] = ok
        ctx.fig["applied_index"] = applied
        if not ok:
            ctx.fig["unconverged"] = diagnose_unconverged(c)
            ctx.fail("replicas did not converge: %s" % (applied,))
        summaries = wl.finish()
        ctx.fig["workloads"] = summaries
        for s in summaries:
            if s.get("final_failed"):
                ctx.fail("%s: %d final reads failed" %
                         (s["workload"], s["final_failed"]))
        res = run_checker(ctx)
        ctx.fig["check"] = res
        if not res.get("ok"):
            ctx.fail("history check failed")
        if "backup-kill-leader" in nemeses and ctx.backup is not None:
            check_backup(ctx)
        ctx.fig["unavailable_ms"] = unavailability(ctx)
        # The tombstone: one more write must succeed after everything.
        ctx.fig["log_hits"] = c.log_hits()[:20]
        # AppendEntries whose leader_commit the guard lowered (raftguard.c
        # logs the first 8 per node start).
        ctx.fig["commit_clamps"] = c.count_log_lines(
            "raftguard: leader_commit")
        # The raft loops' stalls of REPLICA_LAG_LOG_MS or more (replica.c
        # logs the first 64 per node start and then every new maximum),
        # with the longest work seen on the loop meanwhile.
        ctx.fig["loop_stalls"] = c.loop_stalls()
        # Stores that found their index written after the last sync of
        # another boot (a power cut) or ahead of the vlog, and rebuilt it.
        ctx.fig["index_rebuilds"] = c.count_log_lines(
            "rebuilding it from the vlog")
        if ctx.fig["log_hits"]:
            ctx.fail("crash lines in node logs: %s" % ctx.fig["log_hits"][:3])
    except Exception as e:  # noqa: BLE001 - report, then clean up
        ctx.fail("harness: %r" % (e,))
    finally:
        if wl:
            wl.kill()
        ctx.ev.close()
        ctx.fig["leader_changes"] = ctx.ev.n_leader_changes
        # Election safety, sampled every 100 ms: no term ever had two.
        ctx.fig["terms_led"] = len(ctx.ev.term_leaders)
        two = {t: sorted(ids) for t, ids in ctx.ev.term_leaders.items()
               if len(ids) > 1}
        if two:
            ctx.fail("two leaders in one term: %s" % two)
        ctx.fig["seconds"] = round(time.monotonic() - t_begin, 1)
        keep = bool(ctx.failures) and args.keep_failed
        save_crash(ctx)
        ctx.c.cleanup(keep=keep)
        faultlib.set_token(None)
        faultlib.rvfixture.TLS_CONTEXT = None
        if keep:
            ctx.note("data kept in %s" % ctx.c.tmp)
    ctx.fig["failures"] = ctx.failures
    ctx.fig["ok"] = not ctx.failures
    print(json.dumps(ctx.fig, sort_keys=True))
    sys.stdout.flush()
    return ctx.fig


def summarise(figs, fuzz=None):
    el = [x for f in figs for x in f["election_ms"]]
    rec = [x for f in figs for x in f["recovery_ms"]]
    un = [x for f in figs for x in f["unavailable_ms"]]
    chk = [f.get("check", {}) for f in figs]
    # Memory mode acknowledges before the commit: its reads may miss an
    # acknowledged write, so its linearizability figures are not gated.
    gated = [c for c in chk if c.get("mode") != "memory"]
    mem = [c for c in chk if c.get("mode") == "memory"]
    s = {
        "summary": True,
        "scenarios": len(figs),
        "failed": [f["scenario"] for f in figs if not f["ok"]],
        "ops": sum(c.get("ops", 0) for c in chk),
        "acked_writes_lost": sum(c.get("acked_writes_lost", 0) for c in chk),
        "bounded_losses_memory": sum(c.get("bounded_losses", 0) for c in chk),
        "linearizability_violations": sum(
            c.get("register", {}).get("violations", 0) +
            c.get("register", {}).get("unknown", 0) for c in gated),
        "stale_reads": sum(c.get("stale_reads", 0) for c in gated),
        "memory_mode_ungated": {
            "linearizability_violations": sum(
                c.get("register", {}).get("violations", 0) for c in mem),
            "stale_reads": sum(c.get("stale_reads", 0) for c in mem)},
        "election_ms": {"n": len(el), "p50": pct(el, 50), "p99": pct(el, 99),
                        "max": max(el) if el else None},
        "unavailable_ms": {"n": len(un), "p50": pct(un, 50),
                           "p99": pct(un, 99), "max": max(un) if un else None},
        "recovery_ms": {"n": len(rec), "p50": pct(rec, 50),
                        "max": max(rec) if rec else None},
    }
    if fuzz is not None:
        s["fuzz"] = fuzz
    return s


def recheck(out_dir):
    """Check every scenario of a finished run again (its histories and
    nemesis log are kept in out_dir): the same figures, with the current
    checker's verdicts."""
    with open(os.path.join(out_dir, "summary.json")) as f:
        figs = json.load(f)["scenarios"]
    dirs = sorted(d for d in os.listdir(out_dir)
                  if os.path.isdir(os.path.join(out_dir, d)))
    for fig, d in zip(figs, dirs):
        d = os.path.join(out_dir, d)
        hists = sorted(os.path.join(d, x) for x in os.listdir(d)
                       if x.startswith("history"))
        r = subprocess.run([sys.executable, os.path.join(HERE, "check.py"),
                            "--mode", fig["durability"], "--nemesis",
                            os.path.join(d, "nemesis.jsonl"),
                            "--allow-loss-window-ms", "1000"] + hists,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True, timeout=600)
        try:
            fig["check"] = json.loads(r.stdout)
        except ValueError:
            fig["check"] = {"ok": False}
        fig["failures"] = [x for x in fig["failures"]
                           if not x.startswith(("checker:", "history check"))]
        if not fig["check"].get("ok"):
            fig["failures"].append("history check failed")
        fig["ok"] = not fig["failures"]
    s = summarise(figs)
    print(json.dumps(s, sort_keys=True))
    return 0 if not s["failed"] else 1


def run_fuzz(args):
    """Every fuzz target for args.fuzz_seconds: one figures dict each."""
    env = dict(os.environ, RV_FUZZ_BUILD=os.path.abspath(args.fuzz_build))
    r = subprocess.run([os.path.join(HERE, "..", "fuzz", "run_all.sh"),
                        str(args.fuzz_seconds)], stdout=subprocess.PIPE,
                       text=True, env=env, timeout=args.fuzz_seconds * 10 + 600)
    out = []
    for line in r.stdout.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    if r.returncode != 0 and not out:
        out.append({"target": "all", "crashes": -1, "error": r.returncode})
    return out


def soak(args, net, figs):
    """Random nemeses on a 5-node cluster, in rounds of args.round_s
    seconds of traffic; each round ends with the full checks. Appends each
    round's figures to figs (kept if the soak is interrupted)."""
    rng = random.Random(args.seed)
    random.seed(args.seed)
    deadline = time.monotonic() + args.soak
    choices = ["kill-leader", "kill-follower", "pause-leader",
               "partition-leader", "partition-halves", "ring", "one-way",
               "lossy", "kill-all", "torn-tail", "disk-full", "fsync-eio",
               "fsync-eio-leader", "power-cut"]
    modes = ["buffered", "strict", "buffered", "memory"]
    rnd = 0
    while time.monotonic() + args.round_s + 90 < deadline and rnd < 10000:
        rnd += 1
        picks = [rng.choice(choices) for _ in range(3)]
        # One node's data dir cannot be both the disk-full tmpfs and a
        # powerfs mount: a round with both draws again.
        while "power-cut" in picks and "disk-full" in picks:
            picks = [rng.choice(choices) for _ in range(3)]
        mode = modes[rnd % len(modes)]
        figs.append(run_scenario(args, net, rnd, "soak-" + "+".join(picks),
                                 mode, 5, picks, args.round_s))
        with open(os.path.join(args.out, "soak-progress.json"), "w") as f:
            json.dump(summarise(figs), f)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--scenario", action="append")
    ap.add_argument("--subset", choices=["asan"],
                    help="asan: the scenarios of ASAN_SUBSET (for a "
                    "sanitizer build)")
    ap.add_argument("--soak", type=int, default=0, metavar="SECONDS")
    ap.add_argument("--custom", action="append", metavar="MODE:N:NEM,NEM",
                    help="one scenario of these nemeses (e.g. to replay a "
                    "soak round): durability, nodes, nemesis list")
    ap.add_argument("--round-s", type=int, default=40)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--out", default=None)
    ap.add_argument("--keep-failed", action="store_true")
    ap.add_argument("--fuzz-build", default=None, metavar="DIR",
                    help="also run every libFuzzer target of this build "
                    "(tests/fuzz/run_all.sh) and add its figures")
    ap.add_argument("--fuzz-seconds", type=int, default=60)
    ap.add_argument("--recheck", action="store_true",
                    help="BUILD is an --out dir of a finished run: check its "
                    "histories again with this check.py and print the "
                    "summary (no cluster is started)")
    args = ap.parse_args()
    if args.recheck:
        return recheck(args.build)
    args.build = os.path.abspath(args.build)
    if os.geteuid() != 0:
        print("run.py: needs root (network namespaces)", file=sys.stderr)
        return 2
    if args.out is None:
        args.out = os.path.join("/tmp", "rvfault-%d" % os.getpid())
    os.makedirs(args.out, exist_ok=True)
    if args.subset == "asan":
        args.scenario = (args.scenario or []) + ASAN_SUBSET
    random.seed(args.seed)
    n_ns = 6 if args.soak or args.custom or not args.scenario or any(
        s in ("membership", "partitions-lossy") for s in args.scenario) else 3
    if args.soak:
        n_ns = 6
    net = faultlib.Net("rvf%d" % (os.getpid() % 100000), n_ns)

    def on_signal(sig, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    figs = []
    try:
        net.up()
        net.enter_client()
        if args.soak:
            soak(args, net, figs)
        elif args.custom:
            for rnd, spec in enumerate(args.custom, 1):
                mode, n, nems = spec.split(":")
                figs.append(run_scenario(args, net, rnd, "custom-" + nems,
                                         mode, int(n), nems.split(","),
                                         args.round_s))
        else:
            extra = [e for e in EXTRA
                     if args.scenario and e[0] in args.scenario]
            for rnd, (name, mode, n, nems, secs) in enumerate(CI + extra, 1):
                if args.scenario and name not in args.scenario:
                    continue
                figs.append(run_scenario(args, net, rnd, name, mode, n, nems,
                                         secs))
    except KeyboardInterrupt:
        print("run.py: interrupted", file=sys.stderr)
    finally:
        net.leave_client()
        net.down()
    fuzz = run_fuzz(args) if args.fuzz_build else None
    s = summarise(figs, fuzz)
    s["seed"] = args.seed
    s["out"] = args.out
    print(json.dumps(s, sort_keys=True))
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump({"summary": s, "scenarios": figs}, f, indent=1)
    fuzz_ok = fuzz is None or all(f.get("crashes") == 0 for f in fuzz)
    return 0 if figs and not s["failed"] and fuzz_ok else 1


if __name__ == "__main__":
    sys.exit(main())
