#!/usr/bin/env python3
"""Self-test of the history checkers in check.py (CI stage S14).

    python3 tests/fault/test_check.py            # or: python3 -m unittest
    python3 tests/fault/test_check.py --bench 50000   # speed on a synthetic run

Hand-made known-good histories must pass (including info writes that did and
did not take effect, and overlapping writes linearizable only in a
non-obvious order); known-bad ones must be flagged (stale read, lost acked
append and set add, duplicated and phantom values, a non-linearizable
register with no single stale read, reads going backwards, a fail write that
shows up, overlapping ops of one proc). Randomized: histories generated from
sequential models with random concurrency must pass; small register
histories with a read mutated to an older value must get the same verdict as
a brute-force search over all orders. Exits non-zero on any failure.
Standard library only (Python 3.11).
"""

import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import check  # noqa: E402

MS = 1_000_000  # ns


# ------------------------------------------------------------ builders ----

class H:
    """A hand-made history: H().w(...).r(...) ... .ops; times in ms."""

    def __init__(self):
        self.recs = []
        self._n = 0

    def add(self, proc, wl, f, key, value, call, ret, typ="ok", **extra):
        self._n += 1
        rec = {"proc": proc, "op": self._n, "wl": wl, "f": f, "key": key,
               "value": value, "call": int(call * MS),
               "ret": int(ret * MS), "type": typ,
               "node": "tcp://10.77.0.11:7001"}
        rec.update(extra)
        self.recs.append(rec)
        return self

    # register
    def w(self, proc, value, call, ret, typ="ok", key="r1"):
        return self.add(proc, "register", "write", key, value, call, ret, typ)

    def r(self, proc, value, call, ret, typ="ok", key="r1",
          consistency="linearizable"):
        return self.add(proc, "register", "read", key, value, call, ret, typ,
                        consistency=consistency)

    # append
    def ap(self, proc, value, call, ret, typ="ok", key="a1"):
        return self.add(proc, "append", "append", key, value, call, ret, typ)

    def ar(self, proc, value, call, ret, key="a1", final=False,
           consistency="linearizable", typ="ok"):
        extra = {"consistency": consistency}
        if final:
            extra["final"] = True
        return self.add(proc, "append", "read", key, value, call, ret, typ,
                        **extra)

    # set
    def sa(self, proc, value, call, ret, typ="ok", key="runs"):
        return self.add(proc, "set", "add", key, value, call, ret, typ)

    def sr(self, proc, value, call, ret, key="runs"):
        return self.add(proc, "set", "read_all", key, value, call, ret,
                        final=True)

    @property
    def ops(self):
        return [check.parse_op(r, "test:%d" % i)
                for i, r in enumerate(self.recs, 1)]


def run(h_or_recs, **kw):
    """check_history on a builder or record list; stderr text captured."""
    recs = h_or_recs.recs if isinstance(h_or_recs, H) else h_or_recs
    ops = [check.parse_op(r, "test:%d" % i) for i, r in enumerate(recs, 1)]
    err = io.StringIO()
    res = check.check_history(ops, stream=err, **kw)
    res["_stderr"] = err.getvalue()
    return res


# ------------------------------------------------------- brute force ----

def brute_force_linearizable(recs):
    """Independent oracle for one register key: try every order.

    Fail writes and info/fail reads take no part; info writes may take
    effect at any time after their call, or not at all; only ok
    linearizable reads are checked. A plain depth-first search over all
    real-time-respecting orders, no memoization, no pruning beyond the
    model; for histories of at most ~8 ops.
    """
    ops = []
    for r in recs:
        if r["f"] == "write" and r["type"] != "fail":
            ret = float("inf") if r["type"] == "info" else r["ret"]
            ops.append((r["call"], ret, True, r["value"], r["type"] == "info"))
        elif r["f"] == "read" and r["type"] == "ok" and \
                r.get("consistency", "linearizable") == "linearizable":
            ops.append((r["call"], r["ret"], False, r["value"], False))
    n = len(ops)

    def dfs(remaining, state):
        if all(ops[i][4] for i in remaining):
            return True          # what is left are info writes: never happened
        for i in remaining:
            c, _r, is_w, v, _info = ops[i]
            # i may go next only if no remaining op returned before i's call
            if any(ops[j][1] < c for j in remaining if j != i):
                continue
            if is_w:
                if dfs(remaining - {i}, v):
                    return True
            elif v == state and dfs(remaining - {i}, state):
                return True
        return False
    return dfs(frozenset(range(n)), None)


# ------------------------------------------------- random generators ----

