"""Backup, verify-backup and restore on real clusters (DESIGN §12,
Appendix B.4; issue 17 item 3):

- a 3-node cluster with auth on and small vlog segments, under load (a
  writer thread): `runvault backup` from a follower; more writes; a second,
  incremental backup into the same directory copies only the files that
  changed (asserted on counts and bytes);
- verify-backup of both; the quiescent backup restored into a new 3-node
  cluster and compared run by run with the source through the API (ids,
  dates, params, tags, every metric point, logs, artifacts); the backup
  taken under load restored into a one-node cluster, whose runs are the
  source's;
- a flipped byte, a truncated file and a missing file: verify-backup exits
  2 naming the file, restore refuses and writes nothing;
- auth: a team admin's token is refused (permission denied), no token is
  refused.

    RUNVAULT_BIN=build/node/runvault python3 -m unittest tests/e2e/test_backup.py
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
from rvfixture import (Cluster, http_json, loopback_addresses,  # noqa: E402
                       peers_arg)
from test_archive import wait_for  # noqa: E402

SEGMENT = 64 * 1024
WRITER_SECS = 20.0  # Bound of the writer thread.


class BackupCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rv-backup-")
        cls.extra = ["--auth", "on", "--segment-bytes", str(SEGMENT)]
        cls.c = Cluster(n=3, extra_args=cls.extra)
        cls.c.start()
        cls.token = cls.c.admin_token()
        cls.hdr = {"Authorization": "Bearer " + cls.token}
        cls.n_runs = 0
        cls.lock = threading.Lock()

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- helpers -------------------------------------------------------------

    @classmethod
    def req(cls, c, i, method, path, body=None, want=None, headers=None):
        st, doc, raw = http_json(c.http_endpoints[i], method, path, body,
                                 headers=headers or cls.hdr, timeout=15.0)
        if want is not None and st != want:
            raise AssertionError("%s %s -> %d %r" % (method, path, st,
                                                     raw[:300]))
        return doc if doc is not None else raw

    @classmethod
    def write_run(cls, k):
        """One run with params, tags, 300 points over 3 keys, logs, an
        artifact, FINISHED."""
        c, L = cls.c, cls.c.leader()
        rid = "bk-%05d" % k
        cls.req(c, L, "POST", "/api/v2/runs",
                {"project": "p%d" % (k % 3), "experiment": "e",
                 "run_id": rid, "name": "run %d" % k,
                 "params": {"lr": str(0.001 * k), "k": str(k)},
                 "tags": {"kind": "backup-test"}}, want=201)
        pts = [{"key": "loss/%d" % (j % 3), "value": 1.0 / (j + 1 + k),
                "step": j, "timestamp": 1700000000000 + j}
               for j in range(300)]
        cls.req(c, L, "POST", "/api/v2/runs/%s/log-batch" % rid,
                {"metrics": pts}, want=200)
        cls.req(c, L, "POST", "/api/v2/runs/%s/logs" % rid,
                {"lines": [{"text": "line %d of %s" % (j, rid)}
                           for j in range(20)]}, want=200)
        cls.req(c, L, "PUT", "/api/v2/runs/%s/artifacts/model.bin" % rid,
                os.urandom(16384 + k), want=200,
                headers=dict(cls.hdr, **{"Content-Type":
                                         "application/octet-stream"}))
        cls.req(c, L, "POST", "/api/v2/runs/%s/status" % rid,
                {"status": "FINISHED"}, want=200)

    @classmethod
    def write_runs(cls, n):
        for _ in range(n):
            with cls.lock:
                k = cls.n_runs
                cls.n_runs += 1
            cls.write_run(k)

    def cli(self, *args, token=None, check=None):
        env = dict(os.environ)
        env.pop("RUNVAULT_TOKEN", None)
        if token is not None:
            env["RUNVAULT_TOKEN"] = token
        p = subprocess.run([self.c.runvault] + list(args), env=env,
                           capture_output=True, text=True, timeout=300)
        if check is not None:
            self.assertEqual(p.returncode, check,
                             "%r -> %d\nstdout: %s\nstderr: %s"
                             % (args, p.returncode, p.stdout, p.stderr))
        return p

    def backup(self, i, out):
        p = self.cli("backup", "--endpoint", self.c.http_endpoints[i],
                     "--out", out, token=self.token, check=0)
        return json.loads(p.stdout.strip().splitlines()[-1])

    def settle(self, c):
        """Wait until every node of c reports the same applied index
        (/readyz) twice 0.5 s apart; return it."""
        def index(i):
            st, doc, _ = http_json(c.http_endpoints[i], "GET", "/readyz")
            return doc.get("applied_index") if st == 200 and doc else None

        def same():
            a = {index(i) for i in range(c.n)}
            time.sleep(0.5)
            b = {index(i) for i in range(c.n)}
            return list(a)[0] if len(a) == 1 and a == b and None not in a \
                else None
        return wait_for("equal applied indexes", same)

    def follower(self):
        L = self.c.leader()
        return (L + 1) % 3

    @classmethod
    def all_runs(cls, c, i):
        doc = cls.req(c, i, "GET", "/api/v2/experiments?per_page=1000&full=1",
                      want=200)
        return {r["run_id"]: r for r in doc["runs"]}

    def run_state(self, c, i, rid):
        """Everything the API says about run rid on node i of c."""
        run = self.req(c, i, "GET", "/api/v2/runs/%s" % rid, want=200)["run"]
        series = {}
        for key in sorted(run.get("summary", {})):
            s = run["summary"][key]
            doc = self.req(c, i, "GET", "/api/v2/runs/%s/metrics?key=%s"
                           % (rid, s["key"]), want=200)
            series[key] = doc["points"]
        logs = self.req(c, i, "GET", "/api/v2/runs/%s/logs?max_lines=10000"
                        % rid, want=200)["lines"]
        arts = self.req(c, i, "GET", "/api/v2/runs/%s/artifacts" % rid,
                        want=200)["artifacts"]
        blobs = {a["path"]: self.req(c, i, "GET", "/api/v2/runs/%s/artifacts/%s"
                                     % (rid, a["path"]), want=200)
                 for a in arts}
        return {"run": run, "series": series, "logs": logs,
                "artifacts": arts, "blobs": blobs}

    # -- the test ------------------------------------------------------------

    def test_backup_restore(self):
        self.write_runs(8)
        out = os.path.join(self.tmp, "b")
        stop = threading.Event()
        errors = []

        def writer():
            deadline = time.monotonic() + WRITER_SECS
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    self.write_runs(1)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        t = threading.Thread(target=writer)
        t.start()
        try:
            time.sleep(1.0)
            f = self.follower()
            first = self.backup(f, out)
            self.assertGreater(first["applied_index"], 0)
            self.assertEqual(first["copied_files"], first["files"])
            self.assertEqual(first["kept_files"], 0)
            self.assertEqual(first["source_node_id"], f + 1)
            self.assertGreater(first["files"], 2, "small segments: several")
            under_load = os.path.join(self.tmp, "b1")
            shutil.copytree(out, under_load)
            time.sleep(1.5)  # More writes after the first backup.
        finally:
            stop.set()
            t.join(timeout=60)
        self.assertFalse(t.is_alive())
        self.assertEqual(errors, [])
        self.write_runs(2)
        self.settle(self.c)
        with open(os.path.join(out, "manifest.json")) as fh:
            m1 = json.load(fh)
        last1 = max(m1["files"], key=lambda x: x["name"])["bytes"]
        total1 = m1["total_bytes"]

        second = self.backup(self.follower(), out)
        with open(os.path.join(out, "manifest.json")) as fh:
            m2 = json.load(fh)
        self.assertGreater(second["applied_index"], first["applied_index"])
        self.assertGreater(second["kept_files"], 0)
        self.assertEqual(second["kept_files"] + second["copied_files"],
                         second["files"])
        # Only new bytes and the segment that was open are copied again.
        self.assertLessEqual(second["copied_bytes"],
                             m2["total_bytes"] - total1 + last1)
        self.assertLess(second["copied_bytes"], m2["total_bytes"])
        # The stored files are exactly the manifest's.
        self.assertEqual(sorted(os.listdir(os.path.join(out, "data"))),
                         sorted(x["path"][5:] for x in m2["files"]))
        # A third backup with nothing new keeps every sealed file.
        third = self.backup(self.follower(), out)
        self.assertLessEqual(third["copied_files"], 1)

        p = self.cli("verify-backup", out, check=0)
        self.assertIn("equals the manifest", p.stdout)
        self.cli("verify-backup", under_load, check=0)

        source = {rid: self.run_state(self.c, 0, rid)
                  for rid in self.all_runs(self.c, 0)}
        self.assertGreaterEqual(len(source), 10)
        with open(os.path.join(out, "manifest.json")) as fh:
            m3 = json.load(fh)

        # Restore the quiescent backup into a new 3-node cluster.
        addrs = loopback_addresses(3)
        cdir = os.path.join(self.tmp, "restored3")
        peers = peers_arg([a[0] for a in addrs])
        for i in range(3):
            d = os.path.join(cdir, "n%d" % (i + 1))
            p = self.cli("restore", out, "--data-dir", d, "--id", str(i + 1),
                         "--peers", peers, check=0)
            self.assertIn("index %d" % m3["applied_index"], p.stdout)
            with open(os.path.join(d, "admin.token"), "w") as fh:
                fh.write(self.token + "\n")
            os.chmod(os.path.join(d, "admin.token"), 0o600)
        c2 = Cluster(n=3, extra_args=self.extra, addresses=addrs,
                     directory=cdir)
        c2.token = self.token
        c2.start()
        try:
            for i in range(3):
                got = self.all_runs(c2, i)
                self.assertEqual(sorted(got), sorted(source))
            # The source's applied index moved on only by check entries.
            for rid in sorted(source):
                self.assertEqual(self.run_state(c2, 1, rid), source[rid],
                                 "run %s differs after restore" % rid)
            # The new cluster takes writes after the backup's index.
            L = c2.leader()
            doc = self.req(c2, L, "POST", "/api/v2/runs",
                           {"project": "p0", "experiment": "e",
                            "run_id": "after-restore"}, want=201)
            self.assertGreater(doc["index"], m3["applied_index"])
        finally:
            c2.stop()

        # The backup taken under load, restored into one node.
        addrs1 = loopback_addresses(1)
        c1dir = os.path.join(self.tmp, "restored1")
        d1 = os.path.join(c1dir, "n1")
        self.cli("restore", "--from", under_load, "--data-dir", d1,
                 "--raft-addr", addrs1[0][0], check=0)
        with open(os.path.join(d1, "admin.token"), "w") as fh:
            fh.write(self.token + "\n")
        c1 = Cluster(n=1, extra_args=self.extra, addresses=addrs1,
                     directory=c1dir)
        c1.token = self.token
        c1.start()
        try:
            got = self.all_runs(c1, 0)
            self.assertGreaterEqual(len(got), 8)
            for rid, r in got.items():
                self.assertIn(rid, source)
                for k in ("created_at", "params", "project", "name"):
                    self.assertEqual(r.get(k), source[rid]["run"].get(k))
                if r["status"] == "FINISHED":
                    self.assertEqual(self.run_state(c1, 0, rid), source[rid])
        finally:
            c1.stop()

    def test_damaged_backups_refused(self):
        self.write_runs(3)
        out = os.path.join(self.tmp, "d")
        self.backup(self.follower(), out)
        with open(os.path.join(out, "manifest.json")) as fh:
            m = json.load(fh)
        victim = m["files"][0]["path"]

        def damaged(name, hurt):
            d = os.path.join(self.tmp, name)
            shutil.copytree(out, d)
            hurt(os.path.join(d, victim))
            return d

        def flip(path):
            with open(path, "r+b") as fh:
                fh.seek(100)
                b = fh.read(1)
                fh.seek(100)
                fh.write(bytes([b[0] ^ 0x01]))

        def truncate(path):
            os.truncate(path, os.path.getsize(path) - 10)

        cases = [("flip", flip, "SHA-256"), ("trunc", truncate, "truncated"),
                 ("gone", os.unlink, "missing")]
        for name, hurt, word in cases:
            d = damaged(name, hurt)
            p = self.cli("verify-backup", d, check=2)
            self.assertIn(victim, p.stderr)
            self.assertIn(word, p.stderr)
            target = os.path.join(self.tmp, "r-" + name)
            p = self.cli("restore", d, "--data-dir", target, check=2)
            self.assertIn("REFUSED", p.stderr)
            self.assertFalse(os.path.exists(target))
            self.assertEqual([x for x in os.listdir(self.tmp)
                              if x.startswith("r-%s.restore" % name)], [])
        # A manifest whose digest is not the vlog's: the replay says so.
        d = os.path.join(self.tmp, "digest")
        shutil.copytree(out, d)
        m["digest"] = "0" * 32
        with open(os.path.join(d, "manifest.json"), "w") as fh:
            json.dump(m, fh)
        p = self.cli("verify-backup", d, check=2)
        self.assertIn("digest", p.stderr)
        self.assertIn("the manifest says index %d" % m["applied_index"],
                      p.stderr)

    def test_a_follower_backup_holds_every_acknowledged_write(self):
        """A run made through the leader and, at once, a backup from a
        follower: the follower pins only after applying the leader's
        index, so the backup's index covers the run (five times)."""
        for k in range(5):
            L = self.c.leader()
            doc = self.req(self.c, L, "POST", "/api/v2/runs",
                           {"project": "ack", "experiment": "e",
                            "run_id": "ack-%d" % k}, want=201)
            out = os.path.join(self.tmp, "ack-%d" % k)
            got = self.backup((L + 1) % 3, out)
            self.assertGreaterEqual(got["applied_index"], doc["index"],
                                    (k, got, doc))

    def test_backup_needs_cluster_admin(self):
        L = self.c.leader()
        self.req(self.c, L, "POST", "/api/v2/teams", {"team": "bkteam"})
        doc = self.req(self.c, L, "POST", "/api/v2/tokens",
                       {"team": "bkteam", "role": "admin", "name": "bkadm"},
                       want=201)
        out = os.path.join(self.tmp, "denied")
        p = self.cli("backup", "--endpoint", self.c.http_endpoints[L],
                     "--out", out, token=doc["token"], check=12)
        self.assertIn("cluster-admin", p.stderr)
        self.assertIn("permission denied", p.stderr.lower())
        self.assertFalse(os.path.exists(os.path.join(out, "manifest.json")))
        p = self.cli("backup", "--endpoint", self.c.http_endpoints[L],
                     "--out", out, check=12)
        self.assertFalse(os.path.exists(os.path.join(out, "manifest.json")))


if __name__ == "__main__":
    unittest.main()
