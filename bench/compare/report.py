#!/usr/bin/env python3
"""The comparison's report (bench/compare/run.sh calls it).

Reads the measurements run.sh left in WORK (res/<system>.<round>.json,
lat/<system>.<round>.txt, query/query.json and query/query_cdf_*.dat),
writes OUT/compare.json (every figure), OUT/summary.md (the tables for
docs/BENCHMARKS.md) and the PNG plots, drawn with gnuplot (pngcairo if
this gnuplot has it, else png). Ratios are taken within a round, so both
systems of a ratio ran minutes apart at most, and the median over the
rounds is quoted with the min-max spread.
"""

import argparse
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

RV_SYSTEMS = [
    "native-memory", "native-buffered", "native-strict",
    "http-memory", "http-buffered", "http-strict",
]
PEERS = ["etcd", "postgres"]
LABELS = {
    "native-memory": "runvault native, memory",
    "native-buffered": "runvault native, buffered",
    "native-strict": "runvault native, strict",
    "http-memory": "runvault HTTP, memory",
    "http-buffered": "runvault HTTP, buffered",
    "http-strict": "runvault HTTP, strict",
    "etcd": "etcd 3.4, 3 members",
    "postgres": "PostgreSQL 15, 1 server",
}
# DESIGN.md section 10: the ratios, on the default (buffered) native path.
TARGETS = {"etcd": 20.0, "postgres": 3.0}
HEADLINE = "native-buffered"


def load_measurements(work):
    by_sys = {}
    for path in sorted(glob.glob(os.path.join(work, "res", "*.json"))):
        with open(path) as f:
            m = json.load(f)
        by_sys.setdefault(m["system"], []).append(m)
    for ms in by_sys.values():
        ms.sort(key=lambda m: m["round"])
    return by_sys


def spread(values):
    med = statistics.median(values)
    return {
        "median": med,
        "min": min(values),
        "max": max(values),
        "spread_pct": 100.0 * (max(values) - min(values)) / med if med else 0,
    }


def summarize(by_sys):
    ingest = {}
    for sysname, ms in by_sys.items():
        pps = [m["result"]["points_per_s"] for m in ms]
        ingest[sysname] = {
            "label": LABELS.get(sysname, sysname),
            "points_per_s": spread(pps),
            "p50_ms_median": statistics.median(m["result"]["p50_ms"] for m in ms),
            "p99_ms_median": statistics.median(m["result"]["p99_ms"] for m in ms),
            "points_per_request": ms[0]["result"]["points_per_request"],
            "clients": ms[0]["result"]["clients"],
            "acked_lost": sum(m["result"].get("acked_lost", 0) for m in ms),
            "rounds": [dict(m["result"], round=m["round"],
                            background_cpu_pct=m.get("background_cpu_pct"),
                            load1_before=m.get("load1_before")) for m in ms],
        }
    return ingest


def ratios(by_sys):
    out = {}
    for rv in RV_SYSTEMS:
        for peer in PEERS:
            if rv not in by_sys or peer not in by_sys:
                continue
            peer_by_round = {m["round"]: m["result"]["points_per_s"]
                             for m in by_sys[peer]}
            per_round = []
            for m in by_sys[rv]:
                p = peer_by_round.get(m["round"])
                if p:
                    per_round.append(m["result"]["points_per_s"] / p)
            if per_round:
                out[f"{rv}/{peer}"] = dict(spread(per_round),
                                           per_round=per_round)
    return out


def cpu_steal(work):
    try:
        with open(os.path.join(work, "stat.before")) as f:
            a = [int(x) for x in f.readline().split()[1:]]
        with open(os.path.join(work, "stat.after")) as f:
            b = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    d = [y - x for x, y in zip(a, b)]
    total = sum(d[:8]) or 1
    return 100.0 * d[7] / total if len(d) > 7 else None


def machine(work):
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def loadavg(name):
        try:
            with open(os.path.join(work, name)) as f:
                return [float(x) for x in f.read().split()[:3]]
        except (OSError, ValueError):
            return None

    return {
        "cpus": os.cpu_count(),
        "model": model,
        "kernel": platform.release(),
        "load_before": loadavg("loadavg.before"),
        "load_after": loadavg("loadavg.after"),
        "steal_pct": cpu_steal(work),
    }


