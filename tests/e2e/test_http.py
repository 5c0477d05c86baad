"""HTTP/JSON gateway on a real 3-node cluster: golden answers for every
endpoint, forwarding from followers, idempotency keys, and the bad-input
suite (truncated and garbage protobuf on the native port, a 10 MB body,
invalid UTF-8, bad limits, unknown runs, wrong methods): every bad request
gets a clear error, no node crashes, and nothing changes (the leader's
applied index and every digest are the same before and after).

    RUNVAULT_BIN=build/node/runvault python3 -m unittest tests/e2e/test_http.py
"""

import hashlib
import http.client
import json
import math
import os
import random
import socket
import struct
import sys
import time
import unittest
from urllib.parse import quote

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from rvfixture import Cluster, http_json  # noqa: E402


def sp_request(rpc_endpoint, payload, timeout=5.0):
    """One request on nng's REQ/REP wire protocol (the SP header exchange,
    then 64-bit length-prefixed messages whose body starts with the 32-bit
    request id). Returns the reply body without its id, or None if the
    connection closed."""
    host, port = rpc_endpoint.split("://", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(b"\x00SP\x00\x00\x30\x00\x00")  # REQ v0 (0x30)
        hdr = b""
        while len(hdr) < 8:
            chunk = s.recv(8 - len(hdr))
            if not chunk:
                return None
            hdr += chunk
        assert hdr[:4] == b"\x00SP\x00", hdr
        msg = struct.pack(">I", 0x80000001) + payload
        s.sendall(struct.pack(">Q", len(msg)) + msg)
        data = b""
        while len(data) < 8:
            chunk = s.recv(8 - len(data))
            if not chunk:
                return None
            data += chunk
        n = struct.unpack(">Q", data[:8])[0]
        body = b""
        while len(body) < n:
            chunk = s.recv(n - len(body))
            if not chunk:
                return None
            body += chunk
        return body[4:]


def pb_varint_field(num, value):
    """A protobuf varint field (enough to build a few raw messages)."""
    out = bytearray()
    key = (num << 3) | 0
    for v in (key, value):
        while True:
            b = v & 0x7F
            v >>= 7
            if v:
                out.append(b | 0x80)
            else:
                out.append(b)
                break
    return bytes(out)


def pb_response_code(raw):
    """Field 1 (code) of an rv.Response."""
    if not raw or raw[0] != 0x08:
        return None
    v, shift = 0, 0
    for b in raw[1:]:
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v
    return None


class HttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(n=3)
        cls.c.start(timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def ep(self, i):
        return self.c.http_endpoints[i]

    def follower(self):
        li = self.c.leader()
        return (li + 1) % 3

    def call(self, i, method, path, body=None, headers=None, want=None):
        st, doc, raw = http_json(self.ep(i), method, path, body, headers,
                                 timeout=20.0)
        if want is not None:
            self.assertEqual(st, want, "%s %s -> %d %r" % (method, path, st,
                                                          raw[:300]))
        return st, doc, raw

    def error(self, i, method, path, body=None, headers=None, status=400,
              code=None, needle=None):
        st, doc, raw = self.call(i, method, path, body, headers)
        self.assertEqual(st, status, "%s %s -> %d %r" % (method, path, st,
                                                        raw[:300]))
        self.assertIsInstance(doc, dict, raw[:200])
        self.assertEqual(set(doc), {"error_code", "message"}, doc)
        if code is not None:
            self.assertEqual(doc["error_code"], code, doc)
        if needle is not None:
            self.assertIn(needle, doc["message"])
        return doc

    def settle(self):
        """Applied index and digests of all nodes once they agree."""
        deadline = time.monotonic() + 20
        while True:
            li = self.c.leader()
            st, doc, _ = self.call(li, "GET",
                                   "/api/v2/cluster?consistency=linearizable",
                                   want=200)
            nodes = doc["nodes"]
            idx = {n["applied_index"] for n in nodes}
            dig = {n["digest"] for n in nodes}
            if len(idx) == 1 and len(dig) == 1 and None not in idx:
                return idx.pop(), dig.pop()
            if time.monotonic() > deadline:
                self.fail("replicas did not converge: %r" % nodes)
            time.sleep(0.1)

    # ---- golden answers ---------------------------------------------------

    def test_run_lifecycle_through_a_follower(self):
        f = self.follower()
        st, doc, _ = self.call(f, "POST", "/api/v2/runs", {
            "project": "golden", "experiment": "e1", "name": "first",
            "run_id": "golden-run-1", "user": "ana",
            "params": {"lr": "0.01", "optimizer": "adam"},
            "tags": {"team": "vision"}}, want=201)
        self.assertEqual(doc["run_id"], "golden-run-1")
        self.assertGreater(doc["index"], 0)
        index = doc["index"]
        # Existing run: never -> 409, allow -> 200 resumed, must on a
        # missing run -> 404.
        self.error(f, "POST", "/api/v2/runs", {
            "project": "golden", "experiment": "e1",
            "run_id": "golden-run-1"}, status=409,
            code="RESOURCE_ALREADY_EXISTS")
        st, doc, _ = self.call(f, "POST", "/api/v2/runs", {
            "project": "golden", "experiment": "e1", "run_id": "golden-run-1",
            "resume": "allow", "tags": {"phase": "2"}}, want=200)
        self.assertTrue(doc["resumed"])
        self.error(f, "POST", "/api/v2/runs", {
            "project": "golden", "experiment": "e1", "run_id": "missing-run",
            "resume": "must"}, status=404, code="RESOURCE_DOES_NOT_EXIST")
        metrics = [{"key": "loss", "value": 1.0 / (s + 1), "step": s,
                    "timestamp": 1700000000000 + s} for s in range(10)]
        metrics += [{"key": "loss", "value": "NaN", "step": 10,
                     "timestamp": 1700000000010},
                    {"key": "acc", "value": "Infinity", "step": 0,
                     "timestamp": 1700000000000, "context": "val"},
                    {"key": "acc", "value": "-Infinity", "step": 1,
                     "timestamp": 1700000000001, "context": "val"}]
        st, doc, _ = self.call(f, "POST",
                               "/api/v2/runs/golden-run-1/log-batch",
                               {"metrics": metrics,
                                "params": {"batch_size": "64"}}, want=200)
        self.assertGreater(doc["index"], index)
        wi = doc["index"]
        self.call(f, "POST", "/api/v2/runs/golden-run-1/logs", {"lines": [
            {"timestamp": 1, "stream": "stdout", "text": "epoch 1"},
            {"timestamp": 2, "stream": "stderr", "text": "warn: ünïcode"}]},
            want=200)
        # Read-your-writes on the follower itself with min_index.
        st, doc, _ = self.call(
            f, "GET", "/api/v2/runs/golden-run-1?consistency=stale"
            "&min_index=%d" % wi, want=200)
        run = doc["run"]
        self.assertIsInstance(doc["query_time_ms"], float)
        self.assertEqual(run["params"], {"lr": "0.01", "optimizer": "adam",
                                         "batch_size": "64"})
        self.assertEqual(run["tags"], {"team": "vision", "phase": "2"})
        self.assertEqual(run["status"], "RUNNING")
        self.assertEqual(run["user"], "ana")
        self.assertIsNone(run["ended_at"])
        self.assertEqual(run["n_points"], 13)
        loss = run["summary"]["loss"]
        self.assertEqual(loss["count"], 11)
        self.assertEqual(loss["last"], "NaN")
        self.assertEqual(loss["min"], 1.0 / 10)
        self.assertEqual(loss["max"], 1.0)
        self.assertEqual(loss["last_step"], 10)
        acc = run["summary"]["acc[val]"]
        self.assertEqual((acc["min"], acc["max"], acc["count"]),
                         ("-Infinity", "Infinity", 2))
        # History, exact and downsampled.
        st, doc, _ = self.call(f, "GET", "/api/v2/runs/golden-run-1/metrics"
                               "?key=loss&consistency=linearizable", want=200)
        self.assertEqual(doc["key"], "loss")
        want_pts = [[s, 1700000000000 + s, 1.0 / (s + 1)] for s in range(10)]
        want_pts.append([10, 1700000000010, "NaN"])
        self.assertEqual(doc["points"], want_pts)
        st, doc, _ = self.call(f, "GET", "/api/v2/runs/golden-run-1/metrics"
                               "?key=loss&min_step=2&max_step=4", want=200)
        self.assertEqual([p[0] for p in doc["points"]], [2, 3, 4])
        st, doc, _ = self.call(f, "GET", "/api/v2/runs/golden-run-1/metrics"
                               "?key=acc&context=val", want=200)
        self.assertEqual([p[2] for p in doc["points"]],
                         ["Infinity", "-Infinity"])
        st, doc, _ = self.call(f, "GET", "/api/v2/runs/golden-run-1/metrics",
                               want=200)
        self.assertEqual(sorted(m["key"] for m in doc["metrics"]),
                         ["acc", "loss"])
        # v1 aliases answer the same shapes.
        st, doc1, _ = self.call(f, "GET", "/api/runs/golden-run-1/metrics"
                                "?key=loss", want=200)
        self.assertEqual(doc1["points"], want_pts)
        # Logs.
        st, doc, _ = self.call(f, "GET", "/api/v2/runs/golden-run-1/logs",
                               want=200)
        self.assertEqual([(l["line_no"], l["stream"], l["text"])
                          for l in doc["lines"]],
                         [(0, "stdout", "epoch 1"),
                          (1, "stderr", "warn: ünïcode")])
        self.assertEqual(doc["next_line"], 2)
        st, doc, _ = self.call(f, "GET", "/api/v2/runs/golden-run-1/logs"
                               "?from_line=1&max_lines=5", want=200)
        self.assertEqual([l["line_no"] for l in doc["lines"]], [1])
        # Artifact round trip with its SHA-256 (> one 512 KiB chunk).
        blob = bytes((i * 7) % 251 for i in range(700000))
        st, doc, _ = self.call(f, "PUT", "/api/v2/runs/golden-run-1/artifacts"
                               "/models/weights.bin", blob,
                               {"Content-Type": "application/x-weights"},
                               want=200)
        self.assertEqual(doc["sha256"], hashlib.sha256(blob).hexdigest())
        self.assertEqual(doc["size"], len(blob))
        hdr_idx = doc["index"]
        host, port = self.ep(f).split("://")[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=20)
        conn.request("GET", "/api/v2/runs/golden-run-1/artifacts/models/"
                     "weights.bin?consistency=stale&min_index=%d" % hdr_idx)
        r = conn.getresponse()
        got = r.read()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Type"), "application/x-weights")
        self.assertEqual(got, blob)
        conn.close()
        st, doc, _ = self.call(f, "GET", "/api/v2/runs/golden-run-1/artifacts",
                               want=200)
        self.assertEqual([(a["path"], a["size"], a["complete"])
                          for a in doc["artifacts"]],
                         [("models/weights.bin", len(blob), True)])
        # Finish.
        self.call(f, "POST", "/api/v2/runs/golden-run-1/status",
                  {"status": "FINISHED"}, want=200)
        st, doc, _ = self.call(f, "GET", "/api/v2/runs/golden-run-1"
                               "?consistency=linearizable", want=200)
        self.assertEqual(doc["run"]["status"], "FINISHED")
        self.assertIsInstance(doc["run"]["ended_at"], int)

    def test_metrics_query(self):
        """POST /api/v2/metrics/query: the series of several runs in one
        answer, each as its own GET gives it; bad queries are 400s."""
        f = self.c.http_endpoints[self.c.leader()]
        ids = []
        for k in range(3):
            st, doc, _ = http_json(f, "POST", "/api/v2/runs",
                                   {"project": "mq", "experiment": "e"})
            ids.append(doc["run_id"])
            if k < 2:
                http_json(f, "POST", "/api/v2/runs/%s/log-batch" % ids[-1],
                          {"metrics": [{"key": "acc", "value": k + s / 100.0,
                                        "step": s} for s in range(100)]})
        q = {"runs": ids + ["no-such-run"], "key": "acc", "downsample": 16,
             "min_step": 10, "max_step": 89}
        st, doc, _ = http_json(f, "POST", "/api/v2/metrics/query", q)
        self.assertEqual(st, 200, doc)
        self.assertEqual([s["run_id"] for s in doc["series"]],
                         q["runs"])
        for i in range(2):
            _, one, _ = http_json(f, "GET", "/api/v2/runs/%s/metrics?key=acc&"
                                  "downsample=16&min_step=10&max_step=89" %
                                  ids[i])
            self.assertEqual(doc["series"][i]["points"], one["points"])
            self.assertEqual(doc["series"][i]["points"][0][0], 10)
        self.assertEqual(doc["series"][2]["error_code"],
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertEqual(doc["series"][3]["error_code"],
                         "RESOURCE_DOES_NOT_EXIST")
        bad = [{"runs": ids, "key": "acc"},                     # downsample
               {"runs": [], "key": "acc", "downsample": 4},
               {"runs": ["x"] * 101, "key": "acc", "downsample": 4},
               {"runs": ["bad id"], "key": "acc", "downsample": 4},
               {"runs": [7], "key": "acc", "downsample": 4},
               {"runs": ids, "downsample": 4},                   # key
               {"runs": ids, "key": "acc", "downsample": 4, "x": 1},
               {"runs": ids, "key": "acc", "downsample": 10001}]
        for body in bad:
            st, doc, _ = http_json(f, "POST", "/api/v2/metrics/query", body)
            self.assertEqual(st, 400, (body, doc))
            self.assertEqual(doc["error_code"], "INVALID_PARAMETER_VALUE")

    def test_delete_restore_purge(self):
        f = self.follower()
        self.call(f, "POST", "/api/v2/runs", {
            "project": "trash", "experiment": "e1", "run_id": "purge-me",
            "params": {"unique": "purge-me-param"}}, want=201)
        q = "/api/v2/experiments?project=trash&consistency=linearizable"
        # A live run is not purged.
        self.error(f, "POST", "/api/v2/runs/purge-me/purge", status=409,
                   code="INVALID_STATE")
        self.call(f, "POST", "/api/v2/runs/purge-me/delete", want=200)
        st, doc, _ = self.call(f, "GET", q, want=200)
        self.assertEqual(doc["runs"], [])
        self.call(f, "POST", "/api/v2/runs/purge-me/restore", want=200)
        st, doc, _ = self.call(f, "GET", q, want=200)
        self.assertEqual([r["run_id"] for r in doc["runs"]], ["purge-me"])
        self.call(f, "POST", "/api/v2/runs/purge-me/delete", want=200)
        self.call(f, "POST", "/api/v2/runs/purge-me/purge", want=200)
        self.error(f, "GET", "/api/v2/runs/purge-me?consistency=linearizable",
                   status=404, code="RESOURCE_DOES_NOT_EXIST")
        st, doc, _ = self.call(f, "GET", q, want=200)
        self.assertEqual(doc["runs"], [])
        # Purged is final: no restore, and a second purge finds nothing.
        self.error(f, "POST", "/api/v2/runs/purge-me/restore", status=404)
        self.error(f, "POST", "/api/v2/runs/purge-me/purge", status=404)
        self.settle()

    def test_idempotency_key_applies_once(self):
        f = self.follower()
        self.call(f, "POST", "/api/v2/runs", {"project": "idem",
                  "experiment": "e", "run_id": "idem-run"}, want=201)
        body = {"metrics": [{"key": "x", "value": 1, "step": 1,
                             "timestamp": 5}]}
        hdr = {"Idempotency-Key": "4242/1"}
        _, a, _ = self.call(f, "POST", "/api/v2/runs/idem-run/log-batch",
                            body, hdr, want=200)
        # The same key again, through another node: applied once.
        _, b, _ = self.call((f + 1) % 3, "POST",
                            "/api/v2/runs/idem-run/log-batch", body, hdr,
                            want=200)
        st, doc, _ = self.call(f, "GET", "/api/v2/runs/idem-run"
                               "?consistency=linearizable", want=200)
        self.assertEqual(doc["run"]["n_points"], 1)
        self.assertEqual(doc["run"]["summary"]["x"]["count"], 1)
        # A created run retried with its key answers the first run_id.
        hdr = {"Idempotency-Key": "4243/1"}
        _, r1, _ = self.call(f, "POST", "/api/v2/runs", {"project": "idem",
                             "experiment": "e"}, hdr, want=201)
        _, r2, _ = self.call(f, "POST", "/api/v2/runs", {"project": "idem",
                             "experiment": "e"}, hdr)
        self.assertEqual(r1["run_id"], r2["run_id"])
        self.assertEqual(len(r1["run_id"]), 26)
        self.assertTrue(r2.get("duplicate"))

    def test_list_filter_order_and_keyset_pages(self):
        li = self.c.leader()
        ids = []
        for k in range(7):
            rid = "list-run-%d" % k
            ids.append(rid)
            self.call(li, "POST", "/api/v2/runs", {
                "project": "listing", "experiment": "sweep", "run_id": rid,
                "params": {"lr": str(0.1 * (k + 1))},
                "tags": {"kind": "even" if k % 2 == 0 else "odd"}}, want=201)
            self.call(li, "POST", "/api/v2/runs/%s/log-batch" % rid, {
                "metrics": [{"key": "acc", "value": k / 10.0, "step": 1,
                             "timestamp": 1}]}, want=200)
        self.call(li, "POST", "/api/v2/runs/list-run-6/status",
                  {"status": "FAILED"}, want=200)
        # Paged 2 at a time: every matching run once, in acc order.
        seen, token = [], ""
        for _ in range(10):
            q = ("/api/v2/experiments?project=listing&per_page=2"
                 "&filter=tags.kind%20%3D%20%27even%27"
                 "&order_by=metrics.acc%20DESC&consistency=linearizable")
            if token:
                q += "&page_token=" + token
            st, doc, _ = self.call((li + 1) % 3, "GET", q, want=200)
            self.assertLessEqual(len(doc["runs"]), 2)
            self.assertIn("query_time_ms", doc)
            seen += [r["run_id"] for r in doc["runs"]]
            token = doc["next_page_token"]
            if not token:
                break
        self.assertEqual(seen, ["list-run-6", "list-run-4", "list-run-2",
                                "list-run-0"])
        st, doc, _ = self.call(li, "GET", "/api/v2/experiments"
                               "?project=listing&status=FAILED", want=200)
        self.assertEqual([r["run_id"] for r in doc["runs"]], ["list-run-6"])
        self.assertEqual(doc["runs"][0]["status"], "FAILED")
        st, doc, _ = self.call(li, "GET",
                               "/api/v2/analytics?group=status&project=listing",
                               want=200)
        self.assertEqual(doc["counts"], {"FAILED": 1, "RUNNING": 6})
        self.assertEqual(doc["total"], 7)
        # Bad filters say where.
        doc = self.error(li, "GET",
                         "/api/v2/experiments?filter=params.lr%20%3D",
                         code="INVALID_PARAMETER_VALUE")
        self.assertIn("position", doc["message"])
        # A filter near its 4096-byte limit: %-escaped it is about twice
        # as long, at the 8 KiB request line nng reads, so it goes in the
        # body of POST /api/v2/experiments/search; one byte over is refused
        # by name, and a GET whose line is over 8 KiB is not answered 200.
        pad = ", ".join("'%04d'" % i for i in range(1000, 2000))
        filt = "tags.kind IN ('even', %s" % pad
        filt = filt[:4094].rsplit(",", 1)[0] + ")"
        self.assertLessEqual(len(filt), 4096)
        self.assertGreater(len(filt), 4000)
        self.assertGreater(len(quote(filt, safe="")), 8000)
        st, doc, _ = self.call(li, "POST", "/api/v2/experiments/search",
                               {"project": "listing", "filter": filt,
                                "order_by": "metrics.acc DESC",
                                "per_page": 3}, want=200)
        self.assertEqual([r["run_id"] for r in doc["runs"]],
                         ["list-run-6", "list-run-4", "list-run-2"])
        st, doc2, _ = self.call(
            li, "POST", "/api/v2/experiments/search?project=listing",
            {"filter": filt, "order_by": "metrics.acc DESC", "per_page": 3,
             "page_token": doc["next_page_token"]}, want=200)
        self.assertEqual([r["run_id"] for r in doc2["runs"]], ["list-run-0"])
        self.error(li, "POST", "/api/v2/experiments/search?project=a",
                   {"project": "listing"}, needle="query and the body")
        self.error(li, "POST", "/api/v2/experiments/search",
                   {"filtre": "x"}, needle="filtre")
        self.error(li, "POST", "/api/v2/experiments/search",
                   {"per_page": -1}, needle="per_page")
        over = "tags.kind = '%s'" % ("x" * 4083)
        self.assertEqual(len(over), 4097)
        doc = self.error(li, "POST", "/api/v2/experiments/search",
                         {"filter": over}, status=413,
                         code="REQUEST_TOO_LARGE")
        self.assertIn("4096", doc["message"])
        try:
            st, _, _ = http_json(self.ep(li), "GET", "/api/v2/experiments"
                                 "?filter=" + "x" * 8200, timeout=20.0)
        except (OSError, http.client.HTTPException):
            st = None  # nng drops a request line over 8 KiB.
        self.assertNotEqual(st, 200)
        doc = self.error(li, "GET", "/api/v2/" + "p" * 2100,
                         code="INVALID_PARAMETER_VALUE")
        self.assertIn("2048", doc["message"])

    def test_node_endpoints(self):
        for i in range(3):
            st, doc, _ = self.call(i, "GET", "/healthz", want=200)
            self.assertEqual(doc["status"], "ok")
            st, doc, _ = self.call(i, "GET", "/readyz", want=200)
            self.assertEqual(doc["status"], "ready")
            st, doc, _ = self.call(i, "GET", "/api/config", want=200)
            self.assertEqual(doc["node_id"], i + 1)
            self.assertEqual(doc["rpc_addr"], self.c.rpc_endpoints[i])
            self.assertEqual(doc["limits"]["max_metrics_per_batch"], 1000)
        st, doc, _ = self.call(0, "GET", "/api/v2/cluster", want=200)
        self.assertEqual(sorted(n["id"] for n in doc["nodes"]), [1, 2, 3])
        self.assertIn(doc["leader_id"], (1, 2, 3))
        for n in doc["nodes"]:
            self.assertEqual(n["role"], "voter")
            self.assertTrue(n["http_addr"])
        # A transfer to the node that leads already moves nothing and
        # succeeds (through a follower too); the leader and term stay.
        li = self.c.leader()
        st, before, _ = self.call(li, "GET", "/readyz", want=200)
        for i in (li, (li + 1) % 3):
            self.call(i, "POST", "/api/v2/cluster/transfer",
                      {"id": li + 1}, want=200)
        st, after, _ = self.call(li, "GET", "/readyz", want=200)
        self.assertEqual((after["state"], after["term"]),
                         ("leader", before["term"]))
        # Every node's /metrics carries the compaction gauges.
        host, port = self.ep(0).split("://")[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        text = r.read().decode()
        conn.close()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.getheader("Content-Type").startswith("text/plain"))
        for name in ("runvault_http_requests_total",
                     "runvault_http_request_duration_seconds_bucket",
                     "runvault_raft_term", "runvault_raft_applied_index",
                     "runvault_apply_lag_entries", "runvault_raft_state",
                     "runvault_raft_entries_total",
                     "runvault_raft_commands_total",
                     # The end of a block once cut at 511 bytes.
                     "runvault_snapshots_total", "runvault_catch_ups_total",
                     'runvault_disk_bytes{part="vlog"}',
                     "runvault_http_batch_points_bucket",
                     "runvault_reclaimable_bytes",
                     "runvault_compaction_checkpoint_index",
                     "runvault_compactions_total",
                     "runvault_compaction_failed"):
            self.assertIn(name, text)
        # Every sample line parses as "name{labels} number".
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        # The loop-lag probe fires every 20 ms from the start, and the
        # buffered node synced what the setup wrote: both histograms
        # counted, cumulative buckets ending at the count, max >= 0.
        for h in ("runvault_loop_lag_seconds", "runvault_store_sync_seconds"):
            count = samples[h + "_count"]
            self.assertGreater(count, 0, h)
            self.assertEqual(samples[h + '_bucket{le="+Inf"}'], count)
            buckets = [v for k, v in samples.items()
                       if k.startswith(h + "_bucket")]
            self.assertEqual(buckets, sorted(buckets))
            self.assertGreaterEqual(samples[h + "_max"], 0)
            self.assertGreaterEqual(samples[h + "_sum"], 0)

    # ---- bad input --------------------------------------------------------

    def test_bad_input_changes_nothing(self):
        li = self.c.leader()
        self.call(li, "POST", "/api/v2/runs", {"project": "bad",
                  "experiment": "e", "run_id": "bad-run",
                  "params": {"p": "1"}}, want=201)
        before = self.settle()
        f = (li + 1) % 3
        big_key = "k" * 251
        cases = [
            # (node, method, path, body, headers, status, needle)
            (f, "POST", "/api/v2/runs", b"{\"project\": \"p\", ", None, 400,
             "invalid JSON"),
            (f, "POST", "/api/v2/runs", b"\xff\xfe{}", None, 400, "JSON"),
            (f, "POST", "/api/v2/runs", b'{"project":"\xc3\x28","experiment'
             b'":"e"}', None, 400, "JSON"),
            (f, "POST", "/api/v2/runs", b"[1,2]", None, 400, "object"),
            (f, "POST", "/api/v2/runs", {"project": "p", "experiment": "e",
             "colour": "red"}, None, 400, "unknown field"),
            (f, "POST", "/api/v2/runs", {"project": "p", "experiment": "e",
             "run_id": "has space"}, None, 400, "run_id"),
            (f, "POST", "/api/v2/runs", {"project": "", "experiment": "e"},
             None, 400, "project"),
            (f, "POST", "/api/v2/runs", {"project": "p" * 251,
             "experiment": "e"}, None, 400, "project"),
            (f, "POST", "/api/v2/runs", {"project": "p", "experiment": "e",
             "params": {"k": "v" * 6001}}, None, 400, "6000"),
            (f, "POST", "/api/v2/runs", {"project": "p", "experiment": "e",
             "tags": {"k": "v" * 5001}}, None, 400, "5000"),
            (f, "POST", "/api/v2/runs", {"project": "p", "experiment": "e",
             "params": {"p%d" % i: "v" for i in range(101)}}, None, 400,
             "at most 100"),
            (f, "POST", "/api/v2/runs", {"project": "p", "experiment": "e",
             "resume": "sometimes"}, None, 400, "resume"),
            (f, "POST", "/api/v2/runs", {"project": "p", "experiment": "e"},
             {"Idempotency-Key": "0/1"}, 400, "Idempotency-Key"),
            (f, "POST", "/api/v2/runs/bad-run/log-batch", {"metrics": [
                {"key": "m", "value": 1, "step": s} for s in range(1001)]},
             None, 400, "at most 1000"),
            (f, "POST", "/api/v2/runs/bad-run/log-batch", {"metrics": [
                {"key": big_key, "value": 1}]}, None, 400, "key"),
            (f, "POST", "/api/v2/runs/bad-run/log-batch", {"metrics": [
                {"key": "m", "value": "1.5"}]}, None, 400, "value"),
            (f, "POST", "/api/v2/runs/bad-run/log-batch", {"metrics": [
                {"key": "m", "value": 1, "step": 1.5}]}, None, 400, "step"),
            (f, "POST", "/api/v2/runs/bad-run/log-batch",
             b'{"metrics":[{"key":"m","value":1,"step":'
             b'99999999999999999999}]}', None, 400, "JSON"),
            (f, "POST", "/api/v2/runs/bad-run/log-batch", {"metrics": [
                {"key": "m", "value": 1, "timestamp": -1}]}, None, 400,
             "timestamp"),
            # The good point and the bad one: all or nothing.
            (f, "POST", "/api/v2/runs/bad-run/log-batch", {"metrics": [
                {"key": "good", "value": 1}, {"key": "bad..key",
                                              "value": 2}]}, None, 400,
             "metrics[1]"),
            (f, "POST", "/api/v2/runs/bad-run/logs", {"lines": []}, None, 400,
             "lines"),
            (f, "POST", "/api/v2/runs/bad-run/logs", {"lines": [
                {"text": "x", "stream": "stdin"}]}, None, 400, "stream"),
            (f, "POST", "/api/v2/runs/bad-run/status", {"status": "DONE"},
             None, 400, "status"),
            (f, "PUT", "/api/v2/runs/bad-run/artifacts/../etc/passwd", b"x",
             None, 400, "path"),
            (f, "PUT", "/api/v2/runs/bad-run/artifacts/" + "p" * 481, b"x",
             None, 400, "path"),
            (f, "POST", "/api/v2/runs//log-batch", {"metrics": []}, None,
             400, "run_id"),
            (f, "GET", "/api/v2/runs/unknown-run", None, None, 404,
             "unknown-run"),
            (f, "GET", "/api/v2/runs/bad-run/metrics?key=nothing", None, None,
             404, None),
            (f, "GET", "/api/v2/experiments?per_page=-5", None, None, 400,
             "per_page"),
            (f, "GET", "/api/v2/experiments?per_page=1001", None, None, 400,
             "per_page"),
            (f, "GET", "/api/v2/experiments?per_page=99999999999999999999999",
             None, None, 400, "per_page"),
            (f, "GET", "/api/v2/experiments?page_token=garbage", None, None,
             400, None),
            (f, "GET", "/api/v2/runs/bad-run/metrics?key=m&downsample=-1",
             None, None, 400, "downsample"),
            (f, "GET", "/api/v2/runs/bad-run/logs?max_lines=100000", None,
             None, 400, "max_lines"),
            (f, "GET", "/api/v2/runs/bad-run?consistency=eventual", None,
             None, 400, "consistency"),
            (f, "GET", "/api/v2/runs/bad%ZZrun", None, None, 400, "escape"),
            (f, "GET", "/api/v2/runs/bad%00run", None, None, 400, "escape"),
            (f, "DELETE", "/api/v2/runs/bad-run/log-batch", None, None, 405,
             "POST"),
            (f, "GET", "/api/v2/runs/bad-run/log-batch", None, None, 405,
             "POST"),
            (f, "POST", "/api/v2/experiments", {}, None, 405, "GET"),
            (f, "PATCH", "/healthz", None, None, 405, "GET"),
            (f, "POST", "/api/runs/bad-run", {}, None, 405, "read-only"),
            (f, "GET", "/api/v3/everything", None, None, 404, "no endpoint"),
        ]
        for node, method, path, body, headers, status, needle in cases:
            with self.subTest(method=method, path=path[:80]):
                self.error(node, method, path, body, headers, status=status,
                           needle=needle)
        # A 10 MB body is refused with 413 before it is parsed.
        self.error(f, "POST", "/api/v2/runs/bad-run/log-batch",
                   b"{" + b" " * (10 << 20) + b"}", status=413,
                   code="REQUEST_TOO_LARGE")
        # The native port: truncated, garbage and empty protobuf messages
        # get RV_EMALFORMED / RV_EINVAL answers; the node keeps serving.
        rpc = self.c.rpc_endpoints[f]
        good_status = b"\x72\x00"  # Request{status = {}} (field 14)
        self.assertEqual(pb_response_code(sp_request(rpc, good_status)), 0)
        write = b"\x52\x04\x0a\x02\xb2\x01"  # WriteRequest{command{noop}} cut
        for payload in (write, b"\xff" * 64, b"\x0a\xff\xff\xff\xff\x0f",
                        random.Random(7).randbytes(512), b""):
            code = pb_response_code(sp_request(rpc, payload))
            self.assertIn(code, (7, 2), payload[:16])  # EMALFORMED, EINVAL
        # Refused at the door: nothing reached raft, no replica changed.
        after = self.settle()
        self.assertEqual(before, after)
        # Refused by apply (they need the run's state): the entry records
        # the refusal for idempotent retries, but no data changes and the
        # replicas still agree.
        self.error(f, "POST", "/api/v2/runs/bad-run/log-batch",
                   {"params": {"p": "2"}}, status=400, needle="write-once")
        self.error(f, "POST", "/api/v2/runs/unknown-run/log-batch",
                   {"metrics": [{"key": "m", "value": 1}]}, status=404,
                   needle="unknown-run")
        # Over the native port, a log batch for the empty run id is refused
        # at the door too (and by apply, tests/unit/test_store.c), and
        # every replica keeps serving.
        empty_run = b"\x52\x06\x0a\x04\x6a\x02\x0a\x00"
        raw = sp_request(self.c.rpc_endpoints[li], empty_run)
        self.assertEqual(pb_response_code(raw), 2)
        self.assertIn(b"invalid run_id", raw)
        self.settle()
        for i in range(3):
            self.assertTrue(self.c.is_alive(i))
        self.error(li, "GET", "/api/v2/runs/unknown-run?consistency="
                   "linearizable", status=404)
        for i in range(3):
            self.assertTrue(self.c.is_alive(i))
            self.call(i, "GET", "/healthz", want=200)
        st, doc, _ = self.call(li, "GET", "/api/v2/runs/bad-run"
                               "?consistency=linearizable", want=200)
        self.assertEqual(doc["run"]["n_points"], 0)
        self.assertEqual(doc["run"]["params"], {"p": "1"})
        self.assertEqual(doc["run"]["n_log_lines"], 0)


class StrictIdleTest(unittest.TestCase):
    """A strict node records its addresses with one node_put and then
    proposes nothing while idle. Its write waits for a sync after it is
    applied, and queueing it again from there re-proposed it on every
    loop turn until the sync ended (and lost the results of each)."""

    def test_a_strict_node_records_its_addresses_once(self):
        c = Cluster(n=1, durability="strict")
        c.start(timeout=60)
        try:
            def commands():
                conn = http.client.HTTPConnection(
                    c.http_endpoints[0].split("://", 1)[1], timeout=5)
                conn.request("GET", "/metrics")
                text = conn.getresponse().read().decode()
                conn.close()
                for line in text.splitlines():
                    if line.startswith("runvault_raft_commands_total "):
                        return int(float(line.split()[1]))
                self.fail("no runvault_raft_commands_total in /metrics")
            time.sleep(1.5)
            a = commands()
            time.sleep(1.0)
            # The node_put and the fixture's one write that checks the
            # node serves (the re-proposals made it 6), then nothing.
            self.assertEqual((a, commands()), (2, 2))
        finally:
            c.stop()

if __name__ == "__main__":
    unittest.main()
