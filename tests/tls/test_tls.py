"""TLS end to end: a 3-node cluster with --tls-cert/--tls-key/--tls-ca
(certificates from deploy/make-certs.sh --test) elects, replicates and
serves over https and tls+tcp:// (CLI and SDK with the CA); a wrong CA,
plaintext, an expired certificate and rogue raft peers (no TLS, another
CA's certificate, an expired one, a join with another CA) are refused
while the cluster goes on unaffected (same leader and term, equal
digests); the RPC server counts only a CA-verified client certificate as
a peer's.

    RUNVAULT_BIN=build/node/runvault python3 -m unittest -v test_tls
"""

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "sdk", "python"))

import rvfixture  # noqa: E402
import runvault  # noqa: E402
from runvault._transport import OK, Transport  # noqa: E402

ROOT = rvfixture.REPO_ROOT
BIN = os.path.abspath(os.environ.get("RUNVAULT_BIN")
                      or os.path.join(ROOT, "build", "node", "runvault"))


class TlsCluster(rvfixture.Cluster):
    """Node i serves with certs/n<i>.crt and key, and the cluster CA."""

    def __init__(self, certs, **kw):
        self.certs = certs
        ports = rvfixture.free_ports(9)
        addrs = [("127.0.0.1:%d" % ports[3 * i + 2],
                  "tls+tcp://127.0.0.1:%d" % ports[3 * i + 1],
                  "https://127.0.0.1:%d" % ports[3 * i]) for i in range(3)]
        super().__init__(n=3, runvault=BIN, addresses=addrs,
                         log_level="debug", **kw)

    def argv(self, i):
        c = self.certs
        return super().argv(i) + [
            "--tls-cert", os.path.join(c, "n%d.crt" % (i + 1)),
            "--tls-key", os.path.join(c, "n%d.key" % (i + 1)),
            "--tls-ca", os.path.join(c, "ca.crt")]


