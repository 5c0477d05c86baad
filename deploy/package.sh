#!/usr/bin/env bash
# Build runvault's Debian package with dpkg-buildpackage and debhelper
# (debian/), then run lintian on it.
#
#   deploy/package.sh [OUT_DIR]      (default: ./dist)
#
# The build runs in a copy of the tracked and untracked-but-not-ignored
# files (no build directories), so the source tree stays clean. Prints the
# .deb's path and size, then lintian's tags (every one left is explained in
# debian/README.source); exits non-zero if the build fails or lintian
# reports an error.
set -euo pipefail

cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist}")
work=$(mktemp -d "${TMPDIR:-/tmp}/runvault-pkg-XXXXXX")
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/src" "$out"
git ls-files -z --cached --others --exclude-standard |
    grep -zv '^build' | xargs -0 cp --parents -t "$work/src"
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
arch=$(dpkg --print-architecture)
echo "package: building runvault $version in $work/src"
(cd "$work/src" && dpkg-buildpackage -us -uc -b -j"$(nproc)") \
    >"$work/build.log" 2>&1 || {
    tail -n 40 "$work/build.log" >&2
    echo "package: dpkg-buildpackage failed" >&2
    exit 1
}
deb=runvault_${version}_${arch}.deb
cp "$work/$deb" "$out/"
echo "package: $out/$deb ($(stat -c %s "$out/$deb") bytes)"

echo "package: lintian"
lintian --info --display-info --pedantic "$out/$deb" | tee "$work/lintian.txt"
if grep -q '^E: ' "$work/lintian.txt"; then
    echo "package: lintian reports errors" >&2
    exit 1
fi
echo "package: lintian: $(grep -c '^[WIP]: ' "$work/lintian.txt" || true) tags"
