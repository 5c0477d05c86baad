#!/usr/bin/env bash
# The client commands of the runvault binary against real nodes on
# loopback (a 3-node source cluster and a single-node import target):
# ingest a small JSONL, golden outputs of ls (table and --json), show,
# metrics --csv (NaN included) and logs, http:// endpoints, export -> import
# into the fresh node -> export again (identical trees), a second import
# applying nothing twice, a node joining the import target through
# --join http:// (it converges and serves the runs), and the exit codes
# (base/exit.h: 1 bad flag, 10 bad input line, 11 unknown run, 9 dead
# endpoint).
# usage: test_client_cli.sh PATH/TO/runvault
set -u
rv=$1
T="timeout 120" # Every client command is bounded.
. "$(dirname "$0")/lib.sh" rvclient

golden() { # golden DESCRIPTION (expected output on stdin, compared to out)
    if diff -u - "$dir/out" >"$dir/diff"; then pass; else
        fail "$1: output differs"
        sed 's/^/    /' "$dir/diff"
    fi
}

# ---- Ports: 18 free ones in 20000-32000 (below the ephemeral range): the
# source cluster of three nodes (base+0..2, +8..10, +11..13: HTTP, RPC,
# raft), the import target n2 (base+3..5), n3 joining it (base+14..16), and
# two that stay unused, as dead endpoints (base+6, base+7). ------------------
base=0
for _ in $(seq 1 50); do
    b=$((20000 + (RANDOM % 650) * 18))
    ok=1
    for o in $(seq 0 17); do port_free $((b + o)) || ok=0; done
    if [ $ok -eq 1 ]; then base=$b; break; fi
done
[ $base -ne 0 ] || { echo "no free ports"; exit 1; }

spawn_node() { # spawn_node NAME HTTP RPC RAFT [serve flags...]
    local name=$1 http=$2 rpc=$3 raft=$4
    shift 4
    "$rv" serve --data-dir "$dir/$name" --http-addr "127.0.0.1:$http" \
        --rpc-addr "tcp://127.0.0.1:$rpc" --raft-addr "127.0.0.1:$raft" \
        --log-level warn "$@" 2>"$dir/$name.log" &
    pids+=($!)
}

wait_node() { # wait_node NAME RPC: answers a leader read (bounded)
    for _ in $(seq 1 150); do
        if timeout 10 "$rv" ls --endpoint "tcp://127.0.0.1:$2" \
            --timeout-ms 500 >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "node $1 did not start"
    cat "$dir/$1.log"
    return 1
}

start_node() { # start_node NAME HTTP RPC RAFT
    spawn_node "$@"
    for _ in $(seq 1 100); do
        if timeout 10 "$rv" ls --endpoint "tcp://127.0.0.1:$3" \
            --timeout-ms 500 >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "node $1 did not start"
    cat "$dir/$1.log"
    return 1
}

# The source: a 3-node cluster (n1 is node 1; the client's list starts with
# whichever node, writes and leader reads are forwarded to the leader).
peers="1=127.0.0.1:$((base + 2)),2=127.0.0.1:$((base + 10)),3=127.0.0.1:$((base + 13))"
spawn_node n1 $base $((base + 1)) $((base + 2)) --id 1 --peers "$peers"
spawn_node n1b $((base + 8)) $((base + 9)) $((base + 10)) --id 2 --peers "$peers"
spawn_node n1c $((base + 11)) $((base + 12)) $((base + 13)) --id 3 \
    --peers "$peers"
wait_node n1 $((base + 1)) || exit 1
wait_node n1b $((base + 9)) || exit 1
wait_node n1c $((base + 12)) || exit 1
start_node n2 $((base + 3)) $((base + 4)) $((base + 5)) || exit 1
ep1="tcp://127.0.0.1:$((base + 1)),tcp://127.0.0.1:$((base + 9)),tcp://127.0.0.1:$((base + 12))"
ep2="tcp://127.0.0.1:$((base + 4))"
export RUNVAULT_ENDPOINT=$ep1

