// Pulumi entry point: the only place that reads pulumi.Config (docs/architecture.md, "Layers").
import * as pulumi from "@pulumi/pulumi";
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { PLAIN_KEYS, parseStackConfig, SECRET_KEYS, type SecretKey } from "./config";
import { Deployment } from "./components/deployment";

const cfg = new pulumi.Config("safe-deploy");
const stack = pulumi.getStack();

const raw: Record<string, unknown> = {};
for (const key of PLAIN_KEYS) {
  const value = cfg.getObject<unknown>(key);
  if (value !== undefined) raw[key] = value;
}
const keys = Object.keys(pulumi.runtime.allConfig())
  .filter((k) => k.startsWith("safe-deploy:"))
  .map((k) => k.slice("safe-deploy:".length));
// Only the names of the secrets set reach the validator; their values stay Pulumi secrets.
raw.secretsSet = SECRET_KEYS.filter((k) => keys.includes(k));
const unknown = keys.filter(
  (k) => !(PLAIN_KEYS as readonly string[]).includes(k) && !(SECRET_KEYS as readonly string[]).includes(k),
);
for (const k of unknown) raw[k] = true;
const config = parseStackConfig(raw, stack);

const projectDir = resolve(__dirname, "..");
/** The commit being deployed: `SAFE_DEPLOY_COMMIT` (set by `safe-deploy up`), else the checkout's HEAD. */
function currentCommit(): string {
  if (process.env.SAFE_DEPLOY_COMMIT) return process.env.SAFE_DEPLOY_COMMIT;
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { cwd: projectDir, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

const secret = (k: SecretKey) => cfg.getSecret(k);
const deployment = new Deployment(stack, {
  config,
  projectDir,
  // `safe-deploy rollback` runs an older program from a temporary worktree; backups still go to the project.
  dataDir: process.env.SAFE_DEPLOY_DATA_DIR ? resolve(process.env.SAFE_DEPLOY_DATA_DIR) : projectDir,
  commit: currentCommit(),
  secrets: {
    dbPassword: secret("dbPassword"),
    dbAppPassword: secret("dbAppPassword"),
    databaseUrl: secret("databaseUrl"),
    appDatabaseUrl: secret("appDatabaseUrl"),
    appSecrets: cfg.getSecretObject<Record<string, string>>("appSecrets"),
    hookSecrets: cfg.getSecretObject<Record<string, string>>("hookSecrets"),
    backupEncryptionKey: secret("backupEncryptionKey"),
    renderApiKey: secret("renderApiKey"),
    migrationDatabaseUrl: secret("migrationDatabaseUrl"),
  },
});

/** The app's URL, set only when the health gate passed. */
export const url = deployment.url;
/** The release key (image id + migrations checksum). */
export const releaseKey = deployment.releaseKey;
/** The app image's content id (`sha256:...`): a rollback can re-deploy exactly this image. */
export const imageId = deployment.imageId;
/** The pre-deploy backup of this release. */
export const backupFile = deployment.backupFile;
/** sha256 of the migrations this release applied. */
export const migrationsChecksum = deployment.migrationsChecksum;
/** When the health gate last passed. */
export const healthCheckedAt = deployment.healthCheckedAt;
/** One line per failed postDeploy hook: a warning for the release, never a rollback. */
export const postDeployWarnings = deployment.postDeployWarnings;
/** Names of the stack's containers (database, app, proxy, redis), for `safe-deploy status`. */
export const containers = deployment.containers;
