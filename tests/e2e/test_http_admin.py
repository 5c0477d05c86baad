"""The HTTP side of authentication on a real node: the Authorization header
in every form a client or an attacker sends (written on the socket as is,
so repeated headers, control bytes and non-UTF-8 reach nng untouched),
401 with WWW-Authenticate, the open operations endpoints, and the admin
routes (teams, quotas, tokens, whoami, audit) of docs/HTTP.md.

OpenMode: auth off, every header form is ignored and served. AuthOn: a
one-node cluster bootstrapped with auth on, its cluster-admin token read
from DATA_DIR/admin.token.

    RUNVAULT_BIN=build/node/runvault python3 -m unittest tests/e2e/test_http_admin.py
"""

import json
import os
import socket
import sys
import unittest
import unittest.mock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from rvfixture import REPO_ROOT, Cluster, http_json  # noqa: E402

TOKEN_FORM = "rvt_0123456789abcdef_" + "ab" * 32  # Made up: in no cluster.


def runvault_bin():
    return os.path.abspath(os.environ.get("RUNVAULT_BIN") or os.path.join(
        REPO_ROOT, "build", "node", "runvault"))


def raw_request(endpoint, method, path, headers=(), body=b"", timeout=5.0):
    """One request written byte for byte: headers is a list of (name,
    value bytes), sent in order (a name may repeat). Returns (status,
    {lower-case header: value}, body bytes); status 0 when the server
    closed the connection without an answer."""
    host, port = endpoint.split("://", 1)[1].rsplit(":", 1)
    req = b"%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (
        method.encode(), path.encode(), host.encode())
    for name, value in headers:
        req += name.encode() + b": " + value + b"\r\n"
    if body:
        req += b"Content-Type: application/json\r\n"
    req += b"Content-Length: %d\r\n\r\n" % len(body) + body
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(req)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not data:
        return 0, {}, b""
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        hdrs[k.strip().lower().decode()] = v.strip().decode("latin-1")
    return status, hdrs, rest


def bad_headers(good):
    """Authorization values that are not exactly "Bearer <token>": (name,
    values, dropped) with good a token of the right form. dropped: nng
    1.5.2 closes the connection without an answer before the gateway sees
    the request (http_scan_line refuses a header line holding a byte below
    0x20 other than CR, tab included, or above 0x7f: its char is signed)."""
    g = good.encode()
    return [
        ("basic", [b"Basic dXNlcjpwYXNz"], False),
        ("bare scheme", [b"Bearer"], False),
        ("other scheme", [b"Token " + g], False),
        ("trailing byte", [b"Bearer " + g + b"x"], False),
        ("short", [b"Bearer " + g[:-1]], False),
        ("upper-case hex", [b"Bearer " + g.upper()], False),
        ("two headers", [b"Bearer " + g, b"Bearer " + g], False),
        ("4 KB", [b"Bearer " + b"a" * 4096], False),
        ("tab", [b"Bearer\t" + g], True),
        ("non-UTF-8", [b"Bearer " + g[:60] + b"\xff\xfe" + g[62:]], True),
        ("control byte", [b"Bearer " + g[:40] + b"\x01" + g[41:]], True),
    ]


