/* Compare: #/compare?runs=ID,ID,...&metric=KEY&x=step|time&log=1&smooth=0.6
 * One metric overlaid across the selected runs (up to 100), and their
 * params side by side with the rows that differ highlighted. Each run's
 * series is the server's M4 points over the same step range, put on one
 * x grid for uPlot (RV.compare.grid). */
"use strict";

RV.compare = {};
RV.compare.MAX_RUNS = 100;
RV.compare.PER_QUERY = 10; /* Runs a metrics query asks for. */

/* The series [{x, y}] on one x grid for uPlot (which needs one x array):
 * cols pixel columns over the common x range, two slots each (at the
 * column's start and middle) holding each series' minimum and maximum in
 * the column, in step order, so a spike stays a spike. A series with no
 * point in a column has a gap there (spanned). The grid is cols * 2 long
 * whatever the number of runs: 100 runs stay 100 * 2 * cols values. */
RV.compare.grid = function (list, cols) {
  var xmin = Infinity, xmax = -Infinity;
  list.forEach(function (s) {
    if (s.x.length) {
      xmin = Math.min(xmin, s.x[0]);
      xmax = Math.max(xmax, s.x[s.x.length - 1]);
    }
  });
  if (xmin === Infinity) return [[]].concat(list.map(function () { return []; }));
  var span = xmax - xmin || 1, w = span / cols, xs = new Array(2 * cols);
  for (var c = 0; c < cols; c++) {
    xs[2 * c] = xmin + c * w;
    xs[2 * c + 1] = xmin + (c + 0.5) * w;
  }
  var data = [xs];
  list.forEach(function (s) {
    var ys = new Array(2 * cols).fill(null);
    var i = 0, n = s.x.length;
    while (i < n) {
      var col = Math.min(cols - 1, Math.floor((s.x[i] - xmin) / w));
      var lo = -1, hi = -1;
      for (; i < n && Math.min(cols - 1, Math.floor((s.x[i] - xmin) / w)) === col; i++) {
        var y = s.y[i];
        if (y === null) continue;
        if (lo < 0 || y < s.y[lo]) lo = i;
        if (hi < 0 || y > s.y[hi]) hi = i;
      }
      if (lo < 0) continue;
      var a = Math.min(lo, hi), b = Math.max(lo, hi);
      ys[2 * col] = s.y[a];
      ys[2 * col + 1] = a === b ? null : s.y[b];
    }
    data.push(ys);
  });
  return data;
};

