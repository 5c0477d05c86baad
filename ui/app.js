/* runvault's web UI: the shared parts (the API, the token, the router, DOM
 * helpers). Pages register in RV.pages; each renders into <main> from the
 * URL's hash (#/page/arg?k=v), so the URL holds the whole view.
 *
 * Every text from the server goes into the DOM as text (el(), never
 * innerHTML). The token lives in sessionStorage and is only ever sent as an
 * Authorization header, never in a URL. */
"use strict";

var RV = {
  pages: {},
  /* The page being shown: its cleanup (timers, charts) runs on leave. */
  current: null,
};

RV.TOKEN_KEY = "runvault.token";

RV.token = function () {
  try {
    return sessionStorage.getItem(RV.TOKEN_KEY) || "";
  } catch (e) {
    return "";
  }
};

RV.setToken = function (t) {
  try {
    if (t) sessionStorage.setItem(RV.TOKEN_KEY, t);
    else sessionStorage.removeItem(RV.TOKEN_KEY);
  } catch (e) {
    /* Storage refused (private mode): the token lasts this page only. */
  }
};

/* An API error: status, MLflow-style error_code and the server's message. */
RV.ApiError = function (status, code, message) {
  this.status = status;
  this.code = code;
  this.message = message;
};

/* GET (or opts.method, with opts.body as JSON) path with query params (an
 * object; undefined/"" values left out): the parsed JSON, or a thrown
 * RV.ApiError. A 401 shows the token box. */
RV.api = async function (path, params, opts) {
  var q = new URLSearchParams();
  if (params)
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
    });
  var url = path + (q.toString() ? "?" + q.toString() : "");
  var headers = { Accept: "application/json" };
  var t = RV.token();
  if (t) headers.Authorization = "Bearer " + t;
  var init = { headers: headers, cache: "no-store", signal: opts && opts.signal };
  if (opts && opts.method) init.method = opts.method;
  if (opts && opts.body !== undefined) {
    init.body = JSON.stringify(opts.body);
    headers["Content-Type"] = "application/json";
  }
  var resp = await fetch(url, init);
  if (opts && opts.raw) {
    if (!resp.ok) throw new RV.ApiError(resp.status, "HTTP_" + resp.status, resp.statusText);
    return resp;
  }
  var body = null;
  try {
    body = await resp.json();
  } catch (e) {
    body = null;
  }
  if (!resp.ok) {
    if (resp.status === 401) RV.locked(t ? "The token was refused (unknown, expired or revoked)." : "");
    throw new RV.ApiError(resp.status, (body && body.error_code) || "HTTP_" + resp.status,
      (body && body.message) || resp.statusText);
  }
  return body;
};

/* ---- DOM helpers ---------------------------------------------------------- */

/* el("td", {class: "num", onclick: f}, "text", childNode, ...) */
RV.el = function (tag, attrs) {
  var n = document.createElement(tag);
  if (attrs)
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) return;
      if (k.slice(0, 2) === "on") n.addEventListener(k.slice(2), v);
      else if (k === "class") n.className = v;
      else if (k === "text") n.textContent = v;
      else n.setAttribute(k, v === true ? "" : String(v));
    });
  for (var i = 2; i < arguments.length; i++) RV.append(n, arguments[i]);
  return n;
};

RV.append = function (n, c) {
  if (c === undefined || c === null || c === false) return;
  if (Array.isArray(c)) c.forEach(function (x) { RV.append(n, x); });
  else n.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
};

RV.clear = function (n) {
  while (n.firstChild) n.removeChild(n.firstChild);
  return n;
};

RV.fmtTime = function (ms) {
  if (!ms) return "";
  var d = new Date(ms);
  return d.toISOString().replace("T", " ").slice(0, 19);
};

RV.fmtNum = function (v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v; /* "NaN", "Infinity" as the API spells them. */
  if (Number.isInteger(v)) return String(v);
  var a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(4) : String(+v.toPrecision(6));
};

RV.errorBox = function (e) {
  var msg = e instanceof RV.ApiError ? e.code + ": " + e.message : String(e && e.message || e);
  return RV.el("p", { class: "error", role: "alert" }, msg);
};

/* ---- The URL ---------------------------------------------------------------- */

/* {page, arg, params} of location.hash: "#/run/ID?x=step". */
RV.route = function () {
  var h = location.hash.replace(/^#\/?/, "");
  var qi = h.indexOf("?");
  var path = qi < 0 ? h : h.slice(0, qi);
  var params = new URLSearchParams(qi < 0 ? "" : h.slice(qi + 1));
  var parts = path.split("/");
  return { page: parts[0] || "runs", arg: decodeURIComponent(parts.slice(1).join("/")), params: params };
};

/* The hash for page/arg with params (an object or URLSearchParams). */
RV.href = function (page, arg, params) {
  var q = params instanceof URLSearchParams ? params : new URLSearchParams();
  if (params && !(params instanceof URLSearchParams))
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
    });
  var s = q.toString();
  return "#/" + page + (arg ? "/" + encodeURIComponent(arg) : "") + (s ? "?" + s : "");
};

/* Change the view's parameters without a new history entry when replace. */
RV.go = function (hash, replace) {
  if (location.hash === hash) RV.render();
  else if (replace) {
    history.replaceState(null, "", hash);
    RV.render();
  } else location.hash = hash;
};

RV.render = function () {
  var r = RV.route();
  var page = RV.pages[r.page] || RV.pages.runs;
  if (RV.current && RV.current.leave) RV.current.leave();
  RV.current = null;
  document.querySelectorAll(".top nav a").forEach(function (a) {
    if (a.getAttribute("data-page") === r.page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  var main = RV.clear(document.getElementById("main"));
  RV.current = page(main, r) || null;
};

/* ---- The token ---------------------------------------------------------- */

/* A 401: the page stops and shows only the token box. */
RV.locked = function (why) {
  if (RV.current && RV.current.leave) RV.current.leave();
  RV.current = null;
  RV.clear(document.getElementById("main"));
  RV.askToken(why);
};

RV.askToken = function (why) {
  var f = document.getElementById("token-form");
  f.hidden = false;
  document.getElementById("token-error").textContent = why || "";
  document.getElementById("token-input").focus();
};

RV.whoami = async function () {
  var who = document.getElementById("who");
  try {
    var w = await RV.api("/api/v2/whoami");
    who.textContent = w.token_id ? "team " + w.team + ", " + w.role + (w.name ? " (" + w.name + ")" : "")
      : "open mode (no auth)";
    document.getElementById("token-form").hidden = true;
    document.getElementById("forget").hidden = !RV.token();
    RV.me = w;
    return "ok";
  } catch (e) {
    who.textContent = "";
    document.getElementById("forget").hidden = !RV.token();
    /* 401: the token box is up and nothing is shown; any other error
     * (a node without a leader) lets the pages say what fails. */
    return e instanceof RV.ApiError && e.status === 401 ? "auth" : "error";
  }
};

RV.start = async function () {
  document.getElementById("token-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    var t = document.getElementById("token-input").value.trim();
    RV.setToken(t);
    document.getElementById("token-input").value = "";
    if ((await RV.whoami()) === "ok") RV.render();
  });
  document.getElementById("forget").addEventListener("click", function () {
    RV.setToken("");
    RV.me = null;
    location.reload();
  });
  window.addEventListener("hashchange", RV.render);
  /* The page asks for its data at once; who the caller is fills the
   * header meanwhile. A 401 from either shows the token box alone. */
  RV.render();
  RV.whoami();
};

document.addEventListener("DOMContentLoaded", RV.start);
