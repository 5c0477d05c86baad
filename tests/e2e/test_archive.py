"""The archive lifecycle on real 3-node clusters (DESIGN §12, Appendix B.4):

- Retention: per-project rules (keep last N, max age, statuses) and trash
  periods, set through a follower; the leader's sweeps trash and purge the
  same runs at the same index on every replica (equal digests at equal
  applied index), each audited; a purged run is gone from every node's
  gets, lists, filters, analytics, history and from `runvault export`.
- Divergence: one byte of one replica's index changed offline (between a
  clean stop and a restart); the next check points raise
  runvault_replica_diverged on that node only, /readyz fails, reads are
  refused, `GET /api/v2/cluster` and `runvault cluster status` show it;
  `runvault rebuild-index` repairs it.
- Disk space: a follower's data dir on a small tmpfs (needs root) filled
  under its --min-free-bytes: it refuses writes with 507 and fails /readyz
  while the others serve; as leader it refuses every write; freeing the
  space clears the alarm.

    RUNVAULT_BIN=build/node/runvault python3 -m unittest tests/e2e/test_archive.py
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from rvfixture import Cluster, http_json  # noqa: E402

DAY_MS = 86400000.0


def wait_for(what, fn, timeout=20.0, step=0.1):
    """fn() until it returns something true (returned); fails after
    timeout seconds with what."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s (last: %r)"
                                 % (what, v))
        time.sleep(step)


def metric(endpoint, name):
    st, _, raw = http_json(endpoint, "GET", "/metrics")
    if st != 200:
        return None
    m = re.search(r"^%s (\d+)$" % re.escape(name), raw.decode(), re.M)
    return int(m.group(1)) if m else None


class ArchiveCase(unittest.TestCase):
    extra_args = ()

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(n=3, extra_args=list(cls.extra_args))
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

    def follower(self):
        li = self.c.leader()
        return (li + 1) % 3

    def settle(self):
        """(applied index, digest) once every node reports the same."""
        def same():
            doc = self.c.cluster_status(self.c.leader())
            idx = {n.get("applied_index") for n in doc["nodes"]}
            dig = {n.get("digest") for n in doc["nodes"]}
            if len(idx) == 1 and len(dig) == 1 and None not in idx:
                return idx.pop(), dig.pop()
            return None
        return wait_for("equal applied index and digest", same)

    def make_run(self, via, project, run_id, status="FINISHED", marker=""):
        self.call(via, "POST", "/api/v2/runs", {
            "project": project, "experiment": "e", "name": run_id,
            "run_id": run_id, "params": {"lr": "0.1", "m": marker or run_id},
            "tags": {"t": project}}, want=201)
        self.call(via, "POST", "/api/v2/runs/%s/log-batch" % run_id, {
            "metrics": [{"key": "loss", "value": 1.0 / (s + 1), "step": s,
                         "timestamp": 1000 + s} for s in range(20)]},
            want=200)
        self.call(via, "POST", "/api/v2/runs/%s/logs" % run_id, {
            "lines": [{"timestamp": 1, "stream": "stdout",
                       "text": "line of " + run_id}]}, want=200)
        if status != "RUNNING":
            st, doc = self.call(via, "POST", "/api/v2/runs/%s/status" % run_id,
                                {"status": status}, want=200)
            return doc["index"]
        return None


