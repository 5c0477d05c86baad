#!/usr/bin/env python3
"""History checkers for the runvault fault-injection tests (tests/fault/).

The harness runs workloads against a real cluster under nemeses and records
each completed operation as one JSON line:

    {"proc":3,"op":17,"wl":"register","f":"write","key":"r7","value":"3-17",
     "call":123,"ret":456,"type":"ok","node":"tcp://10.77.0.11:7001","index":991}

Times are CLOCK_MONOTONIC nanoseconds, comparable across processes, so the
files of several workload processes may simply be concatenated. ``type`` is
``ok`` (acknowledged), ``fail`` (definitely did not take effect) or ``info``
(unknown outcome: may take effect at any time after ``call``).

Usage:
    check.py [--mode memory|buffered|strict] [--nemesis EVENTS.jsonl]
             [--allow-loss-window-ms W] [--wgl-budget-s 30] HISTORY.jsonl...

One JSON object goes to stdout; every finding is explained on stderr. Exit
status: 0 every gate holds, 1 some gate failed, 2 bad input.

Checks
------
harness
    Each proc has at most one outstanding operation: a proc's operations,
    ordered by call, must not overlap (``next.call >= prev.ret``). Also
    ``call <= ret`` and unique written values (per workload), which the other
    checks rely on. Any breach is a harness error (the history cannot be
    trusted) and fails the run. Proc ids must therefore be unique across the
    concatenated files.

register (Wing-Gong-Lowe linearizability, reliability.md section 2.6)
    The history is split per key (P-compositionality: one register per key).
    Fail writes and info/fail reads are dropped; info writes get ret = +inf,
    so they may take effect at any point after their call, or never (placed
    after every other op). Only reads with consistency "linearizable" are in
    the gated check (a read without the field counts as linearizable;
    "default" is the proto's CONSISTENCY_DEFAULT, i.e. "leader"); writes +
    "leader" reads are checked again and reported
    under register.leader (not gated); "stale" reads count toward nothing.
    The search is porcupine's: call/return events in a doubly linked list,
    lift/unlift of the linearized op, a cache of (linearized bitset as a
    Python int, state) pairs, backtracking on the first pending return.
    Fast paths: a read that matches the current state is linearized greedily
    and never revisited (moving a read that is a candidate to the front of a
    valid linearization keeps it valid, so its alternatives need no search);
    with unique write values, a write is only tried once every read of the
    current value has been linearized (such a read could never be satisfied
    afterwards; this keeps long-pending info writes from being tried, and
    failing late, at every level);
    info writes whose value no read returned are dropped (they can always be
    placed last); the values of never-read ok writes collapse into one state;
    a read of a value no write attempted (phantom) or only a fail write wrote
    (failed_but_present) is reported without searching. A key whose search
    exhausts its share of --wgl-budget-s (or --wgl-max-steps) is "unknown",
    which counts as a failure. For a key that is not linearizable, the
    longest linearizable prefix found and the op that blocked it go to stderr.

stale_reads
    An ok linearizable read R is stale if it returned value v whose write W_v
    strictly precedes an ok write W' (W_v.ret < W'.call) that returned before
    R was invoked (W'.ret < R.call), or if it returned null although some ok
    write to the key returned before R.call. Info writes have ret = +inf, so
    they never make a read stale. "leader" reads are counted separately
    (stale_reads_leader, reported, not gated).

append (reliability.md section 2.7; values unique per key, a series in log order)
    (a) lost: ok appends missing from the key's final read (``"final":true``);
        duplicated: values seen more than once within one read;
    (b) phantom: values read that no append of the key attempted;
        failed_but_present: fail appends seen in any read;
    (c) order_violations: ok reads that are not a prefix of the longest read;
    (d) stale_appends: linearizable reads missing an append acked before the
        read's call;
    (e) nonmonotonic: linearizable reads shorter than a linearizable read that
        returned before their call.
    (a)-(c) look at every ok read; (d) and (e) at linearizable ones, with the
    leader-read figures reported separately. info appends in the final read
    are reported as info_applied (fine). A key with appends but no ok final
    read is counted in missing_final (its losses cannot be assessed).

set (runs created)
    lost: ok adds missing from the final read_all; phantom: ids in a read_all
    that no add attempted; failed_but_present: fail adds present;
    info_applied: info adds present; duplicated: ids listed twice.

acked_writes_lost = append lost + set lost (register loss shows up as a
    linearizability violation). In --mode memory, with --nemesis and
    --allow-loss-window-ms W, an ok write acked within W ms before a fault
    that cut off the leader of its time (kill, stop, disk-full, fsync-eio
    naming it, or a partition leaving it in a minority) may be lost, and
    for faults that leave it running also within 3 s after (until it steps
    down; after a kill 200 ms, as the event is logged before the signals);
    a lossy network (netem event) can depose the leader at any moment, so
    its whole span until the heal, plus 3 s, counts; and every change of
    the serving leader the harness saw ("leader-change", nemesis or not),
    for the 3 s before it; such losses are counted as bounded_losses (allowed), the rest as
    acked_writes_lost. The window is ignored in the other modes.

Gates (all must hold for "ok": true)
    harness_errors == 0; acked_writes_lost == 0; register violations == 0 and
    unknown == 0; register phantom == failed_but_present == 0; stale_reads ==
    0; append duplicated, phantom, failed_but_present, order_violations,
    stale_appends, nonmonotonic, missing_final == 0; set phantom,
    failed_but_present, duplicated, missing_final == 0.
    In --mode memory an acknowledgement precedes the commit, so a read may
    legitimately miss an acked write: register linearizability, stale_reads
    and stale_appends are reported there but not gated. Everything that does
    not depend on "acked means visible" (phantoms, duplicates, fail writes
    showing up, order, reads going backwards, unbounded loss) stays gated.

Standard library only (Python 3.11).
"""

