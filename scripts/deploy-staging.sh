#!/usr/bin/env bash
# The main job: a guarded deploy of the `staging` stack on this machine's Docker.
# No cloud account: state in ./.pulumi-state (file:// backend), secrets with a passphrase.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "deploy-staging: $*" >&2; exit 3; }
command -v pulumi >/dev/null ||
  fail "the Pulumi CLI is not installed. Install it with 'curl -fsSL https://get.pulumi.com | sh' (see https://www.pulumi.com/docs/install/), then run this again."
command -v docker >/dev/null ||
  fail "Docker is not installed. Install Docker Engine (https://docs.docker.com/engine/install/), then run this again."
docker info >/dev/null 2>&1 || fail "Docker is installed but its engine does not answer. Start it (e.g. 'sudo systemctl start docker')."

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$PWD/.pulumi-state}"
# Staging only: a fixed passphrase is fine for a local stack. Set your own for anything shared.
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-safe-deploy-staging}"
mkdir -p .pulumi-state

[ -d node_modules ] || npm ci
[ -d examples/app/node_modules ] || npm ci --prefix examples/app
# The app image is built by the deploy itself (app.build in Pulumi.staging.yaml, tagged with the commit).

pulumi stack select staging --create --secrets-provider passphrase
if ! pulumi config get dbPassword --stack staging >/dev/null 2>&1; then
  pulumi config set --secret --stack staging dbPassword "$(node -e 'process.stdout.write(require("crypto").randomBytes(18).toString("base64url"))')"
fi
# The guarded deploy: preflight, lock, release record, pulumi up, soak, automatic rollback, notifications.
exec bin/safe-deploy up --stack staging "$@"
