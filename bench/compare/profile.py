#!/usr/bin/env python3
"""Stage attribution of a `perf record -a` taken during a native ingest
(bench/compare/profile.sh calls it).

Every sample of this run's three nodes is put in one stage by its call
chain (perf's DWARF unwinding; see ANCHORS); CPU ms per 1000-point
batch = samples / frequency / batches acknowledged while recording,
summed over the three nodes. Writes OUT/profile.json and OUT/profile.md.
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys

# A sample belongs to the stage of the first frame, from the leaf up, that
# names one (libc and kernel frames name none: a memcpy or a pwritev counts
# for its caller). Samples with no such frame (kernel work on the process's
# behalf with no user stack: softirqs, interrupts) go by the leaf's name.
ANCHORS = [
    ("vlog append", lambda d, s: s.startswith("vlog_")),
    ("store sync (fdatasync of vlog + LMDB, every 100 ms)", lambda d, s: s == "store_sync"),
    ("LMDB", lambda d, s: "liblmdb" in d),
    ("protobuf decode/encode", lambda d, s: "protobuf-c" in d or s.startswith("rv__")),
    ("apply: index work (summaries, postings, digest)", lambda d, s: s.startswith(("store_", "store__", "raftfsm_", "rv_crc", "rv_digest", "nettle_")) or "libxxhash" in d or "nettle" in d),
    ("RPC server (checks, hand-off)", lambda d, s: s.startswith(("rpc_", "rpc__", "rvc_"))),
    ("nng transport", lambda d, s: "libnng" in d),
    ("raft (libraft, libuv, replica)", lambda d, s: "libraft" in d or "libuv" in d or s.startswith(("replica_", "replica__", "raftguard_", "raftnode_"))),
]
DISK = re.compile(r"ext4|jbd2|blk_|bio|iomap|filemap|folio|fdatasync|fsync|writeback|pwrite|writev|iowrite|virtblk|virtio_queue|page_cache|generic_perform_write|vfs_write")
NET = re.compile(r"tcp|skb|ip_|net_|dev_|loopback|sock|inet|sendmsg|recvmsg")
# research/performance.md section C.4, CPU per 1000-point batch summed over
# the three nodes (its raft row covers log, replication and the disk).
BUDGET_MS = {
    "raft (libraft, libuv, replica)": 1.2,
    "raft log append (write + fdatasync)": None,
    "protobuf decode/encode": 0.06,
    "vlog append": 0.1,
    "LMDB": 0.1,
    "apply: index work (summaries, postings, digest)": 0.1,
}
BUDGET_TOTAL_NATIVE_MS = 1.9 - 0.43  # C.4's total without the JSON parse.


def parse_samples(text):
    """(pid, [(sym, dso), ...] leaf first) per sample of `perf script`."""
    pid, frames = None, []
    for line in text.splitlines():
        if not line.strip():
            if pid is not None:
                yield pid, frames
            pid, frames = None, []
        elif not line[0].isspace():
            parts = line.split()
            pid = parts[1].split("/")[0] if len(parts) > 1 else None
        else:
            m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
            if m:
                sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
                frames.append((sym, m.group(2)))
    if pid is not None:
        yield pid, frames


def stage_of(frames):
    user = False
    for sym, dso in frames:
        if "kernel" not in dso:
            user = True
        for name, test in ANCHORS:
            if test(dso, sym):
                leaf = frames[0][0]
                if name.startswith("raft") and "kernel" in frames[0][1] \
                        and DISK.search(leaf):
                    return "raft log append (write + fdatasync)"
                if name == "nng transport" and NET.search(leaf):
                    return "nng transport"
                return name
    leaf = frames[0][0] if frames else "?"
    if not user:
        if DISK.search(leaf):
            return "kernel: disk (no user frame)"
        if NET.search(leaf):
            return "kernel: loopback TCP (no user frame)"
        return "kernel: other (interrupts, scheduling)"
    if any("libc" in d for _, d in frames):
        return "libc, caller not resolved"
    return "other"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--ingest", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--freq", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--pids", required=True, help="the nodes' pids, a,b,c")
    ap.add_argument("--client-pid", required=True)
    a = ap.parse_args()
    with open(a.ingest) as f:
        ing = json.loads(next(line for line in f if line.startswith("{")))
    batches = ing["points_per_s"] * a.seconds / 1000.0
    script = subprocess.run(
        ["perf", "script", "-i", a.data, "-F", "comm,pid,tid,ip,sym,dso"],
        capture_output=True, text=True, check=True).stdout
    nodes = set(a.pids.split(","))
    node_stage = collections.Counter()
    per_node = collections.Counter()
    top = collections.Counter()
    client = others = total_all = 0
    for pid, frames in parse_samples(script):
        total_all += 1
        if pid in nodes and frames:
            st = stage_of(frames)
            node_stage[st] += 1
            per_node[pid] += 1
            top[(st, frames[0][0])] += 1
        elif pid == a.client_pid:
            client += 1
        elif pid != "0":
            others += 1
    ms_per = 1000.0 / a.freq / batches if batches else 0
    nodes_ms = sum(node_stage.values()) * ms_per
    rows = []
    for st, n in node_stage.most_common():
        rows.append({"stage": st, "samples": n, "ms_per_batch": n * ms_per,
                     "share_pct": 100.0 * n / max(1, sum(node_stage.values())),
                     "budget_ms": BUDGET_MS.get(st)})
    report = {
        "ingest": ing,
        "recorded_seconds": a.seconds,
        "frequency_hz": a.freq,
        "batches_in_window": batches,
        "samples_total": total_all,
        "nodes_cpu_ms_per_batch": nodes_ms,
        "client_cpu_ms_per_batch": client * ms_per,
        "other_processes_cpu_ms_per_batch": others * ms_per,
        "budget_ms_per_batch_native": BUDGET_TOTAL_NATIVE_MS,
        "per_node_samples": dict(per_node),
        "stages": rows,
        "top_symbols": [{"stage": st, "symbol": s, "samples": n}
                        for (st, s), n in top.most_common(25)],
    }
    with open(os.path.join(a.out, "profile.json"), "w") as f:
        json.dump(report, f, indent=1)
    md = [f"Native ingest at {ing['points_per_s']:,.0f} points/s "
          f"({ing['clients']} clients, {ing['points_per_request']} points "
          f"per write); {a.seconds:.0f} s recorded at {a.freq:.0f} Hz on "
          f"every CPU, {batches:,.0f} batches acknowledged meanwhile.", "",
          "| stage (3 nodes) | CPU ms per 1000-point batch | share | C.4 budget |",
          "|---|---|---|---|"]
    for r in rows:
        b = "" if r["budget_ms"] is None else f"{r['budget_ms']:.2f} ms"
        md.append(f"| {r['stage']} | {r['ms_per_batch']:.3f} | "
                  f"{r['share_pct']:.1f}% | {b} |")
    md.append(f"| **nodes, total** | **{nodes_ms:.2f}** | 100% | "
              f"{BUDGET_TOTAL_NATIVE_MS:.2f} ms |")
    md += ["", f"Load generator: {client * ms_per:.2f} ms per batch; other "
           f"processes on the machine: {others * ms_per:.2f} ms per batch "
           f"({100.0 * others / max(1, total_all):.0f}% of all samples).",
           "", "Top symbols of the nodes:", ""]
    for (st, s), n in top.most_common(15):
        md.append(f"- {s} ({st}): {100.0 * n / max(1, sum(node_stage.values())):.1f}%")
    text = "\n".join(md) + "\n"
    with open(os.path.join(a.out, "profile.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
