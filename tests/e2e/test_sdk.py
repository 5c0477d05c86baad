"""End-to-end tests of the Python SDK (sdk/python/runvault) against real
3-node clusters (tests/lib/rvfixture.py's Cluster).

    RUNVAULT_BIN=build/node/runvault python3 -m unittest -v tests/e2e/test_sdk.py

RV_TEST_SCALE=small shrinks the big failover test (for sanitizer builds).
The runvault binary must exist: these tests fail, never skip, without it.
"""

import http.server
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "sdk", "python"))

import rvfixture  # noqa: E402
import runvault  # noqa: E402
from runvault import _limits  # noqa: E402
from runvault._transport import parse_endpoints  # noqa: E402

SMALL = os.environ.get("RV_TEST_SCALE", "") == "small"


def as_float(v):
    """A metric value from JSON: a number or "NaN"/"Infinity"/"-Infinity"."""
    if isinstance(v, str):
        return float(v)
    return float(v)


def same_value(a, b):
    a, b = as_float(a), as_float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b


def get(endpoint, path, timeout=20.0, **query):
    """GET endpoint+path?query, retrying 503/transport errors (bounded)."""
    q = {k: v for k, v in query.items() if v is not None}
    if q:
        path += ("&" if "?" in path else "?") + urllib.parse.urlencode(q)
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            st, doc, raw = rvfixture.http_json(endpoint, "GET", path,
                                               timeout=10.0)
            if st == 200:
                return doc
            last = "%d %s" % (st, raw[:300])
            if st not in (503, 429):
                raise AssertionError("GET %s -> %s" % (path, last))
        except rvfixture.HTTP_ERRORS as e:
            last = repr(e)
        if time.monotonic() >= deadline:
            raise AssertionError("GET %s: no answer within %.0f s (%s)"
                                 % (path, timeout, last))
        time.sleep(0.1)


def get_run(endpoint, run_id, consistency="linearizable"):
    doc = get(endpoint, "/api/v2/runs/%s" % run_id, consistency=consistency)
    return doc["run"]


def read_series(endpoint, run_id, key, max_step, window=2000,
                consistency="linearizable", context=None):
    """Every point of (run, key) with step in [0, max_step], read in step
    windows so no reply is capped."""
    pts = []
    lo = 0
    while lo <= max_step:
        hi = min(max_step, lo + window - 1)
        doc = get(endpoint, "/api/v2/runs/%s/metrics" % run_id, key=key,
                  context=context, min_step=lo, max_step=hi,
                  consistency=consistency)
        got = doc["points"]
        # A window holds at most `window` distinct steps; more than that
        # many points would mean duplicates, which the caller counts.
        pts.extend(got)
        lo = hi + 1
    return pts


