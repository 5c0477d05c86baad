"""MLflow's REST API 2.0 answers checked against the messages of MLflow's
service.proto (mlflow/protos/service.proto: Experiment, ExperimentTag, Run,
RunInfo, RunData, Metric, Param, RunTag, MetricWithRunId and each
endpoint's Response), written out below as field tables: every field an
answer carries must be a field of its message, of the JSON type MLflow's
server gives it (int64 as a JSON integer, double as a number or the
strings MLflow uses for NaN and the infinities, enums by name), and the
fields MLflow's own server always fills must be there. Requests are the
request messages' fields; the values an answer echoes are compared
exactly (golden values). Errors are exactly {"error_code", "message"}
with MLflow's codes and statuses.

One node, auth off (the caller is the cluster-admin of team `default`).

    RUNVAULT_BIN=build/node/runvault python3 -m unittest tests/e2e/test_mlflow_shapes.py
"""

import json
import os
import sys
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from rvfixture import Cluster  # noqa: E402

# ---- MLflow's messages: field -> type -------------------------------------
# Types: "string", "int64", "double", "bool", an enum ("enum:<name>"), a
# message name, or ["<type>"] for a repeated field.

ENUMS = {
    "RunStatus": {"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"},
}

MESSAGES = {
    "ExperimentTag": {"key": "string", "value": "string"},
    "Experiment": {
        "experiment_id": "string", "name": "string",
        "artifact_location": "string", "lifecycle_stage": "string",
        "last_update_time": "int64", "creation_time": "int64",
        "tags": ["ExperimentTag"],
        "effective_trace_archival_retention": "string",
        "workspace": "string"},
    "RunInfo": {
        "run_id": "string", "run_uuid": "string", "run_name": "string",
        "experiment_id": "string", "user_id": "string",
        "status": "enum:RunStatus", "start_time": "int64",
        "end_time": "int64", "artifact_uri": "string",
        "lifecycle_stage": "string"},
    "Metric": {
        "key": "string", "value": "double", "timestamp": "int64",
        "step": "int64", "dataset_name": "string",
        "dataset_digest": "string", "model_id": "string",
        "run_id": "string"},
    "Param": {"key": "string", "value": "string"},
    "RunTag": {"key": "string", "value": "string"},
    "RunData": {"metrics": ["Metric"], "params": ["Param"],
                "tags": ["RunTag"]},
    "InputTag": {"key": "string", "value": "string"},
    "Dataset": {"name": "string", "digest": "string",
                "source_type": "string", "source": "string",
                "schema": "string", "profile": "string"},
    "DatasetInput": {"tags": ["InputTag"], "dataset": "Dataset"},
    "ModelInput": {"model_id": "string"},
    "ModelOutput": {"model_id": "string", "step": "int64"},
    "RunInputs": {"dataset_inputs": ["DatasetInput"],
                  "model_inputs": ["ModelInput"]},
    "RunOutputs": {"model_outputs": ["ModelOutput"]},
    "Run": {"info": "RunInfo", "data": "RunData", "inputs": "RunInputs",
            "outputs": "RunOutputs"},
    "MetricWithRunId": {
        "key": "string", "value": "double", "timestamp": "int64",
        "step": "int64", "run_id": "string"},
    # Responses.
    "CreateExperiment.Response": {"experiment_id": "string"},
    "GetExperiment.Response": {"experiment": "Experiment"},
    "GetExperimentByName.Response": {"experiment": "Experiment"},
    "SearchExperiments.Response": {"experiments": ["Experiment"],
                                   "next_page_token": "string"},
    "CreateRun.Response": {"run": "Run"},
    "GetRun.Response": {"run": "Run"},
    "UpdateRun.Response": {"run_info": "RunInfo"},
    "SearchRuns.Response": {"runs": ["Run"], "next_page_token": "string"},
    "GetMetricHistory.Response": {"metrics": ["Metric"],
                                  "next_page_token": "string"},
    "GetMetricHistoryBulkInterval.Response": {
        "metrics": ["MetricWithRunId"]},
    "Empty.Response": {},
}

# Fields MLflow's server always fills in an answer (its entities' to_proto
# sets them whatever the store holds).
ALWAYS = {
    "Experiment": {"experiment_id", "name", "artifact_location",
                   "lifecycle_stage"},
    "RunInfo": {"run_id", "run_uuid", "experiment_id", "status",
                "start_time", "artifact_uri", "lifecycle_stage"},
    "Metric": {"key", "value", "timestamp", "step"},
    "MetricWithRunId": {"key", "value", "timestamp", "step", "run_id"},
    "Param": {"key", "value"},
    "RunTag": {"key", "value"},
    "ExperimentTag": {"key", "value"},
    "Run": {"info", "data"},
}

