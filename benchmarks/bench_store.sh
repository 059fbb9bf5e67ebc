#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_store.sh: the whole store/DICOMweb benchmark, Tessera and Orthanc (the peer) measured in
# the same run by the same client (bench_store), then one table with the ratios.
#
#   benchmarks/bench_store.sh [--no-peer] [--also-never] [--quick]
#
#   --no-peer     Tessera only (no Orthanc)
#   --also-never  also time Orthanc's QIDO with StorageAccessOnFind "Never" (its fastest mode)
#   --quick       fewer runs and requests (a smoke test of the script, not for quoting)
#
# Environment: BUILD (default /tmp/build-bench), WORK (default /tmp/tessera-bench). WORK/gen
# (the generated DICOM files, ~2.2 GB) is kept between runs; WORK/scratch (the stores, ~10 GB at
# peak; Orthanc's take ~2.2 GB more under /tmp/orthanc-bench) is removed at the end. Results:
# WORK/results-<time>.tsv and the table printed at the end. Takes about 9 minutes on the 2-core
# VM (8 without --also-never). A benchmark, never a test: nothing here runs in CI.
# Tessera's requests carry an admin bearer token (bench_store sets one on its in-process server);
# Orthanc's none.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-/tmp/build-bench}
WORK=${WORK:-/tmp/tessera-bench}
ARGS="$*"
PEER=1 NEVER=() IMPORT_RUNS=5 STOW_RUNS=3 QIDO_N=200 META_N=50
while [ $# -gt 0 ]; do
    case "$1" in
    --no-peer) PEER=0 ;;
    --also-never) NEVER=(--also-never) ;;
    --quick) IMPORT_RUNS=2 STOW_RUNS=1 QIDO_N=30 META_N=5 ;;
    -h | --help) sed -n '3,18p' "$0"; exit 0 ;;
    *) echo "bench_store.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$BUILD" bench_store tessera >/dev/null
B=$BUILD/benchmarks/bench_store
GEN=$WORK/gen
SCRATCH=$WORK/scratch
TSV=$WORK/results-$(date +%Y%m%d-%H%M%S).tsv
mkdir -p "$WORK"
cleanup() { rm -rf "$SCRATCH"; }
trap cleanup EXIT
if [ -e "$SCRATCH" ]; then
    echo "bench_store.sh: removing the leftovers of an interrupted run in $SCRATCH"
    rm -rf "$SCRATCH"
fi

pressure() { sed -n 's/^some avg10=\([0-9.]*\) avg60=\([0-9.]*\).*/cpu pressure (some) avg10 \1% avg60 \2%/p' /proc/pressure/cpu 2>/dev/null || true; }
echo "== bench_store $(date -u +%Y-%m-%dT%H:%M:%SZ)  tessera $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null)$(git -C "$SRC" diff --quiet 2>/dev/null || echo '+dirty')"
echo "   $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(uname -r)"
echo "   disk under test: $(df -T "$WORK" | awk 'NR==2 {print $1, $2}') ($WORK); load average $(cut -d' ' -f1-3 /proc/loadavg); $(pressure)"

"$B" gen "$GEN"
"$B" import "$GEN" "$SCRATCH" --runs "$IMPORT_RUNS" --tsv "$TSV"
"$B" tessera "$GEN" "$SCRATCH" --runs "$STOW_RUNS" --qido-n "$QIDO_N" --meta-n "$META_N" --tsv "$TSV"
if [ "$PEER" = 1 ]; then
    "$SRC/benchmarks/peer_orthanc.sh" --runs "$STOW_RUNS" --qido-n "$QIDO_N" --meta-n "$META_N" \
        "${NEVER[@]}" "$B" "$GEN" "$TSV"
fi
echo "== end: load average $(cut -d' ' -f1-3 /proc/loadavg); $(pressure)"
"$B" report "$TSV"
if [ "${#NEVER[@]}" -gt 0 ]; then
    "$B" report "$TSV" --peer orthanc-never | sed -n '/^\[qido\]/,/^\[metadata\]/p' | sed '$d'
fi
echo
echo "rows: $TSV"
echo "reproduce: $SRC/benchmarks/bench_store.sh $ARGS"
