import { before, test } from "node:test";
import assert from "node:assert/strict";
import { plaintextPart, type RecordedResource } from "../helpers/mocks";
import { loadProgram } from "../helpers/program";

const HOOK_SECRET = "hook-s3cret-value-42";
let resources: RecordedResource[];
let byName: (n: string) => RecordedResource;

// An image built from source, pushed, and a hook at every point (issue 8).
before(async () => {
  process.env.SAFE_DEPLOY_COMMIT = "0123456789abcdef0123456789abcdef01234567";
  const loaded = await loadProgram({
    config: {
      app: {
        build: {
          context: "examples/app",
          target: "runtime",
          platform: "linux/amd64",
          args: { NODE_ENV: "production" },
          secrets: [{ id: "npm_token", env: "NPM_TOKEN" }],
          repository: "registry.example.com/acme/web",
          push: true,
        },
      },
      hooks: {
        preBackup: [{ name: "announce", command: "echo starting" }],
        postMigrate: [
          { name: "collectstatic", command: "python manage.py collectstatic --noinput", runIn: "container" },
          { name: "warm-cache", command: "echo warm" },
        ],
        preCutover: [
          { name: "check-config", command: "node -e 'require(\"./src/config\")'", runIn: "container" },
        ],
        postDeploy: [{ name: "smoke", command: "curl -fsS http://127.0.0.1:8080/notes", timeoutSeconds: 20 }],
      },
    },
    secrets: { dbPassword: "pw-123456", hookSecrets: JSON.stringify({ SENTRY_TOKEN: HOOK_SECRET }) },
  });
  ({ resources, byName } = loaded.rec);
});

const dependsOn = (a: string, b: string) =>
  assert.ok(byName(a).dependencies.includes(byName(b).urn), `${a} must depend on ${b}`);

test("the image is built from the context, tagged with the commit, with build secrets by env name only", () => {
  const img = byName("staging-app-image").inputs;
  assert.equal(img.name, "registry.example.com/acme/web:0123456789ab");
  assert.equal(img.build.context, "examples/app");
  assert.equal(img.build.target, "runtime");
  assert.equal(img.build.platform, "linux/amd64");
  assert.deepEqual(img.build.buildArgs, { NODE_ENV: "production" });
  assert.deepEqual(img.build.secrets, [{ id: "npm_token", env: "NPM_TOKEN" }]);
  assert.equal(img.keepLocally, true);
  assert.match(img.triggers.context, /^[0-9a-f]{64}$/);
  const push = byName("staging-app-push");
  assert.equal(push.type, "docker:index/registryImage:RegistryImage");
  assert.equal(push.inputs.name, "registry.example.com/acme/web:0123456789ab");
});

test("hooks run at their points: preBackup < backup < migrate < postMigrate < preCutover < app < gate < postDeploy", () => {
  dependsOn("staging-hook-announce", "staging-app-image");
  dependsOn("staging-backup", "staging-hook-announce");
  dependsOn("staging-hook-collectstatic", "staging-migration-migrate");
  dependsOn("staging-hook-warm-cache", "staging-hook-collectstatic");
  dependsOn("staging-hook-check-config", "staging-hook-warm-cache");
  dependsOn("staging-app-app", "staging-hook-check-config");
  dependsOn("staging-hook-smoke", "staging-health");
});

test("every hook runs the wrapper with its spec in the environment; soft only after deploy", () => {
  for (const h of ["announce", "collectstatic", "warm-cache", "check-config", "smoke"]) {
    const r = byName(`staging-hook-${h}`);
    assert.equal(
      r.inputs.create,
      'SAFE_DEPLOY_HOOK_LOG="${SAFE_DEPLOY_DATA_DIR:-.}/$SAFE_DEPLOY_HOOK_LOG" bash scripts/run-hook.sh',
    );
    assert.equal(r.inputs.logging, "none");
    assert.deepEqual(r.additionalSecretOutputs.sort(), ["stderr", "stdout"]);
    assert.equal(r.inputs.environment.SAFE_DEPLOY_HOOK_NAME, h);
    assert.equal(r.inputs.environment.SAFE_DEPLOY_HOOK_SOFT, h === "smoke" ? "1" : "0");
    assert.equal(r.inputs.environment.SENTRY_TOKEN, HOOK_SECRET);
  }
  const inImage = byName("staging-hook-check-config").inputs.environment;
  assert.equal(inImage.SAFE_DEPLOY_HOOK_MODE, "container");
  assert.equal(inImage.SAFE_DEPLOY_IMAGE, byName("staging-app-app").inputs.image);
  assert.match(inImage.DATABASE_URL, /@db:5432\/app$/);
  assert.match(byName("staging-hook-announce").inputs.environment.DATABASE_URL, /@127\.0\.0\.1:5432\/app$/);
  assert.equal(byName("staging-hook-smoke").inputs.environment.SAFE_DEPLOY_HOOK_TIMEOUT, "20");
});

test("hook secrets and the database password never appear in plaintext", () => {
  for (const r of resources) {
    const plain = JSON.stringify(plaintextPart(r.wireInputs));
    assert.ok(!plain.includes(HOOK_SECRET) && !plain.includes("pw-123456"), r.name);
  }
});
