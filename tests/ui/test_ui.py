"""The web UI in a real browser: Debian's chromium, headless, driven over
the DevTools protocol (tests/ui/cdp.py), against a real 3-node cluster
(and a 1-node cluster with auth on) loaded with generated runs.

Checked: the assets' headers (CSP, ETag/304, gzip); the runs table loads,
filters, shows a bad filter's error at its position, pages forward and back
stably while runs are added, keeps the view in the URL; a run page draws a
chart per metric whose canvas is not blank and whose min/max band holds a
planted spike, a drag re-fetches the zoomed step range at full
resolution, the live log follows a RUNNING run; compare draws N series and
marks the params that differ; the cluster page lists the nodes; with auth
on a token-less browser sees the token box and no data, a team's reader
sees its runs and never another team's; every control has a name and the
keyboard reaches the table's controls. No page logs a script error.

Screenshots of each page go to RV_UI_SCREENSHOTS (a directory; docs/ui/
in the repository is made this way) or to the test's temporary dir.

    RUNVAULT_BIN=build/node/runvault python3 -m unittest tests/ui/test_ui.py
"""

import gzip
import http.client
import os
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from rvfixture import Cluster, http_json  # noqa: E402
import cdp  # noqa: E402

N_RUNS = 70
STEPS = 3000
SPIKE_STEP, SPIKE = 1234, 1000.0


def check(status, doc, want=(200, 201)):
    if status not in want:
        raise AssertionError("HTTP %s: %s" % (status, doc))
    return doc


def make_run(ep, i, headers=None, team=None, project="vision",
             status=None):
    body = {"project": project, "experiment": "e%d" % (i % 2),
            "name": "run-%03d" % i,
            "params": {"lr": ["0.1", "0.01", "0.001"][i % 3],
                       "batch": str(32 << (i % 2)), "seed": str(i)},
            "tags": {"arch": ["resnet", "vit"][i % 2]}}
    if team:
        body["team"] = team
    _, doc, _ = http_json(ep, "POST", "/api/v2/runs", body, headers)
    run_id = doc["run_id"]
    if status:
        check(*http_json(ep, "POST", "/api/v2/runs/%s/status" % run_id,
                         {"status": status}, headers)[:2])
    return run_id


def log_metric(ep, run_id, key, values, headers=None, step0=0):
    for a in range(0, len(values), 1000):
        pts = [{"key": key, "value": v, "step": step0 + a + j,
                "timestamp": 1700000000000 + (step0 + a + j) * 1000}
               for j, v in enumerate(values[a:a + 1000])]
        check(*http_json(ep, "POST", "/api/v2/runs/%s/log-batch" % run_id,
                         {"metrics": pts}, headers)[:2])


def raw_get(ep, path, headers=None):
    host, port = ep.split("://", 1)[1].rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


