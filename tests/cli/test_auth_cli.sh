#!/usr/bin/env bash
# The client commands with tokens (DESIGN Appendix B.1), against a real
# node started with --auth on (its bootstrap cluster-admin token in
# DATA_DIR/admin.token) on loopback:
#  - the token from --token-file (trailing newline stripped) or
#    RUNVAULT_TOKEN, the flag winning; a malformed token is refused before
#    anything is sent (exit 1, message naming the source, never the token);
#  - no token, an unknown, revoked or expired token: exit 12 "not
#    authenticated"; a role too weak: exit 12 "permission denied";
#  - team create/list, token create/list/revoke, quota set (runs quota
#    enforced on ingest: exit 12 "quota exceeded"), whoami, audit, in text
#    and --json;
#  - a secret appears only on token create's stdout: never in any other
#    output, error message, listing, or in the node's data directory.
# usage: test_auth_cli.sh PATH/TO/runvault
set -u
rv=$1
T="timeout 60" # Every client command is bounded.
. "$(dirname "$0")/lib.sh" rvauth
unset RUNVAULT_TOKEN RUNVAULT_ENDPOINT

has() { # has DESCRIPTION FILE PATTERN: the file holds the (grep -E) pattern
    if grep -Eq -- "$3" "$2"; then pass; else
        fail "$1: no '$3' in $(basename "$2")"
        sed 's/^/    /' "$2"
    fi
}

hasnt() { # hasnt DESCRIPTION FILE FIXED-STRING
    if grep -Fq -- "$3" "$2"; then
        fail "$1: $(basename "$2") holds what it must not"
    else pass; fi
}

# ---- Local refusals: no node needed (the endpoint is never dialled) -------
bad_secret="rvt_0123456789abcdef_THIS-IS-NOT-HEX-$$"
good_form="rvt_0123456789abcdef_$(printf '%064d' 7)"
dead="tcp://127.0.0.1:1"
expect 1 "a malformed RUNVAULT_TOKEN" -- \
    env RUNVAULT_TOKEN="$bad_secret" "$rv" ls --endpoint $dead
has "the message names the variable" "$dir/err" "RUNVAULT_TOKEN does not hold a runvault token"
hasnt "the malformed token is not printed" "$dir/err" "THIS-IS-NOT-HEX"
printf '%s\n' "$bad_secret" >"$dir/bad.tok"
expect 1 "a malformed --token-file" -- \
    "$rv" whoami --token-file "$dir/bad.tok" --endpoint $dead
has "the message names the file" "$dir/err" "token-file $dir/bad.tok does not hold"
hasnt "the malformed file's token is not printed" "$dir/err" "THIS-IS-NOT-HEX"
printf '%s\n%s\n' "$good_form" "$good_form" >"$dir/two.tok"
expect 1 "a token file of two lines" -- \
    "$rv" whoami --token-file "$dir/two.tok" --endpoint $dead
: >"$dir/empty.tok"
expect 1 "an empty token file" -- \
    "$rv" whoami --token-file "$dir/empty.tok" --endpoint $dead
expect 1 "a directory as the token file" -- \
    "$rv" whoami --token-file "$dir" --endpoint $dead
has "the read error is named" "$dir/err" "Is a directory"
expect 1 "a missing token file" -- \
    "$rv" whoami --token-file "$dir/none.tok" --endpoint $dead
expect 1 "the flag wins over the variable (a bad file, a good variable)" -- \
    env RUNVAULT_TOKEN="$good_form" "$rv" whoami \
    --token-file "$dir/bad.tok" --endpoint $dead
expect 1 "token create without --team" -- \
    "$rv" token create --role writer --name x --endpoint $dead
expect 1 "token create with a bad role" -- \
    "$rv" token create --team a --role owner --name x --endpoint $dead
expect 1 "a cluster-admin token of one team" -- \
    "$rv" token create --team a --role cluster-admin --name x --endpoint $dead
expect 1 "token create without --name" -- \
    "$rv" token create --team a --role reader --endpoint $dead
expect 1 "--expires-in 0d" -- "$rv" token create --team a --role reader \
    --name x --expires-in 0d --endpoint $dead
expect 1 "--expires-in past ten years" -- "$rv" token create --team a \
    --role reader --name x --expires-in 4000d --endpoint $dead
expect 1 "--expires-in with a bad unit" -- "$rv" token create --team a \
    --role reader --name x --expires-in 3w --endpoint $dead
