"""Compaction benchmark on a local 3-node cluster (docs/BENCHMARKS.md,
"Compaction"): purged artifacts of MB megabytes in total (random bytes,
16 MiB uploads), then ingest throughput (HTTP log writes from 4 threads)
for SECONDS without a compaction and while every node compacts at
--compact-rate. Prints one JSON line.

    RUNVAULT_BIN=build/node/runvault python3 bench/compact.py [MB] [RATE_MB]
"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "lib"))
from rvfixture import Cluster, http_json  # noqa: E402

MB = int(sys.argv[1]) if len(sys.argv) > 1 else 256
RATE = int(sys.argv[2]) if len(sys.argv) > 2 else 32


def put_bytes(endpoint, path, data):
    import http.client
    host = endpoint.split("://", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=60)
    conn.request("PUT", path, body=data,
                 headers={"Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status


def ingest(endpoint, seconds, stop=None):
    n = [0]

    def worker(k):
        i = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            st, _, _ = http_json(endpoint, "POST", "/api/v2/runs/live/logs", {
                "lines": [{"timestamp": 1, "stream": "stdout",
                           "text": "w%d line %d %s" % (k, i, "z" * 100)}
                          for _ in range(50)]}, timeout=10.0)
            if st == 200:
                n[0] += 50
            i += 1
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return n[0] / (time.monotonic() - t0)


def main():
    c = Cluster(n=3, extra_args=[
        "--compact-min-bytes", "0", "--compact-rate", str(RATE << 20),
        "--log-level", "warn"])
    c.start()
    try:
        li = c.leader()
        ep = c.http_endpoints[li]
        http_json(ep, "POST", "/api/v2/runs", {"project": "b", "experiment":
                                               "e", "run_id": "live"})
        for r in range(MB // 16):
            rid = "gone%d" % r
            http_json(ep, "POST", "/api/v2/runs", {
                "project": "b", "experiment": "e", "run_id": rid})
            put_bytes(ep, "/api/v2/runs/%s/artifacts/a.bin" % rid,
                      os.urandom(16 << 20))
            http_json(ep, "POST", "/api/v2/runs/%s/delete" % rid, {})
            http_json(ep, "POST", "/api/v2/runs/%s/purge" % rid, {})
        base = ingest(ep, 8)
        before = c.cluster_status(li)["nodes"]
        disk0 = {n["id"]: n["compaction"]["vlog_disk_bytes"] for n in before}
        stop = threading.Event()
        out = {}

        def during():
            out["rate"] = ingest(ep, 600, stop)
        t = threading.Thread(target=during)
        t.start()
        time.sleep(1)
        t0 = time.monotonic()
        st, doc, _ = http_json(ep, "POST", "/api/v2/compact", {})
        index = doc["index"]
        while time.monotonic() - t0 < 600:
            nodes = c.cluster_status(li)["nodes"]
            if all(n["compaction"]["checkpoint_index"] >= index and
                   not n["compaction"]["running"] for n in nodes):
                break
            time.sleep(0.2)
        secs = time.monotonic() - t0
        stop.set()
        t.join()
        freed = {n["id"]: disk0[n["id"]] - n["compaction"]["vlog_disk_bytes"]
                 for n in nodes}
        print(json.dumps({
            "purged_mb": MB, "rate_limit_mb_s": RATE,
            "compaction_s": round(secs, 2),
            "reclaimed_mb_per_node": {k: round(v / 2**20, 1)
                                      for k, v in freed.items()},
            "reclaimed_mb_s": round(min(freed.values()) / 2**20 / secs, 1),
            "ingest_lines_s_without": round(base),
            "ingest_lines_s_during": round(out["rate"]),
            "ratio": round(out["rate"] / base, 2),
            "loadavg": os.getloadavg()}))
    finally:
        c.stop()


if __name__ == "__main__":
    main()
