"""HTTP transport: one keep-alive connection per endpoint, retries across the
endpoint list with capped exponential backoff.

A request is retried (same body, same Idempotency-Key) on a transport error
(refused, reset, timeout), HTTP 502/503/504 and 429 (after at least its
Retry-After, at most RETRY_AFTER_MAX_S); it is a permanent failure on any
other 4xx (401 and 403 included: a token is never retried) and on a 500
that repeats. The caller's token, if any, goes in an Authorization header on
every request. Only one thread uses a Transport at a time.
"""

import http.client
import json
import random
import socket
import time
import urllib.parse

from ._auth import auth_headers
from . import _tls
from ._errors import RunvaultError

OK, PERMANENT, UNAVAILABLE = "ok", "permanent", "unavailable"

DEFAULT_ENDPOINT = "http://127.0.0.1:7480"
_TRANSPORT_ERRORS = (OSError, http.client.HTTPException, socket.timeout)
_MAX_500 = 3  # A 500 this many times in one request is permanent.
MIN_ATTEMPT_S = 2.0  # Lowest per-attempt timeout.
LEADER_CHECK_S = 1.0  # Ask for the leader at most this often.
RETRY_AFTER_MAX_S = 30.0  # The longest Retry-After honoured.


def _retry_after_s(value):
    """Seconds of a Retry-After header (delta-seconds only), bounded; 0 if
    absent or not a number."""
    try:
        return min(RETRY_AFTER_MAX_S, max(0.0, float(int(value))))
    except (TypeError, ValueError):
        return 0.0


class Response:
    __slots__ = ("outcome", "status", "doc", "raw", "error")

    def __init__(self, outcome, status=0, doc=None, raw=b"", error=None):
        self.outcome = outcome
        self.status = status
        self.doc = doc
        self.raw = raw
        self.error = error

    @property
    def ok(self):
        return self.outcome == OK

    def describe(self):
        if self.status:
            code = msg = ""
            if isinstance(self.doc, dict):
                code = self.doc.get("error_code", "")
                msg = self.doc.get("message", "")
            if not code and not msg:
                msg = self.raw[:200].decode("utf-8", "replace")
            return "HTTP %d %s %s" % (self.status, code, msg)
        return "unreachable (%s)" % (self.error,)


def _applied_earlier(doc):
    return isinstance(doc, dict) and "was applied earlier" in str(
        doc.get("message", ""))


def parse_endpoints(endpoint):
    """'http://a:1,http://b:2' -> [('a', 1), ('b', 2)] (https:// alike; the
    scheme is the Transport's, see _tls.scheme)."""
    out = []
    for part in (endpoint or "").split(","):
        part = part.strip()
        if not part:
            continue
        if "://" not in part:
            part = "http://" + part
        u = urllib.parse.urlsplit(part)
        if u.scheme not in ("http", "https"):
            raise ValueError("only http:// and https:// endpoints are "
                             "supported: %r" % part)
        if not u.hostname:
            raise ValueError("bad endpoint %r" % part)
        out.append((u.hostname,
                    u.port or (443 if u.scheme == "https" else 80)))
    if not out:
        raise ValueError("no endpoint given")
    return out


