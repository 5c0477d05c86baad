#!/usr/bin/env bash
# runvault side by side with etcd and PostgreSQL (MLflow's schema), on this
# machine, one system at a time (docs/BENCHMARKS.md, "Side by side").
#
# usage: bench/compare/run.sh [--quick] [--rounds N] [--build DIR] [--out DIR]
#
# Ingest: the same metric stream (48 runs x 10 keys, steps ascending) into
#   runvault     3 nodes, native RPC and HTTP/JSON, durability memory,
#                buffered and strict (bench_gateway, 48 clients, 1000
#                points per request);
#   etcd         3 members, one key per point, transactions of 128 puts
#                (bench_peers etcd, 16 clients over the 3 members);
#   PostgreSQL   one server, MLflow's schema, 1000 metrics rows plus the
#                latest_metrics upsert per transaction (bench_peers
#                postgres, 4 clients).
# Rounds alternate the systems (A B C ... A B C ...); ratios are taken
# within a round and their median is quoted. Then bench/compare/query.sh
# (if present) runs the query comparison. Results: DIR/compare.json, the
# PNG plots and DIR/summary.md. Full mode: 3 rounds, 2 s warm-up + 4 s
# measured per system, out DIR docs/bench, under 15 minutes with the query
# part. --quick: one round, buffered only, 0.5 + 1 s (it checks the
# harness, not the speed); out DIR a temporary one unless given.
# Build dir: --build, else $RUNVAULT_BUILD_DIR, else build. Every process
# started is stopped, and the temporary dir removed, on any exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${RUNVAULT_BUILD_DIR:-build}
quick=0 rounds="" out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --rounds | --build | --out)
        [ $# -ge 2 ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }
        case "$1" in
        --rounds) rounds=$2 ;;
        --build) build=$2 ;;
        --out) out=$2 ;;
        esac
        shift
        ;;
    *)
        sed -n '4,25p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
    esac
    shift
