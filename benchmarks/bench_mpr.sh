#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_mpr.sh: server-side reformats of a 512x512 x N-slice CT over HTTP. No peer: Orthanc
# and DCMTK render stored frames only, so the figures stand alone (the comparison a reader
# wants is the first stored-frame image, bench_render_http.sh).
#
#   benchmarks/bench_mpr.sh [--slices N] [--duration S]
#
# Measured, Tessera only, on a fresh server each time the volume matters:
#   volume       the first request of a series: build the volume (decode every slice, fill on
#                every core) and answer .../volume, as wall time of 3 fresh servers (median)
#   sagittal     200 sagittal planes at different positions, each computed (window default,
#                JPEG q90), concurrency 1 and 16
#   oblique      200 oblique planes (rotated 30 degrees about z) at different points
#   mip10        200 coronal 10 mm MIP slabs at different positions
#   tiles        level-0 256 px JPEG tiles of axial planes at 50 positions
# Every request carries a random admin token (the authenticated path).
# Environment: BUILD (default /tmp/build-bench), WORK (default /tmp/tessera-bench).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-/tmp/build-bench}
WORK=${WORK:-/tmp/tessera-bench}
SLICES=300 DUR=4
while [ $# -gt 0 ]; do
    case "$1" in
    --slices) SLICES=$2; shift ;;
    --duration) DUR=$2; shift ;;
    -h | --help) sed -n '3,18p' "$0"; exit 0 ;;
    *) echo "bench_mpr.sh: unknown option $1" >&2; exit 1 ;;
    esac
    shift
done

cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$BUILD" bench_render_http tessera >/dev/null
BR=$BUILD/benchmarks/bench_render_http
T=$BUILD/tessera
GEN=$WORK/mpr-gen-$SLICES
DATA=$WORK/mpr-store-$SLICES
PORT=18211
TOKEN=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n') # the server's admin token
tcurl() { curl -H "Authorization: Bearer $TOKEN" "$@"; }
mkdir -p "$WORK"
if [ ! -f "$GEN/done" ]; then
    rm -rf "$GEN" "$DATA"
    "$T" demo "$GEN" --ct-slices "$SLICES" >/dev/null
    touch "$GEN/done"
fi
[ -d "$DATA" ] || "$T" import --data "$DATA" "$GEN/ct" | tail -1

PID=
stop() {
    if [ -n "$PID" ]; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
        PID=
    fi
}
trap stop EXIT
start() {
    : >"$WORK/mpr-serve.log"
    TESSERA_ADMIN_TOKEN=$TOKEN "$T" serve --data "$DATA" --listen "127.0.0.1:$PORT" --prefetch 0 >>"$WORK/mpr-serve.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 300); do
        grep -q "listening on" "$WORK/mpr-serve.log" && return 0
        sleep 0.1
    done
    echo "bench_mpr.sh: tessera did not start" >&2
    exit 1
}

B=http://127.0.0.1:$PORT/dicomweb
start
read -r ST SE < <(tcurl -sf "$B/series?includefield=0020000D" |
    jq -r '.[] | select(.["00201209"].Value[0] > 2) | "\(.["0020000D"].Value[0]) \(.["0020000E"].Value[0])"' | head -1)
S=/studies/$ST/series/$SE
echo "== bench_mpr $(date -u +%Y-%m-%dT%H:%M:%SZ)  tessera $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null)$(git -C "$SRC" diff --quiet 2>/dev/null || echo '+dirty')"
echo "   $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); CT 512x512 x $SLICES slices ($(du -sm "$GEN/ct" | cut -f1) MB of DICOM)"

# ---- volume build, fresh server each time
times=()
for i in 1 2 3; do
    stop
    start
    t=$(tcurl -sf -o /dev/null -w '%{time_total}' "$B$S/volume")
    times+=("$t")
done
med=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
echo "  volume build (first request of the series, fresh server): median $(awk -v t="$med" 'BEGIN { printf "%.0f ms", t * 1000 }') of ${times[*]} s"
VJ=$(tcurl -sf "$B$S/volume")
zlo=$(jq '.extent.min[2]' <<<"$VJ")
zhi=$(jq '.extent.max[2]' <<<"$VJ")
xlo=$(jq '.extent.min[0]' <<<"$VJ")
xhi=$(jq '.extent.max[0]' <<<"$VJ")

# ---- URL lists: 200 distinct planes each
awk -v s="$S" -v a="$xlo" -v b="$xhi" 'BEGIN { for (i = 0; i < 200; i++) printf "%s/mpr/rendered?plane=sagittal&position=%.3f\n", s, a + 20 + (b - a - 40) * i / 199 }' >"$WORK/mpr-sag.urls"
awk -v s="$S" 'BEGIN { c = cos(3.14159265 / 6); n = sin(3.14159265 / 6); for (i = 0; i < 200; i++) printf "%s/mpr/rendered?plane=oblique&point=%.3f,0,0&row=%.6f,%.6f,0&col=0,0,-1\n", s, -100 + i, c, n }' >"$WORK/mpr-obl.urls"
awk -v s="$S" 'BEGIN { for (i = 0; i < 200; i++) printf "%s/mpr/rendered?plane=coronal&position=%.3f&slab=10,mip\n", s, -120 + i * 1.2 }' >"$WORK/mpr-mip.urls"
awk -v s="$S" -v a="$zlo" -v b="$zhi" 'BEGIN { for (i = 0; i < 50; i++) for (r = 0; r < 2; r++) for (c = 0; c < 2; c++) printf "%s/mpr/tiles/default/90/0/%d/%d.jpg?plane=axial&position=%.3f\n", s, c, r, a + 5 + (b - a - 10) * i / 49 }' >"$WORK/mpr-tiles.urls"

for sc in sag obl mip tiles; do
    n=$(wc -l <"$WORK/mpr-$sc.urls")
    for c in 1 16; do
        TESSERA_TOKEN=$TOKEN "$BR" run --base "$B" --urls "$WORK/mpr-$sc.urls" --scenario "mpr-$sc" --conc "$c" \
            --requests "$n" --pid "$PID" || true
        stop
        start
        tcurl -sf -o /dev/null "$B$S/volume" # the volume is built; the planes are not
    done
done
stop