class UiTest(unittest.TestCase):
    """One cluster and one browser for every test (loading is the dear
    part); each test opens its own page."""

    @classmethod
    def setUpClass(cls):
        cls.shots = os.environ.get("RV_UI_SCREENSHOTS") or tempfile.mkdtemp(
            prefix="rv-ui-shots-")
        os.makedirs(cls.shots, exist_ok=True)
        cls.c = Cluster(n=3)
        cls.c.start()
        cls.ep = cls.c.http_endpoints[cls.c.leader()]
        cls.runs = []
        for i in range(N_RUNS):
            st = None if i % 5 == 0 else ("FAILED" if i % 7 == 0
                                          else "FINISHED")
            cls.runs.append(make_run(cls.ep, i, status=st))
        # Run 0: two metrics over STEPS steps, one spike on loss.
        loss = [1.0 / (1 + s / 100.0) for s in range(STEPS)]
        loss[SPIKE_STEP] = SPIKE
        log_metric(cls.ep, cls.runs[0], "loss", loss)
        log_metric(cls.ep, cls.runs[0], "acc",
                   [s / float(STEPS) for s in range(STEPS)])
        for k in range(1, 6):  # Runs to compare.
            log_metric(cls.ep, cls.runs[k], "loss",
                       [k / (1 + s / 50.0) for s in range(500)])
        check(*http_json(cls.ep, "POST", "/api/v2/runs/%s/logs" %
                         cls.runs[0], {"lines": [
                             {"text": "epoch %d" % i} for i in range(20)]})
              [:2])
        # The UI reads from any node: the page is served by a follower.
        cls.ui = cls.c.http_endpoints[(cls.c.leader() + 1) % 3]
        cls.b = cdp.Browser()
        cls.b.start()

    @classmethod
    def tearDownClass(cls):
        cls.b.close()
        cls.c.stop()

    def open(self, frag, ready):
        p = self.b.page()
        p.goto(self.ui + "/" + frag)
        self.pages.append(p)
        try:
            p.wait(ready, timeout=30)
        except cdp.CdpError as e:
            raise AssertionError("%s; the page shows: %r; errors: %r" % (
                e, p.eval("document.body.innerText")[:2000],
                p.console_errors()))
        return p

    def setUp(self):
        self.pages = []

    def tearDown(self):
        for p in self.pages:
            self.assertEqual(p.console_errors(), [], "script errors")
            self.b.call("Target.closeTarget", {"targetId": p.target})

    def count(self, filt=None):
        """Runs matching filt, as the API counts them (paged to the end)."""
        n, tok = 0, None
        while True:
            q = "/api/v2/experiments?per_page=1000"
            if filt:
                q += "&filter=" + urllib.parse.quote(filt)
            if tok:
                q += "&page_token=" + urllib.parse.quote(tok)
            _, doc, _ = http_json(self.ep, "GET", q)
            n += len(doc["runs"])
            tok = doc.get("next_page_token")
            if not tok:
                return n

    def rows(self, p):
        return p.eval("Array.from(document.querySelectorAll("
                      "'#runs-table tbody tr')).map(r => r.dataset.run)")

    # ---- The assets ----------------------------------------------------

    def test_assets_headers(self):
        st, h, body = raw_get(self.ui, "/")
        self.assertEqual(st, 200)
        self.assertIn("script-src 'self'", h["Content-Security-Policy"])
        self.assertNotIn("unsafe-inline", h["Content-Security-Policy"])
        self.assertNotIn("Access-Control-Allow-Origin", h)
        self.assertIn(b"/ui/app.js", body)
        st, h2, _ = raw_get(self.ui, "/", {"If-None-Match": h["ETag"]})
        self.assertEqual(st, 304)
        st, h3, z = raw_get(self.ui, "/ui/app.js",
                            {"Accept-Encoding": "br, gzip"})
        self.assertEqual(h3.get("Content-Encoding"), "gzip")
        plain = raw_get(self.ui, "/ui/app.js",
                        {"Accept-Encoding": "gzip;q=0"})
        self.assertNotIn("Content-Encoding", plain[1])
        self.assertEqual(gzip.decompress(z), plain[2])
        self.assertIn(raw_get(self.ui, "/ui/../app.js")[0], (400, 404))
        self.assertEqual(raw_get(self.ui, "/ui/")[0], 404)

    # ---- The runs table ------------------------------------------------

    def test_runs_table_filter_and_error(self):
        total = self.count()
        p = self.open("#/runs?cols=params.lr", "document.body.dataset."
                      "runsReady")
        self.assertEqual(len(self.rows(p)), 50)
        counts = p.wait("document.getElementById('counts').innerText")
        self.assertIn("total %d" % total, counts)
        p.screenshot(os.path.join(self.shots, "runs.png"))
        # A filter through the box: every row has lr 0.01.
        p.eval("document.getElementById('filter').value = "
               "\"params.lr = '0.01'\"")
        before = p.eval("document.body.dataset.runsReady")
        p.eval("document.querySelector('form.filter button').click()")
        p.wait("document.body.dataset.runsReady !== '%s'" % before)
        self.assertIn("filter=params.lr", p.eval("location.hash"))
        lrs = p.eval("Array.from(document.querySelectorAll('#runs-table "
                     "tbody tr')).map(r => r.lastChild.textContent)")
        self.assertEqual(len(lrs), self.count("params.lr = '0.01'"))
        self.assertGreaterEqual(len(lrs), len([i for i in range(N_RUNS)
                                               if i % 3 == 1]))
        self.assertEqual(set(lrs), {"0.01"})
        # A bad filter: the API's error, a caret at its position.
        p.goto(self.ui + "/#/runs?filter=" +
               "params.lr%20~%20'x'")
        err = p.wait("document.getElementById('filter-caret') && "
                     "document.getElementById('filter-error').innerText")
        self.assertIn("position", err)
        caret = p.eval("document.getElementById('filter-caret')"
                       ".textContent.split('\\n')[1]")
        self.assertEqual(caret.index("^"), len("params.lr "))
        self.assertEqual(self.rows(p), [])
        p.screenshot(os.path.join(self.shots, "runs-filter-error.png"))

    def test_paging_stable_while_adding(self):
        p = self.open("#/runs", "document.body.dataset.runsReady")
        first = self.rows(p)

        def click(which):
            before = p.eval("document.body.dataset.runsReady")
            p.eval("document.getElementById('%s').click()" % which)
            p.wait("document.body.dataset.runsReady !== '%s'" % before)

        total = self.count()
        self.assertLess(total, 100)
        click("next")
        second = self.rows(p)
        self.assertEqual(len(set(first) | set(second)), total)
        # Runs added meanwhile come first in the default order: the pages
        # already seen keep their runs.
        added = [make_run(self.ep, 1000 + i) for i in range(5)]
        click("prev")
        again = self.rows(p)
        self.assertEqual(set(again[:5]), set(added))
        self.assertEqual(again[5:], first[:45])
        click("next")
        self.assertEqual(self.rows(p), first[45:] + second)
        click("prev")
        self.assertEqual(self.rows(p), again)
        self.assertTrue(p.eval("document.getElementById('prev').disabled"))

    def test_sort_by_metric_column(self):
        p = self.open("#/runs?cols=metrics.loss&order=metrics.loss%20DESC",
                      "document.body.dataset.runsReady")
        ids = self.rows(p)
        # Runs with loss first, highest latest value first (run k logs
        # k/(1+499/50) last; run 0 ends at 1/(1+2999/100)).
        self.assertEqual(ids[:5], [self.runs[k] for k in (5, 4, 3, 2, 1)])
        self.assertEqual(ids[5], self.runs[0])
        self.assertEqual(p.eval("document.querySelector('th[aria-sort="
                                "\"descending\"]').innerText"),
                         "metrics.loss \u25bc")

    # ---- A run's page --------------------------------------------------

    def test_run_page_chart_spike_and_zoom(self):
        p = self.open("#/run/" + self.runs[0], "document.body.dataset."
                      "chartsReady")
        self.assertEqual(p.eval("document.querySelectorAll('.plot "
                                "canvas').length"), 2)
        # The canvas is drawn: pixels that are not background.
        inked = p.eval("""(() => {
            const c = document.querySelector('.plot[data-metric="loss"] canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n; })()""")
        self.assertGreater(inked, 1000)
        # The band (series 3: the column maxima) holds the spike, and so
        # does the y scale; the server sent fewer points than were logged.
        top = p.eval("""(() => {
            const u = RV.current.plots.find(u => u.root.parentNode.dataset.metric === 'loss');
            return [Math.max(...u.data[3].filter(v => v !== null)), u.scales.y.max,
                    u.data[0].length]; })()""")
        self.assertEqual(top[0], SPIKE)
        self.assertGreaterEqual(top[1], SPIKE)
        self.assertLess(top[2], STEPS)
        p.eval("document.getElementById('charts').scrollIntoView()")
        p.screenshot(os.path.join(self.shots, "run.png"))
        # Drag across the middle of the chart: the visible range comes
        # back at full resolution (every step of it).
        box = p.eval("""(() => {
            const o = document.querySelector('.plot[data-metric="loss"] .u-over');
            o.scrollIntoView({block: 'center'});
            const r = o.getBoundingClientRect();
            return [r.left, r.top, r.width, r.height]; })()""")
        x0, y0 = box[0] + box[2] * 0.40, box[1] + box[3] / 2
        p.drag(x0, y0, box[0] + box[2] * 0.45, y0)
        zoom = p.wait("document.querySelector('.plot[data-metric=\"loss\"]')"
                      ".dataset.zoom", what="the zoomed fetch")
        lo, hi = map(int, zoom.split(":"))
        self.assertLess(hi - lo, STEPS / 5)
        n = int(p.wait("document.querySelector('.plot[data-metric=\"loss\"]"
                       "').dataset.fetches === '2' && document.querySelector("
                       "'.plot[data-metric=\"loss\"]').dataset.points"))
        self.assertEqual(n, min(hi, STEPS - 1) - max(lo, 0) + 1)

    def test_run_page_log_time_smoothing(self):
        p = self.open("#/run/%s?x=time&log=1&smooth=0.9" % self.runs[0],
                      "document.body.dataset.chartsReady")
        v = p.eval("""(() => {
            const u = RV.current.plots.find(u => u.root.parentNode.dataset.metric === 'loss');
            const line = u.data[1].filter(v => v !== null);
            return [u.scales.y.distr, u.scales.x.time, Math.max(...line),
                    Math.max(...u.data[3].filter(v => v !== null)),
                    document.getElementById('logscale').checked,
                    document.getElementById('xaxis').value]; })()""")
        self.assertEqual(v[0], 3)            # log scale
        self.assertTrue(v[1])                # x is time
        self.assertLess(v[2], SPIKE / 5)     # EMA flattens the spike ...
        self.assertEqual(v[3], SPIKE)        # ... the band still holds it
        self.assertEqual(v[4:], [True, "time"])

    def test_live_log_follows(self):
        run = make_run(self.ep, 2000)  # RUNNING
        # The page is served by a follower: wait until it has the run.
        end = time.monotonic() + 10
        while http_json(self.ui, "GET", "/api/v2/runs/" + run)[0] != 200:
            self.assertLess(time.monotonic(), end, "the follower lags")
            time.sleep(0.05)
        p = self.open("#/run/" + run, "!!document.getElementById('follow')")
        self.assertTrue(p.eval("document.getElementById('follow').checked"))
        for i in range(3):
            check(*http_json(self.ep, "POST", "/api/v2/runs/%s/logs" % run,
                             {"lines": [{"text": "live line %d" % i,
                                         "stream": "stderr" if i == 2
                                         else "stdout"}]})[:2])
            p.wait("document.getElementById('logs').innerText.includes("
                   "'live line %d')" % i, timeout=10)
        self.assertEqual(p.eval("document.querySelectorAll('#logs .stderr')"
                                ".length"), 1)

    def test_chart_helpers(self):
        """The page's own data helpers, run in the page."""
        p = self.open("#/cluster", "document.body.dataset.clusterReady")
        # Band: per pixel column min and max; nulls skipped.
        self.assertEqual(p.eval("RV.charts.band([0, 1, 2, 3], [1, 5, null, "
                                "2], 2)"), [[1, 1, 2, 2], [5, 5, 2, 2]])
        self.assertEqual(p.eval("RV.charts.ema([1, null, 3], 0.5)"),
                         [1, None, 2])
        # The compare grid keeps each column's min and max in step order.
        g = p.eval("RV.compare.grid([{x: [0, 1, 2, 3], y: [1, 9, 0, 4]}, "
                   "{x: [0, 3], y: [7, 8]}], 2)")
        self.assertEqual(g[0], [0, 0.75, 1.5, 2.25])
        self.assertEqual(g[1], [1, 9, 0, 4])
        self.assertEqual(g[2], [7, None, 8, None])
        self.assertEqual(p.eval("RV.runs.errorPos('at position 17: x')"), 17)
        self.assertEqual(p.eval("RV.cluster.disk('runvault_disk_bytes{part="
                                "\"vlog\"} 42\\n')"), {"vlog": 42})

    # ---- Compare and cluster -------------------------------------------

    def test_compare_selected(self):
        p = self.open("#/runs?filter=" + "attributes.run_name%20LIKE%20"
                      "'run-00%25'", "document.body.dataset.runsReady")
        for k in range(1, 6):
            p.eval("document.querySelector('tr[data-run=\"%s\"] input')"
                   ".click()" % self.runs[k])
        self.assertFalse(p.eval("document.getElementById('compare')"
                                ".disabled"))
        # The selection is in the URL: a copy of it shows the same view.
        sel = p.eval("new URLSearchParams(location.hash.split('?')[1])"
                     ".get('sel')")
        self.assertEqual(sorted(sel.split(",")), sorted(self.runs[1:6]))
        p.eval("document.getElementById('compare').click()")
        p.wait("document.body.dataset.compareReady")
        self.assertEqual(p.eval("document.getElementById('compare-plot')"
                                ".dataset.series"), "5")
        self.assertEqual(len(p.eval("RV.current.plots[0].series")), 6)
        diff = p.eval("Array.from(document.querySelectorAll("
                      "'#compare-params tr.diff th')).map(t => "
                      "t.firstChild.textContent)")
        self.assertEqual(sorted(diff), ["batch", "lr", "seed"])
        p.screenshot(os.path.join(self.shots, "compare.png"))

    def test_cluster_page(self):
        p = self.open("#/cluster", "document.body.dataset.clusterReady")
        ids = p.eval("Array.from(document.querySelectorAll("
                     "'#cluster-table tbody tr')).map(r => r.dataset.node)")
        self.assertEqual(sorted(ids), ["1", "2", "3"])
        self.assertIn("leader", p.eval("document.getElementById("
                                       "'cluster-table').innerText"))
        p.screenshot(os.path.join(self.shots, "cluster.png"))

    # ---- Accessibility basics ------------------------------------------

    def test_controls_named_and_keyboard(self):
        p = self.open("#/runs", "document.body.dataset.runsReady")
        unnamed = p.eval("""Array.from(document.querySelectorAll(
            'input, select, button')).filter(e => !e.hidden &&
            !(e.labels && e.labels.length) && !e.getAttribute('aria-label') &&
            !e.textContent.trim()).map(e => e.outerHTML)""")
        self.assertEqual(unnamed, [])
        seen = []
        p.eval("document.activeElement.blur()")
        for _ in range(12):
            p.key("Tab")
            seen.append(p.eval("document.activeElement.id || "
                               "document.activeElement.tagName"))
        for want in ("filter", "status", "next"):
            self.assertIn(want, seen)