def simulate(rng, nprocs, nops, plan, t_start=0.0, max_gap=3.0,
             dur=(0.2, 6.0), long_p=0.05, long_dur=40.0, timeout=20.0,
             state=None):
    """Random concurrent ops from sequential models (register/append/set).

    plan(rng, k) -> (wl, f, key, type, consistency) for the k-th op. Each op
    gets a linearization point inside [call, ret] (ok), nowhere (fail), or
    for info writes somewhere after the call, possibly after the recorded ret
    when the client gave up, or never. Values come from applying the ops in
    linearization-point order, so the history is linearizable by
    construction. Returns the records (times in ns) and the final state.
    """
    st = state if state is not None else {"reg": {}, "app": {}, "set": {}}
    free = [t_start + rng.uniform(0, max_gap) for _ in range(nprocs)]
    pending = []             # (lin time, seq, record)
    recs = []
    seq = [0] * nprocs
    for k in range(nops):
        p = min(range(nprocs), key=lambda i: free[i]) \
            if rng.random() < 0.7 else rng.randrange(nprocs)
        wl, f, key, typ, cons = plan(rng, k)
        call = free[p] + rng.uniform(0, max_gap)
        d = long_dur if rng.random() < long_p else rng.uniform(*dur)
        if typ == "info":
            d = timeout
        ret = call + d
        free[p] = ret + rng.uniform(0, max_gap)
        seq[p] += 1
        rec = {"proc": p, "op": seq[p], "wl": wl, "f": f, "key": key,
               "call": int(call * MS), "ret": int(ret * MS), "type": typ,
               "node": "tcp://10.77.0.1%d:7001" % rng.randrange(3)}
        if f in ("read", "read_all"):
            rec["consistency"] = cons
            rec["value"] = None
        elif f == "write":
            rec["value"] = "%d-%d" % (p, seq[p])
        elif f == "append":
            rec["value"] = p * 1_000_000 + seq[p]
        else:
            rec["value"] = "run-%d-%d" % (p, seq[p])
        recs.append(rec)
        # the lin point, strictly inside the interval (ns rounding aside)
        c_ns, r_ns = rec["call"], rec["ret"]
        if typ == "ok":
            lin = rng.uniform(c_ns + 0.25, r_ns - 0.25)
        elif typ == "info" and rec["f"] not in ("read", "read_all") \
                and rng.random() < 0.5:
            lin = c_ns + 0.25 + rng.uniform(0, 3 * (r_ns - c_ns))
        else:
            continue          # fail: no effect; info read: dropped
        pending.append((lin, len(recs), rec))
    pending.sort(key=lambda x: (x[0], x[1]))
    history = {}             # register key -> values in order (stale reads)
    for _lin, _s, rec in pending:
        key, f = rec["key"], rec["f"]
        if rec["wl"] == "register":
            if f == "write":
                st["reg"][key] = rec["value"]
                history.setdefault(key, []).append(rec["value"])
            elif rec["consistency"] == "stale":
                old = [None] + history.get(key, [])
                rec["value"] = rng.choice(old)
            else:
                rec["value"] = st["reg"].get(key)
        elif rec["wl"] == "append":
            if f == "append":
                st["app"].setdefault(key, []).append(rec["value"])
            else:
                cur = st["app"].get(key, [])
                if rec["consistency"] == "stale":
                    cur = cur[:rng.randint(0, len(cur))]
                rec["value"] = list(cur)
        else:
            if f == "add":
                st["set"].setdefault(key, set()).add(rec["value"])
            else:
                rec["value"] = sorted(st["set"].get(key, ()))
    for rec in recs:          # reads without a lin point: info/fail
        if rec["f"] in ("read", "read_all") and rec["type"] != "ok":
            rec["value"] = None
    return recs, st


def register_plan(p_read=0.5, p_info=0.12, p_fail=0.08, p_stale=0.0,
                  p_leader=0.0, key="r1"):
    def plan(rng, k):
        if rng.random() < p_read:
            x = rng.random()
            cons = ("stale" if x < p_stale else "leader"
                    if x < p_stale + p_leader else "linearizable")
            typ = "info" if rng.random() < p_info / 2 else "ok"
            return "register", "read", key, typ, cons
        x = rng.random()
        typ = "info" if x < p_info else "fail" if x < p_info + p_fail \
            else "ok"
        return "register", "write", key, typ, None
    return plan


def random_register_history(rng, nops, nprocs=None, **kw):
    nprocs = nprocs or rng.randint(2, 6)
    recs, _ = simulate(rng, nprocs, nops, register_plan(**kw),
                       dur=(0.2, rng.choice([2.0, 6.0, 15.0])))
    return recs


def mutate_to_older(rng, recs):
    """Copy of recs with one ok linearizable read swapped to an older value.

    "Older": a value written by a write that was called before the write
    the read observed (or null). None if no read can be mutated.
    """
    recs = [dict(r) for r in recs]
    writes = {r["value"]: r for r in recs if r["f"] == "write"}
    reads = [r for r in recs if r["f"] == "read" and r["type"] == "ok"
             and r["consistency"] == "linearizable"]
    rng.shuffle(reads)
    for r in reads:
        if r["value"] is None:
            continue
        cur = writes[r["value"]]
        older = [w["value"] for w in writes.values()
                 if w["call"] < cur["call"] and w["type"] != "fail"]
        r["value"] = rng.choice(older + [None])
        return recs
    return None


