#!/usr/bin/env bash
# The runvault binary's maintenance commands: demo, verify, rebuild-index,
# and their exit codes on healthy, corrupt and missing data.
# usage: test_cli.sh PATH/TO/runvault
set -u
rv=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/rvcli-XXXXXX")
trap 'rm -rf "$dir"' EXIT
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

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