def quantile_rows(samples, n=400):
    """(latency, fraction) pairs of the samples' CDF, at most n+1 rows."""
    samples = sorted(samples)
    if not samples:
        return []
    rows = []
    for i in range(n + 1):
        q = i / n
        rows.append((samples[min(len(samples) - 1,
                                 int(q * (len(samples) - 1)))], q))
    return rows


def write_dat(path, rows):
    with open(path, "w") as f:
        for x, y in rows:
            f.write(f"{max(x, 0.001):.3f} {y:.5f}\n")


def gnuplot(script, cwd):
    terms = subprocess.run(["gnuplot", "-e", "set terminal"],
                           capture_output=True, text=True).stderr
    term = ("pngcairo size 1000,560 font 'Sans,10'" if "pngcairo" in terms
            else "png size 1000,560")
    subprocess.run(["gnuplot"], input=f"set terminal {term}\n" + script,
                   text=True, check=True, cwd=cwd)


def plot_throughput(ingest, datdir, out):
    order = [s for s in RV_SYSTEMS + PEERS if s in ingest]
    dat = os.path.join(datdir, "throughput.dat")
    with open(dat, "w") as f:
        for i, s in enumerate(order):
            p = ingest[s]["points_per_s"]
            color = (0x1f77b4 if s.startswith("native") else
                     0x2ca02c if s.startswith("http") else
                     0xd62728 if s == "etcd" else 0x9467bd)
            label = LABELS[s].replace("runvault ", "").replace(", ", "\\n")
            f.write(f'{i} "{label}" {p["median"]:.0f} {p["min"]:.0f} '
                    f'{p["max"]:.0f} {color}\n')
    gnuplot(f"""
set output '{os.path.join(out, "compare_throughput.png")}'
set title "Acknowledged metric points/s (median of rounds, bars: min-max), 2 vCPU, everything on one box"
set logscale y
set yrange [1000:*]
set format y "%.0s%c"
set ylabel "acked points/s (log)"
set style fill solid 0.8 border -1
set boxwidth 0.6
set bmargin 5
set grid ytics
set xtics font ",9"
unset key
plot '{dat}' using 1:3:6:xtic(2) with boxes lc rgb variable, \\
     '' using 1:3:4:5 with yerrorbars lc rgb "black" pt 0, \\
     '' using 1:5:($3 >= 1e6 ? sprintf("%.2fM", $3/1e6) : $3 < 10000 ? sprintf("%.1fk", $3/1000) : sprintf("%.0fk", $3/1000)) with labels offset 0,0.8
""", datdir)


STYLE = {
    "native-memory": "lc rgb '#9ecae1' dt 1", "native-buffered": "lc rgb '#3182bd' dt 1",
    "native-strict": "lc rgb '#08306b' dt 1", "http-memory": "lc rgb '#a1d99b' dt 2",
    "http-buffered": "lc rgb '#31a354' dt 2", "http-strict": "lc rgb '#00441b' dt 2",
    "etcd": "lc rgb '#d62728' dt 1", "postgres": "lc rgb '#9467bd' dt 1",
}


def plot_ingest_cdf(work, ingest, datdir, out):
    """One CDF per system, every round's samples pooled; the .dat files
    are kept in OUT so the plot can be redrawn (--replot)."""
    lines = []
    for s in [s for s in RV_SYSTEMS + PEERS if s in ingest]:
        samples = []
        for path in glob.glob(os.path.join(work, "lat", f"{s}.*.txt")):
            with open(path) as f:
                samples.extend(float(x) for x in f if x.strip())
        dat = os.path.join(out, f"compare_ingest_cdf_{s}.dat")
        if samples:
            write_dat(dat, quantile_rows(samples))
        elif not os.path.exists(dat):
            continue
        lines.append(f"'{dat}' using 1:2 with lines lw 2.5 {STYLE[s]} "
                     f"title '{LABELS[s]} ({ingest[s]['points_per_request']} "
                     "points/request)'")
    if not lines:
        return
    gnuplot(f"""
set output '{os.path.join(out, "compare_ingest_latency_cdf.png")}'
set title "Ingest: request -> acknowledgement latency, CDF (every round pooled)"
set logscale x
set xlabel "latency (ms, log)"
set ylabel "fraction of requests"
set yrange [0:1]
set grid
set key top left font ",9" opaque box
plot {", ".join(lines)}
""", datdir)


