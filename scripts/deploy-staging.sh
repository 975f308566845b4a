#!/usr/bin/env bash
# The main job: a guarded deploy of the `staging` stack on this machine's Docker.
# No cloud account needed: without `pulumi login` or PULUMI_BACKEND_URL, state goes to ./.pulumi-state
# (file:// backend); secrets with a passphrase. The Pulumi CLI is the one on PATH, or the pinned version
# installed into ~/.pulumi/versions (src/cli/pulumi-cli.ts).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "deploy-staging: $*" >&2; exit 3; }
command -v docker >/dev/null ||
  fail "Docker is not installed. Install Docker Engine (https://docs.docker.com/engine/install/), then run this again."
docker info >/dev/null 2>&1 || fail "Docker is installed but its engine does not answer. Start it (e.g. 'sudo systemctl start docker')."

[ -d node_modules ] || npm ci
[ -d examples/app/node_modules ] || npm ci --prefix examples/app

# The CLI and backend `safe-deploy up` will use (exit 3 with the manual install command if no CLI).
env_out="$(node --import tsx scripts/pulumi-env.ts staging)" || exit $?
pulumi_cmd="$(sed -n 1p <<<"$env_out")"
backend="$(sed -n 2p <<<"$env_out")"
# An installed CLI goes first on PATH, for this script and for `safe-deploy up` below.
case "$pulumi_cmd" in /*) export PATH="$(dirname "$pulumi_cmd"):$PATH" ;; esac
if [ -n "$backend" ]; then
  export PULUMI_BACKEND_URL="$backend"
  mkdir -p "${backend#file://}"
fi
# Staging only: a fixed passphrase is fine for a local stack. Set your own for anything shared.
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-safe-deploy-staging}"
# The app image is built by the deploy itself (app.build in Pulumi.staging.yaml, tagged with the commit).

pulumi stack select staging --create --secrets-provider passphrase
# The owner's password, and the app role's (the app connects as a non-superuser role: issue 15).
for key in dbPassword dbAppPassword; do
  if ! pulumi config get "$key" --stack staging >/dev/null 2>&1; then
    pulumi config set --secret --stack staging "$key" "$(node -e 'process.stdout.write(require("crypto").randomBytes(18).toString("base64url"))')"
  fi
done
# The guarded deploy: preflight, lock, release record, pulumi up, soak, automatic rollback, notifications.
exec bin/safe-deploy up --stack staging "$@"
