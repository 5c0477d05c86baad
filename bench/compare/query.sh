#!/usr/bin/env bash
# Query comparison: runvault against PostgreSQL 15 holding MLflow's tracking
# schema, on the same run set (bench/compare/QUERY_NOTES.md).
#
# usage: bench/compare/query.sh [--quick] --out DIR
#
# Starts a 3-node runvault cluster (default settings, durability buffered)
# and a throw-away PostgreSQL 15 cluster (initdb in a temporary dir, run as
# the postgres user), both on 127.0.0.1 ports 25000-25999; then
# build/bench/cmp_query loads the same runs into both (runvault through its
# native RPC write path, PostgreSQL with COPY), times ten first-page
# queries and a downsampled history in alternating pairs, checks that both
# return the same runs, and writes DIR/query.json,
# DIR/query_cdf_runvault.dat, DIR/query_cdf_postgres.dat,
# DIR/query_plans.txt and DIR/postgres.conf. --quick: 20,000 runs, 10
# pairs per query, a 100,000-point series, a 45 s query phase (under 2
# minutes); full: 1M runs, up to 200 pairs per query, 1M points, a 210 s
# query phase (about 6 minutes when loading runs at ~12k runs/s; loading
# is slower when other work shares the 2 vCPUs). Build dir:
# $RUNVAULT_BUILD_DIR (default build). Every process is stopped and the
# temporary dir removed on any exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${RUNVAULT_BUILD_DIR:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
pgbin=${PG_BIN:-/usr/lib/postgresql/15/bin}
quick=0
out=
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --out)
        [ $# -ge 2 ] || { echo "query.sh: --out needs a dir" >&2; exit 2; }
        out=$2
        shift
        ;;
    *)
        sed -n '4,19p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
    esac
    shift
done
[ -n "$out" ] || { echo "usage: query.sh [--quick] --out DIR" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ "$quick" = 1 ]; then
    runs=20000 reps=10 hist=100000 budget=45
else
    runs=1000000 reps=200 hist=1000000 budget=210
fi
# For trying things out only; the figures use the defaults above.
runs=${QUERY_RUNS:-$runs}
reps=${QUERY_REPS:-$reps}

# ---- Build (the two programs only) -------------------------------------
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DRV_WERROR=ON >/dev/null
fi
cmake --build "$build" -j2 --target runvault cmp_query >/dev/null
bin="$build/node/runvault"
cmp="$build/bench/cmp_query"
if [ ! -x "$bin" ] || [ ! -x "$cmp" ]; then
    echo "query.sh: build failed" >&2
    exit 1
fi
[ -x "$pgbin/postgres" ] || { echo "query.sh: no PostgreSQL at $pgbin" >&2; exit 1; }

# ---- Cleanup on every exit ------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rvcmp-query.XXXXXX")
fixture="$root/tests/lib/rvfixture.py"
rv_started=0
cmp_pid=
pg_started=0
as_pg=()
if [ "$(id -u)" = 0 ]; then
    as_pg=(runuser -u postgres --)
fi
# shellcheck disable=SC2317 # Called by the trap.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$cmp_pid" ] && kill -0 "$cmp_pid" 2>/dev/null; then
        kill -TERM "$cmp_pid" 2>/dev/null || true
        wait "$cmp_pid" 2>/dev/null || true
    fi
    if [ "$rv_started" = 1 ]; then
        python3 "$fixture" stop "$tmp/rv" --n 3 >/dev/null || true
    fi
    if [ "$pg_started" = 1 ]; then
        "${as_pg[@]}" "$pgbin/pg_ctl" -D "$tmp/pg/data" -m immediate -w \
            -t 30 stop >/dev/null 2>&1 || true
    fi
    if [ "$rc" != 0 ]; then
        for f in "$tmp"/rv/n*.log "$tmp/pg/log"; do
            [ -f "$f" ] || continue
            echo "---- $f (tail)" >&2
            tail -n 15 "$f" >&2
        done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- Ports: 3 nodes x (http, rpc, raft) + PostgreSQL, in 25000-25999 ------