def synthetic_history(n_ops, seed=1, nprocs=16, rotate=200):
    """A CI-sized run: registers (keys rotated every `rotate` ops), metric
    series and a run set, 16 procs, ~5% info and ~3% fail ops, final reads.
    """
    rng = random.Random(seed)
    counts = {"register": 0, "append": 0}

    def plan(rng, k):
        x = rng.random()
        wl = "register" if x < 0.5 else "append" if x < 0.85 else "set"
        if wl == "set":
            y = rng.random()
            return ("set", "add", "runs", "info" if y < 0.05 else
                    "fail" if y < 0.08 else "ok", None)
        key = "%s%d" % ("r" if wl == "register" else "a",
                        counts[wl] // rotate)
        counts[wl] += 1
        if rng.random() < 0.5:
            y = rng.random()
            cons = ("stale" if y < 0.1 else "leader" if y < 0.2
                    else "linearizable")
            return (wl, "read", key, "info" if rng.random() < 0.02 else "ok",
                    cons)
        y = rng.random()
        return (wl, "write" if wl == "register" else "append", key,
                "info" if y < 0.05 else "fail" if y < 0.08 else "ok", None)

    recs, st = simulate(rng, nprocs, n_ops, plan, dur=(0.3, 5.0),
                        long_p=0.01, long_dur=200.0, timeout=500.0)
    end = max(r["ret"] for r in recs) + 1000 * MS
    seq = 0
    app_keys = sorted({r["key"] for r in recs if r["wl"] == "append"})
    for key in app_keys + ["runs"]:
        seq += 1
        wl = "set" if key == "runs" else "append"
        recs.append({"proc": 100, "op": seq, "wl": wl,
                     "f": "read_all" if wl == "set" else "read", "key": key,
                     "value": (sorted(st["set"].get(key, ())) if wl == "set"
                               else list(st["app"].get(key, []))),
                     "call": end + seq * MS, "ret": end + seq * MS + MS // 2,
                     "type": "ok", "consistency": "linearizable",
                     "final": True})
    return recs


# ---------------------------------------------------------- good ones ----

class KnownGood(unittest.TestCase):

    def assertPasses(self, h, **kw):
        res = run(h, **kw)
        self.assertTrue(res["ok"], "expected to pass: %s\n%s"
                        % ({k: v for k, v in res.items() if k != "_stderr"},
                           res["_stderr"]))
        return res

    def test_sequential_register(self):
        h = H().r(1, None, 0, 1).w(1, "1-1", 2, 3).r(2, "1-1", 4, 5) \
            .w(2, "2-1", 6, 7).r(1, "2-1", 8, 9)
        res = self.assertPasses(h)
        self.assertEqual(res["register"]["keys"], 1)
        self.assertEqual(res["register"]["ops"], 5)

    def test_non_obvious_order(self):
        # W(a) is called first but must take effect after W(b): both reads
        # of a come after W(b) returned. The read of null overlaps both
        # writes and must go before either.
        h = (H().w(1, "1-1", 0, 10)           # a, long
             .w(2, "2-1", 1, 3)              # b, inside a
             .r(3, None, 0.5, 9)             # overlaps all: before b and a
             .r(4, "2-1", 3.5, 4)            # b is visible
             .r(4, "1-1", 5, 6)              # then a (a linearized after b)
             .r(2, "1-1", 11, 12))
        self.assertPasses(h)

    def test_concurrent_reads_pick_the_order(self):
        # three overlapping writes; reads pin the order c, a, b although the
        # calls came a, b, c.
        h = (H().w(1, "a", 0, 20).w(2, "b", 1, 20).w(3, "c", 2, 20)
             .r(4, "c", 3, 4).r(4, "a", 5, 6).r(5, "b", 21, 22))
        self.assertPasses(h)

    def test_info_write_took_effect_late(self):
        # proc 1 gave up on W(x) at t=5; it took effect after W(y) returned.
        h = (H().w(1, "1-1", 0, 5, typ="info")
             .w(2, "2-1", 10, 11)
             .r(3, "2-1", 12, 13)
             .r(3, "1-1", 14, 15)
             .r(2, "1-1", 16, 17))
        res = self.assertPasses(h)
        self.assertEqual(res["stale_reads"], 0)

    def test_info_write_never_took_effect(self):
        h = (H().w(1, "1-1", 0, 1).w(2, "2-1", 2, 5, typ="info")
             .r(3, "1-1", 6, 7).r(3, "1-1", 8, 9))
        self.assertPasses(h)

    def test_fail_write_and_info_read_dropped(self):
        h = (H().w(1, "1-1", 0, 1).w(2, "2-1", 2, 3, typ="fail")
             .r(3, "1-1", 4, 5).r(3, "9-9", 6, 7, typ="info")
             .r(1, None, 8, 9, typ="fail"))
        self.assertPasses(h)

    def test_stale_consistency_reads_do_not_count(self):
        h = (H().w(1, "1-1", 0, 1).w(1, "1-2", 2, 3)
             .r(2, "1-1", 4, 5, consistency="stale")
             .r(2, None, 6, 7, consistency="stale")
             .r(2, "1-2", 8, 9))
        res = self.assertPasses(h)
        self.assertEqual(res["stale_reads"], 0)

    def test_leader_stale_read_reported_not_gated(self):
        h = (H().w(1, "1-1", 0, 1).w(1, "1-2", 2, 3)
             .r(2, "1-1", 4, 5, consistency="leader"))
        res = self.assertPasses(h)
        self.assertEqual(res["stale_reads_leader"], 1)
        self.assertEqual(res["register"]["leader"]["violations"], 1)
        self.assertEqual(res["stale_reads"], 0)

    def test_append_and_set_good(self):
        h = (H().ap(1, 1, 0, 1).ap(2, 2, 0.5, 3).ap(3, 3, 2, 6, typ="info")
             .ap(4, 4, 2, 3, typ="fail")
             .ar(1, [1], 1.5, 1.8)             # 2 still in flight
             .ar(1, [1, 2], 4, 5)
             .ar(4, [1, 2, 3], 7, 8)           # info append applied
             .ar(2, [1], 9, 10, consistency="stale")
             .ar(5, [1, 2, 3], 20, 21, final=True)
             .sa(11, "run-a", 0, 1).sa(12, "run-b", 0, 1, typ="info")
             .sa(13, "run-c", 0, 1, typ="fail").sa(14, "run-d", 0, 1,
                                                    typ="info")
             .sr(16, ["run-a", "run-b"], 30, 31))
        res = self.assertPasses(h)
        self.assertEqual(res["append"]["acked"], 2)
        self.assertEqual(res["append"]["info_applied"], 1)
        self.assertEqual(res["set"]["acked"], 1)
        self.assertEqual(res["set"]["info_applied"], 1)
        self.assertEqual(res["acked_writes_lost"], 0)

    def test_bounded_loss_in_memory_mode(self):
        h = (H().ap(1, 1, 0, 1).ap(1, 2, 100, 101)
             .ar(2, [1], 500, 501, final=True)
             .sa(3, "run-a", 100, 102)
             .sr(4, [], 500, 501))
        events = [{"t": 110 * MS, "event": "kill", "nodes": ["n1"],
                   "leader": "n1"}]
        res = self.assertPasses(h, events=events, mode="memory",
                                loss_window_ms=50)
        self.assertEqual(res["bounded_losses"], 2)
        self.assertEqual(res["acked_writes_lost"], 0)
        # the same loss is not excused outside memory mode, nor when the
        # killed node was not the leader, nor outside the window
        for kw in ({"mode": "strict", "loss_window_ms": 50, "events": events},
                   {"mode": "memory", "loss_window_ms": 5, "events": events},
                   {"mode": "memory", "loss_window_ms": 50, "events": [
                       dict(events[0], leader="n2")]}):
            res = run(h, **kw)
            self.assertFalse(res["ok"])
            self.assertEqual(res["acked_writes_lost"], 2, kw)

    def test_bounded_loss_after_the_leader_is_partitioned_away(self):
        # Acked by a memory-mode leader just after it was cut off (it still
        # accepts until it steps down): lost, and excused only when the
        # partition left the leader in a minority.
        h = (H().ap(1, 1, 0, 1).ap(1, 2, 100, 101)
             .ar(2, [1], 5000, 5001, final=True))
        cut = {"t": 90 * MS, "event": "partition", "nodes": ["n1", "n2", "n3"],
               "leader": "n1", "groups": [["n1"], ["n2", "n3"]]}
        res = self.assertPasses(h, events=[cut], mode="memory",
                                loss_window_ms=50)
        self.assertEqual(res["bounded_losses"], 1)
        majority = dict(cut, groups=[["n1", "n2"], ["n3"]])
        for kw in ({"mode": "memory", "loss_window_ms": 50,
                    "events": [majority]},
                   {"mode": "buffered", "loss_window_ms": 50,
                    "events": [cut]}):
            res = run(h, **kw)
            self.assertFalse(res["ok"])
            self.assertEqual(res["acked_writes_lost"], 1, kw)

    def test_bounded_loss_while_the_network_is_lossy(self):
        # A lossy network can depose the leader at any time until it heals:
        # a memory-mode loss inside that span is bounded, after it is not.
        h = (H().ap(1, 1, 0, 1).ap(1, 2, 4000, 4001)
             .ar(2, [1], 9000, 9001, final=True))
        lossy = [{"t": 100 * MS, "event": "netem", "nodes": ["n1", "n2"],
                  "leader": "n1"},
                 {"t": 5000 * MS, "event": "heal", "nodes": ["n1", "n2"],
                  "leader": None}]
        res = self.assertPasses(h, events=lossy, mode="memory",
                                loss_window_ms=50)
        self.assertEqual(res["bounded_losses"], 1)
        late = (H().ap(1, 1, 0, 1).ap(1, 2, 8500, 8501)
                .ar(2, [1], 9000, 9001, final=True))
        res = run(late, mode="memory", loss_window_ms=50, events=lossy)
        self.assertEqual(res["acked_writes_lost"], 1)

    def test_bounded_loss_before_a_leader_change(self):
        # No nemesis named the leader, but the harness saw it replaced: what
        # it accepted in the 3 s before is memory mode's to lose, and only
        # that.
        h = (H().ap(1, 1, 0, 1).ap(1, 2, 2000, 2001)
             .ar(2, [1], 9000, 9001, final=True))
        change = [{"t": 4000 * MS, "event": "leader-change", "nodes": ["n1"],
                   "leader": "n1", "new": "n2"}]
        res = self.assertPasses(h, events=change, mode="memory",
                                loss_window_ms=50)
        self.assertEqual(res["bounded_losses"], 1)
        early = (H().ap(1, 1, 0, 1).ap(1, 2, 500, 501)
                 .ar(2, [1], 9000, 9001, final=True))
        res = run(early, mode="memory", loss_window_ms=50, events=change)
        self.assertEqual(res["acked_writes_lost"], 1)
        res = run(h, mode="strict", loss_window_ms=50, events=change)
        self.assertEqual(res["acked_writes_lost"], 1)

    def test_memory_mode_does_not_gate_linearizability(self):
        h = H().w(1, "1-1", 0, 1).w(1, "1-2", 2, 3).r(2, "1-1", 4, 5)
        res = run(h, mode="memory")
        self.assertTrue(res["ok"])
        self.assertEqual(res["register"]["violations"], 1)
        self.assertFalse(res["register"]["gated"])
        self.assertEqual(res["mode"], "memory")

    def test_default_consistency_is_leader(self):
        # rv_workload writes the proto's name; CONSISTENCY_DEFAULT = leader
        h = (H().w(1, "1-1", 0, 1).w(1, "1-2", 2, 3)
             .r(2, "1-1", 4, 5, consistency="default"))
        res = self.assertPasses(h)
        self.assertEqual(res["stale_reads_leader"], 1)

    def test_retried_final_read_may_reuse_op_number(self):
        h = (H().ap(1, 1, 0, 1)
             .ar(9, None, 10, 11, typ="info", final=True)
             .ar(9, [1], 12, 13, final=True))
        h.recs[2]["op"] = h.recs[1]["op"]
        self.assertPasses(h)

    def test_unknown_workload_ignored(self):
        h = H().w(1, "1-1", 0, 1).add(2, "batch", "put", "b1", [1], 0, 1)
        res = self.assertPasses(h)
        self.assertEqual(res["ignored_ops"], 1)


# ----------------------------------------------------------- bad ones ----

class KnownBad(unittest.TestCase):

    def assertFlagged(self, h, gate, **kw):
        res = run(h, **kw)
        self.assertFalse(res["ok"], "expected a failure: %s" % res)
        self.assertIn(gate, res["failed_gates"], res)
        return res

    def test_stale_read(self):
        h = H().w(1, "1-1", 0, 1).w(1, "1-2", 2, 3).r(2, "1-1", 4, 5)
        res = self.assertFlagged(h, "stale_reads")
        self.assertEqual(res["stale_reads"], 1)
        self.assertEqual(res["register"]["violations"], 1)
        self.assertIn("NOT LINEARIZABLE", res["_stderr"])
        self.assertIn('read r1 -> "1-1"', res["_stderr"])

    def test_stale_null_read(self):
        h = H().w(1, "1-1", 0, 1).r(2, None, 2, 3)
        res = self.assertFlagged(h, "stale_reads")
        self.assertEqual(res["stale_reads"], 1)

    def test_opposite_orders_no_stale_read(self):
        # Two concurrent writes; proc 3 sees a then b, proc 4 sees b then a.
        # Every single read is fine on its own (no write completed before
        # any read began), the pair is not linearizable.
        h = (H().w(1, "a", 0, 10).w(2, "b", 0, 10)
             .r(3, "a", 1, 2).r(3, "b", 3, 4)
             .r(4, "b", 1, 2).r(4, "a", 3, 4))
        res = self.assertFlagged(h, "register.violations")
        self.assertEqual(res["stale_reads"], 0)
        self.assertEqual(res["register"]["violations"], 1)

    def test_register_read_goes_backwards(self):
        h = (H().w(1, "1-1", 0, 1).w(2, "2-1", 2, 20)
             .r(3, "2-1", 3, 4).r(3, "1-1", 5, 6))
        res = self.assertFlagged(h, "register.violations")
        self.assertEqual(res["stale_reads"], 0)

    def test_register_fail_write_shows_up(self):
        h = H().w(1, "1-1", 0, 1, typ="fail").r(2, "1-1", 2, 3)
        res = self.assertFlagged(h, "register.failed_but_present")
        self.assertEqual(res["register"]["failed_but_present"], 1)
        # still flagged in memory mode
        res = self.assertFlagged(h, "register.failed_but_present",
                                 mode="memory")

    def test_register_phantom(self):
        h = H().w(1, "1-1", 0, 1).r(2, "7-7", 2, 3)
        self.assertFlagged(h, "register.phantom")

    def test_lost_acked_append(self):
        h = (H().ap(1, 1, 0, 1).ap(2, 2, 0, 1)
             .ar(3, [1], 10, 11, final=True))
        res = self.assertFlagged(h, "acked_writes_lost")
        self.assertEqual(res["append"]["lost"], 1)
        self.assertEqual(res["acked_writes_lost"], 1)

    def test_lost_acked_set_add(self):
        h = (H().sa(1, "run-a", 0, 1).sa(2, "run-b", 0, 1)
             .sr(3, ["run-b"], 10, 11))
        res = self.assertFlagged(h, "acked_writes_lost")
        self.assertEqual(res["set"]["lost"], 1)

    def test_duplicated_append(self):
        h = (H().ap(1, 1, 0, 1).ap(2, 2, 0, 1)
             .ar(3, [1, 2, 2], 10, 11, final=True))
        res = self.assertFlagged(h, "append.duplicated")
        self.assertEqual(res["append"]["duplicated"], 1)

    def test_phantom_append(self):
        h = (H().ap(1, 1, 0, 1)
             .ar(3, [1, 99], 10, 11, final=True))
        res = self.assertFlagged(h, "append.phantom")
        self.assertEqual(res["append"]["phantom"], 1)

    def test_phantom_set_member(self):
        h = H().sa(1, "run-a", 0, 1).sr(3, ["run-a", "run-z"], 10, 11)
        self.assertFlagged(h, "set.phantom")

    def test_fail_append_shows_up(self):
        h = (H().ap(1, 1, 0, 1).ap(2, 2, 0, 1, typ="fail")
             .ar(3, [1, 2], 10, 11, final=True))
        res = self.assertFlagged(h, "append.failed_but_present")
        self.assertEqual(res["append"]["failed_but_present"], 1)

    def test_fail_add_shows_up(self):
        h = (H().sa(1, "run-a", 0, 1, typ="fail")
             .sr(3, ["run-a"], 10, 11))
        self.assertFlagged(h, "set.failed_but_present")

    def test_append_order_violation(self):
        h = (H().ap(1, 1, 0, 1).ap(2, 2, 0, 1)
             .ar(3, [2], 2, 3)
             .ar(3, [1, 2], 10, 11, final=True))
        res = self.assertFlagged(h, "append.order_violations")
        self.assertEqual(res["append"]["order_violations"], 1)

    def test_stale_append(self):
        h = (H().ap(1, 1, 0, 1).ap(1, 2, 2, 3)
             .ar(3, [1], 4, 5)
             .ar(3, [1, 2], 10, 11, final=True))
        res = self.assertFlagged(h, "append.stale_appends")
        self.assertEqual(res["append"]["stale_appends"], 1)
        self.assertTrue(run(h, mode="memory")["ok"])

    def test_append_read_goes_backwards(self):
        # append 2 is still in flight, so no read is stale; but the second
        # read lost what the first one saw.
        h = (H().ap(1, 1, 0, 1).ap(2, 2, 2, 30, typ="info")
             .ar(3, [1, 2], 4, 5)
             .ar(3, [1], 6, 7)
             .ar(4, [1, 2], 40, 41, final=True))
        res = self.assertFlagged(h, "append.nonmonotonic")
        self.assertEqual(res["append"]["nonmonotonic"], 1)
        self.assertEqual(res["append"]["stale_appends"], 0)
        self.assertFalse(run(h, mode="memory")["ok"])

    def test_missing_final_read(self):
        h = H().ap(1, 1, 0, 1).ar(3, [1], 10, 11)
        self.assertFlagged(h, "append.missing_final")

    def test_overlapping_ops_of_one_proc(self):
        h = H().w(1, "1-1", 0, 10).r(1, "1-1", 5, 12)
        res = self.assertFlagged(h, "harness_errors")
        self.assertEqual(res["harness_errors"], 1)
        self.assertIn("two outstanding ops", res["_stderr"])

    def test_value_written_twice_is_harness_error(self):
        h = H().w(1, "1-1", 0, 1).w(2, "1-1", 2, 3)
        self.assertFlagged(h, "harness_errors")

    def test_budget_exhausted_is_unknown(self):
        # many concurrent writes and a contradiction at the end: the search
        # needs many steps; allow almost none.
        h = H()
        for p in range(8):
            h.w(p, "%d-1" % p, 0, 100)
        h.r(9, "0-1", 101, 102).r(9, "1-1", 103, 104).r(9, "0-1", 105, 106)
        res = self.assertFlagged(h, "register.unknown", wgl_max_steps=20)
        self.assertEqual(res["register"]["unknown"], 1)
        res = run(h)
        self.assertEqual(res["register"]["violations"], 1)
        self.assertEqual(res["register"]["unknown"], 0)


# ------------------------------------------------------- CLI and input ----

class Cli(unittest.TestCase):

    def cli(self, text, *args):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "h.jsonl")
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([sys.executable, os.path.join(HERE, "check.py"),
                                path, *args], capture_output=True, text=True,
                               timeout=60)
        return p

    def test_exit_codes(self):
        good = H().w(1, "1-1", 0, 1).r(2, "1-1", 2, 3)
        bad = H().w(1, "1-1", 0, 1).w(1, "1-2", 2, 3).r(2, "1-1", 4, 5)
        lines = lambda h: "".join(json.dumps(r) + "\n" for r in h.recs)
        p = self.cli(lines(good))
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertTrue(out["ok"])
        for k in ("ops", "procs", "harness_errors", "register", "stale_reads",
                  "stale_reads_leader", "append", "set", "acked_writes_lost",
                  "bounded_losses", "ok"):
            self.assertIn(k, out)
        p = self.cli(lines(bad), "--mode", "strict")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(json.loads(p.stdout)["mode"], "strict")
        self.assertIn("NOT LINEARIZABLE", p.stderr)
        self.assertEqual(self.cli("{not json\n").returncode, 2)
        rec = dict(good.recs[0], type="maybe")
        self.assertEqual(self.cli(json.dumps(rec) + "\n").returncode, 2)
        rec = dict(good.recs[0])
        del rec["call"]
        self.assertEqual(self.cli(json.dumps(rec) + "\n").returncode, 2)

    def test_concatenated_files_and_nemesis(self):
        h = H().ap(1, 1, 0, 1).ar(2, [], 500, 501, final=True)
        with tempfile.TemporaryDirectory() as d:
            a, b, ev = (os.path.join(d, n) for n in ("a", "b", "ev"))
            with open(a, "w") as f:
                f.write(json.dumps(h.recs[0]) + "\n\n")
            with open(b, "w") as f:
                f.write(json.dumps(h.recs[1]) + "\n")
            with open(ev, "w") as f:
                f.write(json.dumps({"t": 20 * MS, "event": "kill",
                                    "nodes": ["n1"], "leader": "n1"}) + "\n")
            cmd = [sys.executable, os.path.join(HERE, "check.py"), a, b,
                   "--nemesis", ev, "--allow-loss-window-ms", "50"]
            p = subprocess.run(cmd + ["--mode", "memory"], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout)["bounded_losses"], 1)
            p = subprocess.run(cmd + ["--mode", "buffered"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertEqual(json.loads(p.stdout)["acked_writes_lost"], 1)


# ---------------------------------------------------------- randomized ----

class Randomized(unittest.TestCase):

    def test_brute_force_oracle_on_hand_made(self):
        # the oracle itself agrees with the hand-made verdicts
        good = (H().w(1, "a", 0, 10).w(2, "b", 1, 3).r(4, "b", 3.5, 4)
                .r(4, "a", 5, 6))
        bad = (H().w(1, "a", 0, 10).w(2, "b", 0, 10).r(3, "a", 1, 2)
               .r(3, "b", 3, 4).r(4, "b", 1, 2).r(4, "a", 3, 4))
        self.assertTrue(brute_force_linearizable(good.recs))
        self.assertFalse(brute_force_linearizable(bad.recs))

    def test_generated_linearizable_histories_pass(self):
        rng = random.Random(20261201)
        for i in range(300):
            nops = rng.choice([6, 10, 20, 40, 80, 150])
            recs = random_register_history(
                rng, nops, p_stale=0.1, p_leader=0.1, key="r%d" % i)
            res = run(recs)
            self.assertTrue(res["ok"], "history %d failed:\n%s\n%s" % (
                i, "\n".join(json.dumps(r) for r in recs), res["_stderr"]))
            self.assertEqual(res["register"]["leader"]["violations"], 0)

    def test_mutations_match_brute_force(self):
        rng = random.Random(7)
        compared = flagged = 0
        while compared < 400:
            recs = random_register_history(rng, rng.randint(4, 8),
                                           nprocs=rng.randint(2, 4),
                                           p_read=0.55)
            self.assertTrue(brute_force_linearizable(recs))
            bad = mutate_to_older(rng, recs)
            if bad is None:
                continue
            expect = brute_force_linearizable(bad)
            res = run(bad)
            got = res["register"]["violations"] == 0 and \
                res["register"]["unknown"] == 0
            self.assertEqual(got, expect, "verdict differs from brute force "
                             "(expected linearizable=%s):\n%s\n%s" % (
                                 expect, "\n".join(json.dumps(r)
                                                   for r in bad),
                                 res["_stderr"]))
            if not expect:
                self.assertFalse(res["ok"])
                flagged += 1
            compared += 1
        # the mutation must actually produce bad histories most of the time
        self.assertGreater(flagged, compared // 3, (flagged, compared))

    def test_random_reads_match_brute_force(self):
        # fully random read values (any value written, or null): both
        # verdicts occur; checker and oracle must agree on each
        rng = random.Random(99)
        verdicts = set()
        for _ in range(400):
            recs = random_register_history(rng, rng.randint(3, 8),
                                           nprocs=rng.randint(2, 4))
            vals = [None] + [r["value"] for r in recs if r["f"] == "write"]
            for r in recs:
                if r["f"] == "read" and r["type"] == "ok":
                    r["value"] = rng.choice(vals)
            expect = brute_force_linearizable(recs)
            writes = [o for o in map(check.parse_op, recs)
                      if o.f == "write" and o.type != "fail"]
            reads = [o for o in map(check.parse_op, recs)
                     if o.f == "read" and o.type == "ok"
                     and o.consistency == "linearizable"]
            fails = {r["value"] for r in recs
                     if r["f"] == "write" and r["type"] == "fail"}
            verdict, _ = check.check_register_key(writes, reads, fails)
            self.assertEqual(verdict == check.LINEARIZABLE, expect,
                             "\n".join(json.dumps(r) for r in recs))
            # the bare search, with and without the unique-value prune and
            # without the fast paths of check_register_key
            entries = [(w.call, check.INF if w.type == "info" else w.ret,
                        True, w.value) for w in writes]
            entries += [(r.call, r.ret, False, r.value) for r in reads]
            for unique in (False, True):
                v, _ = check.wgl(entries, unique_writes=unique)
                self.assertEqual(v == check.LINEARIZABLE, expect)
            verdicts.add(expect)
        self.assertEqual(verdicts, {True, False})

    def test_generated_append_and_set_histories_pass(self):
        rng = random.Random(5)
        for i in range(100):
            recs = synthetic_history(rng.randint(50, 400),
                                     seed=rng.randrange(1 << 30),
                                     nprocs=rng.randint(2, 16), rotate=50)
            res = run(recs)
            self.assertTrue(res["ok"], "history %d:\n%s" % (i, res["_stderr"]))
            # dropping an acked value from a final read must be caught
            finals = [r for r in recs if r.get("final") and r["value"]]
            acked = {r["value"] for r in recs if r["type"] == "ok"
                     and r["f"] in ("append", "add")}
            for fr in finals:
                victims = [v for v in fr["value"] if v in acked]
                if victims:
                    v = rng.choice(victims)
                    fr["value"] = [x for x in fr["value"] if x != v]
                    res = run(recs)
                    self.assertGreaterEqual(res["acked_writes_lost"], 1)
                    self.assertFalse(res["ok"])
                    break


class Speed(unittest.TestCase):

    def test_ci_sized_history(self):
        n = int(os.environ.get("CHECK_BENCH_OPS", "50000"))
        recs = synthetic_history(n, seed=3)
        ops = [check.parse_op(r) for r in recs]
        t = time.perf_counter()
        res = check.check_history(ops, stream=None)
        dt = time.perf_counter() - t
        self.assertTrue(res["ok"], res)
        print("\n  %d ops (%d register ops in %d keys): checked in %.2f s, "
              "WGL %.2f s" % (res["ops"], res["register"]["ops"],
                              res["register"]["keys"], dt,
                              res["register"]["wgl_s"]), file=sys.stderr)
        self.assertLess(dt, 60)


def bench(n):
    recs = synthetic_history(n, seed=3)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "h.jsonl")
        with open(path, "w") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")
        t = time.perf_counter()
        p = subprocess.run([sys.executable, os.path.join(HERE, "check.py"),
                            path], capture_output=True, text=True)
        dt = time.perf_counter() - t
    out = json.loads(p.stdout)
    print("%d ops, exit %d, %.2f s wall (CLI, incl. parsing); WGL %.2f s; "
          "register %d keys / %d ops" % (out["ops"], p.returncode, dt,
                                         out["register"]["wgl_s"],
                                         out["register"]["keys"],
                                         out["register"]["ops"]))
    return p.returncode


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--bench":
        sys.exit(bench(int(sys.argv[2])))
    unittest.main(verbosity=2)
