#!/usr/bin/env bash
# Run each libFuzzer target for the given seconds (default 20) on a copy of
# its seeds (tests/fuzz/seeds/<target>/, crash-* regressions included, and
# seeds/<target>.dict as -dict= when there is one) and print one JSON line
# per target:
#   {"target":..,"execs":..,"corpus":..,"edges":..,"crashes":..,"seconds":..}
# corpus: inputs in the corpus at the end; edges: libFuzzer's cov: figure;
# crashes: crash, leak, timeout and OOM files written (a target stops at the
# first). Exits 1 if any target crashed, after all have run; the log tail
# goes to stderr and the inputs are kept in the directory it names.
#
#   tests/fuzz/run_all.sh [seconds]
# Environment: RV_FUZZ_BUILD (build directory, default build-fuzz),
# RV_FUZZ_TARGETS (default "apply filter vlog query rpc http auth").
set -uo pipefail

cd "$(dirname "$0")/../.."
secs=${1:-20}
build=${RV_FUZZ_BUILD:-build-fuzz}
targets=${RV_FUZZ_TARGETS:-apply filter vlog query rpc http auth}
status=0

for t in $targets; do
    work=$(mktemp -d "${TMPDIR:-/tmp}/rvfuzz-run-XXXXXX")
    mkdir "$work/corpus" "$work/found"
    cp tests/fuzz/seeds/"$t"/* "$work/corpus/"
    dict=()
    if [ -f tests/fuzz/seeds/"$t".dict ]; then
        dict=(-dict=tests/fuzz/seeds/"$t".dict)
    fi
    start=$(date +%s)
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$build"/tests/fuzz/fuzz_"$t" -max_total_time="$secs" \
        -rss_limit_mb=2048 -artifact_prefix="$work/found/" "${dict[@]}" \
        "$work/corpus" >"$work/log" 2>&1
    rc=$?
    end=$(date +%s)
    last=$(grep -E '^#[0-9]+' "$work/log" | tail -n 1)
    execs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
    edges=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    corpus=$(find "$work/corpus" -type f | wc -l)
    crashes=$(find "$work/found" -type f | wc -l)
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1 # Died without writing an input (a sanitizer at exit).
    fi
    printf '{"target":"%s","execs":%s,"corpus":%s,"edges":%s,"crashes":%s,' \
        "$t" "${execs:-0}" "$corpus" "${edges:-0}" "$crashes"
    printf '"seconds":%s}\n' "$((end - start))"
    if [ "$crashes" -ne 0 ]; then
        tail -n 60 "$work/log" >&2
        echo "fuzz_$t: inputs and log kept in $work" >&2
        status=1
    else
        rm -rf "$work"
    fi
done
exit $status
