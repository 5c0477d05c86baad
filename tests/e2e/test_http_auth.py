"""Authentication over HTTP on a real 3-node cluster started with --auth on:
the Authorization header in every malformed, oversized, truncated,
non-UTF-8 and repeated form (401 with WWW-Authenticate, the node keeps
serving), the admin routes of DESIGN Appendix B.1 (teams, tokens shown
once, whoami, quotas with use, audit), a team's token through a follower
(forwarded writes keep the caller's identity), revocation, and the open
endpoints (/healthz, /readyz, /metrics) that carry no run data.

    RUNVAULT_BIN=build/node/runvault python3 -m unittest tests/e2e/test_http_auth.py
"""

import http.client
import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from rvfixture import Cluster, http_json  # noqa: E402


def raw_request(endpoint, lines, timeout=5.0):
    """Send a request made of raw header lines (bytes) and read the
    status line and headers: (status, {lower-case name: value}, body)."""
    host, port = endpoint.split("://", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head:
            return 0, {}, b""  # Closed without an answer.
        first, *rest = head.split(b"\r\n")
        hdrs = {}
        for h in rest:
            k, _, v = h.partition(b":")
            hdrs[k.strip().lower().decode("latin-1")] = \
                v.strip().decode("latin-1")
        n = int(hdrs.get("content-length", "0") or 0)
        while len(body) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(first.split()[1]), hdrs, body


class HttpAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(n=3, extra_args=["--auth", "on"]).start()
        cls.admin = cls.c.wait_admin_token()
        cls.li = cls.c.leader()
        cls.ep = cls.c.http_endpoints[cls.li]
        cls.fol = cls.c.http_endpoints[(cls.li + 1) % 3]

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def call(self, method, path, body=None, token=None, ep=None):
        hdrs = {"Authorization": "Bearer " + token} if token else {}
        st, doc, raw = http_json(ep or self.ep, method, path, body,
                                 headers=hdrs)
        return st, doc

    def make_token(self, team, role, by=None, name="t", ttl=None):
        body = {"team": team, "role": role, "name": name}
        if ttl:
            body["expires_in_s"] = ttl
        st, doc = self.call("POST", "/api/v2/tokens", body, by or self.admin)
        self.assertEqual(st, 201, doc)
        return doc

    # ---- The header ----------------------------------------------------

    def test_bad_authorization_headers_are_401_and_the_node_serves_on(self):
        good = self.admin.encode()
        base = [b"GET /api/v2/experiments HTTP/1.1",
                b"Host: x", b"Connection: close"]
        cases = {
            "none": [],
            "basic": [b"Authorization: Basic " + good],
            "no token": [b"Authorization: Bearer"],
            "truncated": [b"Authorization: Bearer " + good[:-1]],
            "trailing": [b"Authorization: Bearer " + good + b"x"],
            "unknown": [b"Authorization: Bearer " + good[:30] +
                        (b"0" if good[30:31] != b"0" else b"1") + good[31:]],
            "non-utf8": [b"Authorization: Bearer \xff\xfe" + good[2:]],
            "oversized": [b"Authorization: Bearer " + b"a" * 8000],
            "repeated": [b"Authorization: Bearer " + good,
                         b"Authorization: Bearer " + good],
            "repeated bad": [b"Authorization: Bearer " + good,
                             b"Authorization: Basic eA=="],
        }
        for name, extra in cases.items():
            st, hdrs, body = raw_request(self.ep, base + extra)
            with self.subTest(case=name):
                # nng's HTTP parser drops a request whose header bytes are
                # not text (no answer); everything else is answered.
                ok = (0, 400) if name == "non-utf8" else (401,)
                self.assertIn(st, ok, body[:200])
                if st == 401:
                    self.assertIn("bearer", hdrs.get("www-authenticate",
                                                     "").lower())
                self.assertNotIn(good, body)  # never echoed
        st, _, _ = raw_request(self.ep, base + [b"Authorization: Bearer " +
                                                good])
        self.assertEqual(st, 200)
        for i in range(3):
            self.assertTrue(self.c.is_alive(i))

    def test_open_endpoints_carry_no_run_data(self):
        st, doc = self.call("POST", "/api/v2/runs",
                            {"project": "p", "experiment": "e",
                             "run_id": "openrun1"}, self.admin)
        self.assertIn(st, (200, 201), doc)
        for path in ("/healthz", "/readyz", "/metrics"):
            st, hdrs, body = raw_request(
                self.ep, [b"GET " + path.encode() + b" HTTP/1.1",
                          b"Host: x", b"Connection: close"])
            self.assertEqual(st, 200, path)
            self.assertNotIn(b"openrun1", body)
        st, _ = self.call("GET", "/api/v2/runs/openrun1")
        self.assertEqual(st, 401)

    # ---- Admin routes ----------------------------------------------------

    def test_teams_tokens_whoami_quota_audit(self):
        st, doc = self.call("POST", "/api/v2/teams", {"team": "vision"},
                            self.admin)
        self.assertEqual(st, 201, doc)
        st, doc = self.call("POST", "/api/v2/teams", {"team": "vision"},
                            self.admin)
        self.assertEqual(st, 409, doc)
        adm = self.make_token("vision", "admin")
        self.assertTrue(adm["token"].startswith("rvt_"))
        wr = self.make_token("vision", "writer", by=adm["token"])
        st, doc = self.call("GET", "/api/v2/whoami", token=wr["token"])
        self.assertEqual((st, doc["team"], doc["role"]),
                         (200, "vision", "writer"))
        # A team admin may not make tokens for another team.
        st, doc = self.call("POST", "/api/v2/tokens",
                            {"team": "other", "role": "reader", "name": "x"},
                            adm["token"])
        self.assertIn(st, (403, 404), doc)
        # Listings never show a secret.
        st, doc = self.call("GET", "/api/v2/tokens?team=vision",
                            token=adm["token"])
        self.assertEqual(st, 200)
        text = json.dumps(doc)
        self.assertNotIn(wr["token"], text)
        self.assertNotIn(wr["token"].split("_")[2], text)
        self.assertIn(wr["token_id"], text)
        st, _ = self.call("GET", "/api/v2/tokens?team=vision",
                          token=wr["token"])
        self.assertEqual(st, 403)
        # Quotas: only a cluster-admin; use shown against them.
        st, _ = self.call("PUT", "/api/v2/teams/vision/quota",
                          {"max_runs": 2}, adm["token"])
        self.assertEqual(st, 403)
        st, doc = self.call("PUT", "/api/v2/teams/vision/quota",
                            {"max_runs": 2}, self.admin)
        self.assertEqual(st, 200, doc)
        codes = []
        for k in range(3):
            st, doc = self.call("POST", "/api/v2/runs",
                                {"project": "p", "experiment": "e",
                                 "run_id": "vq%d" % k}, wr["token"])
            codes.append(st)
        self.assertEqual(codes, [201, 201, 507])
        st, doc = self.call("GET", "/api/v2/teams", token=wr["token"])
        self.assertEqual(st, 200)
        self.assertEqual([(t["team"], t["n_runs"], t["max_runs"])
                          for t in doc["teams"]], [("vision", 2, 2)])
        # Audit: the team admin sees its team's actions, a writer nothing.
        st, doc = self.call("GET", "/api/v2/audit?team=vision",
                            token=adm["token"])
        self.assertEqual(st, 200, doc)
        acts = {(e["action"], e["token_id"]) for e in doc["events"]}
        self.assertIn(("token_put", adm["token_id"]), acts)
        st, _ = self.call("GET", "/api/v2/audit", token=wr["token"])
        self.assertEqual(st, 403)

    def test_a_team_through_a_follower_and_revocation(self):
        self.call("POST", "/api/v2/teams", {"team": "nlp"}, self.admin)
        self.call("POST", "/api/v2/teams", {"team": "speech"}, self.admin)
        nlp = self.make_token("nlp", "writer")
        sp = self.make_token("speech", "reader")
        st, doc = self.call("POST", "/api/v2/runs",
                            {"project": "p", "experiment": "e",
                             "run_id": "nlprun1", "params": {"k": "v"}},
                            nlp["token"], ep=self.fol)
        self.assertEqual(st, 201, doc)
        idx = doc["index"]
        st, doc = self.call("GET", "/api/v2/runs/nlprun1?min_index=%d" % idx,
                            token=nlp["token"], ep=self.fol)
        self.assertEqual((st, doc["run"]["team"]), (200, "nlp"))
        st, doc = self.call("GET", "/api/v2/runs/nlprun1?min_index=%d" % idx,
                            token=sp["token"], ep=self.fol)
        self.assertEqual(st, 404)
        st, doc = self.call(
            "GET", "/api/v2/experiments?filter=params.k%20%3D%20%27v%27",
            token=sp["token"], ep=self.fol)
        self.assertEqual(st, 200)
        self.assertEqual(doc["runs"], [])
        # Revoked: refused on every node from the revoke's index on.
        st, doc = self.call("DELETE", "/api/v2/tokens/" + nlp["token_id"],
                            token=self.admin)
        self.assertEqual(st, 200, doc)
        ridx = doc["index"]
        for ep in self.c.http_endpoints:
            st, _ = self.call("GET", "/api/v2/whoami?min_index=%d" % ridx,
                              token=self.admin, ep=ep)
            self.assertEqual(st, 200)
            st, hdrs, _ = raw_request(ep, [
                b"GET /api/v2/runs/nlprun1?consistency=stale HTTP/1.1",
                b"Host: x", b"Connection: close",
                b"Authorization: Bearer " + nlp["token"].encode()])
            self.assertEqual(st, 401)
        st, _ = self.call("POST", "/api/v2/runs/nlprun1/log-batch",
                          {"metrics": [{"key": "m", "value": 1, "step": 1,
                                        "timestamp": 1}]}, nlp["token"],
                          ep=self.fol)
        self.assertEqual(st, 401)

    def test_metrics_query_is_scoped_per_run(self):
        """POST /api/v2/metrics/query reads each run as the caller: another
        team's run is an entry saying it does not exist, with no points."""
        for team in ("mq-a", "mq-b"):
            self.call("POST", "/api/v2/teams", {"team": team}, self.admin)
        wa = self.make_token("mq-a", "writer")["token"]
        rb = self.make_token("mq-b", "reader")["token"]
        ids = []
        for team, tok in (("mq-a", wa), ("mq-b", self.admin)):
            st, doc = self.call("POST", "/api/v2/runs",
                                {"project": "p", "experiment": "e",
                                 "team": team}, tok)
            self.assertEqual(st, 201, doc)
            ids.append(doc["run_id"])
            st, _ = self.call("POST", "/api/v2/runs/%s/log-batch" % ids[-1],
                              {"metrics": [{"key": "loss", "value": 0.5 + i,
                                            "step": i} for i in range(10)]},
                              tok)
            self.assertEqual(st, 200)
        q = {"runs": ids, "key": "loss", "downsample": 8}
        st, doc = self.call("POST", "/api/v2/metrics/query", q, rb,
                            ep=self.fol)
        self.assertEqual(st, 200, doc)
        a, b = doc["series"]
        self.assertEqual(a["error_code"], "RESOURCE_DOES_NOT_EXIST")
        self.assertNotIn("points", a)
        st, one = self.call("GET", "/api/v2/runs/%s/metrics?key=loss&"
                            "downsample=8" % ids[1], None, rb)
        self.assertEqual(st, 200, one)
        self.assertEqual(b["points"], one["points"])
        self.assertLess(len(b["points"]), 10)
        st, doc = self.call("POST", "/api/v2/metrics/query", q, None)
        self.assertEqual(st, 401, doc)

    def test_door_matrix_of_the_later_routes(self):
        """Every route added after the teams matrix (tests/auth) was made,
        for seven callers: none, a malformed token, team d0's reader,
        writer and admin, team d1's admin, and the cluster-admin. Another
        team's run or experiment is 404 where named and absent from
        lists; a role too weak is 403; no credentials 401."""
        for team in ("d0", "d1"):
            self.call("POST", "/api/v2/teams", {"team": team}, self.admin)
        toks = {"none": None, "bad": "rvt_" + "0" * 40}
        for name, team, role in (("r0", "d0", "reader"),
                                 ("w0", "d0", "writer"),
                                 ("a0", "d0", "admin"),
                                 ("a1", "d1", "admin")):
            toks[name] = self.make_token(team, role, name=name)["token"]
        toks["ca"] = self.admin
        order = ("none", "bad", "r0", "w0", "a0", "a1", "ca")
        a0 = toks["a0"]
        st, doc = self.call("POST", "/api/2.0/mlflow/experiments/create",
                            {"name": "dm/exp"}, a0)
        self.assertEqual(st, 200, doc)
        eid = doc["experiment_id"]

        def new_run():
            st, doc = self.call("POST", "/api/2.0/mlflow/runs/create",
                                {"experiment_id": eid, "run_name": "dm"}, a0)
            self.assertEqual(st, 200, doc)
            rid = doc["run"]["info"]["run_id"]
            st, _ = self.call("POST", "/api/v2/runs/%s/log-batch" % rid,
                              {"metrics": [{"key": "loss", "value": 1.0,
                                            "step": 1}]}, a0)
            self.assertEqual(st, 200)
            return rid

        rid = new_run()
        mlf, art = "/api/2.0/mlflow/", "/api/2.0/mlflow-artifacts/artifacts/"
        st, _ = self.call("PUT", art + "%s/%s/artifacts/m.txt" % (eid, rid),
                          b"", a0)  # 0 bytes: nng cannot copy an empty body
        self.assertEqual(st, 200)
        # (method, path, body, statuses in `order`, fresh run per caller)
        U, F, N, K = 401, 403, 404, 200
        rows = [
            ("POST", "/api/v2/experiments/search", {"project": "dm"},
             (U, U, K, K, K, K, K), False),
            ("POST", "/api/v2/metrics/query", {"runs": ["%R"], "key": "loss",
                                                "downsample": 8},
             (U, U, K, K, K, K, K), False),
            ("GET", "/api/v2/retention", None, (U, U, K, K, K, K, K), False),
            ("PUT", "/api/v2/projects/dm/retention", {"keep_last": 5},
             (U, U, F, F, K, K, K), False),
            ("DELETE", "/api/v2/projects/dm/retention", None,
             (U, U, F, F, K, K, K), False),
            ("GET", mlf + "runs/get?run_id=%R", None, (U, U, K, K, K, N, K),
             False),
            ("GET", mlf + "experiments/get?experiment_id=" + eid, None,
             (U, U, K, K, K, N, N), False),
            ("POST", mlf + "experiments/search", {"max_results": 100},
             (U, U, K, K, K, K, K), False),
            # MLflow's search names no missing experiment: d1's admin
            # and the cluster-admin (team default) get no runs.
            ("POST", mlf + "runs/search", {"experiment_ids": [eid]},
             (U, U, K, K, K, K, K), False),
            ("GET", mlf + "metrics/get-history?run_id=%R&metric_key=loss",
             None, (U, U, K, K, K, N, K), False),
            ("POST", mlf + "runs/log-metric", {"run_id": "%R", "key": "m",
                                              "value": 1, "timestamp": 1,
                                              "step": 0},
             (U, U, F, K, K, N, K), False),
            ("POST", mlf + "runs/set-tag", {"run_id": "%R", "key": "k",
                                           "value": "v"},
             (U, U, F, K, K, N, K), False),
            ("POST", mlf + "runs/delete", {"run_id": "%R"},
             (U, U, F, F, K, N, K), True),
            ("POST", mlf + "experiments/set-experiment-tag",
             {"experiment_id": eid, "key": "k", "value": "v"},
             (U, U, F, K, K, N, N), False),
            ("GET", art + "%E/%R/artifacts/m.txt", None,
             (U, U, K, K, K, N, K), False),
            ("PUT", art + "%E/%R/artifacts/up-%W.txt", "x",
             (U, U, F, K, K, N, K), False),
            # Last: a compaction rewrites the archive of every team, so
            # only the cluster-admin may ask (202, judged at apply).
            ("POST", "/api/v2/compact", {}, (U, U, F, F, F, F, 202), False),
        ]
        bad = []
        for method, path, body, want, fresh in rows:
            for who, w in zip(order, want):
                r = new_run() if fresh else rid
                p = path.replace("%R", r).replace("%E", eid).replace("%W",
                                                                     who)
                b = body
                if isinstance(b, dict):
                    b = json.loads(json.dumps(b).replace("%R", r))
                elif isinstance(b, str):
                    b = b.encode()
                try:
                    st, doc = self.call(method, p, b, toks[who])
                except (OSError, http.client.HTTPException) as e:
                    st, doc = 0, repr(e)
                if st != w:
                    bad.append("%s %s as %s: %d, want %d (%s)" %
                               (method, p, who, st, w, str(doc)[:120]))
                lists_runs = p.endswith(("/api/v2/experiments/search",
                                         "/runs/search"))
                if lists_runs and st == 200 and who in ("r0", "a0"):
                    self.assertIn(rid, json.dumps(doc), (method, p))
                if (st == 200 and who == "a1" and isinstance(doc, dict) and
                        "metrics/query" not in p):  # It echoes the ids.
                    # Nothing of d0's comes back in a list of d1's admin.
                    self.assertNotIn(rid, json.dumps(doc), (method, path))
                    self.assertNotIn('"dm/exp"', json.dumps(doc),
                                     (method, path))
        self.assertEqual(bad, [], "\n".join(bad))
        st, doc, raw = http_json(self.ep, "GET", art + "%s/%s/artifacts/m.txt"
                                 % (eid, rid), headers={
                                     "Authorization": "Bearer " + a0})
        self.assertEqual((st, raw), (200, b""))
        # The metrics query of d1's admin names d0's run as absent.
        st, doc = self.call("POST", "/api/v2/metrics/query",
                            {"runs": [rid], "key": "loss", "downsample": 8},
                            toks["a1"])
        self.assertEqual(doc["series"][0]["error_code"],
                         "RESOURCE_DOES_NOT_EXIST")

    def test_expired_token_is_refused(self):
        self.call("POST", "/api/v2/teams", {"team": "rl"}, self.admin)
        tok = self.make_token("rl", "reader", ttl=1)
        st, _ = self.call("GET", "/api/v2/whoami", token=tok["token"])
        self.assertEqual(st, 200)
        time.sleep(1.3)
        for ep in self.c.http_endpoints:
            st, _ = self.call("GET", "/api/v2/whoami?consistency=stale",
                              token=tok["token"], ep=ep)
            self.assertEqual(st, 401)


if __name__ == "__main__":
    unittest.main()