class Base(unittest.TestCase):
    N = 3

    @classmethod
    def start_cluster(cls):
        c = rvfixture.Cluster(n=cls.N)
        c.start(timeout=60.0)
        return c

    def spool_dir(self):
        d = tempfile.mkdtemp(prefix="rv-spool-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


class TestBasics(Base):
    """(a) round trip, (b) context manager, (c) resume, idempotent retry."""

    @classmethod
    def setUpClass(cls):
        cls.c = cls.start_cluster()
        cls.addClassCleanup(cls.c.stop)

    def init(self, **kw):
        kw.setdefault("endpoint", self.c.endpoint_list())
        kw.setdefault("spool_dir", self.spool_dir())
        return runvault.init(**kw)

    def test_a_round_trip(self):
        run = self.init(project="sdk", experiment="roundtrip", name="rt-1",
                        config={"lr": 0.01, "layers": 4, "opt": "adam"},
                        tags={"team": "vision"})
        self.assertEqual(len(run.run_id), 26)
        values = [1.5, 0.25, -3.0, float("nan"), float("inf"),
                  float("-inf"), 7, True, False, 2.5e-300]
        for v in values:
            run.log({"loss": v, "acc": 0.5})           # steps 0..9 auto
        run.log({"lr_now": 0.001}, step=100)
        run.log({"lr_now": 0.002})                    # step 101
        run.log({"ctx": 1.0}, step=0, context="eval")
        with self.assertRaises(TypeError):
            run.log({"bad": "not a number"})
        with self.assertRaises(TypeError):
            run.log({"bad": None})
        with self.assertRaises(ValueError):
            run.log({"k" * 251: 1.0})
        run.log_params({"batch_size": 32, "lr": 0.01})  # lr: same value again
        with self.assertRaises(ValueError):
            run.log_params({"lr": 0.02})               # write-once
        run.set_tags({"stage": "one"})
        run.set_tags({"stage": "two", "gpu": "a100"})  # last write wins
        run.log_text("hello\nworld\n")
        run.log_text("oops", stream="stderr")
        art = os.path.join(self.spool_dir(), "weights.bin")
        data = os.urandom(100_000)
        with open(art, "wb") as f:
            f.write(data)
        run.log_artifact(art, name="model/weights.bin")
        run.finish()
        st = run.stats
        self.assertEqual(st["dropped"], 0, st)
        self.assertEqual(st["spooled"], 0, st)
        self.assertEqual(st["points_logged"], 23, st)
        self.assertEqual(st["points_acked"], 23, st)

        ep = self.c.http_endpoints[1]  # any node answers
        r = get_run(ep, run.run_id)
        self.assertEqual(r["run_id"], run.run_id)
        self.assertEqual(r["project"], "sdk")
        self.assertEqual(r["experiment"], "roundtrip")
        self.assertEqual(r["name"], "rt-1")
        self.assertEqual(r["status"], "FINISHED")
        self.assertIsNotNone(r["ended_at"])
        self.assertEqual(r["params"], {"lr": "0.01", "layers": "4",
                                       "opt": "adam", "batch_size": "32"})
        self.assertEqual(r["tags"].get("team"), "vision")
        self.assertEqual(r["tags"].get("stage"), "two")
        self.assertEqual(r["tags"].get("gpu"), "a100")
        s = r["summary"]
        self.assertEqual(s["loss"]["count"], 10, s)
        self.assertEqual(s["loss"]["last_step"], 9, s)
        self.assertEqual(s["acc"]["count"], 10, s)
        self.assertEqual(s["lr_now"]["count"], 2, s)
        self.assertEqual(s["lr_now"]["last_step"], 101, s)

        pts = get(ep, "/api/v2/runs/%s/metrics" % run.run_id, key="loss",
                  consistency="linearizable")["points"]
        self.assertEqual([p[0] for p in pts], list(range(10)))
        want = [1.5, 0.25, -3.0, "NaN", "Infinity", "-Infinity", 7.0, 1.0,
                0.0, 2.5e-300]
        for p, w in zip(pts, want):
            self.assertTrue(same_value(p[2], w), (p, w))
            self.assertIsInstance(p[1], int)
        # NaN/inf are stored faithfully, not as null or 0.
        self.assertTrue(math.isnan(as_float(pts[3][2])))
        self.assertEqual(as_float(pts[4][2]), math.inf)
        self.assertEqual(as_float(pts[5][2]), -math.inf)
        lr = get(ep, "/api/v2/runs/%s/metrics" % run.run_id, key="lr_now",
                 consistency="linearizable")["points"]
        self.assertEqual([(p[0], as_float(p[2])) for p in lr],
                         [(100, 0.001), (101, 0.002)])
        ctx = get(ep, "/api/v2/runs/%s/metrics" % run.run_id, key="ctx",
                  context="eval", consistency="linearizable")["points"]
        self.assertEqual([(p[0], as_float(p[2])) for p in ctx], [(0, 1.0)])

        # The artifact the SDK uploaded (beyond the contract: the gateway
        # also lists and serves artifacts).
        import hashlib
        arts = get(ep, "/api/v2/runs/%s/artifacts" % run.run_id,
                   consistency="linearizable")["artifacts"]
        self.assertEqual([(x["path"], x["size"], x["sha256"]) for x in arts],
                         [("model/weights.bin", len(data),
                           hashlib.sha256(data).hexdigest())])
        st_, _, body = rvfixture.http_json(
            ep, "GET", "/api/v2/runs/%s/artifacts/model/weights.bin"
            "?consistency=linearizable" % run.run_id)
        self.assertEqual(st_, 200)
        self.assertEqual(body, data)

        logs = get(ep, "/api/v2/runs/%s/logs" % run.run_id,
                   consistency="linearizable")["lines"]
        self.assertEqual([(x["stream"], x["text"]) for x in logs],
                         [("stdout", "hello"), ("stdout", "world"),
                          ("stderr", "oops")])

    def test_a_artifact_put_answer(self):
        # The SDK's upload is a PUT with the raw bytes; the reply reports
        # size and sha256 of what the cluster stored.
        import hashlib
        run = self.init(project="sdk", experiment="artifact")
        data = b"runvault artifact " * 1000
        path = os.path.join(self.spool_dir(), "a.txt")
        with open(path, "wb") as f:
            f.write(data)
        run.flush()
        st, doc, raw = rvfixture.http_json(
            self.c.http_endpoints[0], "PUT",
            "/api/v2/runs/%s/artifacts/direct/a.txt" % run.run_id, data,
            {"Content-Type": "text/plain"})
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc["size"], len(data))
        self.assertEqual(doc["sha256"], hashlib.sha256(data).hexdigest())
        run.log_artifact(path)
        run.finish()
        self.assertEqual(run.stats["dropped"], 0, run.stats)
        self.assertEqual(run.stats["batches_sent"], 3, run.stats)

    def test_b_context_manager_failed(self):
        with self.assertRaises(ZeroDivisionError):
            with self.init(project="sdk", experiment="ctx") as run:
                run.log({"x": 1.0})
                1 / 0
        r = get_run(self.c.http_endpoints[2], run.run_id)
        self.assertEqual(r["status"], "FAILED")
        self.assertIsNotNone(r["ended_at"])
        self.assertEqual(r["summary"]["x"]["count"], 1)
        with self.init(project="sdk", experiment="ctx") as run2:
            run2.log({"x": 2.0})
        self.assertEqual(get_run(self.c.http_endpoints[0], run2.run_id)
                         ["status"], "FINISHED")

    def test_c_resume(self):
        missing = runvault.new_run_id()
        with self.assertRaises(runvault.RunNotFoundError):
            self.init(project="sdk", experiment="resume", run_id=missing,
                      resume="must")
        # Nothing was created by the failed init.
        st, _, _ = rvfixture.http_json(
            self.c.http_endpoints[0], "GET",
            "/api/v2/runs/%s?consistency=linearizable" % missing)
        self.assertEqual(st, 404)

        run = self.init(project="sdk", experiment="resume",
                        config={"lr": 0.1})
        self.assertFalse(run.resumed)
        for i in range(5):
            run.log({"loss": float(i)})
        run.finish(status="CRASHED")
        rid = run.run_id
        with self.assertRaises(runvault.RunExistsError):
            self.init(project="sdk", experiment="resume", run_id=rid,
                      resume="never")
        run2 = self.init(project="sdk", experiment="resume", run_id=rid,
                         resume="allow", config={"lr": 0.1})
        self.assertTrue(run2.resumed)
        with self.assertRaises(ValueError):   # write-once, known from server
            run2.log_params({"lr": 0.5})
        for i in range(5, 10):
            run2.log({"loss": float(i)})      # steps continue at 5
        run2.finish()
        run3 = self.init(project="sdk", experiment="resume", run_id=rid,
                         resume="must")
        self.assertTrue(run3.resumed)
        run3.log({"loss": 10.0})
        run3.finish()
        r = get_run(self.c.http_endpoints[1], rid)
        self.assertEqual(r["status"], "FINISHED")
        self.assertEqual(r["summary"]["loss"]["count"], 11)
        self.assertEqual(r["summary"]["loss"]["last_step"], 10)
        pts = get(self.c.http_endpoints[1], "/api/v2/runs/%s/metrics" % rid,
                  key="loss", consistency="linearizable")["points"]
        self.assertEqual([(p[0], as_float(p[2])) for p in pts],
                         [(i, float(i)) for i in range(11)])

    def test_durability_strict(self):
        # A stricter durability than the node's (buffered) is asked for on
        # every write with ?durability=; a bad mode is refused at init.
        with self.assertRaises(ValueError):
            self.init(project="sdk", experiment="dur", durability="fast")
        with self.init(project="sdk", experiment="dur",
                       durability="strict") as run:
            for i in range(100):
                run.log({"x": float(i)})
            run.log_params({"mode": "strict"})
        self.assertEqual(run.stats["dropped"], 0, run.stats)
        self.assertEqual(run.stats["points_acked"], 100, run.stats)
        r = get_run(self.c.http_endpoints[0], run.run_id)
        self.assertEqual(r["summary"]["x"]["count"], 100)
        self.assertEqual(r["params"], {"mode": "strict"})

    def test_refused_batch_dropped_and_counted(self):
        # A 4xx (not 429) is permanent for that batch: warned, dropped and
        # counted; the run goes on.
        run = self.init(project="sdk", experiment="refused")
        run.log({"ok": 1.0})
        run.flush()
        # Another client sets the param first; the SDK's batch that sets it
        # to another value is refused by the server (param write-once).
        st, _, raw = rvfixture.http_json(
            self.c.http_endpoints[0], "POST",
            "/api/v2/runs/%s/log-batch" % run.run_id,
            {"metrics": [], "params": {"seed": "1"}})
        self.assertEqual(st, 200, raw)
        with self.assertLogs("runvault", "WARNING"):
            run.log_params({"seed": 2})
            run.log({"ok": 2.0}, step=5)
            self.assertTrue(run.flush())
        run.log({"ok": 3.0}, step=6)
        run.finish()
        self.assertEqual(run.stats["dropped"], 1, run.stats)
        self.assertEqual(run.stats["points_dropped"], 1, run.stats)
        r = get_run(self.c.http_endpoints[0], run.run_id)
        self.assertEqual(r["params"], {"seed": "1"})
        self.assertEqual(r["summary"]["ok"]["count"], 2)
        self.assertEqual(r["status"], "FINISHED")

    def test_idempotency_key_applies_once(self):
        run = self.init(project="sdk", experiment="idem")
        run.finish()
        cid = runvault.new_client_id()
        body = {"metrics": [{"key": "m", "value": 1.0, "step": s,
                             "timestamp": 1000 + s} for s in range(5)]}
        path = "/api/v2/runs/%s/log-batch" % run.run_id
        hdr = {"Idempotency-Key": "%d/1" % cid}
        answers = []
        for ep in self.c.http_endpoints:   # same key on every node
            st, doc, raw = rvfixture.http_json(ep, "POST", path, body, hdr)
            self.assertEqual(st, 200, raw)
            answers.append(doc["index"])
        # A duplicate is answered 200 again; its index is that of the
        # duplicate's own (no-op) entry, never below the first one's.
        self.assertEqual(answers, sorted(answers), answers)
        r = get_run(self.c.http_endpoints[0], run.run_id)
        self.assertEqual(r["summary"]["m"]["count"], 5)
        # A bad key is refused, not applied.
        st, doc, raw = rvfixture.http_json(
            self.c.http_endpoints[0], "POST", path, body,
            {"Idempotency-Key": "0/1"})
        self.assertEqual(st, 400, raw)

    def test_limits_split_into_requests(self):
        # More metrics/params/tags than one request may carry: the SDK
        # splits them and nothing is refused.
        run = self.init(project="sdk", experiment="limits",
                        config={"p%03d" % i: i for i in range(250)},
                        tags={"t%03d" % i: "v" * 4000 for i in range(150)})
        run.log({"k%04d" % i: float(i) for i in range(2500)}, step=0)
        run.finish()
        self.assertEqual(run.stats["dropped"], 0, run.stats)
        r = get_run(self.c.http_endpoints[0], run.run_id)
        self.assertEqual(len(r["params"]), 250)
        self.assertEqual(len(r["tags"]), 150)
        self.assertEqual(len(r["summary"]), 2500)