class TestRetention(ArchiveCase):
    extra_args = ("--retention-interval-ms", "300",
                  "--check-interval-ms", "700")

    def listed(self, i, query):
        st, doc = self.call(i, "GET", "/api/v2/experiments?consistency=stale&"
                            + query + "&per_page=1000", want=200)
        return sorted(r["run_id"] for r in doc["runs"])

    def assert_purged(self, run_id, project, index):
        """run_id is gone from every node's reads at index."""
        for i in range(3):
            q = "consistency=stale&min_index=%d" % index
            st, _ = self.call(i, "GET", "/api/v2/runs/%s?%s" % (run_id, q))
            self.assertEqual(st, 404, "node %d still has %s" % (i + 1, run_id))
            st, _ = self.call(i, "GET", "/api/v2/runs/%s/metrics?key=loss&%s"
                              % (run_id, q))
            self.assertEqual(st, 404)
            st, _ = self.call(i, "GET", "/api/v2/runs/%s/logs?%s"
                              % (run_id, q))
            self.assertEqual(st, 404)
            self.assertNotIn(run_id, self.listed(
                i, "project=%s&min_index=%d" % (project, index)))
            self.assertNotIn(run_id, self.listed(
                i, "min_index=%d&filter=params.m%%20%%3D%%20%%27%s%%27"
                % (index, run_id)))
            self.assertNotIn(run_id, self.listed(
                i, "min_index=%d&filter=params.lr%%20%%3D%%20%%270.1%%27"
                % index))

    def test_keep_last_trashes_and_purges_on_every_replica(self):
        f = self.follower()
        ids = ["kl-%d" % k for k in range(6)]
        for rid in ids:
            self.make_run(f, "keep", rid)
        self.make_run(f, "keep", "kl-running", status="RUNNING")
        self.make_run(f, "keep", "kl-failed", status="FAILED")
        self.make_run(f, "other", "kl-other")
        # keep_last 2 of the FINISHED runs; FAILED and RUNNING are not
        # covered by this rule; trash_days 0: purged by the same sweep.
        st, doc = self.call(f, "PUT", "/api/v2/projects/keep/retention", {
            "keep_last": 2, "statuses": ["FINISHED"], "trash_days": 0},
            want=200)
        rule_index = doc["index"]
        st, doc = self.call(f, "GET", "/api/v2/retention", want=200)
        self.assertEqual(doc["default_trash_days"], 30.0)
        rule = [r for r in doc["rules"] if r["project"] == "keep"]
        self.assertEqual(rule, [{"team": "default", "project": "keep",
                                 "max_age_days": None, "keep_last": 2,
                                 "statuses": ["FINISHED"],
                                 "trash_days": 0.0}])
        li = self.c.leader()
        want = sorted(ids[-2:] + ["kl-running", "kl-failed"])
        wait_for("the sweep", lambda: self.listed(
            li, "project=keep") == want)
        index, _ = self.settle()
        for rid in ids[:-2]:
            self.assert_purged(rid, "keep", index)
        for i in range(3):
            self.assertEqual(self.listed(
                i, "project=keep&min_index=%d" % index), want)
            self.assertEqual(self.listed(
                i, "project=other&min_index=%d" % index), ["kl-other"])
        # Analytics count the kept runs only.
        st, doc = self.call(li, "GET", "/api/v2/analytics?group=status"
                            "&project=keep", want=200)
        self.assertEqual(doc["counts"].get("FINISHED"), 2, doc)
        self.assertEqual(doc["total"], 4, doc)
        # Every trash and purge is audited, by the node (no token), after
        # the rule, in one sweep entry or more.
        st, doc = self.call(li, "GET", "/api/v2/audit?since_index=%d"
                            % rule_index, want=200)
        ev = [e for e in doc["events"]
              if e["action"] in ("retention_trash", "retention_purge")]
        for rid in ids[:-2]:
            acts = [e["action"] for e in ev if e["target"] == rid]
            self.assertEqual(acts, ["retention_trash", "retention_purge"],
                             (rid, ev))
        self.assertTrue(all(e["token_id"] == "" and e["team"] == "default"
                            for e in ev))
        self.assertFalse([e for e in ev if e["target"] in ids[-2:]])
        # Export finds nothing of them.
        out = tempfile.mkdtemp(prefix="rv-export-")
        try:
            r = subprocess.run(
                [self.c.runvault, "export", "--endpoint",
                 self.c.http_endpoints[li], "--project", "keep", "--out",
                 out], capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            found = set()
            for _, dirs, _ in os.walk(out):
                found.update(d for d in dirs if d.startswith("kl-"))
            self.assertEqual(found, set(want))
        finally:
            shutil.rmtree(out, ignore_errors=True)
        # The rule is idempotent: nothing more is trashed or purged later
        # (check points may still add entries).
        time.sleep(1.2)
        self.settle()
        st, doc = self.call(li, "GET", "/api/v2/audit?since_index=%d"
                            % (index + 1), want=200)
        self.assertFalse([e for e in doc["events"]
                          if e["action"].startswith("retention_")], doc)

    def test_trash_period_and_restore(self):
        f = self.follower()
        # A trash period of ~2.6 s and no expiry rule: only deleted runs
        # are purged, once their period is over.
        self.call(f, "PUT", "/api/v2/projects/tr/retention",
                  {"trash_days": 0.00003}, want=200)
        # The CLI sees the rule too (2.592 s of trash).
        r = subprocess.run([self.c.runvault, "retention", "list", "--json",
                            "--endpoint", self.c.http_endpoints[f]],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        rules = [x for x in json.loads(r.stdout)["rules"]
                 if x["project"] == "tr"]
        self.assertEqual(len(rules), 1, r.stdout)
        self.assertEqual((rules[0]["trash_ms"], rules[0]["max_age_ms"],
                          rules[0]["keep_last"]), (2592, 0, 0))
        for rid in ("tr-del", "tr-restored", "tr-kept"):
            self.make_run(f, "tr", rid)
        self.call(f, "POST", "/api/v2/runs/tr-del/delete", want=200)
        self.call(f, "POST", "/api/v2/runs/tr-restored/delete", want=200)
        st, doc = self.call(f, "POST", "/api/v2/runs/tr-restored/restore",
                            want=200)
        li = self.c.leader()
        # In trash: still there (restorable) right after the delete.
        st, doc = self.call(li, "GET", "/api/v2/runs/tr-del")
        self.assertEqual(st, 200)
        wait_for("the trash purge", lambda: self.call(
            li, "GET", "/api/v2/runs/tr-del")[0] == 404, timeout=20)
        index, _ = self.settle()
        self.assert_purged("tr-del", "tr", index)
        for i in range(3):
            self.assertEqual(self.listed(i, "project=tr&min_index=%d" % index),
                             ["tr-kept", "tr-restored"])

    def test_max_age(self):
        f = self.follower()
        self.make_run(f, "age", "age-old")
        # Older than ~4.3 s expires; a run made later stays until it is.
        self.call(f, "PUT", "/api/v2/projects/age/retention",
                  {"max_age_days": 0.00005, "trash_days": 0}, want=200)
        li = self.c.leader()
        self.assertEqual(self.listed(li, "project=age"), ["age-old"])
        wait_for("expiry by age", lambda: self.listed(
            li, "project=age") == [], timeout=20)
        self.make_run(f, "age", "age-new")
        time.sleep(1.0)
        self.assertEqual(self.listed(li, "project=age"), ["age-new"])
        # DELETE removes the rule: nothing expires any more.
        self.call(f, "DELETE", "/api/v2/projects/age/retention", want=200)
        st, doc = self.call(f, "GET", "/api/v2/retention", want=200)
        self.assertFalse([r for r in doc["rules"] if r["project"] == "age"])
        time.sleep(5.0)
        self.assertEqual(self.listed(li, "project=age"), ["age-new"])
        self.settle()

    def test_bad_rules_are_refused(self):
        f = self.follower()
        # The leader's own entries (a divergence check 700 ms after the
        # last entries, a due sweep) must have landed first: wait until
        # the index stays put for longer than the check interval.
        index0, digest0 = self.settle()
        for _ in range(20):
            time.sleep(1.0)
            now = self.settle()
            if now == (index0, digest0):
                break
            index0, digest0 = now
        for body in ({}, {"keep_last": -1}, {"max_age_days": -2},
                     {"trash_days": "30"}, {"max_age_days": 1e9},
                     {"keep_last": 1, "statuses": ["DONE"]},
                     {"keep_last": 1, "statuses": []},
                     {"keep_last": 1, "colour": "red"},
                     {"keep_last": 1, "team": "*"}):
            st, doc = self.call(f, "PUT", "/api/v2/projects/p/retention", body)
            self.assertEqual(st, 400, (body, doc))
        st, _ = self.call(f, "PUT", "/api/v2/projects/%s/retention"
                          % ("x" * 251), {"keep_last": 1})
        self.assertEqual(st, 400)
        self.assertEqual(self.settle(), (index0, digest0))


class TestDivergence(ArchiveCase):
    extra_args = ("--check-interval-ms", "400", "--retention-interval-ms",
                  "0")
    MARKER = b"divergence-marker-QQQQQQQQ"

    def test_flipped_index_byte_raises_the_alarm_on_that_replica(self):
        li = self.c.leader()
        victim = (li + 2) % 3
        self.make_run(li, "dv", "dv-1", marker=self.MARKER.decode())
        for k in range(3):
            self.make_run(li, "dv", "dv-pad-%d" % k)
        self.settle()
        ep = self.c.http_endpoints
        # Every node compares at least one check point, all equal. A check
        # entry carries the leader's hash of an earlier check point, and
        # the leader proposes one only after new entries: keep writing
        # (on an idle machine the runs above fit in one check interval).
        pads = [0]

        def compared():
            if all((metric(e, "runvault_checks_compared_total") or 0) >= 1
                   for e in ep):
                return True
            pads[0] += 1
            self.make_run(li, "dv", "dv-wait-%d" % pads[0])
            time.sleep(0.3)
            return False
        wait_for("compared check points", compared)
        self.assertEqual([metric(e, "runvault_replica_diverged") for e in ep],
                         [0, 0, 0])
        # Stop the victim cleanly, change one byte of the marker in its
        # index file (in every copy: LMDB's copy-on-write leaves older
        # versions of a page in free pages, and only the live one counts),
        # start it again.
        self.c.kill(victim, signal.SIGTERM)
        self.assertEqual(self.c.exit_code(victim), 0)
        path = os.path.join(self.c.data_dir(victim), "index.mdb")
        with open(path, "r+b") as fh:
            data = bytearray(fh.read())
            n = 0
            at = data.find(self.MARKER)
            while at >= 0:
                data[at + len(self.MARKER) - 1] ^= 0x01
                n += 1
                at = data.find(self.MARKER, at + 1)
            self.assertGreater(n, 0)
            fh.seek(0)
            fh.write(data)
        self.c.restart(victim)
        self.c.wait_up(victim)
        # New entries make the leader propose check points; the victim's
        # index hash now differs from the leader's.
        li = self.c.leader()
        deadline = time.monotonic() + 30
        k = 0
        while metric(ep[victim], "runvault_replica_diverged") != 1:
            self.assertLess(time.monotonic(), deadline,
                            self.c.log_tail(victim))
            self.make_run(li, "dv", "dv-more-%d" % k)
            k += 1
            time.sleep(0.3)
        at = metric(ep[victim], "runvault_replica_diverged_index")
        self.assertGreater(at, 0)
        for i in range(3):
            if i != victim:
                self.assertEqual(metric(ep[i], "runvault_replica_diverged"), 0)
        # /readyz fails with the reason, reads are refused, the log names
        # the index.
        st, doc = self.call(victim, "GET", "/readyz")
        self.assertEqual(st, 503)
        self.assertIn("diverged", doc["message"])
        st, doc = self.call(victim, "GET",
                            "/api/v2/runs/dv-pad-0?consistency=stale")
        self.assertEqual(st, 503, doc)
        self.assertIn("diverged", doc["message"])
        with open(self.c.log_path(victim)) as fh:
            self.assertIn("replica diverged: the index hash at index %d" % at,
                          fh.read())
        # Cluster status shows it, over HTTP and the CLI.
        doc = self.c.cluster_status(li)
        flags = {n["id"]: n["diverged"] for n in doc["nodes"]}
        self.assertEqual(flags, {i + 1: i == victim for i in range(3)})
        r = subprocess.run([self.c.runvault, "cluster", "status",
                            "--endpoint", self.c.http_endpoints[li]],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [ln for ln in r.stdout.splitlines() if "DIVERGED" in ln]
        self.assertEqual(len(rows), 1, r.stdout)
        self.assertTrue(rows[0].startswith(str(victim + 1)), rows)
        # Repair: rebuild the index from the vlog; the alarm is gone and
        # later check points agree.
        self.c.kill(victim, signal.SIGTERM)
        r = subprocess.run([self.c.runvault, "rebuild-index", "--data-dir",
                            self.c.data_dir(victim)],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.c.restart(victim)
        self.c.wait_up(victim)
        before = metric(ep[victim], "runvault_checks_compared_total")
        deadline = time.monotonic() + 30
        while (metric(ep[victim], "runvault_checks_compared_total") or 0) \
                < (before or 0) + 2:
            self.assertLess(time.monotonic(), deadline,
                            self.c.log_tail(victim))
            self.make_run(self.c.leader(), "dv", "dv-after-%d" % k)
            k += 1
            time.sleep(0.3)
        self.assertEqual(metric(ep[victim], "runvault_replica_diverged"), 0)
        st, _ = self.call(victim, "GET",
                          "/api/v2/runs/dv-pad-0?consistency=stale")
        self.assertEqual(st, 200)
        self.settle()


@unittest.skipUnless(os.geteuid() == 0, "mounting a tmpfs needs root")
class TestDiskSpace(unittest.TestCase):
    TMPFS_BYTES = 96 << 20
    MIN_FREE = 48 << 20

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="rv-e2e-disk-")
        cls.mnt = os.path.join(cls.dir, "n3")
        os.makedirs(cls.mnt)
        subprocess.run(["mount", "-t", "tmpfs", "-o",
                        "size=%d" % cls.TMPFS_BYTES, "tmpfs", cls.mnt],
                       check=True)
        cls.c = Cluster(n=3, directory=cls.dir,
                        extra_args=["--segment-bytes", "1048576",
                                    "--snapshot-bytes", "1048576"],
                        node_args=lambda i: (
                            ["--min-free-bytes", str(cls.MIN_FREE)]
                            if i == 2 else []))
        try:
            cls.c.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()
        subprocess.run(["umount", "-l", cls.mnt])
        shutil.rmtree(cls.dir, ignore_errors=True)

    def create(self, i, rid):
        return http_json(self.c.http_endpoints[i], "POST", "/api/v2/runs", {
            "project": "disk", "experiment": "e", "name": rid,
            "run_id": rid}, timeout=10.0)

    def test_low_space_refuses_writes_before_the_disk_is_full(self):
        ep = self.c.http_endpoints
        self.assertEqual(self.create(2, "d-before")[0], 201)
        self.assertEqual(metric(ep[2], "runvault_disk_low"), 0)
        filler = os.path.join(self.mnt, "filler")
        free = shutil.disk_usage(self.mnt).free
        with open(filler, "wb") as fh:
            fh.write(b"\0" * (free - self.MIN_FREE + (8 << 20)))
        wait_for("the alarm", lambda: metric(ep[2], "runvault_disk_low") == 1,
                 timeout=10)
        st, doc, _ = self.create(2, "d-refused")
        self.assertEqual(st, 507, doc)
        self.assertEqual(doc["error_code"], "INSUFFICIENT_STORAGE")
        self.assertIn("under its threshold", doc["message"])
        st, doc, _ = http_json(ep[2], "GET", "/readyz")
        self.assertEqual(st, 503)
        self.assertIn("disk space low", doc["message"])
        doc = self.c.cluster_status(0)
        self.assertEqual({n["id"]: n["disk_low"] for n in doc["nodes"]},
                         {1: False, 2: False, 3: True})
        # The others still take writes, and node 3 still applies them (it
        # has room: the threshold is there to stop before the disk fills).
        li = self.c.leader()
        if li != 2:
            st, doc, _ = self.create(li, "d-elsewhere")
            self.assertEqual(st, 201, doc)
            st, _, _ = http_json(ep[2], "GET", "/api/v2/runs/d-elsewhere?"
                                 "consistency=stale&min_index=%d"
                                 % doc["index"])
            self.assertEqual(st, 200)
        # As leader, node 3 refuses every write, whoever is asked.
        def transferred():
            if self.c.leader() == 2:
                return True
            st, doc, _ = http_json(ep[self.c.leader()], "POST",
                                   "/api/v2/cluster/transfer", {"id": 3},
                                   timeout=10.0)
            self.assertIn(st, (200, 404, 503), doc)
            time.sleep(0.5)
            return self.c.leader() == 2
        wait_for("node 3 leading", transferred, timeout=30)
        st, doc, _ = self.create(0, "d-via-leader")
        self.assertEqual(st, 507, doc)
        self.assertIn("node 3", doc["message"])
        # The CLI says the cluster refused (12), not a local failure (3).
        r = subprocess.run(
            [self.c.runvault, "ingest", "--endpoint", ep[0], "-"],
            input=b'{"type":"run","run_id":"d-cli","project":"disk",'
                  b'"experiment":"e"}\n', capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 12, r.stderr)
        self.assertIn(b"threshold", r.stderr)
        # Space freed: writes are taken again.
        os.unlink(filler)
        wait_for("the alarm cleared",
                 lambda: metric(ep[2], "runvault_disk_low") == 0, timeout=10)
        self.assertEqual(self.create(0, "d-after")[0], 201)
        self.assertEqual(http_json(ep[2], "GET", "/readyz")[0], 200)


if __name__ == "__main__":
    unittest.main()
