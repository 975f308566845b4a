// A command's hold on one stack (`openContext`): the stack, its config and secrets, logs, ledger,
// containers, database and the real ports. `up`, `rollback`, `status`, `seed`, `checkpoint` and `recover`
// share it; the parts live beside it (config, database, git, preflight, ports) and are re-exported here.
import { existsSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { ConfigError } from "../../core/errors";
import { createLogger } from "../../core/log/logger";
import { containersByRole } from "../../core/release/labels";
import { Ledger } from "../../core/release/ledger";
import type { StackAccess } from "../../core/release/stack-port";
import { stackContainers } from "../containers";
import { openStack } from "../stack";
import { configFromStack, secretLiterals } from "./config";
import { databaseTarget } from "./database";
import { realPorts } from "./ports";
import type { ContextOptions, ReleaseContext } from "./types";

export { configFromStack, secretLiterals, stackFile, type StackSecrets } from "./config";
export { databaseTarget, readSchemaVersion, type DatabaseTarget } from "./database";
export { git, hasCommit, migrationsAt } from "./git";
export type { ContextOptions, ReleaseContext } from "./types";

/**
 * The stack's containers by role, found on the Docker host by their labels: the stack's `containers`
 * output is that of the last successful update and may name a container a failed update replaced. The
 * output is used only when no container carries the labels (deployed by a version that set none) or
 * Docker does not answer.
 */
export async function containersOf(stack: StackAccess, dockerHost: string): Promise<Record<string, string>> {
  // Docker not answering: the output is the best guess left (preflight reports Docker itself).
  const labelled = containersByRole(await stackContainers(dockerHost, stack.name).catch(() => []));
  if (Object.keys(labelled).length) return labelled;
  const raw = (await stack.outputs()).containers?.value;
  return raw ? (JSON.parse(raw) as Record<string, string>) : {};
}

/** Opens the stack and reads its config; a bad config is one ConfigError (exit 2) naming every key. */
export async function openContext(o: ContextOptions): Promise<ReleaseContext> {
  if (!o.stack) throw new ConfigError("`--stack` is required, e.g. --stack staging");
  const projectDir = resolve(o.projectDir ?? ".");
  if (!existsSync(join(projectDir, "Pulumi.yaml"))) {
    throw new ConfigError(
      `no Pulumi.yaml in ${projectDir}: run from the project directory or pass --project-dir`,
    );
  }
  const stateDir = resolve(projectDir, o.stateDir ?? ".safe-deploy");
  const logsDir = join(projectDir, "logs");
  const stack = await (o.openStack ?? openStack)({ stack: o.stack, projectDir, create: o.create });
  const { config, secrets } = configFromStack(await stack.getAllConfig(), o.stack);
  const secretValues = Object.values(secrets).filter((s): s is string => !!s);
  const masked = secretLiterals(secrets);
  const fileLog = createLogger({ file: join(logsDir, o.logName ?? "update.log"), secrets: masked });
  const consoleLog = createLogger({
    file: join(logsDir, o.logName ?? "update.log"),
    console: o.console ?? process.stderr,
    secrets: masked,
  });
  const ledger = new Ledger(stateDir, o.stack, secretValues);
  const backupDir = isAbsolute(config.backup.dir)
    ? config.backup.dir
    : resolve(projectDir, config.backup.dir);
  let containersCache: Record<string, string> | undefined;
  const containers = async () => {
    if (containersCache) return containersCache;
    containersCache = await containersOf(stack, config.docker.host);
    return containersCache;
  };
  const database = async () => databaseTarget(config, secrets, await containers().catch(() => undefined));
  const ctx: ReleaseContext = {
    stackName: o.stack,
    projectDir,
    stateDir,
    logsDir,
    stack,
    config,
    secrets,
    log: consoleLog,
    fileLog,
    ledger,
    containers,
    database,
    backupDir,
    ports: (p = {}) => realPorts(ctx, p),
  };
  return ctx;
}
