#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is needed, builds, writes the project's own synthetic demo studies (a 120-slice
# CT with Hounsfield values and true geometry, a MONOCHROME1 radiograph, a colour ultrasound
# cine), imports them into out/data, sets a new password for the user admin (printed) and starts
# the server on 127.0.0.1 (Ctrl-C stops it).
# TESSERA_PORT (default 8080) and TESSERA_DATA (default out/data) change where.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target tessera

demo=out/demo
data=${TESSERA_DATA:-out/data}
port=${TESSERA_PORT:-8080}
if [ ! -d "$demo/ct" ]; then
    ./build/tessera demo "$demo"
fi
# Idempotent: instances already stored are counted as such.
./build/tessera import --data "$data" "$demo/ct" "$demo/cr" "$demo/us"
# Every study is behind a sign-in: a fresh password for the user "admin" at each start of the
# demo, printed below (the server keeps only its Argon2id hash).
password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
if ! printf '%s\n' "$password" | ./build/tessera user add --data "$data" --role admin admin >/dev/null 2>&1; then
    printf '%s\n' "$password" | ./build/tessera user passwd --data "$data" --role admin admin >/dev/null
fi
echo
echo "open http://127.0.0.1:$port/ in a browser and sign in as admin with the password $password"
echo "(DICOMweb at http://127.0.0.1:$port/dicomweb, with that sign-in or an API token)"
echo
exec ./build/tessera serve --data "$data" --listen "127.0.0.1:$port" --web-root web
