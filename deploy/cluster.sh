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
# RUNVAULT_FLAGS (e.g. "--durability strict"); RUNVAULT_PORT_BASE moves
# every port (default 7480). RUNVAULT_TLS_DIR=CERTS (made by
# deploy/make-certs.sh CERTS) serves https, tls+tcp:// RPC and mutually
# authenticated raft, node i with CERTS/ni.crt. Nodes are started, waited
# for and stopped by the test fixture (tests/lib/rvfixture.py, python3).
set -eu

cmd=${1:-}
dir=${2:-./runvault-cluster}
root=$(dirname "$0")/..
bin=${RUNVAULT_BIN:-$root/build/node/runvault}
fixture="$root/tests/lib/rvfixture.py"
base=${RUNVAULT_PORT_BASE:-7480}
endpoints="tcp://127.0.0.1:$((base + 1)),tcp://127.0.0.1:$((base + 11)),tcp://127.0.0.1:$((base + 21))"
tls_dir=${RUNVAULT_TLS_DIR:-}
tls_arg= ca_arg=
if [ -n "$tls_dir" ]; then
    endpoints=$(echo "$endpoints" | sed 's|tcp://|tls+tcp://|g')
    tls_arg="--tls-dir=$tls_dir"
    ca_arg="--tls-ca=$tls_dir/ca.crt"
fi

case "$cmd" in
start)
    [ -x "$bin" ] || { echo "cluster.sh: no binary at $bin (build first)" >&2; exit 1; }
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    python3 "$fixture" start "$dir" --n 3 --port-base "$base" --bin "$bin" \
        ${tls_arg} -- ${RUNVAULT_FLAGS:-} ||
        { echo "cluster.sh: no leader after 30 s; see $dir/n*.log" >&2; exit 1; }
    exec "$bin" cluster status --endpoint "$endpoints" ${ca_arg}
    ;;
stop)
    exec python3 "$fixture" stop "$dir" --n 3
    ;;
status)
    # shellcheck disable=SC2086
    exec "$bin" cluster status --endpoint "$endpoints" ${ca_arg}
    ;;
*)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 1
    ;;
esac