import argparse
import bisect
import json
import math
import sys
import time
from collections import defaultdict

__all__ = [
    "HistoryError", "Op", "parse_op", "load_history", "load_events",
    "check_history", "wgl", "check_register_key", "LINEARIZABLE", "ILLEGAL",
    "UNKNOWN", "main",
]

INF = math.inf
LINEARIZABLE, ILLEGAL, UNKNOWN = "linearizable", "illegal", "unknown"
CONSISTENCIES = ("linearizable", "leader", "stale")
MODES = ("memory", "buffered", "strict")
WORKLOADS = {
    "register": ("write", "read"),
    "append": ("append", "read"),
    "set": ("add", "read_all"),
}
TYPES = ("ok", "fail", "info")


class HistoryError(Exception):
    """The input is not a well-formed history (exit status 2)."""


class Op:
    """One completed operation of the history."""

    __slots__ = ("proc", "op", "wl", "f", "key", "value", "call", "ret",
                 "type", "node", "index", "consistency", "final", "where")

    def __init__(self, proc, op, wl, f, key, value, call, ret, type,
                 node=None, index=None, consistency="linearizable",
                 final=False, where=""):
        self.proc, self.op, self.wl, self.f, self.key = proc, op, wl, f, key
        self.value, self.call, self.ret, self.type = value, call, ret, type
        self.node, self.index = node, index
        self.consistency, self.final, self.where = consistency, final, where

    @property
    def is_write(self):
        return self.f in ("write", "append", "add")

    def eff_ret(self):
        """Return time for the real-time order: +inf for unknown outcomes."""
        return INF if self.type == "info" or self.ret is None else self.ret

    def __repr__(self):
        return "Op(%r)" % describe(self)


# --------------------------------------------------------------- input ----

_INT_TYPE, _STR_TYPE = {int}, {str}     # exact types: bool is no int here


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_time(x):
    return (_is_int(x) or isinstance(x, float)) and not (
        isinstance(x, float) and not math.isfinite(x))


def parse_op(obj, where=""):
    """Validate one decoded JSON line and build an Op; HistoryError if bad."""
    def bad(msg):
        raise HistoryError("%s: %s" % (where or "op", msg))

    if not isinstance(obj, dict):
        bad("not a JSON object")
    for field in ("proc", "wl", "f", "key", "call", "type"):
        if field not in obj:
            bad("missing field %r" % field)
    proc = obj["proc"]
    if not (_is_int(proc) or isinstance(proc, str)):
        bad("proc must be an integer or a string")
    wl, f, typ = obj["wl"], obj["f"], obj["type"]
    if typ not in TYPES:
        bad("type must be one of %s, not %r" % ("|".join(TYPES), typ))
    if not isinstance(obj["key"], str):
        bad("key must be a string")
    call, ret = obj["call"], obj.get("ret")
    if not _is_time(call):
        bad("call must be a number of nanoseconds")
    if ret is None:
        if typ != "info":
            bad("ret missing on a %s op" % typ)
    elif not _is_time(ret):
        bad("ret must be a number of nanoseconds")
    consistency = obj.get("consistency", "linearizable")
    if consistency == "default":
        consistency = "leader"      # CONSISTENCY_DEFAULT in runvault.proto
    if consistency not in CONSISTENCIES:
        bad("consistency must be one of %s (or default)"
            % "|".join(CONSISTENCIES))
    final = obj.get("final", False)
    if not isinstance(final, bool):
        bad("final must be true or false")
    value = obj.get("value")
    if wl in WORKLOADS:
        if f not in WORKLOADS[wl]:
            bad("f %r is not an operation of workload %r" % (f, wl))
        if f in ("write", "add"):
            if not isinstance(value, str):
                bad("%s value must be a string" % f)
        elif f == "append":
            if not _is_int(value):
                bad("append value must be an integer")
        elif typ == "ok":
            if f == "read" and wl == "register":
                if value is not None and not isinstance(value, str):
                    bad("register read value must be a string or null")
            elif f == "read":
                if not (isinstance(value, list)
                        and set(map(type, value)) <= _INT_TYPE):
                    bad("append read value must be a list of integers")
            else:
                if not (isinstance(value, list)
                        and set(map(type, value)) <= _STR_TYPE):
                    bad("read_all value must be a list of strings")
    index = obj.get("index")
    return Op(proc, obj.get("op"), wl, f, obj["key"], value, call, ret, typ,
              obj.get("node"), index, consistency, final, where)


def _json_lines(stream, name):
    for lineno, line in enumerate(stream, 1):
        line = line.strip()
        if not line:
            continue
        where = "%s:%d" % (name, lineno)
        try:
            yield json.loads(line), where
        except json.JSONDecodeError as e:
            raise HistoryError("%s: invalid JSON (%s)" % (where, e)) from None


def _open(path):
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except OSError as e:
        raise HistoryError("cannot read %s: %s" % (path, e)) from None


