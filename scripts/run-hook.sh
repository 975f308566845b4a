#!/usr/bin/env bash
# Runs one deploy hook (issue 8) with a timeout. Its output goes to a 0600 log with secrets redacted and
# never to the engine: a failing command's error text would otherwise carry whatever the hook printed.
# Inputs come from the environment (see src/components/hooks.ts), never from the command line.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
name="$SAFE_DEPLOY_HOOK_NAME"
log="$SAFE_DEPLOY_HOOK_LOG"
limit="$SAFE_DEPLOY_HOOK_TIMEOUT"
umask 077
mkdir -p "$(dirname "$log")"

if [ "${SAFE_DEPLOY_HOOK_MODE:-local}" = container ]; then
  envflags=()
  for k in ${SAFE_DEPLOY_HOOK_ENV_NAMES:-}; do envflags+=(-e "$k"); done
  cname="safe-deploy-hook-$name-$$"
  cmd=(docker run --rm --name "$cname" --label safe-deploy.role=hook --network "$SAFE_DEPLOY_NETWORK"
    "${envflags[@]}" "$SAFE_DEPLOY_IMAGE" /bin/sh -c "$SAFE_DEPLOY_HOOK_CMD")
else
  cmd=(/bin/sh -c "$SAFE_DEPLOY_HOOK_CMD")
fi

timeout --kill-after=10 "$limit" "${cmd[@]}" 2>&1 |
  node --import "$here/node_modules/tsx/dist/loader.mjs" "$here/src/core/hooks/redact-stream.ts" >"$log"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ] && [ "${SAFE_DEPLOY_HOOK_MODE:-local}" = container ]; then
  docker rm -f "$cname" >/dev/null 2>&1 || true
fi
if [ "$rc" -eq 0 ]; then
  echo "safe-deploy-hook $name: ok"
  exit 0
fi
why="exit code $rc"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then why="timed out after ${limit}s"; fi
if [ "${SAFE_DEPLOY_HOOK_SOFT:-0}" = 1 ]; then
  # postDeploy: the release is already live; report, never fail the deploy.
  echo "safe-deploy-hook $name: failed ($why); output in $log"
  exit 0
fi
echo "hook \"$name\" failed ($why); its output, secrets redacted, is in $log" >&2
exit 1
