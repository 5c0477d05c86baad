/* The cluster page: #/cluster. Every node as the node serving this page
 * sees it (GET /api/v2/cluster asks each node itself), refreshed every
 * 2 s: role, state, leader, applied index and its lag behind the leader,
 * term, durability; and this node's disk use from its /metrics. */
"use strict";

RV.cluster = {};
RV.cluster.REFRESH_MS = 2000;

/* runvault_disk_bytes{part="..."} values of a /metrics text. */
RV.cluster.disk = function (text) {
  var out = {}, re = /^runvault_disk_bytes\{part="([a-z_]+)"\} (\d+)/gm, m;
  while ((m = re.exec(text)) !== null) out[m[1]] = parseInt(m[2], 10);
  return out;
};

RV.cluster.bytes = function (n) {
  if (n === undefined) return "";
  var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return (i ? n.toFixed(1) : String(n)) + " " + u[i];
};

RV.pages.cluster = function (main) {
  var el = RV.el;
  var state = { alive: true, timer: null };
  var table = el("table", { id: "cluster-table", "aria-label": "Nodes" });
  var info = el("p", { class: "muted", id: "cluster-info" });
  var disk = el("p", { id: "cluster-disk" });
  RV.append(main, [el("h2", null, "Cluster"), info, table, el("h3", null, "This node's disk"), disk]);
  async function refresh() {
    try {
      var c = await RV.api("/api/v2/cluster");
      if (!state.alive) return;
      var leader = null;
      c.nodes.forEach(function (n) { if (n.id === c.leader_id) leader = n; });
      RV.clear(table);
      table.appendChild(el("thead", null, el("tr", null, ["id", "role", "state", "leader", "applied index", "lag", "term", "durability",
        "raft", "http", "digest"].map(function (h) { return el("th", { scope: "col" }, h); }))));
      table.appendChild(el("tbody", null, c.nodes.map(function (n) {
        var lag = leader && n.applied_index !== undefined && leader.applied_index !== undefined
          ? Math.max(0, leader.applied_index - n.applied_index) : "";
        return el("tr", { "data-node": n.id },
          el("td", { class: "num" }, String(n.id)), el("td", null, n.role || ""), el("td", null, n.state || ""),
          el("td", null, n.id === c.leader_id ? "\u2605 leader" : ""),
          el("td", { class: "num" }, n.applied_index !== undefined ? String(n.applied_index) : ""),
          el("td", { class: "num" }, String(lag)), el("td", { class: "num" }, n.term !== undefined ? String(n.term) : ""),
          el("td", null, n.durability || ""), el("td", null, n.raft_addr || ""),
          el("td", null, n.http_addr ? el("a", { href: "http://" + n.http_addr + "/#/cluster" }, n.http_addr) : ""),
          el("td", { class: "muted" }, n.digest ? String(n.digest).slice(0, 16) : ""));
      })));
      info.textContent = "leader " + (c.leader_id || "none") + " \u00b7 answered by node " + c.node_id +
        " \u00b7 " + new Date().toLocaleTimeString();
      var m = await RV.api("/metrics", null, { raw: true }).then(function (r) { return r.text(); });
      if (!state.alive) return;
      var d = RV.cluster.disk(m);
      disk.textContent = Object.keys(d).map(function (k) { return k + " " + RV.cluster.bytes(d[k]); }).join(" \u00b7 ") || "not reported";
      document.body.setAttribute("data-cluster-ready", String(Date.now()));
    } catch (e) {
      if (!state.alive) return;
      RV.clear(info).appendChild(RV.errorBox(e));
    }
    if (state.alive) state.timer = setTimeout(refresh, RV.cluster.REFRESH_MS);
  }
  refresh();
  return { leave: function () { state.alive = false; clearTimeout(state.timer); } };
};
