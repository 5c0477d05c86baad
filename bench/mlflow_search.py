"""MLflow runs/search against runvault's own run list, on one node
(loopback, auth off): N runs in one experiment (a param, a tag, a metric
each), then Q first pages of 100 of each query shape through three
endpoints in turn, timed on the client (keep-alive connections): the
native list as the UI asks it (summaries), the native list with `full=1`
(each run's params, tags and latest metrics: what runs/search returns),
and MLflow's runs/search. Prints one JSON line per shape and endpoint:
p50, p99 in ms.

    python3 bench/mlflow_search.py [--runs N] [--queries Q]
"""

import argparse
import http.client
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "lib"))
from rvfixture import Cluster  # noqa: E402

SHAPES = [
    ("metric_range_sorted", "metrics.acc > 0.9", "metrics.acc DESC"),
    ("param_eq_by_start", "params.opt = 'adam'", "attributes.start_time DESC"),
    ("tag_like", "tags.group LIKE 'g1%'", "metrics.acc ASC"),
    ("all_by_start", "", "attributes.start_time DESC"),
]


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    with Cluster(n=1) as c:
        host, port = c.http_endpoints[0].split("://")[1].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)

        def call(method, path, body=None):
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            raw = r.read()
            if r.status not in (200, 201):
                raise RuntimeError("%s %s: %s %s" % (method, path, r.status,
                                                     raw[:200]))
            return json.loads(raw)

        t0 = time.monotonic()
        for i in range(args.runs):
            rid = call("POST", "/api/v2/runs", {
                "project": "bench", "experiment": "search",
                "params": {"opt": ["adam", "sgd", "lion"][i % 3]},
                "tags": {"group": "g%d" % (i % 20)}})["run_id"]
            call("POST", "/api/v2/runs/%s/log-batch" % rid, {"metrics": [
                {"key": "acc", "value": (i * 7919 % 1000) / 1000.0,
                 "step": 0, "timestamp": 1}]})
        load_s = time.monotonic() - t0
        exp = call("GET", "/api/2.0/mlflow/experiments/get-by-name?"
                   "experiment_name=bench%2Fsearch")["experiment"]
        for name, flt, order in SHAPES:
            native, full, mlflow = [], [], []
            q = urllib.parse.urlencode({"project": "bench",
                                        "experiment": "search",
                                        "filter": flt, "order_by": order,
                                        "per_page": 100})
            qf = q + "&full=1"
            body = {"experiment_ids": [exp["experiment_id"]], "filter": flt,
                    "order_by": [order], "max_results": 100}
            n1 = n2 = n3 = None
            for _ in range(args.queries):
                t = time.perf_counter()
                n1 = len(call("GET", "/api/v2/experiments?" + q)["runs"])
                native.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                n3 = len(call("GET", "/api/v2/experiments?" + qf)["runs"])
                full.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                n2 = len(call("POST", "/api/2.0/mlflow/runs/search",
                              body).get("runs", []))
                mlflow.append((time.perf_counter() - t) * 1000)
            assert n1 == n2 == n3, (name, n1, n2, n3)
            for ep, v in (("native_list", native), ("native_full", full),
                          ("mlflow_search", mlflow)):
                print(json.dumps({"shape": name, "endpoint": ep,
                                  "runs": args.runs, "page": n1,
                                  "p50_ms": round(pct(v, 0.5), 2),
                                  "p99_ms": round(pct(v, 0.99), 2),
                                  "load_s": round(load_s, 1)}))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
