/* A run's page: #/run/ID?x=step|time&log=1&smooth=0.6
 * Attributes, params, tags, the summary; a chart per metric key (the
 * server's M4 points, a min/max band; drag to zoom: the visible step range
 * is fetched again at full resolution, double-click to zoom out); the log
 * tail, following while the run is RUNNING; the artifacts. */
"use strict";

RV.run = {};
RV.run.MAX_CHARTS = 48;
RV.run.LOG_POLL_MS = 1000;
RV.run.LOG_KEEP = 5000; /* Lines kept in the page. */

RV.run.kvTable = function (obj, label) {
  var keys = Object.keys(obj || {}).sort();
  if (!keys.length) return RV.el("p", { class: "muted" }, "No " + label + ".");
  return RV.el("table", { class: "kv", "aria-label": label }, RV.el("tbody", null, keys.map(function (k) {
    return RV.el("tr", null, RV.el("td", null, k), RV.el("td", null, obj[k]));
  })));
};

/* Download an artifact with the token in a header (a link cannot carry it). */
RV.run.download = async function (runId, path) {
  var resp = await RV.api("/api/v2/runs/" + encodeURIComponent(runId) + "/artifacts/" +
    path.split("/").map(encodeURIComponent).join("/"), null, { raw: true });
  var blob = await resp.blob();
  var url = URL.createObjectURL(blob);
  var a = RV.el("a", { href: url, download: path.split("/").pop() });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
};

/* One metric chart in box: fetch (all of it, or [lo, hi] of steps),
 * draw, and re-fetch on zoom. */
RV.run.chart = function (runId, s, box, o, state) {
  var el = RV.el;
  var label = s.context ? s.key + "[" + s.context + "]" : s.key;
  var title = el("h3", null, label);
  var note = el("span", { class: "muted" });
  var reset = el("button", { type: "button", hidden: true, "aria-label": "Zoom out " + label }, "Zoom out");
  var plotBox = el("div", { class: "plot", "data-metric": label });
  box.appendChild(el("div", { class: "chart" }, title, el("div", { class: "bar" }, note, reset), plotBox));
  var u = null, width = Math.max(300, box.clientWidth ? Math.min(box.clientWidth, 640) - 16 : 560);

  async function fetchDraw(lo, hi) {
    var q = { key: s.key, context: s.context || undefined, downsample: RV.charts.downsampleFor(width) };
    if (lo !== undefined) {
      q.min_step = Math.floor(lo);
      q.max_step = Math.ceil(hi);
    }
    var t0 = performance.now();
    var h;
    try {
      h = await RV.api("/api/v2/runs/" + encodeURIComponent(runId) + "/metrics", q);
    } catch (e) {
      RV.clear(plotBox).appendChild(RV.errorBox(e));
      return;
    }
    if (!state.alive) return;
    var sr = RV.charts.series(h.points, { byTime: o.byTime, log: o.log, smooth: o.smooth, width: width });
    var data = [sr.x, sr.y, sr.lo, sr.hi];
    note.textContent = h.points.length + " points" + (lo !== undefined ? " in steps " + q.min_step + "\u2013" + q.max_step : "") +
      " \u00b7 " + (performance.now() - t0).toFixed(0) + " ms";
    plotBox.setAttribute("data-points", String(h.points.length));
    plotBox.setAttribute("data-fetches", String(+(plotBox.getAttribute("data-fetches") || 0) + 1));
    if (lo !== undefined) {
      plotBox.setAttribute("data-zoom", q.min_step + ":" + q.max_step);
    } else {
      plotBox.removeAttribute("data-zoom");
    }
    var c = RV.charts.color(0);
    var opts = RV.charts.opts(width, 220, {
      byTime: o.byTime, log: o.log,
      series: [
        { label: label, stroke: c, width: 1.5, spanGaps: true },
        { label: "min", stroke: "transparent", points: { show: false } },
        { label: "max", stroke: "transparent", points: { show: false } },
      ],
      bands: [{ series: [3, 2], fill: "rgba(36,87,197,0.15)" }],
      zoom: o.byTime ? null : function (a, b) {
        reset.hidden = false;
        fetchDraw(a, b);
      },
    });
    if (u) {
      u.destroy();
      state.plots.splice(state.plots.indexOf(u), 1);
    }
    RV.clear(plotBox);
    u = new uPlot(opts, data, plotBox);
    state.plots.push(u);
    state.drawn++;
    state.onDrawn();
  }
  reset.addEventListener("click", function () {
    reset.hidden = true;
    fetchDraw();
  });
  return fetchDraw;
};

