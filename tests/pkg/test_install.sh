#!/usr/bin/env bash
# Install test of the Debian package on a fresh Debian 12 root.
#
#   tests/pkg/test_install.sh [DEB]
#
# As root, with Debian's mirror reachable (apt fetches the package's
# dependencies). DEB defaults to a fresh deploy/package.sh build. Steps:
#   1. a Debian 12 minbase root: debootstrap once, cached as a tarball under
#      /var/cache/runvault-pkgtest (RUNVAULT_PKGTEST_CACHE), unpacked into a
#      temporary directory for each run;
#   2. `apt-get install ./DEB` inside it (chroot);
#   3. files, modes, the runvault user, the conffile, the unit (installed,
#      not enabled), `--help` of every command, the config file naming every
#      key of `serve --help`; `systemd-analyze verify` of the installed unit;
#   4. the node started the way the unit starts it: ExecStart as User= and
#      Group= in WorkingDirectory=, with the EnvironmentFile= it names (here
#      it moves the node to free loopback ports) and a $NOTIFY_SOCKET that
#      must receive READY=1; then /readyz, a run written and read back over
#      HTTP, SIGTERM and exit 0 with STOPPING=1;
#   5. remove keeps the conffile; purge removes /etc/runvault and keeps
#      /var/lib/runvault (with the run's data) and the user;
#      RUNVAULT_PURGE_DATA=yes purge removes both.
# Prints the time each phase took. Exit 0 only if every check held.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
cache=${RUNVAULT_PKGTEST_CACHE:-/var/cache/runvault-pkgtest}
mirror=${RUNVAULT_PKGTEST_MIRROR:-http://deb.debian.org/debian}
t_start=$(date +%s)

fail() {
    echo "test_install: FAIL: $*" >&2
    exit 1
}
phase() {
    echo "test_install: [$(($(date +%s) - t_start)) s] $*"
}

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot)"
for tool in debootstrap chroot curl python3; do
    command -v "$tool" >/dev/null || fail "missing $tool"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/runvault-install-XXXXXX")
root=$work/root
node_pid=
notify_pid=
cleanup() {
    set +e
    [ -n "$node_pid" ] && kill -KILL "$node_pid" 2>/dev/null
    [ -n "$notify_pid" ] && kill "$notify_pid" 2>/dev/null
    mountpoint -q "$root/proc" && umount "$root/proc"
    rm -rf "$work"
}
trap cleanup EXIT

# ---- 1. the Debian 12 root ------------------------------------------------
deb=${1:-}
if [ -z "$deb" ]; then
    phase "building the package"
    "$src/deploy/package.sh" "$work/dist" >"$work/package.log" 2>&1 ||
        { tail -n 30 "$work/package.log"; fail "deploy/package.sh"; }
    deb=$(ls "$work"/dist/runvault_*.deb)
fi
[ -f "$deb" ] || fail "no package $deb"

tarball=$cache/bookworm-minbase.tar.gz
if [ ! -f "$tarball" ]; then
    phase "debootstrap bookworm (cached in $tarball for the next runs)"
    mkdir -p "$cache"
    debootstrap --variant=minbase bookworm "$work/boot" "$mirror" \
        >"$work/debootstrap.log" 2>&1 ||
        { tail -n 20 "$work/debootstrap.log"; fail "debootstrap"; }
    tar -C "$work/boot" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$work/boot"
fi
phase "unpacking the Debian 12 root"
mkdir -p "$root"
tar -C "$root" -xzf "$tarball"
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive "$@"; }

# ---- 2. apt install -------------------------------------------------------
phase "apt-get install $(basename "$deb")"
cp "$deb" "$root/tmp/runvault.deb"
in_root apt-get update -qq >"$work/apt.log" 2>&1 ||
    { tail "$work/apt.log"; fail "apt-get update"; }
# systemd too (a Debian 12 machine has it; minbase does not): the unit is
# verified by the root's own systemd-analyze.
in_root apt-get install -y -qq --no-install-recommends /tmp/runvault.deb systemd \
    >>"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log"; fail "apt install"; }

