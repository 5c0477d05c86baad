#!/usr/bin/env bash
# Run every test: a build with warnings as errors, then the same tests again
# under AddressSanitizer + UndefinedBehaviorSanitizer (leaks fail it).
set -euo pipefail

cd "$(dirname "$0")/.."
deploy/setup.sh >/dev/null

echo "== commands the suite uses"
deploy/check_tools.sh

echo "== code checks: includes across layers, banned calls"
python3 deploy/test_check_code.py >/dev/null
python3 deploy/check_code.py

echo "== the Python test fixture (tests/lib/rvfixture.py)"
python3 tests/lib/test_rvfixture.py

jobs=$(nproc)

echo "== clang-format check"
clang-format --dry-run --Werror base/*.[ch] proto/*.[ch] store/*.[ch] \
    raft/*.[ch] rpc/*.[ch] rpc/client/*.[ch] gateway/*.[ch] node/*.[ch] \
    node/cli/*.[ch] tests/lib/*.[ch] \
    tests/unit/*.c \
    tests/sim/*.c tests/cluster/*.c tests/auth/*.c tests/fuzz/*.[ch] \
    tests/fault/*.c \
    bench/*.[ch] bench/compare/*.c
run_suite() {
    local dir=$1
    shift
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j"$jobs"
    (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

echo "== build with -Werror, all tests"
run_suite build-werror -DRV_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo

echo "== Debian package: dpkg-buildpackage, lintian (errors fail)"
# The install test on a fresh Debian 12 root needs the network for apt:
# outside this run (tests/pkg/test_install.sh, ctest -L pkg).
deploy/package.sh build-werror/dist | tail -n 2

echo "== fault suite: network namespaces, nemeses, history checks"
# The checkers must flag known-bad histories first, the power-loss
# filesystem must keep exactly the synced state; then the CI subset of
# tests/fault/run.py (needs root: ip netns, nftables, tc, tmpfs) on the
# -Werror build. Figures as JSON in the output directory.
python3 tests/fault/test_check.py
python3 tests/fault/test_powerfs.py build-werror/tests/rv_powerfs
fault_out=$(mktemp -d "${TMPDIR:-/tmp}/rvfault-ci-XXXXXX")
python3 tests/fault/run.py build-werror --out "$fault_out" |
    tail -n 1
cp "$fault_out/summary.json" build-werror/fault-summary.json
rm -rf "$fault_out"

echo "== libFuzzer targets under ASan + UBSan, ${RV_FUZZ_SECONDS:-20} s each"
# Entry apply (a local fault from any input is a crash), the filter
# language, vlog recovery, native requests and HTTP requests answered on a
# real store; each from a copy of its seeds (tests/fuzz/seeds), one JSON
# line of figures per target (tests/fuzz/run_all.sh).
CC=clang cmake -S . -B build-fuzz -DRV_FUZZ=ON -DRV_SANITIZE=address,undefined \
    -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_apply fuzz_filter fuzz_vlog fuzz_query \
    fuzz_rpc fuzz_http fuzz_auth >/dev/null
RV_FUZZ_BUILD=build-fuzz RV_FUZZ_TARGETS="apply filter vlog query rpc http auth" \
    tests/fuzz/run_all.sh "${RV_FUZZ_SECONDS:-20}"

echo "== ASan + UBSan, all tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
RV_TEST_SCALE=small \
    run_suite build-asan -DRV_WERROR=ON -DRV_SANITIZE=address,undefined \
        -DCMAKE_BUILD_TYPE=Debug

echo "== fault suite under ASan + UBSan: the reduced subset"
# Four cheap scenarios (run.py ASAN_SUBSET: a strict cluster's killed
# leader, a deposed leader, vlog damage, a removal and a join) on the
# sanitizer build, for memory errors on paths only faults reach. The disk
# and power-loss scenarios need an LD_PRELOAD shim or FUSE and stay on the
# -Werror build.
fault_out=$(mktemp -d "${TMPDIR:-/tmp}/rvfault-asan-XXXXXX")
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    python3 tests/fault/run.py build-asan --subset asan --out "$fault_out" |
    tail -n 1
cp "$fault_out/summary.json" build-asan/fault-summary.json
rm -rf "$fault_out"

echo "== bench compare --quick"
# The side-by-side harness with etcd and PostgreSQL on the -Werror build:
# that it runs and reports, not how fast (bench/compare/run.sh).
RUNVAULT_BUILD_DIR=build-werror bench/compare/run.sh --quick