RV.pages.compare = function (main, r) {
  var el = RV.el, p = r.params;
  var ids = (p.get("runs") || "").split(",").filter(Boolean).slice(0, RV.compare.MAX_RUNS);
  var o = RV.charts.viewOf(p);
  var state = { alive: true, u: null, plots: [] };
  function nav(changes) {
    var q = new URLSearchParams(p.toString());
    Object.keys(changes).forEach(function (k) {
      if (changes[k] === null || changes[k] === "") q.delete(k);
      else q.set(k, changes[k]);
    });
    RV.go(RV.href("compare", "", q), true);
  }
  main.appendChild(el("h2", null, "Compare"));
  if (ids.length < 1) {
    main.appendChild(el("p", null, "Select runs in the ", el("a", { href: "#/runs" }, "runs table"), " and press Compare selected."));
    return null;
  }
  var status = el("p", { class: "muted", id: "compare-info" }, "Loading " + ids.length + " runs\u2026");
  main.appendChild(status);
  var width = Math.max(400, Math.min(main.clientWidth - 40, 1200));
  var cols = Math.round(width / 2);
  /* The series of the summary key k ("key" or "key[context]") of the runs
   * ids, in one request (POST /api/v2/metrics/query): a Map run id ->
   * points (runs lacking it left out). The store's M4 with one bucket a
   * grid column: its min and max are what the grid keeps. */
  function histories(runIds, k) {
    var m = /^(.*)\[(.*)\]$/.exec(k), parts = [];
    /* In slices, answered in parallel by the node's workers. */
    for (var i = 0; i < runIds.length; i += RV.compare.PER_QUERY)
      parts.push(RV.api("/api/v2/metrics/query", null, { method: "POST", body: {
        runs: runIds.slice(i, i + RV.compare.PER_QUERY), key: m ? m[1] : k, context: m ? m[2] : undefined,
        downsample: 4 * cols } }));
    return Promise.all(parts).then(function (answers) {
      var out = new Map();
      answers.forEach(function (a) {
        a.series.forEach(function (s) { if (s.points) out.set(s.run_id, s.points); });
      });
      return out;
    });
  }
  /* With the metric in the URL the series are asked for at once, beside
   * the runs (each chart column is regridded, so no common range is
   * needed). */
  var early = p.get("metric") ? histories(ids, p.get("metric")) : null;
  if (early) early.catch(function () {});
  (async function () {
    var t0 = performance.now();
    var runs = await Promise.all(ids.map(function (id) {
      return RV.api("/api/v2/runs/" + encodeURIComponent(id)).then(function (g) { return g.run; }, function (e) { return { run_id: id, error: e }; });
    }));
    if (!state.alive) return;
    var ok = runs.filter(function (x) { return !x.error; });
    runs.filter(function (x) { return x.error; }).forEach(function (x) {
      main.appendChild(el("p", { class: "error" }, "Run " + x.run_id + ": " + x.error.message));
    });
    var keys = new Set();
    ok.forEach(function (g) { Object.keys(g.summary || {}).forEach(function (k) { keys.add(k); }); });
    var keyList = Array.from(keys).sort();
    var metric = p.get("metric") && keys.has(p.get("metric")) ? p.get("metric") : keyList[0];
    var mSel = el("select", { id: "metric", onchange: function () { nav({ metric: mSel.value }); } },
      keyList.map(function (k) { return el("option", { value: k, selected: k === metric }, k); }));
    var plotBox = el("div", { class: "plot", id: "compare-plot" });
    main.appendChild(el("section", null, el("div", { class: "bar" },
      el("label", { for: "metric" }, "metric"), mSel, RV.charts.controls(o, nav)), plotBox));

    /* Params side by side. */
    var pkeys = new Set();
    ok.forEach(function (g) { Object.keys(g.params || {}).forEach(function (k) { pkeys.add(k); }); });
    var ptable = el("table", { id: "compare-params", "aria-label": "Params side by side" },
      el("thead", null, el("tr", null, el("th", { scope: "col" }, "param"), ok.map(function (g) {
        return el("th", { scope: "col" }, el("a", { href: RV.href("run", g.run_id) }, g.name || g.run_id));
      }))),
      el("tbody", null, Array.from(pkeys).sort().map(function (k) {
        var vals = ok.map(function (g) { return g.params && k in g.params ? g.params[k] : ""; });
        var differs = vals.some(function (v) { return v !== vals[0]; });
        return el("tr", { class: differs ? "diff" : "" }, el("th", { scope: "row" }, k, differs ? el("span", { class: "muted" }, " (differs)") : null),
          vals.map(function (v) { return el("td", null, v); }));
      })));
    main.appendChild(el("section", null, el("h3", null, "Params"), ptable));
    if (!metric) {
      status.textContent = "These runs have no metrics.";
      return;
    }

    /* The metric of every run that has it. */
    var with_ = ok.filter(function (g) { return g.summary && g.summary[metric]; });
    var byId = await (early && metric === p.get("metric") ? early
      : histories(with_.map(function (g) { return g.run_id; }), metric));
    var hs = with_.map(function (g) { return { points: byId.get(g.run_id) || [] }; });
    if (!state.alive) return;
    var list = hs.map(function (h) { return RV.charts.series(h.points, { byTime: o.byTime, log: o.log, smooth: o.smooth, width: width }); });
    var data = RV.compare.grid(list, cols);
    var nPoints = 0;
    hs.forEach(function (h) { nPoints += h.points.length; });
    var opts = RV.charts.opts(width, 380, { byTime: o.byTime, log: o.log,
      series: with_.map(function (g, i) { return { label: g.name || g.run_id, stroke: RV.charts.color(i), width: 1.25, spanGaps: true }; }) });
    state.u = new uPlot(opts, data, plotBox);
    state.plots.push(state.u);
    plotBox.setAttribute("data-series", String(with_.length));
    plotBox.setAttribute("data-points", String(nPoints));
    status.textContent = with_.length + " runs \u00b7 " + nPoints + " points \u00b7 " + (performance.now() - t0).toFixed(0) + " ms";
    document.body.setAttribute("data-compare-ready", String(Date.now()));
    try { performance.mark("compare-ready"); } catch (e) { /* Old browsers. */ }
  })().catch(function (e) {
    if (state.alive) main.appendChild(RV.errorBox(e));
  });
  return {
    plots: state.plots, /* The live chart (a uPlot instance). */
    leave: function () { state.alive = false; if (state.u) state.u.destroy(); },
  };
};
