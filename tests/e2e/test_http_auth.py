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
        deadline = time.monotonic() + 20
        while cls.c.admin_token() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        cls.admin = cls.c.admin_token()
        assert cls.admin, "no admin.token was written"
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
