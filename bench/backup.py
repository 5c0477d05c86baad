"""Backup and restore benchmark on a local 1-node cluster
(docs/BENCHMARKS.md, "Backup and restore"): an archive of MB megabytes
(16 MiB artifacts of random bytes, plus runs with metric points and log
lines), then RUNS times each: a full `runvault backup` into a new
directory, `runvault restore` of it into a new data dir (which verifies:
SHA-256 of every file, copy, replay), and an incremental backup into the
first backup's directory after PCT percent new data. Prints one JSON line
per measurement and a summary line; the load average goes with each.

    RUNVAULT_BIN=build/node/runvault python3 bench/backup.py [MB] [RUNS] [PCT]
"""

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "lib"))
from rvfixture import Cluster, http_json  # noqa: E402

MB = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
PCT = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
ART = 16 << 20


def put_bytes(endpoint, path, data):
    conn = http.client.HTTPConnection(endpoint.split("://", 1)[1], timeout=120)
    conn.request("PUT", path, body=data,
                 headers={"Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    r.read()
    conn.close()
    if r.status != 200:
        raise RuntimeError("PUT %s -> %d" % (path, r.status))


def add_data(ep, tag, n_bytes):
    """n_bytes of new archive: 16 MiB artifacts from 4 threads (a last
    smaller one), and one run with 3,000 points and 1,000 log lines."""
    http_json(ep, "POST", "/api/v2/runs", {
        "project": "bk", "experiment": "e", "run_id": "m-" + tag,
        "params": {"tag": tag}})
    for b in range(3):
        http_json(ep, "POST", "/api/v2/runs/m-%s/log-batch" % tag, {
            "metrics": [{"key": "loss", "value": 1.0 / (j + 1),
                         "step": b * 1000 + j, "timestamp": 1000 + j}
                        for j in range(1000)]}, timeout=30.0)
    http_json(ep, "POST", "/api/v2/runs/m-%s/logs" % tag, {
        "lines": [{"timestamp": 1, "stream": "stdout",
                   "text": "line %d %s" % (i, "l" * 100)}
                  for i in range(1000)]}, timeout=30.0)
    sizes = [ART] * (n_bytes // ART)
    if n_bytes % ART:
        sizes.append(n_bytes % ART)
    lock = threading.Lock()
    errors = []

    def worker(k):
        while True:
            with lock:
                if not sizes:
                    return
                i, size = len(sizes), sizes.pop()
            rid = "a-%s-%d" % (tag, i)
            try:
                http_json(ep, "POST", "/api/v2/runs", {
                    "project": "bk", "experiment": "e", "run_id": rid})
                put_bytes(ep, "/api/v2/runs/%s/artifacts/blob.bin" % rid,
                          os.urandom(size))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
                return
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError(errors[0])


def cli(c, *args):
    t0 = time.monotonic()
    r = subprocess.run([c.runvault] + list(args), capture_output=True,
                       text=True, timeout=1800)
    secs = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError("%r -> %d: %s" % (args, r.returncode, r.stderr))
    return secs, r.stdout, r.stderr


def backup(c, out):
    secs, so, _ = cli(c, "backup", "--endpoint", c.http_endpoints[0],
                      "--out", out)
    return secs, json.loads(so.strip().splitlines()[-1])


def emit(rec):
    rec["load1"] = round(os.getloadavg()[0], 2)
    print(json.dumps(rec), flush=True)
    return rec


def main():
    work = tempfile.mkdtemp(prefix="rv-bench-backup-")
    c = Cluster(n=1, extra_args=["--log-level", "warn"])
    c.start()
    recs = []
    try:
        ep = c.http_endpoints[0]
        t0 = time.monotonic()
        add_data(ep, "base", MB << 20)
        emit({"what": "load", "mb": MB,
              "seconds": round(time.monotonic() - t0, 1)})
        inc_dir = None
        for run in range(RUNS):
            out = os.path.join(work, "full%d" % run)
            secs, got = backup(c, out)
            total = got["copied_bytes"]
            recs.append(emit({
                "what": "full-backup", "run": run, "seconds": round(secs, 2),
                "bytes": total, "files": got["files"],
                "mb_s": round(total / 1e6 / secs, 1)}))
            d = os.path.join(work, "restored%d" % run)
            secs, so, _ = cli(c, "restore", out, "--data-dir", d)
            line = [x for x in so.splitlines() if "replayed" in x]
            recs.append(emit({
                "what": "restore", "run": run, "seconds": round(secs, 2),
                "bytes": total, "mb_s": round(total / 1e6 / secs, 1),
                "detail": line[0] if line else ""}))
            shutil.rmtree(d, ignore_errors=True)
            if inc_dir is None:
                inc_dir = out
            else:
                shutil.rmtree(out, ignore_errors=True)
            # An incremental after PCT % new data, into the first backup.
            new = int((MB << 20) * PCT / 100)
            add_data(ep, "inc%d" % run, new)
            secs, got = backup(c, inc_dir)
            recs.append(emit({
                "what": "incremental", "run": run, "new_bytes": new,
                "seconds": round(secs, 2), "copied_bytes": got["copied_bytes"],
                "copied_files": got["copied_files"],
                "kept_files": got["kept_files"],
                "kept_bytes": got["kept_bytes"]}))
            secs, got = backup(c, inc_dir)
            recs.append(emit({
                "what": "incremental-nothing-new", "run": run,
                "seconds": round(secs, 2),
                "copied_bytes": got["copied_bytes"]}))
    finally:
        c.stop()
        shutil.rmtree(work, ignore_errors=True)
    summary = {}
    for r in recs:
        summary.setdefault(r["what"], []).append(
            r.get("mb_s", r["seconds"]))
    print(json.dumps({"summary": summary}), flush=True)


if __name__ == "__main__":
    main()
