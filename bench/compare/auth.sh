#!/usr/bin/env bash
# What authentication costs (issue 13, docs/BENCHMARKS.md "What auth
# costs"): the same work with --auth off and --auth on, side by side in one
# run.
#
# usage: bench/compare/auth.sh [--quick] [--rounds N] [--runs N]
#        [--tls DIR] --out DIR
#
# Ingest, in alternating rounds (off, on, off, on, ...; 3 rounds, --quick
# 1), each on a fresh 3-node cluster (durability buffered):
#   native  bench_cluster --only ingest --mode buffered --auth off|on
#           (best of its 3 client configurations; with auth on every
#           request carries a writer token of team t0 in Request.token);
#   http    bench_gateway --only ingest --path http --auth off|on (48
#           clients, 2 s warm-up + 4 s; Authorization: Bearer with the
#           same kind of token).
# Queries: two 3-node clusters started here (one --auth off, one --auth
#   on) on 127.0.0.1 ports checked free in 26000-26999, loaded with the
#   same runs (200,000 in full mode, 20,000 with --quick; --runs N; in 4
#   chunks alternating between the two, each timed: run creation) over 10
#   teams t0..t9, plus one 1M-point series (100k quick) in t0; then
#   cmp_query times the ten query shapes and the history as team t0, in
#   pairs alternating off/on: auth off names team t0 in ListRunsRequest,
#   auth on queries through a reader token of t0 (the node scopes it);
#   each pair must return the same runs. Native RPC. Full mode: up to 200
#   pairs a shape in a 360 s query phase (the dearest shapes stop early,
#   as in query.sh), 60 history pairs; about 10 minutes in all.
# Targets: auth on costs at most 10% of ingest points/s (per path, median
# of the rounds' on/off ratios) and of every query's p99.
# Writes DIR/auth.json and DIR/auth.md (plus the tools' raw output).
# --tls DIR (DIR as deploy/make-certs.sh writes it): the "on" side is auth
# on AND TLS on, against both off. Ingest: both paths through bench_gateway
# (--path native|http; the on rounds with --tls-ca DIR/ca.crt: https,
# tls+tcp:// and the TLS raft transport); queries: node I of the auth-on
# cluster serves with --tls-cert DIR/nI.crt --tls-key DIR/nI.key
# --tls-ca DIR/ca.crt (tls+tcp:// and TLS between peers), and cmp_query
# dials it with --tls-ca DIR/ca.crt. The auth-off cluster stays plain.
# Build dir: $RUNVAULT_BUILD_DIR (default build). Every process started
# is stopped and the temporary dir removed on any exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${RUNVAULT_BUILD_DIR:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
quick=0 rounds="" runs="" out="" tls=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --rounds | --runs | --out | --tls)
        [ $# -ge 2 ] || { echo "auth.sh: $1 needs a value" >&2; exit 2; }
        case "$1" in
        --rounds) rounds=$2 ;;
        --runs) runs=$2 ;;
        --out) out=$2 ;;
        --tls) tls=$2 ;;
        esac
        shift
        ;;
    *)
        sed -n '6,39p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
    esac
    shift
done
[ -n "$out" ] || { echo "usage: auth.sh [--quick] --out DIR" >&2; exit 2; }
if [ "$quick" = 1 ]; then
    rounds=${rounds:-1} runs=${runs:-20000} reps=10 hist=100000 budget=45
    cl_flags=(--quick) gw_flags=(--clients 8 --warmup-ms 500 --seconds 2)
else
    rounds=${rounds:-3} runs=${runs:-200000} reps=200 hist=1000000
    budget=360 cl_flags=() gw_flags=(--clients 48 --warmup-ms 2000 --seconds 4)
fi
for v in "$rounds" "$runs"; do
    case "$v" in '' | *[!0-9]* | 0) echo "auth.sh: bad number $v" >&2; exit 2 ;; esac
done
[ "$rounds" -le 10 ] || { echo "auth.sh: at most 10 rounds" >&2; exit 2; }
if [ -n "$tls" ]; then
    for f in ca.crt n1.crt n1.key n2.crt n2.key n3.crt n3.key; do
        [ -r "$tls/$f" ] || { echo "auth.sh: no $tls/$f" >&2; exit 2; }
    done
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