def load_history(paths):
    """Ops of every history file (JSONL; "-" is stdin), in file order."""
    ops = []
    for path in paths:
        f = _open(path)
        try:
            for obj, where in _json_lines(f, path):
                ops.append(parse_op(obj, where))
        finally:
            if f is not sys.stdin:
                f.close()
    return ops


def load_events(path):
    """Nemesis events: dicts with t (ns), event, nodes (list), leader."""
    events = []
    f = _open(path)
    try:
        for obj, where in _json_lines(f, path):
            if not isinstance(obj, dict) or "event" not in obj \
                    or not _is_time(obj.get("t")):
                raise HistoryError("%s: an event needs t (ns) and event"
                                   % where)
            nodes = obj.get("nodes", [])
            if not isinstance(nodes, list):
                raise HistoryError("%s: nodes must be a list" % where)
            events.append(obj)
    finally:
        if f is not sys.stdin:
            f.close()
    return events


# ---------------------------------------------------------- formatting ----

_T0 = [0]


def _fmt_t(t):
    if t is None:
        return "?"
    if t == INF:
        return "+inf"
    return "+%.6fs" % ((t - _T0[0]) / 1e9)


def describe(op):
    """One readable line for an op, e.g. for a violation report."""
    if op.f in ("write", "append", "add"):
        what = "%s %s %s" % (op.f, op.key, json.dumps(op.value))
    else:
        v = op.value
        if isinstance(v, list) and len(v) > 12:
            v = "[%s, ... %d more]" % (", ".join(json.dumps(x) for x in
                                                 v[:10]), len(v) - 10)
        else:
            v = json.dumps(v)
        what = "%s %s -> %s" % (op.f, op.key, v)
        if op.wl != "set":
            what += " (%s)" % op.consistency
    if op.final:
        what += " final"
    s = "proc %s op %s %s%s call %s ret %s" % (
        op.proc, op.op, "" if op.f == op.wl else op.wl + " ", what,
        _fmt_t(op.call), _fmt_t(op.ret))
    s += " " + op.type
    if op.type == "info":
        s += " (outcome unknown)"
    if op.node:
        s += " via %s" % op.node
    if op.index is not None:
        s += " index %s" % op.index
    if op.where:
        s += " [%s]" % op.where
    return s


class Reporter:
    """Findings to stderr, at most `limit` lines per kind."""

    def __init__(self, stream=sys.stderr, limit=20):
        self.stream, self.limit = stream, limit
        self.counts = defaultdict(int)

    def __call__(self, kind, msg):
        self.counts[kind] += 1
        n = self.counts[kind]
        if self.stream is None:
            return
        if n <= self.limit:
            print("%s: %s" % (kind, msg), file=self.stream)
        elif n == self.limit + 1:
            print("%s: (further findings of this kind not shown)" % kind,
                  file=self.stream)


# ------------------------------------------------------------- harness ----

def check_harness(ops, report):
    """Harness errors: overlapping ops of one proc, ret < call, a value
    written twice. (op numbers need not be unique: retries may reuse one.)"""
    errors = 0
    by_proc = defaultdict(list)
    for o in ops:
        by_proc[o.proc].append(o)
        if o.ret is not None and o.ret < o.call:
            errors += 1
            report("harness", "ret before call: %s" % describe(o))
    for proc, pops in by_proc.items():
        pops.sort(key=lambda o: o.call)
        for a, b in zip(pops, pops[1:]):
            end = a.ret if a.ret is not None else INF
            if b.call < end:
                errors += 1
                report("harness", "proc %s has two outstanding ops:\n  %s\n"
                       "  %s" % (proc, describe(a), describe(b)))
    written = {}
    for o in ops:
        if o.wl in WORKLOADS and o.is_write:
            k = (o.wl, o.value)
            if k in written:
                errors += 1
                report("harness", "value written twice (values must be "
                       "unique):\n  %s\n  %s" % (describe(written[k]),
                                                 describe(o)))
            else:
                written[k] = o
    return errors, len(by_proc)


# ------------------------------------------------------------------ WGL ----

class Budget:
    """Time and step limits for one WGL search."""

    def __init__(self, deadline=INF, max_steps=None):
        self.deadline = deadline
        self.max_steps = max_steps if max_steps is not None else INF


