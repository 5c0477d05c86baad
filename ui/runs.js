/* The runs table: #/runs?filter=&order=&status=&cols=&pt=&prev=
 *   filter  runvault's filter language (the API's errors name the position)
 *   order   ORDER BY ("metrics.loss ASC", "attributes.start_time DESC")
 *   status  RUNNING, FINISHED, ...
 *   cols    extra columns, comma-separated: params.lr,metrics.loss
 *   pt      the page's keyset token (none: the first page)
 *   prev    the earlier pages' tokens, '~'-separated ("-" for the first)
 *   sel     the selected runs' ids, comma-separated (kept across pages)
 * Paging is keyset only (never an offset): the API's next_page_token. */
"use strict";

RV.runs = {};
RV.runs.PER_PAGE = 50;
RV.runs.STATUSES = ["RUNNING", "FINISHED", "FAILED", "KILLED", "SCHEDULED"];

/* The attribute columns: label, field of the run, ORDER BY ident. */
RV.runs.ATTRS = [
  { label: "Name", get: function (r) { return r.name || r.run_id; }, order: "attributes.run_name", cls: "name" },
  { label: "Status", get: function (r) { return r.status; }, order: "attributes.status" },
  { label: "Project", get: function (r) { return r.project; } },
  { label: "Experiment", get: function (r) { return r.experiment; } },
  { label: "User", get: function (r) { return r.user; }, order: "attributes.user_id" },
  { label: "Created", get: function (r) { return RV.fmtTime(r.created_at); }, order: "attributes.start_time" },
  { label: "Ended", get: function (r) { return RV.fmtTime(r.ended_at); }, order: "attributes.end_time" },
  { label: "Points", get: function (r) { return r.n_points; }, cls: "num" },
];

/* "at position 17: ..." in an API message: the 1-based position, or 0. */
RV.runs.errorPos = function (msg) {
  var m = /at position (\d+)/.exec(msg || "");
  return m ? parseInt(m[1], 10) : 0;
};

RV.runs.colsOf = function (p) {
  return (p.get("cols") || "").split(",").filter(function (c) {
    return /^(params|metrics)\.[^,]+$/.test(c);
  });
};

/* The value of column c ("params.lr", "metrics.loss") from a full run. */
RV.runs.colValue = function (full, c) {
  if (!full) return "";
  var dot = c.indexOf("."), kind = c.slice(0, dot), key = c.slice(dot + 1);
  if (kind === "params") return full.params && key in full.params ? full.params[key] : "";
  var s = full.summary && full.summary[key];
  return s ? RV.fmtNum(s.last) : "";
};