class FakeNode(http.server.ThreadingHTTPServer):
    """A stand-in node: GET /api/config publishes small limits, every write
    is answered 200 {}. config_gets counts the config reads."""

    LIMITS = {"max_key_bytes": 12, "max_param_value_bytes": 10,
              "max_tag_value_bytes": 8, "max_params_per_batch": 2}

    def __init__(self):
        port = rvfixture.free_ports(1)[0]
        node = self
        node.config_gets = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def answer(self, doc):
                raw = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                if self.path == "/api/config":
                    node.config_gets += 1
                    self.answer({"limits": FakeNode.LIMITS})
                else:
                    self.answer({})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                self.answer({})

        super().__init__(("127.0.0.1", port), Handler)
        self.endpoint = "http://127.0.0.1:%d" % port
        threading.Thread(target=self.serve_forever, daemon=True).start()


class TestLimits(Base):
    """The SDK's limits come from GET /api/config (cached), with this
    release's values when no node answers."""

    @classmethod
    def setUpClass(cls):
        cls.c = cls.start_cluster()
        cls.addClassCleanup(cls.c.stop)

    def setUp(self):
        _limits.forget()
        self.addCleanup(_limits.forget)

    def test_limits_are_the_clusters(self):
        ep = self.c.endpoint_list()
        doc = get(self.c.http_endpoints[0], "/api/config")
        lim = _limits.get(parse_endpoints(ep))
        self.assertTrue(lim.from_server)
        for k, v in lim.as_dict().items():
            self.assertEqual(v, doc["limits"][k], k)

    def test_published_limits_are_enforced_and_cached(self):
        fake = FakeNode()
        self.addCleanup(fake.server_close)
        self.addCleanup(fake.shutdown)
        run = runvault.init("sdk", "limits", endpoint=fake.endpoint,
                            spool_dir=self.spool_dir(),
                            config={"a": 1, "b": 2, "c": 3})
        self.assertEqual(run._lim.max_param_value_bytes, 10)
        with self.assertRaises(ValueError):
            run.log_params({"k": "x" * 11})
        run.log_params({"k": "x" * 10})
        with self.assertRaises(ValueError):
            run.set_tags({"t": "y" * 9})
        with self.assertRaises(ValueError):
            run.log({"k" * 13: 1.0})
        run.log({"k" * 12: 1.0})
        run.finish()
        with self.assertRaises(ValueError):
            runvault.init("sdk", "limits", endpoint=fake.endpoint,
                          spool_dir=self.spool_dir(),
                          config={"p": "z" * 11})
        self.assertEqual(fake.config_gets, 1)

    def test_fallback_when_no_node_answers(self):
        ep = "http://127.0.0.1:%d" % rvfixture.free_ports(1)[0]
        lim = _limits.get(parse_endpoints(ep))
        self.assertFalse(lim.from_server)
        self.assertEqual(lim.as_dict(), _limits.FALLBACK)
        self.assertEqual(lim.body_budget, 1_000_000)