def wgl(entries, budget=None, unique_writes=False):
    """Wing-Gong-Lowe search over one register's sub-history.

    entries: list of (call, ret, is_write, value); ret may be +inf. The
    register starts at None; a write sets the value, a read must return it.
    unique_writes: no two writes write the same (read) value; then a write
    is only tried once every read of the current value is linearized, since
    such a read could never be satisfied later (a sound prune).
    Returns (verdict, detail): verdict is LINEARIZABLE, ILLEGAL or UNKNOWN;
    for ILLEGAL, detail has the deepest partial linearization found:
    {"depth", "order" (entry indexes, oldest first), "state", "pending"
    (entry indexes not linearized), "blocking" (the pending entry returning
    first)}; detail["steps"] is always set.
    """
    if budget is None:
        budget = Budget()
    n = len(entries)
    if n == 0:
        return LINEARIZABLE, {"steps": 0}
    events = [(c, 0, i) for i, (c, _r, _w, _v) in enumerate(entries)]
    events += [(r, 1, i) for i, (_c, r, _w, _v) in enumerate(entries)]
    events.sort()
    size = 2 * n + 1
    nxt = [-1] * size          # node 0 is the list head
    prv = [-1] * size
    node_op = [0] * size
    is_call = [False] * size
    match = [0] * size         # call node -> its return node
    call_node = [0] * n
    prev = 0
    for k, (_t, kind, i) in enumerate(events, 1):
        nxt[prev] = k
        prv[k] = prev
        prev = k
        node_op[k] = i
        if kind == 0:
            is_call[k] = True
            call_node[i] = k
        else:
            match[call_node[i]] = k
    nxt[prev] = -1
    is_write = [w for (_c, _r, w, _v) in entries]
    # values as small ints: 0 is the initial null
    ids = {None: 0}
    value = [ids.setdefault(v, len(ids)) for (_c, _r, _w, v) in entries]
    # reads_left[v]: reads of v not linearized yet (prune: see docstring)
    reads_left = [0] * (len(ids) + 1)
    if unique_writes:
        for i in range(n):
            if not is_write[i]:
                reads_left[value[i]] += 1
    names = {v: k for k, v in ids.items()}
    bit = [1 << i for i in range(n)]

    state = 0
    linearized = 0
    stack = []                 # (call node, state before, forced)
    cache = set()
    best_depth, best_order, best_state, best_lin = -1, [], 0, 0
    steps = 0
    deadline, max_steps = budget.deadline, budget.max_steps
    check_at = min(4096, max_steps + 1)
    clock = time.perf_counter
    e = nxt[0]
    while nxt[0] != -1:
        steps += 1
        if steps >= check_at:
            if steps > max_steps or clock() > deadline:
                return UNKNOWN, {"steps": steps, "depth": best_depth}
            check_at = min(steps + 4096, max_steps + 1)
        if is_call[e]:
            i = node_op[e]
            if is_write[i]:
                if reads_left[state]:
                    e = nxt[e]
                    continue
                s2 = value[i]
                forced = False
            elif value[i] == state:
                s2 = state
                forced = True
            else:
                e = nxt[e]
                continue
            nl = linearized | bit[i]
            key = (nl, s2)
            if key not in cache:
                cache.add(key)
                stack.append((e, state, forced))
                if forced and unique_writes:
                    reads_left[state] -= 1
                state = s2
                linearized = nl
                # lift: unlink the call and its return
                r = match[e]
                p, q = prv[e], nxt[e]
                nxt[p] = q
                if q != -1:
                    prv[q] = p
                p, q = prv[r], nxt[r]
                nxt[p] = q
                if q != -1:
                    prv[q] = p
                if len(stack) > best_depth:
                    best_depth = len(stack)
                    best_order = stack[-8:]
                    best_state = state
                    best_lin = linearized
                e = nxt[0]
                continue
            if not forced:
                e = nxt[e]
                continue
            # a matching read whose successor state was already explored:
            # nothing else at this level can succeed either, backtrack.
        # a return of a pending op (or a dead matching read): backtrack
        while True:
            if not stack:
                pending = [i for i in range(n) if not best_lin >> i & 1]
                blocking = min(pending, key=lambda i: (entries[i][1],
                                                       entries[i][0]))
                return ILLEGAL, {
                    "steps": steps, "depth": best_depth,
                    "order": [node_op[c] for (c, _s, _f) in best_order],
                    "state": names[best_state], "pending": pending,
                    "blocking": blocking}
            c, state, forced = stack.pop()
            linearized ^= bit[node_op[c]]
            if forced and unique_writes:
                reads_left[state] += 1
            # unlift: relink the return, then the call
            r = match[c]
            p, q = prv[r], nxt[r]
            nxt[p] = r
            if q != -1:
                prv[q] = r
            p, q = prv[c], nxt[c]
            nxt[p] = c
            if q != -1:
                prv[q] = c
            if not forced:
                e = nxt[c]
                break
    return LINEARIZABLE, {"steps": steps}


class _Unread:
    """The state left by an ok write whose value no read returned."""

    def __repr__(self):
        return "<a value no read returned>"


UNREAD = _Unread()


def check_register_key(writes, reads, fail_values=frozenset(), budget=None):
    """Linearizability of one key.

    writes: ok and info write Ops; reads: the ok read Ops to check;
    fail_values: values of fail writes to the key. Returns (verdict, why)
    where why is None or a dict with "kind" ("phantom", "failed_but_present",
    "wgl") and the ops involved, for the report.
    """
    by_value = {w.value: w for w in writes}
    for r in reads:
        if r.value is not None and r.value not in by_value:
            kind = ("failed_but_present" if r.value in fail_values
                    else "phantom")
            return ILLEGAL, {"kind": kind, "op": r}
    observed = {r.value for r in reads}
    entries, src = [], []
    for w in writes:
        if w.type == "info":
            if w.value not in observed:
                continue    # can always be placed last: irrelevant
            entries.append((w.call, INF, True, w.value))
        else:
            v = w.value if w.value in observed else UNREAD
            entries.append((w.call, w.ret, True, v))
        src.append(w)
    for r in reads:
        entries.append((r.call, r.ret, False, r.value))
        src.append(r)
    written = [w.value for w in writes if w.value in observed]
    verdict, detail = wgl(entries, budget,
                          unique_writes=len(written) == len(set(written)))
    if verdict != ILLEGAL:
        return verdict, ({"kind": "unknown", "ops": len(entries),
                          "steps": detail["steps"]}
                         if verdict == UNKNOWN else None)
    state = detail["state"]
    return ILLEGAL, {
        "kind": "wgl", "ops": len(entries), "depth": detail["depth"],
        "prefix": [src[i] for i in detail["order"]],
        "state": state,
        "state_op": by_value.get(state) if isinstance(state, str) else None,
        "blocking": src[detail["blocking"]],
        "pending": [src[i] for i in detail["pending"]],
    }


