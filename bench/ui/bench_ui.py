#!/usr/bin/env python3
"""How fast the web UI is usable, measured in headless Chromium with the
Performance API (docs/BENCHMARKS.md, "The web UI"):

  runs table  navigation start -> the first page of the runs table
              rendered (the page's "runs-table-ready" mark), over N runs
              (default 1,000,000);
  run page    navigation start -> every chart of a run with M metrics x P
              points (default 20 x 1,000,000) drawn ("run-charts-ready"),
              and the page's JS heap then (Performance.getMetrics);
  compare     navigation start -> one metric of R runs x Q points (default
              100 x 100,000) overlaid ("compare-ready").

Each is a fresh page (a new tab, a full navigation), repeated --reps times;
the median and the largest are reported. One node (durability buffered)
loaded through `runvault ingest` (JSON lines on stdin). Targets: runs table
<= 300 ms, run page <= 1 s, compare <= 1.5 s, run page heap <= 150 MB.

    python3 bench/ui/bench_ui.py [--quick] [--runs N] [--reps N] --out DIR

--quick: 20,000 runs, 4 x 50,000 points, 10 x 10,000 (checks the harness,
not the speed). Writes DIR/ui.json; prints a Markdown table."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "ui"))
from rvfixture import Cluster  # noqa: E402
import cdp  # noqa: E402

BIG = "bench-ui-big"


def ingest(runvault, endpoint, lines, what):
    """Pipe the JSON lines of generator lines into runvault ingest."""
    t0 = time.monotonic()
    p = subprocess.Popen([runvault, "ingest", "--endpoint", endpoint,
                          "--timeout-ms", "120000", "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    n = 0
    buf = []
    for line in lines:
        buf.append(line)
        n += 1
        if len(buf) == 20000:
            p.stdin.write(("\n".join(buf) + "\n").encode())
            buf = []
    if buf:
        p.stdin.write(("\n".join(buf) + "\n").encode())
    p.stdin.close()
    rc = p.wait(timeout=3600)
    if rc != 0:
        sys.exit("bench_ui: ingest of %s failed: exit %d" % (what, rc))
    dt = time.monotonic() - t0
    print("bench_ui: %s: %d lines in %.1f s" % (what, n, dt), file=sys.stderr)
    return dt


def run_lines(n):
    for i in range(n):
        yield ('{"type":"run","run_id":"bench-ui-%07d","project":"p%d",'
               '"experiment":"e%d","name":"run-%07d","status":"FINISHED",'
               '"params":{"lr":"%s","seed":"%d"}}' % (
                   i, i % 10, i % 100, i, ("0.1", "0.01", "0.001")[i % 3], i))


def point_lines(run_id, keys, n, project="ui", experiment="big"):
    yield ('{"type":"run","run_id":"%s","project":"%s","experiment":"%s",'
           '"name":"%s","status":"FINISHED"}' % (run_id, project, experiment,
                                                 run_id))
    for k in range(keys):
        key = "m%02d" % k
        for s in range(n):
            # A slow curve with one spike in each series.
            v = 1.0 / (1 + s / 1000.0) + (5.0 if s == n // 3 else 0.0)
            yield ('{"run_id":"%s","key":"%s","step":%d,"value":%.6g}'
                   % (run_id, key, s, v))


def compare_lines(runs, n):
    for r in range(runs):
        rid = "bench-ui-cmp-%03d" % r
        yield ('{"type":"run","run_id":"%s","project":"ui","experiment":'
               '"cmp","name":"%s","status":"FINISHED","params":{"lr":"%d"}}'
               % (rid, rid, r % 7))
        for s in range(n):
            yield ('{"run_id":"%s","key":"loss","step":%d,"value":%.6g}'
                   % (rid, s, (1 + r % 5) / (1 + s / 500.0)))


def measure(b, url, mark, reps, heap=False):
    out, heaps = [], []
    for _ in range(reps):
        p = b.page()
        p.goto(url)
        p.wait("performance.getEntriesByName('%s').length" % mark,
               timeout=120, what=mark)
        out.append(p.eval("performance.getEntriesByName('%s')[0].startTime"
                          % mark))
        if heap:
            p.call("HeapProfiler.collectGarbage")
            heaps.append(p.metrics()["JSHeapUsedSize"] / 1048576.0)
        errs = p.console_errors()
        if errs:
            sys.exit("bench_ui: %s: script errors %s" % (url, errs))
        b.call("Target.closeTarget", {"targetId": p.target})
    r = {"ms": [round(x, 1) for x in out],
         "median_ms": round(statistics.median(out), 1),
         "max_ms": round(max(out), 1)}
    if heaps:
        r["heap_mb"] = [round(x, 1) for x in heaps]
        r["heap_max_mb"] = round(max(heaps), 1)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    q = a.quick
    n_runs = a.runs or (20000 if q else 1000000)
    m_keys, m_points = (4, 50000) if q else (20, 1000000)
    c_runs, c_points = (10, 10000) if q else (100, 100000)
    os.makedirs(a.out, exist_ok=True)
    res = {"runs": n_runs, "run_page": {"metrics": m_keys,
                                        "points": m_points},
           "compare": {"runs": c_runs, "points": c_points},
           "loadavg_start": os.getloadavg()[0]}
    with Cluster(n=1) as c:
        ep = c.rpc_endpoints[0]
        res["load_s"] = {
            "runs": round(ingest(c.runvault, ep, run_lines(n_runs),
                                 "runs"), 1),
            "run_page": round(ingest(c.runvault, ep, point_lines(
                BIG, m_keys, m_points), "run page points"), 1),
            "compare": round(ingest(c.runvault, ep, compare_lines(
                c_runs, c_points), "compare points"), 1)}
        ui = c.http_endpoints[0]
        ids = ",".join("bench-ui-cmp-%03d" % r for r in range(c_runs))
        with cdp.Browser() as b:
            res["runs_table"] = measure(b, ui + "/#/runs", "runs-table-ready",
                                        a.reps)
            res["run_page"].update(measure(b, ui + "/#/run/" + BIG,
                                           "run-charts-ready", a.reps,
                                           heap=True))
            res["compare"].update(measure(
                b, ui + "/#/compare?runs=" + ids + "&metric=loss",
                "compare-ready", a.reps))
    res["loadavg_end"] = os.getloadavg()[0]
    with open(os.path.join(a.out, "ui.json"), "w") as f:
        json.dump(res, f, indent=1)
    t = [("runs table (%d runs)" % n_runs, res["runs_table"], 300),
         ("run page (%d x %d points)" % (m_keys, m_points), res["run_page"],
          1000),
         ("compare (%d runs x %d points)" % (c_runs, c_points),
          res["compare"], 1500)]
    print("| view | median ms | max ms | target ms | heap MB |")
    print("|---|---|---|---|---|")
    for name, r, target in t:
        print("| %s | %.0f | %.0f | %d | %s |" % (
            name, r["median_ms"], r["max_ms"], target,
            r.get("heap_max_mb", "-")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
