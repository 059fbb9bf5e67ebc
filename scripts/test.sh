#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is needed, builds, and runs the whole test suite: once in a normal build
# (unit, data and DCMTK conformance tests) and once under AddressSanitizer + UBSan, then every
# fuzz target briefly (TSR_FUZZ_SECONDS each, default 20; 0 skips; scripts/fuzz.sh for long runs).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh --test

# The HTTP tests' npm packages, exactly as locked (ctest runs them against each build).
(cd tests/http && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

jobs=$(nproc)
werror=OFF
[ -n "${CI:-}" ] && werror=ON

echo "== build (RelWithDebInfo) =="
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTSR_WERROR=$werror >/dev/null
cmake --build build -j "$jobs"

echo "== tests =="
(cd build && ctest --output-on-failure -j "$jobs")

echo "== build (AddressSanitizer + UBSan) =="
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTSR_SANITIZE=address,undefined \
    -DTSR_BUILD_BENCH=OFF -DTSR_WERROR=$werror >/dev/null
cmake --build build-asan -j "$jobs"

echo "== tests under ASan + UBSan =="
# Leak checking stays on; GDCM's own one-time static allocations are not reported as leaks.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j "$jobs")

fuzz_seconds=${TSR_FUZZ_SECONDS:-20}
if [ "$fuzz_seconds" -gt 0 ]; then
    echo "== fuzzing (libFuzzer, clang, ASan + UBSan; ${fuzz_seconds}s per target) =="
    # Its own build (build-fuzz) and corpus; a crash fails the run and names its reproducer.
    ./scripts/fuzz.sh all "$fuzz_seconds"
fi