# MLflow's JSON for the doubles JSON cannot carry.
DOUBLE_STRINGS = {"NaN", "Infinity", "-Infinity"}


def conforms(doc, message, where="$"):
    """The ways doc is not a JSON encoding of message (a list of texts)."""
    bad = []
    fields = MESSAGES[message]
    if not isinstance(doc, dict):
        return ["%s: %s is not an object" % (where, message)]
    for k, v in doc.items():
        if k not in fields:
            bad.append("%s.%s: not a field of %s" % (where, k, message))
            continue
        bad += conforms_value(v, fields[k], "%s.%s" % (where, k))
    for k in sorted(ALWAYS.get(message, ())):
        if k not in doc:
            bad.append("%s.%s: missing (MLflow always fills it)" %
                       (where, k))
    return bad


def conforms_value(v, typ, where):
    if isinstance(typ, list):
        if not isinstance(v, list):
            return ["%s: not a list" % where]
        out = []
        for i, x in enumerate(v):
            out += conforms_value(x, typ[0], "%s[%d]" % (where, i))
        return out
    if typ == "string":
        return [] if isinstance(v, str) else ["%s: not a string" % where]
    if typ == "int64":
        ok = isinstance(v, int) and not isinstance(v, bool)
        return [] if ok else ["%s: not an integer: %r" % (where, v)]
    if typ == "double":
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool)) or \
            v in DOUBLE_STRINGS
        return [] if ok else ["%s: not a double: %r" % (where, v)]
    if typ == "bool":
        return [] if isinstance(v, bool) else ["%s: not a bool" % where]
    if typ.startswith("enum:"):
        ok = v in ENUMS[typ[5:]]
        return [] if ok else ["%s: not a %s: %r" % (where, typ[5:], v)]
    return conforms(v, typ, where)