done
case "$build" in /*) ;; *) build="$root/$build" ;; esac

# shellcheck source=bench/compare/lib.sh
source "$root/bench/compare/lib.sh"

if [ "$quick" = 1 ]; then
    rounds=${rounds:-1} warmup_ms=500 seconds=1
    systems=(native-buffered http-buffered etcd postgres)
else
    rounds=${rounds:-3} warmup_ms=2000 seconds=4
    systems=(native-memory native-buffered native-strict http-memory
        http-buffered http-strict etcd postgres)
fi
case "$rounds" in '' | *[!0-9]* | 0) echo "run.sh: bad --rounds" >&2; exit 2 ;; esac
[ "$rounds" -le 10 ] || { echo "run.sh: at most 10 rounds" >&2; exit 2; }
rv_clients=${RV_CLIENTS:-48}
etcd_clients=${ETCD_CLIENTS_N:-16}
pg_clients=${PG_CLIENTS_N:-4}
n_runs=48
# Rounds after the second start only within the ingest part's share of the
# 15-minute bound (the query part takes up to 8 minutes).
budget_s=200

# ---- What it needs (deploy/setup.sh installs the Debian packages) -------
need_setup=0
for t in etcd curl gnuplot python3 setpriv "$PGBIN/initdb" "$PGBIN/postgres"; do
    command -v "$t" >/dev/null 2>&1 || need_setup=1
done
pkg-config --exists libpq || need_setup=1
if [ "$need_setup" = 1 ]; then
    cmp_log "installing the peers through deploy/setup.sh"
    deploy/setup.sh >/dev/null
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DRV_WERROR=ON >/dev/null
fi
cmake --build "$build" -j2 --target runvault bench_gateway bench_peers \
    >/dev/null

# ---- Temporary dir, and the trap that stops everything -----------------
work=$(mktemp -d "${TMPDIR:-/tmp}/rvcompare-XXXXXX")
chmod 755 "$work" # PostgreSQL runs as postgres under it.
mkdir -p "$work/res" "$work/lat" "$work/tmp"
groups=() # Load generators, each in its own process group (its nodes too).
cleanup() {
    local g
    for g in "${groups[@]}"; do
        kill -TERM -- "-$g" 2>/dev/null || true
    done
    sleep 0.2
    for g in "${groups[@]}"; do
        kill -KILL -- "-$g" 2>/dev/null || true
    done
    cmp_stop_all
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -z "$out" ]; then
    if [ "$quick" = 1 ]; then out="$work/out"; else out="$root/docs/bench"; fi
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

# run_group OUT CMD...: CMD in its own process group (so the trap can stop
# it and every node it forked), stdout to OUT; its exit status.
run_group() {
    local o=$1 rc=0
    shift
    setsid "$@" >"$o" 2>>"$work/stderr.log" &
    groups+=($!)
    wait $! || rc=$?
    unset 'groups[-1]'
    return $rc
}

# CPU busy % of the whole machine over 0.5 s, taken between measurements
# (nothing of the benchmark runs then): the other load on the box.
background_busy() {
    local a b
    a=$(head -n1 /proc/stat)
    sleep 0.5
    b=$(head -n1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN {
        split(a, x); split(b, y); t = 0
        for (i = 2; i <= 9; i++) t += y[i] - x[i]
        idle = (y[5] - x[5]) + (y[6] - x[6])
        printf "%.0f", (t > 0 ? 100 * (t - idle) / t : 0) }'
}

# ---- One measurement -----------------------------------------------------
measure() {
    local sys=$1 r=$2 res="$work/res/$1.$2.json" lat="$work/lat/$1.$2.txt"
    local load busy
    load=$(cut -d' ' -f1 /proc/loadavg)
    busy=$(background_busy)
    local raw="$work/res/$sys.$r.raw" rc=0
    case "$sys" in
    native-* | http-*)
        TMPDIR="$work/tmp" run_group "$raw" "$build/bench/bench_gateway" \
            "$build/node/runvault" --only ingest --path "${sys%%-*}" \
            --durability "${sys#*-}" --clients "$rv_clients" \
            --seconds "$seconds" --warmup-ms "$warmup_ms" \
            --port-base 24100 --lat-file "$lat" || rc=$?
        ;;
    etcd)
        etcd_start "$work/etcd" || return 1
        run_group "$raw" "$build/bench/bench_peers" etcd "$ETCD_CLIENTS" \
            --clients "$etcd_clients" --runs "$n_runs" --seconds "$seconds" \
            --warmup-ms "$warmup_ms" --lat-file "$lat" || rc=$?
        etcd_stop
        rm -rf "$work/etcd"
        ;;
    postgres)
        cp -a "$work/pgtemplate" "$work/pg"
        pg_start "$work/pg" || return 1
        run_group "$raw" "$build/bench/bench_peers" postgres "$PG_CONNINFO" \
            --clients "$pg_clients" --runs "$n_runs" --seconds "$seconds" \
            --warmup-ms "$warmup_ms" --lat-file "$lat" || rc=$?
        pg_stop
        rm -rf "$work/pg" "$work/pg.log"
        ;;
    esac
    local line
    line=$(grep -m1 '^{"figure":"ingest_' "$raw" || true)
    if [ "$rc" != 0 ] || [ -z "$line" ]; then
        cmp_log "$sys round $r failed (exit $rc): ${line:-no result}"
        grep -E '^bench_(gateway|peers):|lost leadership|elected leader' \
            "$work/stderr.log" | tail -n 10 >&2 || true
        # Kept (with the reason) for the report, out of the medians.
        [ -z "$line" ] || printf '{"system":"%s","round":%d,"failed":true,"exit":%d,"result":%s}\n' \
            "$sys" "$r" "$rc" "$line" >"$work/res/$sys.$r.failed"
        : >"$work/stderr.log"
        return 1
    fi
    : >"$work/stderr.log"
    printf '{"system":"%s","round":%d,"load1_before":%s,"background_cpu_pct":%s,"result":%s}\n' \
        "$sys" "$r" "$load" "$busy" "$line" >"$res"
    cmp_log "$sys round $r: $(python3 -c 'import json,sys
d=json.loads(sys.argv[1]); print("%.0f points/s, p50 %.1f ms, p99 %.1f ms"
% (d["points_per_s"], d["p50_ms"], d["p99_ms"]))' "$line") (background CPU $busy%)"
}

# ---- Ingest, rounds alternating the systems -----------------------------
cmp_log "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
cp /proc/stat "$work/stat.before"
cat /proc/loadavg >"$work/loadavg.before"
pg_template "$work/pgtemplate" "$root/bench/compare/mlflow_schema.sql"
t_start=$(date +%s)
failed=0
done_rounds=0
for ((r = 1; r <= rounds; r++)); do
    if [ "$r" -gt 2 ] && [ $(($(date +%s) - t_start)) -gt "$budget_s" ]; then
        cmp_log "time budget reached: $done_rounds rounds"
        break
    fi
    for sys in "${systems[@]}"; do
        measure "$sys" "$r" || failed=1
    done
    done_rounds=$r
done
cp /proc/stat "$work/stat.after"
cat /proc/loadavg >"$work/loadavg.after"
cmp_log "ingest took $(($(date +%s) - t_start)) s"

# ---- Queries (bench/compare/query.sh, another part of the comparison) ---
query_rc=0
if [ -f "$root/bench/compare/query.sh" ]; then
    qflag=()
    [ "$quick" = 1 ] && qflag=(--quick)
    # In the background, so a signal reaches the trap at once.
    RUNVAULT_BUILD_DIR="$build" setsid bash "$root/bench/compare/query.sh" \
        "${qflag[@]}" --out "$work/query" &
    groups+=($!)
    wait $! || query_rc=$?
    unset 'groups[-1]'
    [ "$query_rc" = 0 ] || cmp_log "query.sh failed (exit $query_rc)"
else
    cmp_log "bench/compare/query.sh does not exist yet: query part skipped"
fi

# ---- Report ---------------------------------------------------------------
python3 "$root/bench/compare/report.py" --work "$work" --out "$out" \
    --quick "$quick" --rounds "$done_rounds" --warmup-ms "$warmup_ms" \
    --seconds "$seconds" --clients "rv=$rv_clients,etcd=$etcd_clients,pg=$pg_clients" \
    --systems "${systems[*]}"
if [ "$out" = "$work/out" ]; then
    cmp_log "results checked (a temporary dir; --out DIR keeps them)"
else
    cmp_log "results in $out (compare.json, summary.md, *.png)"
fi
[ "$failed" = 0 ] && [ "$query_rc" = 0 ]
