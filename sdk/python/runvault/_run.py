"""Run: the client side of one tracked run.

Threads: the caller's thread(s) call log/log_params/...; they validate the
input and append it to a bounded in-memory queue. One background sender
thread turns the queue into requests (a batch is formed and given its
idempotency seq in one step under the lock, so seqs leave in queue order),
sends them one at a time in seq order, and spools to disk what the cluster
does not take. The server keeps a per-client high-water seq, so requests
of one client must arrive in seq order: nothing is ever sent live while
older records wait in the spool, and when the spool is written the batch
in flight goes in first.
"""

import atexit
import logging
import math
import mimetypes
import numbers
import os
import sys
import threading
import time
import urllib.parse
import weakref
from collections import deque

from . import _limits, _spool
from ._auth import auth_error, is_auth_status, resolve_token
from ._errors import (AuthError, RunExistsError, RunNotFoundError,
                      RunvaultError)
from ._ids import new_client_id, new_run_id
from ._transport import (DEFAULT_ENDPOINT, OK, PERMANENT, Transport)

log = logging.getLogger("runvault")

# Server limits (DESIGN §2, the HTTP contract) come from GET /api/config
# through _limits.get() (cached; this release's values while offline). Log
# lines per request are not published there: fixed here.
MAX_LINES = 1000
STATUSES = ("FINISHED", "FAILED", "KILLED", "RUNNING", "SCHEDULED", "CRASHED")

_uncaught = [False]
_prev_excepthook = sys.excepthook


def _excepthook(tp, val, tb):
    _uncaught[0] = True
    _prev_excepthook(tp, val, tb)


sys.excepthook = _excepthook
_live_runs = weakref.WeakSet()


@atexit.register
def _finish_all():
    for r in list(_live_runs):
        try:
            r.finish("FAILED" if _uncaught[0] else "FINISHED")
        except Exception:
            pass


def _check_key(key, lim, what="key"):
    if not isinstance(key, str):
        raise TypeError("%s must be a str, not %s" % (what, type(key).__name__))
    n = len(key.encode("utf-8"))
    if n == 0 or n > lim.max_key_bytes:
        raise ValueError("%s %r: must be 1..%d bytes" % (what, key[:40],
                                                         lim.max_key_bytes))


def _check_value(k, v, limit, what):
    if len(v.encode("utf-8")) > limit:
        raise ValueError("%s %r: value longer than %d bytes" % (what, k, limit))


def _metric_value(key, v):
    """A JSON value for a metric: float, or "NaN"/"Infinity"/"-Infinity"."""
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)) or isinstance(v, numbers.Real):
        try:
            f = float(v)
        except (OverflowError, ValueError, TypeError):
            raise TypeError("metric %r: %r is not representable as a double"
                            % (key, v)) from None
    elif hasattr(v, "__float__") and not isinstance(v, (str, bytes)):
        # e.g. a 0-d numpy array or a torch scalar tensor.
        try:
            f = float(v)
        except Exception:
            raise TypeError("metric %r: %s is not a number"
                            % (key, type(v).__name__)) from None
    else:
        raise TypeError("metric %r: %s is not a number" % (key,
                                                           type(v).__name__))
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    return f


class _Batch:
    """One request: its idempotency key and body, ready to send."""
    __slots__ = ("seq", "key", "method", "path", "body", "ctype", "points",
                 "spooled")

    def __init__(self, seq, key, method, path, body, ctype, points):
        self.seq, self.key, self.method, self.path = seq, key, method, path
        self.body, self.ctype, self.points = body, ctype, points
        self.spooled = False

    def encoded(self):
        if isinstance(self.body, (bytes, bytearray)):
            return bytes(self.body)
        return _json_bytes(self.body)

    def spool_line(self):
        return _spool.encode_record(self.key, self.method, self.path,
                                    self.body, self.points, self.ctype)


def _json_bytes(obj):
    import json
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _key_from(key):
    try:
        cid, seq = key.split("/", 1)
        return int(cid), int(seq)
    except (AttributeError, ValueError):
        return 0, 0