class MlflowShapes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(n=1).start()
        cls.base = cls.c.http_endpoints[0] + "/api/2.0/mlflow/"

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def call(self, method, path, args=None):
        """(status, JSON answer) of MLflow's client's way of calling."""
        url = self.base + path
        data = None
        headers = {}
        if method == "GET" and args:
            url += "?" + urllib.parse.urlencode(args, doseq=True)
        elif method != "GET":
            data = json.dumps(args or {}).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def ok(self, method, path, args, message):
        st, doc = self.call(method, path, args)
        self.assertEqual(st, 200, (path, doc))
        self.assertEqual(conforms(doc, message), [], (path, doc))
        return doc

    def error(self, method, path, args, status, code):
        st, doc = self.call(method, path, args)
        self.assertEqual((st, set(doc)), (status, {"error_code", "message"}),
                         (path, doc))
        self.assertEqual(doc["error_code"], code, (path, doc))
        self.assertIsInstance(doc["message"], str)
        self.assertTrue(doc["message"])

    def test_the_checker_finds_what_is_wrong(self):
        """The checker itself: each kind of wrong answer is found."""
        good = {"run": {"info": {
            "run_id": "r", "run_uuid": "r", "experiment_id": "1",
            "status": "RUNNING", "start_time": 1, "artifact_uri": "a",
            "lifecycle_stage": "active"}, "data": {}}}
        self.assertEqual(conforms(good, "GetRun.Response"), [])
        for path, value in ((("run", "info", "start_time"), "1"),
                            (("run", "info", "status"), "DONE"),
                            (("run", "info", "extra"), 1),
                            (("run", "data", "metrics"), {}),
                            (("run", "data", "params"), [{"key": 1}])):
            bad = json.loads(json.dumps(good))
            d = bad
            for k in path[:-1]:
                d = d[k]
            d[path[-1]] = value
            self.assertNotEqual(conforms(bad, "GetRun.Response"), [], path)
        del good["run"]["info"]["artifact_uri"]
        self.assertNotEqual(conforms(good, "GetRun.Response"), [])

    def test_every_endpoint_answers_in_mlflows_shapes(self):
        # Experiments: CreateExperiment {name, artifact_location?, tags}.
        created = self.ok("POST", "experiments/create", {
            "name": "shapes/exp", "tags": [{"key": "team", "value": "cv"}]},
            "CreateExperiment.Response")
        eid = created["experiment_id"]
        self.assertTrue(eid.isdigit(), eid)
        exp = self.ok("GET", "experiments/get", {"experiment_id": eid},
                      "GetExperiment.Response")["experiment"]
        self.assertEqual((exp["experiment_id"], exp["name"],
                          exp["lifecycle_stage"]),
                         (eid, "shapes/exp", "active"))
        self.assertIn({"key": "team", "value": "cv"}, exp.get("tags", []))
        by_name = self.ok("GET", "experiments/get-by-name",
                          {"experiment_name": "shapes/exp"},
                          "GetExperimentByName.Response")["experiment"]
        self.assertEqual(by_name["experiment_id"], eid)
        found = self.ok("POST", "experiments/search", {
            "max_results": 10, "filter": "name = 'shapes/exp'"},
            "SearchExperiments.Response")
        self.assertEqual([e["experiment_id"] for e in found["experiments"]],
                         [eid])
        self.ok("GET", "experiments/search", {"max_results": 10},
                "SearchExperiments.Response")
        self.ok("POST", "experiments/set-experiment-tag", {
            "experiment_id": eid, "key": "k", "value": "v"},
            "Empty.Response")
        self.ok("POST", "experiments/update", {
            "experiment_id": eid, "new_name": "shapes/exp2"},
            "Empty.Response")

        # Runs: CreateRun {experiment_id, user_id, run_name, start_time,
        # tags}.
        run = self.ok("POST", "runs/create", {
            "experiment_id": eid, "user_id": "ada", "run_name": "golden",
            "start_time": 1700000000000,
            "tags": [{"key": "mlflow.source.name", "value": "train.py"}]},
            "CreateRun.Response")["run"]
        info = run["info"]
        rid = info["run_id"]
        self.assertEqual((info["run_uuid"], info["experiment_id"],
                          info["run_name"], info["start_time"],
                          info["status"], info["lifecycle_stage"]),
                         (rid, eid, "golden", 1700000000000, "RUNNING",
                          "active"))
        # LogBatch {run_id, metrics, params, tags}; LogMetric, LogParam,
        # SetTag, DeleteTag; each answers an empty Response.
        self.ok("POST", "runs/log-batch", {
            "run_id": rid,
            "metrics": [{"key": "loss", "value": 0.5,
                         "timestamp": 1700000000001, "step": 1},
                        {"key": "loss", "value": 0.25,
                         "timestamp": 1700000000002, "step": 2},
                        {"key": "odd", "value": "NaN",
                         "timestamp": 1700000000003, "step": 0}],
            "params": [{"key": "lr", "value": "0.01"}],
            "tags": [{"key": "t", "value": "1"}]}, "Empty.Response")
        self.ok("POST", "runs/log-metric", {
            "run_id": rid, "key": "acc", "value": 0.75,
            "timestamp": 1700000000004, "step": 3}, "Empty.Response")
        self.ok("POST", "runs/log-parameter", {
            "run_id": rid, "key": "opt", "value": "adam"}, "Empty.Response")
        self.ok("POST", "runs/set-tag", {
            "run_id": rid, "key": "gone", "value": "x"}, "Empty.Response")
        self.ok("POST", "runs/delete-tag", {"run_id": rid, "key": "gone"},
                "Empty.Response")
        # LogInputs {run_id, datasets: [DatasetInput]}.
        self.ok("POST", "runs/log-inputs", {"run_id": rid, "datasets": [{
            "tags": [{"key": "mlflow.data.context", "value": "training"}],
            "dataset": {"name": "mnist", "digest": "d41d8cd9",
                        "source_type": "local", "source": "/data/mnist"}}]},
            "Empty.Response")
        got = self.ok("GET", "runs/get", {"run_id": rid},
                      "GetRun.Response")["run"]
        data = got["data"]
        ins = got.get("inputs", {}).get("dataset_inputs", [])
        self.assertEqual([(d["dataset"]["name"], d["dataset"]["digest"])
                          for d in ins], [("mnist", "d41d8cd9")])
        self.assertEqual(
            sorted((p["key"], p["value"]) for p in data["params"]),
            [("lr", "0.01"), ("opt", "adam")])
        tags = {t["key"]: t["value"] for t in data["tags"]}
        self.assertEqual(tags.get("t"), "1")
        self.assertEqual(tags.get("mlflow.source.name"), "train.py")
        self.assertEqual(tags.get("mlflow.runName"), "golden")
        self.assertNotIn("gone", tags)
        latest = {m["key"]: m for m in data["metrics"]}
        self.assertEqual((latest["loss"]["value"], latest["loss"]["step"],
                          latest["loss"]["timestamp"]),
                         (0.25, 2, 1700000000002))
        self.assertEqual(latest["odd"]["value"], "NaN")
        self.assertEqual(latest["acc"]["value"], 0.75)
        hist = self.ok("GET", "metrics/get-history",
                       {"run_id": rid, "metric_key": "loss"},
                       "GetMetricHistory.Response")["metrics"]
        self.assertEqual([(m["key"], m["value"], m["timestamp"], m["step"])
                          for m in hist],
                         [("loss", 0.5, 1700000000001, 1),
                          ("loss", 0.25, 1700000000002, 2)])
        paged = self.ok("GET", "metrics/get-history",
                        {"run_id": rid, "metric_key": "loss",
                         "max_results": 1}, "GetMetricHistory.Response")
        self.assertEqual(len(paged["metrics"]), 1)
        self.assertTrue(paged.get("next_page_token"))
        bulk = self.ok("GET", "metrics/get-history-bulk-interval",
                       {"run_ids": [rid], "metric_key": "loss",
                        "max_results": 10},
                       "GetMetricHistoryBulkInterval.Response")["metrics"]
        self.assertEqual([(m["run_id"], m["step"], m["value"])
                          for m in bulk], [(rid, 1, 0.5), (rid, 2, 0.25)])
        # UpdateRun {run_id, status, end_time, run_name} -> run_info.
        upd = self.ok("POST", "runs/update", {
            "run_id": rid, "status": "FINISHED", "end_time": 1700000001000,
            "run_name": "golden2"}, "UpdateRun.Response")["run_info"]
        self.assertEqual((upd["status"], upd["end_time"], upd["run_name"]),
                         ("FINISHED", 1700000001000, "golden2"))
        runs = self.ok("POST", "runs/search", {
            "experiment_ids": [eid], "filter": "metrics.loss < 0.3",
            "order_by": ["metrics.loss ASC"], "max_results": 5},
            "SearchRuns.Response")["runs"]
        self.assertEqual([r["info"]["run_id"] for r in runs], [rid])
        self.ok("POST", "runs/delete", {"run_id": rid}, "Empty.Response")
        deleted = self.ok("GET", "runs/get", {"run_id": rid},
                          "GetRun.Response")["run"]["info"]
        self.assertEqual(deleted["lifecycle_stage"], "deleted")
        self.ok("POST", "runs/restore", {"run_id": rid}, "Empty.Response")
        self.ok("POST", "experiments/delete", {"experiment_id": eid},
                "Empty.Response")
        self.ok("POST", "experiments/restore", {"experiment_id": eid},
                "Empty.Response")

    def test_errors_are_mlflows(self):
        self.error("GET", "runs/get", {"run_id": "no-such-run"}, 404,
                   "RESOURCE_DOES_NOT_EXIST")
        self.error("GET", "experiments/get", {"experiment_id": "987654"},
                   404, "RESOURCE_DOES_NOT_EXIST")
        self.error("GET", "experiments/get-by-name",
                   {"experiment_name": "shapes/none"}, 404,
                   "RESOURCE_DOES_NOT_EXIST")
        self.ok("POST", "experiments/create", {"name": "shapes/dup"},
                "CreateExperiment.Response")
        self.error("POST", "experiments/create", {"name": "shapes/dup"},
                   400, "RESOURCE_ALREADY_EXISTS")
        self.error("POST", "experiments/create", {}, 400,
                   "INVALID_PARAMETER_VALUE")
        eid = self.ok("POST", "experiments/create", {"name": "shapes/err"},
                      "CreateExperiment.Response")["experiment_id"]
        rid = self.ok("POST", "runs/create", {"experiment_id": eid},
                      "CreateRun.Response")["run"]["info"]["run_id"]
        self.ok("POST", "runs/log-parameter",
                {"run_id": rid, "key": "p", "value": "1"}, "Empty.Response")
        # A param's value is immutable.
        self.error("POST", "runs/log-parameter",
                   {"run_id": rid, "key": "p", "value": "2"}, 400,
                   "INVALID_PARAMETER_VALUE")
        # LogBatch limits: 1000 metrics.
        self.error("POST", "runs/log-batch", {"run_id": rid, "metrics": [
            {"key": "m", "value": 1, "timestamp": 1, "step": i}
            for i in range(1001)]}, 400, "INVALID_PARAMETER_VALUE")
        self.error("POST", "runs/log-metric", {
            "run_id": rid, "key": "m", "value": "not a number",
            "timestamp": 1}, 400, "INVALID_PARAMETER_VALUE")


if __name__ == "__main__":
    unittest.main()