class UiAuthTest(unittest.TestCase):
    def test_token_box_and_isolation(self):
        shots = os.environ.get("RV_UI_SCREENSHOTS") or tempfile.mkdtemp(
            prefix="rv-ui-shots-")
        os.makedirs(shots, exist_ok=True)
        with Cluster(n=1, extra_args=["--auth", "on"]) as c:
            ep = c.http_endpoints[0]
            admin = {"Authorization": "Bearer " + c.admin_token()}
            toks = {}
            for team in ("red", "blue"):
                check(*http_json(ep, "POST", "/api/v2/teams", {"team": team},
                                 admin)[:2])
                _, t, _ = http_json(ep, "POST", "/api/v2/tokens",
                                    {"team": team, "role": "reader",
                                     "name": "ui"}, admin)
                toks[team] = t["token"]
            red = [make_run(ep, i, admin, team="red") for i in range(3)]
            blue = [make_run(ep, 10 + i, admin, team="blue")
                    for i in range(2)]
            with cdp.Browser() as b:
                p = b.page()
                p.goto(ep + "/#/runs")
                p.wait("!document.getElementById('token-form').hidden")
                time.sleep(0.5)
                self.assertEqual(p.eval("document.querySelectorAll("
                                        "'#runs-table tr').length"), 0)
                self.assertEqual(p.eval("document.getElementById('main')"
                                        ".innerText.trim()"), "")
                p.screenshot(os.path.join(shots, "token.png"))
                p.eval("document.getElementById('token-input').focus()")
                p.type_text(toks["red"])
                p.key("Enter", "Enter", "\r")
                p.wait("document.body.dataset.runsReady")
                got = p.eval("Array.from(document.querySelectorAll("
                             "'#runs-table tbody tr')).map(r => "
                             "r.dataset.run)")
                self.assertEqual(sorted(got), sorted(red))
                self.assertIn("team red", p.eval(
                    "document.getElementById('who').innerText"))
                # The token is not in the URL or the page's storage keys
                # other than its own.
                self.assertNotIn(toks["red"], p.eval("location.href"))
                # Another team's run by its id: not found, nothing shown.
                p.goto(ep + "/#/run/" + blue[0])
                err = p.wait("document.querySelector('#main .error') && "
                             "document.querySelector('#main .error')"
                             ".innerText")
                self.assertIn("RESOURCE_DOES_NOT_EXIST", err)
                self.assertNotIn("run-010", p.eval(
                    "document.getElementById('main').innerText"))
                # A filter naming the other team's params finds nothing.
                p.goto(ep + "/#/runs?filter=params.seed%20%3D%20'10'")
                p.wait("document.body.dataset.runsReady")
                self.assertEqual(p.eval("document.querySelectorAll("
                                        "'#runs-table tbody tr').length"), 0)
                self.assertEqual(p.console_errors(), [])


if __name__ == "__main__":
    unittest.main()