expect 1 "team create of '*'" -- "$rv" team create '*' --endpoint $dead
expect 1 "team create of a too long name" -- \
    "$rv" team create "$(printf 'a%.0s' $(seq 1 65))" --endpoint $dead
expect 1 "token revoke of a token's text instead of its id" -- \
    "$rv" token revoke "$good_form" --endpoint $dead
hasnt "revoke does not echo the token" "$dir/err" "$good_form"
expect 1 "token revoke of a bad id" -- "$rv" token revoke 12ab --endpoint $dead
expect 1 "quota set without a limit" -- "$rv" quota set a --endpoint $dead
expect 1 "quota set --max-bytes with a bad unit" -- \
    "$rv" quota set a --max-bytes 10X --endpoint $dead
expect 1 "quota set --max-bytes past 64 bits" -- \
    "$rv" quota set a --max-bytes 99999999999999999G --endpoint $dead
expect 1 "audit --since-index not a number" -- \
    "$rv" audit --since-index x --endpoint $dead
expect 1 "a group without a verb" -- "$rv" token
expect 1 "a group with an unknown verb" -- "$rv" team delete x
expect 0 "a verb's --help" -- "$rv" token create --help
has "token create's usage" "$dir/out" "usage: runvault token create"
expect 0 "--help of a group" -- "$rv" quota --help
has "the group's usage lists its verbs" "$dir/out" "runvault quota set TEAM"

# ---- A node with auth on ------------------------------------------------
base=0
for _ in $(seq 1 50); do
    b=$((20000 + (RANDOM % 1000) * 12))
    if port_free $b && port_free $((b + 1)) && port_free $((b + 2)); then
        base=$b
        break
    fi
done
[ $base -ne 0 ] || { echo "no free ports"; exit 1; }
"$rv" serve --id 1 --data-dir "$dir/n1" --http-addr "127.0.0.1:$base" \
    --rpc-addr "tcp://127.0.0.1:$((base + 1))" \
    --raft-addr "127.0.0.1:$((base + 2))" --auth on --log-level warn \
    2>"$dir/n1.log" &
pids+=($!)
admin="$dir/n1/admin.token"
export RUNVAULT_ENDPOINT="tcp://127.0.0.1:$((base + 1))"
up=0
for _ in $(seq 1 150); do
    if [ -s "$admin" ] && "$rv" whoami --token-file "$admin" \
        --timeout-ms 500 >/dev/null 2>&1; then up=1; break; fi
    sleep 0.1
done
[ $up -eq 1 ] || { echo "the node did not start with auth on"; cat "$dir/n1.log"; exit 1; }
admin_secret=$(cat "$admin")

expect 12 "no token" -- "$rv" ls
has "no token: the message says what to set" "$dir/err" "not authenticated \(set RUNVAULT_TOKEN"
expect 12 "a well-formed unknown token" -- env RUNVAULT_TOKEN="$good_form" "$rv" ls
has "unknown token: not authenticated" "$dir/err" "not authenticated"
hasnt "the unknown token is not printed" "$dir/err" "$good_form"

expect 0 "whoami with the bootstrap token (file)" -- \
    "$rv" whoami --token-file "$admin"
has "whoami: cluster-admin" "$dir/out" "^role +cluster-admin$"
has "whoami: team *" "$dir/out" "^team +\*$"
expect 0 "whoami --json with the bootstrap token (variable)" -- \
    env RUNVAULT_TOKEN="$admin_secret" "$rv" whoami --json
has "whoami --json" "$dir/out" '"role":"cluster-admin"'
printf '%s' "$admin_secret" >"$dir/nonl.tok"
chmod 600 "$dir/nonl.tok"
expect 0 "a token file without a trailing newline" -- \
    "$rv" whoami --token-file "$dir/nonl.tok"
hasnt "no warning for a file of mode 600" "$dir/err" "warning"
chmod 644 "$dir/nonl.tok"
expect 0 "a token file others can read works" -- \
    "$rv" whoami --token-file "$dir/nonl.tok"
has "with a warning" "$dir/err" "warning: --token-file .* can be read by other users"
printf '%s\r\n' "$admin_secret" >"$dir/crlf.tok"
expect 0 "a token file with CRLF" -- "$rv" whoami --token-file "$dir/crlf.tok"
expect 0 "the flag wins over a variable with an unknown token" -- \
    env RUNVAULT_TOKEN="$good_form" "$rv" whoami --token-file "$admin"