# ---- ingest ----------------------------------------------------------------
printf 'model weights\n' >"$dir/weights.txt"
cat >"$dir/in.jsonl" <<EOF
{"type":"run","run_id":"run-a","project":"vision","experiment":"sweep","name":"first","params":{"lr":"0.01","opt":"adam"},"tags":{"team":"vis"},"created_at":1700000000000}
{"type":"run","run_id":"run-b","project":"vision","experiment":"sweep","name":"second","params":{"lr":"0.1"},"created_at":1700000060000}
{"run_id":"run-a","key":"loss","step":0,"timestamp":1700000001000,"value":1.5}
{"run_id":"run-a","key":"loss","step":1,"timestamp":1700000002000,"value":"NaN"}
{"run_id":"run-a","key":"loss","step":2,"timestamp":1700000003000,"value":0.25}
{"run_id":"run-a","key":"acc","context":"val","step":2,"timestamp":1700000003000,"value":"-Infinity"}
{"run_id":"run-b","key":"loss","step":5,"timestamp":1700000065000,"value":-0.1}

{"type":"log","run_id":"run-a","timestamp":1700000001500,"text":"epoch 0 done"}
{"type":"log","run_id":"run-a","timestamp":1700000002500,"stream":"stderr","text":"warn: a\\\\b \"q\""}
{"type":"artifact","run_id":"run-a","path":"ckpt/weights.txt","file":"$dir/weights.txt","content_type":"text/plain"}
{"run_id":"run-c","project":"other","experiment":"x","key":"m","step":1,"timestamp":1700000100000,"value":3}
{"type":"run","run_id":"run-a","project":"vision","experiment":"sweep","status":"FINISHED","ended_at":1700000010000}
EOF
expect 0 "ingest a JSONL file" -- "$rv" ingest "$dir/in.jsonl"
golden "ingest totals" <<EOF
ingest: 13 lines, 3 runs, 6 points (6 acked), 2 log lines, 1 artifacts, 1 writes
EOF

# ---- ls --------------------------------------------------------------------
expect 0 "ls" -- "$rv" ls --project vision
golden "ls table" <<'EOF'
RUN ID  PROJECT  EXPERIMENT  NAME    STATUS    CREATED               POINTS
run-b   vision   sweep       second  RUNNING   2023-11-14T22:14:20Z  1
run-a   vision   sweep       first   FINISHED  2023-11-14T22:13:20Z  4
EOF
expect 0 "ls --json" -- "$rv" ls --project vision --json
golden "ls --json" <<'EOF'
{"runs":[{"run_id":"run-b","team":"default","project":"vision","experiment":"sweep","name":"second","status":"RUNNING","created_at":1700000060000,"ended_at":null,"n_points":1},{"run_id":"run-a","team":"default","project":"vision","experiment":"sweep","name":"first","status":"FINISHED","created_at":1700000000000,"ended_at":1700000010000,"n_points":4}]}
EOF
expect 0 "ls with flag filters" -- "$rv" ls --status finished --tag team=vis \
    --param lr=0.01 --day 2023-11-14 --json
golden "ls --status --tag --param --day" <<'EOF'
{"runs":[{"run_id":"run-a","team":"default","project":"vision","experiment":"sweep","name":"first","status":"FINISHED","created_at":1700000000000,"ended_at":1700000010000,"n_points":4}]}
EOF
expect 0 "ls a quote in a value" -- "$rv" ls --tag "team=o'brien" --limit 5
golden "ls with no match" <<'EOF'
RUN ID  PROJECT  EXPERIMENT  NAME  STATUS  CREATED  POINTS
EOF
expect 0 "ls --limit pages" -- "$rv" ls --limit 1 --order-by "attributes.run_id ASC" --json
grep -q '"run_id":"run-a"' "$dir/out" && ! grep -q '"run-b"' "$dir/out" &&
    pass || fail "ls --limit 1 --order-by run_id gives run-a only"
expect 0 "ls through an http:// endpoint after a dead one" -- \
    "$rv" ls --project vision --endpoint \
    "http://127.0.0.1:$((base + 6)),http://127.0.0.1:$base"
grep -q "^run-a " "$dir/out" && pass || fail "http endpoint lists run-a"

# ---- show, metrics, logs ---------------------------------------------------
expect 0 "show" -- "$rv" show run-a
golden "show" <<'EOF'
run:         run-a
team:        default
project:     vision
experiment:  sweep
name:        first
user:        -
status:      FINISHED
created:     2023-11-14T22:13:20Z
ended:       2023-11-14T22:13:30Z
points:      4
log lines:   2
params:
  lr = 0.01
  opt = adam
tags:
  team = vis