def _explain_register(key, why, level):
    if why["kind"] == "phantom":
        return ("key %s (%s reads): NOT LINEARIZABLE: read of a value no "
                "write attempted:\n  %s" % (key, level, describe(why["op"])))
    if why["kind"] == "failed_but_present":
        return ("key %s (%s reads): NOT LINEARIZABLE: read of a value whose "
                "write failed:\n  %s" % (key, level, describe(why["op"])))
    if why["kind"] == "unknown":
        return ("key %s (%s reads): UNKNOWN: search budget exhausted after "
                "%d steps on %d ops" % (key, level, why["steps"], why["ops"]))
    lines = ["key %s (%s reads): NOT LINEARIZABLE (%d ops; the longest "
             "linearizable prefix holds %d)" % (key, level, why["ops"],
                                                max(why["depth"], 0))]
    b = why["blocking"]
    lines.append("  first offending op (nothing that may precede its return "
                 "can be linearized):\n    %s" % describe(b))
    st = why["state"]
    if st is None:
        lines.append("  register state there: null (initial)")
    elif st is UNREAD:
        lines.append("  register state there: a value no read returned")
    else:
        lines.append("  register state there: %s" % json.dumps(st))
    if why["prefix"]:
        lines.append("  last ops of that prefix:")
        lines.extend("    " + describe(o) for o in why["prefix"])
    if st is not UNREAD:
        waiting = [o for o in why["pending"] if o.f == "read"
                   and o.value == st and o is not b]
        if waiting:
            lines.append("  pending reads that still have to return that "
                         "value (so no other write can come first):")
            lines.extend("    " + describe(o) for o in waiting[:8])
    cands = [o for o in why["pending"] if o is not b and o.call <= b.ret]
    if cands:
        lines.append("  other pending ops concurrent with it:")
        lines.extend("    " + describe(o) for o in cands[:8])
        if len(cands) > 8:
            lines.append("    ... %d more" % (len(cands) - 8))
    return "\n".join(lines)


def _stale_reads(ok_writes, by_value, reads):
    """Count stale reads among `reads` (see the module docstring)."""
    ws = sorted(ok_writes, key=lambda w: w.ret)
    rets = [w.ret for w in ws]
    maxcall, m = [], -INF
    for w in ws:
        m = max(m, w.call)
        maxcall.append(m)
    stale = []
    for r in reads:
        k = bisect.bisect_left(rets, r.call)   # writes with ret < r.call
        if k == 0:
            continue
        if r.value is None:
            stale.append((r, None, ws[k - 1]))
            continue
        w = by_value.get(r.value)
        if w is None:
            continue        # phantom or failed write: a violation elsewhere
        if w.eff_ret() < maxcall[k - 1]:
            newer = next(x for x in ws[:k] if x.call > w.eff_ret())
            stale.append((r, w, newer))
    return stale


def check_registers(ops, budget_s, key_budget_s, max_steps, report):
    by_key = defaultdict(list)
    for o in ops:
        by_key[o.key].append(o)
    out = {"keys": len(by_key), "ops": 0, "violations": 0, "unknown": 0,
           "linearizable": True, "phantom": 0, "failed_but_present": 0,
           "leader": {"keys": 0, "ops": 0, "violations": 0, "unknown": 0}}
    stale, stale_leader = 0, 0
    # Small keys first, so one hard key cannot starve the rest.
    jobs = []
    for key, kops in by_key.items():
        writes = [o for o in kops if o.f == "write" and o.type != "fail"]
        fails = {o.value for o in kops if o.f == "write" and o.type == "fail"}
        reads = {c: [o for o in kops if o.f == "read" and o.type == "ok"
                     and o.consistency == c] for c in ("linearizable",
                                                       "leader")}
        jobs.append((len(writes) + len(reads["linearizable"]), key, writes,
                     fails, reads))
        ok_writes = [w for w in writes if w.type == "ok"]
        by_value = {w.value: w for w in writes}
        for level in ("linearizable", "leader"):
            for r, w, newer in _stale_reads(ok_writes, by_value,
                                            reads[level]):
                if level == "linearizable":
                    stale += 1
                else:
                    stale_leader += 1
                report("stale read" if level == "linearizable"
                       else "stale leader read",
                       "%s\n  returned %s\n  but this ok write completed "
                       "before the read began%s:\n  %s"
                       % (describe(r), "the value of " + describe(w) if w
                          else "null (the initial state)",
                          " and began after that one completed" if w else "",
                          describe(newer)))
    jobs.sort(key=lambda j: j[0])
    start = time.perf_counter()
    total_deadline = start + budget_s
    key_budget = key_budget_s if key_budget_s is not None else budget_s
    for level, res in (("linearizable", out), ("leader", out["leader"])):
        for _size, key, writes, fails, reads in jobs:
            rs = reads[level]
            if level == "leader":
                if not rs:
                    continue
                res["keys"] += 1
            res["ops"] += len(writes) + len(rs)
            now = time.perf_counter()
            budget = Budget(min(total_deadline, now + key_budget), max_steps)
            verdict, why = check_register_key(writes, rs, fails, budget)
            if verdict == LINEARIZABLE:
                continue
            kind = "register" if level == "linearizable" else "leader register"
            report(kind, _explain_register(key, why, level))
            if verdict == UNKNOWN:
                res["unknown"] += 1
            else:
                res["violations"] += 1
                if level == "linearizable" and why["kind"] in (
                        "phantom", "failed_but_present"):
                    out[why["kind"]] += 1
    out["linearizable"] = out["violations"] == 0 and out["unknown"] == 0
    out["wgl_s"] = round(time.perf_counter() - start, 3)
    return out, stale, stale_leader