class Run:
    """A run being logged. Made by runvault.init(); use it as a context
    manager or call finish()."""

    def __init__(self, *, run_id, project, experiment, name, transport,
                 spool, client_id, flush_interval, max_queue_points,
                 max_block, offline_after, query_timeout):
        self.run_id = run_id
        self.project = project
        self.experiment = experiment
        self.name = name
        self.client_id = client_id
        self.resumed = False
        self.offline_at_init = False
        self.stats = {"points_logged": 0, "points_acked": 0,
                      "batches_sent": 0, "retries": 0, "spooled": 0,
                      "dropped": 0, "points_dropped": 0,
                      "spool_replayed": 0, "max_ack_gap_s": 0.0}
        self._t = transport
        self._t.stats = self.stats
        # Replaced whole (never modified) by init and the sender thread.
        self._lim = _limits.DEFAULT
        self._spool = spool
        self._seq = 0
        self._step = 0
        self._params = {}
        self._flush_interval = flush_interval
        self._max_queue = max_queue_points
        self._max_block = max_block
        self._offline_after = offline_after
        self._query_timeout = query_timeout
        self._cv = threading.Condition(threading.Lock())
        self._q = deque()
        self._q_points = 0
        self._q_bytes = 0
        self._q_since = None  # monotonic time the queue became non-empty
        self._inflight = None
        self._offline = False
        self._offline_delay = 0.1
        self._stopping = False
        self._abandon = False
        self._flushers = 0
        self._finished = False
        self._acked_hw = {}  # client_id -> highest seq counted as acked
        self._last_ack = None
        self._thread = None
        self._key_len = {}
        self._wq = ""  # "?durability=..." on every write
        self.last_index = 0
        # Set once the cluster answered 401/403 to a write: the sender has
        # stopped, what was not sent is in the spool, and every later call
        # raises it.
        self._auth_error = None

    # -- set-up (called by init before the sender starts) ------------------

    def _next_key(self):
        self._seq += 1
        return self._seq, "%d/%d" % (self.client_id, self._seq)

    def _start(self):
        self._thread = threading.Thread(target=self._loop,
                                        name="runvault-sender-%s" % self.run_id,
                                        daemon=True)
        self._thread.start()
        _live_runs.add(self)

    # -- public API ---------------------------------------------------------

    def log(self, data, step=None, timestamp=None, context=None):
        """Log metric values {key: number} at step (default: the run's step
        counter, which then moves to step + 1). Never waits for the
        network; blocks at most max_block seconds when the queue is full,
        then spills the queue to the spool."""
        if not hasattr(data, "items"):
            raise TypeError("log() takes a dict of {key: number}")
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, numbers.Integral):
                raise TypeError("step must be an int")
            step = int(step)
            if not -(1 << 63) <= step < (1 << 63):
                raise ValueError("step out of int64 range")
        ts = int(time.time() * 1000) if timestamp is None else int(timestamp)
        if context is not None:
            _check_key(context, self._lim, "context")
        entries = []
        nbytes = 0
        klen = self._key_len
        for k, v in data.items():
            n = klen.get(k)
            if n is None:
                _check_key(k, self._lim)
                n = len(_json_bytes(k)) + 96
                if context is not None:
                    n += len(_json_bytes(context)) + 12
                klen[k] = n
            entries.append((k, _metric_value(k, v), n))
            nbytes += n
        if not entries:
            return
        with self._cv:
            if step is None:
                step = self._step
            self._step = step + 1
            entries = [("m", k, v, step, ts, context, n)
                       for k, v, n in entries]
            self._enqueue_locked(entries, len(entries), nbytes)
            self.stats["points_logged"] += len(entries)

    def log_params(self, params):
        """Log params {key: value}; values are str()'d. A param is
        write-once: logging it again with another value raises ValueError."""
        if not hasattr(params, "items"):
            raise TypeError("log_params() takes a dict")
        entries = []
        nbytes = 0
        lim = self._lim
        with self._cv:
            for k, v in params.items():
                _check_key(k, lim, "param key")
                v = str(v)
                _check_value(k, v, lim.max_param_value_bytes, "param")
                old = self._params.get(k)
                if old is not None and old != v:
                    raise ValueError("param %r was already logged as %r "
                                     "(params are write-once)" % (k, old))
            for k, v in params.items():
                v = str(v)
                if self._params.get(k) == v:
                    continue
                self._params[k] = v
                n = len(_json_bytes(k)) + len(_json_bytes(v)) + 4
                entries.append(("p", k, v, n))
                nbytes += n
            if entries:
                self._enqueue_locked(entries, 0, nbytes)

    def set_tags(self, tags):
        """Set tags {key: value} (values str()'d, last write wins)."""
        if not hasattr(tags, "items"):
            raise TypeError("set_tags() takes a dict")
        entries = []
        nbytes = 0
        lim = self._lim
        for k, v in tags.items():
            _check_key(k, lim, "tag key")
            v = str(v)
            _check_value(k, v, lim.max_tag_value_bytes, "tag")
            n = len(_json_bytes(k)) + len(_json_bytes(v)) + 4
            entries.append(("t", k, v, n))
            nbytes += n
        if entries:
            with self._cv:
                self._enqueue_locked(entries, 0, nbytes)

    def log_text(self, text, stream="stdout", timestamp=None):
        """Append log lines (text split on newlines) to the run's logs."""
        if stream not in ("stdout", "stderr"):
            raise ValueError("stream must be 'stdout' or 'stderr'")
        if not isinstance(text, str):
            raise TypeError("text must be a str")
        ts = int(time.time() * 1000) if timestamp is None else int(timestamp)
        lines = text.split("\n")
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()
        entries = []
        nbytes = 0
        budget = self._lim.body_budget
        for line in lines:
            n = len(_json_bytes(line)) + 60
            if n > budget:
                raise ValueError("a log line longer than %d bytes" % budget)
            entries.append(("l", ts, stream, line, n))
            nbytes += n
        with self._cv:
            self._enqueue_locked(entries, 0, nbytes)

    log_lines = log_text

    def log_artifact(self, path, name=None, content_type=None):
        """Upload the file at path as artifact name (default: its base
        name). The bytes are read now; the upload happens in order with
        the other writes."""
        limit = self._lim.max_artifact_put_bytes
        with open(path, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ValueError("artifact %s is larger than %d bytes"
                             % (path, limit))
        name = name or os.path.basename(path)
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise ValueError("bad artifact name %r" % name)
        ctype = content_type or mimetypes.guess_type(name)[0] \
            or "application/octet-stream"
        with self._cv:
            self._enqueue_locked([("a", name, data, ctype, len(data))], 0,
                                 len(data))

    def set_status(self, status):
        if status not in STATUSES:
            raise ValueError("status must be one of %s" % (STATUSES,))
        with self._cv:
            self._enqueue_locked([("s", status, 40)], 0, 40)

    def flush(self, timeout=30.0):
        """Wait (at most timeout s) until everything logged so far is
        acknowledged or, with the cluster unreachable, spooled to disk.
        True if so."""
        deadline = time.monotonic() + timeout
        with self._cv:
            self._flushers += 1
            self._cv.notify_all()
            try:
                while not self._drained_locked():
                    if self._auth_error is not None:
                        raise self._auth_error
                    rem = deadline - time.monotonic()
                    if rem <= 0 or not self._thread.is_alive():
                        return self._drained_locked()
                    self._cv.wait(min(rem, 0.5))
                return True
            finally:
                self._flushers -= 1

    def finish(self, status="FINISHED", timeout=60.0):
        """Flush, set the final status, wait (bounded) for the
        acknowledgements and stop the sender. What the cluster did not
        acknowledge stays in the spool and is replayed by the next
        init(run_id=..., resume='allow') or runvault.sync()."""
        if self._finished:
            return
        if status not in STATUSES:
            raise ValueError("status must be one of %s" % (STATUSES,))
        self._finished = True
        _live_runs.discard(self)
        deadline = time.monotonic() + timeout
        with self._cv:
            self._enqueue_locked([("s", status, 40)], 0, 40, force=True)
            self._stopping = True
            self._last_pass_failed = False  # one more try before giving up
            self._cv.notify_all()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            # Out of time: keep what is left on disk and stop the sender.
            with self._cv:
                self._abandon = True
                self._spill_locked()
                self._cv.notify_all()
            self._thread.join(self._t.timeout + 5.0)
        if self._auth_error is not None:
            with self._cv:
                self._spill_locked()  # The final status too.
        left = self._spool.pending()
        if left:
            log.warning("runvault: run %s: %d bytes of writes are kept in the "
                        "spool %s; they are sent by the next init(run_id=%r) "
                        "or runvault.sync()", self.run_id,
                        self._spool.size - self._spool.pos, self._spool.dir,
                        self.run_id)
        if not self._thread.is_alive():
            self._spool.close(remove_if_empty=True)
            self._t.close()
        if self._auth_error is not None:
            raise self._auth_error

    def __enter__(self):
        return self

    def __exit__(self, tp, val, tb):
        try:
            self.finish("FAILED" if tp is not None else "FINISHED")
        except AuthError:
            if tp is None:
                raise
        return False

    def get(self, consistency="linearizable"):
        """The run as the server shows it (GET /api/v2/runs/{id})."""
        r = self._query("GET", "/api/v2/runs/%s?consistency=%s"
                        % (urllib.parse.quote(self.run_id), consistency))
        return r.doc.get("run") if isinstance(r.doc, dict) else None

    # -- queue --------------------------------------------------------------

    def _enqueue_locked(self, entries, n_points, nbytes, force=False):
        if self._auth_error is not None and not force:
            raise self._auth_error
        if self._finished and not force:
            raise RunvaultError("run %s is finished" % self.run_id)
        deadline = None
        lim = self._lim
        while (self._q and not self._abandon and
               (len(self._q) + len(entries) > self._max_queue or
                self._q_bytes + nbytes > 64 * lim.body_budget)):
            now = time.monotonic()
            if deadline is None:
                deadline = now + self._max_block
            if now >= deadline or not self._thread.is_alive():
                self._spill_locked()
                break
            self._cv.wait(deadline - now)
        was_empty = not self._q
        self._q.extend(entries)
        self._q_points += n_points
        self._q_bytes += nbytes
        if was_empty:
            self._q_since = time.monotonic()
            self._cv.notify_all()
        elif (self._q_points >= lim.max_metrics_per_batch or
              self._q_bytes >= lim.body_budget) and \
                self._q_points - n_points < lim.max_metrics_per_batch:
            self._cv.notify_all()

    def _ready_locked(self):
        if not self._q:
            return False
        if self._stopping or self._flushers or self._offline:
            return True
        lim = self._lim
        if self._q_points >= lim.max_metrics_per_batch or \
                self._q_bytes >= lim.body_budget:
            return True
        return time.monotonic() - self._q_since >= self._flush_interval

    def _drained_locked(self):
        if self._q or self._inflight is not None:
            return False
        return not self._spool.pending() or self._offline

    def _pop_locked(self):
        e = self._q.popleft()
        if e[0] == "m":
            self._q_points -= 1
            self._q_bytes -= e[6]
        else:
            self._q_bytes -= e[-1]
        if not self._q:
            self._q_since = None
            self._q_points = 0
            self._q_bytes = 0
        return e

    def _form_batch_locked(self):
        """Take the next request's worth of entries off the queue and give
        it the next seq. Caller holds the lock; the queue is non-empty."""
        q = self._q
        rid = urllib.parse.quote(self.run_id, safe="")
        kind = q[0][0]
        lim = self._lim
        budget = lim.body_budget
        if kind in "mpt":
            metrics, params, tags = [], {}, {}
            size = 40
            while q and q[0][0] in "mpt":
                e = q[0]
                if e[0] == "m":
                    n = e[6]
                    if len(metrics) >= lim.max_metrics_per_batch or \
                            size + n > budget:
                        break
                    self._pop_locked()
                    m = {"key": e[1], "value": e[2], "step": e[3],
                         "timestamp": e[4]}
                    if e[5] is not None:
                        m["context"] = e[5]
                    metrics.append(m)
                elif e[0] == "p":
                    n = e[3]
                    if e[1] in params:
                        n = 0
                    elif len(params) >= lim.max_params_per_batch or \
                            size + n > budget:
                        break
                    self._pop_locked()
                    params[e[1]] = e[2]
                else:
                    n = e[3]
                    if e[1] in tags:
                        n = 0
                    elif len(tags) >= lim.max_tags_per_batch or \
                            size + n > budget:
                        break
                    self._pop_locked()
                    tags[e[1]] = e[2]
                size += n
            body = {"metrics": metrics}
            if params:
                body["params"] = params
            if tags:
                body["tags"] = tags
            seq, key = self._next_key()
            return _Batch(seq, key, "POST",
                          "/api/v2/runs/%s/log-batch%s" % (rid, self._wq), body,
                          "application/json", len(metrics))
        if kind == "l":
            lines = []
            size = 20
            while q and q[0][0] == "l" and len(lines) < MAX_LINES and \
                    (not lines or size + q[0][4] <= budget):
                e = self._pop_locked()
                lines.append({"timestamp": e[1], "stream": e[2],
                              "text": e[3]})
                size += e[4]
            seq, key = self._next_key()
            return _Batch(seq, key, "POST",
                          "/api/v2/runs/%s/logs%s" % (rid, self._wq),
                          {"lines": lines}, "application/json", 0)
        e = self._pop_locked()
        seq, key = self._next_key()
        if kind == "s":
            return _Batch(seq, key, "POST",
                          "/api/v2/runs/%s/status%s" % (rid, self._wq),
                          {"status": e[1]}, "application/json", 0)
        # Artifact.
        return _Batch(seq, key, "PUT", "/api/v2/runs/%s/artifacts/%s%s"
                      % (rid, urllib.parse.quote(e[1], safe="/"), self._wq),
                      e[2],
                      e[3], 0)

    def _spill_locked(self):
        """Write the batch in flight (if not yet on disk) and the whole
        queue to the spool, in seq order."""
        lines = []
        inflight = self._inflight
        if inflight is not None and not inflight.spooled:
            inflight.spooled = True
            lines.append(inflight.spool_line())
        while self._q:
            lines.append(self._form_batch_locked().spool_line())
        if lines:
            self._spool.append(lines)
            self.stats["spooled"] += len(lines)
            self._cv.notify_all()

    # -- acknowledgements ------------------------------------------------------

    def _count_ack(self, key, points, resp):
        cid, seq = _key_from(key)
        if seq <= self._acked_hw.get(cid, 0):
            return
        self._acked_hw[cid] = seq
        self.stats["points_acked"] += points
        self.stats["batches_sent"] += 1
        if isinstance(resp.doc, dict):
            idx = resp.doc.get("index")
            if isinstance(idx, int) and idx > self.last_index:
                self.last_index = idx
        now = time.monotonic()
        if self._last_ack is not None:
            gap = now - self._last_ack
            if gap > self.stats["max_ack_gap_s"]:
                self.stats["max_ack_gap_s"] = gap
        self._last_ack = now

    def _count_drop(self, key, points, resp, what):
        cid, seq = _key_from(key)
        if seq <= self._acked_hw.get(cid, 0):
            return
        self._acked_hw[cid] = seq
        self.stats["dropped"] += 1
        self.stats["points_dropped"] += points
        log.warning("runvault: run %s: %s %s refused, dropped (%d points): "
                    "%s", self.run_id, what, key, points, resp.describe())

    # -- sender -------------------------------------------------------------

    def _loop(self):
        try:
            self._loop_inner()
        except Exception:
            log.exception("runvault: run %s: sender stopped", self.run_id)
            with self._cv:
                try:
                    self._spill_locked()
                except Exception:
                    log.exception("runvault: spilling to the spool failed")
                self._cv.notify_all()

    def _loop_inner(self):
        while True:
            batch = None
            if not self._lim.from_server:
                # Offline at init: fetched again at most every RETRY_S.
                self._lim = _limits.get(self._t.endpoints,
                                        self._t.extra_headers,
                                        tls=self._t.tls)
            with self._cv:
                while True:
                    if self._abandon:
                        return
                    if self._spool.pending():
                        if self._stopping and self._offline and \
                                self._last_pass_failed and not self._q:
                            return
                        if self._offline:
                            self._spill_locked()
                        break
                    if self._ready_locked():
                        batch = self._form_batch_locked()
                        self._inflight = batch
                        self._cv.notify_all()
                        break
                    if self._stopping and not self._q:
                        return
                    if self._q:
                        wait = max(0.001, self._flush_interval -
                                   (time.monotonic() - self._q_since))
                    else:
                        wait = 1.0
                    self._cv.wait(wait)
            if batch is None:
                self._replay_one()
            else:
                self._send_live(batch)

    _last_pass_failed = False

    def _send_live(self, batch):
        r = self._t.request(batch.method, batch.path, batch.encoded(),
                            key=batch.key, content_type=batch.ctype,
                            deadline=time.monotonic() + self._offline_after)
        with self._cv:
            if r.outcome == PERMANENT and is_auth_status(r.status):
                self._auth_failed_locked(r)
                self._inflight = None
                return
            self._inflight = None
            if r.outcome == OK:
                self._count_ack(batch.key, batch.points, r)
            elif r.outcome == PERMANENT:
                self._count_drop(batch.key, batch.points, r, "batch")
            if r.outcome in (OK, PERMANENT):
                self._offline = False
                if batch.spooled and self._spool.head_key() == batch.key:
                    self._spool.advance()
            else:
                log.warning("runvault: run %s: cluster unreachable for "
                            "%.1f s (%s); spooling to %s", self.run_id,
                            self._offline_after, r.describe(),
                            self._spool.dir)
                self._offline = True
                self._last_pass_failed = True
                if not batch.spooled:
                    batch.spooled = True
                    self._spool.append([batch.spool_line()])
                    self.stats["spooled"] += 1
            self._cv.notify_all()

    def _replay_one(self):
        with self._cv:
            rec = self._spool.head()
            offline = self._offline
        if rec is None:
            return
        key = rec.get("key")
        if "corrupt" in rec or key is None:
            log.warning("runvault: run %s: unreadable spool record passed "
                        "over", self.run_id)
            with self._cv:
                self._spool.advance()
            return
        method, path, body, ctype = _spool.record_request(rec)
        if offline:
            r = self._t.request(method, path, body, key=key,
                                content_type=ctype, one_pass=True)
        else:
            r = self._t.request(method, path, body, key=key,
                                content_type=ctype,
                                deadline=time.monotonic() +
                                self._offline_after)
        with self._cv:
            if r.outcome == PERMANENT and is_auth_status(r.status):
                self._auth_failed_locked(r)
                return
            if r.outcome in (OK, PERMANENT):
                if r.outcome == OK:
                    self._count_ack(key, rec.get("points", 0), r)
                else:
                    self._count_drop(key, rec.get("points", 0), r,
                                     "spooled record")
                if self._spool.head_key() == key:
                    self._spool.advance()
                self.stats["spool_replayed"] += 1
                if self._offline:
                    log.warning("runvault: run %s: cluster reachable again; "
                                "replaying the spool", self.run_id)
                self._offline = False
                self._last_pass_failed = False
                self._offline_delay = 0.1
            else:
                if not self._offline:
                    log.warning("runvault: run %s: cluster unreachable (%s); "
                                "spooling to %s", self.run_id, r.describe(),
                                self._spool.dir)
                self._offline = True
                self._last_pass_failed = True
                self._spill_locked()
                if not self._stopping:
                    self._cv.wait(self._offline_delay)
                    self._offline_delay = min(
                        max(self._t.backoff_max, 0.2), self._offline_delay * 2)
            self._cv.notify_all()

    def _auth_failed_locked(self, r):
        """The cluster refused the token (401/403): not a transient failure
        and not a refusal of the data. Stop sending: the batch in flight
        and the queue go to the spool, kept for a replay with another
        token (init(run_id=..., token=...) or runvault.sync(token=...)),
        and every later call on the Run raises the error."""
        self._auth_error = auth_error("run %s" % self.run_id, r)
        log.error("runvault: %s; the writes not sent are kept in %s",
                  self._auth_error, self._spool.dir)
        self._spill_locked()
        self._abandon = True
        self._cv.notify_all()

    # -- queries --------------------------------------------------------------

    def _query(self, method, path, body=b""):
        """A read from the caller's thread on its own connection."""
        t = Transport(self._t.endpoints, timeout=self._query_timeout,
                      backoff_max=self._t.backoff_max, stats={},
                      tls=self._t.tls, token=self._t.token)
        try:
            r = t.request(method, path, body,
                          deadline=time.monotonic() + self._query_timeout)
        finally:
            t.close()
        if r.outcome != OK and is_auth_status(r.status):
            raise auth_error("%s %s" % (method, path), r)
        if r.outcome != OK:
            raise RunvaultError("%s %s: %s" % (method, path, r.describe()),
                                r.status,
                                (r.doc or {}).get("error_code", "")
                                if isinstance(r.doc, dict) else "")
        return r


def init(project, experiment, name=None, config=None, tags=None,
         resume="allow", run_id=None, endpoint=None, spool_dir=None,
         durability=None, user=None, timeout=10.0, offline_after=10.0,
         init_timeout=None, flush_interval=0.2, max_queue_points=100_000,
         max_block=1.0, backoff_max=1.0, token=None, ca_file=None):
    """Create (or resume) a run and return its Run.

    endpoint: comma-separated http endpoints (default $RUNVAULT_ENDPOINT,
    else http://127.0.0.1:7480), or https ones whose certificates ca_file
    (default $RUNVAULT_TLS_CA, else the system's CAs) verifies. config -> params (values str()'d), tags ->
    tags. resume: 'allow' (create or continue), 'must' (continue; raises
    RunNotFoundError if missing), 'never' (create; raises RunExistsError
    if it exists). run_id: default a new client-made ULID-style id.
    spool_dir: root of the offline spools (default $RUNVAULT_SPOOL_DIR,
    else ~/.runvault/spool); the run's spool is <spool_dir>/<run_id>/.
    durability: ask for a stricter mode than the node's ('memory',
    'buffered', 'strict'), sent as ?durability= on every write.
    offline_after: seconds of failed retries after which writes go to the
    spool; init waits at most init_timeout (default offline_after) for the
    cluster and otherwise spools the run's creation.
    token: the caller's token (default $RUNVAULT_TOKEN; none: auth off),
    sent as "Authorization: Bearer" on every request. The cluster refusing
    it raises AuthError (401) or PermissionDenied (403), never retried.
    """
    if resume not in ("allow", "must", "never"):
        raise ValueError("resume must be 'allow', 'must' or 'never'")
    if not isinstance(project, str) or not project:
        raise ValueError("project must be a non-empty str")
    if not isinstance(experiment, str) or not experiment:
        raise ValueError("experiment must be a non-empty str")
    if durability not in (None, "memory", "buffered", "strict"):
        raise ValueError("durability must be memory, buffered or strict")
    if run_id is None:
        if resume == "must":
            raise ValueError("resume='must' needs a run_id")
        run_id = new_run_id()
    elif not isinstance(run_id, str) or not run_id:
        raise ValueError("run_id must be a non-empty str")
    token = resolve_token(token)
    endpoint = endpoint or os.environ.get("RUNVAULT_ENDPOINT") or \
        DEFAULT_ENDPOINT
    init_timeout = offline_after if init_timeout is None else init_timeout
    wq = "?durability=" + durability if durability else ""
    transport = Transport(endpoint, timeout=timeout, backoff_max=backoff_max,
                          token=token, ca_file=ca_file)
    lim = _limits.get(transport.endpoints, transport.extra_headers,
                      tls=transport.tls)
    params = {str(k): str(v) for k, v in (config or {}).items()}
    tag_map = {str(k): str(v) for k, v in (tags or {}).items()}
    for k, v in params.items():
        _check_key(k, lim, "param key")
        _check_value(k, v, lim.max_param_value_bytes, "param")
    for k, v in tag_map.items():
        _check_key(k, lim, "tag key")
        _check_value(k, v, lim.max_tag_value_bytes, "tag")

    spool = _spool.Spool(_spool.spool_root(spool_dir), run_id).open()
    try:
        run = Run(run_id=run_id, project=project, experiment=experiment,
                  name=name, transport=transport, spool=spool,
                  client_id=new_client_id(), flush_interval=flush_interval,
                  max_queue_points=max_queue_points, max_block=max_block,
                  offline_after=offline_after, query_timeout=timeout)
        run._wq = wq
        run._lim = lim
        meta = spool.read_meta()
        meta.update({"run_id": run_id, "project": project,
                     "experiment": experiment})
        meta.setdefault("client_ids", []).append(run.client_id)
        spool.write_meta(meta)
        deadline = time.monotonic() + init_timeout
        offline = _replay_spool(run, deadline)
        # Params and tags beyond the per-request limits follow as batches.
        first_params = dict(list(params.items())[:lim.max_params_per_batch])
        first_tags = dict(list(tag_map.items())[:lim.max_tags_per_batch])
        body = {"project": project, "experiment": experiment,
                "run_id": run_id, "resume": resume}
        if name is not None:
            body["name"] = str(name)
        if user is not None:
            body["user"] = str(user)
        elif os.environ.get("USER"):
            body["user"] = os.environ["USER"]
        if first_params:
            body["params"] = first_params
        if first_tags:
            body["tags"] = first_tags
        seq, key = run._next_key()
        batch = _Batch(seq, key, "POST", "/api/v2/runs" + wq, body,
                       "application/json", 0)
        if not offline:
            r = transport.request("POST", batch.path, batch.encoded(),
                                  key=key, deadline=deadline)
            if r.outcome == OK:
                run._count_ack(key, 0, r)
                run.resumed = bool(isinstance(r.doc, dict) and
                                   r.doc.get("resumed"))
                if isinstance(r.doc, dict) and r.doc.get("run_id") and \
                        r.doc["run_id"] != run_id:
                    raise RunvaultError("the server answered run_id %r for "
                                        "%r" % (r.doc["run_id"], run_id))
            elif r.outcome == PERMANENT and is_auth_status(r.status):
                raise auth_error("init(run_id=%r)" % run_id, r)
            elif r.outcome == PERMANENT:
                code = r.doc.get("error_code", "") if isinstance(
                    r.doc, dict) else ""
                cls = RunvaultError
                if r.status == 404:
                    cls = RunNotFoundError
                elif r.status == 409 and resume == "never":
                    cls = RunExistsError
                raise cls("init(run_id=%r, resume=%r): %s"
                          % (run_id, resume, r.describe()), r.status, code)
            else:
                offline = True
        if offline:
            log.warning("runvault: cluster %s unreachable at init; run %s is "
                        "logged offline to %s", endpoint, run_id, spool.dir)
            batch.spooled = True
            spool.append([batch.spool_line()])
            run.stats["spooled"] += 1
            run._offline = True
            run.offline_at_init = True
        run._params.update(first_params)
        if run.resumed:
            _load_resumed(run)
        rest_p = dict(list(params.items())[lim.max_params_per_batch:])
        rest_t = dict(list(tag_map.items())[lim.max_tags_per_batch:])
        run._thread = threading.current_thread()  # for the enqueue checks
        if rest_p:
            run.log_params(rest_p)
        if rest_t:
            run.set_tags(rest_t)
    except BaseException:
        transport.close()
        spool.close(remove_if_empty=True)
        raise
    run._start()
    return run


def _replay_spool(run, deadline):
    """Send what an earlier Run of this run id left in the spool, in order.
    True if the cluster could not be reached by the deadline."""
    sp = run._spool
    while sp.pending():
        rec = sp.head()
        if rec is None or "corrupt" in rec or "key" not in rec:
            sp.advance()
            continue
        method, path, body, ctype = _spool.record_request(rec)
        r = run._t.request(method, path, body, key=rec["key"],
                           content_type=ctype, deadline=deadline)
        if r.outcome == PERMANENT and is_auth_status(r.status):
            # Kept in the spool for a replay with a token that may write.
            raise auth_error("replaying the spool of run %s" % run.run_id, r)
        if r.outcome == OK:
            run._count_ack(rec["key"], rec.get("points", 0), r)
        elif r.outcome == PERMANENT:
            run._count_drop(rec["key"], rec.get("points", 0), r,
                            "spooled record")
        else:
            return True
        run.stats["spool_replayed"] += 1
        sp.advance()
    return False


def _load_resumed(run):
    """Continue the step counter and the write-once params of a resumed
    run (best effort)."""
    try:
        doc = run.get(consistency="leader")
    except RunvaultError as e:
        log.warning("runvault: run %s resumed but not readable: %s",
                    run.run_id, e)
        return
    if not isinstance(doc, dict):
        return
    for k, v in (doc.get("params") or {}).items():
        run._params.setdefault(k, v)
    last = -1
    for s in (doc.get("summary") or {}).values():
        if isinstance(s, dict) and isinstance(s.get("last_step"), int):
            last = max(last, s["last_step"])
    run._step = last + 1


def sync(run_id=None, spool_dir=None, endpoint=None, timeout=60.0,
         token=None, ca_file=None):
    """Replay the spools left by finished Runs (every run under spool_dir,
    or just run_id). Returns {run_id: records replayed}; runs whose spool is
    held by a live Run are passed over. token (default $RUNVAULT_TOKEN) is
    the one sent: a spool never stores one. A 401/403 raises AuthError /
    PermissionDenied and leaves the records in the spool."""
    from ._errors import SpoolBusyError
    token = resolve_token(token)
    root = _spool.spool_root(spool_dir)
    endpoint = endpoint or os.environ.get("RUNVAULT_ENDPOINT") or \
        DEFAULT_ENDPOINT
    ids = [run_id] if run_id else sorted(
        d for d in (os.listdir(root) if os.path.isdir(root) else [])
        if os.path.isdir(os.path.join(root, d)))
    out = {}
    deadline = time.monotonic() + timeout
    for rid in ids:
        try:
            sp = _spool.Spool(root, rid).open()
        except SpoolBusyError:
            continue
        t = Transport(endpoint, timeout=10.0, token=token, ca_file=ca_file)
        run = Run(run_id=rid, project="", experiment="", name=None,
                  transport=t, spool=sp, client_id=0, flush_interval=0.2,
                  max_queue_points=1, max_block=0, offline_after=0,
                  query_timeout=10.0)
        try:
            _replay_spool(run, deadline)
            out[rid] = run.stats["spool_replayed"]
        finally:
            t.close()
            sp.close(remove_if_empty=True)
    return out
