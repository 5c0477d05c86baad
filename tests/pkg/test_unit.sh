#!/usr/bin/env bash
# The packaged systemd unit (debian/runvault.service), without installing:
#   tests/pkg/test_unit.sh UNIT RUNVAULT_BINARY
# - `systemd-analyze verify` is silent on a copy whose ExecStart names the
#   built binary (verify checks that the command exists);
# - the settings the node's contract needs are there (Type=notify, the
#   restart policy and its exit codes, the hardening of issue 19);
# - `systemd-analyze security --offline=true` rates its exposure at most
#   RUNVAULT_MAX_EXPOSURE (1.5; the unit is at 1.1).
set -euo pipefail
unit=$1
bin=$2
max=${RUNVAULT_MAX_EXPOSURE:-1.5}
fail() { echo "test_unit: FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || fail "missing systemd-analyze (systemd)"
work=$(mktemp -d "${TMPDIR:-/tmp}/runvault-unit-XXXXXX")
trap 'rm -rf "$work"' EXIT

sed "s#^ExecStart=/usr/bin/runvault #ExecStart=$(realpath "$bin") #" "$unit" \
    >"$work/runvault.service"
grep -q "^ExecStart=$(realpath "$bin") serve --config" "$work/runvault.service" ||
    fail "ExecStart is not /usr/bin/runvault serve --config ..."
systemd-analyze verify --man=no "$work/runvault.service" >"$work/verify" 2>&1 ||
    { cat "$work/verify"; fail "systemd-analyze verify"; }
[ ! -s "$work/verify" ] || { cat "$work/verify"; fail "verify warns"; }

for want in Type=notify User=runvault Restart=on-failure \
    "RestartPreventExitStatus=1 2 6 13" NoNewPrivileges=yes ProtectSystem=strict \
    ReadWritePaths=/var/lib/runvault PrivateTmp=yes ProtectHome=yes \
    CapabilityBoundingSet= LimitNOFILE=65536; do
    grep -qx "$want" "$unit" || fail "the unit lacks $want"
done
! grep -q '^ExecReload=' "$unit" || fail "ExecReload, but the node has no reload"
! grep -q '^ProcSubset=pid' "$unit" ||
    fail "ProcSubset=pid hides /proc/sys/kernel/random/boot_id from the store"
# The exit codes the unit does not restart on mean what it says.
grep -q 'X(RV_EXIT_USAGE, 1,' "$(dirname "$0")/../../base/exit.h" &&
    grep -q 'X(RV_EXIT_CORRUPT, 2,' "$(dirname "$0")/../../base/exit.h" &&
    grep -q 'X(RV_EXIT_REMOVED, 6,' "$(dirname "$0")/../../base/exit.h" &&
    grep -q 'X(RV_EXIT_VERSION, 13,' "$(dirname "$0")/../../base/exit.h" ||
    fail "base/exit.h's codes 1, 2, 6, 13 moved: update RestartPreventExitStatus"

score=$(systemd-analyze security --offline=true --no-pager "$unit" 2>/dev/null |
    sed -n 's/.*Overall exposure level for runvault.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || fail "no exposure level from systemd-analyze security"
python3 -c "import sys; sys.exit(0 if float('$score') <= float('$max') else 1)" ||
    fail "exposure $score > $max"
echo "test_unit: OK: verify clean, exposure $score (at most $max)"