# -------------------------------------------------------------- append ----

def _prefix_max(pairs):
    """pairs sorted by their first item -> (keys, running max of second)."""
    keys, maxes, m = [], [], -INF
    for k, v in pairs:
        m = max(m, v)
        keys.append(k)
        maxes.append(m)
    return keys, maxes


def scan_reads(reads, writes, key, what, show, report, out):
    """Duplicates, phantoms (never written) and failed writes present in
    reads, each value reported once; counts added to out."""
    fail_values = {v for v, w in writes.items() if w.type == "fail"}
    dup, phantom, failed = set(), set(), set()
    for r in reads:
        vals = set(r.value)
        if len(vals) != len(r.value):
            seen = set()
            for v in r.value:
                if v in seen and v not in dup:
                    dup.add(v)
                    report("duplicated " + what, "%s twice in %s"
                           % (show(v), describe(r)))
                seen.add(v)
        for v in sorted(vals - writes.keys() - phantom):
            phantom.add(v)
            report("phantom " + what, "%s was never written to %s, read by "
                   "%s" % (show(v), key, describe(r)))
        for v in sorted((vals & fail_values) - failed):
            failed.add(v)
            report("failed %s present" % what, "%s\n  shows up in %s"
                   % (describe(writes[v]), describe(r)))
    out["duplicated"] += len(dup)
    out["phantom"] += len(phantom)
    out["failed_but_present"] += len(failed)


def check_appends(ops, excused, report):
    out = {"keys": 0, "acked": 0, "lost": 0, "bounded": 0, "duplicated": 0,
           "phantom": 0, "failed_but_present": 0, "order_violations": 0,
           "stale_appends": 0, "nonmonotonic": 0, "stale_appends_leader": 0,
           "nonmonotonic_leader": 0, "info_applied": 0, "missing_final": 0}
    by_key = defaultdict(list)
    for o in ops:
        by_key[o.key].append(o)
    out["keys"] = len(by_key)
    for key, kops in sorted(by_key.items()):
        appends = {o.value: o for o in kops if o.f == "append"}
        ok_apps = [o for o in appends.values() if o.type == "ok"]
        out["acked"] += len(ok_apps)
        reads = [o for o in kops if o.f == "read" and o.type == "ok"]
        finals = [r for r in reads if r.final]
        final = max(finals, key=lambda r: r.call) if finals else None

        # (c) every read is a prefix of the longest one
        longest_r = max(reads, key=lambda r: len(r.value)) if reads else None
        longest = longest_r.value if reads else []
        pos = {}
        for i, v in enumerate(longest):
            pos.setdefault(v, i)
        is_prefix = {}
        for r in reads:
            ok = r.value == longest[:len(r.value)]
            is_prefix[id(r)] = ok
            if not ok:
                out["order_violations"] += 1
                report("append order", "%s\n  is not a prefix of the longest "
                       "read of %s (%d values)" % (describe(r), key,
                                                   len(longest)))

        # (a) duplicates, (b) phantoms and fail appends, over every read; a
        # prefix of the longest read holds nothing the longest does not, so
        # only the longest and the non-prefix reads need scanning.
        scan = ([longest_r] if reads else []) + [
            r for r in reads if not is_prefix[id(r)]]
        scan_reads(scan, appends, key, "append", str, report, out)

        # (a) loss against the final read
        if final is None:
            if ok_apps:
                out["missing_final"] += 1
                report("missing final read", "append key %s has %d acked "
                       "appends but no ok final read" % (key, len(ok_apps)))
        else:
            present = set(final.value)
            for a in sorted(ok_apps, key=lambda a: a.ret):
                if a.value not in present:
                    if excused(a):
                        out["bounded"] += 1
                        report("bounded loss", "%s\n  is missing from the "
                               "final read (acked within the loss window "
                               "before a leader kill)" % describe(a))
                    else:
                        out["lost"] += 1
                        report("lost append", "%s\n  is missing from the "
                               "final read %s" % (describe(a), describe(final)))
            out["info_applied"] += sum(
                1 for a in appends.values()
                if a.type == "info" and a.value in present)
        if not reads:
            continue

        # (d) acked before the read began => present; (e) no going back
        acked = sorted((a.ret, pos.get(a.value, INF)) for a in ok_apps
                       if not excused(a))
        ack_rets, ack_maxpos = _prefix_max(acked)
        ok_by_ret = sorted(ok_apps, key=lambda a: a.ret)
        for level, s_key, n_key in (
                ("linearizable", "stale_appends", "nonmonotonic"),
                ("leader", "stale_appends_leader", "nonmonotonic_leader")):
            rs = [r for r in reads if r.consistency == level]
            for r in rs:
                k = bisect.bisect_left(ack_rets, r.call)
                if k == 0:
                    continue
                if is_prefix[id(r)] and ack_maxpos[k - 1] < len(r.value):
                    continue    # holds every value placed before its end
                have = set(r.value)
                missing = [a for a in ok_by_ret
                           if a.ret < r.call and a.value not in have
                           and not excused(a)]
                if missing:
                    out[s_key] += 1
                    report("stale append read" if level == "linearizable"
                           else "stale leader append read",
                           "%s\n  misses %d append(s) acked before it began, "
                           "e.g. %s" % (describe(r), len(missing),
                                        describe(missing[0])))
            by_ret = sorted(rs, key=lambda r: r.ret)
            r_rets, r_maxlen = _prefix_max((r.ret, len(r.value))
                                           for r in by_ret)
            for r in rs:
                k = bisect.bisect_left(r_rets, r.call)
                if k and r_maxlen[k - 1] > len(r.value):
                    out[n_key] += 1
                    earlier = next(x for x in by_ret[:k]
                                   if len(x.value) == r_maxlen[k - 1])
                    report("append read went backwards" if level ==
                           "linearizable" else "leader append read went "
                           "backwards", "%s\n  has %d values, but this read "
                           "returned %d before it began:\n  %s"
                           % (describe(r), len(r.value), len(earlier.value),
                              describe(earlier)))
    return out


