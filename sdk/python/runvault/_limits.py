"""The server's limits, as GET /api/config publishes them ("limits").

get(endpoints) answers a Limits: the server's, fetched once per endpoint
list and cached for the life of the process; while no node answers, the
values below (this SDK release's server defaults) stand in, and the fetch
is tried again at most every RETRY_S seconds. Any thread: the cache is
guarded by a lock and a Limits is never modified once made.
"""

import http.client
import json
import socket
import threading
import time

from . import _tls

# The server's limits when this SDK was released: the fallback while no
# node answers GET /api/config.
FALLBACK = {
    "max_key_bytes": 250,
    "max_param_value_bytes": 6000,
    "max_tag_value_bytes": 5000,
    "max_metrics_per_batch": 1000,
    "max_params_per_batch": 100,
    "max_tags_per_batch": 100,
    "max_json_body_bytes": 1 << 20,
    "max_artifact_put_bytes": 16 << 20,
}
# Estimated JSON bytes of one batch stay this far below the body limit
# (1,000,000 for the 1 MiB default): the estimate is not exact.
BODY_MARGIN = (1 << 20) - 1_000_000
RETRY_S = 30.0
FETCH_TIMEOUT_S = 2.0

_lock = threading.Lock()
_cache = {}  # tuple(endpoints) -> Limits from the server
_tried = {}  # tuple(endpoints) -> time.monotonic() of the last failed fetch


class Limits:
    """One set of limits; from_server tells whether a node published it."""

    def __init__(self, values=None, from_server=False):
        merged = dict(FALLBACK)
        for k, v in (values or {}).items():
            if k in FALLBACK and isinstance(v, int) and \
                    not isinstance(v, bool) and v > 0:
                merged[k] = v
        for k, v in merged.items():
            setattr(self, k, v)
        self.body_budget = max(4096, self.max_json_body_bytes - BODY_MARGIN)
        self.from_server = from_server

    def as_dict(self):
        return {k: getattr(self, k) for k in FALLBACK}


DEFAULT = Limits()


def fetch(endpoints, headers=None, timeout=FETCH_TIMEOUT_S, tls=None):
    """GET /api/config from each of endpoints [(host, port)] in turn: the
    first answer's Limits, or None if none answers with them."""
    for host, port in endpoints:
        c = _tls.connection(host, port, timeout, tls)
        try:
            c.request("GET", "/api/config", headers=dict(headers or {}))
            r = c.getresponse()
            doc = json.loads(r.read() or b"null") if r.status == 200 else None
        except (OSError, http.client.HTTPException, socket.timeout,
                ValueError):
            continue
        finally:
            c.close()
        if isinstance(doc, dict) and isinstance(doc.get("limits"), dict):
            return Limits(doc["limits"], from_server=True)
    return None


def get(endpoints, headers=None, now=None, tls=None):
    """The limits for endpoints [(host, port)]: cached, else fetched (at
    most once per RETRY_S while it fails), else DEFAULT."""
    key = tuple(endpoints)
    now = time.monotonic() if now is None else now
    with _lock:
        lim = _cache.get(key)
        if lim is not None:
            return lim
        last = _tried.get(key)
        if last is not None and now - last < RETRY_S:
            return DEFAULT
        _tried[key] = now
    lim = fetch(endpoints, headers, tls=tls)
    if lim is None:
        return DEFAULT
    with _lock:
        _cache[key] = lim
        _tried.pop(key, None)
    return lim


def forget():
    """Drop the cache (tests)."""
    with _lock:
        _cache.clear()
        _tried.clear()
