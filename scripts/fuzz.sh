#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan) and runs them.
#
#   scripts/fuzz.sh TARGET|all SECONDS      e.g. scripts/fuzz.sh dicom 3600 (a long run)
#                                                scripts/fuzz.sh all 20     (what CI runs)
#
# Each target starts from its committed seeds (tests/fuzz/corpus/TARGET, never written to) and
# a working corpus that grows across runs ($TSR_FUZZ_WORK/TARGET, default build-fuzz/fuzz-work);
# the DICOM targets also start from the shared corpus's files (../shared/dicom, read in place).
# A crash stops with the reproducer's path: copy it into tests/fuzz/corpus/TARGET/ together
# with the fix, and ctest replays it from then on (fuzz.TARGET.replay). Targets run one after the
# other on one core at low priority. Environment: TSR_FUZZ_BUILD (build dir, default build-fuzz),
# TSR_FUZZ_WORK, TSR_FUZZ_ARGS (extra libFuzzer flags). Exit status: 0 when no target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(dicom codec dataset multipart accept qido iiif http_params mpr api_json config)
if [ $# -ne 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 TARGET|all SECONDS   (targets: ${all_targets[*]})" >&2
    exit 2
fi
if [ "$1" = all ]; then
    targets=("${all_targets[@]}")
else
    [[ " ${all_targets[*]} " == *" $1 "* ]] || { echo "fuzz.sh: unknown target $1" >&2; exit 2; }
    targets=("$1")
fi
seconds=$2
build=${TSR_FUZZ_BUILD:-build-fuzz}
work=${TSR_FUZZ_WORK:-$build/fuzz-work}
dicom_dir=$(cd .. && pwd)/shared/dicom

CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTSR_FUZZ=ON -DTSR_BUILD_BENCH=OFF -DTSR_WERROR="$([ -n "${CI:-}" ] && echo ON || echo OFF)" \
    >/dev/null
cmake --build "$build" -j "$(nproc)" --target fuzz_all

# Leaks are findings too (except the known ones of system libraries in tests/fuzz/lsan.supp).
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "$work/crashes"
    seeds=(tests/fuzz/corpus/"$t")
    args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix="$work/crashes/$t-")
    case $t in
    dicom | dataset)
        # Real files are larger than libFuzzer's default 4 KiB: their first 64 KiB hold every
        # header and enough pixel data to decode small frames.
        args+=(-max_len=65536)
        # RSS creeps to 2 GB over ~300,000 runs of GDCM and the codecs under ASan while the live
        # heap stays ~35 MB (allocator caches and quarantine): a 4 GB RSS limit, with single
        # allocations still capped at 2 GB (the 4 GiB GDCM allocation is caught by that).
        args+=(-rss_limit_mb=4096 -malloc_limit_mb=2048)
        [ -d "$dicom_dir" ] && seeds+=("$dicom_dir")
        ;;
    multipart) args+=(-max_len=16384) ;;
    esac
    # libjpeg and cfg_parse print on every input; libFuzzer and the sanitizers keep their
    # reports. An abort()'s own message is lost with them: replay the reproducer with
    # $build/tests/fuzz/fuzz_${t}_replay (cmake --build $build --target fuzz_${t}_replay) to see it.
    args+=(-close_fd_mask=3)
    log="$work/$t.log"
    echo "== fuzz $t: ${seconds}s (log $log)"
    # The first directory receives new inputs; the seed directories are only read.
    if nice -n 10 "$build/tests/fuzz/fuzz_$t" "${args[@]}" ${TSR_FUZZ_ARGS:-} "$work/$t" \
        "${seeds[@]}" >"$log" 2>&1; then
        grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" | tr '\n' ' '
        echo
    else
        failed+=("$t")
        tail -n 60 "$log"
        repro=$(ls -t "$work"/crashes/"$t"-* 2>/dev/null | head -1)
        echo "fuzz.sh: $t crashed; reproducer: $repro" >&2
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]}" >&2
    exit 1
fi