# ----------------------------------------------------------------- set ----

def check_sets(ops, excused, report):
    out = {"keys": 0, "acked": 0, "lost": 0, "bounded": 0, "phantom": 0,
           "failed_but_present": 0, "duplicated": 0, "info_applied": 0,
           "missing_final": 0}
    by_key = defaultdict(list)
    for o in ops:
        by_key[o.key].append(o)
    out["keys"] = len(by_key)
    for key, kops in sorted(by_key.items()):
        adds = {o.value: o for o in kops if o.f == "add"}
        ok_adds = [o for o in adds.values() if o.type == "ok"]
        out["acked"] += len(ok_adds)
        reads = [o for o in kops if o.f == "read_all" and o.type == "ok"]
        finals = [r for r in reads if r.final]
        final = max(finals, key=lambda r: r.call) if finals else None
        scan_reads(reads, adds, key, "set member", json.dumps, report, out)
        if final is None:
            if ok_adds:
                out["missing_final"] += 1
                report("missing final read", "set %s has %d acked adds but "
                       "no ok final read_all" % (key, len(ok_adds)))
            continue
        present = set(final.value)
        for a in sorted(ok_adds, key=lambda a: a.ret):
            if a.value not in present:
                if excused(a):
                    out["bounded"] += 1
                    report("bounded loss", "%s\n  is missing from the final "
                           "read_all (acked within the loss window before a "
                           "leader kill)" % describe(a))
                else:
                    out["lost"] += 1
                    report("lost add", "%s\n  is missing from the final "
                           "read_all %s" % (describe(a), describe(final)))
        out["info_applied"] += sum(1 for a in adds.values()
                                   if a.type == "info" and a.value in present)
    return out


# ---------------------------------------------------------- loss window ----

LEADER_FAULTS = ("kill", "stop", "partition", "disk-full", "fsync-eio",
                 "leader-change")
KILL_SLACK_MS = 200
# "leader-change" is logged when the harness sees a new serving leader,
# an election (≥ one election timeout) after the old one lost its quorum:
# what the old one accepted in the LEADER_CHANGE_BEFORE_MS before counts.
LEADER_CHANGE_BEFORE_MS = 3000


def leader_cut_off(e):
    """Does nemesis event e take the leader of its time out of the quorum?"""
    leader = e.get("leader")
    if e.get("event") not in LEADER_FAULTS or leader is None:
        return False
    if e["event"] != "partition":
        return leader in (e.get("nodes") or [])
    groups = e.get("groups")
    if not groups:  # ring, one-way: the leader may lose its quorum
        return True
    total = sum(len(g) for g in groups)
    return any(leader in g and 2 * len(g) <= total for g in groups)


def loss_excuser(events, window_ms, mode, after_ms=3000):
    """A predicate: may this acked write be lost (memory mode window)?

    A memory-mode leader acknowledges a write when it accepts it, before
    replication, so the writes it accepted but had not yet replicated when
    it was cut off are lost: acked within window_ms before the fault, or,
    for a leader that keeps running (paused, partitioned, disk-failed)
    while it still takes itself for the leader, within after_ms after it
    (it steps down after an election timeout without a quorum)."""
    if mode != "memory" or not events or not window_ms:
        return lambda op: False
    # A kill is logged just before its signals are sent (all nodes: one
    # after the other), so acks up to KILL_SLACK_MS after it still count.
    spans = [(e["t"] - window_ms * 1e6,
              e["t"] + (KILL_SLACK_MS if e["event"] == "kill"
                        else after_ms) * 1e6)
             for e in events if leader_cut_off(e)
             and e["event"] != "leader-change"]
    spans += [(e["t"] - LEADER_CHANGE_BEFORE_MS * 1e6,
               e["t"] + KILL_SLACK_MS * 1e6)
              for e in events if e.get("event") == "leader-change"
              and e.get("leader") is not None]
    # A lossy network (netem) can depose the leader at any moment until it
    # heals: its whole span, and a window after, counts.
    heals = sorted(e["t"] for e in events if e.get("event") == "heal")
    for e in events:
        if e.get("event") == "netem":
            end = next((h for h in heals if h >= e["t"]), e["t"])
            spans.append((e["t"] - window_ms * 1e6,
                          end + after_ms * 1e6))
    spans.sort()
    if not spans:
        return lambda op: False

    def excused(op):
        return any(lo <= op.ret <= hi for lo, hi in spans)
    return excused


