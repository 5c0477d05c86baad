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
    tests/sim/*.c tests/cluster/*.c \
    bench/*.c
run_suite() {
    local dir=$1
    shift
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j"$jobs"
    (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

echo "== build with -Werror, all tests"
run_suite build-werror -DRV_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo

echo "== ASan + UBSan, all tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
RV_TEST_SCALE=small \
    run_suite build-asan -DRV_WERROR=ON -DRV_SANITIZE=address,undefined \
        -DCMAKE_BUILD_TYPE=Debug