port_free() {
    ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}
base=
for try in $(seq 0 19); do
    cand=$((25000 + ((($$ + try * 7) % 90) * 10)))
    ok=1
    for p in $cand $((cand + 1)) $((cand + 2)) $((cand + 10)) $((cand + 11)) \
        $((cand + 12)) $((cand + 20)) $((cand + 21)) $((cand + 22)) \
        $((cand + 30)); do
        port_free "$p" || { ok=0; break; }
    done
    if [ "$ok" = 1 ]; then base=$cand; break; fi
done
[ -n "$base" ] || { echo "query.sh: no free ports in 25000-25999" >&2; exit 1; }
pgport=$((base + 30))

# ---- PostgreSQL 15 --------------------------------------------------------
# Settings after the PostgreSQL documentation: shared_buffers about 25% of
# RAM (runtime-config-resource: "a reasonable starting value ... is 25% of
# the memory"), capped at 6 GiB on this shared machine; effective_cache_size
# half the RAM; maintenance_work_mem and max_wal_size raised for the bulk
# load (populate.html); synchronous_commit and fsync on (defaults).
mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
sb_mb=$((mem_kb / 4 / 1024))
[ "$sb_mb" -le 6144 ] || sb_mb=6144
ec_mb=$((mem_kb / 2 / 1024))
mkdir -p "$tmp/pg" "$tmp/rv"
chmod 755 "$tmp"
if [ "$(id -u)" = 0 ]; then chown postgres "$tmp/pg"; fi
"${as_pg[@]}" "$pgbin/initdb" -D "$tmp/pg/data" --locale=C -E UTF8 \
    --auth=trust -U postgres >"$out/postgres_initdb.log" 2>&1 ||
    { cat "$out/postgres_initdb.log" >&2; exit 1; }
cat >"$out/postgres.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = '$tmp/pg'
shared_buffers = ${sb_mb}MB
effective_cache_size = ${ec_mb}MB
work_mem = 64MB
maintenance_work_mem = 1GB
max_wal_size = 8GB
random_page_cost = 1.1
synchronous_commit = on
fsync = on
EOF
cat "$out/postgres.conf" >>"$tmp/pg/data/postgresql.conf"
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/log" -w -t 60 \
    start >/dev/null
pg_started=1
conninfo="host=127.0.0.1 port=$pgport user=postgres dbname=postgres"

# ---- runvault, 3 voters -----------------------------------------------------
# Started by the test fixture (tests/lib/rvfixture.py): node i on
# base+10(i-1) (HTTP), +1 (RPC), +2 (raft); it returns once the leader
# serves writes (30 s at most).
rpc="tcp://127.0.0.1:$((base + 1)),tcp://127.0.0.1:$((base + 11)),tcp://127.0.0.1:$((base + 21))"
http="127.0.0.1:$base,127.0.0.1:$((base + 10)),127.0.0.1:$((base + 20))"
rv_started=1
python3 "$fixture" start "$tmp/rv" --n 3 --port-base "$base" --bin "$bin" \
    --timeout 30 >/dev/null ||
    { echo "query.sh: runvault has no leader after 30 s" >&2; exit 1; }

# ---- The measurement ------------------------------------------------------
echo "query.sh: $runs runs, $reps pairs per query, ports $base-$pgport," \
    "shared_buffers ${sb_mb}MB" >&2
timeout --kill-after=10 $((budget + 900)) "$cmp" --http "$http" --rpc "$rpc" \
    --pg "$conninfo" --out "$out" --runs "$runs" --reps "$reps" \
    --history-points "$hist" --budget-s "$budget" &
cmp_pid=$!
rc=0
wait "$cmp_pid" || rc=$?
cmp_pid=
exit "$rc"
