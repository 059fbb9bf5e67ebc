#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_render_http.sh: rendered frames (and Tessera's tiles) over HTTP at 1, 16 and 64
# keep-alive connections, Tessera and Orthanc (the peer) measured by the same client
# (bench_render_http) in the same run on the same data; one table with the ratios, an SVG chart
# and TSV rows.
#
#   benchmarks/bench_render_http.sh [--no-peer] [--no-j2k] [--quick] [--duration S]
#
#   --no-peer     Tessera only        --no-j2k   skip the JPEG 2000 copy of the series
#   --quick       1.5 s per point (a smoke test of the script, not for quoting)
#   --duration S  seconds per timed point (default 4)
#
# Data (kept in WORK/render-gen between runs): `tessera demo --ct-slices 200` (512x512 16-bit
# CT, explicit VR little endian), a JPEG 2000 lossless copy of it (gdcmconv --j2k, new
# study/series/SOP UIDs via dcmodify), and ../shared/dicom/large/mammo_j2k_lossy (3064x4664)
# for the tiles when present. Scenarios, each at concurrency 1, 16, 64:
#   cold[-j2k]   a fresh server (Tessera: empty cache; Orthanc: restarted) for every point, one
#                pass over every instance, default window. The OS page cache stays warm.
#   window[-j2k] instances already fetched once (decoded), window=40,W,linear with a new W each
#                request
#   same         the same URL every time (no If-None-Match)
#   same-304     Tessera only: the same URL with If-None-Match (every answer 304)
#   tiles-NMB    Tessera only: the mammogram's 256x256 JPEG tiles (q 90, default window) of
#                levels 0..2, warm, rotating, with --cache-mb N (64 and 512)
# Orthanc 1.10 (+ DICOMweb plugin, + GDCM plugin for JPEG 2000 when orthanc-gdcm is installed)
# runs only inside `unshare --net --pid --fork --kill-child --mount-proc` (loopback only; it dies
# with the namespace; /proc shows the namespace's pids, for its VmHWM), as in peer_orthanc.sh. Its rendered path is the
# faster of the DICOMweb plugin's .../rendered and the core REST /instances/{id}/rendered, by a
# probe at concurrency 1 (window scenarios always use the plugin: only it takes window=).
# Tessera runs with access control: a random admin token (TESSERA_ADMIN_TOKEN) that every
# request to it carries (bench_render_http through TESSERA_TOKEN, curl through a header), so the
# authenticated path is measured; Orthanc gets no token.
# Environment: BUILD (default /tmp/build-bench), WORK (default /tmp/tessera-bench). Output:
# WORK/render-<time>.tsv, WORK/render.svg. A benchmark, never a test: nothing here runs in CI.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
SELF=$(realpath "$0")
BUILD=${BUILD:-/tmp/build-bench}
WORK=${WORK:-/tmp/tessera-bench}
OWORK=/tmp/orthanc-render-bench
OPORT=8042
PLUGIN=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
GDCM_PLUGIN=/usr/share/orthanc/plugins/libOrthancGdcm.so
CONCS="1 16 64"

