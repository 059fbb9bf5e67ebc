#!/bin/sh
# SPDX-License-Identifier: MIT
# ctest entry for the HTTP tests: runs them with the tessera binary ctest passes in TESSERA_BIN.
cd "$(dirname "$0")" || exit 1
if [ ! -d node_modules ]; then
    if [ -n "${CI:-}" ]; then
        echo "tests/http/node_modules is missing: run 'npm ci' there (scripts/test.sh does)" >&2
        exit 1
    fi
    echo "skipped: run 'npm ci' in tests/http first" >&2
    exit 77
fi
exec npm test --silent
