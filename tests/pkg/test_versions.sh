#!/usr/bin/env bash
# A real node refuses a data dir a newer runvault wrote:
#   tests/pkg/test_versions.sh RUNVAULT_BINARY
# serve on free loopback ports, one run written, clean stop; then the vlog
# segment's header version raised to 2: serve exits 13 (RV_EXIT_VERSION)
# naming the segment, and the segment is left byte for byte; version put
# back, the node serves the run again.
set -euo pipefail
bin=$(realpath "$1")
fail() { echo "test_versions: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/runvault-versions-XXXXXX")
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$work"' EXIT
read -r p_http p_rpc p_raft < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
serve() {
    "$bin" serve --data-dir "$work/data" --http-addr "127.0.0.1:$p_http" \
        --rpc-addr "tcp://127.0.0.1:$p_rpc" --raft-addr "127.0.0.1:$p_raft" \
        >>"$work/node.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$p_http/readyz" >/dev/null 2>&1 && return
        kill -0 "$pid" 2>/dev/null || { cat "$work/node.log"; fail "node exited"; }
        sleep 0.1
    done
    fail "node not ready"
}
stop() { kill -TERM "$pid"; wait "$pid" || fail "stop: exit $?"; pid=; }
serve
curl -fsS -X POST "http://127.0.0.1:$p_http/api/v2/runs" \
    -H 'Content-Type: application/json' \
    -d '{"project":"p","experiment":"e","name":"n","run_id":"v1"}' >/dev/null ||
    fail "create run"
stop
seg=$(ls "$work"/data/vlog/*.seg | tail -n 1)
sum=$(sha256sum <"$seg")
printf '\0\0\0\2' | dd of="$seg" bs=1 seek=8 conv=notrunc status=none
sum2=$(sha256sum <"$seg")
rc=0
timeout 60 "$bin" serve --data-dir "$work/data" --http-addr "127.0.0.1:$p_http" \
    --rpc-addr "tcp://127.0.0.1:$p_rpc" --raft-addr "127.0.0.1:$p_raft" \
    >"$work/refused.log" 2>&1 || rc=$?
[ "$rc" = 13 ] || { cat "$work/refused.log"; fail "exit $rc, not 13"; }
grep -q "$(basename "$seg"): segment format version 2" "$work/refused.log" ||
    { cat "$work/refused.log"; fail "the message does not name the segment"; }
[ "$(sha256sum <"$seg")" = "$sum2" ] || fail "the refused segment was changed"
printf '\0\0\0\1' | dd of="$seg" bs=1 seek=8 conv=notrunc status=none
[ "$(sha256sum <"$seg")" = "$sum" ] || fail "restore the header"
serve
curl -fsS "http://127.0.0.1:$p_http/api/v2/runs/v1" | grep -q '"run_id":"v1"' ||
    fail "the run is not served after the header was put back"
stop
echo "test_versions: OK: exit 13 naming the segment, nothing changed"