export RUNVAULT_TOKEN="$admin_secret"
expect 0 "team create vision" -- "$rv" team create vision
expect 0 "team create other" -- "$rv" team create other
expect 12 "team create of an existing team" -- "$rv" team create vision
has "exists" "$dir/err" "team 'vision' exists"
expect 11 "quota set of an unknown team" -- "$rv" quota set nosuch --max-runs 1
expect 0 "quota set" -- "$rv" quota set vision --max-runs 2 --max-bytes 10M \
    --max-points-per-s 5000

expect 0 "token create writer" -- "$rv" token create --team vision \
    --role writer --name ci --expires-in 90d
writer=$(cat "$dir/out")
has "token create prints the token alone on stdout" "$dir/out" \
    '^rvt_[0-9a-f]{16}_[0-9a-f]{64}$'
[ "$(wc -l <"$dir/out")" -eq 1 ] && pass || fail "token create: one line on stdout"
has "token create names the id on stderr" "$dir/err" "token id ${writer:4:16}"
hasnt "stderr does not hold the secret" "$dir/err" "${writer:21}"
cp "$dir/out" "$dir/writer.tok"
expect 0 "token create reader --json" -- "$rv" token create --team vision \
    --role reader --name dash --json
reader=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' <"$dir/out")
reader_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["token_id"])' <"$dir/out")
[ "${reader:4:16}" = "$reader_id" ] && pass || fail "--json: token_id is the token's id"
expect 0 "token create other-team writer" -- "$rv" token create --team other \
    --role writer --name o
other=$(cat "$dir/out")
expect 0 "token create short-lived" -- "$rv" token create --team vision \
    --role reader --name brief --expires-in 1s
brief=$(cat "$dir/out")
: >"$dir/all_output" # From here on every output is checked for secrets.

expect 0 "whoami as the writer" -- env RUNVAULT_TOKEN="$writer" "$rv" whoami
has "the writer's team" "$dir/out" "^team +vision$"
has "the writer's role" "$dir/out" "^role +writer$"
has "the writer's name" "$dir/out" "^name +ci$"
expect 12 "a writer cannot create teams" -- \
    env RUNVAULT_TOKEN="$writer" "$rv" team create x
has "permission denied" "$dir/err" "permission denied"
expect 12 "a writer cannot make tokens" -- env RUNVAULT_TOKEN="$writer" \
    "$rv" token create --team vision --role admin --name up
expect 12 "a writer cannot read the audit log" -- \
    env RUNVAULT_TOKEN="$writer" "$rv" audit

cat >"$dir/in.jsonl" <<EOF
{"type":"run","run_id":"v1","project":"p","experiment":"e"}
{"run_id":"v1","key":"loss","step":0,"value":1.5}
{"type":"run","run_id":"v2","project":"p","experiment":"e"}
EOF
expect 0 "ingest as the writer (batched writes carry the token)" -- \
    "$rv" ingest "$dir/in.jsonl" --token-file "$dir/writer.tok"
echo '{"type":"run","run_id":"v3","project":"p","experiment":"e"}' >"$dir/in3.jsonl"
expect 12 "a third run past the quota of 2" -- \
    "$rv" ingest "$dir/in3.jsonl" --token-file "$dir/writer.tok"
has "quota exceeded" "$dir/err" "quota exceeded"
expect 12 "a reader cannot ingest" -- env RUNVAULT_TOKEN="$reader" \
    "$rv" ingest "$dir/in3.jsonl"
expect 0 "ls as the reader" -- env RUNVAULT_TOKEN="$reader" "$rv" ls --json
has "the reader sees its team's runs" "$dir/out" '"run_id":"v1"'
expect 0 "ls as another team" -- env RUNVAULT_TOKEN="$other" "$rv" ls --json
hasnt "another team sees none of them" "$dir/out" '"run_id":"v1"'
expect 0 "ls --team vision as the cluster-admin" -- "$rv" ls --team vision --json
has "the cluster-admin sees vision's runs" "$dir/out" '"run_id":"v1"'
expect 0 "ls --team other as the cluster-admin" -- "$rv" ls --team other --json
hasnt "only that team's" "$dir/out" '"run_id":"v1"'
expect 11 "show of another team's run is not found" -- \
    env RUNVAULT_TOKEN="$other" "$rv" show v1

expect 0 "team create rl" -- "$rv" team create rl
expect 0 "quota set rl 10 points/s" -- "$rv" quota set rl --max-points-per-s 10
expect 0 "token create rl writer" -- "$rv" token create --team rl \
    --role writer --name rw
rl=$(cat "$dir/out")
python3 -c '
import json
print(json.dumps({"type": "run", "run_id": "rl1", "project": "p",
                  "experiment": "e"}))
