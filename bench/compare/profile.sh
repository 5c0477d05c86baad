#!/usr/bin/env bash
# Where the time of a native ingest goes, per 1000-point batch, against the
# budget of ../shared/research/performance.md section C.4.
#
# usage: bench/compare/profile.sh [--build DIR] [--seconds N] [--out DIR]
#
# Runs bench_gateway's native ingest (3 nodes, buffered, 48 clients, 1000
# points per write) on ports 24100-24122, records every CPU with
# `perf record -a` for N seconds (default 6) in the middle of it, and
# writes DIR/profile.json and DIR/profile.md (default: a temporary dir,
# printed): CPU ms per 1000-point batch by stage (protobuf decode, raft,
# vlog, LMDB, apply, network, disk, scheduling, the load generator), summed
# over the three nodes. perf.data stays in DIR for `perf report -i`.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${RUNVAULT_BUILD_DIR:-build}
seconds=6 out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --out) out=$2; shift ;;
    *) sed -n '5,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
    shift
done
case "$build" in /*) ;; *) build="$root/$build" ;; esac
case "$seconds" in '' | *[!0-9]* | 0) echo "profile.sh: bad --seconds" >&2; exit 2 ;; esac
[ "$seconds" -le 60 ] || { echo "profile.sh: at most 60 s" >&2; exit 2; }
command -v perf >/dev/null || { echo "profile.sh: perf is not installed" >&2; exit 1; }
cmake --build "$build" -j2 --target runvault bench_gateway >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/rvprofile-XXXXXX")
group=""
cleanup() {
    if [ -n "$group" ]; then
        kill -TERM -- "-$group" 2>/dev/null || true
        sleep 0.2
        kill -KILL -- "-$group" 2>/dev/null || true
    fi
    rm -rf "$work/tmp"
    [ -n "$out" ] || echo "profile.sh: kept $work" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM
out=${out:-$work}
mkdir -p "$out" "$work/tmp"

# The load runs 3 s before and 3 s after the recording.
total=$((seconds + 6))
TMPDIR="$work/tmp" setsid "$build/bench/bench_gateway" "$build/node/runvault" \
    --only ingest --path native --durability buffered --clients 48 \
    --seconds "$total" --warmup-ms 0 --port-base 24100 \
    >"$out/ingest.json" 2>"$out/ingest.err" &
group=$!
client_pid=$group
sleep 3
# This run's nodes only: other runvault processes may share the machine.
pids=$(ps -o pid=,comm= -g "$group" | awk '$2 == "runvault" {print $1}' |
    paste -sd, -)
[ -n "$pids" ] || { echo "profile.sh: no node running" >&2; exit 1; }
perf record -F 249 -a --call-graph dwarf,16384 -o "$out/perf.data" \
    -- sleep "$seconds" \
    2>"$out/perf.err" >/dev/null
wait "$group" || { tail -n 20 "$out/ingest.err" >&2; exit 1; }
group=""
python3 "$root/bench/compare/profile.py" --data "$out/perf.data" \
    --pids "$pids" --client-pid "$client_pid" \
    --ingest "$out/ingest.json" --seconds "$seconds" --freq 249 \
    --out "$out"