class TestSpool(Base):
    """(d) offline spool, replayed exactly once."""

    @classmethod
    def setUpClass(cls):
        cls.c = cls.start_cluster()
        cls.addClassCleanup(cls.c.stop)

    def dead_endpoint(self):
        return "http://127.0.0.1:%d" % rvfixture.free_ports(1)[0]

    def check_series(self, run_id, keys, steps, value):
        for key in keys:
            pts = read_series(self.c.http_endpoints[0], run_id, key,
                              steps - 1)
            got = [p[0] for p in pts]
            self.assertEqual(len(got), steps, "%s: %d points, %d distinct"
                             % (key, len(got), len(set(got))))
            self.assertEqual(sorted(got), list(range(steps)))
            for p in pts:
                self.assertTrue(same_value(p[2], value(key, p[0])), p)

    def test_d1_offline_then_replay_on_resume(self):
        sd = self.spool_dir()
        dead = self.dead_endpoint()
        t0 = time.monotonic()
        run = runvault.init(project="sdk", experiment="offline",
                            config={"lr": 0.3}, endpoint=dead, spool_dir=sd,
                            offline_after=0.5, backoff_max=0.1,
                            max_queue_points=2000, max_block=0.05)
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertTrue(run.offline_at_init)
        keys = ["a", "b", "c"]
        steps = 3000
        for s in range(steps):
            run.log({k: s + i for i, k in enumerate(keys)})
        run.set_tags({"where": "offline"})
        run.finish()
        rid = run.run_id
        self.assertEqual(run.stats["points_acked"], 0)
        self.assertGreater(run.stats["spooled"], 0)
        spool = os.path.join(sd, rid, "spool.jsonl")
        self.assertTrue(os.path.getsize(spool) > 0)
        with open(spool, "rb") as f:
            recs = [json.loads(line) for line in f]
        self.assertEqual(recs[0]["path"], "/api/v2/runs")
        keys_seen = [r["key"] for r in recs]
        self.assertEqual(len(keys_seen), len(set(keys_seen)))
        self.assertEqual(sum(r.get("points", 0) for r in recs),
                         steps * len(keys))
        st, _, _ = rvfixture.http_json(self.c.http_endpoints[0], "GET",
                                       "/api/v2/runs/%s" % rid)
        self.assertEqual(st, 404)  # nothing reached the cluster

        # The next init with this run id replays the spool first, with the
        # same keys, then resumes the run.
        run2 = runvault.init(project="sdk", experiment="offline",
                             run_id=rid, resume="must",
                             endpoint=self.c.endpoint_list(), spool_dir=sd)
        self.assertTrue(run2.resumed)
        self.assertEqual(run2.stats["spool_replayed"], len(recs))
        self.assertEqual(run2.stats["points_acked"], steps * len(keys))
        run2.log({"a": -1.0}, step=steps)
        run2.finish()
        self.assertFalse(os.path.exists(os.path.join(sd, rid)))
        r = get_run(self.c.http_endpoints[2], rid)
        self.assertEqual(r["params"], {"lr": "0.3"})
        self.assertEqual(r["tags"].get("where"), "offline")
        self.assertEqual(r["status"], "FINISHED")
        self.check_series(rid, ["b", "c"], steps,
                          lambda k, s: s + keys.index(k))
        self.assertEqual(r["summary"]["a"]["count"], steps + 1)

        # Replaying the same records again (a crash before the spool's
        # offset was written) changes nothing: same keys, applied once.
        for rec in recs[1:]:
            method, path, body, ctype = runvault._spool.record_request(rec)
            st, doc, raw = rvfixture.http_json(
                self.c.http_endpoints[1], method, path, body,
                {"Idempotency-Key": rec["key"], "Content-Type": ctype})
            self.assertTrue(st in (200, 201) or
                            (st == 409 and "applied earlier" in
                             (doc or {}).get("message", "")), raw)
        r = get_run(self.c.http_endpoints[2], rid)
        self.assertEqual(r["summary"]["b"]["count"], steps)
        self.assertEqual(r["summary"]["a"]["count"], steps + 1)

    def test_d4_sync_replays_a_left_spool(self):
        sd = self.spool_dir()
        run = runvault.init(project="sdk", experiment="sync",
                            endpoint=self.dead_endpoint(), spool_dir=sd,
                            offline_after=0.3, backoff_max=0.1)
        for s in range(1500):
            run.log({"z": float(s)})
        run.finish()
        self.assertTrue(os.path.isdir(os.path.join(sd, run.run_id)))
        done = runvault.sync(spool_dir=sd, endpoint=self.c.endpoint_list())
        self.assertEqual(list(done), [run.run_id])
        self.assertGreater(done[run.run_id], 1)
        self.assertFalse(os.path.exists(os.path.join(sd, run.run_id)))
        self.assertEqual(runvault.sync(spool_dir=sd,
                                       endpoint=self.c.endpoint_list()), {})
        r = get_run(self.c.http_endpoints[1], run.run_id)
        self.assertEqual(r["status"], "FINISHED")
        self.check_series(run.run_id, ["z"], 1500, lambda k, s: float(s))

    def test_d2_cluster_down_mid_run(self):
        # Every node killed while the run logs; the run spools, then
        # replays by itself when the nodes are back.
        c = self.start_cluster()
        self.addCleanup(c.stop)
        sd = self.spool_dir()
        run = runvault.init(project="sdk", experiment="down",
                            endpoint=c.endpoint_list(), spool_dir=sd,
                            offline_after=1.0, backoff_max=0.2)
        self.addCleanup(run.finish, "KILLED", 5.0)
        for s in range(500):
            run.log({"x": float(s), "y": float(-s)})
        self.assertTrue(run.flush(timeout=30.0))
        acked_before = run.stats["points_acked"]
        self.assertEqual(acked_before, 1000)
        for i in range(c.n):
            c.kill(i)
        for s in range(500, 3000):
            run.log({"x": float(s), "y": float(-s)})
            if s % 500 == 0:
                time.sleep(0.3)
        deadline = time.monotonic() + 20
        while run.stats["spooled"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreater(run.stats["spooled"], 0, run.stats)
        for i in range(c.n):
            c.restart(i)
        c.wait_ready(timeout=60.0)
        deadline = time.monotonic() + 60
        while run.stats["points_acked"] < 6000 and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(run.stats["points_acked"], 6000, run.stats)
        run.finish()
        self.assertEqual(run.stats["dropped"], 0, run.stats)
        for key, sign in (("x", 1.0), ("y", -1.0)):
            pts = read_series(c.http_endpoints[0], run.run_id, key, 2999)
            self.assertEqual(len(pts), 3000)
            self.assertEqual(sorted(p[0] for p in pts), list(range(3000)))
            for p in pts:
                self.assertEqual(as_float(p[2]), sign * p[0])
        self.assertEqual(get_run(c.http_endpoints[1], run.run_id)["status"],
                         "FINISHED")

    def test_d3_full_queue_spills(self):
        # A tiny queue: log() waits at most max_block, then spills the
        # queue to the spool instead of growing; still exactly once.
        run = runvault.init(project="sdk", experiment="spill",
                            endpoint=self.c.endpoint_list(),
                            spool_dir=self.spool_dir(),
                            max_queue_points=200, max_block=0.0)
        t0 = time.monotonic()
        for s in range(5000):
            run.log({"v": float(s), "w": 1.0})
            self.assertLessEqual(len(run._q), 200 + 2)
        logged_s = time.monotonic() - t0
        run.finish()
        self.assertGreater(run.stats["spooled"], 0, run.stats)
        self.assertEqual(run.stats["points_acked"], 10000, run.stats)
        self.assertEqual(run.stats["dropped"], 0, run.stats)
        self.check_series(run.run_id, ["v"], 5000, lambda k, s: float(s))
        print("\n[d3] 10000 points through a 200-point queue in %.2f s, %d "
              "spool records" % (logged_s, run.stats["spooled"]))


class TestFailover(Base):
    """(e) 100,000 points (20,000 small) logged while the leader is
    SIGKILLed and restarted: every acknowledged point exactly once."""

    def test_e_leader_kill_exactly_once(self):
        c = self.start_cluster()
        self.addCleanup(c.stop)
        n_keys = 10
        steps = 2000 if SMALL else 10_000
        total = n_keys * steps
        # Logging is paced over this many seconds so the kill lands mid-way.
        duration = float(os.environ.get("RV_E_SECONDS", 4.0 if SMALL else 8.0))
        keys = ["metric/%02d" % k for k in range(n_keys)]
        run = runvault.init(project="sdk", experiment="failover",
                            endpoint=c.endpoint_list(),
                            spool_dir=self.spool_dir(),
                            offline_after=30.0, backoff_max=0.2)
        self.addCleanup(run.finish, "KILLED", 5.0)
        ev = {}
        stop = threading.Event()

        def killer():
            try:
                dl = time.monotonic() + 60
                while run.stats["points_acked"] < total * 0.3 and \
                        time.monotonic() < dl and not stop.is_set():
                    time.sleep(0.005)
                leader = c.leader(timeout=10)
                ev["leader"] = leader
                acked = run.stats["batches_sent"]
                ev["acked_at_kill"] = run.stats["points_acked"]
                ev["t_kill"] = time.monotonic()
                c.kill(leader, signal.SIGKILL)
                dl = time.monotonic() + 30
                while run.stats["batches_sent"] == acked and \
                        time.monotonic() < dl and not stop.is_set():
                    time.sleep(0.002)
                ev["gap"] = time.monotonic() - ev["t_kill"]
                time.sleep(1.0)
                c.restart(leader)
                ev["t_restart"] = time.monotonic()
                c.wait_up(leader, timeout=30)
            except Exception as e:  # reported by the main thread
                ev["error"] = repr(e)

        th = threading.Thread(target=killer, daemon=True)
        t0 = time.monotonic()
        th.start()
        try:
            for s in range(steps):
                run.log({k: s * 1000.0 + i for i, k in enumerate(keys)},
                        step=s)
                if s % 50 == 0:
                    lag = t0 + duration * s / steps - time.monotonic()
                    if lag > 0:
                        time.sleep(lag)
            t_logged = time.monotonic() - t0
            run.finish(timeout=120.0)
            t_acked = time.monotonic() - t0
        finally:
            stop.set()
            th.join(60)
        self.assertNotIn("error", ev, ev)
        self.assertIn("gap", ev, "the leader was never killed: %r" % ev)
        st = run.stats
        self.assertLess(ev["acked_at_kill"], total,
                        "the kill came after the last ack: %r" % ev)
        self.assertEqual(st["points_logged"], total, st)
        self.assertEqual(st["points_acked"], total, st)
        self.assertEqual(st["dropped"], 0, st)

        t_read = time.monotonic()
        ep = c.http_endpoints[(ev["leader"] + 1) % c.n]
        dup = missing = wrong = 0
        for i, key in enumerate(keys):
            pts = read_series(ep, run.run_id, key, steps - 1,
                              consistency="linearizable")
            count = {}
            for p in pts:
                count[p[0]] = count.get(p[0], 0) + 1
                if as_float(p[2]) != p[0] * 1000.0 + i:
                    wrong += 1
            dup += sum(n - 1 for n in count.values() if n > 1)
            missing += sum(1 for s in range(steps) if s not in count)
        r = get_run(ep, run.run_id)
        counts = [r["summary"][k]["count"] for k in keys]
        t_read = time.monotonic() - t_read
        print("\n[e] %d points (%d keys x %d steps), leader node %d "
              "SIGKILLed at %d acked points; logged in %.2f s, all acked "
              "after %.2f s (%.0f points/s); retries %d, batches %d, "
              "spooled %d; failover gap (kill -> next ack) %.3f s, longest "
              "gap between acks %.3f s; read back in %.2f s: duplicates %d, "
              "missing %d, wrong values %d"
              % (total, n_keys, steps, ev["leader"] + 1, ev["acked_at_kill"],
                 t_logged, t_acked, total / t_acked, st["retries"],
                 st["batches_sent"], st["spooled"], ev["gap"],
                 st["max_ack_gap_s"], t_read, dup, missing, wrong))
        self.assertEqual((dup, missing, wrong), (0, 0, 0))
        self.assertEqual(counts, [steps] * n_keys)
        self.assertEqual(r["status"], "FINISHED")

        # The restarted node catches up and serves the same series.
        old = c.http_endpoints[ev["leader"]]
        deadline = time.monotonic() + 60
        while True:
            try:
                rr = get(old, "/api/v2/runs/%s" % run.run_id, timeout=5.0,
                         consistency="stale", min_index=run.last_index)
                got = rr["run"]["summary"][keys[-1]]["count"]
            except (AssertionError, KeyError):
                got = None
            if got == steps or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        self.assertEqual(got, steps, c.log_tail(ev["leader"]))


if __name__ == "__main__":
    unittest.main()
