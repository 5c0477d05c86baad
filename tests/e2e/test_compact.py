"""Compaction on a real 3-node cluster (DESIGN §12, ARCHITECTURE.md
"Compaction"): runs with unique strings purged, `POST /api/v2/compact`
through a follower, every node compacts at the same index; equal digests
at equal applied index; the purged strings are gone from every node's
vlog; the kept run reads back on every node; `runvault verify` and
`runvault rebuild-index` on a stopped compacted node reach the digest its
peers report, and after the rebuild no file of its data dir holds a
purged string; compaction while a writer keeps writing.

Backup of a compacted cluster: a backup taken before the compaction, a
full one from a follower after it (the image, the compaction manifest and
the rewritten segments), verify-backup, restore into a new 1-node cluster
compared run by run with the source through the API, no purged string in
the backup or the restored data dir; an incremental backup after the
compaction into the pre-compaction backup's directory verifies and
restores too, and holds exactly the files its manifest names; a stray
file in a backup is ignored by verify-backup and removed by the next
backup.

    RUNVAULT_BIN=build/node/runvault python3 -m unittest tests/e2e/test_compact.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from rvfixture import (Cluster, NodeProc, http_json,  # noqa: E402
                       loopback_addresses, serve_argv)

SECRET = "PURGEDSECRET"


def wait_for(what, fn, timeout=30.0, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s (last: %r)"
                                 % (what, v))
        time.sleep(step)


def scan(directory, needle, skip_index=False):
    """Files under directory holding needle (bytes)."""
    hits = []
    for root, _, files in os.walk(directory):
        for name in files:
            if skip_index and name.startswith("index.mdb"):
                continue
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as f:
                    if needle in f.read():
                        hits.append(path)
            except OSError:
                pass
    return hits


class TestCompact(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Small segments so the purged runs' records are sealed early; a
        # small snapshot threshold so raft drops its log prefix too.
        cls.c = Cluster(n=3, extra_args=[
            "--segment-bytes", "65536", "--snapshot-bytes", "1048576",
            "--compact-min-bytes", "0", "--compact-rate", "0"])
        cls.c.start()

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def call(self, i, method, path, body=None, want=None):
        st, doc, raw = http_json(self.c.http_endpoints[i], method, path, body,
                                 timeout=10.0)
        if want is not None:
            self.assertEqual(st, want, "%s %s -> %d %r"
                             % (method, path, st, raw[:300]))
        return st, doc

    def settle(self):
        def same():
            doc = self.c.cluster_status(self.c.leader())
            idx = {n.get("applied_index") for n in doc["nodes"]}
            dig = {n.get("digest") for n in doc["nodes"]}
            if len(idx) == 1 and len(dig) == 1 and None not in idx:
                return idx.pop(), dig.pop(), doc
            return None
        return wait_for("equal applied index and digest", same)

    def make_run(self, via, run_id, text, n_lines=200):
        self.call(via, "POST", "/api/v2/runs", {
            "project": "p", "experiment": "e", "name": run_id,
            "run_id": run_id, "params": {"lr": "0.1"}}, want=201)
        for b in range(4):
            self.call(via, "POST", "/api/v2/runs/%s/log-batch" % run_id, {
                "metrics": [{"key": "loss", "value": 1.0 / (s + 1),
                             "step": b * 100 + s, "timestamp": 1000 + s}
                            for s in range(100)]}, want=200)
            self.call(via, "POST", "/api/v2/runs/%s/logs" % run_id, {
                "lines": [{"timestamp": 1, "stream": "stdout",
                           "text": "%s %d %d %s" % (text, b, i, "x" * 200)}
                          for i in range(n_lines // 4)]}, want=200)
        st, _, raw = http_json(
            self.c.http_endpoints[via], "PUT",
            "/api/v2/runs/%s/artifacts/notes.txt" % run_id,
            ("%s artifact %s" % (text, "z" * 3000)).encode(),
            headers={"Content-Type": "application/octet-stream"},
            timeout=10.0)
        self.assertEqual(st, 200, raw[:300])

    def filler(self, via, n):
        self.call(via, "POST", "/api/v2/runs", {
            "project": "p", "experiment": "e", "run_id": "fill%d" % n},
            want=201)
        for b in range(20):
            self.call(via, "POST", "/api/v2/runs/fill%d/logs" % n, {
                "lines": [{"timestamp": 1, "stream": "stdout",
                           "text": "filler %d %s" % (i, "y" * 300)}
                          for i in range(20)]}, want=200)

    def compact(self, via):
        st, doc = self.call(via, "POST", "/api/v2/compact", {}, want=202)
        index = doc["index"]

        def done():
            doc = self.c.cluster_status(self.c.leader())
            for n in doc["nodes"]:
                cp = n.get("compaction") or {}
                if cp.get("checkpoint_index", 0) < index or cp.get("running"):
                    return None
            return doc
        return index, wait_for("every node compacted at %d" % index, done)

    # -- backup of a compacted cluster ----------------------------------------

    def cli(self, *args, want=0):
        r = subprocess.run([self.c.runvault] + list(args),
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, want, "%r -> %d\nstdout: %s\n"
                         "stderr: %s" % (args, r.returncode, r.stdout,
                                         r.stderr))
        return r

    def backup(self, i, out):
        r = self.cli("backup", "--endpoint", self.c.http_endpoints[i],
                     "--out", out)
        return json.loads(r.stdout.strip().splitlines()[-1])

    @staticmethod
    def get(c, i, path):
        st, doc, raw = http_json(c.http_endpoints[i], "GET", path,
                                 timeout=10.0)
        if st != 200:
            raise AssertionError("GET %s -> %d %r" % (path, st, raw[:300]))
        return doc if doc is not None else raw

    def runs_state(self, c, i):
        """Every run on node i of c as the API shows it: the run (id,
        dates, params, tags, summary), every metric point, the logs, the
        artifacts and their bytes."""
        doc = self.get(c, i, "/api/v2/experiments?per_page=1000&full=1"
                       "&consistency=stale")
        out = {}
        for rid in sorted(r["run_id"] for r in doc["runs"]):
            run = self.get(c, i, "/api/v2/runs/%s?consistency=stale"
                           % rid)["run"]
            series = {k: self.get(c, i, "/api/v2/runs/%s/metrics?key=%s"
                                  "&consistency=stale"
                                  % (rid, s["key"]))["points"]
                      for k, s in sorted(run.get("summary", {}).items())}
            logs = self.get(c, i, "/api/v2/runs/%s/logs?max_lines=10000"
                            "&consistency=stale" % rid)["lines"]
            arts = self.get(c, i, "/api/v2/runs/%s/artifacts"
                            "?consistency=stale" % rid)["artifacts"]
            blobs = {a["path"]: self.get(c, i, "/api/v2/runs/%s/artifacts/%s"
                                         % (rid, a["path"]))
                     for a in arts}
            out[rid] = {"run": run, "series": series, "logs": logs,
                        "artifacts": arts, "blobs": blobs}
        return out

    def restore_and_compare(self, backup_dir, name, source, applied):
        addrs = loopback_addresses(1)
        cdir = os.path.join(self.c.dir, name)
        d = os.path.join(cdir, "n1")
        r = self.cli("restore", backup_dir, "--data-dir", d, "--raft-addr",
                     addrs[0][0])
        self.assertIn("index %d" % applied, r.stdout)
        self.assertEqual(scan(d, SECRET.encode()), [],
                         "a purged string in the restored data dir")
        c1 = Cluster(n=1, addresses=addrs, directory=cdir,
                     extra_args=["--segment-bytes", "65536"])
        c1.start()
        try:
            got = self.runs_state(c1, 0)
            self.assertEqual(sorted(got), sorted(source))
            for rid in sorted(source):
                self.assertEqual(got[rid], source[rid],
                                 "run %s differs after restore" % rid)
            st, _, _ = http_json(c1.http_endpoints[0], "GET",
                                 "/api/v2/runs/gone0", timeout=10.0)
            self.assertEqual(st, 404)
        finally:
            c1.stop()
        self.assertEqual(scan(d, SECRET.encode()), [],
                         "a purged string in the restored node's files")

    def backup_round_trip(self, fo, pre, index):
        source = self.runs_state(self.c, fo)
        self.assertIn("keep", source)
        self.assertNotIn("gone0", source)
        self.assertEqual(len(source["keep"]["logs"]), 200)
        self.assertEqual(len(source["keep"]["blobs"]), 1)
        # A full backup of the compacted follower.
        full = tempfile.mkdtemp(prefix="rv-bk-full-")
        self.addCleanup(shutil.rmtree, full, True)
        got = self.backup(fo, full)
        with open(os.path.join(full, "manifest.json")) as fh:
            m = json.load(fh)
        self.assertEqual(m["version"], 2)
        self.assertEqual(m["checkpoint_index"], index)
        self.assertGreaterEqual(got["applied_index"], index)
        names = {f["name"] for f in m["files"]}
        self.assertIn("vlog/image.%d" % index, names)
        self.assertIn("vlog/compact", names)
        self.assertTrue(any(".c%d.seg" % index in n for n in names), names)
        self.assertEqual(scan(full, SECRET.encode()), [],
                         "a purged string in the backup")
        r = self.cli("verify-backup", full)
        self.assertIn("from the image of the compaction checkpoint at %d"
                      % index, r.stdout)
        # A corrupt image is refused.
        bad = tempfile.mkdtemp(prefix="rv-bk-bad-")
        self.addCleanup(shutil.rmtree, bad, True)
        shutil.rmtree(bad)
        shutil.copytree(full, bad)
        img = [f for f in m["files"] if f["name"].startswith("vlog/image.")]
        with open(os.path.join(bad, img[0]["path"]), "r+b") as fh:
            fh.seek(64)
            b = fh.read(1)
            fh.seek(64)
            fh.write(bytes([b[0] ^ 1]))
        r = self.cli("verify-backup", bad, want=2)
        self.assertIn(img[0]["path"], r.stderr)
        # A manifest whose checkpoint lost its image is no backup.
        m2 = dict(m, files=[f for f in m["files"]
                            if not f["name"].startswith("vlog/image.")])
        with open(os.path.join(bad, "manifest.json"), "w") as fh:
            json.dump(m2, fh)
        r = self.cli("verify-backup", bad, want=2)
        self.assertIn("a checkpoint without its image", r.stderr)
        self.restore_and_compare(full, "restored-full", source,
                                 got["applied_index"])

        # The incremental backup after the compaction, into the directory
        # of the backup taken before it: the rewritten segments, the image
        # and the manifest are copied, the segments the compaction replaced
        # are no longer the backup's and are removed.
        with open(os.path.join(pre, "manifest.json")) as fh:
            m0 = json.load(fh)
        inc = self.backup(fo, pre)
        with open(os.path.join(pre, "manifest.json")) as fh:
            m1 = json.load(fh)
        self.assertEqual(m1["checkpoint_index"], index)
        self.assertGreater(inc["kept_files"], 0, inc)
        self.assertGreater(inc["removed_files"], 0, inc)
        self.assertLess(inc["copied_bytes"], m1["total_bytes"])
        self.assertEqual(sorted(os.listdir(os.path.join(pre, "data"))),
                         sorted(f["path"][5:] for f in m1["files"]))
        replaced = {f["name"] for f in m0["files"]} - \
            {f["name"] for f in m1["files"]}
        self.assertTrue(replaced)
        self.assertEqual(scan(pre, SECRET.encode()), [])
        self.cli("verify-backup", pre)
        self.restore_and_compare(pre, "restored-inc", source,
                                 inc["applied_index"])

        # A stray file (an interrupted backup's) is ignored by
        # verify-backup and removed by the next backup.
        stray = os.path.join(full, "data", "00000001-99.seg")
        with open(stray, "wb") as fh:
            fh.write(SECRET.encode())
        r = self.cli("verify-backup", full)
        self.assertIn("1 file in", r.stdout)
        self.assertIn("ignored", r.stdout)
        again = self.backup(fo, full)
        self.assertEqual(again["removed_files"], 1)
        self.assertFalse(os.path.exists(stray))

    def test_compaction(self):
        li = self.c.leader()
        fo = (li + 1) % 3
        self.make_run(fo, "keep", "kept line")
        for r in range(3):
            self.make_run(fo, "gone%d" % r, "%s-gone%d" % (SECRET, r))
        for r in range(3):
            self.call(fo, "POST", "/api/v2/runs/gone%d/delete" % r, {},
                      want=200)
            self.call(fo, "POST", "/api/v2/runs/gone%d/purge" % r, {},
                      want=200)
        self.filler(fo, 1)  # seals the segments holding the purged runs
        _, _, doc = self.settle()
        # A backup before the compaction: the plain segments, purged runs'
        # bytes included; an incremental one after it goes into the same
        # directory (backup_round_trip).
        pre = tempfile.mkdtemp(prefix="rv-bk-pre-")
        self.addCleanup(shutil.rmtree, pre, True)
        got = self.backup(fo, pre)
        self.assertEqual(got["copied_files"], got["files"])
        self.assertTrue(scan(pre, SECRET.encode()))
        with open(os.path.join(pre, "manifest.json")) as fh:
            self.assertEqual(json.load(fh)["version"], 1)
        self.assertTrue(all(n["reclaimable_bytes"] > 0 for n in doc["nodes"]),
                        doc)
        for i in range(3):
            self.assertTrue(scan(self.c.data_dir(i) + "/vlog",
                                 SECRET.encode()), "node %d before" % i)
        index, doc = self.compact(fo)
        for n in doc["nodes"]:
            self.assertEqual(n["compaction"]["checkpoint_index"], index)
            self.assertEqual(n["reclaimable_bytes"], 0)
            self.assertGreater(n["compaction"]["bytes_freed"], 0, n)
        applied, digest, _ = self.settle()
        for i in range(3):
            self.assertEqual(scan(self.c.data_dir(i) + "/vlog",
                                  SECRET.encode()), [], "node %d" % i)
            st, got = self.call(i, "GET",
                                "/api/v2/runs/keep/logs?consistency=stale"
                                "&limit=1000", want=200)
            self.assertEqual(len(got["lines"]), 200)
            self.assertTrue(got["lines"][0]["text"].startswith("kept line"))
            st, _ = self.call(i, "GET", "/api/v2/runs/gone0?consistency=stale")
            self.assertEqual(st, 404)

        self.backup_round_trip(fo, pre, index)

        # Compaction while a writer writes: every write acknowledged, the
        # digests equal afterwards.
        stop = threading.Event()
        errors = []
        n_done = [0]

        def writer():
            k = 0
            while not stop.is_set() and k < 2000:
                st, _, raw = http_json(
                    self.c.http_endpoints[li], "POST",
                    "/api/v2/runs/keep/logs",
                    {"lines": [{"timestamp": 2, "stream": "stdout",
                                "text": "during %d" % k}]}, timeout=10.0)
                if st != 200:
                    errors.append((st, raw[:200]))
                n_done[0] += 1
                k += 1
        t = threading.Thread(target=writer)
        t.start()
        try:
            self.make_run(fo, "gone9", SECRET + "-gone9")
            self.call(fo, "POST", "/api/v2/runs/gone9/delete", {}, want=200)
            self.call(fo, "POST", "/api/v2/runs/gone9/purge", {}, want=200)
            self.filler(fo, 2)
            index2, _ = self.compact(fo)
        finally:
            stop.set()
            t.join(60)
        self.assertEqual(errors, [])
        self.assertGreater(n_done[0], 0)
        applied, digest, _ = self.settle()
        self.assertGreaterEqual(applied, index2)
        for i in range(3):
            self.assertEqual(scan(self.c.data_dir(i) + "/vlog",
                                  SECRET.encode()), [], "node %d" % i)

        # verify and rebuild-index on a stopped compacted follower reach
        # its peers' digest; the rebuilt index holds no purged string.
        li = self.c.leader()
        fo = (li + 1) % 3
        self.c.kill(fo, sig=15)
        wait_for("follower stopped", lambda: not self.c.is_alive(fo))
        d = self.c.data_dir(fo)
        r = subprocess.run([self.c.runvault, "verify", "--data-dir", d],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run([self.c.runvault, "rebuild-index", "--data-dir",
                            d], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(scan(d, SECRET.encode(), skip_index=False)
                         and [p for p in scan(d, SECRET.encode())
                              if "/raft/" not in p], [])
        self.c.restart(fo)
        self.c.wait_up(fo)
        self.call(li, "POST", "/api/v2/runs/keep/logs", {
            "lines": [{"timestamp": 3, "stream": "stdout", "text": "end"}]},
            want=200)
        applied2, digest2, _ = self.settle()
        self.assertGreater(applied2, applied)

        # A node added after the compaction catches up (from a snapshot
        # descriptor: the image, then the records after it) and reports
        # the same digest.
        for k in range(300):  # raft snapshots after a compaction
            self.call(li, "POST", "/api/v2/runs/keep/logs", {
                "lines": [{"timestamp": 4, "stream": "stdout",
                           "text": "more %d" % k}]}, want=200)
        raft, rpc, http = loopback_addresses(1)[0]
        d4 = os.path.join(self.c.dir, "n4-join")
        node = NodeProc()
        argv = serve_argv(self.c.runvault, 4, d4, raft, rpc,
                          http.split("://", 1)[1],
                          join=",".join(self.c.rpc_endpoints),
                          extra=["--segment-bytes", "65536",
                                 "--snapshot-bytes", "1048576"])
        log4 = os.path.join(self.c.dir, "n4.log")
        node.spawn(argv, log4, self.c.dir, b"==== join\n")
        try:
            def joined():
                try:
                    lead = self.c.cluster_status(self.c.leader())
                except Exception:  # noqa: BLE001 (a leader change)
                    return None
                me = [n for n in lead["nodes"] if n.get("id") == 4]
                ref = {n["id"]: n for n in lead["nodes"]}
                if not me or 4 not in ref:
                    return None
                a, b = ref[4], ref[self.c.leader() + 1]
                if a.get("digest") and a.get("applied_index") == \
                        b.get("applied_index") and a["digest"] == b["digest"]:
                    return a
                return None
            try:
                got = wait_for("the joined node's digest", joined, timeout=90)
            except AssertionError:
                with open(log4, "rb") as f:
                    sys.stderr.write(f.read()[-3000:].decode(errors="replace"))
                raise
            print("joined node:", got.get("compaction"),
                  "catch-ups:", got.get("n_catch_ups"), file=sys.stderr)
            self.assertGreater(got["compaction"]["checkpoint_index"], 0)
            self.assertEqual(scan(d4 + "/vlog", SECRET.encode()), [])
            # By now raft snapshotted past the purged runs' entries on
            # every node and dropped that log prefix: no file of any data
            # dir, raft's log and the index included, holds their bytes.
            for d in [self.c.data_dir(i) for i in range(3)] + [d4]:
                self.assertEqual(scan(d, SECRET.encode()), [], d)
        finally:
            node.kill()


if __name__ == "__main__":
    unittest.main()