RV.pages.run = function (main, r) {
  var el = RV.el, p = r.params, runId = r.arg;
  var o = RV.charts.viewOf(p);
  var state = { alive: true, plots: [], timers: [], drawn: 0, wanted: 0, onDrawn: function () {} };
  function nav(changes) {
    var q = new URLSearchParams(p.toString());
    Object.keys(changes).forEach(function (k) {
      if (changes[k] === null || changes[k] === "" || changes[k] === false) q.delete(k);
      else q.set(k, changes[k]);
    });
    RV.go(RV.href("run", runId, q), true);
  }
  var head = el("div");
  main.appendChild(head);
  (async function () {
    var t0 = performance.now(), g;
    try {
      g = (await RV.api("/api/v2/runs/" + encodeURIComponent(runId))).run;
    } catch (e) {
      head.appendChild(el("h2", null, "Run " + runId));
      head.appendChild(RV.errorBox(e));
      return;
    }
    if (!state.alive) return;
    head.appendChild(el("h2", null, g.name || g.run_id, " ", el("span", { class: "muted" }, g.status)));
    var attrs = { run_id: g.run_id, team: g.team, project: g.project, experiment: g.experiment, user: g.user,
      status: g.status, created: RV.fmtTime(g.created_at), ended: RV.fmtTime(g.ended_at), points: String(g.n_points),
      log_lines: String(g.n_log_lines), lifecycle: g.lifecycle };
    var sumKeys = Object.keys(g.summary || {}).sort();
    var sumTable = sumKeys.length ? el("table", { "aria-label": "Metric summary" },
      el("thead", null, el("tr", null, ["metric", "last", "min", "max", "count", "last step"].map(function (h, i) {
        return el("th", { scope: "col", class: i ? "num" : "" }, h);
      }))),
      el("tbody", null, sumKeys.map(function (k) {
        var s = g.summary[k];
        return el("tr", null, el("td", null, k), [s.last, s.min, s.max, s.count, s.last_step].map(function (v) {
          return el("td", { class: "num" }, RV.fmtNum(v));
        }));
      }))) : el("p", { class: "muted" }, "No metrics.");
    RV.append(head, [
      el("section", null, el("h3", null, "Attributes"), RV.run.kvTable(attrs, "attributes")),
      el("section", null, el("h3", null, "Params"), RV.run.kvTable(g.params, "params")),
      el("section", null, el("h3", null, "Tags"), RV.run.kvTable(g.tags, "tags")),
      el("section", null, el("h3", null, "Summary"), sumTable),
    ]);

    /* Chart controls. */
    var charts = el("div", { class: "grid", id: "charts" });
    head.appendChild(el("section", null, el("h3", null, "Charts"),
      el("div", { class: "bar" }, RV.charts.controls(o, nav)), charts));
    var series = sumKeys.slice(0, RV.run.MAX_CHARTS).map(function (k) { return g.summary[k]; });
    if (sumKeys.length > RV.run.MAX_CHARTS)
      charts.appendChild(el("p", { class: "muted" }, "The first " + RV.run.MAX_CHARTS + " of " + sumKeys.length + " metrics."));
    state.wanted = series.length;
    state.onDrawn = function () {
      if (state.drawn === state.wanted) {
        document.body.setAttribute("data-charts-ready", String(Date.now()));
        try { performance.mark("run-charts-ready"); } catch (e) { /* Old browsers. */ }
      }
    };
    if (!series.length) document.body.setAttribute("data-charts-ready", String(Date.now()));
    series.forEach(function (s) {
      RV.run.chart(runId, s, charts, o, state)();
    });

    /* Log tail. */
    var logs = el("div", { class: "logs", id: "logs", role: "log", "aria-label": "Log lines", tabindex: "0" });
    var follow = el("input", { id: "follow", type: "checkbox", checked: g.status === "RUNNING" });
    head.appendChild(el("section", null, el("h3", null, "Logs"),
      el("div", { class: "bar" }, el("label", { for: "follow" }, follow, " follow"), el("span", { class: "muted", id: "log-count" })),
      logs));
    var nextLine = 0, status = g.status, nLines = 0;
    async function pollLogs() {
      if (!state.alive) return;
      try {
        var lg = await RV.api("/api/v2/runs/" + encodeURIComponent(runId) + "/logs", { from_line: nextLine, max_lines: 1000 });
        if (!state.alive) return;
        var atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
        lg.lines.forEach(function (ln) {
          logs.appendChild(el("div", { class: ln.stream === "stderr" ? "stderr" : "" }, ln.text));
          nLines++;
        });
        while (logs.childNodes.length > RV.run.LOG_KEEP) logs.removeChild(logs.firstChild);
        if (lg.next_line !== undefined) nextLine = lg.next_line;
        document.getElementById("log-count").textContent = nLines + " lines";
        if (atEnd || follow.checked) logs.scrollTop = logs.scrollHeight;
        if (lg.lines.length === 1000) return pollLogs(); /* More waiting. */
        if (status === "RUNNING") {
          var cur = await RV.api("/api/v2/runs/" + encodeURIComponent(runId));
          status = cur.run.status;
        }
      } catch (e) {
        /* Keep polling a running run through a leader change. */
      }
      if (state.alive && status === "RUNNING" && follow.checked)
        state.timers.push(setTimeout(pollLogs, RV.run.LOG_POLL_MS));
    }
    follow.addEventListener("change", function () { if (follow.checked) pollLogs(); });
    pollLogs();

    /* Artifacts. */
    var arts = el("section", null, el("h3", null, "Artifacts"));
    head.appendChild(arts);
    try {
      var al = await RV.api("/api/v2/runs/" + encodeURIComponent(runId) + "/artifacts");
      if (!al.artifacts.length) arts.appendChild(el("p", { class: "muted" }, "No artifacts."));
      else arts.appendChild(el("table", { "aria-label": "Artifacts" }, el("tbody", null, al.artifacts.map(function (a) {
        return el("tr", null,
          el("td", null, el("button", { type: "button", onclick: function () { RV.run.download(runId, a.path); } }, a.path)),
          el("td", { class: "num" }, String(a.size)), el("td", null, a.content_type || ""),
          el("td", { class: "muted" }, a.complete ? "" : "incomplete"));
      }))));
    } catch (e) {
      arts.appendChild(RV.errorBox(e));
    }
    head.setAttribute("data-load-ms", (performance.now() - t0).toFixed(0));
  })();
  return {
    plots: state.plots, /* The live charts (uPlot instances). */
    leave: function () {
      state.alive = false;
      state.timers.forEach(clearTimeout);
      state.plots.forEach(function (u) { u.destroy(); });
    },
  };
};
