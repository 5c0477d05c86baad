#!/bin/sh
# A local 3-node runvault cluster on loopback.
#
#   deploy/cluster.sh start [DIR]   start nodes 1-3 (data in DIR/n1..n3,
#                                   logs in DIR/n*.log; DIR defaults to
#                                   ./runvault-cluster)
#   deploy/cluster.sh stop  [DIR]   SIGTERM every node (leadership is handed
#                                   over first) and wait for them to exit
#   deploy/cluster.sh status [DIR]  show the members as the cluster sees them
#
# Node i listens on 127.0.0.1: HTTP 74i0+, RPC 7481+10(i-1), raft
# 7482+10(i-1). RUNVAULT_BIN overrides the binary; extra serve flags go in
# RUNVAULT_FLAGS (e.g. "--durability strict").
set -eu

cmd=${1:-}
dir=${2:-./runvault-cluster}
bin=${RUNVAULT_BIN:-$(dirname "$0")/../build/node/runvault}
peers="1=127.0.0.1:7482,2=127.0.0.1:7492,3=127.0.0.1:7502"
endpoints="tcp://127.0.0.1:7481,tcp://127.0.0.1:7491,tcp://127.0.0.1:7501"

case "$cmd" in
start)
    [ -x "$bin" ] || { echo "cluster.sh: no binary at $bin (build first)" >&2; exit 1; }
    mkdir -p "$dir"
    for i in 1 2 3; do
        base=$((7480 + 10 * (i - 1)))
        if [ -f "$dir/n$i.pid" ] && kill -0 "$(cat "$dir/n$i.pid")" 2>/dev/null; then
            echo "node $i already running (pid $(cat "$dir/n$i.pid"))"
            continue
        fi
        # shellcheck disable=SC2086
        "$bin" serve --id "$i" --data-dir "$dir/n$i" --peers "$peers" \
            --http-addr "127.0.0.1:$base" --rpc-addr "tcp://127.0.0.1:$((base + 1))" \
            --raft-addr "127.0.0.1:$((base + 2))" ${RUNVAULT_FLAGS:-} \
            >>"$dir/n$i.log" 2>&1 &
        echo $! >"$dir/n$i.pid"
        echo "node $i: pid $!, rpc tcp://127.0.0.1:$((base + 1)), log $dir/n$i.log"
    done
    # Wait (bounded) for a leader.
    for _ in $(seq 1 50); do
        if "$bin" cluster status --endpoint "$endpoints" --timeout-ms 1000 \
            2>/dev/null | grep -q ' leader '; then
            "$bin" cluster status --endpoint "$endpoints"
            exit 0
        fi
        sleep 0.2
    done
    echo "cluster.sh: no leader after 10 s; see $dir/n*.log" >&2
    exit 1
    ;;
stop)
    for i in 1 2 3; do
        [ -f "$dir/n$i.pid" ] || continue
        pid=$(cat "$dir/n$i.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "node $i did not stop in 10 s: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/n$i.pid"
        echo "node $i stopped"
    done
    ;;
status)
    exec "$bin" cluster status --endpoint "$endpoints"
    ;;
*)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 1
    ;;
esac
