#!/usr/bin/env bash
# Rolling upgrade of a 3-node cluster under writes, one node at a time:
#   tests/pkg/test_upgrade.sh NEW_BINARY [PREV_REF]   (PREV_REF: main)
# Builds PREV_REF's runvault (git archive into a temp dir, ~30 s), starts
# 3 nodes of it on free loopback ports, writes runs through HTTP (any
# node) while nodes 2, 3, 1 are each stopped (SIGTERM) and restarted on
# NEW_BINARY; then every acknowledged run must be read linearizably and
# the three nodes must show one applied index and one digest, not
# diverged. RUNVAULT_UPGRADE_REVERSE=1 runs the order the other way
# (NEW first, replaced by PREV). Bounded: at most 3000 writes, 60 s per
# node start.
set -euo pipefail
new=$(realpath "$1")
ref=${2:-main}
src=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "test_upgrade: FAIL: $*" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/runvault-upgrade-XXXXXX")
declare -A P=()
cleanup() {
    for p in "${P[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/prev"
git -C "$src" archive "$ref" | tar -x -C "$W/prev"
cmake -S "$W/prev" -B "$W/prev/b" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DRV_TESTS=OFF >/dev/null 2>&1 ||
    cmake -S "$W/prev" -B "$W/prev/b" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$W/prev/b" -j2 --target runvault >/dev/null
old=$W/prev/b/node/runvault
if [ "${RUNVAULT_UPGRADE_REVERSE:-0}" = 1 ]; then t=$old; old=$new; new=$t; fi
mapfile -t ports < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(9)]
for s in ss: s.bind(("127.0.0.1", 0))
for s in ss: print(s.getsockname()[1])')
http() { echo "127.0.0.1:${ports[$((($1 - 1) * 3))]}"; }
peers="1=127.0.0.1:${ports[2]},2=127.0.0.1:${ports[5]},3=127.0.0.1:${ports[8]}"
start() {
    local i=$1 bin=$2 o=$((($1 - 1) * 3))
    "$bin" serve --id "$i" --data-dir "$W/n$i" --http-addr "$(http "$i")" \
        --rpc-addr "tcp://127.0.0.1:${ports[$((o + 1))]}" \
        --raft-addr "127.0.0.1:${ports[$((o + 2))]}" --peers "$peers" \
        >>"$W/n$i.log" 2>&1 &
    P[$i]=$!
}
ready() {
    for _ in $(seq 600); do
        curl -fsS "http://$(http "$1")/readyz" >/dev/null 2>&1 && return
        kill -0 "${P[$1]}" 2>/dev/null || { cat "$W/n$1.log"; fail "node $1 exited"; }
        sleep 0.1
    done
    fail "node $1 not ready in 60 s"
}
for i in 1 2 3; do start "$i" "$old"; done
for i in 1 2 3; do ready "$i"; done
term0=$(curl -fsS "http://$(http 1)/api/v2/cluster" | python3 -c '
import json, sys
print(max(n.get("term", 0) for n in json.load(sys.stdin)["nodes"]))')
: >"$W/acked"
(
    n=0
    while [ ! -e "$W/stop" ] && [ "$n" -lt 3000 ]; do
        n=$((n + 1))
        for i in 1 2 3; do
            if curl -fsS -m 3 -X POST "http://$(http "$i")/api/v2/runs" \
                -H 'Content-Type: application/json' \
                -d "{\"project\":\"u\",\"experiment\":\"e\",\"name\":\"n\",\"run_id\":\"w$n\"}" \
                >/dev/null 2>&1; then
                echo "w$n" >>"$W/acked"
                break
            fi
        done
    done
) &
writer=$!
sleep 2
for i in 2 3 1; do
    kill -TERM "${P[$i]}"
    rc=0
    wait "${P[$i]}" || rc=$?
    [ "$rc" = 0 ] || fail "node $i: exit $rc on SIGTERM"
    start "$i" "$new"
    ready "$i"
    sleep 2
done
touch "$W/stop"
wait "$writer"
n_acked=$(wc -l <"$W/acked")
[ "$n_acked" -ge 50 ] || fail "only $n_acked writes acknowledged"
missing=0
while read -r r; do
    curl -fsS "http://$(http 1)/api/v2/runs/$r?consistency=linearizable" \
        >/dev/null 2>&1 || missing=$((missing + 1))
done <"$W/acked"
[ "$missing" = 0 ] || fail "$missing of $n_acked acknowledged runs missing"
for _ in $(seq 50); do
    state=$(curl -fsS "http://$(http 1)/api/v2/cluster" | python3 -c '
import json, sys
d = json.load(sys.stdin)["nodes"]
print(len(d), len({(n.get("applied_index"), n.get("digest")) for n in d}),
      any(n.get("diverged", True) for n in d),
      max(n.get("term", 0) for n in d), d[0].get("applied_index"))')
    read -r n_nodes n_views diverged term applied <<<"$state"
    [ "$n_nodes" = 3 ] && [ "$n_views" = 1 ] && break
    sleep 0.2
done
[ "$n_nodes" = 3 ] && [ "$n_views" = 1 ] ||
    fail "nodes differ: $n_views (applied index, digest) views of $n_nodes"
[ "$diverged" = False ] || fail "a node reports divergence"
# Each node stopped adds at most one election.
[ "$term" -le $((term0 + 3)) ] ||
    fail "term $term0 -> $term: more than one election per node"
echo "test_upgrade: OK: $n_acked writes acknowledged, 0 lost; 3 nodes at" \
    "index $applied, one digest, term $term0 -> $term"
for i in 1 2 3; do kill -TERM "${P[$i]}"; done
for i in 1 2 3; do wait "${P[$i]}" || true; done
P=()