for i in range(50000):
    print(json.dumps({"run_id": "rl1", "key": "k", "step": i, "value": i}))
' >"$dir/many.jsonl"
expect 12 "past the points/s rate" -- env RUNVAULT_TOKEN="$rl" \
    "$rv" ingest "$dir/many.jsonl"
has "rate limit exceeded, with when to retry" "$dir/err" \
    "rate limit exceeded: .*retry"

expect 0 "team list" -- "$rv" team list
has "team list: use against quota" "$dir/out" "^vision +2/2 +[0-9.]+[KM]?/10M +5000$"
has "team list: no limits" "$dir/out" "^other +0/- +0/- +-$"
has "team list: a rate" "$dir/out" "^rl +[01]/- +[0-9.]+[KM]?/- +10$"
expect 0 "team list --json" -- "$rv" team list --json
has "team list --json" "$dir/out" '"team":"vision","n_runs":2,"max_runs":2'
expect 0 "team list as a team's token shows its team only" -- \
    env RUNVAULT_TOKEN="$other" "$rv" team list --json
hasnt "no other team" "$dir/out" '"vision"'

expect 0 "token list" -- "$rv" token list
has "token list: the writer" "$dir/out" "^${writer:4:16} +vision +writer +ci .* active$"
expect 0 "token list --team other --json" -- "$rv" token list --team other --json
has "only team other" "$dir/out" "\"token_id\":\"${other:4:16}\""
hasnt "not vision's" "$dir/out" "${writer:4:16}"

sleep 1.2
expect 12 "an expired token" -- env RUNVAULT_TOKEN="$brief" "$rv" ls
expect 0 "token revoke" -- "$rv" token revoke "${writer:4:16}"
has "revoked at an index" "$dir/out" "revoked \(index [0-9]+\)"
expect 12 "a revoked token" -- "$rv" ls --token-file "$dir/writer.tok"
expect 11 "token revoke of an unknown id" -- "$rv" token revoke 0000000000000000
expect 0 "token list shows the revocation" -- "$rv" token list --json
has "revoked state" "$dir/out" "\"token_id\":\"${writer:4:16}\",[^}]*\"state\":\"revoked\""

expect 0 "audit" -- "$rv" audit
for act in team_put quota_put token_put token_del; do
    has "audit holds $act" "$dir/out" " $act "
done
expect 0 "audit --json" -- "$rv" audit --json
python3 -c '
import json, sys
ev = json.load(sys.stdin)["events"]
keys = [(e["index"], e["action"], e["target"]) for e in ev]
sys.exit(0 if len(ev) >= 8 and len(set(keys)) == len(keys) and
         keys == sorted(keys, key=lambda k: k[0]) else 1)' <"$dir/out" &&
    pass || { fail "audit --json: every event once, in index order"; cat "$dir/out"; }
expect 0 "audit --team other --json" -- "$rv" audit --team other --json
has "audit --json events" "$dir/out" '^\{"events":\[\{"index":[0-9]+'
hasnt "audit --team other: no vision event" "$dir/out" '"target":"vision"'
expect 0 "audit --since-index past the end" -- "$rv" audit --since-index 1000000 --json
has "no events" "$dir/out" '^\{"events":\[\]\}$'
expect 0 "audit --limit 2" -- "$rv" audit --json --limit 2
[ "$(grep -o '"index"' "$dir/out" | wc -l)" -eq 2 ] && pass || fail "audit --limit 2"

expect 12 "cluster status without a token" -- \
    env -u RUNVAULT_TOKEN "$rv" cluster status
expect 0 "cluster status with the bootstrap token (file)" -- \
    env -u RUNVAULT_TOKEN "$rv" cluster status --token-file "$admin"
has "cluster status: this node answers its own status" "$dir/out" \
    "^1 +voter +leader "
expect 1 "cluster status with a malformed token" -- \
    env RUNVAULT_TOKEN="$bad_secret" "$rv" cluster status
hasnt "cluster: the malformed token is not printed" "$dir/err" "THIS-IS-NOT-HEX"

# ---- Secrets: only token create ever printed them; the node keeps hashes --
for s in "$writer" "$reader" "$other" "$brief" "$admin_secret"; do
    hasnt "no output after the tokens were made holds a secret" \
        "$dir/all_output" "${s:21}"
    if grep -rFqs --exclude=admin.token -- "${s:21}" "$dir/n1"; then
        fail "the node's data directory holds a secret"
    else pass; fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
