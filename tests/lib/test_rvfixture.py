"""The Python fixture's own checks (no runvault binary needed): ports are
checked free, command lines are what a node expects, the HTTP helper
reports no answer instead of raising, and the command line refuses to
start over running nodes.

    python3 tests/lib/test_rvfixture.py
"""

import os
import shutil
import socket
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rvfixture  # noqa: E402


class TestFixture(unittest.TestCase):
    def test_free_ports_skips_a_bound_port(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        self.addCleanup(s.close)
        busy = s.getsockname()[1]
        self.assertFalse(rvfixture.port_is_free(busy))
        ports = rvfixture.free_ports(30)
        self.assertEqual(len(set(ports)), 30)
        self.assertNotIn(busy, ports)
        self.assertTrue(set(ports).isdisjoint(rvfixture.free_ports(30)))

    def test_serve_argv(self):
        a = rvfixture.serve_argv("rv", 2, "/d", "h:3", "tcp://h:2", "h:1",
                                 peers="1=a,2=b", durability="strict",
                                 extra=["--log-level", "info"])
        self.assertEqual(a, ["rv", "serve", "--id", "2", "--data-dir", "/d",
                             "--raft-addr", "h:3", "--rpc-addr", "tcp://h:2",
                             "--http-addr", "h:1", "--peers", "1=a,2=b",
                             "--durability", "strict", "--log-level",
                             "info"])
        j = rvfixture.serve_argv("rv", 4, "/d", "r", "p", "h", peers="x",
                                 join="http://h:1")
        self.assertIn("--join", j)
        self.assertNotIn("--peers", j)
        self.assertEqual(rvfixture.peers_arg(["a:1", "b:2"]), "1=a:1,2=b:2")

    def test_fixed_addresses_follow_the_documented_layout(self):
        a = rvfixture.fixed_addresses(2, 7480)
        self.assertEqual(a[1], ("127.0.0.1:7492", "tcp://127.0.0.1:7491",
                                "http://127.0.0.1:7490"))

    def test_http_get_without_a_server(self):
        port = rvfixture.free_ports(1)[0]
        self.assertEqual(rvfixture.http_get("http://127.0.0.1:%d/readyz"
                                            % port), (0, None))

    def test_start_refuses_when_some_nodes_run(self):
        d = tempfile.mkdtemp(prefix="rv-fixture-")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "n1.pid"), "w") as f:
            f.write("%d\n" % os.getpid())
        self.assertEqual(rvfixture.main(["start", d, "--bin", "/bin/false"]),
                         1)


if __name__ == "__main__":
    unittest.main()
