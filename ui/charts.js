/* Charts with uPlot. The server downsamples (M4: each bucket's first, min,
 * max and last point, so spikes survive); uPlot reduces nothing. The line
 * goes through every point the server sent; the band is each pixel
 * column's minimum and maximum of those points, so a spike stays visible
 * as a band however the line is smoothed. */
"use strict";

RV.charts = {};

/* Points per request for a chart w pixels wide: 4 per column (M4). */
RV.charts.downsampleFor = function (w) {
  return Math.max(16, Math.min(10000, 4 * Math.round(w)));
};

/* Exponential moving average of ys with weight a in [0, 1) (0: none);
 * nulls and non-numbers are left as they are and do not feed the mean. */
RV.charts.ema = function (ys, a) {
  if (!a) return ys;
  var out = new Array(ys.length), m = null;
  for (var i = 0; i < ys.length; i++) {
    var y = ys[i];
    if (typeof y !== "number" || !isFinite(y)) {
      out[i] = y;
      continue;
    }
    m = m === null ? y : a * m + (1 - a) * y;
    out[i] = m;
  }
  return out;
};

/* A value from the API as a number for plotting: NaN/Infinity strings
 * become null (a gap). */
RV.charts.num = function (v) {
  return typeof v === "number" && isFinite(v) ? v : null;
};

/* Per-point band: the min and max over the points in the same pixel
 * column of w columns across [xs[0], xs[n-1]]. */
RV.charts.band = function (xs, ys, w) {
  var n = xs.length, lo = new Array(n), hi = new Array(n);
  if (n === 0) return [lo, hi];
  var x0 = xs[0], span = xs[n - 1] - x0 || 1, cols = Math.max(1, Math.round(w));
  var i = 0;
  while (i < n) {
    var c = Math.min(cols - 1, Math.floor(((xs[i] - x0) / span) * cols));
    var j = i, mn = null, mx = null;
    while (j < n && Math.min(cols - 1, Math.floor(((xs[j] - x0) / span) * cols)) === c) {
      var y = ys[j];
      if (y !== null) {
        mn = mn === null || y < mn ? y : mn;
        mx = mx === null || y > mx ? y : mx;
      }
      j++;
    }
    for (var k = i; k < j; k++) {
      lo[k] = mn;
      hi[k] = mx;
    }
    i = j;
  }
  return [lo, hi];
};

/* The x of a point [step, timestamp_ms, value]: step, or seconds. */
RV.charts.x = function (p, byTime) {
  return byTime ? p[1] / 1000 : p[0];
};

/* Options for a chart of width w: x by step or time, log-scale y, a
 * "zoom" callback (xmin, xmax) after a drag-select. */
RV.charts.opts = function (w, h, o) {
  var axes = [{ space: 60 }, { size: 60 }];
  return {
    width: w,
    height: h,
    scales: { x: { time: !!o.byTime }, y: o.log ? { distr: 3 } : {} },
    axes: axes,
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
    series: [{ label: o.byTime ? "time" : "step" }].concat(o.series),
    bands: o.bands || [],
    hooks: {
      setSelect: [function (u) {
        if (u.select.width < 2 || !o.zoom) return;
        var a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
        u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        o.zoom(a, b);
      }],
    },
  };
};

/* One metric of one run: {x: [...], y: [...], lo, hi} from the API's
 * points, log scale leaving out values <= 0 (uPlot's log cannot show them). */
RV.charts.series = function (points, o) {
  var xs = [], ys = [];
  for (var i = 0; i < points.length; i++) {
    var y = RV.charts.num(points[i][2]);
    if (o.log && y !== null && y <= 0) y = null;
    xs.push(RV.charts.x(points[i], o.byTime));
    ys.push(y);
  }
  var b = RV.charts.band(xs, ys, o.width);
  return { x: xs, y: RV.charts.ema(ys, o.smooth), lo: b[0], hi: b[1] };
};

RV.charts.COLORS = ["#2457c5", "#c5372c", "#2b8a3e", "#8f5bd6", "#d9822b", "#0c8599",
  "#a61e4d", "#5c940d", "#364fc7", "#e8590c"];

RV.charts.color = function (i) {
  var c = RV.charts.COLORS;
  if (i < c.length) return c[i];
  return "hsl(" + ((i * 137.5) % 360).toFixed(0) + ",60%,45%)";
};

/* The chart options of the URL (x=time, log=1, smooth=0.6). */
RV.charts.viewOf = function (p) {
  return { byTime: p.get("x") === "time", log: p.get("log") === "1",
    smooth: Math.min(0.99, Math.max(0, parseFloat(p.get("smooth")) || 0)) };
};

/* The controls of o (x by step or time, log scale, EMA), each change
 * going to nav({x|log|smooth: value or null}): labelled elements for a bar. */
RV.charts.controls = function (o, nav) {
  var el = RV.el;
  var xSel = el("select", { id: "xaxis", onchange: function () { nav({ x: xSel.value === "time" ? "time" : null }); } },
    el("option", { value: "step", selected: !o.byTime }, "step"), el("option", { value: "time", selected: o.byTime }, "time"));
  var logBox = el("input", { id: "logscale", type: "checkbox", checked: o.log,
    onchange: function () { nav({ log: logBox.checked ? "1" : null }); } });
  var smooth = el("input", { id: "smooth", type: "range", min: "0", max: "0.99", step: "0.01", value: String(o.smooth),
    onchange: function () { nav({ smooth: smooth.value === "0" ? null : smooth.value }); } });
  return [el("label", { for: "xaxis" }, "x by"), xSel, el("label", { for: "logscale" }, logBox, " log scale"),
    el("label", { for: "smooth" }, "smoothing (EMA)"), smooth];
};