# ---------------------------------------------------------------- main ----

def check_history(ops, events=None, mode=None, loss_window_ms=None,
                  wgl_budget_s=30.0, wgl_key_budget_s=None,
                  wgl_max_steps=None, stream=sys.stderr):
    """Run every check on a list of Ops; returns the result dict."""
    if mode is not None and mode not in MODES:
        raise HistoryError("mode must be one of %s" % "|".join(MODES))
    report = Reporter(stream)
    if ops:
        _T0[0] = min(o.call for o in ops)
    harness_errors, procs = check_harness(ops, report)
    by_wl = defaultdict(list)
    ignored = 0
    for o in ops:
        if o.wl in WORKLOADS:
            by_wl[o.wl].append(o)
        else:
            ignored += 1
    if ignored:
        report("note", "%d ops of other workloads (%s) are not checked here"
               % (ignored, ", ".join(sorted({o.wl for o in ops
                                             if o.wl not in WORKLOADS}))))
    excused = loss_excuser(events, loss_window_ms, mode)
    reg, stale, stale_leader = check_registers(
        by_wl["register"], wgl_budget_s, wgl_key_budget_s, wgl_max_steps,
        report)
    app = check_appends(by_wl["append"], excused, report)
    st = check_sets(by_wl["set"], excused, report)
    memory = mode == "memory"
    reg["gated"] = not memory
    result = {
        "ops": len(ops), "procs": procs, "harness_errors": harness_errors,
        "mode": mode, "register": reg, "stale_reads": stale,
        "stale_reads_leader": stale_leader, "append": app, "set": st,
        "acked_writes_lost": app["lost"] + st["lost"],
        "bounded_losses": app["bounded"] + st["bounded"],
    }
    if ignored:
        result["ignored_ops"] = ignored
    gates = [
        ("harness_errors", harness_errors == 0),
        ("acked_writes_lost", result["acked_writes_lost"] == 0),
        ("register.phantom", reg["phantom"] == 0),
        ("register.failed_but_present", reg["failed_but_present"] == 0),
    ]
    if not memory:
        gates += [("register.violations", reg["violations"] == 0),
                  ("register.unknown", reg["unknown"] == 0),
                  ("stale_reads", stale == 0),
                  ("append.stale_appends", app["stale_appends"] == 0)]
    for k in ("duplicated", "phantom", "failed_but_present",
              "order_violations", "nonmonotonic", "missing_final"):
        gates.append(("append." + k, app[k] == 0))
    for k in ("phantom", "failed_but_present", "duplicated", "missing_final"):
        gates.append(("set." + k, st[k] == 0))
    failed = [name for name, ok in gates if not ok]
    result["failed_gates"] = failed
    result["ok"] = not failed
    return result


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Check runvault fault-test histories (see the module "
        "docstring for the checks and gates).")
    p.add_argument("history", nargs="+", help="JSONL history file(s); - for "
                   "stdin; several files are merged")
    p.add_argument("--nemesis", "--events", dest="nemesis",
                   help="nemesis events JSONL (for --allow-loss-window-ms)")
    p.add_argument("--mode", choices=MODES, help="durability mode of the "
                   "run (memory relaxes the ack-implies-visible gates)")
    p.add_argument("--allow-loss-window-ms", type=float, default=None,
                   help="memory mode: writes acked within W ms before a kill "
                   "of the leader may be lost (needs --nemesis)")
    p.add_argument("--wgl-budget-s", type=float, default=30.0,
                   help="total time for the register search (default 30)")
    p.add_argument("--wgl-key-budget-s", type=float, default=None,
                   help="time for one key (default: the total)")
    p.add_argument("--wgl-max-steps", type=int, default=None,
                   help="search steps per key before giving up (unknown)")
    p.add_argument("--pretty", action="store_true", help="indent the JSON")
    p.add_argument("--quiet", action="store_true", help="no stderr report")
    args = p.parse_args(argv)
    try:
        ops = load_history(args.history)
        events = load_events(args.nemesis) if args.nemesis else None
        if args.allow_loss_window_ms is not None and args.mode != "memory":
            print("note: --allow-loss-window-ms only applies in --mode "
                  "memory; ignored", file=sys.stderr)
        if args.allow_loss_window_ms is not None and events is None:
            print("note: --allow-loss-window-ms needs --nemesis; ignored",
                  file=sys.stderr)
        result = check_history(
            ops, events, args.mode, args.allow_loss_window_ms,
            args.wgl_budget_s, args.wgl_key_budget_s, args.wgl_max_steps,
            stream=None if args.quiet else sys.stderr)
    except HistoryError as e:
        print("check.py: bad input: %s" % e, file=sys.stderr)
        print(json.dumps({"ok": False, "error": str(e)}))
        return 2
    print(json.dumps(result, indent=2 if args.pretty else None))
    if not result["ok"] and not args.quiet:
        print("FAILED gates: %s" % ", ".join(result["failed_gates"]),
              file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