# ---- 3. files, user, permissions ------------------------------------------
phase "checking files, user, permissions"
check_stat() { # path expected "%U:%G %a %F"
    local got
    got=$(in_root stat -c '%U:%G %a %F' "$1") || fail "$1 missing"
    [ "$got" = "$2" ] || fail "$1 is '$got', expected '$2'"
}
check_stat /usr/bin/runvault "root:root 755 regular file"
check_stat /etc/runvault/runvault.conf "root:root 644 regular file"
check_stat /var/lib/runvault "runvault:runvault 750 directory"
check_stat /lib/systemd/system/runvault.service "root:root 644 regular file"
check_stat /usr/share/man/man1/runvault.1.gz "root:root 644 regular file"
check_stat /usr/share/bash-completion/completions/runvault \
    "root:root 644 regular file"
check_stat /usr/share/doc/runvault/copyright "root:root 644 regular file"
IFS=: read -r _ _ uid gid _ home shell < <(in_root getent passwd runvault) ||
    fail "no runvault user"
[ "$uid" -lt 1000 ] || fail "runvault is not a system user (uid $uid)"
[ "$home" = /var/lib/runvault ] || fail "runvault's home is $home"
[ "$shell" = /usr/sbin/nologin ] || fail "runvault's shell is $shell"
in_root getent group runvault >/dev/null || fail "no runvault group"
in_root dpkg-query -W -f='${Conffiles}\n' runvault |
    grep -q '^ /etc/runvault/runvault.conf ' || fail "runvault.conf is not a conffile"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/runvault.service" ] ||
    fail "the unit was enabled on install"
for c in "" serve cluster demo verify rebuild-index ls show metrics logs \
    ingest export import team token quota whoami audit retention; do
    out=$(in_root /usr/bin/runvault $c --help) ||
        fail "runvault $c --help exits $?"
    echo "$out" | grep -q '^usage: runvault' || fail "runvault $c --help: no usage"
done
# Every key serve reads is in the config file (commented or set).
keys=$(in_root /usr/bin/runvault serve --help | sed -n 's/^  --\([a-z-]*\).*/\1/p' |
    grep -vx config)
[ "$(echo "$keys" | wc -l)" -ge 20 ] || fail "serve --help lists too few keys"
for k in $keys; do
    grep -Eq "^#?$k =" "$root/etc/runvault/runvault.conf" ||
        fail "runvault.conf does not show key $k"
done
# The unit, as installed: verified by the root's systemd-analyze.
in_root systemd-analyze verify --man=no /lib/systemd/system/runvault.service >"$work/verify.log" 2>&1 ||
    { cat "$work/verify.log"; fail "systemd-analyze verify"; }
[ ! -s "$work/verify.log" ] || { cat "$work/verify.log"; fail "verify warns"; }

# ---- 4. the node, started as the unit starts it ----------------------------
phase "starting ExecStart as the unit's user"
unit=$root/lib/systemd/system/runvault.service
unit_key() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
exec_start=$(unit_key ExecStart)
user=$(unit_key User)
group=$(unit_key Group)
workdir=$(unit_key WorkingDirectory)
envfile=$(unit_key EnvironmentFile)
[ "$(unit_key Type)" = notify ] || fail "the unit is not Type=notify"
[ -n "$exec_start" ] && [ -n "$user" ] && [ -n "$envfile" ] ||
    fail "unit without ExecStart, User or EnvironmentFile"
read -r p_http p_rpc p_raft < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
cat >"$root${envfile#-}" <<EOF
RUNVAULT_HTTP_ADDR=127.0.0.1:$p_http
RUNVAULT_RPC_ADDR=tcp://127.0.0.1:$p_rpc
RUNVAULT_RAFT_ADDR=127.0.0.1:$p_raft
EOF
# A notify socket in the root, read on the host.
python3 - "$root/run/rv-notify.sock" "$work/notify.log" <<'EOF' &
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o777)
s.settimeout(120)
with open(log, "a", buffering=1) as f:
    try:
        while True:
            f.write(s.recv(4096).decode() + "\n")
    except socket.timeout:
        pass
