#!/usr/bin/env bash
# Runs every test file in its own process (node:test's default), so each file's Pulumi mocks stay apart.
set -euo pipefail
cd "$(dirname "$0")/.."
# On a fresh clone `npm test` is one of the README's two commands: install what it runs with first.
[ -d node_modules ] || npm ci
[ -d examples/app/node_modules ] || npm ci --prefix examples/app
mapfile -t files < <(find test examples/app/test -name '*.test.ts' 2>/dev/null | sort)
if [ "$#" -gt 0 ]; then files=("$@"); fi
exec node --import tsx --import ./test/helpers/test-tmpdir.ts --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout="${TEST_TIMEOUT_MS:-600000}" "${files[@]}"
