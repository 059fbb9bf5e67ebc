#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs every Debian package Tessera needs to build, run and test.
# Idempotent: packages already present are skipped by apt. Run as root on Debian 12.
set -euo pipefail

BUILD_PKGS=(
    build-essential cmake pkg-config ninja-build
    libgdcm-dev libgdcm-tools libopenjp2-7-dev libcharls-dev
    libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev
    libcivetweb-dev libjansson-dev libsqlite3-dev libsodium-dev libqrencode-dev
    libssl-dev   # CivetWeb loads libssl.so for HTTPS
)
TEST_PKGS=(
    libcmocka-dev dcmtk python3 nodejs chromium
    openssl                    # self-signed certificates for the TLS tests
    clang libclang-rt-14-dev   # libFuzzer and the sanitizer runtimes for tests/fuzz
)

want=("${BUILD_PKGS[@]}")
if [ "${1:-}" = "--test" ]; then
    want+=("${TEST_PKGS[@]}")
fi

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: missing packages (${missing[*]}); run as root" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's nodejs comes without npm (NodeSource's includes it): the HTTP tests need both.
if [ "${1:-}" = "--test" ] && ! command -v npm >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
echo "install-deps: all ${#want[@]} packages present"