EOF
notify_pid=$!
for _ in $(seq 50); do [ -S "$root/run/rv-notify.sock" ] && break; sleep 0.1; done
# The unit's environment: its EnvironmentFile= (read by systemd, not a
# shell: plain KEY=VALUE lines), NOTIFY_SOCKET, nothing else.
mapfile -t unit_env < <(grep -E '^[A-Z_]+=' "$root${envfile#-}")
t_node=$(date +%s.%N)
chroot --userspec="$user:$group" "$root" /usr/bin/env -i \
    PATH=/usr/sbin:/usr/bin:/sbin:/bin NOTIFY_SOCKET=/run/rv-notify.sock \
    "${unit_env[@]}" /bin/sh -c "cd '$workdir' && exec $exec_start" \
    >"$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 300); do
    grep -q '^READY=1' "$work/notify.log" 2>/dev/null && break
    kill -0 "$node_pid" 2>/dev/null || { cat "$work/node.log"; fail "node exited"; }
    sleep 0.1
done
grep -q '^READY=1' "$work/notify.log" || { cat "$work/node.log"; fail "no READY=1"; }
phase "READY=1 after $(python3 -c "import time;print(round(time.time()-$t_node,2))") s"
base=http://127.0.0.1:$p_http
for _ in $(seq 100); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null || fail "/readyz does not answer 200"
curl -fsS -X POST "$base/api/v2/runs" -H 'Content-Type: application/json' \
    -d '{"project":"pkg","experiment":"install","name":"r1","run_id":"pkgtest1"}' \
    >/dev/null || fail "create run"
curl -fsS -X POST "$base/api/v2/runs/pkgtest1/log-batch" \
    -H 'Content-Type: application/json' \
    -d '{"metrics":[{"key":"loss","value":0.25,"step":7,"timestamp":1}]}' \
    >/dev/null || fail "log-batch"
run=$(curl -fsS "$base/api/v2/runs/pkgtest1") || fail "read run"
python3 -c '
import json, sys
r = json.loads(sys.argv[1])["run"]
s = r["summary"]["loss"]
assert r["project"] == "pkg" and s["last"] == 0.25 and s["last_step"] == 7, r
' "$run" || fail "the run read back differs: $run"
[ "$(in_root stat -c %U /var/lib/runvault/LOCK)" = runvault ] ||
    fail "the data dir's files are not the runvault user's"
kill -TERM "$node_pid"
rc=0
wait "$node_pid" || rc=$?
node_pid=
[ "$rc" = 0 ] || { tail "$work/node.log"; fail "SIGTERM: exit $rc, not 0"; }
grep -q '^STOPPING=1' "$work/notify.log" || fail "no STOPPING=1"
phase "node served, stopped cleanly on SIGTERM"

# ---- 5. remove, purge -----------------------------------------------------
phase "remove and purge"
in_root apt-get remove -y -qq runvault >>"$work/apt.log" 2>&1 || fail "remove"
[ ! -e "$root/usr/bin/runvault" ] || fail "remove kept /usr/bin/runvault"
[ -f "$root/etc/runvault/runvault.conf" ] || fail "remove dropped the conffile"
in_root apt-get purge -y -qq runvault >>"$work/apt.log" 2>&1 || fail "purge"
[ ! -e "$root/etc/runvault" ] || fail "purge kept /etc/runvault"
[ -n "$(ls "$root/var/lib/runvault/vlog" 2>/dev/null)" ] ||
    fail "purge removed the data without RUNVAULT_PURGE_DATA=yes"
in_root getent passwd runvault >/dev/null || fail "purge removed the user"
in_root apt-get install -y -qq /tmp/runvault.deb >>"$work/apt.log" 2>&1 ||
    fail "reinstall"
[ "$(in_root stat -c %U /var/lib/runvault/LOCK)" = runvault ] ||
    fail "reinstall: the kept data is not the runvault user's"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    RUNVAULT_PURGE_DATA=yes DEBIAN_FRONTEND=noninteractive \
    apt-get purge -y -qq runvault >>"$work/apt.log" 2>&1 || fail "purge data"
[ ! -e "$root/var/lib/runvault" ] || fail "RUNVAULT_PURGE_DATA=yes kept the data"
! in_root getent passwd runvault >/dev/null ||
    fail "RUNVAULT_PURGE_DATA=yes kept the user"
phase "OK: package $(basename "$deb") ($(stat -c %s "$deb") bytes)"
