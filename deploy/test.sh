#!/usr/bin/env bash
# Run every test: a build with warnings as errors, then the same tests again
# under AddressSanitizer + UndefinedBehaviorSanitizer (leaks fail it).
set -euo pipefail

cd "$(dirname "$0")/.."
deploy/setup.sh >/dev/null

jobs=$(nproc)

echo "== clang-format check"
clang-format --dry-run --Werror base/*.[ch] proto/*.[ch] store/*.[ch] \
    raft/*.[ch] rpc/*.[ch] gateway/*.[ch] node/*.[ch] tests/lib/*.[ch] \
    tests/unit/*.c \
    tests/sim/*.c tests/cluster/*.c tests/fuzz/*.c \
    bench/*.[ch]
run_suite() {
    local dir=$1
    shift
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j"$jobs"
    (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

echo "== build with -Werror, all tests"
run_suite build-werror -DRV_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo

echo "== libFuzzer targets under ASan + UBSan, ${RV_FUZZ_SECONDS:-20} s each"
# Entry apply (a local fault from any input is a crash), the filter
# language, vlog recovery; each from a copy of its seeds (tests/fuzz/seeds).
CC=clang cmake -S . -B build-fuzz -DRV_FUZZ=ON -DRV_SANITIZE=address,undefined \
    -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_apply fuzz_filter fuzz_vlog \
    >/dev/null
for t in apply filter vlog; do
    corpus=$(mktemp -d "${TMPDIR:-/tmp}/rvfuzz-corpus-XXXXXX")
    cp tests/fuzz/seeds/$t/* "$corpus"/
    ASAN_OPTIONS=detect_leaks=1 \
        build-fuzz/tests/fuzz/fuzz_$t -max_total_time="${RV_FUZZ_SECONDS:-20}" \
        -rss_limit_mb=2048 "$corpus" 2>"$corpus.log" ||
        { tail -n 40 "$corpus.log"; rm -rf "$corpus" "$corpus.log"; exit 1; }
    echo "fuzz_$t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' \
        "$corpus.log"), no crash"
    rm -rf "$corpus" "$corpus.log"
done

echo "== ASan + UBSan, all tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
RV_TEST_SCALE=small \
    run_suite build-asan -DRV_WERROR=ON -DRV_SANITIZE=address,undefined \
        -DCMAKE_BUILD_TYPE=Debug