summary:
  KEY   CONTEXT  LAST       MIN        MAX        COUNT  LAST STEP
  acc   val      -Infinity  -Infinity  -Infinity  1      2
  loss  -        0.25       0.25       1.5        3      2
EOF
expect 0 "metrics --csv" -- "$rv" metrics run-a --key loss --csv
golden "metrics --csv" <<'EOF'
step,timestamp,value
0,1700000001000,1.5
1,1700000002000,NaN
2,1700000003000,0.25
EOF
expect 0 "metrics --json with a context" -- \
    "$rv" metrics run-a --key acc --context val --json
golden "metrics --json" <<'EOF'
{"run_id":"run-a","key":"acc","context":"val","points":[[2,1700000003000,"-Infinity"]]}
EOF
expect 0 "metrics --min-step" -- "$rv" metrics run-a --key loss --csv --min-step 1 --max-step 1
golden "metrics step range" <<'EOF'
step,timestamp,value
1,1700000002000,NaN
EOF
expect 0 "logs" -- "$rv" logs run-a
golden "logs" <<'EOF'
epoch 0 done
warn: a\b "q"
EOF
expect 0 "logs --from 1" -- "$rv" logs run-a --from 1
golden "logs --from" <<'EOF'
warn: a\b "q"
EOF
expect 0 "logs --follow of a finished run ends by itself" -- \
    "$rv" logs run-a --follow
# run-b is RUNNING with no log lines: give it one, so that --follow prints
# it first; once that line is in its output, the follower is in its poll
# loop (its signal mask set) and SIGINT must stop it.
echo '{"type":"log","run_id":"run-b","timestamp":1700000061000,"text":"b ready"}' |
    $T "$rv" ingest - >/dev/null 2>&1 || fail "ingest a log line of run-b"
"$rv" logs run-b --follow >"$dir/follow" 2>&1 &
fpid=$!
pids+=($fpid)
ready=0
for _ in $(seq 1 100); do
    if grep -q "^b ready$" "$dir/follow"; then ready=1; break; fi
    kill -0 $fpid 2>/dev/null || break
    sleep 0.1
done
[ $ready -eq 1 ] && pass || { fail "logs --follow prints the existing lines"
    sed 's/^/    /' "$dir/follow"; }
kill -INT $fpid
for _ in $(seq 1 100); do kill -0 $fpid 2>/dev/null || break; sleep 0.1; done
if kill -0 $fpid 2>/dev/null; then
    kill -KILL $fpid
    fail "logs --follow ignores SIGINT"
fi
wait $fpid
code=$?
[ $code -eq 0 ] && pass || fail "logs --follow stops on SIGINT with 0 (got $code)"

# ---- exit codes ------------------------------------------------------------
expect 11 "show of an unknown run" -- "$rv" show no-such-run
expect 11 "metrics of an unknown series" -- "$rv" metrics run-a --key nope
expect 11 "logs of an unknown run" -- "$rv" logs no-such-run
expect 1 "a bad flag" -- "$rv" ls --frobnicate
expect 1 "a missing flag value" -- "$rv" ls --limit
expect 1 "metrics without --key" -- "$rv" metrics run-a
expect 1 "a bad --day" -- "$rv" ls --day 2023-02-30
expect 0 "whoami with auth off (a token is ignored)" -- env \
    RUNVAULT_TOKEN="rvt_0123456789abcdef_$(printf '%064d' 1)" "$rv" whoami
golden "with auth off every caller is cluster-admin of team default" <<'EOF2'
token_id  - (auth is off)
team      default
role      cluster-admin
name      -
EOF2
expect 1 "a bad filter" -- "$rv" ls --filter "metrics.loss >"
expect 1 "an unknown endpoint scheme" -- "$rv" ls --endpoint "udp://1.2.3.4:5"
expect 9 "a dead endpoint" -- \
    "$rv" ls --endpoint "tcp://127.0.0.1:$((base + 7))" --timeout-ms 1500
printf '%s\n' \
    '{"run_id":"run-b","key":"late","step":1,"timestamp":1700000070000,"value":1}' \
    '{"run_id":"run-b","key":"late","step":"two","value":2}' \
    '{"run_id":"run-b","key":"late","step":3,"timestamp":1700000072000,"value":3}' \
    >"$dir/bad.jsonl"
expect 10 "ingest stops at a bad line" -- "$rv" ingest - <"$dir/bad.jsonl"
grep -q -- "-:2: \"step\" must be an integer" "$dir/err" && pass ||
    fail "the error names the bad line"
