// The Deployment's arguments, apart from it: platform.ts wires the pm2 and render stages with them,
// and deployment.ts imports platform.ts (no import circle).
import type * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../config";

/** Secret config values, as Pulumi secrets; only the keys the stack set are present. */
export interface DeploymentSecrets {
  dbPassword?: pulumi.Output<string>;
  /** The app role's password (container mode; derived from `dbPassword` when unset). */
  dbAppPassword?: pulumi.Output<string>;
  databaseUrl?: pulumi.Output<string>;
  /** External mode: the app's own less privileged URL (migrations and backups keep `databaseUrl`). */
  appDatabaseUrl?: pulumi.Output<string>;
  appSecrets?: pulumi.Output<Record<string, string>>;
  hookSecrets?: pulumi.Output<Record<string, string>>;
  backupEncryptionKey?: pulumi.Output<string>;
  /** Issue 17: `app.target: render`. */
  renderApiKey?: pulumi.Output<string>;
  /** Issue 17: a direct URL for migrations/backups when `databaseUrl` is pooled. */
  migrationDatabaseUrl?: pulumi.Output<string>;
}

/** Arguments of the whole guarded deploy. */
export interface DeploymentArgs {
  config: StackConfig;
  secrets: DeploymentSecrets;
  /** Directory relative paths in the config are resolved against (the project root). */
  projectDir: string;
  /**
   * Where data outlives a release (the backup directory): the project itself, also when an older
   * commit's program runs from a temporary worktree during a rollback (its files are removed after).
   */
  dataDir?: string;
  /** The git commit being deployed (tags built images, recorded on the release). */
  commit: string;
}
