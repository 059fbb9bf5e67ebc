#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# peer_orthanc.sh: the peer half of bench_store: runs Debian's Orthanc (+ DICOMweb plugin) in its
# own network namespace that holds only loopback, and points bench_store's HTTP client at it, so
# Tessera and Orthanc are measured by the same client in the same run.
#
#   benchmarks/peer_orthanc.sh [options] BENCH_STORE GEN TSV
#     --runs N        STOW runs per client count (default 3; each sends another copy of ct600)
#     --qido-n N      timed requests per QIDO query (default 200)
#     --meta-n N      timed series-metadata requests (default 50)
#     --keep          keep /tmp/orthanc-bench (storage, index, log) afterwards
#     --also-never    after the default run, restart Orthanc with StorageAccessOnFind "Never"
#                     (its fastest QIDO mode) and time QIDO again (label orthanc-never)
#
# Orthanc 1.10 binds every interface whatever RemoteAccessAllowed says, so it only ever runs
# under `unshare --net --pid --fork --kill-child`: a fresh network namespace (loopback only) and
# a PID namespace whose init is the inner shell. When that shell exits, or unshare is killed,
# the kernel kills every process of the namespace, so Orthanc cannot outlive the benchmark.
# Idempotent: the working folder is recreated on every run.
set -euo pipefail

WORK=/tmp/orthanc-bench
PORT=8042
PLUGIN=/usr/share/orthanc/plugins/libOrthancDicomWeb.so

die() {
    echo "peer_orthanc: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- inside the namespaces

write_config() { # $1 = file, $2 = StorageAccessOnFind
    cat >"$1" <<EOF
{
  "Name" : "bench-orthanc",
  "StorageDirectory" : "$WORK/db",
  "IndexDirectory" : "$WORK/db",
  "StorageCompression" : false,
  "HttpServerEnabled" : true,
  "HttpPort" : $PORT,
  "HttpCompressionEnabled" : false,
  "DicomServerEnabled" : false,
  "DicomPort" : 4242,
  "RemoteAccessAllowed" : false,
  "AuthenticationEnabled" : false,
  "SslEnabled" : false,
  "KeepAlive" : true,
  "TcpNoDelay" : true,
  "SyncStorageArea" : true,
  "StorageAccessOnFind" : "$2",
  "Plugins" : [ "$PLUGIN" ],
  "DicomWeb" : { "Enable" : true, "Root" : "/dicom-web/", "EnableWado" : false }
}
EOF
}

ORTHANC_PID=
stop_orthanc() {
    if [ -n "$ORTHANC_PID" ]; then
        kill -TERM "$ORTHANC_PID" 2>/dev/null || true
        wait "$ORTHANC_PID" 2>/dev/null || true
        ORTHANC_PID=
    fi
}

start_orthanc() { # $1 = config
    Orthanc "$1" >>"$WORK/orthanc.log" 2>&1 &
    ORTHANC_PID=$!
    for _ in $(seq 1 300); do
        if curl -sf "http://127.0.0.1:$PORT/system" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$ORTHANC_PID" 2>/dev/null || die "Orthanc exited at startup; see $WORK/orthanc.log"
        sleep 0.1
    done
    die "Orthanc did not answer on 127.0.0.1:$PORT within 30 s; see $WORK/orthanc.log"
}

inner() { # BENCH GEN TSV RUNS QIDO_N META_N ALSO_NEVER
    local bench=$1 gen=$2 tsv=$3 runs=$4 qn=$5 mn=$6 never=$7
    trap stop_orthanc EXIT
    ip link set lo up
    [ "$(ip -o link | wc -l)" -eq 1 ] || die "the namespace holds more than loopback"
    write_config "$WORK/config.json" Always
    start_orthanc "$WORK/config.json"
    local ver
    ver=$(curl -sf "http://127.0.0.1:$PORT/system" | jq -r '"Orthanc \(.Version), DICOMweb plugin " + (.Plugins // [] | join(","))' 2>/dev/null || echo "Orthanc")
    echo "peer_orthanc: $ver $(dpkg-query -W -f='${Version}' orthanc-dicomweb 2>/dev/null), in a private network namespace (loopback only), pid $ORTHANC_PID"
    local base="http://127.0.0.1:$PORT/dicom-web"
    local common=(--base "$base" --label orthanc --tsv "$tsv")
    "$bench" http "${common[@]}" --runs "$runs" "$gen" stow
    "$bench" http "${common[@]}" "$gen" load
    "$bench" http "${common[@]}" --qido-n "$qn" "$gen" qido
    "$bench" http "${common[@]}" --meta-n "$mn" "$gen" metadata
    if [ "$never" = 1 ]; then
        stop_orthanc
        write_config "$WORK/config-never.json" Never
        start_orthanc "$WORK/config-never.json"
        echo "peer_orthanc: restarted with StorageAccessOnFind \"Never\""
        "$bench" http --base "$base" --label orthanc-never --tsv "$tsv" --qido-n "$qn" "$gen" qido
    fi
    stop_orthanc
    trap - EXIT
}

case "${1:-}" in
_inner)
    shift
    inner "$@"
    exit 0
    ;;
esac

# ---------------------------------------------------------------- outside

RUNS=3 QIDO_N=200 META_N=50 KEEP=0 NEVER=0
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --qido-n) QIDO_N=$2; shift 2 ;;
    --meta-n) META_N=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --also-never) NEVER=1; shift ;;
    -h | --help) sed -n '3,20p' "$0"; exit 0 ;;
    --*) die "unknown option $1" ;;
    *) break ;;
    esac
done
[ $# -eq 3 ] || die "usage: peer_orthanc.sh [options] BENCH_STORE GEN TSV (see --help)"
BENCH=$(realpath "$1") GEN=$(realpath "$2") TSV=$(realpath -m "$3") SELF=$(realpath "$0")
[ -x "$BENCH" ] || die "$BENCH is not executable"
[ -f "$GEN/info" ] || die "$GEN/info missing: run '$BENCH gen $GEN' first"

if ! command -v Orthanc >/dev/null || [ ! -f "$PLUGIN" ]; then
    [ "$(id -u)" = 0 ] || die "Orthanc is not installed: apt-get install -y orthanc orthanc-dicomweb"
    echo "peer_orthanc: installing orthanc orthanc-dicomweb (Debian)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y orthanc orthanc-dicomweb >/dev/null
fi
for tool in unshare ip curl jq; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
# Debian's package may start a system Orthanc (port 8042 on every interface); it is not ours to
# stop, but say so, since it would share the CPU with the benchmark.
if pgrep -x Orthanc >/dev/null; then
    echo "peer_orthanc: warning: an Orthanc is already running outside this benchmark" >&2
fi

rm -rf "$WORK"
mkdir -p "$WORK/db"
cleanup() {
    if [ "$KEEP" = 0 ]; then
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
unshare --net --pid --fork --kill-child \
    bash "$SELF" _inner "$BENCH" "$GEN" "$TSV" "$RUNS" "$QIDO_N" "$META_N" "$NEVER"