def plot_query_cdf(qdir, out):
    lines = []
    for dat in sorted(glob.glob(os.path.join(qdir, "query_cdf_*.dat"))):
        name = os.path.basename(dat)[len("query_cdf_"):-len(".dat")]
        lines.append(f"'{dat}' using 1:2 with lines lw 2 title '{name}'")
    if not lines:
        return False
    gnuplot(f"""
set output '{os.path.join(out, "compare_query_latency_cdf.png")}'
set title "Queries over the run set (bench/compare/query.sh): latency CDF, every query pooled"
set logscale x
set xlabel "latency (ms, log)"
set ylabel "fraction of queries"
set yrange [0:1]
set grid
set key bottom right
plot {", ".join(lines)}
""", qdir)
    return True


def fmt_pps(v):
    return f"{v:,.0f}"


def summary_md(report):
    ing, rat = report["ingest"], report["ratios"]
    out = ["| system | points/request | clients | rounds | acked points/s, "
           "median [min–max] | spread | ack p50 | ack p99 | acked lost |",
           "|---|---|---|---|---|---|---|---|---|"]
    for s in [s for s in RV_SYSTEMS + PEERS if s in ing]:
        d, p = ing[s], ing[s]["points_per_s"]
        out.append(
            f"| {d['label']} | {d['points_per_request']} | {d['clients']} | "
            f"{len(d['rounds'])} | "
            f"**{fmt_pps(p['median'])}** [{fmt_pps(p['min'])}–"
            f"{fmt_pps(p['max'])}] | {p['spread_pct']:.0f}% | "
            f"{d['p50_ms_median']:.1f} ms | {d['p99_ms_median']:.1f} ms | "
            f"{d['acked_lost']} |")
    out += ["", "| ratio (same round) | median [min–max] | target |",
            "|---|---|---|"]
    for k, v in rat.items():
        rv, peer = k.split("/")
        tgt = (f"≥ {TARGETS[peer]:.0f}× — "
               f"{'met' if v['median'] >= TARGETS[peer] else 'missed'}"
               if rv == HEADLINE else "")
        out.append(f"| {LABELS[rv]} / {peer} | **{v['median']:.1f}×** "
                   f"[{v['min']:.1f}–{v['max']:.1f}] | {tgt} |")
    q = report.get("query")
    if isinstance(q, dict) and q.get("queries"):
        out += ["", "| query | runvault p50 / p99 | PostgreSQL p50 / p99 | "
                "p99 ratio (median of pairs) |", "|---|---|---|---|"]
        for e in q["queries"]:
            rv, pg = e.get("runvault", {}), e.get("postgres", {})
            r = e.get("ratio_p99_median")
            out.append(
                f"| {e.get('name')} | {rv.get('p50_ms', 0):.1f} / "
                f"{rv.get('p99_ms', 0):.1f} ms | {pg.get('p50_ms', 0):.1f} / "
                f"{pg.get('p99_ms', 0):.1f} ms | "
                f"{'' if r is None else f'{r:.2f}×' if r < 1 else f'{r:.1f}×'} |")
        h = q.get("history") or {}
        if h.get("runvault") and h.get("postgres"):
            out.append(
                f"| history: {h.get('points', 0):,} points -> "
                f"{h.get('downsample')} | {h['runvault']['p50_ms']:.1f} / "
                f"{h['runvault']['p99_ms']:.1f} ms | "
                f"{h['postgres']['p50_ms']:.1f} / "
                f"{h['postgres']['p99_ms']:.1f} ms | "
                f"p50 {h.get('ratio_p50', 0):.0f}× |")
    for fm in report.get("failed_measurements", []):
        r = fm["result"]
        out += ["", f"Failed: {LABELS.get(fm['system'], fm['system'])}, "
                f"round {fm['round']} (exit {fm['exit']}): "
                f"{r.get('acked', 0):,} points acknowledged, "
                f"{r.get('acked_lost', 0):,} of them missing afterwards; "
                "left out of the medians."]
    m = report["machine"]
    out += ["", f"Machine: {m['cpus']} CPUs ({m['model']}), load before "
            f"{m['load_before']}, after {m['load_after']}, steal "
            f"{(m['steal_pct'] or 0):.1f}%; background CPU busy before each "
            "measurement (nothing of the benchmark running): "
            + ", ".join(f"{s} {statistics.median(b):.0f}%"
                        for s, b in report["background_cpu_pct"].items())
            + "."]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--warmup-ms", type=int, default=0)
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("--clients", default="")
    ap.add_argument("--systems", default="")
    ap.add_argument("--replot", action="store_true",
                    help="redraw OUT's plots from OUT's compare.json and "
                         ".dat files (WORK is not read)")
    a = ap.parse_args()
    a.out = os.path.abspath(a.out)
    if a.replot:
        with open(os.path.join(a.out, "compare.json")) as f:
            report = json.load(f)
        tmp = tempfile.mkdtemp(prefix="rvreplot-")
        try:
            plot_throughput(report["ingest"], tmp, a.out)
            plot_ingest_cdf(tmp, report["ingest"], tmp, a.out)
        finally:
            shutil.rmtree(tmp)
        return 0
    a.work = os.path.abspath(a.work) if a.work else a.work
    if not a.work:
        ap.error("--work is needed unless --replot")
    by_sys = load_measurements(a.work)
    if not by_sys:
        print("report.py: no measurement to report", file=sys.stderr)
        return 1
    datdir = os.path.join(a.work, "plot")
    os.makedirs(datdir, exist_ok=True)
    report = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mode": "quick" if a.quick else "full",
        "machine": machine(a.work),
        "config": {
            "rounds": a.rounds, "warmup_ms": a.warmup_ms,
            "measured_seconds": a.seconds, "runs": 48, "keys": 10,
            "clients": dict(kv.split("=") for kv in a.clients.split(",")
                            if "=" in kv),
            "systems": a.systems.split(),
            "order": "each round runs every system once, in this order; "
                     "only the system measured is running",
        },
        "ingest": summarize(by_sys),
        "ratios": ratios(by_sys),
        "background_cpu_pct": {
            s: [m.get("background_cpu_pct", 0) for m in ms]
            for s, ms in by_sys.items()},
    }
    report["failed_measurements"] = []
    for path in sorted(glob.glob(os.path.join(a.work, "res", "*.failed"))):
        with open(path) as f:
            report["failed_measurements"].append(json.load(f))
    head = report["ratios"]
    report["targets"] = {
        f"{HEADLINE}/{peer}": {
            "target": TARGETS[peer],
            "median": head[f"{HEADLINE}/{peer}"]["median"],
            "met": head[f"{HEADLINE}/{peer}"]["median"] >= TARGETS[peer],
        } for peer in PEERS if f"{HEADLINE}/{peer}" in head}
    qdir = os.path.join(a.work, "query")
    qjson = os.path.join(qdir, "query.json")
    if os.path.exists(qjson):
        with open(qjson) as f:
            report["query"] = json.load(f)
    else:
        report["query"] = {"skipped": "bench/compare/query.sh gave no "
                                      "query.json (absent or failed)"}
    os.makedirs(a.out, exist_ok=True)
    plot_throughput(report["ingest"], datdir, a.out)
    plot_ingest_cdf(a.work, report["ingest"], datdir, a.out)
    report["plots"] = ["compare_throughput.png",
                       "compare_ingest_latency_cdf.png"]
    if plot_query_cdf(qdir, a.out):
        report["plots"].append("compare_query_latency_cdf.png")
    with open(os.path.join(a.out, "compare.json"), "w") as f:
        json.dump(report, f, indent=1)
    md = summary_md(report)
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