log() { printf '[auth %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- Build (the four programs only) -----------------------------------------
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DRV_WERROR=ON >/dev/null
fi
cmake --build "$build" -j2 --target runvault bench_cluster bench_gateway \
    cmp_query >/dev/null
bin="$build/node/runvault"
for p in "$bin" "$build/bench/bench_cluster" "$build/bench/bench_gateway" \
    "$build/bench/cmp_query"; do
    [ -x "$p" ] || { echo "auth.sh: build failed ($p)" >&2; exit 1; }
done

# ---- Cleanup on every exit ------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rvauth.XXXXXX")
pids=()
child=
# shellcheck disable=SC2317 # Called by the trap.
cleanup() {
    local rc=$? p i
    trap - EXIT INT TERM
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for ((i = 0; i < 100; i++)); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ "$rc" != 0 ]; then
        for f in "$tmp"/*/n*.log; do
            [ -f "$f" ] || continue
            echo "---- $f (tail)" >&2
            tail -n 10 "$f" >&2
        done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_bounded SECONDS CMD...: CMD in the background (killable by the trap),
# its status.
run_bounded() {
    local s=$1 rc=0
    shift
    timeout --kill-after=10 "$s" "$@" &
    child=$!
    wait "$child" || rc=$?
    child=
    return "$rc"
}

# gateway_ingest PATH: one bench_gateway ingest over PATH (native|http) with
# auth $mode (and ${gw_tls[@]}), its figure appended to ingest_raw.jsonl.
gateway_ingest() {
    run_bounded 300 "$build/bench/bench_gateway" "$bin" --only ingest \
        --path "$1" --auth "$mode" "${gw_tls[@]}" "${gw_flags[@]}" \
        >"$tmp/gateway.out" 2>"$tmp/gateway.err" ||
        { tail -n 20 "$tmp/gateway.err" >&2; exit 1; }
    python3 - "$tmp/gateway.out" "$r" "$mode" "$1" \
        >>"$out/ingest_raw.jsonl" <<'EOF'
import json, sys
r, mode, path = int(sys.argv[2]), sys.argv[3], sys.argv[4]
for line in open(sys.argv[1]):
    if line.startswith("{"):
        d = json.loads(line)
        if not d.get("figure", "").startswith("ingest_" + path):
            continue
        row = {"round": r, "auth": mode, "path": path}
        if "skipped" in d:
            row["skipped"] = d["skipped"]
        else:
            row.update(points_per_s=d["points_per_s"], p50_ms=d["p50_ms"],
                       p99_ms=d["p99_ms"])
        print(json.dumps(row))
        sys.exit(0)
sys.exit("auth.sh: bench_gateway gave no ingest_%s figure" % path)
EOF
}

# ---- Ingest: alternating rounds ---------------------------------------------
: >"$out/ingest_raw.jsonl"
for ((r = 1; r <= rounds; r++)); do
    for mode in off on; do
        gw_tls=()
        [ -z "$tls" ] || [ "$mode" = off ] || gw_tls=(--tls-ca "$tls/ca.crt")
        if [ -n "$tls" ]; then
            log "round $r/$rounds, auth $mode: native ingest (bench_gateway)"
            gateway_ingest native
        else
            log "round $r/$rounds, auth $mode: native ingest (bench_cluster)"
            run_bounded 300 "$build/bench/bench_cluster" "$bin" --only ingest \
                --mode buffered --auth "$mode" "${cl_flags[@]}" \
                >"$tmp/cluster.out" 2>"$tmp/cluster.err" ||
                { tail -n 20 "$tmp/cluster.err" >&2; exit 1; }
            python3 - "$tmp/cluster.out" "$r" "$mode" native \
                >>"$out/ingest_raw.jsonl" <<'EOF'
import json, sys
r, mode, path = int(sys.argv[2]), sys.argv[3], sys.argv[4]
fig = {}
for line in open(sys.argv[1]):
    if line.startswith("{"):
        d = json.loads(line)
        fig[d["figure"]] = d["value"]
pps = fig.get("ingest_buffered_points_per_s", 0)
if pps <= 0:
    sys.exit("auth.sh: bench_cluster gave no points/s")
print(json.dumps({"round": r, "auth": mode, "path": path,
                  "points_per_s": pps,
                  "p50_ms": fig.get("ingest_buffered_ack_p50_ms"),
                  "p99_ms": fig.get("ingest_buffered_ack_p99_ms")}))
EOF
        fi
        log "round $r/$rounds, auth $mode: HTTP ingest (bench_gateway)"
        gateway_ingest http
    done
done

# ---- Queries: one cluster per mode ------------------------------------------
port_free() {
    ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}
# Two clusters x 3 nodes x (http, rpc, raft): base + 10 i + {0,1,2}, i < 6.
base=
for try in $(seq 0 19); do
    cand=$((26000 + ((($$ + try * 7) % 90) * 10)))
    ok=1
    for i in 0 1 2 3 4 5; do
        for k in 0 1 2; do
            port_free $((cand + 10 * i + k)) || { ok=0; break 2; }
        done
    done
    if [ "$ok" = 1 ]; then base=$cand; break; fi
done
[ -n "$base" ] || { echo "auth.sh: no free ports in 26000-26999" >&2; exit 1; }

# start_cluster NAME FIRST AUTH: nodes FIRST..FIRST+2 (port blocks) under
# $tmp/NAME, the serve flags of the test fixture plus --auth AUTH (and the
# TLS flags with --tls and AUTH on); the RPC endpoint list into $eps (not a subshell:
# the pids go to the cleanup's list).
start_cluster() {
    local name=$1 first=$2 auth=$3 i peers="" scheme=tcp
    # With --tls the auth-on side also runs TLS; the auth-off side is plain.
    local use_tls=""
    [ -z "$tls" ] || [ "$auth" = off ] || { use_tls=1 scheme="tls+tcp"; }
    eps=""
    for i in 0 1 2; do
        peers+="${peers:+,}$((i + 1))=127.0.0.1:$((base + 10 * (first + i) + 2))"
        eps+="${eps:+,}$scheme://127.0.0.1:$((base + 10 * (first + i) + 1))"
    done
    mkdir -p "$tmp/$name"
    for i in 0 1 2; do
        local p=$((base + 10 * (first + i))) extra=(--auth "$auth")
        [ -z "$use_tls" ] || extra+=(--tls-cert "$tls/n$((i + 1)).crt"
            --tls-key "$tls/n$((i + 1)).key" --tls-ca "$tls/ca.crt")
        "$bin" serve --id $((i + 1)) --data-dir "$tmp/$name/n$((i + 1))" \
            --raft-addr "127.0.0.1:$((p + 2))" \
            --rpc-addr "$scheme://127.0.0.1:$((p + 1))" \
            --http-addr "127.0.0.1:$p" --peers "$peers" "${extra[@]}" \
            >"$tmp/$name/n$((i + 1)).log" 2>&1 &
        pids+=($!)
    done
}

log "queries: $runs runs over 10 teams, ports $base-$((base + 52))"
start_cluster off 0 off
off_eps=$eps
start_cluster on 3 on
on_eps=$eps
# The first leader of the auth-on cluster writes the cluster-admin token.
admin=
for ((i = 0; i < 300; i++)); do
    for f in "$tmp"/on/n*/admin.token; do
        [ -s "$f" ] && admin=$f
    done
    [ -z "$admin" ] || break
    sleep 0.1
done
[ -n "$admin" ] || { echo "auth.sh: no admin.token after 30 s" >&2; exit 1; }
tls_flags=()
[ -z "$tls" ] || tls_flags=(--tls-ca "$tls/ca.crt")
run_bounded $((budget + 900)) "$build/bench/cmp_query" --rpc "$off_eps" \
    --rpc-auth "$on_eps" --token-file "$admin" --teams 10 --as-team t0 \
    --runs "$runs" --reps "$reps" --history-points "$hist" \
    --budget-s "$budget" --out "$out" "${tls_flags[@]}" \
    >"$out/cmp_query.out" 2>"$out/cmp_query.err" ||
    { tail -n 20 "$out/cmp_query.err" >&2; exit 1; }
cat "$out/cmp_query.out" >&2

# ---- auth.json and auth.md (bench/compare/auth_report.py) -----------------
python3 "$root/bench/compare/auth_report.py" "$out" "$rounds" \
    "$([ "$quick" = 1 ] && echo quick || echo full)" "${tls:+1}"