expect 0 "the line before the bad one was sent" -- \
    "$rv" metrics run-b --key late --csv
golden "nothing after the bad line" <<'EOF'
step,timestamp,value
1,1700000070000,1
EOF
echo '{"run_id":"ghost","key":"k","step":1,"value":1}' >"$dir/ghost.jsonl"
expect 10 "a point of an unknown run without project" -- \
    "$rv" ingest "$dir/ghost.jsonl"

# ---- export -> import -> export --------------------------------------------
expect 0 "export" -- "$rv" export --out "$dir/ex1"
[ -f "$dir/ex1/vision/sweep/run-a/media/ckpt/weights.txt" ] &&
    cmp -s "$dir/ex1/vision/sweep/run-a/media/ckpt/weights.txt" \
        "$dir/weights.txt" && pass || fail "export writes the artifact bytes"
(cd "$dir/ex1" && cat vision/sweep/run-a/events.jsonl vision/sweep/run-a/logs.txt \
    vision/sweep/run-a/status.json) >"$dir/out"
golden "export files" <<'EOF'
{"key":"acc","context":"val","step":2,"timestamp":1700000003000,"value":"-Infinity"}
{"key":"loss","context":"","step":0,"timestamp":1700000001000,"value":1.5}
{"key":"loss","context":"","step":1,"timestamp":1700000002000,"value":"NaN"}
{"key":"loss","context":"","step":2,"timestamp":1700000003000,"value":0.25}
1700000001500 stdout epoch 0 done
1700000002500 stderr warn: a\\b "q"
{"status":"FINISHED","created_at":1700000000000,"ended_at":1700000010000}
EOF
expect 0 "import into a fresh node" -- "$rv" import "$dir/ex1" --endpoint "$ep2"
expect 0 "export from the fresh node" -- \
    "$rv" export --out "$dir/ex2" --endpoint "$ep2"
diff -r "$dir/ex1" "$dir/ex2" >"$dir/diff" && pass ||
    { fail "export -> import -> export differs"; cat "$dir/diff"; }
expect 0 "import again" -- "$rv" import "$dir/ex1" --endpoint "$ep2"
grep -q "(0 commands applied before)" "$dir/out" &&
    fail "the second import found nothing applied before" || pass
expect 0 "export after the second import" -- \
    "$rv" export --out "$dir/ex3" --endpoint "$ep2"
diff -r "$dir/ex1" "$dir/ex3" >"$dir/diff" && pass ||
    { fail "a second import applied something twice"; cat "$dir/diff"; }
expect 0 "ls on the fresh node" -- "$rv" ls --project vision --endpoint "$ep2"
golden "ls after two imports" <<'EOF'
RUN ID  PROJECT  EXPERIMENT  NAME    STATUS    CREATED               POINTS
run-b   vision   sweep       second  RUNNING   2023-11-14T22:14:20Z  2
run-a   vision   sweep       first   FINISHED  2023-11-14T22:13:20Z  4
EOF

# ---- a node joins through an HTTP endpoint (DESIGN Appendix A) -------------
spawn_node n3 $((base + 14)) $((base + 15)) $((base + 16)) --id 2 \
    --join "http://127.0.0.1:$((base + 3))"
joined=0
for _ in $(seq 1 150); do
    $T "$rv" cluster status --endpoint "http://127.0.0.1:$((base + 3))" \
        >"$dir/out" 2>&1
    voters=$(awk '$2 == "voter"' "$dir/out" | wc -l)
    digests=$(awk '$2 == "voter" {print $NF}' "$dir/out" | sort -u | wc -l)
    if [ "$voters" -eq 2 ] && [ "$digests" -eq 1 ]; then
        joined=1
        break
    fi
    sleep 0.1
done
[ $joined -eq 1 ] && pass ||
    { fail "a node joins through --join http:// and converges"; cat "$dir/out"; }
expect 0 "ls on the joined node" -- "$rv" ls --project vision \
    --consistency stale --endpoint "tcp://127.0.0.1:$((base + 15))"
golden "the joined node holds the imported runs" <<'EOF'
RUN ID  PROJECT  EXPERIMENT  NAME    STATUS    CREATED               POINTS
run-b   vision   sweep       second  RUNNING   2023-11-14T22:14:20Z  2
run-a   vision   sweep       first   FINISHED  2023-11-14T22:13:20Z  4
EOF

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