RV.pages.runs = function (main, r) {
  var p = r.params, el = RV.el;
  var state = { alive: true, selected: new Set((p.get("sel") || "").split(",").filter(Boolean)) };
  var cols = RV.runs.colsOf(p);
  var order = p.get("order") || "";

  function nav(changes, replace) {
    var q = new URLSearchParams(p.toString());
    Object.keys(changes).forEach(function (k) {
      if (changes[k] === null || changes[k] === "") q.delete(k);
      else q.set(k, changes[k]);
    });
    RV.go(RV.href("runs", "", q), replace);
  }

  /* Filter box. */
  var input = el("input", { id: "filter", type: "text", value: p.get("filter") || "", spellcheck: "false",
    placeholder: "params.lr = '0.01' AND metrics.loss < 0.5", "aria-describedby": "filter-error" });
  var statusSel = el("select", { id: "status", "aria-label": "Status" },
    el("option", { value: "" }, "any status"),
    RV.runs.STATUSES.map(function (s) { return el("option", { value: s, selected: p.get("status") === s }, s); }));
  var errBox = el("div", { id: "filter-error", role: "alert" });
  var form = el("form", { class: "bar filter", onsubmit: function (ev) {
    ev.preventDefault();
    nav({ filter: input.value.trim(), status: statusSel.value, pt: null, prev: null });
  } }, el("label", { for: "filter" }, "Filter"), input, statusSel, el("button", { type: "submit" }, "Apply"));

  /* Column picker. */
  var colInput = el("input", { id: "col-add", type: "text", list: "col-keys", placeholder: "params.lr or metrics.loss",
    "aria-label": "Add a column" });
  var keyList = el("datalist", { id: "col-keys" });
  var colBar = el("form", { class: "bar cols", onsubmit: function (ev) {
    ev.preventDefault();
    var c = colInput.value.trim();
    if (!/^(params|metrics)\.[^,]+$/.test(c) || cols.indexOf(c) >= 0) return;
    nav({ cols: cols.concat([c]).join(",") });
  } }, el("label", { for: "col-add" }, "Columns"),
    cols.map(function (c) {
      return el("span", null, c, el("button", { type: "button", "aria-label": "Remove column " + c, onclick: function () {
        nav({ cols: cols.filter(function (x) { return x !== c; }).join(",") });
      } }, "\u00d7"));
    }), colInput, keyList, el("button", { type: "submit" }, "Add"));

  var counts = el("div", { class: "chips", id: "counts", "aria-label": "Runs by status" });
  var info = el("p", { class: "muted", id: "page-info" });
  var table = el("table", { class: "runs", id: "runs-table" });
  var compareBtn = el("button", { type: "button", id: "compare", disabled: state.selected.size < 2, onclick: function () {
    RV.go(RV.href("compare", "", { runs: Array.from(state.selected).join(",") }));
  } }, "Compare selected");
  var prevBtn = el("button", { type: "button", id: "prev" }, "\u2190 Previous");
  var nextBtn = el("button", { type: "button", id: "next" }, "Next \u2192");
  var pager = el("div", { class: "bar" }, prevBtn, nextBtn, compareBtn, info);
  RV.append(main, [el("h2", null, "Runs"), form, errBox, colBar, counts, pager, table]);

  /* Status counts (the caller's teams only: the server scopes them). */
  RV.api("/api/v2/analytics", { group: "status" }).then(function (a) {
    if (!state.alive) return;
    RV.append(counts, [el("span", null, "total " + a.total)].concat(Object.keys(a.counts).sort().map(function (k) {
      return el("span", null, k.toLowerCase() + " " + a.counts[k]);
    })));
  }).catch(function () {});

  function header() {
    var tr = el("tr");
    tr.appendChild(el("th", { scope: "col" }, el("span", { class: "muted" }, "Select")));
    function sortable(label, ident, cls) {
      if (!ident) return el("th", { scope: "col", class: cls }, label);
      var cur = order.split(/\s+/)[0] === ident ? (/\bDESC$/i.test(order) ? "DESC" : "ASC") : "";
      var next = cur === "ASC" ? "DESC" : "ASC";
      return el("th", { scope: "col", class: cls, "aria-sort": cur === "ASC" ? "ascending" : cur === "DESC" ? "descending" : "none" },
        el("button", { type: "button", onclick: function () { nav({ order: ident + " " + next, pt: null, prev: null }); } },
          label + (cur === "ASC" ? " \u25b2" : cur === "DESC" ? " \u25bc" : "")));
    }
    RV.runs.ATTRS.forEach(function (a) { tr.appendChild(sortable(a.label, a.order, a.cls)); });
    cols.forEach(function (c) { tr.appendChild(sortable(c, c, c.indexOf("metrics.") === 0 ? "num" : "")); });
    return el("thead", null, tr);
  }

  function select(id, on, tr) {
    if (on) state.selected.add(id);
    else state.selected.delete(id);
    tr.classList.toggle("selected", on);
    compareBtn.disabled = state.selected.size < 2;
    /* The selection is part of the view: in the URL, without a reload. */
    if (state.selected.size) p.set("sel", Array.from(state.selected).join(","));
    else p.delete("sel");
    history.replaceState(null, "", RV.href("runs", "", p));
  }

  async function load() {
    var t0 = performance.now();
    var params = { filter: p.get("filter"), order_by: order, status: p.get("status"), per_page: RV.runs.PER_PAGE,
      page_token: p.get("pt") };
    var page;
    try {
      page = await RV.api("/api/v2/experiments", params);
    } catch (e) {
      if (!state.alive) return;
      RV.clear(errBox);
      errBox.appendChild(RV.errorBox(e));
      var pos = RV.runs.errorPos(e.message);
      if (pos > 0 && p.get("filter")) {
        errBox.appendChild(el("div", { class: "caret", id: "filter-caret" }, p.get("filter") + "\n" + " ".repeat(pos - 1) + "^"));
        input.focus();
        input.setSelectionRange(pos - 1, pos);
      }
      return;
    }
    if (!state.alive) return;
    /* Full runs for the chosen columns, a request each (in parallel). */
    var full = {};
    var fetchFull = function (want) {
      return Promise.all(want.map(function (x) {
        return RV.api("/api/v2/runs/" + encodeURIComponent(x.run_id)).then(function (g) { return g.run; }, function () { return null; });
      }));
    };
    var offerKeys = function (got) {
      if (!state.alive) return;
      var keys = new Set();
      got.forEach(function (g) {
        if (!g) return;
        Object.keys(g.params || {}).forEach(function (k) { keys.add("params." + k); });
        Object.keys(g.summary || {}).forEach(function (k) { keys.add("metrics." + k); });
      });
      RV.clear(keyList);
      Array.from(keys).sort().forEach(function (k) { keyList.appendChild(el("option", { value: k })); });
    };
    if (cols.length) {
      var got = await fetchFull(page.runs);
      got.forEach(function (g) { if (g) full[g.run_id] = g; });
      if (!state.alive) return;
      offerKeys(got);
    } else {
      /* The picker's suggestions: the first run's keys, after the table. */
      setTimeout(function () { fetchFull(page.runs.slice(0, 1)).then(offerKeys); }, 0);
    }
    RV.clear(table);
    table.appendChild(header());
    var tb = el("tbody");
    page.runs.forEach(function (run) {
      var tr = el("tr", { "data-run": run.run_id, class: state.selected.has(run.run_id) ? "selected" : "" });
      var box = el("input", { type: "checkbox", "aria-label": "Select run " + (run.name || run.run_id),
        checked: state.selected.has(run.run_id), onchange: function () { select(run.run_id, box.checked, tr); } });
      tr.appendChild(el("td", null, box));
      RV.runs.ATTRS.forEach(function (a, i) {
        var v = a.get(run);
        tr.appendChild(el("td", { class: a.cls }, i === 0 ? el("a", { href: RV.href("run", run.run_id) }, v) : v));
      });
      cols.forEach(function (c) {
        tr.appendChild(el("td", { class: c.indexOf("metrics.") === 0 ? "num" : "" }, RV.runs.colValue(full[run.run_id], c)));
      });
      tb.appendChild(tr);
    });
    table.appendChild(tb);
    if (!page.runs.length) table.appendChild(el("caption", null, "No runs match."));
    /* prev: the earlier pages' tokens, the first page as "-". */
    var prev = p.get("prev") ? p.get("prev").split("~") : [];
    prevBtn.disabled = !p.get("pt");
    prevBtn.onclick = function () {
      var target = prev.length ? prev[prev.length - 1] : "-";
      nav({ pt: target === "-" ? null : target, prev: prev.slice(0, -1).join("~") || null });
    };
    nextBtn.disabled = !page.next_page_token;
    nextBtn.onclick = function () {
      nav({ pt: page.next_page_token, prev: prev.concat([p.get("pt") || "-"]).join("~") });
    };
    info.textContent = page.runs.length + " runs" + (page.total !== undefined ? " of " + page.total : "") +
      " \u00b7 examined " + page.examined + " \u00b7 plan " + (page.plan || "-") +
      " \u00b7 " + (performance.now() - t0).toFixed(0) + " ms";
    document.body.setAttribute("data-runs-ready", String(Date.now()));
    if (!RV.runs.marked) {
      RV.runs.marked = true;
      try { performance.mark("runs-table-ready"); } catch (e) { /* Old browsers. */ }
    }
  }
  load();
  return { leave: function () { state.alive = false; } };
};