class OpenMode(unittest.TestCase):
    """Auth off: tokens are ignored, whatever they are."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(n=1).start()
        cls.ep = cls.c.http_endpoints[0]

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def test_every_header_form_is_served(self):
        for name, values, dropped in bad_headers(TOKEN_FORM) + [
                ("good form", [b"Bearer " + TOKEN_FORM.encode()], False)]:
            st, hdrs, body = raw_request(
                self.ep, "GET", "/api/v2/experiments",
                [("Authorization", v) for v in values])
            self.assertEqual(st, 0 if dropped else 200, (name, body[:200]))
            self.assertNotIn("www-authenticate", hdrs, name)
        self.assertTrue(self.c.is_alive(0))

    def test_admin_writes_as_the_open_cluster_admin(self):
        def call(method, path, body=None):
            st, doc, _ = http_json(self.ep, method, path, body)
            return st, doc
        self.assertEqual(call("POST", "/api/v2/teams", {"team": "open"}),
                         (201, {"team": "open", "index": unittest.mock.ANY}))
        self.assertEqual(call("POST", "/api/v2/teams", {"team": "open"})[0],
                         409)
        self.assertEqual(call("PUT", "/api/v2/teams/open/quota",
                              {"max_runs": 1})[0], 200)
        self.assertEqual(call("PUT", "/api/v2/teams/nope/quota",
                              {"max_runs": 1})[0], 404)
        run = {"project": "p", "experiment": "e", "team": "open"}
        self.assertEqual(call("POST", "/api/v2/runs", run)[0], 201)
        st, doc = call("POST", "/api/v2/runs", run)
        self.assertEqual((st, doc["error_code"]), (507, "RESOURCE_EXHAUSTED"))
        st, doc = call("POST", "/api/v2/tokens",
                       {"team": "open", "role": "reader", "name": "nb"})
        self.assertEqual(st, 201, doc)
        self.assertRegex(doc["token"], "^rvt_%s_[0-9a-f]{64}$"
                         % doc["token_id"])
        self.assertEqual((doc["team"], doc["role"], doc["name"]),
                         ("open", "reader", "nb"))
        st, gone = call("DELETE", "/api/v2/tokens/" + doc["token_id"])
        self.assertEqual((st, gone["token_id"]), (200, doc["token_id"]))
        self.assertEqual(call("DELETE", "/api/v2/tokens/0123456789abcdef")[0],
                         404)
        self.assertEqual(call("DELETE", "/api/v2/tokens/NOTANID")[0], 404)

    def test_an_8k_header_never_breaks_the_node(self):
        st, _, _ = raw_request(self.ep, "GET", "/api/v2/experiments",
                               [("Authorization", b"Bearer " + b"a" * 8192)])
        self.assertIn(st, (0, 400, 431))  # nng: over its 8 KB buffer.
        self.assertEqual(http_json(self.ep, "GET", "/healthz")[0], 200)


class AuthOn(unittest.TestCase):
    """A node bootstrapped with auth on."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(n=1, extra_args=["--auth", "on"]).start()
        cls.ep = cls.c.http_endpoints[0]
        with open(os.path.join(cls.c.data_dir(0), "admin.token")) as f:
            cls.admin = f.read().strip()

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def call(self, method, path, body=None, token=None):
        hdrs = {"Authorization": "Bearer " + token} if token else {}
        st, doc, raw = http_json(self.ep, method, path, body, headers=hdrs)
        return st, doc

    def make_token(self, team, role, name="t"):
        st, doc = self.call("POST", "/api/v2/tokens",
                            {"team": team, "role": role, "name": name},
                            self.admin)
        self.assertEqual(st, 201, doc)
        return doc

    def test_no_token_is_401_with_challenge(self):
        st, hdrs, body = raw_request(self.ep, "GET", "/api/v2/experiments")
        self.assertEqual(st, 401)
        self.assertEqual(hdrs.get("www-authenticate"),
                         'Bearer realm="runvault"')
        self.assertEqual(json.loads(body)["error_code"], "UNAUTHENTICATED")

    def test_every_malformed_header_is_401(self):
        for name, values, dropped in bad_headers(self.admin):
            st, hdrs, body = raw_request(
                self.ep, "GET", "/api/v2/whoami",
                [("Authorization", v) for v in values])
            if dropped:
                self.assertEqual(st, 0, name)
                continue
            self.assertEqual(st, 401, (name, body[:200]))
            self.assertEqual(hdrs.get("www-authenticate"),
                             'Bearer realm="runvault", error="invalid_token"',
                             name)
        st, _, _ = raw_request(
            self.ep, "GET", "/api/v2/whoami",
            [("authorization", b"bearer   " + self.admin.encode())])
        self.assertEqual(st, 200)
        st, _, _ = raw_request(
            self.ep, "GET", "/api/v2/whoami",
            [("Authorization", b"Bearer " + TOKEN_FORM.encode())])
        self.assertEqual(st, 401)

    def test_operations_stay_open_without_run_data(self):
        self.call("POST", "/api/v2/teams", {"team": "ops-check"}, self.admin)
        w = self.make_token("ops-check", "writer")
        st, doc = self.call("POST", "/api/v2/runs",
                            {"project": "secretproj", "experiment": "e"},
                            w["token"])
        self.assertEqual(st, 201, doc)
        for path in ("/healthz", "/readyz", "/metrics", "/api/config", "/",
                     "/ui/app.js"):
            st, _, raw = http_json(self.ep, "GET", path)
            self.assertEqual(st, 200, path)
            self.assertNotIn(doc["run_id"].encode(), raw, path)
            self.assertNotIn(b"secretproj", raw, path)

    def test_teams_tokens_whoami_revoke_audit(self):
        st, doc = self.call("POST", "/api/v2/teams", {"team": "vision"},
                            self.admin)
        self.assertEqual(st, 201, doc)
        self.assertEqual(doc["team"], "vision")
        st, _ = self.call("POST", "/api/v2/teams", {"team": "vision"},
                          self.admin)
        self.assertEqual(st, 409)
        st, doc = self.call("POST", "/api/v2/tokens",
                            {"team": "vision", "role": "writer", "name": "ci",
                             "expires_in_s": 3600}, self.admin)
        self.assertEqual(st, 201, doc)
        tok, tid = doc["token"], doc["token_id"]
        self.assertTrue(tok.startswith("rvt_" + tid + "_"))
        self.assertGreater(doc["expires_at"], 0)
        st, me = self.call("GET", "/api/v2/whoami", token=tok)
        self.assertEqual((st, me), (200, {"token_id": tid, "team": "vision",
                                          "role": "writer", "name": "ci"}))
        st, doc = self.call("POST", "/api/v2/runs",
                            {"project": "p", "experiment": "e"}, tok)
        self.assertEqual(st, 201, doc)
        st, doc = self.call("POST", "/api/v2/runs",
                            {"project": "p", "experiment": "e",
                             "team": "default"}, tok)
        self.assertEqual(st, 403, doc)
        st, doc = self.call("GET", "/api/v2/tokens?team=vision",
                            token=self.admin)
        self.assertEqual(st, 200, doc)
        mine = [t for t in doc["tokens"] if t["token_id"] == tid]
        self.assertEqual(len(mine), 1)
        self.assertEqual(set(mine[0]), {"token_id", "team", "role", "name",
                                        "created_at", "expires_at", "revoked",
                                        "revoked_index"})
        self.assertNotIn(tok[21:], json.dumps(doc))
        st, doc = self.call("DELETE", "/api/v2/tokens/" + tid,
                            token=self.admin)
        self.assertEqual(st, 200, doc)
        self.assertEqual(doc["token_id"], tid)
        st, _ = self.call("GET", "/api/v2/whoami", token=tok)
        self.assertEqual(st, 401)
        st, doc = self.call("GET", "/api/v2/audit?since_index=0&max=1000",
                            token=self.admin)
        self.assertEqual(st, 200, doc)
        acts = {(e["action"], e["target"]) for e in doc["events"]}
        self.assertIn(("token_del", tid), acts)
        self.assertIn("team_put", {a for a, _ in acts})

    def test_quota_of_runs_is_507(self):
        self.call("POST", "/api/v2/teams", {"team": "small"}, self.admin)
        st, doc = self.call("PUT", "/api/v2/teams/small/quota",
                            {"max_runs": 1}, self.admin)
        self.assertEqual(st, 200, doc)
        w = self.make_token("small", "writer")["token"]
        run = {"project": "p", "experiment": "e"}
        self.assertEqual(self.call("POST", "/api/v2/runs", run, w)[0], 201)
        st, doc = self.call("POST", "/api/v2/runs", run, w)
        self.assertEqual(st, 507, doc)
        self.assertEqual(doc["error_code"], "RESOURCE_EXHAUSTED")
        st, doc = self.call("GET", "/api/v2/teams", token=self.admin)
        small = [t for t in doc["teams"] if t["team"] == "small"][0]
        self.assertEqual((small["max_runs"], small["n_runs"]), (1, 1))

    def test_bad_admin_bodies_are_400(self):
        for path, body in [
                ("/api/v2/teams", {"team": "*"}),
                ("/api/v2/tokens", {"team": "x", "role": "owner",
                                    "name": "n"}),
                ("/api/v2/tokens", {"team": "x", "role": "reader",
                                    "name": "n", "expires_in_s": 0}),
                ("/api/v2/tokens", {"team": "x", "role": "reader",
                                    "name": "n" * 129})]:
            st, doc = self.call("POST", path, body, self.admin)
            self.assertEqual(st, 400, (path, body, doc))
        st, _ = self.call("PUT", "/api/v2/teams/vision/quota",
                          {"max_runs": -1}, self.admin)
        self.assertEqual(st, 400)
        st, _ = self.call("DELETE", "/api/v2/tokens/nothex", token=self.admin)
        self.assertEqual(st, 404)


if __name__ == "__main__":
    unittest.main()
