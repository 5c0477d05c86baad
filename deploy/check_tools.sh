#!/usr/bin/env bash
# Check that every command the test suite (deploy/test.sh: build, ctest,
# fault suite, fuzzing, bench/compare, the package and its tests) and the
# README's examples use is
# installed; name each missing one and exit 1 if any is. deploy/setup.sh
# installs them all (the package of each is in the table below).
set -u

pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
# command            package (Debian 12)
tools="
cc                   build-essential
make                 build-essential
cmake                cmake
pkg-config           pkg-config
protoc-c             protobuf-c-compiler
python3              python3
clang                clang
clang-format         clang-format
curl                 curl
openssl              openssl
ip                   iproute2
ss                   iproute2
tc                   iproute2
nft                  nftables
fusermount3          fuse3
mount                mount
umount               mount
setpriv              util-linux
runuser              util-linux
unshare              util-linux
timeout              coreutils
awk                  mawk
diff                 diffutils
etcd                 etcd-server
etcdctl              etcd-client
psql                 postgresql-client-15
gnuplot              gnuplot-nox
chromium             chromium
dpkg-buildpackage    dpkg-dev
dh                   debhelper
lintian              lintian
systemd-analyze      systemd
debootstrap          debootstrap
chroot               coreutils
$pgbin/initdb        postgresql-15
$pgbin/postgres      postgresql-15
$pgbin/pg_ctl        postgresql-15
$pgbin/pg_isready    postgresql-15
"

missing=0
while read -r cmd pkg; do
    [ -n "$cmd" ] || continue
    if ! command -v "$cmd" >/dev/null 2>&1; then
        echo "check_tools: missing command: $cmd (Debian package $pkg;" \
            "deploy/setup.sh installs it)" >&2
        missing=$((missing + 1))
    fi
done <<<"$tools"
[ "$missing" = 0 ] || exit 1
echo "check_tools: every command the suite uses is installed"