die() {
    echo "bench_render_http.sh: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- Orthanc, inside the namespaces

ORTHANC_PID=
stop_orthanc() {
    if [ -n "$ORTHANC_PID" ]; then
        kill -TERM "$ORTHANC_PID" 2>/dev/null || true
        wait "$ORTHANC_PID" 2>/dev/null || true
        ORTHANC_PID=
    fi
}

start_orthanc() {
    Orthanc "$OWORK/config.json" >>"$OWORK/orthanc.log" 2>&1 &
    ORTHANC_PID=$!
    for _ in $(seq 1 300); do
        curl -sf "http://127.0.0.1:$OPORT/system" >/dev/null 2>&1 && return 0
        kill -0 "$ORTHANC_PID" 2>/dev/null || die "Orthanc exited at startup; see $OWORK/orthanc.log"
        sleep 0.1
    done
    die "Orthanc did not answer within 30 s; see $OWORK/orthanc.log"
}

inner() { # BR TSV DUR GEN J2K
    local br=$1 tsv=$2 dur=$3 gen=$4 j2k=$5
    trap stop_orthanc EXIT
    ip link set lo up
    [ "$(ip -o link | wc -l)" -eq 1 ] || die "the namespace holds more than loopback"
    local GDCM=
    # Orthanc 1.10 decodes JPEG 2000 only through the GDCM plugin (orthanc-gdcm)
    [ -f "$GDCM_PLUGIN" ] && GDCM=", \"$GDCM_PLUGIN\""
    cat >"$OWORK/config.json" <<EOF
{
  "Name" : "bench-orthanc", "StorageDirectory" : "$OWORK/db", "IndexDirectory" : "$OWORK/db",
  "StorageCompression" : false, "HttpServerEnabled" : true, "HttpPort" : $OPORT,
  "HttpCompressionEnabled" : false, "DicomServerEnabled" : false, "RemoteAccessAllowed" : false,
  "AuthenticationEnabled" : false, "SslEnabled" : false, "KeepAlive" : true, "TcpNoDelay" : true,
  "Plugins" : [ "$PLUGIN"$GDCM ],
  "DicomWeb" : { "Enable" : true, "Root" : "/dicom-web/", "EnableWado" : false }
}
EOF
    start_orthanc
    local sets=(ct) s
    [ "$j2k" = 1 ] && sets+=(ct-j2k)
    for s in "${sets[@]}"; do
        for f in "$gen/$s"/*.dcm; do
            curl -sf -X POST -H 'Expect:' --data-binary @"$f" "http://127.0.0.1:$OPORT/instances" >/dev/null ||
                die "Orthanc refused $f"
        done
    done
    echo "orthanc: $(curl -sf "http://127.0.0.1:$OPORT/system" | jq -r '"Orthanc \(.Version)"') + DICOMweb plugin $(dpkg-query -W -f='${Version}' orthanc-dicomweb), private network namespace (loopback only), $(curl -sf "http://127.0.0.1:$OPORT/statistics" | jq -r .CountInstances) instances"
    # core REST URLs, in the same order (by InstanceNumber) as the DICOMweb ones
    for s in "${sets[@]}"; do
        local se
        se=$(sed -n '1s|.*/series/\([^/]*\)/.*|\1|p' "$OWORK/$s.urls")
        curl -sf -X POST "http://127.0.0.1:$OPORT/tools/find" \
            -d "{\"Level\":\"Instance\",\"Expand\":true,\"Query\":{\"SeriesInstanceUID\":\"$se\"}}" |
            jq -r 'sort_by(.MainDicomTags.InstanceNumber | tonumber) | .[] | "/instances/\(.ID)/rendered"' \
                >"$OWORK/$s.core.urls"
        [ "$(wc -l <"$OWORK/$s.urls")" = "$(wc -l <"$OWORK/$s.core.urls")" ] || die "Orthanc lost instances of $s"
    done
    local dw="http://127.0.0.1:$OPORT/dicom-web" core="http://127.0.0.1:$OPORT"
    # probe: the faster default-window rendered path at concurrency 1
    local pt pp
    "$br" run --base "$dw" --urls "$OWORK/ct.urls" --scenario probe-plugin --label orthanc --conc 1 \
        --warm --duration 2 --pid "$ORTHANC_PID" >"$OWORK/probe" || true
    "$br" run --base "$core" --urls "$OWORK/ct.core.urls" --scenario probe-core --label orthanc --conc 1 \
        --warm --duration 2 --pid "$ORTHANC_PID" >>"$OWORK/probe" || true
    cat "$OWORK/probe"
    pp=$(sed -n 's/.*probe-plugin .* \([0-9.]*\) req\/s.*/\1/p' "$OWORK/probe")
    pt=$(sed -n 's/.*probe-core .* \([0-9.]*\) req\/s.*/\1/p' "$OWORK/probe")
    local base=$dw sfx=urls path="DICOMweb plugin .../rendered"
    if awk -v a="$pt" -v b="$pp" 'BEGIN { exit !(a > b) }'; then
        base=$core sfx=core.urls path="core REST /instances/{id}/rendered"
    fi
    echo "orthanc: default-window scenarios use the $path ($pt req/s core vs $pp plugin at c=1); window scenarios the DICOMweb plugin"
    local common=(--label orthanc --tsv "$tsv")
    for s in "${sets[@]}"; do
        local sc=cold
        [ "$s" = ct-j2k ] && sc=cold-j2k
        for c in $CONCS; do
            stop_orthanc
            start_orthanc
            "$br" run "${common[@]}" --base "$base" --urls "$OWORK/$s.$sfx" --scenario "$sc" --conc "$c" \
                --requests "$(wc -l <"$OWORK/$s.urls")" --pid "$ORTHANC_PID" || true
        done
    done
    for s in "${sets[@]}"; do
        local sc=window
        [ "$s" = ct-j2k ] && sc=window-j2k
        for c in $CONCS; do
            "$br" run "${common[@]}" --base "$dw" --urls "$OWORK/$s.urls" --scenario "$sc" --conc "$c" \
                --warm --mode window --duration "$dur" --pid "$ORTHANC_PID" || true
        done
    done
    for c in $CONCS; do
        "$br" run "${common[@]}" --base "$base" --urls "$OWORK/ct.$sfx" --scenario same --conc "$c" \
            --mode same --warm --duration "$dur" --pid "$ORTHANC_PID" || true
    done
    stop_orthanc
    trap - EXIT
}

if [ "${1:-}" = _inner ]; then
    shift
    inner "$@"
    exit 0
fi

# ---------------------------------------------------------------- outside

PEER=1 J2K=1 DUR=4
while [ $# -gt 0 ]; do
    case "$1" in
    --no-peer) PEER=0 ;;
    --no-j2k) J2K=0 ;;
    --quick) DUR=1.5 ;;
    --duration) DUR=$2; shift ;;
    -h | --help) sed -n '3,35p' "$0"; exit 0 ;;
    *) die "unknown option $1" ;;
    esac
    shift
