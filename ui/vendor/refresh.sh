#!/usr/bin/env bash
# Refresh the vendored uPlot from the npm registry: the pinned version's
# tarball is checked against the integrity npm records for it (sha512),
# then its minified script, stylesheet and licence are copied here with a
# VERSION file. Run by hand when upgrading (change UPLOT_VERSION and
# UPLOT_INTEGRITY together); the build and the running node never fetch
# anything.
#
# usage: ui/vendor/refresh.sh
set -euo pipefail

UPLOT_VERSION=1.6.32
UPLOT_INTEGRITY=sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rv-uplot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$UPLOT_VERSION" >/dev/null)
tgz="$tmp/uplot-$UPLOT_VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$UPLOT_INTEGRITY" ]; then
    echo "refresh.sh: uplot $UPLOT_VERSION: integrity $got, expected" \
        "$UPLOT_INTEGRITY" >&2
    exit 1
fi
tar -xzf "$tgz" -C "$tmp"
dest="$here/uplot"
mkdir -p "$dest"
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" \
    "$tmp/package/LICENSE" "$dest/"
printf 'uplot %s (npm)\n%s\n' "$UPLOT_VERSION" "$UPLOT_INTEGRITY" \
    >"$dest/VERSION"
echo "refresh.sh: uplot $UPLOT_VERSION in $dest"
