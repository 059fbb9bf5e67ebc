#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is needed, builds, writes the project's own synthetic demo studies and renders
# the demo CT with the default (soft tissue) and a bone window. Later issues make this start
# the server on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target tessera

out=${TESSERA_DEMO_DIR:-out/demo}
./build/tessera demo "$out"
ct=$(ls "$out"/ct/*.dcm | sort | sed -n '60p')
./build/tessera render "$ct" -o "$out/ct-soft-tissue.png"
./build/tessera render "$ct" -o "$out/ct-bone.jpg" --window 600,2000 --quality 90
./build/tessera render "$(ls "$out"/cr/*.dcm | head -1)" -o "$out/cr.png" --viewport 512,512
./build/tessera render "$(ls "$out"/us/*.dcm | head -1)" -o "$out/us-frame10.jpg" --frame 10
echo "demo images written to $out/ (ct-soft-tissue.png, ct-bone.jpg, cr.png, us-frame10.jpg)"
