"""MLflow's REST API 2.0 (DESIGN Appendix B.2) on a real 3-node cluster
started with --auth on, spoken the way MLflow's Python client speaks it
(urllib: GET arguments in the query, POST arguments as a JSON body,
`Authorization: Bearer <token>`, errors as {"error_code","message"}):
experiments (create, get, get-by-name, search with filter, order and pages
to the end, update, delete, restore, tags), runs (create, get, update,
delete, restore, search with MLflow's filter, order_by, run_view_type and
pages to the end), logging (log-batch with MLflow's limits, log-metric,
log-parameter with immutable values, set-tag overwrite, delete-tag),
metric history in pages; errors and their statuses; teams (another team's
experiment and run are RESOURCE_DOES_NOT_EXIST); the mapping both ways (a
run logged through MLflow in runvault's /api/v2, and a run made through
/api/v2 found through MLflow); followers and the /ajax-api alias; and a
bounded malformed-input loop over every MLflow endpoint.

    RUNVAULT_BIN=build/node/runvault python3 -m unittest tests/e2e/test_mlflow.py
"""

import json
import os
import random
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from rvfixture import Cluster, http_json  # noqa: E402


class MlflowError(Exception):
    def __init__(self, status, doc):
        super().__init__("%s %s" % (status, doc))
        self.status = status
        self.doc = doc or {}
        self.error_code = self.doc.get("error_code")


class MlflowRest:
    """MLflow's REST client's way of calling an endpoint (its
    `call_endpoint`): GET with the arguments as query parameters, POST with
    a JSON body; a non-200 answer raises with the error JSON."""

    def __init__(self, endpoint, token, prefix="/api/2.0/mlflow"):
        self.base = endpoint.rstrip("/") + prefix
        self.token = token

    def call(self, method, path, args=None):
        url = self.base + "/" + path
        data = None
        headers = {}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        if method == "GET":
            if args:
                url += "?" + urllib.parse.urlencode(args)
        else:
            data = json.dumps(args or {}).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = {"raw": raw.decode("latin-1")}
            raise MlflowError(e.code, doc) from None

    def get(self, path, **args):
        return self.call("GET", path, args)

    def post(self, path, **args):
        return self.call("POST", path, args)


class MlflowApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(n=3, extra_args=["--auth", "on"]).start()
        cls.admin = cls.c.wait_admin_token()
        cls.li = cls.c.leader()
        cls.ep = cls.c.http_endpoints[cls.li]
        cls.fol = cls.c.http_endpoints[(cls.li + 1) % 3]
        tokens = {}
        for team in ("alpha", "beta"):
            st, doc, _ = http_json(cls.ep, "POST", "/api/v2/teams",
                                   {"team": team}, headers=cls.hdr(cls.admin))
            assert st == 201, doc
            for role in ("reader", "writer", "admin"):
                st, doc, _ = http_json(
                    cls.ep, "POST", "/api/v2/tokens",
                    {"team": team, "role": role, "name": role},
                    headers=cls.hdr(cls.admin))
                assert st == 201, doc
                tokens[(team, role)] = doc["token"]
        cls.tokens = tokens
        cls.alpha = MlflowRest(cls.ep, tokens[("alpha", "writer")])
        cls.alpha_admin = MlflowRest(cls.ep, tokens[("alpha", "admin")])
        cls.beta = MlflowRest(cls.ep, tokens[("beta", "writer")])

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    @staticmethod
    def hdr(token):
        return {"Authorization": "Bearer " + token}

    def err(self, fn, want_status, want_code, *args, **kw):
        with self.assertRaises(MlflowError) as cm:
            fn(*args, **kw)
        self.assertEqual((cm.exception.status, cm.exception.error_code),
                         (want_status, want_code), cm.exception.doc)
        self.assertIsInstance(cm.exception.doc.get("message"), str)
        return cm.exception.doc

    def new_experiment(self, api, name, **kw):
        doc = api.post("experiments/create", name=name, **kw)
        self.assertEqual(set(doc), {"experiment_id"})
        self.assertTrue(doc["experiment_id"].isdigit(), doc)
        return doc["experiment_id"]

    def new_run(self, api, exp_id, **kw):
        doc = api.post("runs/create", experiment_id=exp_id, **kw)
        return doc["run"]

    # ---- Experiments ---------------------------------------------------

    def test_experiment_lifecycle(self):
        a = self.alpha
        eid = self.new_experiment(a, "vision/detector",
                                  tags=[{"key": "owner", "value": "ana"}])
        exp = a.get("experiments/get", experiment_id=eid)["experiment"]
        self.assertEqual(
            {k: exp[k] for k in ("experiment_id", "name", "lifecycle_stage",
                                 "tags")},
            {"experiment_id": eid, "name": "vision/detector",
             "lifecycle_stage": "active",
             "tags": [{"key": "owner", "value": "ana"}]})
        self.assertEqual(exp["artifact_location"], "mlflow-artifacts:/" + eid)
        self.assertGreater(exp["creation_time"], 1.6e12)
        self.assertEqual(exp["last_update_time"], exp["creation_time"])
        self.assertEqual(
            a.get("experiments/get-by-name",
                  experiment_name="vision/detector")["experiment"], exp)
        # The same name again: RESOURCE_ALREADY_EXISTS, a 400 as MLflow.
        self.err(a.post, 400, "RESOURCE_ALREADY_EXISTS", "experiments/create",
                 name="vision/detector")
        self.err(a.post, 400, "RESOURCE_ALREADY_EXISTS", "experiments/create",
                 name="Default")
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "experiments/create")
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "experiments/create",
                 name="/x")
        self.err(a.get, 404, "RESOURCE_DOES_NOT_EXIST",
                 "experiments/get-by-name", experiment_name="no/such")
        self.err(a.get, 404, "RESOURCE_DOES_NOT_EXIST", "experiments/get",
                 experiment_id="987654")
        self.err(a.get, 400, "INVALID_PARAMETER_VALUE", "experiments/get",
                 experiment_id="abc")
        self.err(a.get, 400, "INVALID_PARAMETER_VALUE", "experiments/get")
        # Experiment 0 is every team's Default.
        d = a.get("experiments/get", experiment_id="0")["experiment"]
        self.assertEqual((d["experiment_id"], d["name"], d["lifecycle_stage"]),
                         ("0", "Default", "active"))
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "experiments/delete",
                 experiment_id="0")
        # Rename: the new name is found, the old one no more.
        self.assertEqual(a.post("experiments/update", experiment_id=eid,
                                new_name="vision/detector-v2"), {})
        self.err(a.get, 404, "RESOURCE_DOES_NOT_EXIST",
                 "experiments/get-by-name", experiment_name="vision/detector")
        self.assertEqual(a.get("experiments/get-by-name",
                               experiment_name="vision/detector-v2")
                         ["experiment"]["experiment_id"], eid)
        # A tag set again overwrites.
        a.post("experiments/set-experiment-tag", experiment_id=eid,
               key="owner", value="bo")
        a.post("experiments/set-experiment-tag", experiment_id=eid,
               key="stage", value="dev")
        tags = a.get("experiments/get", experiment_id=eid)["experiment"]["tags"]
        self.assertEqual(sorted((t["key"], t["value"]) for t in tags),
                         [("owner", "bo"), ("stage", "dev")])
        a.post("experiments/delete-experiment-tag", experiment_id=eid,
               key="stage")
        self.err(a.post, 404, "RESOURCE_DOES_NOT_EXIST",
                 "experiments/delete-experiment-tag", experiment_id=eid,
                 key="stage")
        tags = a.get("experiments/get", experiment_id=eid)["experiment"]["tags"]
        self.assertEqual(tags, [{"key": "owner", "value": "bo"}])
        # Delete and restore.
        self.assertEqual(a.post("experiments/delete", experiment_id=eid), {})
        self.assertEqual(a.get("experiments/get", experiment_id=eid)
                         ["experiment"]["lifecycle_stage"], "deleted")
        ids = [e["experiment_id"] for e in
               a.post("experiments/search", max_results=1000)["experiments"]]
        self.assertNotIn(eid, ids)
        ids = [e["experiment_id"] for e in
               a.post("experiments/search", view_type="DELETED_ONLY")
               ["experiments"]]
        self.assertEqual(ids, [eid])
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "runs/create",
                 experiment_id=eid)
        a.post("experiments/restore", experiment_id=eid)
        self.assertEqual(a.get("experiments/get", experiment_id=eid)
                         ["experiment"]["lifecycle_stage"], "active")
        self.err(a.post, 404, "RESOURCE_DOES_NOT_EXIST", "experiments/delete",
                 experiment_id="987654")

    def test_experiment_search_filter_order_and_pages(self):
        a = self.alpha
        made = {}
        for i in range(7):
            made[self.new_experiment(
                a, "pages/e%d" % i,
                tags=[{"key": "parity", "value": "odd" if i % 2 else "even"}])
            ] = "pages/e%d" % i
        seen, token, pages = [], None, 0
        while True:
            args = {"max_results": 3, "filter": "name LIKE 'pages/%'",
                    "order_by": ["name DESC"]}
            if token:
                args["page_token"] = token
            doc = a.post("experiments/search", **args)
            pages += 1
            seen += [e["name"] for e in doc["experiments"]]
            token = doc.get("next_page_token")
            if not token:
                break
            self.assertLess(pages, 10)
        self.assertEqual(pages, 3)
        self.assertEqual(seen, sorted(made.values(), reverse=True))
        odd = a.post("experiments/search",
                     filter="tags.parity = 'odd' and name ILIKE 'PAGES/%'",
                     order_by=["name"])["experiments"]
        self.assertEqual([e["name"] for e in odd],
                         ["pages/e1", "pages/e3", "pages/e5"])
        # The GET form answers the same.
        got = a.get("experiments/search", filter="name = 'pages/e4'")
        self.assertEqual([e["name"] for e in got["experiments"]],
                         ["pages/e4"])
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "experiments/search",
                 filter="colour = 'red'")
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "experiments/search",
                 filter="name = ")
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "experiments/search",
                 max_results=50001)
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "experiments/search",
                 order_by=["colour"])

    # ---- Runs and logging ----------------------------------------------

    def test_run_create_log_and_history(self):
        a = self.alpha
        eid = self.new_experiment(a, "nlp/bert")
        run = self.new_run(a, eid, run_name="first", start_time=1700000000000,
                           user_id="ana",
                           tags=[{"key": "mlflow.source.name",
                                  "value": "train.py"}])
        info = run["info"]
        rid = info["run_id"]
        self.assertEqual(len(rid), 32)
        self.assertEqual(
            {k: info[k] for k in ("run_uuid", "run_name", "experiment_id",
                                  "user_id", "status", "start_time",
                                  "lifecycle_stage", "artifact_uri")},
            {"run_uuid": rid, "run_name": "first", "experiment_id": eid,
             "user_id": "ana", "status": "RUNNING",
             "start_time": 1700000000000, "lifecycle_stage": "active",
             "artifact_uri": "mlflow-artifacts:/%s/%s/artifacts" % (eid, rid)})
        self.assertNotIn("end_time", info)
        self.assertEqual(sorted((t["key"], t["value"])
                                for t in run["data"]["tags"]),
                         [("mlflow.runName", "first"),
                          ("mlflow.source.name", "train.py")])
        self.assertEqual(run["data"]["metrics"], [])
        # log-batch: numbers, MLflow's NaN/Infinity strings, string ints.
        self.assertEqual(a.post("runs/log-batch", run_id=rid, metrics=[
            {"key": "loss", "value": 1.5, "timestamp": 1700000000001,
             "step": 0},
            {"key": "loss", "value": "NaN", "timestamp": "1700000000002",
             "step": "1"},
            {"key": "loss", "value": 0.25, "timestamp": 1700000000003,
             "step": 2},
            {"key": "grad", "value": "Infinity", "timestamp": 1700000000003,
             "step": 2}],
            params=[{"key": "lr", "value": "0.01"},
                    {"key": "lr", "value": "0.01"}],
            tags=[{"key": "phase", "value": "a"},
                  {"key": "phase", "value": "b"}]), {})
        a.post("runs/log-metric", run_id=rid, key="loss", value=0.125,
               timestamp=1700000000004, step=3)
        a.post("runs/log-parameter", run_id=rid, key="batch", value="32")
        # A param keeps its value: the same again is fine, another is 400.
        a.post("runs/log-parameter", run_id=rid, key="batch", value="32")
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE",
                 "runs/log-parameter", run_id=rid, key="batch", value="64")
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "runs/log-batch",
                 run_id=rid, params=[{"key": "lr", "value": "0.5"}])
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "runs/log-batch",
                 run_id=rid, params=[{"key": "x", "value": "1"},
                                     {"key": "x", "value": "2"}])
        # Tags are overwritten; delete-tag removes one, twice is a 404.
        a.post("runs/set-tag", run_id=rid, key="phase", value="c")
        a.post("runs/set-tag", run_id=rid, key="gone", value="1")
        a.post("runs/delete-tag", run_id=rid, key="gone")
        self.err(a.post, 404, "RESOURCE_DOES_NOT_EXIST", "runs/delete-tag",
                 run_id=rid, key="gone")
        got = a.get("runs/get", run_id=rid)["run"]
        data = got["data"]
        self.assertEqual(sorted((p["key"], p["value"])
                                for p in data["params"]),
                         [("batch", "32"), ("lr", "0.01")])
        tags = {t["key"]: t["value"] for t in data["tags"]}
        self.assertEqual(tags["phase"], "c")
        self.assertNotIn("gone", tags)
        ms = {m["key"]: m for m in data["metrics"]}
        self.assertEqual(ms["loss"], {"key": "loss", "value": 0.125,
                                      "timestamp": 1700000000004, "step": 3})
        self.assertEqual(ms["grad"]["value"], "Infinity")
        # History in pages of 2 to the end, every point once, in order.
        points, token, pages = [], None, 0
        while True:
            args = {"run_id": rid, "metric_key": "loss", "max_results": 2}
            if token:
                args["page_token"] = token
            doc = a.get("metrics/get-history", **args)
            points += doc["metrics"]
            pages += 1
            token = doc.get("next_page_token")
            if not token:
                break
            self.assertLess(pages, 10)
        self.assertEqual([(p["step"], p["timestamp"]) for p in points],
                         [(0, 1700000000001), (1, 1700000000002),
                          (2, 1700000000003), (3, 1700000000004)])
        self.assertEqual(points[1]["value"], "NaN")
        self.assertEqual(points[0]["value"], 1.5)
        self.assertEqual(a.get("metrics/get-history", run_id=rid,
                               metric_key="never")["metrics"], [])
        # Update: status and end time, then the name (also the tag).
        ri = a.post("runs/update", run_id=rid, status="FINISHED",
                    end_time=1700000009999)["run_info"]
        self.assertEqual((ri["status"], ri["end_time"]),
                         ("FINISHED", 1700000009999))
        ri = a.post("runs/update", run_id=rid, run_name="renamed")["run_info"]
        self.assertEqual((ri["run_name"], ri["status"]),
                         ("renamed", "FINISHED"))
        tags = {t["key"]: t["value"] for t in
                a.get("runs/get", run_id=rid)["run"]["data"]["tags"]}
        self.assertEqual(tags["mlflow.runName"], "renamed")
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "runs/update",
                 run_id=rid, status="DONE")
        # log-inputs: datasets come back as inputs, not as tags.
        ds = {"name": "mnist", "digest": "a1b2c3", "source_type": "local",
              "source": "{\"uri\": \"/data\"}"}
        a.post("runs/log-inputs", run_id=rid, datasets=[
            {"tags": [{"key": "mlflow.data.context", "value": "train"}],
             "dataset": ds}])
        got = a.get("runs/get", run_id=rid)["run"]
        self.assertEqual(got["inputs"]["dataset_inputs"], [
            {"tags": [{"key": "mlflow.data.context", "value": "train"}],
             "dataset": ds}])
        self.assertFalse(any(t["key"].startswith("mlflow.dataset.")
                             for t in got["data"]["tags"]))
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "runs/log-inputs",
                 run_id=rid, datasets=[{"dataset": {"name": "x"}}])
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "runs/log-inputs",
                 run_id=rid, datasets=[{"dataset": dict(ds,
                                                        profile="p" * 6000)}])

    def test_retried_writes_do_not_double_points(self):
        """MLflow's client sends no Idempotency-Key: a log-batch or
        log-metric sent again (after an answer that never arrived, or
        through another node) logs its points once; its tags still apply;
        a batch with any point different (a new timestamp) applies; an
        Idempotency-Key header takes precedence over the content."""
        import socket
        a = self.alpha
        eid = self.new_experiment(a, "idem/x")
        rid = self.new_run(a, eid)["info"]["run_id"]
        batch = {"run_id": rid,
                 "metrics": [{"key": "loss", "value": 0.5 + i,
                              "timestamp": 1700000000000 + i, "step": i}
                             for i in range(3)],
                 "tags": [{"key": "phase", "value": "one"}]}
        # The first attempt: sent on a raw connection that is closed
        # before the answer is read (the answer is lost).
        host, port = self.ep[len("http://"):].rsplit(":", 1)
        body = json.dumps(batch).encode()
        head = ("POST /api/2.0/mlflow/runs/log-batch HTTP/1.1\r\n"
                "Host: %s\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n"
                "Connection: close\r\n\r\n" %
                (host, self.tokens[("alpha", "writer")], len(body)))
        with socket.create_connection((host, int(port)), timeout=10) as sk:
            sk.sendall(head.encode() + body)
            sk.shutdown(socket.SHUT_WR)
        # The client retries (here through the leader and a follower), with
        # a tag changed in between by another request.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            h = a.get("metrics/get-history", run_id=rid, metric_key="loss")
            if len(h.get("metrics", [])) == 3:
                break
            time.sleep(0.05)
        a.post("runs/set-tag", run_id=rid, key="phase", value="two")
        self.assertEqual(a.post("runs/log-batch", **batch), {})
        fol = MlflowRest(self.fol, self.tokens[("alpha", "writer")])
        self.assertEqual(fol.post("runs/log-batch", **batch), {})
        one = {"run_id": rid, "key": "acc", "value": 0.9,
               "timestamp": 1700000000100, "step": 7}
        for _ in range(3):
            self.assertEqual(a.post("runs/log-metric", **one), {})
        hist = a.get("metrics/get-history", run_id=rid, metric_key="loss")
        self.assertEqual([(m["step"], m["value"]) for m in hist["metrics"]],
                         [(0, 0.5), (1, 1.5), (2, 2.5)])
        hist = a.get("metrics/get-history", run_id=rid, metric_key="acc")
        self.assertEqual(len(hist["metrics"]), 1, hist)
        tags = {t["key"]: t["value"]
                for t in a.get("runs/get", run_id=rid)["run"]["data"]["tags"]}
        self.assertEqual(tags["phase"], "one")  # The retried tag applied.
        # Another timestamp is another point: it is logged.
        one["timestamp"] += 1
        a.post("runs/log-metric", **one)
        hist = a.get("metrics/get-history", run_id=rid, metric_key="acc")
        self.assertEqual(len(hist["metrics"]), 2, hist)
        # The same body with explicit keys: the keys decide.
        tok = self.tokens[("alpha", "writer")]
        for seq in (1, 2, 2):
            st, doc, _ = http_json(
                self.ep, "POST", "/api/2.0/mlflow/runs/log-metric", one,
                headers={"Authorization": "Bearer " + tok,
                         "Idempotency-Key": "%d/%d" % (424242, seq)})
            self.assertEqual(st, 200, doc)
        hist = a.get("metrics/get-history", run_id=rid, metric_key="acc")
        self.assertEqual(len(hist["metrics"]), 4, hist)

    def test_log_batch_limits_and_bad_input_change_nothing(self):
        a = self.alpha
        eid = self.new_experiment(a, "limits/x")
        rid = self.new_run(a, eid)["info"]["run_id"]

        def metric(i):
            return {"key": "m", "value": i, "timestamp": 1, "step": i}
        cases = [
            {"metrics": [metric(i) for i in range(1001)]},
            {"params": [{"key": "p%d" % i, "value": "v"} for i in range(101)]},
            {"tags": [{"key": "t%d" % i, "value": "v"} for i in range(101)]},
            {"metrics": [metric(i) for i in range(1000)],
             "params": [{"key": "p", "value": "v"}]},
            {"metrics": [{"key": "m", "value": "one", "timestamp": 1}]},
            {"metrics": [{"key": "m", "value": 1}]},  # no timestamp
            {"metrics": [{"key": "../m", "value": 1, "timestamp": 1}]},
            {"metrics": [{"key": "m", "value": 1, "timestamp": "x"}]},
            {"params": [{"key": "p", "value": "v" * 6001}]},
            {"tags": [{"key": "t", "value": "v" * 5001}]},
            {"metrics": "all"},
        ]
        for body in cases:
            body = dict(body, run_id=rid)
            self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "runs/log-batch",
                     **body)
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "runs/log-batch",
                 metrics=[])
        self.err(a.post, 404, "RESOURCE_DOES_NOT_EXIST", "runs/log-batch",
                 run_id="f" * 32, metrics=[metric(1)])
        self.err(a.get, 404, "RESOURCE_DOES_NOT_EXIST", "runs/get",
                 run_id="f" * 32)
        data = a.get("runs/get", run_id=rid)["run"]["data"]
        self.assertEqual((data["metrics"], data["params"]), ([], []))
        # Exactly at the limits is accepted.
        a.post("runs/log-batch", run_id=rid,
               metrics=[metric(i) for i in range(900)],
               params=[{"key": "p%d" % i, "value": "v"} for i in range(100)])
        h = a.get("metrics/get-history", run_id=rid, metric_key="m")
        self.assertEqual(len(h["metrics"]), 900)

    def test_search_runs_filter_order_views_and_pages(self):
        a = self.alpha
        e1 = self.new_experiment(a, "search/one")
        e2 = self.new_experiment(a, "search/two")
        want = {}
        for i in range(25):
            eid = e1 if i < 20 else e2
            rid = self.new_run(a, eid, run_name="r%02d" % i)["info"]["run_id"]
            a.post("runs/log-batch", run_id=rid,
                   metrics=[{"key": "acc", "value": i / 100.0,
                             "timestamp": 1, "step": 0}],
                   params=[{"key": "opt", "value": "adam" if i % 2
                            else "sgd"}])
            want[rid] = i
        # Pages of 4 to the end, ordered by the metric.
        got, token, pages = [], None, 0
        while True:
            args = {"experiment_ids": [e1], "max_results": 4,
                    "filter": "metrics.acc >= 0.05 and params.opt = 'adam'",
                    "order_by": ["metrics.acc DESC"]}
            if token:
                args["page_token"] = token
            doc = a.post("runs/search", **args)
            got += doc.get("runs", [])
            pages += 1
            token = doc.get("next_page_token")
            if not token:
                break
            self.assertLess(pages, 20)
        expect = sorted((r for r, i in want.items()
                         if i < 20 and i >= 5 and i % 2), key=lambda r: -want[r])
        self.assertEqual([r["info"]["run_id"] for r in got], expect)
        self.assertEqual(pages, 2)
        for r in got:
            self.assertEqual(r["info"]["experiment_id"], e1)
            self.assertEqual(r["data"]["params"],
                             [{"key": "opt", "value": "adam"}])
        # Two experiments at once; the system tag is searchable.
        both = a.post("runs/search", experiment_ids=[e1, e2],
                      filter="tags.mlflow.runName LIKE 'r2%'",
                      max_results=100)["runs"]
        self.assertEqual(sorted(r["info"]["run_name"] for r in both),
                         ["r20", "r21", "r22", "r23", "r24"])
        self.assertEqual({r["info"]["experiment_id"] for r in both}, {e2})
        # run_view_type: a deleted run (delete needs the admin role).
        victim = expect[0]
        self.err(a.post, 403, "PERMISSION_DENIED", "runs/delete",
                 run_id=victim)
        self.alpha_admin.post("runs/delete", run_id=victim)
        self.assertEqual(a.get("runs/get", run_id=victim)["run"]["info"]
                         ["lifecycle_stage"], "deleted")

        def ids(view):
            return {r["info"]["run_id"] for r in a.post(
                "runs/search", experiment_ids=[e1], run_view_type=view,
                max_results=1000).get("runs", [])}
        self.assertEqual(ids("DELETED_ONLY"), {victim})
        self.assertEqual(len(ids("ACTIVE_ONLY")), 19)
        self.assertNotIn(victim, ids("ACTIVE_ONLY"))
        self.assertEqual(len(ids("ALL")), 20)
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "runs/log-metric",
                 run_id=victim, key="acc", value=1, timestamp=1)
        self.alpha_admin.post("runs/restore", run_id=victim)
        self.assertEqual(len(ids("ACTIVE_ONLY")), 20)
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "runs/search",
                 experiment_ids=[e1], max_results=50001)
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "runs/search",
                 experiment_ids=[e1], filter="metrics.acc >")
        self.err(a.post, 400, "INVALID_PARAMETER_VALUE", "runs/search",
                 experiment_ids=[e1], run_view_type="SOME")
        self.assertEqual(a.post("runs/search",
                                experiment_ids=["987654"]).get("runs", []),
                         [])

    def test_long_history_pages_and_bulk_interval(self):
        a = self.alpha
        eid = self.new_experiment(a, "long/series")
        rid = self.new_run(a, eid)["info"]["run_id"]
        total = 101000  # Over one read's 100,000 points: windows.
        for b in range(0, total, 1000):
            a.post("runs/log-batch", run_id=rid, metrics=[
                {"key": "loss", "value": (50.0 if s == 77777 else s % 7),
                 "timestamp": 1000 + s, "step": s}
                for s in range(b, b + 1000)])
        steps, token, pages = [], None, 0
        while True:
            args = {"run_id": rid, "metric_key": "loss",
                    "max_results": 25000}
            if token:
                args["page_token"] = token
            doc = a.get("metrics/get-history", **args)
            steps += [p["step"] for p in doc["metrics"]]
            pages += 1
            token = doc.get("next_page_token")
            if not token:
                break
            self.assertLess(pages, 40)
        self.assertEqual(steps, list(range(total)))
        # Without max_results: every point a read may hold, then pages.
        first = a.get("metrics/get-history", run_id=rid, metric_key="loss")
        self.assertIn("next_page_token", first)
        # Bulk interval: M4 keeps the spike that sampling would miss.
        other = self.new_run(a, eid)["info"]["run_id"]
        a.post("runs/log-batch", run_id=other, metrics=[
            {"key": "loss", "value": 1.0, "timestamp": 1, "step": s}
            for s in range(0, 1000, 10)])
        url = ("metrics/get-history-bulk-interval?" + urllib.parse.urlencode(
            [("run_ids", rid), ("run_ids", other), ("metric_key", "loss"),
             ("max_results", 40)]))
        doc = a.call("GET", url)
        by_run = {}
        for p in doc["metrics"]:
            self.assertEqual(p["key"], "loss")
            by_run.setdefault(p["run_id"], []).append(p)
        self.assertEqual(set(by_run), {rid, other})
        self.assertLessEqual(len(by_run[rid]), 40)
        self.assertIn(50.0, [p["value"] for p in by_run[rid]])
        self.assertEqual(by_run[rid][0]["step"], 0)
        self.assertEqual(by_run[rid][-1]["step"], total - 1)
        ranged = a.call("GET", "metrics/get-history-bulk-interval?" +
                        urllib.parse.urlencode(
                            [("run_ids", other), ("metric_key", "loss"),
                             ("start_step", 100), ("end_step", 200)]))
        self.assertEqual([p["step"] for p in ranged["metrics"]],
                         list(range(100, 201, 10)))
        self.err(a.get, 400, "INVALID_PARAMETER_VALUE",
                 "metrics/get-history-bulk-interval", metric_key="loss")
        self.err(a.get, 400, "INVALID_PARAMETER_VALUE",
                 "metrics/get-history-bulk-interval", run_ids=rid,
                 metric_key="loss", max_results=2501)
        self.err(self.beta.get, 404, "RESOURCE_DOES_NOT_EXIST",
                 "metrics/get-history-bulk-interval", run_ids=rid,
                 metric_key="loss")

    def test_artifact_proxy(self):
        a = self.alpha
        eid = self.new_experiment(a, "art/x")
        info = self.new_run(a, eid)["info"]
        rid = info["run_id"]
        # The client turns mlflow-artifacts:/<rest> into this URL.
        rest = info["artifact_uri"][len("mlflow-artifacts:/"):]
        base = self.ep + "/api/2.0/mlflow-artifacts/artifacts/" + rest
        tok = self.tokens[("alpha", "writer")]
        blobs = {"model/weights.bin": os.urandom(700 * 1024),
                 "model/conf/a.json": b'{"a": 1}', "notes.txt": b"hello"}

        def req(method, url, data=None, token=tok):
            r = urllib.request.Request(url, data=data, method=method,
                                       headers={"Authorization":
                                                "Bearer " + token})
            try:
                with urllib.request.urlopen(r, timeout=10) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()
        for path, data in blobs.items():
            st, body = req("PUT", base + "/" + path, data)
            self.assertEqual(st, 200, body)
        for path, data in blobs.items():
            self.assertEqual(req("GET", base + "/" + path), (200, data))
        st, body = req("GET", self.ep + "/api/2.0/mlflow-artifacts/artifacts"
                       "?path=" + urllib.parse.quote(rest))
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["files"],
                         [{"path": "model", "is_dir": True},
                          {"path": "notes.txt", "is_dir": False,
                           "file_size": 5}])
        st, body = req("GET", self.ep + "/ajax-api/2.0/mlflow-artifacts/"
                       "artifacts?path=" + urllib.parse.quote(rest +
                                                               "/model"))
        self.assertEqual(json.loads(body)["files"],
                         [{"path": "conf", "is_dir": True},
                          {"path": "weights.bin", "is_dir": False,
                           "file_size": 700 * 1024}])
        doc = a.call("GET", "artifacts/list",
                     {"run_id": rid, "path": "model/conf"})
        self.assertEqual(doc, {"root_uri": info["artifact_uri"],
                               "files": [{"path": "model/conf/a.json",
                                          "is_dir": False,
                                          "file_size": 8}]})
        # Over the 16 MiB a collected body may hold: streamed both ways
        # (read and written a chunk at a time), byte-exact.
        big = os.urandom(40 * 1024 * 1024 + 12345)
        r = urllib.request.Request(base + "/big/blob.bin", data=big,
                                   method="PUT",
                                   headers={"Authorization": "Bearer " + tok})
        with urllib.request.urlopen(r, timeout=120) as resp:
            self.assertEqual(json.loads(resp.read())["size"], len(big))
        r = urllib.request.Request(base + "/big/blob.bin",
                                   headers={"Authorization": "Bearer " + tok})
        with urllib.request.urlopen(r, timeout=120) as resp:
            self.assertEqual(int(resp.headers["Content-Length"]), len(big))
            self.assertTrue(resp.read() == big)
        # A streamed PUT cut short, one refused after its first chunk (the
        # token is checked when the chunk is proposed) and one without
        # Content-Length: answered (or dropped), the node serves on, and
        # the refused upload's body is not taken as the next request.
        import socket
        host, port = self.ep[len("http://"):].rsplit(":", 1)
        path = base[len(self.ep):]

        def raw(head_extra, body, want, cut=False):
            with socket.create_connection((host, int(port)), timeout=10) as k:
                k.sendall(("PUT %s HTTP/1.1\r\nHost: x\r\n%s\r\n" %
                           (path + "/cut.bin", head_extra)).encode() + body)
                if cut:
                    k.shutdown(socket.SHUT_WR)
                got = b""
                while True:
                    part = k.recv(65536)
                    if not part:
                        break
                    got += part
            # A body cut short: the client is gone, nng closes the
            # connection with it (no answer, or a 400 when one gets out).
            self.assertTrue(got.startswith(want) or (want == b"HTTP/1.1 400"
                                                     and got == b""),
                            got[:200])
            if got:
                self.assertIn(b"connection: close", got.lower())
        raw("Authorization: Bearer %s\r\nContent-Length: 30000000\r\n" % tok,
            os.urandom(1 << 20), b"HTTP/1.1 400", cut=True)
        raw("Content-Length: 30000000\r\n",
            b"PUT /evil HTTP/1.1\r\n\r\n" + os.urandom(600 * 1024),
            b"HTTP/1.1 401")
        raw("Authorization: Bearer %s\r\n" % tok, b"abc", b"HTTP/1.1 411")
        self.assertEqual(req("GET", base + "/notes.txt"), (200, b"hello"))
        # Bad paths, missing files, another team.
        self.assertEqual(req("PUT", base + "/../x", b"1")[0], 400)
        self.assertEqual(req("GET", base + "/nope")[0], 404)
        self.assertEqual(req("GET", self.ep + "/api/2.0/mlflow-artifacts/"
                             "artifacts/" + eid + "/x")[0], 404)
        st, body = req("GET", base + "/notes.txt",
                       token=self.tokens[("beta", "writer")])
        self.assertEqual((st, json.loads(body)["error_code"]),
                         (404, "RESOURCE_DOES_NOT_EXIST"))
        self.assertEqual(req("PUT", base + "/evil.txt", b"x",
                             token=self.tokens[("beta", "writer")])[0], 404)

    # ---- Teams -------------------------------------------------------------

    def test_another_teams_experiments_and_runs_do_not_exist(self):
        a, b = self.alpha, self.beta
        eid = self.new_experiment(a, "secret/model")
        rid = self.new_run(a, eid, run_name="hidden")["info"]["run_id"]
        a.post("runs/log-metric", run_id=rid, key="acc", value=0.9,
               timestamp=1)
        self.err(b.get, 404, "RESOURCE_DOES_NOT_EXIST", "experiments/get",
                 experiment_id=eid)
        self.err(b.get, 404, "RESOURCE_DOES_NOT_EXIST",
                 "experiments/get-by-name", experiment_name="secret/model")
        self.err(b.get, 404, "RESOURCE_DOES_NOT_EXIST", "runs/get",
                 run_id=rid)
        self.err(b.post, 404, "RESOURCE_DOES_NOT_EXIST", "runs/log-metric",
                 run_id=rid, key="acc", value=0.1, timestamp=2)
        self.err(b.post, 404, "RESOURCE_DOES_NOT_EXIST", "runs/set-tag",
                 run_id=rid, key="x", value="y")
        self.err(b.post, 404, "RESOURCE_DOES_NOT_EXIST",
                 "experiments/set-experiment-tag", experiment_id=eid,
                 key="x", value="y")
        self.err(b.post, 404, "RESOURCE_DOES_NOT_EXIST", "experiments/delete",
                 experiment_id=eid)
        self.err(b.post, 404, "RESOURCE_DOES_NOT_EXIST", "runs/create",
                 experiment_id=eid)
        self.err(b.get, 404, "RESOURCE_DOES_NOT_EXIST", "metrics/get-history",
                 run_id=rid, metric_key="acc")
        self.assertEqual(b.post("runs/search", experiment_ids=[eid],
                                filter="metrics.acc > 0").get("runs", []), [])
        names = [e["name"] for e in
                 b.post("experiments/search")["experiments"]]
        self.assertNotIn("secret/model", names)
        # Each team has its own names: the same name is a new experiment.
        beid = self.new_experiment(b, "secret/model")
        self.assertNotEqual(beid, eid)
        self.assertEqual(a.get("experiments/get", experiment_id=eid)
                         ["experiment"]["name"], "secret/model")
        # Nothing of alpha changed.
        h = a.get("metrics/get-history", run_id=rid, metric_key="acc")
        self.assertEqual([p["value"] for p in h["metrics"]], [0.9])
        # A reader reads and writes nothing.
        r = MlflowRest(self.ep, self.tokens[("alpha", "reader")])
        self.assertEqual(r.get("experiments/get", experiment_id=eid)
                         ["experiment"]["name"], "secret/model")
        self.err(r.post, 403, "PERMISSION_DENIED", "experiments/create",
                 name="reader/x")
        self.err(r.post, 403, "PERMISSION_DENIED",
                 "experiments/set-experiment-tag", experiment_id=eid,
                 key="x", value="y")
        self.err(r.post, 403, "PERMISSION_DENIED", "runs/log-metric",
                 run_id=rid, key="acc", value=0.1, timestamp=2)
        # No token, or a wrong one: 401.
        self.err(MlflowRest(self.ep, None).post, 401, "UNAUTHENTICATED",
                 "experiments/search")
        self.err(MlflowRest(self.ep, "rvt_" + "0" * 16 + "_" + "0" * 64)
                 .get, 401, "UNAUTHENTICATED", "experiments/get",
                 experiment_id=eid)

    # ---- The mapping ---------------------------------------------------

    def test_mapping_both_ways_through_followers(self):
        f = MlflowRest(self.fol, self.tokens[("alpha", "writer")])
        ajax = MlflowRest(self.c.http_endpoints[(self.li + 2) % 3],
                          self.tokens[("alpha", "writer")],
                          prefix="/ajax-api/2.0/mlflow")
        # MLflow -> runvault: made through a follower.
        eid = self.new_experiment(f, "mapping/mlflow")
        rid = self.new_run(f, eid, run_name="via-mlflow",
                           user_id="ana")["info"]["run_id"]
        f.post("runs/log-batch", run_id=rid,
               metrics=[{"key": "loss", "value": 0.5, "timestamp": 10,
                         "step": 1}],
               params=[{"key": "lr", "value": "0.1"}])
        st, doc, _ = http_json(self.ep, "GET", "/api/v2/runs/" + rid +
                               "?consistency=leader",
                               headers=self.hdr(self.tokens[("alpha",
                                                             "writer")]))
        self.assertEqual(st, 200, doc)
        run = doc["run"]
        self.assertEqual((run["project"], run["experiment"], run["name"],
                          run["user"], run["team"]),
                         ("mapping", "mlflow", "via-mlflow", "ana", "alpha"))
        self.assertEqual(run["params"], {"lr": "0.1"})
        self.assertEqual(run["tags"]["mlflow.runName"], "via-mlflow")
        self.assertEqual(run["summary"]["loss"]["last"], 0.5)
        # runvault -> MLflow: a run made through /api/v2 in a new scope.
        st, doc, _ = http_json(self.ep, "POST", "/api/v2/runs",
                               {"project": "native", "experiment": "exp",
                                "name": "via-v2", "params": {"k": "v"}},
                               headers=self.hdr(self.tokens[("alpha",
                                                             "writer")]))
        self.assertEqual(st, 201, doc)
        native = doc["run_id"]
        st, doc, _ = http_json(self.ep, "POST", "/api/v2/runs/%s/log-batch"
                               % native,
                               {"metrics": [{"key": "acc", "value": 0.75,
                                             "step": 4, "timestamp": 99}]},
                               headers=self.hdr(self.tokens[("alpha",
                                                             "writer")]))
        self.assertEqual(st, 200, doc)
        exp = ajax.get("experiments/get-by-name",
                       experiment_name="native/exp")["experiment"]
        found = ajax.post("runs/search",
                          experiment_ids=[exp["experiment_id"]])["runs"]
        self.assertEqual([r["info"]["run_id"] for r in found], [native])
        self.assertEqual(found[0]["info"]["run_name"], "via-v2")
        self.assertEqual(found[0]["info"]["experiment_id"],
                         exp["experiment_id"])
        self.assertEqual(found[0]["data"]["metrics"],
                         [{"key": "acc", "value": 0.75, "timestamp": 99,
                           "step": 4}])
        self.assertEqual(found[0]["data"]["params"],
                         [{"key": "k", "value": "v"}])
        got = ajax.get("runs/get", run_id=native)["run"]["info"]
        self.assertEqual(got["experiment_id"], exp["experiment_id"])
        # The Default experiment holds runs of project default, experiment
        # Default.
        rid0 = self.new_run(f, "0", run_name="in-default")["info"]["run_id"]
        st, doc, _ = http_json(self.ep, "GET", "/api/v2/runs/" + rid0,
                               headers=self.hdr(self.tokens[("alpha",
                                                             "writer")]))
        self.assertEqual((doc["run"]["project"], doc["run"]["experiment"]),
                         ("default", "Default"))
        self.assertIn(rid0, [r["info"]["run_id"] for r in ajax.post(
            "runs/search", experiment_ids=["0"])["runs"]])
        # Every node answers the same ids (replicated, not per node).
        for ep in self.c.http_endpoints:
            x = MlflowRest(ep, self.tokens[("alpha", "writer")])
            self.assertEqual(x.get("experiments/get-by-name",
                                   experiment_name="native/exp")
                             ["experiment"]["experiment_id"],
                             exp["experiment_id"])

    # ---- Malformed input -----------------------------------------------

    def test_malformed_input_never_breaks_a_node(self):
        """A bounded loop of broken and mutated requests over every MLflow
        endpoint: each answer is a JSON error (or a success), never a 5xx
        or a dropped connection, and every node serves on."""
        rng = random.Random(15)
        a = self.alpha
        eid = self.new_experiment(a, "fuzz/base")
        rid = self.new_run(a, eid)["info"]["run_id"]
        posts = ["experiments/create", "experiments/search",
                 "experiments/update", "experiments/delete",
                 "experiments/restore", "experiments/set-experiment-tag",
                 "experiments/delete-experiment-tag",
                 "runs/create", "runs/update", "runs/delete", "runs/restore",
                 "runs/search", "runs/log-batch", "runs/log-metric",
                 "runs/log-parameter", "runs/set-tag", "runs/delete-tag",
                 "runs/log-inputs"]
        gets = ["experiments/get", "experiments/get-by-name", "runs/get",
                "metrics/get-history", "experiments/search",
                "metrics/get-history-bulk-interval"]
        good = {"experiment_id": eid, "run_id": rid, "name": "fuzz/n",
                "new_name": "fuzz/m", "key": "k", "value": "v",
                "metric_key": "k", "timestamp": 1, "step": 1,
                "run_ids": rid, "start_step": 0, "end_step": 9,
                "experiment_ids": [eid], "max_results": 5,
                "metrics": [{"key": "k", "value": 1, "timestamp": 1}],
                "params": [{"key": "p", "value": "v"}],
                "tags": [{"key": "t", "value": "v"}],
                "filter": "metrics.k > 0", "order_by": ["metrics.k"],
                "datasets": [{"dataset": {"name": "d", "digest": "ff"}}]}
        odd = [None, 0, -1, 2 ** 63, 1e308, "", "x" * 300, "\u00e9\u4e2d",
               [], {}, [1, "a"], {"key": None}, True, "NaN", "-Infinity",
               "0", "00", "1e3", "'", "metrics.k >", [{"key": "../a"}]]
        raw_bodies = [b"", b"{", b"[]", b"null", b"\"s\"", b"{\"a\":1,\"a\":2}",
                      b"\xff\xfe", b"{\"run_id\":\"\\u0000\"}", b"1" * 5000,
                      b"{" * 2000 + b"}" * 2000]
        hdr = self.hdr(self.tokens[("alpha", "writer")])
        n = 0
        deadline = time.monotonic() + 60
        for i in range(600):
            if time.monotonic() > deadline:
                break
            path = rng.choice(posts)
            if i < len(raw_bodies) * 3:
                body = raw_bodies[i % len(raw_bodies)]
            else:
                body = {}
                for k in rng.sample(sorted(good), rng.randint(0, 6)):
                    body[k] = rng.choice(odd) if rng.random() < 0.6 \
                        else good[k]
            st, doc, raw = http_json(self.ep, "POST",
                                     "/api/2.0/mlflow/" + path, body,
                                     headers=hdr)
            n += 1
            self.assertLess(st, 500, (path, body, raw[:200]))
            if st != 200:
                self.assertIsInstance(doc, dict, (path, body, raw[:200]))
                self.assertIn("error_code", doc)
        for i in range(150):
            path = rng.choice(gets)
            q = {k: (rng.choice(odd) if rng.random() < 0.6 else good[k])
                 for k in rng.sample(sorted(good), rng.randint(0, 4))}
            qs = urllib.parse.urlencode({k: json.dumps(v) if not
                                         isinstance(v, str) else v
                                         for k, v in q.items()})
            st, doc, raw = http_json(self.ep, "GET", "/api/2.0/mlflow/" +
                                     path + "?" + qs, headers=hdr)
            n += 1
            self.assertLess(st, 500, (path, qs, raw[:200]))
        self.assertGreater(n, 500)
        for ep in self.c.http_endpoints:
            st, doc, _ = http_json(ep, "GET", "/healthz")
            self.assertEqual(st, 200)
        # The run the loop aimed at still answers MLflow's shapes.
        self.assertEqual(a.get("runs/get", run_id=rid)["run"]["info"]
                         ["run_id"], rid)


if __name__ == "__main__":
    unittest.main()