def run_cli(*args, timeout=20):
    """(exit code, stdout, stderr) of the runvault binary; the TLS variables
    of this process are not passed on."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RUNVAULT_")}
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


class TestTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rv-tls-")
        cls.certs = os.path.join(cls.tmp, "certs")
        subprocess.run([os.path.join(ROOT, "deploy", "make-certs.sh"),
                        "--test", cls.certs], check=True,
                       capture_output=True, timeout=60)
        cls.ca = os.path.join(cls.certs, "ca.crt")
        rvfixture.TLS_CONTEXT = ssl.create_default_context(cafile=cls.ca)
        cls.c = TlsCluster(cls.certs)
        cls.c.start(timeout=40)

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()
        rvfixture.TLS_CONTEXT = None
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def cert(self, name):
        return os.path.join(self.certs, name)

    # -- helpers -----------------------------------------------------------

    def snapshot(self):
        """(leader id, term, {node id: digest}) once every node reports the
        same applied index (bounded wait)."""
        deadline = time.monotonic() + 15
        while True:
            doc = self.c.cluster_status(self.c.leader())
            nodes = doc.get("nodes", [])
            applied = {n.get("applied_index") for n in nodes}
            terms = {n.get("term") for n in nodes}
            if len(nodes) == 3 and len(applied) == 1 and None not in applied \
                    and len(terms) == 1:
                return (doc["leader_id"], terms.pop(),
                        {n["id"]: n["digest"] for n in nodes})
            if time.monotonic() > deadline:
                self.fail("the nodes did not converge: %r" % doc)
            time.sleep(0.2)

    def rogue(self, name, node_id, extra, wait_s=4.0, peers=None):
        """Run a node that is not part of the cluster for wait_s (its own
        ports and data dir; with peers, a --peers value to which its own
        entry is added), then stop it; its log text."""
        ports = rvfixture.free_ports(3)
        d = os.path.join(self.tmp, name)
        raft = "127.0.0.1:%d" % ports[2]
        if peers:
            extra = extra + ["--peers", "%s,%d=%s" % (peers, node_id, raft)]
        argv = rvfixture.serve_argv(
            BIN, node_id, d, raft, "tcp://127.0.0.1:%d" % ports[1],
            "127.0.0.1:%d" % ports[0],
            extra=["--election-ms", "300", "--heartbeat-ms", "50"] + extra)
        log = os.path.join(self.tmp, name + ".log")
        with open(log, "wb") as f:
            p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        try:
            time.sleep(wait_s)
        finally:
            p.kill()
            p.wait(timeout=10)
        with open(log, encoding="utf-8", errors="replace") as f:
            return f.read()

    def cluster_logs(self):
        out = ""
        for i in range(3):
            with open(self.c.log_path(i), encoding="utf-8",
                      errors="replace") as f:
                out += f.read()
        return out

    # -- tests ---------------------------------------------------------------

    def test_1_replicates_and_serves_over_https_and_tls_tcp(self):
        li = self.c.leader()
        follower = (li + 1) % 3
        run = runvault.init("tls", "e2e",
                            endpoint=self.c.http_endpoints[follower],
                            ca_file=self.ca, offline_after=20)
        for step in range(50):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.finish()
        self.assertEqual(run.stats.get("spooled", 0), 0)
        for ep in (self.c.rpc_endpoints[li], self.c.http_endpoints[follower]):
            code, out, err = run_cli("show", run.run_id, "--endpoint", ep,
                                     "--tls-ca", self.ca)
            self.assertEqual(code, 0, err)
            self.assertIn(run.run_id, out)
        _, _, digests = self.snapshot()
        self.assertEqual(len(set(digests.values())), 1, digests)

    def test_2_wrong_ca_is_refused(self):
        code, _, err = run_cli("ls", "--endpoint", self.c.rpc_endpoints[0],
                               "--tls-ca", self.cert("other-ca.crt"),
                               "--timeout-ms", "2000")
        self.assertNotEqual(code, 0)
        ctx = ssl.create_default_context(cafile=self.cert("other-ca.crt"))
        host, port = self.c.http_endpoints[0][8:].split(":")
        conn = http.client.HTTPSConnection(host, int(port), timeout=5,
                                           context=ctx)
        with self.assertRaises(ssl.SSLError):
            conn.request("GET", "/healthz")
        conn.close()
        t = Transport(self.c.http_endpoints[0],
                      ca_file=self.cert("other-ca.crt"))
        r = t.request("GET", "/healthz", b"", one_pass=True,
                      deadline=time.monotonic() + 3)
        t.close()
        self.assertNotEqual(r.outcome, OK)
        t = Transport(self.c.http_endpoints[0], ca_file=self.ca)
        r = t.request("GET", "/healthz", b"", one_pass=True,
                      deadline=time.monotonic() + 3)
        t.close()
        self.assertEqual(r.outcome, OK)

    def test_3_plaintext_is_refused_and_the_node_keeps_serving(self):
        host, port = self.c.http_endpoints[0][8:].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        with self.assertRaises((OSError, http.client.HTTPException)):
            conn.request("GET", "/healthz")
            conn.getresponse().read()
        conn.close()
        plain = self.c.rpc_endpoints[0].replace("tls+tcp://", "tcp://")
        code, _, _ = run_cli("ls", "--endpoint", plain, "--timeout-ms",
                             "2000")
        self.assertNotEqual(code, 0)
        code, _, err = run_cli("ls", "--endpoint", self.c.rpc_endpoints[0],
                               "--timeout-ms", "2000")
        self.assertNotEqual(code, 0)
        self.assertIn("--tls-ca", err)
        st, _, _ = rvfixture.http_json(self.c.http_endpoints[0], "GET",
                                       "/healthz")
        self.assertEqual(st, 200)

    def test_4_expired_server_certificate_is_refused(self):
        ports = rvfixture.free_ports(3)
        d = os.path.join(self.tmp, "expired-server")
        argv = rvfixture.serve_argv(
            BIN, 1, d, "127.0.0.1:%d" % ports[2],
            "tcp://127.0.0.1:%d" % ports[1], "127.0.0.1:%d" % ports[0],
            extra=["--tls-cert", self.cert("expired.crt"), "--tls-key",
                   self.cert("expired.key"), "--tls-ca", self.ca])
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            refused = None
            while time.monotonic() < deadline and refused is None:
                try:
                    rvfixture.http_json("https://127.0.0.1:%d" % ports[0],
                                        "GET", "/healthz", timeout=2)
                    refused = False
                except ssl.SSLError:
                    refused = True
                except OSError:
                    time.sleep(0.1)  # Not listening yet.
            self.assertTrue(refused, "https with an expired certificate")
            code, _, _ = run_cli("ls", "--endpoint",
                                 "tls+tcp://127.0.0.1:%d" % ports[1],
                                 "--tls-ca", self.ca, "--timeout-ms", "2000")
            self.assertNotEqual(code, 0)
        finally:
            p.kill()
            p.wait(timeout=10)

    def test_5_rogue_raft_peers_are_refused(self):
        leader0, term0, digests0 = self.snapshot()
        peers = ",".join("%d=%s" % (j + 1, a)
                         for j, a in enumerate(self.c.raft_addrs))
        # Raw bytes to the raft port, as raft's own TCP transport sends.
        for addr in self.c.raft_addrs:
            h, p = addr.split(":")
            with socket.create_connection((h, int(p)), timeout=5) as s:
                s.sendall(b"\x01" + bytes(7) + b"\x05" + bytes(7) * 8)
                s.settimeout(5)
                self.assertEqual(s.recv(100), b"")  # Closed, no answer.
        # Nodes that list the members as their peers and campaign with
        # higher terms (their votes would unseat the leader if heard):
        # without TLS, with another CA's certificate, with an expired one
        # of our CA.
        plain = self.rogue("rogue-plain", 4, [], peers=peers)
        self.assertNotIn("elected leader", plain)
        for name, crt, key, ca in (
                ("rogue-other", "other.crt", "other.key", "other-ca.crt"),
                ("rogue-expired", "expired.crt", "expired.key", "ca.crt")):
            log = self.rogue(name, 4, [
                "--tls-cert", self.cert(crt), "--tls-key", self.cert(key),
                "--tls-ca", self.cert(ca)], wait_s=3.0, peers=peers)
            self.assertNotIn("elected leader", log)
        # A join with another CA's certificate gets nowhere.
        joined = self.rogue(
            "rogue-join", 9,
            ["--join", self.c.http_endpoints[0], "--tls-cert",
             self.cert("other.crt"), "--tls-key", self.cert("other.key"),
             "--tls-ca", self.cert("other-ca.crt")], wait_s=3.0)
        self.assertNotIn("joined the cluster", joined)
        self.assertIn("refused a raft connection", self.cluster_logs())
        leader1, term1, digests1 = self.snapshot()
        self.assertEqual((leader1, term1), (leader0, term0))
        self.assertEqual(len(set(digests1.values())), 1, digests1)
        self.assertEqual(set(digests0), set(digests1))  # Still 3 members.

    def test_6_only_a_ca_verified_client_certificate_is_a_peer(self):
        ep = self.c.rpc_endpoints[0]
        base = ["cluster", "status", "--endpoint", ep, "--tls-ca", self.ca]
        cases = [([], "client"),
                 (["--tls-cert", self.cert("client.crt"), "--tls-key",
                   self.cert("client.key")], "peer"),
                 (["--tls-cert", self.cert("other.crt"), "--tls-key",
                   self.cert("other.key")], "client"),
                 (["--tls-cert", self.cert("expired.crt"), "--tls-key",
                   self.cert("expired.key")], "client")]
        for extra, want in cases:
            with open(self.c.log_path(0), "rb") as f:
                f.seek(0, os.SEEK_END)
                start = f.tell()
            code, _, err = run_cli(*(base + extra))
            self.assertEqual(code, 0, err)
            time.sleep(0.2)
            with open(self.c.log_path(0), "rb") as f:
                f.seek(start)
                lines = [ln for ln in f.read().decode().splitlines()
                         if "TLS connection from" in ln]
            self.assertTrue(lines, "no connection logged for %r" % extra)
            self.assertTrue(lines[0].split(": ")[-1].startswith(want),
                            "%r -> %r" % (extra, lines))

    def test_8_a_follower_killed_reconnects_and_catches_up(self):
        li = self.c.leader()
        f = (li + 1) % 3
        self.c.kill(f)
        run = runvault.init("tls", "restart",
                            endpoint=self.c.http_endpoints[li],
                            ca_file=self.ca, offline_after=20)
        for step in range(200):
            run.log({"acc": step / 200.0}, step=step)
        run.finish()
        self.c.restart(f)
        self.c.wait_up(f, timeout=20)
        _, _, digests = self.snapshot()
        self.assertEqual(len(set(digests.values())), 1, digests)

    def test_7_half_given_or_bad_tls_settings_refuse_to_start(self):
        ports = rvfixture.free_ports(3)
        addrs = ["--http-addr", "127.0.0.1:%d" % ports[0], "--rpc-addr",
                 "tcp://127.0.0.1:%d" % ports[1], "--raft-addr",
                 "127.0.0.1:%d" % ports[2]]
        for name, tls, want in (
                ("half", ["--tls-ca", self.ca],
                 "--tls-cert, --tls-key and --tls-ca together"),
                ("mismatch", ["--tls-ca", self.ca, "--tls-cert", self.ca,
                              "--tls-key", self.cert("n1.key")],
                 "is not the key of"),
                ("missing", ["--tls-ca", self.cert("nope.crt"), "--tls-cert",
                             self.cert("n1.crt"), "--tls-key",
                             self.cert("n1.key")], "No such file")):
            code, _, err = run_cli(
                "serve", "--data-dir", os.path.join(self.tmp, name),
                *(addrs + tls), timeout=10)
            self.assertEqual(code, 1, err)  # RV_EXIT_USAGE
            self.assertIn(want, err)

if __name__ == "__main__":
    unittest.main()
