#!/usr/bin/env bash
# Set up a Debian 12 machine for runvault and build it into ./build.
# Idempotent: installs only the packages that are missing (running
# apt-get update first when it has to install), then configures and builds.
set -euo pipefail

cd "$(dirname "$0")/.."

# libraft-dev, libuv1-dev, liblmdb-dev, libprotobuf-c-dev, protobuf-c-compiler
# and libnng-dev are the fixed choices; libxxhash-dev (digest hashing) and
# nettle-dev (SHA-256 of artifacts) are small, well-kept libraries;
# libssl-dev (OpenSSL 3) runs the raft peers' TLS, where mbedTLS's ciphers
# were the cost of TLS on ingest (ARCHITECTURE.md, "TLS");
# libjansson-dev parses and writes the HTTP gateway's JSON (UTF-8 checked,
# duplicate keys refused, error positions); python3 runs the SDK and its
# tests; clang-format checks the code style in deploy/test.sh; clang and
# its libFuzzer runtime build the fuzz targets (tests/fuzz); iproute2 and
# nftables build the fault suite's network namespaces, partitions and netem
# (tests/fault); fuse3 and libfuse3-dev build and mount the fault suite's
# power-loss filesystem (tests/fault/powerfs.c); etcd-server, etcd-client, postgresql-15, libpq-dev and
# gnuplot-nox are the peers and plots of the comparison benchmark
# (bench/compare); curl is used by bench/compare, the README's examples and
# docs/RUNBOOK.md (tests/e2e/test_runbook.py); openssl makes the TLS
# certificates of deploy/make-certs.sh, the TLS tests and the runbook;
# chromium runs the web UI's browser tests headless (tests/ui);
# libsystemd-dev gives serve its sd_notify (the unit's Type=notify);
# dpkg-dev, debhelper and lintian build and check the Debian package
# (deploy/package.sh), systemd's systemd-analyze checks its unit
# (tests/pkg/test_unit.sh) and debootstrap makes the Debian 12 root of its
# install test (tests/pkg/test_install.sh).
# deploy/check_tools.sh lists every command these provide.
packages=(build-essential cmake pkg-config libraft-dev libuv1-dev liblmdb-dev
          libprotobuf-c-dev protobuf-c-compiler libnng-dev libxxhash-dev
          nettle-dev libssl-dev libjansson-dev python3 clang-format clang
          libclang-rt-14-dev iproute2 nftables fuse3 libfuse3-dev etcd-server
          etcd-client postgresql-15 libpq-dev gnuplot-nox curl openssl chromium
          libsystemd-dev dpkg-dev debhelper lintian systemd debootstrap)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo_cmd=(sudo)
    fi
    echo "setup: installing ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"
fi

build_dir=${RUNVAULT_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
echo "setup: built $build_dir/node/runvault"