done

cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$BUILD" bench_render_http tessera >/dev/null
BR=$BUILD/benchmarks/bench_render_http
T=$BUILD/tessera
GEN=$WORK/render-gen
TSV=$WORK/render-$(date +%Y%m%d-%H%M%S).tsv
MAMMO=$SRC/../shared/dicom/large/mammo_j2k_lossy__MG1_J2KI.dcm
mkdir -p "$WORK"

# ---- data
if [ ! -f "$GEN/ct.done" ]; then
    rm -rf "$GEN"
    "$T" demo "$GEN" --ct-slices 200 >/dev/null
    touch "$GEN/ct.done"
fi
if [ "$J2K" = 1 ] && [ ! -f "$GEN/j2k.done" ]; then
    command -v gdcmconv >/dev/null && command -v dcmodify >/dev/null ||
        die "--no-j2k, or install libgdcm-tools and dcmtk"
    rm -rf "$GEN/ct-j2k" && mkdir -p "$GEN/ct-j2k"
    h=$(sha256sum "$GEN/ct/CT_0001.dcm" | cut -c1-12)
    export ST=2.25.$((16#$h))1 SE=2.25.$((16#$h))2 OUT=$GEN/ct-j2k
    # shellcheck disable=SC2016
    ls "$GEN"/ct/*.dcm | xargs -P "$(nproc)" -I{} bash -c '
        o=$OUT/$(basename {}); cp {} "$o.tmp"
        dcmodify -nb -m "(0020,000D)=$ST" -m "(0020,000E)=$SE" -m "(0008,103E)=CT J2K" -gin "$o.tmp" >/dev/null
        gdcmconv --j2k "$o.tmp" "$o" && rm -f "$o.tmp"'
    touch "$GEN/j2k.done"
fi

TDATA=$WORK/render-store
TPORT=18199
TPID=
TOKEN=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n') # Tessera's admin token
tcurl() { curl -H "Authorization: Bearer $TOKEN" "$@"; }
stop_tessera() {
    if [ -n "$TPID" ]; then
        kill -TERM "$TPID" 2>/dev/null || true
        wait "$TPID" 2>/dev/null || true
        TPID=
    fi
}
start_tessera() { # $1 = cache MB
    : >"$WORK/render-serve.log"
    TESSERA_ADMIN_TOKEN=$TOKEN "$T" serve --data "$TDATA" --listen "127.0.0.1:$TPORT" --cache-mb "$1" \
        >>"$WORK/render-serve.log" 2>&1 &
    TPID=$!
    for _ in $(seq 1 300); do
        grep -q "listening on" "$WORK/render-serve.log" && return 0
        kill -0 "$TPID" 2>/dev/null || die "tessera serve exited; see $WORK/render-serve.log"
        sleep 0.1
    done
    die "tessera serve did not start"
}
cleanup() {
    stop_tessera
    [ "$PEER" = 1 ] && rm -rf "$OWORK"
}
trap cleanup EXIT

rm -rf "$TDATA"
INPUTS=("$GEN/ct")
[ "$J2K" = 1 ] && INPUTS+=("$GEN/ct-j2k")
[ -f "$MAMMO" ] && INPUTS+=("$MAMMO")
"$T" import --data "$TDATA" "${INPUTS[@]}" | tail -1

pressure() { sed -n 's/^some avg10=\([0-9.]*\) avg60=\([0-9.]*\).*/cpu pressure (some) avg10 \1% avg60 \2%/p' /proc/pressure/cpu 2>/dev/null || true; }
echo "== bench_render_http $(date -u +%Y-%m-%dT%H:%M:%SZ)  tessera $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null)$(git -C "$SRC" diff --quiet 2>/dev/null || echo '+dirty')"
echo "   $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); load average $(cut -d' ' -f1-3 /proc/loadavg); $(pressure)"

# ---- URL lists (relative to the DICOMweb root, by InstanceNumber), from Tessera's QIDO
start_tessera 512
TB=http://127.0.0.1:$TPORT/dicomweb
urls_of() { # description -> rendered URLs of that series
    local q
    q=$(tcurl -sf "$TB/series?SeriesDescription=$(printf %s "$1" | jq -sRr @uri)&includefield=0020000D" |
        jq -r '.[0] | "\(.["0020000D"].Value[0]) \(.["0020000E"].Value[0])"')
    set -- $q
    tcurl -sf "$TB/studies/$1/series/$2/instances?includefield=00200013" |
        jq -r --arg s "$1" --arg se "$2" 'sort_by(.["00200013"].Value[0]) | .[] |
            "/studies/\($s)/series/\($se)/instances/\(.["00080018"].Value[0])/rendered"'
}
SETS=(ct)
urls_of "Phantom head-neck-chest 2.5 mm" >"$WORK/ct.urls"
if [ "$J2K" = 1 ]; then
    urls_of "CT J2K" >"$WORK/ct-j2k.urls"
    SETS+=(ct-j2k)
fi
for s in "${SETS[@]}"; do
    [ "$(wc -l <"$WORK/$s.urls")" -ge 200 ] || die "$s: fewer than 200 instances in the index"
done
if [ -f "$MAMMO" ]; then
    : >"$WORK/tiles.urls"
    mi=$(tcurl -sf "$TB/series?includefield=0020000D" | jq -r '.[] | select(.["00080060"].Value[0] != "CT") |
        "\(.["0020000D"].Value[0]) \(.["0020000E"].Value[0])"' | head -1)
    set -- $mi
    mi=$(tcurl -sf "$TB/studies/$1/series/$2/instances" | jq -r --arg s "$1" --arg se "$2" \
        '.[0] | "/studies/\($s)/series/\($se)/instances/\(.["00080018"].Value[0])"')
    pj=$(tcurl -sf "$TB$mi/frames/1/tiles")
    tw=$(jq .width <<<"$pj") th=$(jq .height <<<"$pj") ts=$(jq .tileSize <<<"$pj")
    for l in 0 1 2; do
        w=$(((tw + (1 << l) - 1) >> l)) h=$(((th + (1 << l) - 1) >> l))
        for ((r = 0; r < (h + ts - 1) / ts; r++)); do
            for ((c = 0; c < (w + ts - 1) / ts; c++)); do
                echo "$mi/frames/1/tiles/default/90/$l/$c/$r.jpg" >>"$WORK/tiles.urls"
            done
        done
    done
    echo "tiles: ${tw}x${th}, ${ts}px, levels 0..2: $(wc -l <"$WORK/tiles.urls") tiles"
fi
stop_tessera

# ---- Tessera (bench_render_http sends TESSERA_TOKEN as a bearer token; Orthanc's runs, in the
# namespace below, do not see it)
COMMON=(--label tessera --tsv "$TSV" --base "$TB")
BRT() { TESSERA_TOKEN=$TOKEN "$BR" "$@"; }
for s in "${SETS[@]}"; do
    sc=cold
    [ "$s" = ct-j2k ] && sc=cold-j2k
    for c in $CONCS; do
        start_tessera 512
        BRT run "${COMMON[@]}" --urls "$WORK/$s.urls" --scenario $sc --conc "$c" \
            --requests "$(wc -l <"$WORK/$s.urls")" --pid "$TPID" || true
        stop_tessera
    done
done
start_tessera 512
for s in "${SETS[@]}"; do
    sc=window
    [ "$s" = ct-j2k ] && sc=window-j2k
    for c in $CONCS; do
        BRT run "${COMMON[@]}" --urls "$WORK/$s.urls" --scenario $sc --conc "$c" --warm \
            --mode window --duration "$DUR" --pid "$TPID" || true
    done
done
for c in $CONCS; do
    BRT run "${COMMON[@]}" --urls "$WORK/ct.urls" --scenario same --conc "$c" --warm --mode same \
        --duration "$DUR" --pid "$TPID" || true
done
for c in $CONCS; do
    BRT run "${COMMON[@]}" --urls "$WORK/ct.urls" --scenario same-304 --conc "$c" --mode same --inm \
        --duration "$DUR" --pid "$TPID" || true
done
echo "   tessera cache after the rendered scenarios: $(tcurl -sf "http://127.0.0.1:$TPORT/stats" | jq -c '[.used_bytes, .budget_bytes, (.caches[] | {(.name): [.hits, .misses, .inserts]})]')"
stop_tessera
if [ -s "$WORK/tiles.urls" ]; then
    for mb in 64 512; do
        start_tessera "$mb"
        for c in $CONCS; do
            BRT run "${COMMON[@]}" --urls "$WORK/tiles.urls" --scenario "tiles-${mb}MB" --conc "$c" \
                --warm --duration "$DUR" --pid "$TPID" || true
        done
        echo "   cache after tiles-${mb}MB: $(tcurl -sf "http://127.0.0.1:$TPORT/stats" | jq -c '[.used_bytes, .budget_bytes, (.caches[] | {(.name): [.hits, .misses, .evictions]})]')"
        stop_tessera
    done
fi

# ---- Orthanc, in its own network and PID namespaces
if [ "$PEER" = 1 ]; then
    command -v Orthanc >/dev/null && [ -f "$PLUGIN" ] || die "apt-get install -y orthanc orthanc-dicomweb (or --no-peer)"
    if pgrep -x Orthanc >/dev/null; then
        echo "bench_render_http.sh: warning: an Orthanc is already running outside this benchmark" >&2
    fi
    rm -rf "$OWORK" && mkdir -p "$OWORK/db"
    for s in "${SETS[@]}"; do cp "$WORK/$s.urls" "$OWORK/"; done
    unshare --net --pid --fork --kill-child --mount-proc bash "$SELF" _inner "$BR" "$TSV" "$DUR" "$GEN" "$J2K"
fi

echo "== end: load average $(cut -d' ' -f1-3 /proc/loadavg); $(pressure)"
"$BR" report "$TSV" --svg "$WORK/render.svg"
echo "rows: $TSV"