class Transport:
    def __init__(self, endpoints, timeout=10.0, backoff_base=0.05,
                 backoff_max=1.0, stats=None, extra_headers=None, tls=None,
                 ca_file=None, token=None):
        """tls: an ssl.SSLContext for https endpoints; for an endpoint
        string with https:// it defaults to _tls.context(ca_file)."""
        if isinstance(endpoints, str) and tls is None:
            tls = _tls.for_endpoint(endpoints, ca_file)
        self.tls = tls
        self.endpoints = parse_endpoints(endpoints) if isinstance(
            endpoints, str) else list(endpoints)
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stats = stats if stats is not None else {"retries": 0}
        self.extra_headers = dict(extra_headers or {})
        # The token (checked by _auth.resolve_token) rides in the headers
        # of every request; it is kept for the Transports made from this
        # one, never written anywhere.
        self.token = token
        self.extra_headers.update(auth_headers(token))
        self._retry_after = 0.0
        self.cur = 0
        self._conns = {}
        self._rng = random.Random()
        # Per-attempt timeout follows the observed latency (never below
        # MIN_ATTEMPT_S, never above timeout): a request stuck on a node
        # that lost its leader is abandoned quickly and retried elsewhere
        # with the same key.
        self._ewma_s = None
        self._want_leader = True
        self._leader_checked = 0.0

    def close(self):
        for c in self._conns.values():
            try:
                c.close()
            except Exception:
                pass
        self._conns.clear()

    def attempt_timeout(self):
        if self._ewma_s is None:
            return self.timeout
        return min(self.timeout, max(MIN_ATTEMPT_S, 20.0 * self._ewma_s))

    def _conn(self, i, timeout):
        c = self._conns.get(i)
        if c is None:
            host, port = self.endpoints[i]
            c = _tls.connection(host, port, timeout, self.tls)
            self._conns[i] = c
            return c, False
        c.timeout = timeout
        if c.sock is not None:
            c.sock.settimeout(timeout)
        return c, True

    def _drop(self, i):
        c = self._conns.pop(i, None)
        if c is not None:
            try:
                c.close()
            except Exception:
                pass

    def _once(self, i, method, path, body, headers):
        """One exchange on endpoint i; a reused keep-alive connection that
        the server closed meanwhile is retried once on a fresh one."""
        timeout = self.attempt_timeout()
        for attempt in (0, 1):
            c, reused = self._conn(i, timeout)
            try:
                t0 = time.monotonic()
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                raw = r.read()
                self._retry_after = _retry_after_s(
                    r.getheader("Retry-After")) if r.status == 429 else 0.0
                if 200 <= r.status < 300:
                    dt = time.monotonic() - t0
                    self._ewma_s = dt if self._ewma_s is None else \
                        0.9 * self._ewma_s + 0.1 * dt
                if r.getheader("Connection", "").lower() == "close":
                    self._drop(i)
                return r.status, raw
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError, http.client.BadStatusLine):
                self._drop(i)
                if not reused or attempt == 1:
                    raise
            except BaseException:
                self._drop(i)
                raise
        raise RunvaultError("unreachable")  # pragma: no cover

    def request(self, method, path, body=b"", key=None,
                content_type="application/json", deadline=None,
                one_pass=False):
        """Send until it is answered, the deadline (time.monotonic()) passes,
        or (one_pass) every endpoint failed once. Returns a Response with
        outcome OK, PERMANENT or UNAVAILABLE."""
        headers = dict(self.extra_headers)
        headers["Content-Type"] = content_type
        if key is not None:
            headers["Idempotency-Key"] = key
        n = len(self.endpoints)
        tried = 0  # Endpoints tried in the current pass.
        k = 0      # Backoff exponent.
        n500 = 0
        last = None
        while True:
            i = self.cur
            status = 0
            try:
                status, raw = self._once(i, method, path, body, headers)
            except _TRANSPORT_ERRORS as e:
                last = Response(UNAVAILABLE, error="%s: %s"
                                % (type(e).__name__, e))
            else:
                try:
                    doc = json.loads(raw) if raw else None
                except ValueError:
                    doc = None
                if 200 <= status < 300:
                    if self._want_leader and len(self.endpoints) > 1:
                        self._find_leader()
                    return Response(OK, status, doc, raw)
                if status == 409 and _applied_earlier(doc):
                    # A duplicate whose first result the server no longer
                    # keeps: it was applied, which is all a retry needs.
                    return Response(OK, status, doc, raw)
                last = Response(UNAVAILABLE, status, doc, raw)
                if status == 500:
                    n500 += 1
                    if n500 >= _MAX_500:
                        return Response(PERMANENT, status, doc, raw)
                elif status not in (429, 502, 503, 504):
                    return Response(PERMANENT, status, doc, raw)
            self.stats["retries"] = self.stats.get("retries", 0) + 1
            if status != 429:
                self.cur = (self.cur + 1) % n
                self._want_leader = True
            tried += 1
            if one_pass and tried >= n:
                return last
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return last
            # A refused connection moves on to the next endpoint at once;
            # after a whole pass, or when the cluster answered "busy" or
            # "no leader", wait.
            if status == 0 and tried % n != 0:
                continue
            delay = min(self.backoff_max, self.backoff_base * (2 ** min(k, 16)))
            delay *= 0.5 + 0.5 * self._rng.random()
            if status == 429:
                delay = max(delay, self._retry_after)
            k += 1
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - now))
            time.sleep(delay)

    def _find_leader(self):
        """Point cur at the leader's endpoint when it is one of ours (a
        follower would forward every write to it anyway)."""
        now = time.monotonic()
        if now - self._leader_checked < LEADER_CHECK_S:
            return
        self._leader_checked = now
        try:
            status, raw = self._once(self.cur, "GET", "/api/v2/cluster", None,
                                     dict(self.extra_headers))
            doc = json.loads(raw) if status == 200 else None
        except (_TRANSPORT_ERRORS + (ValueError,)):
            return
        if not isinstance(doc, dict):
            return
        lid = doc.get("leader_id")
        for node in doc.get("nodes") or ():
            if not isinstance(node, dict) or node.get("id") != lid or not lid:
                continue
            addr = str(node.get("http_addr") or "")
            addr = addr.split("://", 1)[-1].rstrip("/")
            for i, (h, p) in enumerate(self.endpoints):
                if addr == "%s:%d" % (h, p):
                    self.cur = i
                    self._want_leader = False
                    return
        self._want_leader = False
