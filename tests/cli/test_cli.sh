#!/usr/bin/env bash
# The runvault binary's maintenance commands (demo, verify, rebuild-index)
# and their exit codes on healthy, corrupt and missing data; `serve` with
# its settings (flags, config file, RUNVAULT_* variables), the data-dir
# lock, `cluster status`, and a clean stop on SIGTERM.
# usage: test_cli.sh PATH/TO/runvault
set -u
rv=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/rvcli-XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
passed=0
failed=0

expect() { # expect CODE DESCRIPTION -- command...
    local want=$1 what=$2
    shift 3
    "$@" >"$dir/out" 2>&1
    local got=$?
    if [ "$got" -eq "$want" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $what: exit $got, want $want"
        sed 's/^/    /' "$dir/out"
    fi
}

expect_out() { # expect_out PATTERN DESCRIPTION
    if grep -q "$1" "$dir/out"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $2: output lacks '$1'"
        sed 's/^/    /' "$dir/out"
    fi
}

data="$dir/data"
expect 0 "demo ingests, queries and verifies" -- "$rv" demo --data-dir "$data"
expect_out "verify: OK" "demo ends with a clean verify"
expect_out "demo-run-5" "demo query lists runs"
expect 0 "verify of a healthy store" -- "$rv" verify --data-dir "$data"
expect 0 "rebuild-index reaches the same digest" -- \
    "$rv" rebuild-index --data-dir "$data"
expect_out "digest equals" "rebuild-index reports equal digests"
expect 0 "the demo again reuses the data" -- "$rv" demo --data-dir "$data"
expect 1 "unknown command" -- "$rv" frobnicate
expect 1 "an unknown command's --help is no help" -- "$rv" frobnicate --help
expect_out "unknown command 'frobnicate'" "the error names the command"
expect 1 "missing flag value" -- "$rv" verify --data-dir
expect 1 "no command" -- "$rv"

# A flipped byte in the middle of the only segment (valid records follow).
seg="$data/vlog/00000001.seg"
size=$(stat -c %s "$seg")
off=$((size / 2))
byte=$(od -An -tu1 -j "$off" -N1 "$seg" | tr -d ' ')
printf "$(printf '\\%03o' $(( (byte ^ 0x40) & 255 )))" |
    dd of="$seg" bs=1 seek="$off" conv=notrunc status=none
expect 2 "verify refuses a corrupt vlog" -- "$rv" verify --data-dir "$data"
expect_out "00000001.seg" "the error names the segment"
expect 2 "rebuild-index refuses a corrupt vlog" -- \
    "$rv" rebuild-index --data-dir "$data"

# An index whose digest was tampered with (the vlog restored).
printf "$(printf '\\%03o' "$byte")" |
    dd of="$seg" bs=1 seek="$off" conv=notrunc status=none
expect 0 "verify after restoring the byte" -- "$rv" verify --data-dir "$data"
expect_out "applied index:   18" "the refused rebuild left the index alone"

# ---- serve ----------------------------------------------------------------
# Three free ports (HTTP, RPC, raft) below the ephemeral range: the node
# never uses the default ports 7480-7482, which a developer's own node may
# hold. The defaults are checked in what `serve --help` prints instead.
port_free() { ! ss -Htan "( sport = :$1 )" 2>/dev/null | grep -q .; }
port=0
for _ in $(seq 1 50); do
    b=$((20000 + (RANDOM % 4000) * 3))
    if port_free "$b" && port_free $((b + 1)) && port_free $((b + 2)); then
        port=$b
        break
    fi
done
[ $port -ne 0 ] || { echo "no free ports"; exit 1; }
expect 0 "serve --help" -- "$rv" serve --help
expect_out "^  --http-addr .*default 127\.0\.0\.1:7480" "the default HTTP address"
expect_out "^  --rpc-addr .*default tcp://127\.0\.0\.1:7481" "the default RPC address"
expect_out "^  --raft-addr .*default 127\.0\.0\.1:7482" "the default raft address"
expect_out "^  --data-dir .*default \./runvault-data" "the default data dir"
sdata="$dir/node"
expect 1 "serve rejects an unknown flag" -- "$rv" serve --frob 1
expect 1 "serve rejects a bad durability" -- \
    "$rv" serve --data-dir "$sdata" --durability sometimes
expect 1 "serve rejects a heartbeat above a fifth of the election" -- \
    "$rv" serve --data-dir "$sdata" --election-ms 100 --heartbeat-ms 50 \
    --raft-addr "127.0.0.1:$((port + 2))" --rpc-addr "tcp://127.0.0.1:$((port + 1))"
expect 1 "serve rejects malformed peers" -- \
    "$rv" serve --data-dir "$sdata" --peers "1=127.0.0.1:1,x"
expect 1 "serve rejects peers without this node" -- \
    "$rv" serve --data-dir "$sdata" --id 4 --peers "1=127.0.0.1:1,2=127.0.0.1:2"
printf 'bogus-key = 1\n' >"$dir/bad.conf"
expect 1 "serve rejects an unknown config key" -- \
    "$rv" serve --config "$dir/bad.conf"
expect_out "bad.conf:1: unknown key" "the error names the file and line"

# A config file sets the addresses; RUNVAULT_DURABILITY overrides its
# durability; a flag overrides the variable's log level.
cat >"$dir/node.conf" <<CONF
# a single node
data-dir = $sdata
http-addr = 127.0.0.1:$port
rpc-addr = tcp://127.0.0.1:$((port + 1))
raft-addr = 127.0.0.1:$((port + 2))
durability = memory
log-level = debug
CONF
RUNVAULT_DURABILITY=strict RUNVAULT_LOG_LEVEL=warn \
    "$rv" serve --config "$dir/node.conf" --log-level info 2>"$dir/serve.log" &
spid=$!
pids+=("$spid")
ok=0
for _ in $(seq 1 50); do
    if "$rv" cluster status --endpoint "tcp://127.0.0.1:$((port + 1))" \
        --timeout-ms 500 >"$dir/out" 2>&1 && grep -q " leader " "$dir/out"; then
        ok=1
        break
    fi
    sleep 0.2
done
if [ $ok -eq 1 ]; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: a single node serves"; cat "$dir/serve.log"; fi
expect 7 "a second process on the same data dir is refused" -- \
    "$rv" serve --config "$dir/node.conf"
expect_out "in use by another runvault process" "the lock error says why"
grep -q "durability strict" "$dir/serve.log" && grep -q " INFO " "$dir/serve.log" &&
    ! grep -q " DEBUG " "$dir/serve.log"
if [ $? -eq 0 ]; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: settings precedence (file < env < flags)"
    cat "$dir/serve.log"; fi
kill -TERM "$spid"
wait "$spid"
code=$?
if [ $code -eq 0 ]; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: SIGTERM: exit $code, want 0"; cat "$dir/serve.log"; fi
expect 9 "cluster status with nobody listening" -- \
    "$rv" cluster status --endpoint "tcp://127.0.0.1:$((port + 1))" --timeout-ms 300
expect 1 "cluster add without an id" -- "$rv" cluster add --raft-addr 127.0.0.1:1

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
