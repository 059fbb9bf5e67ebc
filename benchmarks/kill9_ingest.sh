#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kill -9 during ingest, in a loop: every cycle starts `tessera serve` on the same data folder,
# uploads instances one STOW-RS request at a time while READERS (default 2) clients read
# (QIDO, series metadata, rendered frames at random windows of what was acknowledged), kills
# the server with SIGKILL at a random moment (0.1..1.5 s in), restarts it and checks that
#   - every instance ever acknowledged (HTTP 200) is retrievable and byte-identical,
#   - the index and the files agree: as many instances in QIDO as files under objects/,
#   - tmp/ holds nothing after the restart.
# Bounded: CYCLES cycles (default 100) or MAX_SECONDS (default 900), whichever comes first.
# The instances are a demo study of CT_SLICES slices (default 300), sent in random order.
#
#   benchmarks/kill9_ingest.sh [TESSERA_BIN] [CYCLES]      (default build/tessera, 100)
#
# Exit status 0 when every cycle passed; the last line gives the cycle and acknowledgement counts.
# Every request carries a random admin token (TESSERA_ADMIN_TOKEN of the server).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-build/tessera}")
cycles=${2:-100}
max_seconds=${MAX_SECONDS:-900}
work=$(mktemp -d /tmp/tessera-kill9.XXXXXX)
# The folder stays for a look when a check failed.
trap 'rc=$?; kill -9 "${pid:-0}" 2>/dev/null || true; [ $rc = 0 ] && rm -rf "$work" || echo "kept $work"' EXIT
data=$work/data
src=$work/src
TOKEN=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
tcurl() { curl -H "Authorization: Bearer $TOKEN" "$@"; }

"$bin" demo "$src" --ct-slices "${CT_SLICES:-300}" --us-frames 4 >/dev/null
mapfile -t files < <(find "$src" -name '*.dcm' | sort)
# study, series and SOP Instance UID of each file, from DCMTK.
declare -A path_of
uids=()
for f in "${files[@]}"; do
    u=$(dcmdump -q +P 0020,000d +P 0020,000e +P 0008,0018 "$f" | sed -E 's/.*\[([^]]*)\].*/\1/' | tr '\n' ' ')
    uids+=("$u")
    path_of["$u"]=$f
done
declare -A acked

start_server() {
    rm -f "$work/out" # else the previous server's port may be read before the redirection
    TESSERA_ADMIN_TOKEN=$TOKEN "$bin" serve --data "$data" --listen 127.0.0.1:0 --log-level 0 >"$work/out" 2>"$work/err" &
    pid=$!
    for _ in $(seq 200); do
        port=$(sed -nE 's|.*listening on http://127\.0\.0\.1:([0-9]+)/.*|\1|p' "$work/out" 2>/dev/null || true)
        [ -n "$port" ] && return 0
        kill -0 "$pid" 2>/dev/null || { echo "kill9: server exited at start:"; cat "$work/err"; exit 1; }
        sleep 0.05
    done
    echo "kill9: server did not start"; exit 1
}

check() {
    local n_files n_qido
    [ -z "$(ls -A "$data/tmp")" ] || { echo "kill9: tmp/ not empty after restart"; ls -la "$data/tmp"; exit 1; }
    n_files=$(find "$data/objects" -type f | wc -l)
    code=$(tcurl -s -o "$work/qido" -w '%{http_code}' "http://127.0.0.1:$port/dicomweb/instances?limit=1000")
    n_qido=$(grep -o '"00080018"' "$work/qido" | wc -l || true)
    [ "$code" = 200 ] && [ "$n_files" = "$n_qido" ] ||
        { echo "kill9: $n_files files but $n_qido instances in the index (QIDO status $code)"; head -c 300 "$work/qido"; exit 1; }
    for u in "${!acked[@]}"; do
        read -r st se sop <<<"$u"
        tcurl -sf -H 'Accept: application/dicom' -o "$work/got" \
            "http://127.0.0.1:$port/dicomweb/studies/$st/series/$se/instances/$sop" ||
            { echo "kill9: acknowledged $sop is not retrievable"; exit 1; }
        cmp -s "$work/got" "${path_of[$u]}" || { echo "kill9: $sop differs from what was sent"; exit 1; }
    done
}

upload_loop() { # uploads files in a random order until killed; logs each acknowledged one
    local b=kill9boundary
    for i in $(shuf -i 0-$((${#files[@]} - 1))); do
        { printf -- '--%s\r\nContent-Type: application/dicom\r\n\r\n' "$b"; cat "${files[$i]}"
          printf -- '\r\n--%s--\r\n' "$b"; } >"$work/body"
        code=$(tcurl -s -o /dev/null -w '%{http_code}' --data-binary @"$work/body" \
            -H "Content-Type: multipart/related; type=\"application/dicom\"; boundary=$b" \
            "http://127.0.0.1:$port/dicomweb/studies" || true)
        # Written before the next request: whatever is in the log was acknowledged.
        [ "$code" = 200 ] && echo "$i" >>"$work/acked"
    done
}

read_loop() { # reads while the uploads go on (kill -9 under load): QIDO, metadata, rendered frames
    local n u st se sop
    while :; do
        tcurl -s -o /dev/null "http://127.0.0.1:$port/dicomweb/studies" || true
        n=$(wc -l <"$work/acked")
        [ "$n" -gt 0 ] || { sleep 0.05; continue; }
        u=${uids[$(sed -n "$((RANDOM % n + 1))p" "$work/acked")]}
        read -r st se sop <<<"$u"
        tcurl -s -o /dev/null "http://127.0.0.1:$port/dicomweb/studies/$st/series/$se/metadata" || true
        tcurl -s -o /dev/null "http://127.0.0.1:$port/dicomweb/studies/$st/series/$se/instances/$sop/rendered?window=40,$((RANDOM % 1800 + 200))" || true
    done
}

t0=$SECONDS
done_cycles=0
: >"$work/acked"
for c in $(seq "$cycles"); do
    start_server
    check
    upload_loop &
    up=$!
    readers=()
    for _ in $(seq "${READERS:-2}"); do
        read_loop &
        readers+=($!)
    done
    sleep "0.$(shuf -i 1-9 -n 1)$(shuf -i 0-9 -n 1)"
    [ $((c % 3)) = 0 ] && sleep 0.6
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    kill "$up" "${readers[@]}" 2>/dev/null || true
    wait "$up" "${readers[@]}" 2>/dev/null || true
    while read -r i; do acked["${uids[$i]}"]=1; done <"$work/acked"
    done_cycles=$c
    [ $((SECONDS - t0)) -ge "$max_seconds" ] && break
done
start_server
check
kill "$pid"
wait "$pid" 2>/dev/null || true
echo "kill9: $done_cycles cycles, ${#acked[@]} distinct instances acknowledged, all retrievable byte-identical; index and files agree"
